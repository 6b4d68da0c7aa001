# readoutctl and the client library the consumers share.
CLIENT_SRCS := clients/rdoclient.c clients/json.c clients/rdodata.c clients/verify.c
CLIENT_OBJS := $(CLIENT_SRCS:%.c=$(OBJ)/%.o) $(PROTO_OBJ) $(OBJ)/server/util.o \
	$(OBJ)/server/page.o $(OBJ)/server/crc32c.o $(OBJ)/server/rdofile.o $(OBJ)/server/keys.o
CLIENT_LIB := $(BUILD)/lib/librdoclient.a

$(CLIENT_LIB): $(CLIENT_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

$(BIN)/readoutctl: $(OBJ)/clients/readoutctl.o $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

BINARIES += $(BIN)/readoutctl

$(BIN)/readout-sub: $(OBJ)/clients/readout-sub.o $(CLIENT_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

BINARIES += $(BIN)/readout-sub

# readout-writer runs the server's writer engine and config reader: it links
# the server library after the client one.
$(BIN)/readout-writer: $(OBJ)/clients/readout-writer.o $(CLIENT_LIB) $(SERVER_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

BINARIES += $(BIN)/readout-writer
