# make install: the binaries, the systemd unit, its users, the udev rule for
# driver-shim's devices and the example config.
#
#   make install                           into /usr/local (config in /etc)
#   make install PREFIX=/usr DESTDIR=root  a package's tree
#   make check-unit                        systemd-analyze verify on the unit
#
# SYSCONFDIR stays /etc whatever PREFIX is: systemd, udev and readoutd's unit
# look there. An existing config file is never overwritten: the new one goes
# beside it as FILE.example. INSTALL_DEPS= installs what is built without
# building (the tests install a build they did not make).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
UDEVDIR ?= $(PREFIX)/lib/udev/rules.d
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
INSTALL_DEPS ?= binaries

# The example config and the register maps it names, relative to config/ and
# to $(SYSCONFDIR)/readoutd alike (config paths are relative to the config file).
CONFIG_FILES := readoutd.yaml $(patsubst config/%,%,$(wildcard config/regmaps/*.yaml))

.PHONY: install uninstall check-unit

# The unit is substituted on the way: its paths are make variables, not files make can date.
install: $(INSTALL_DEPS)
	install -D -m 0755 -t $(DESTDIR)$(BINDIR) $(BINARIES)
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' config/readoutd.service.in \
		| install -D -m 0644 /dev/stdin $(DESTDIR)$(UNITDIR)/readoutd.service
	install -D -m 0644 config/readoutd.sysusers $(DESTDIR)$(SYSUSERSDIR)/readoutd.conf
	install -D -m 0644 config/99-readout-shim.rules $(DESTDIR)$(UDEVDIR)/99-readout-shim.rules
	@for f in $(CONFIG_FILES); do \
		dst=$(DESTDIR)$(SYSCONFDIR)/readoutd/$$f; \
		if [ -e $$dst ] && ! cmp -s config/$$f $$dst; then \
			echo "make install: keeping $$dst, the new one is $$dst.example"; \
			dst=$$dst.example; \
		fi; \
		echo "install -D -m 0644 config/$$f $$dst"; \
		install -D -m 0644 config/$$f $$dst || exit 1; \
	done
ifeq ($(DESTDIR),)
	@echo "make install: to start readoutd as a service:"
	@echo "  systemd-sysusers readoutd.conf && udevadm control --reload && udevadm trigger"
	@echo "  systemctl daemon-reload && systemctl enable --now readoutd"
endif

# Leaves the config in $(SYSCONFDIR)/readoutd, and the users.
uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(BINARIES))) \
		$(DESTDIR)$(UNITDIR)/readoutd.service $(DESTDIR)$(SYSUSERSDIR)/readoutd.conf \
		$(DESTDIR)$(UDEVDIR)/99-readout-shim.rules

# systemd-analyze verify on the unit as installed under DESTDIR $(1), quiet
# or failing: any output is a finding. verify checks that ExecStart exists,
# and --root cannot help on systemd 252 (the tree lacks the system's own
# units, and verify then fails on sysinit.target), so a copy of the installed
# unit has ExecStart pointing into the tree. The shell variable `out` holds
# the findings.
verify-unit = d=$$(mktemp -d) && \
	sed 's|^ExecStart=$(BINDIR)/|ExecStart=$(1)$(BINDIR)/|' \
		$(1)$(UNITDIR)/readoutd.service > $$d/readoutd.service && \
	out=$$(systemd-analyze verify $$d/readoutd.service 2>&1); rc=$$?; rm -rf $$d; \
	[ $$rc -eq 0 ] && [ -z "$$out" ]

CHECK_ROOT = $(abspath $(BUILD)/check-unit)
check-unit: $(INSTALL_DEPS)
	@rm -rf $(CHECK_ROOT)
	@$(MAKE) --no-print-directory install DESTDIR=$(CHECK_ROOT) INSTALL_DEPS= >/dev/null
	@if $(call verify-unit,$(CHECK_ROOT)); then \
		echo "check-unit: systemd-analyze verify: clean"; \
	else \
		echo "$$out"; echo "check-unit: systemd-analyze verify: FAILED"; exit 1; \
	fi
	@systemd-analyze security --offline=yes --no-pager \
		$(CHECK_ROOT)$(UNITDIR)/readoutd.service | tail -n 1
