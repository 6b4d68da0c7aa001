# The wire contract: protoc-c generates C into $(GEN) at build time.
PROTO_SRC := proto/readout.proto
# Included as "proto/readout.pb-c.h" from the $(GEN) root.
PROTO_C := $(GEN)/proto/readout.pb-c.c
PROTO_H := $(GEN)/proto/readout.pb-c.h
PROTO_OBJ := $(OBJ)/gen/proto/readout.pb-c.o

$(PROTO_C) $(PROTO_H) &: $(PROTO_SRC) | deps
	@mkdir -p $(GEN)/proto
	protoc-c --proto_path=proto --c_out=$(GEN)/proto $(PROTO_SRC)

$(PROTO_OBJ): $(PROTO_C) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
