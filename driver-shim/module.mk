# driver-shim: readout_shim, readoutd's thin PCI driver (a kernel module), and
# its tests in a VM: Debian's kernel under QEMU (TCG) with QEMU's `edu` PCI
# device and the host's / shared read-only (driver-shim/vm/run-vm.sh).
#
#   make shim-module  $(BUILD)/shim/readout_shim.ko, built with W=1
#   make shim-check   the module under sparse (C=2)
#   make shim-test    both, then driver-shim/tests/guest.sh in the VM (about
#                     45 s). SKIPPED (and passes) when QEMU or the kernel image
#                     or headers are missing. make test runs it too: see the
#                     top Makefile.
#
# A warning fails the module's build and its check. The kernel is the newest
# version V with /boot/vmlinuz-V and /lib/modules/V (linux-image-amd64),
# preferring one with its headers (/lib/modules/V/build, linux-headers-amd64),
# never `uname -r`: the host, CI's too, may run another kernel. KVER=V forces
# one. The sources are copied into $(BUILD)/shim, so the tree stays clean.

SHIM_KVER_SH = for f in /boot/vmlinuz-*; do v=$${f\#/boot/vmlinuz-}; \
	[ -f /lib/modules/$$v/modules.dep ] || continue; \
	if [ -f /lib/modules/$$v/build/Makefile ]; then echo "1 $$v"; else echo "0 $$v"; fi; \
	done | sort -k1,1n -k2,2V | tail -n 1 | cut -d' ' -f2
# Recursive: a fresh machine gets its kernel from deps, after this is read.
KVER ?= $(shell $(SHIM_KVER_SH))
KDIR = /lib/modules/$(KVER)/build

SHIM_DIR := $(BUILD)/shim
SHIM_SRCS := driver-shim/readout_shim.c driver-shim/Kbuild $(wildcard driver-shim/uapi/*.h)
SHIM_COPIES := $(SHIM_SRCS:driver-shim/%=$(SHIM_DIR)/%)
SHIM_KO := $(SHIM_DIR)/readout_shim.ko

$(SHIM_COPIES): $(SHIM_DIR)/%: driver-shim/%
	@mkdir -p $(dir $@)
	cp $< $@

# Kbuild gets none of this make's flags or command-line variables (CC=clang
# would build the module with another compiler than the kernel's), nor its
# jobserver (one file), through a variable, so make -n does not run it; its
# output is kept in $(SHIM_DIR)/kbuild.log, and a warning in it fails the build.
SHIM_KBUILD_MAKE := env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL $(MAKE)
define shim_kbuild
	@if [ ! -f $(KDIR)/Makefile ]; then \
		echo "$@: no kernel headers in $(KDIR) (KVER=$(KVER)): apt-get install linux-headers-amd64"; \
		exit 1; \
	fi
	@echo "  KBUILD  $(SHIM_DIR) $(1) against $(KVER)"
	@rc=0; $(SHIM_KBUILD_MAKE) -C $(KDIR) M=$(abspath $(SHIM_DIR)) $(1) \
		modules >$(SHIM_DIR)/kbuild.log 2>&1 || rc=$$?; \
	cat $(SHIM_DIR)/kbuild.log; \
	if [ $$rc -ne 0 ]; then rm -f $(SHIM_KO); exit $$rc; fi; \
	if grep -qi 'warning:' $(SHIM_DIR)/kbuild.log; then \
		rm -f $(SHIM_KO); echo "$@: the warnings above fail the build"; exit 1; \
	fi
endef

# Rewritten only when KVER changes, which rebuilds the module from scratch.
$(SHIM_DIR)/kver: shim-force
	@mkdir -p $(dir $@)
	@if [ "$$(cat $@ 2>/dev/null)" != "$(KVER)" ]; then \
		rm -rf $(SHIM_DIR)/*.o $(SHIM_DIR)/*.ko $(SHIM_DIR)/.*.cmd; echo "$(KVER)" >$@; \
	fi

$(SHIM_KO): $(SHIM_COPIES) $(SHIM_DIR)/kver | deps
	$(call shim_kbuild,W=1)

shim-module: $(SHIM_KO)

# After the module's build, never beside it: both work in $(SHIM_DIR).
shim-check: $(SHIM_KO)
	@if ! command -v sparse >/dev/null 2>&1; then \
		echo "shim-check: SKIPPED: sparse not found: apt-get install sparse (make deps)"; \
	else \
		$(MAKE) --no-print-directory shim-sparse; \
	fi
shim-sparse: $(SHIM_KO)
	$(call shim_kbuild,W=1 C=2)

# The guest test program: criterion, run inside the VM by guest-shim.sh. Its
# own name, so make test's host loop (tests/unit, tests/integration) skips it.
SHIM_TEST_BIN := $(BIN)/tests/shim_test_shim
$(OBJ)/driver-shim/tests/test_shim.o: CPPFLAGS += $(TEST_CPPFLAGS)
$(SHIM_TEST_BIN): $(OBJ)/driver-shim/tests/test_shim.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion

# The VM's /init: static, so the initramfs needs no libc. Built with its own
# flags: no sanitizer belongs in PID 1.
VM_INIT := $(BUILD)/vm/init
$(VM_INIT): driver-shim/vm/init.c | deps
	@mkdir -p $(dir $@)
	$(CC) -static -O2 -std=c11 -Wall -Wextra -Werror -o $@ $<

# What the guest scripts get in their environment, besides RDO_VM=1.
SHIM_GUEST_ENV = SHIM_KO=$(abspath $(SHIM_KO)) TEST_SHIM=$(abspath $(SHIM_TEST_BIN)) \
	RDO_BIN=$(abspath $(BIN)) RDO_BIN_DIR=$(abspath $(BIN)) RDO_SOURCE_DIR=$(CURDIR)
# Seconds before the VM is killed (run-vm.sh exits 124 then).
SHIM_VM_TIMEOUT ?= 300

# Everything that needs no kernel is built here; the rest (module, sparse,
# VM) in a second make that reads KVER after deps installed the kernel, and
# only when QEMU and the kernel are there.
shim-test: binaries $(SHIM_TEST_BIN) $(VM_INIT) | deps
	@kver=$(KVER); missing=; \
	command -v qemu-system-x86_64 >/dev/null 2>&1 || \
		missing="$$missing; qemu-system-x86_64 (apt-get install qemu-system-x86)"; \
	if [ -z "$$kver" ] || [ ! -e /boot/vmlinuz-$$kver ] || [ ! -f /lib/modules/$$kver/modules.dep ]; then \
		missing="$$missing; a kernel in /boot and /lib/modules (apt-get install linux-image-amd64)"; \
	elif [ ! -f /lib/modules/$$kver/build/Makefile ]; then \
		missing="$$missing; the headers of $$kver (apt-get install linux-headers-$$kver)"; \
	fi; \
	if [ -n "$$missing" ]; then echo "shim-test: SKIPPED: missing$${missing#;}"; exit 0; fi; \
	$(MAKE) --no-print-directory shim-vm KVER=$$kver

shim-vm: $(SHIM_KO) shim-check
	RDO_KVER=$(KVER) RDO_VM_DIR=$(abspath $(BUILD)/vm) RDO_VM_INIT=$(abspath $(VM_INIT)) \
		RDO_VM_TIMEOUT=$(SHIM_VM_TIMEOUT) \
		driver-shim/vm/run-vm.sh driver-shim/tests/guest.sh $(SHIM_GUEST_ENV)

.PHONY: shim-module shim-check shim-sparse shim-test shim-vm shim-force
