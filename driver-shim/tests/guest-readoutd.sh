#!/bin/sh
# Inside the VM (driver-shim/vm/run-vm.sh): readoutd itself acquires from QEMU's
# edu device through driver-shim, with the edu profile (config/regmaps/edu.yaml,
# server/dma/dma_edu.c), and subscribers on its streams check every byte.
#
#   SHIM_KO   the module to load (readout_shim.ko built for the guest's kernel)
#   RDO_BIN   readoutd, readoutctl and readout-sub (default: build/bin)
#
# Steps: load the module for edu; start readoutd on it; registers through the
# control socket; a lossless subscriber with every payload byte checked; a
# live subscriber; stop and start; kill -9 in mid-acquisition and a new
# readoutd on the same card (the driver's release path); SIGTERM exits 0.
set -eu

bin=${RDO_BIN:-$PWD/build/bin}
cfg=/tmp/readoutd-edu.yaml
log=/tmp/readoutd-edu.log
ctl=ipc:///tmp/readoutd-edu.ctl

step() {
	echo "guest-readoutd: $*"
}

fail() {
	echo "guest-readoutd: FAILED: $*"
	[ -f $log ] && sed 's/^/  readoutd: /' $log | tail -n 30
	exit 1
}

# The edu function's PCI address, from sysfs.
edu_address() {
	for d in /sys/bus/pci/devices/*; do
		if [ "$(cat "$d/vendor")" = 0x1234 ] && [ "$(cat "$d/device")" = 0x11e8 ]; then
			basename "$d"
			return 0
		fi
	done
	return 1
}

# Wait up to $2 seconds for $1 to appear in the log.
wait_log() {
	i=0
	while ! grep -q "$1" $log 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $(($2 * 10)) ] || return 1
		sleep 0.1
	done
}

start_readoutd() {
	: >$log
	"$bin/readoutd" -c $cfg 2>>$log &
	pid=$!
	wait_log "ready:" 30 || fail "readoutd did not get ready within 30 s"
}

rctl() {
	"$bin/readoutctl" -e $ctl -t 10 "$@"
}

# `readout-sub --json` summary key $2 of file $1, a number (its first occurrence).
summary() {
	sed -n "s/^[^{]*{[^[]*\"$2\":\([0-9]*\).*/\1/p" "$1"
}

# The summary in file $1 says every page arrived intact.
clean() {
	grep -q '"result":"clean"' "$1" && [ "$(summary "$1" corrupt_pages)" = 0 ]
}

addr=$(edu_address) || fail "no edu device (1234:11e8) in the guest"
step "edu at $addr"
rmmod readout_shim 2>/dev/null || true
insmod "$SHIM_KO" ids=1234:11e8 || fail "insmod $SHIM_KO"
[ -c "/dev/readout/$addr" ] || fail "no /dev/readout/$addr after insmod"

# The shipped config, pointed at this VM's slot and the map in the checkout.
sed -e "s|^  address: .*|  address: \"$addr\"|" \
	-e "s|regmaps/edu.yaml|$PWD/config/regmaps/edu.yaml|" config/readoutd-edu.yaml >$cfg

step "readoutd on shim $addr"
start_readoutd
grep -q "through driver-shim ABI" $log || fail "readoutd did not report the shim backend"
grep -q "DMA channel (edu protocol)" $log || fail "readoutd did not start the edu protocol"

step "a second readoutd on the card is refused, naming the owner"
rc=0
"$bin/readoutd" -c $cfg -b ipc:///tmp/readoutd-edu-2.ctl 2>/tmp/second.log || rc=$?
[ $rc = 1 ] || fail "a second readoutd exited $rc, expected 1"
grep -q "is owned by pid $pid" /tmp/second.log || fail "the refusal does not name pid $pid: $(cat /tmp/second.log)"

step "registers through the control socket"
id=$(rctl reg read id.identity) || fail "reg read id.identity"
echo "$id" | grep -q 0x010000ed || fail "identity reads '$id', expected 0x010000ed"
rctl reg write id.liveness 0x12345678 >/dev/null || fail "reg write id.liveness"
live=$(rctl reg read id.liveness) || fail "reg read id.liveness"
echo "$live" | grep -q 0xedcba987 || fail "liveness reads '$live', expected 0xedcba987"

step "lossless subscriber: 4 superpages, every byte checked"
"$bin/readout-sub" --lossless -e ipc:///tmp/readoutd-edu.lossless --count 4 --check --json \
	--timeout 30 --quiet >/tmp/sub-lossless.json || fail "readout-sub --lossless: $(cat /tmp/sub-lossless.json)"
cat /tmp/sub-lossless.json
[ "$(summary /tmp/sub-lossless.json superpages)" = 4 ] || fail "lossless: not 4 superpages"
[ "$(summary /tmp/sub-lossless.json pages)" = 16 ] || fail "lossless: not 16 pages of 2 KiB"
clean /tmp/sub-lossless.json || fail "lossless: not clean"

step "live subscriber: 2 superpages checked"
"$bin/readout-sub" -e ipc:///tmp/readoutd-edu.live --count 2 --check --json --timeout 30 \
	--quiet >/tmp/sub-live.json || fail "readout-sub (live): $(cat /tmp/sub-live.json)"
clean /tmp/sub-live.json || fail "live: not clean: $(cat /tmp/sub-live.json)"

step "stop flushes, start again"
rctl stop | grep -q idle || fail "stop did not leave acquisition idle"
rctl start --run 2 | grep -q running || fail "start did not run"
"$bin/readout-sub" --lossless -e ipc:///tmp/readoutd-edu.lossless --count 2 --check --json \
	--timeout 30 --quiet >/tmp/sub-2.json || fail "readout-sub after restart: $(cat /tmp/sub-2.json)"

step "kill -9 in mid-acquisition, then a new owner"
kill -9 $pid
wait $pid 2>/dev/null || true
dmesg | grep -q "bus mastering" || fail "the driver did not report switching bus mastering off"
start_readoutd
"$bin/readout-sub" --lossless -e ipc:///tmp/readoutd-edu.lossless --count 2 --check --json \
	--timeout 30 --quiet >/tmp/sub-3.json || fail "readout-sub after kill -9: $(cat /tmp/sub-3.json)"
clean /tmp/sub-3.json || fail "after kill -9: not clean: $(cat /tmp/sub-3.json)"

step "SIGTERM: readoutd stops and exits 0"
kill -TERM $pid
rc=0
wait $pid || rc=$?
[ $rc = 0 ] || fail "readoutd exited $rc on SIGTERM"
grep -q "superpages" $log || fail "no final summary in the log"
rmmod readout_shim || fail "rmmod readout_shim after readoutd exited"
step "PASS"
