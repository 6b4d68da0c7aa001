#!/bin/sh
# run-vm.sh: run a test script inside a throwaway VM that has QEMU's `edu`
# PCI device, booting the Debian kernel the host has installed (the one
# driver-shim/readout_shim.ko is built against).
#
#   driver-shim/vm/run-vm.sh SCRIPT [NAME=VALUE...]
#
# The guest sees the host's whole / read-only (9p over virtio) with fresh
# devtmpfs, proc, sysfs and tmpfs /tmp, /run, /dev/shm: host paths, binaries
# and libraries work unchanged in it, but only those tmpfs are writable, and
# nothing written there comes back. It runs `/bin/sh SCRIPT` as root in the
# current directory, with PATH, HOME, LANG, TERM=dumb, RDO_VM=1 and each
# NAME=VALUE as its environment. The loopback interface is up. Give paths as
# absolute paths. Host files under /tmp and /run are hidden by the guest's
# tmpfs, except the script's folder, the current folder and this checkout,
# which init binds back (read-only) when they are there.
# The kernel's own modules (modprobe) work in the guest too, since the
# guest's /lib/modules is the host's.
#
# How: the newest kernel version V with both /boot/vmlinuz-V and
# /lib/modules/V (never `uname -r`: the host may run another kernel) boots
# under TCG (never KVM: nested KVM hangs these guests) with a small initramfs
# built here: /init (driver-shim/vm/init.c, static) and the modules 9p over
# virtio needs, taken from /lib/modules/V in modules.dep order. /init mounts
# the host, chroots, runs the script, prints "RDO-VM-EXIT <status>" and
# powers off. The console goes to a log file, streamed here as it grows; this
# script exits with the script's status, 124 when the VM ran past the timeout,
# 125 when something else failed: a bad argument, the guest's init ("rdo-init:
# FAILED" on the console), or a guest that ended without the marker (a kernel
# panic: see the log). The guest runs on 2 CPUs and 256 MiB, all of it below
# the 28-bit DMA limit of edu; -cpu max gives it RDRAND, so getrandom() does
# not wait for entropy.
#
# Environment (all optional):
#   RDO_KVER         kernel version to boot (default: detected as above)
#   RDO_VM_DIR       work folder: initramfs, console log (default: build/vm)
#   RDO_VM_INIT      the static init binary (default: RDO_VM_DIR/init, built
#                    from init.c with gcc -static when missing or older)
#   RDO_VM_LOG       console log (default: RDO_VM_DIR/console.log)
#   RDO_VM_TIMEOUT   seconds before the VM is killed (default: 300)
#   RDO_VM_SMP       guest CPUs (default: 2: as fast as 1 under TCG on two host
#                    cores, and the driver meets a real SMP machine)
#   RDO_VM_QUIET     1: do not stream the console; print its tail on failure
#   RDO_VM_APPEND    more kernel parameters, last (loglevel=7, dyndbg=...)
#
# Needs qemu-system-x86_64 (qemu-system-x86), linux-image-amd64, cpio, gzip,
# gcc with a static libc (libc6-dev) when init must be built.
set -eu

me=run-vm.sh
die() {
	echo "$me: $*" >&2
	exit 125
}

[ $# -ge 1 ] || die "usage: run-vm.sh SCRIPT [NAME=VALUE...]"

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

script=$1
shift
case $script in
/*) ;;
*) script=$(pwd)/$script ;;
esac
[ -f "$script" ] || die "no such script: $script"

find_kver() {
	for f in /boot/vmlinuz-*; do
		[ -e "$f" ] || continue
		v=${f#/boot/vmlinuz-}
		[ -f "/lib/modules/$v/modules.dep" ] && echo "$v"
	done | sort -V | tail -n 1
}

KVER=${RDO_KVER:-$(find_kver)}
[ -n "$KVER" ] || die "no kernel: need /boot/vmlinuz-V and /lib/modules/V (apt-get install linux-image-amd64)"
kernel=/boot/vmlinuz-$KVER
moddir=/lib/modules/$KVER
[ -r "$kernel" ] || die "cannot read $kernel"
[ -f "$moddir/modules.dep" ] || die "no $moddir/modules.dep"
command -v qemu-system-x86_64 >/dev/null 2>&1 ||
	die "qemu-system-x86_64 not found (apt-get install qemu-system-x86)"
command -v cpio >/dev/null 2>&1 || die "cpio not found (apt-get install cpio)"

VM_DIR=${RDO_VM_DIR:-$repo/build/vm}
INIT=${RDO_VM_INIT:-$VM_DIR/init}
LOG=${RDO_VM_LOG:-$VM_DIR/console.log}
TIMEOUT=${RDO_VM_TIMEOUT:-300}
SMP=${RDO_VM_SMP:-2}
mkdir -p "$VM_DIR" "$(dirname "$LOG")"

if [ ! -x "$INIT" ] || [ -n "$(find "$here/init.c" -newer "$INIT")" ]; then
	echo "$me: building $INIT"
	gcc -static -O2 -Wall -Wextra -Werror -std=c11 -o "$INIT" "$here/init.c" ||
		die "cannot build $INIT (needs gcc and libc6-dev)"
fi

# The kernel command line: rdo.* words /init reads from /proc/cmdline.
# Values go in "quotes", so they may hold spaces but not quotes or newlines.
nl='
'
param() {
	case $2 in
	*\"* | *"$nl"*) die "$1: a value with a quote or a newline cannot be passed" ;;
	esac
	printf ' %s="%s"' "$1" "$2"
}
cmdline="console=ttyS0 quiet panic=-1"
cmdline="$cmdline$(param rdo.script "$script")$(param rdo.cwd "$(pwd)")"
# The guest mounts its own tmpfs on /tmp and /run: host folders the run needs
# there (the script's, the current one, a checkout in /tmp) are bound back.
kept=
for dir in "$(dirname "$script")" "$(pwd)" "$repo"; do
	case $dir/ in
	/tmp/* | /run/*) ;;
	*) continue ;;
	esac
	covered=no
	for k in $kept; do
		case $dir/ in "$k"/*) covered=yes ;; esac
	done
	[ $covered = yes ] && continue
	case $dir in *[[:space:]]*) die "cannot pass a folder with spaces under /tmp or /run: $dir" ;; esac
	kept="$kept $dir"
	cmdline="$cmdline$(param rdo.keep "$dir")"
done
for pair in "$@"; do
	name=${pair%%=*}
	case $pair in
	*=*) ;;
	*) die "not NAME=VALUE: $pair" ;;
	esac
	case $name in
	'' | [0-9]* | *[!A-Za-z0-9_]*) die "not a variable name: $name" ;;
	esac
	cmdline="$cmdline$(param "rdo.env.$name" "${pair#*=}")"
done
cmdline="$cmdline${RDO_VM_APPEND:+ $RDO_VM_APPEND}"
# x86's COMMAND_LINE_SIZE is 2048.
[ ${#cmdline} -lt 2000 ] || die "kernel command line too long (${#cmdline} bytes)"

# The initramfs: /init, the modules 9p over virtio needs and their order.
stage=$(mktemp -d "$VM_DIR/initramfs.XXXXXX")
qpid=
tpid=
# shellcheck disable=SC2317 # called by the trap
cleanup() {
	[ -z "$qpid" ] || kill "$qpid" 2>/dev/null || true
	[ -z "$tpid" ] || kill "$tpid" 2>/dev/null || true
	rm -rf "$stage"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$stage/root/dev" "$stage/root/proc" "$stage/root/sys" "$stage/root/newroot" \
	"$stage/root/etc" "$stage/root/lib/modules"
cp "$INIT" "$stage/root/init"

# modules.dep lists each module's whole dependency closure, the ones to load
# first last: load them in reverse, then the module. Built-in ones need nothing.
builtin=$moddir/modules.builtin
[ -f "$builtin" ] || builtin=/dev/null
awk -v want="virtio_pci 9pnet_virtio 9p" '
	function name(path, n) {
		n = path
		sub(/.*\//, "", n)
		sub(/\.ko(\.[a-z]+)?$/, "", n)
		gsub(/-/, "_", n)
		return n
	}
	function emit(path) {
		if (!(path in seen)) {
			seen[path] = 1
			print path
		}
	}
	FNR == NR { inkernel[name($1)] = 1; next }
	{
		path = $1
		sub(/:$/, "", path)
		file[name(path)] = path
		deps[name(path)] = ""
		for (i = 2; i <= NF; i++)
			deps[name(path)] = deps[name(path)] " " $i
	}
	END {
		n = split(want, w, " ")
		for (i = 1; i <= n; i++) {
			if (w[i] in file) {
				k = split(deps[w[i]], d, " ")
				for (j = k; j >= 1; j--)
					emit(d[j])
				emit(file[w[i]])
			} else if (!(w[i] in inkernel)) {
				print "module " w[i] " is neither in modules.dep nor built in" > "/dev/stderr"
				bad = 1
			}
		}
		exit bad
	}' "$builtin" "$moddir/modules.dep" >"$stage/modules" ||
	die "cannot resolve the 9p modules of $KVER"

: >"$stage/root/etc/rdo-modules"
while read -r path; do
	base=${path##*/}
	ko=/lib/modules/${base%.ko*}.ko
	case $path in
	*.ko) cp "$moddir/$path" "$stage/root$ko" ;;
	*.ko.xz) xz -dc "$moddir/$path" >"$stage/root$ko" ;;
	*.ko.zst) zstd -qdc "$moddir/$path" >"$stage/root$ko" ;;
	*.ko.gz) gzip -dc "$moddir/$path" >"$stage/root$ko" ;;
	*) die "unknown module format: $path" ;;
	esac || die "cannot copy $moddir/$path"
	echo "$ko" >>"$stage/root/etc/rdo-modules"
done <"$stage/modules"

initrd=$stage/initramfs.cpio.gz
(cd "$stage/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 >"$initrd" ||
	die "cannot write the initramfs"

# QEMU's option parser doubles commas inside values.
qlog=$(printf '%s' "$LOG" | sed 's/,/,,/g')
: >"$LOG"
start=$(date +%s)
echo "$me: booting $KVER (TCG, smp $SMP, timeout ${TIMEOUT}s): $script; console: $LOG"
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
	-accel tcg -machine pc -cpu max -smp "$SMP" -m 256M \
	-nodefaults -no-user-config -display none -monitor none -no-reboot \
	-chardev "file,id=console,path=$qlog" -serial chardev:console \
	-kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
	-device edu \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	</dev/null &
qpid=$!

# The console as it grows; tail ends within a second of QEMU. Waiting on QEMU
# rather than on tail lets a signal stop this script (and QEMU) at once.
tpid=
if [ "${RDO_VM_QUIET:-0}" != 1 ]; then
	tail -n +1 -f --pid="$qpid" "$LOG" &
	tpid=$!
fi
rc=0
wait "$qpid" || rc=$?
qpid=
[ -z "$tpid" ] || wait "$tpid" || true
tpid=
elapsed=$(($(date +%s) - start))

status=$(tr -d '\r' <"$LOG" | sed -n 's/.*RDO-VM-EXIT \([0-9][0-9]*\).*/\1/p' | tail -n 1)
if [ -z "$status" ]; then
	[ "${RDO_VM_QUIET:-0}" != 1 ] || tail -n 40 "$LOG"
	if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
		echo "$me: the guest did not finish within ${TIMEOUT}s (RDO_VM_TIMEOUT): see $LOG" >&2
		exit 124
	fi
	echo "$me: the guest did not finish (QEMU exited with $rc after ${elapsed}s, no RDO-VM-EXIT line): see $LOG" >&2
	exit 125
fi
if [ "$status" -ne 0 ] && [ "${RDO_VM_QUIET:-0}" = 1 ]; then
	tail -n 40 "$LOG"
fi
if [ "$status" -eq 125 ]; then
	echo "$me: status 125: the guest's init failed (\"rdo-init: FAILED\" above) or the script exited 125"
fi
echo "$me: guest script exited with status $status after ${elapsed}s ($KVER)"
exit "$status"
