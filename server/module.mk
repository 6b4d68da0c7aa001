# The shim backend speaks driver-shim's ABI, from its uapi header.
CPPFLAGS += -Idriver-shim/uapi

# The daemon. Everything but main.c goes into a library that tests link too.
SERVER_SRCS := server/log.c server/util.c server/card.c server/card_sim.c server/card_shim.c \
	server/regmap.c server/config.c server/control.c server/page.c server/hostmem.c server/ring.c server/pool.c \
	server/dma.c server/dma_superpage.c server/dma_edu.c server/sink.c server/events.c server/zsock.c \
	server/live.c server/lossless.c server/status.c \
	server/crc32c.c server/rdofile.c server/numa.c
# The disk writer and its sink.
SERVER_SRCS += server/writer.c server/disk.c
# CURVE key files, shared with the clients (clients/module.mk).
SERVER_SRCS += server/keys.c
SERVER_SRCS += server/auth.c
SERVER_SRCS += server/service.c
SERVER_SRCS += server/metrics.c
SERVER_OBJS := $(SERVER_SRCS:%.c=$(OBJ)/%.o) $(PROTO_OBJ)
SERVER_LIB := $(BUILD)/lib/libreadoutd.a

$(SERVER_LIB): $(SERVER_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN)/readoutd: $(OBJ)/server/main.o $(SERVER_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

BINARIES += $(BIN)/readoutd
