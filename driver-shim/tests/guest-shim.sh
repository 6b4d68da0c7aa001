#!/bin/sh
# guest-shim.sh: the readout_shim module steps, inside the test VM, as root,
# from the repository root:
#
#   SHIM_KO=/path/readout_shim.ko TEST_SHIM=/path/test_shim driver-shim/tests/guest-shim.sh
#
# 1. insmod without ids binds nothing; binding edu (1234:11e8) through
#    new_id creates /dev/readout/<address>; the tests run; rmmod removes it.
# 2. insmod ids=1234:11e8 binds it at load; the tests run again.
# 3. malformed ids and irq_mode values are refused at load.
# 4. insmod irq_mode=intx: the tests run on the INTx path.
# Then the kernel log must hold no BUG, WARNING or Oops.
set -eu

me=guest-shim
: "${SHIM_KO:?SHIM_KO: the readout_shim.ko to test}"
: "${TEST_SHIM:?TEST_SHIM: the test_shim binary}"
DRV=/sys/bus/pci/drivers/readout_shim

step() {
	echo "$me: == $*"
}

fail() {
	echo "$me: FAILED: $*" >&2
	dmesg | grep -i -e readout -e 'BUG' -e 'WARNING' -e 'Oops' | tail -n 30 >&2 || true
	exit 1
}

[ -f "$SHIM_KO" ] || fail "no module at SHIM_KO=$SHIM_KO"
[ -x "$TEST_SHIM" ] || fail "no test binary at TEST_SHIM=$TEST_SHIM"

addr=
for d in /sys/bus/pci/devices/*; do
	if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ]; then
		addr=${d##*/}
	fi
done
[ -n "$addr" ] || fail "no edu device (1234:11e8) in this VM"
dev=/dev/readout/$addr
echo "$me: edu is $addr, its node $dev"

# Waits up to 2 s for the device node to be there (yes) or gone (no).
wait_node() {
	i=0
	while :; do
		if [ -e "$dev" ]; then now=yes; else now=no; fi
		[ "$now" = "$1" ] && return 0
		i=$((i + 1))
		[ "$i" -le 40 ] || return 1
		sleep 0.05
	done
}

# run_tests STEP IRQ_KIND
run_tests() {
	step "$1: test_shim (interrupts: $2)"
	RSHIM_DEV=$dev RSHIM_EXPECT_IRQ=$2 "$TEST_SHIM" --jobs 1 --verbose ||
		fail "$1: test_shim failed"
}

unload() {
	rmmod readout_shim || fail "$1: rmmod readout_shim"
	wait_node no || fail "$1: $dev is still there after rmmod"
	[ ! -e "$DRV" ] || fail "$1: the driver is still registered after rmmod"
}

dmesg -C

step "1: insmod without ids binds nothing"
insmod "$SHIM_KO" || fail "1: insmod $SHIM_KO"
[ -d "$DRV" ] || fail "1: no $DRV after insmod"
[ ! -e "$DRV/$addr" ] || fail "1: edu got bound without ids or new_id"
[ ! -e "$dev" ] || fail "1: $dev exists without a binding"
step "1: bind edu through new_id"
echo "1234 11e8" >"$DRV/new_id" || fail "1: write new_id"
wait_node yes || fail "1: no $dev within 2 s of new_id"
[ -e "$DRV/$addr" ] || fail "1: edu is not bound to readout_shim"
[ -c "$dev" ] || fail "1: $dev is not a character device"
run_tests 1 msi
step "1: rmmod"
unload 1

step "2: insmod ids=1234:11e8"
insmod "$SHIM_KO" ids=1234:11e8 || fail "2: insmod ids=1234:11e8"
wait_node yes || fail "2: no $dev within 2 s of insmod ids=1234:11e8"
run_tests 2 msi
step "2: rmmod is refused while the device is open"
exec 3<"$dev"
if rmmod readout_shim 2>/dev/null; then
	fail "2: rmmod succeeded with $dev open"
fi
exec 3<&-
unload 2

step "3: malformed parameters are refused"
for bad in ids=1234-11e8 ids=1234:11e8,xyz ids=12345:11e8 ids=1234: irq_mode=bogus; do
	if insmod "$SHIM_KO" "$bad" 2>/dev/null; then
		fail "3: insmod $bad was accepted"
	fi
	[ ! -e "$DRV" ] || fail "3: the driver stayed registered after insmod $bad"
done
dmesg | grep -q 'readout_shim: ids: malformed entry "1234-11e8"' ||
	fail "3: no kernel log line naming the malformed entry"
dmesg | grep -q 'readout_shim: irq_mode=bogus' ||
	fail "3: no kernel log line naming the bad irq_mode"

step "4: insmod ids=1234:11e8 irq_mode=intx"
insmod "$SHIM_KO" ids=1234:11e8 irq_mode=intx || fail "4: insmod irq_mode=intx"
wait_node yes || fail "4: no $dev within 2 s of insmod irq_mode=intx"
run_tests 4 intx
unload 4

step "kernel log of readout_shim"
dmesg | grep -i readout || true
if dmesg | grep -E -q 'BUG|WARNING|Oops|general protection|sleeping function'; then
	dmesg | grep -E -B 2 -A 20 'BUG|WARNING|Oops|general protection|sleeping function' | head -n 80
	fail "the kernel log has a BUG, WARNING or Oops"
fi
echo "$me: all steps passed"
