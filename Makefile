# readoutd: one Makefile, one module.mk fragment per folder.
#
#   make run     install what is missing, build, start readoutd on the emulated card
#   make test    install what is missing, build, run every test (the kernel
#                module's in a VM last: driver-shim/module.mk)
#   make asan    the test suite under AddressSanitizer + UndefinedBehaviorSanitizer
#   make tsan    the test suite under ThreadSanitizer
#   make bench   performance figures next to their baselines (not part of test)

SAN ?=
ifeq ($(SAN),)
BUILD ?= build
else
BUILD ?= build/$(SAN)
endif

CC ?= gcc
PKGS := libzmq libprotobuf-c yaml-0.1 libsodium libsystemd libmicrohttpd
# One include root per tree, every include by path: "dma/dma.h" (server/),
# "lib/rdoclient.h" (clients/), "proto/readout.pb-c.h" (generated),
# "uapi/readout_shim.h" (driver-shim/).
CPPFLAGS += -D_GNU_SOURCE -Iserver -Iclients -I$(BUILD)/gen -Idriver-shim
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -pthread -fno-omit-frame-pointer
LDFLAGS += -pthread
LDLIBS += $(shell pkg-config --libs $(PKGS)) -laio -lm

ifeq ($(SAN),asan)
CFLAGS += -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
ifeq ($(SAN),tsan)
CFLAGS += -fsanitize=thread
LDFLAGS += -fsanitize=thread
endif

BIN := $(BUILD)/bin
OBJ := $(BUILD)/obj
GEN := $(BUILD)/gen

.PHONY: all deps run test unit integration asan tsan bench clean format
all: binaries

include proto/module.mk
include server/module.mk
include clients/module.mk
include tests/module.mk
include driver-shim/module.mk
include config/module.mk

# make test also runs shim-test (the kernel module and readoutd in a QEMU VM,
# driver-shim/module.mk): as test's last prerequisite, so after every test
# program is built and before tests/module.mk's recipe runs them. Plain builds
# only: the sanitizer runs (make asan, make tsan) leave it out, as does
# SHIM_TEST=no.
SHIM_TEST ?= yes
ifeq ($(SAN)$(SHIM_TEST),yes)
test: shim-test
endif

binaries: $(BINARIES)

$(OBJ)/%.o: %.c | deps $(PROTO_H)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Packages a fresh Debian 12 machine lacks. Installed with apt-get (sudo when
# not root); a no-op once they are there.
DEBS := build-essential pkg-config libzmq3-dev libprotobuf-c-dev protobuf-c-compiler \
	libyaml-dev libcriterion-dev libaio-dev libsodium-dev
# The service: sd_notify (libsystemd), the metrics endpoint (libmicrohttpd),
# systemd-analyze for the unit's check.
DEBS += libsystemd-dev libmicrohttpd-dev systemd
# make test's layering check (tests/check-layers) and its tests (pytest).
DEBS += python3 python3-pytest
# make shim-test's: QEMU, the kernel it boots and its headers (the module is
# built against them), sparse, cpio for the VM's initramfs (about 110 MB).
DEBS += qemu-system-x86 linux-image-amd64 linux-headers-amd64 sparse cpio
deps:
	@missing=; for p in $(DEBS); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' \
			|| missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "make deps: installing$$missing"; \
		if [ "$$(id -u)" -eq 0 ]; then sudo=; else sudo=sudo; fi; \
		$$sudo apt-get update -qq && \
		$$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			--no-install-recommends $$missing; \
	fi

RUN_CONFIG ?= config/readoutd.yaml
run: binaries
	$(BIN)/readoutd -c $(RUN_CONFIG)

asan:
	LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp $$LSAN_OPTIONS" $(MAKE) SAN=asan test
# Criterion itself crashes under ThreadSanitizer, so the test programs stay
# plain and drive TSan builds of readoutd and readoutctl: a data race in the
# daemon makes it exit non-zero, which fails the test that stopped it. The
# stress programs are plain C, so they run as TSan builds themselves and stop
# at the first race.
tsan:
	$(MAKE) SAN=tsan binaries
	TSAN_OPTIONS="halt_on_error=1 suppressions=$(CURDIR)/tests/tsan.supp $$TSAN_OPTIONS" \
		$(MAKE) SAN=tsan stress
	TSAN_OPTIONS="suppressions=$(CURDIR)/tests/tsan.supp $$TSAN_OPTIONS" \
		$(MAKE) test TEST_DAEMON_DIR=$(abspath build/tsan/bin) SHIM_TEST=no

clean:
	rm -rf build

format:
	clang-format -i $(shell git ls-files '*.c' '*.h')
