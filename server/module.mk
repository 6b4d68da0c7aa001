# The daemon, a folder per layer (tests/layers gives their order):
#   server/common   formats and helpers the clients share: libreadout-common.a
#   server/card ... server/service   the daemon's layers: libreadoutd.a
# Every source is included by path from the server/ root ("dma/dma.h").

COMMON_SRCS := $(wildcard server/common/*.c)
COMMON_OBJS := $(COMMON_SRCS:%.c=$(OBJ)/%.o) $(PROTO_OBJ)
COMMON_LIB := $(BUILD)/lib/libreadout-common.a

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

SERVER_SRCS := $(filter-out server/common/% server/service/main.c,$(wildcard server/*/*.c))
SERVER_OBJS := $(SERVER_SRCS:%.c=$(OBJ)/%.o)
SERVER_LIB := $(BUILD)/lib/libreadoutd.a

$(SERVER_LIB): $(SERVER_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN)/readoutd: $(OBJ)/server/service/main.o $(SERVER_LIB) $(COMMON_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

BINARIES += $(BIN)/readoutd
