# The clients: a library (clients/lib: the control and data connections,
# page checks) and the command-line tools on it (clients/tools). They link
# the common library (server/common), never the daemon's.

CLIENT_SRCS := $(wildcard clients/lib/*.c)
CLIENT_OBJS := $(CLIENT_SRCS:%.c=$(OBJ)/%.o)
CLIENT_LIB := $(BUILD)/lib/librdoclient.a

$(CLIENT_LIB): $(CLIENT_OBJS)
	@mkdir -p $(dir $@)
	$(AR) rcs $@ $^

# What the tools share, and each tool's own sources.
TOOLS_SHARED := clients/tools/cli.c clients/tools/json.c
readoutctl_SRCS := $(wildcard clients/tools/readoutctl*.c)
readout-sub_SRCS := clients/tools/readout-sub.c
readout-writer_SRCS := clients/tools/readout-writer.c clients/tools/writer_config.c
TOOLS := readoutctl readout-sub readout-writer

define tool_rule
$$(BIN)/$(1): $$(patsubst %.c,$$(OBJ)/%.o,$$($(1)_SRCS) $$(TOOLS_SHARED)) $$(CLIENT_LIB) \
		$$(COMMON_LIB)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(LDFLAGS) -o $$@ $$^ $$(LDLIBS)
BINARIES += $$(BIN)/$(1)
endef
$(foreach t,$(TOOLS),$(eval $(call tool_rule,$(t))))
