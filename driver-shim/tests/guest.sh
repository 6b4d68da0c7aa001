#!/bin/sh
# The shim-test VM's top script: make shim-test has driver-shim/vm/run-vm.sh
# run it inside the VM, as root, in the repo's root. It runs guest-shim.sh
# (the module's tests), then guest-readoutd.sh (readoutd on the module) when
# there is one, each to its end, and fails when either failed.
#
# The guest: Debian's kernel, QEMU's edu device (1234:11e8), the host's /
# read-only with tmpfs on /tmp, /run and /dev/shm, loopback up, no udev, no
# network. Its environment (driver-shim/module.mk, SHIM_GUEST_ENV):
#   SHIM_KO         the module, $(BUILD)/shim/readout_shim.ko
#   TEST_SHIM       the guest test program, $(BIN)/tests/shim_test_shim
#   RDO_BIN, RDO_BIN_DIR  the folder of readoutd, readoutctl and the clients
#   RDO_SOURCE_DIR  the repo's root
#   RDO_VM=1
set -eu

here=$(cd "$(dirname "$0")" && pwd)
echo "guest: kernel $(uname -r), $(nproc) CPU(s), $(awk '/^MemTotal/ { print int($2 / 1024) " MiB" }' /proc/meminfo)"

failed=
run() {
	name=$1
	start=$(date +%s)
	echo "guest: == $name"
	if sh "$here/$name"; then
		echo "guest: $name passed ($(($(date +%s) - start)) s)"
	else
		echo "guest: $name FAILED with status $? ($(($(date +%s) - start)) s)"
		failed="$failed $name"
	fi
}

run guest-shim.sh
if [ -f "$here/guest-readoutd.sh" ]; then
	run guest-readoutd.sh
fi

if [ -n "$failed" ]; then
	echo "guest: FAILED:$failed"
	exit 1
fi
echo "guest: all passed"
