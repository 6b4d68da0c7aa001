# The wire contract: protoc-c generates C into $(GEN) at build time.
PROTO_SRC := proto/readout.proto
PROTO_C := $(GEN)/readout.pb-c.c
PROTO_H := $(GEN)/readout.pb-c.h
PROTO_OBJ := $(OBJ)/gen/readout.pb-c.o

$(PROTO_C) $(PROTO_H) &: $(PROTO_SRC) | deps
	@mkdir -p $(GEN)
	protoc-c --proto_path=proto --c_out=$(GEN) $(PROTO_SRC)

$(PROTO_OBJ): $(PROTO_C) $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@
