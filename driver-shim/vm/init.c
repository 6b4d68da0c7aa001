/*
 * PID 1 of the shim-test VM (driver-shim/vm/run-vm.sh builds the initramfs
 * around it). A static program, so the initramfs needs no libc:
 *
 *   1. mounts devtmpfs on /dev (CONFIG_DEVTMPFS_MOUNT is off in Debian's
 *      kernel), opens /dev/console as stdin/stdout/stderr, mounts proc, sysfs;
 *   2. loads the modules listed in /etc/rdo-modules, one path a line, in that
 *      order (run-vm.sh wrote it in dependency order from modules.dep);
 *   3. mounts the host's / read-only over 9p (virtio, mount tag "hostroot")
 *      at /newroot, with devtmpfs, proc, sysfs and tmpfs (/tmp, /run,
 *      /dev/shm) under it, and chroots there; each rdo.keep=PATH, a host
 *      folder those tmpfs would hide (a checkout in /tmp), stays visible;
 *   4. brings up the loopback interface, changes to rdo.cwd and runs
 *      `/bin/sh rdo.script` with a clean environment plus every
 *      rdo.env.NAME=VALUE of the kernel command line;
 *   5. kills whatever the script left running, prints
 *      "RDO-VM-EXIT <status>" on the console and powers off.
 *
 * rdo.9p=OPTIONS replaces the 9p mount options (HOST_OPTS), to try another
 * cache mode. A failure of init itself prints what failed, "RDO-VM-EXIT 125",
 * and powers off too. Should power-off fail, init returns: the kernel panics, and
 * panic=-1 with QEMU's -no-reboot ends the VM all the same.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define NEWROOT	    "/newroot"
#define MODULE_LIST "/etc/rdo-modules"
#define HOST_TAG    "hostroot"
/*
 * Large messages, and cache=loose: the guest runs binaries and libraries off
 * this mount, and nothing changes under it while the VM runs. Measured: the
 * default (no cache) runs criterion binaries two to four times slower.
 */
#define HOST_OPTS   "trans=virtio,version=9p2000.L,msize=262144,cache=loose"
#define INIT_FAILED 125
#define MAX_ENV	    64
#define MAX_KEEP    8

static const char *script;
static const char *cwd = "/";
static const char *host_opts = HOST_OPTS;
static char *env_pairs[MAX_ENV];
static int n_env;
/* Host folders under the guest's own /tmp or /run (a checkout in /tmp). */
static const char *keep[MAX_KEEP];
static int n_keep;

static void say(const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	dprintf(STDOUT_FILENO, "rdo-init: %s\n", line);
}

/* Prints the marker run-vm.sh looks for, then powers off. */
static _Noreturn void finish(int status)
{
	int leftover = 0;

	/* Whatever the script started and left behind (daemons, orphans). */
	kill(-1, SIGKILL);
	while (waitpid(-1, NULL, 0) > 0)
		leftover++;
	if (leftover > 0)
		say("killed %d process(es) the script left running", leftover);
	sync();
	dprintf(STDOUT_FILENO, "\nRDO-VM-EXIT %d\n", status);
	tcdrain(STDOUT_FILENO);
	reboot(RB_POWER_OFF);
	say("power-off failed: %s", strerror(errno));
	exit(status == 0 ? 1 : status);
}

/* What failed, as a format, and the errno it failed with. */
static _Noreturn void fail(int err, const char *fmt, ...)
{
	char what[600];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	say("FAILED: %s: %s", what, strerror(err));
	finish(INIT_FAILED);
}

static void make_dir(const char *path, mode_t mode)
{
	if (mkdir(path, mode) != 0 && errno != EEXIST) {
		fail(errno, "mkdir %s", path);
	}
}

static void mount_fs(const char *src, const char *dst, const char *type, unsigned long flags,
		     const char *opts)
{
	make_dir(dst, 0755);
	if (mount(src, dst, type, flags, opts) != 0) {
		fail(errno, "mount %s on %s", type, dst);
	}
}

/* Before devtmpfs there is no console: errors can only end the VM. */
static void setup_console(void)
{
	int fd;

	mkdir("/dev", 0755);
	if (mount("devtmpfs", "/dev", "devtmpfs", 0, "mode=0755") != 0 && errno != EBUSY)
		reboot(RB_POWER_OFF);
	fd = open("/dev/console", O_RDWR | O_NOCTTY);
	if (fd < 0)
		reboot(RB_POWER_OFF);
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > STDERR_FILENO)
		close(fd);
}

/* The kernel keeps "quotes" in /proc/cmdline: a word may hold spaces inside them. */
static void parse_cmdline(void)
{
	static char buf[4096];
	ssize_t len;
	char *p, *word;
	int fd = open("/proc/cmdline", O_RDONLY);

	if (fd < 0)
		fail(errno, "open /proc/cmdline");
	len = read(fd, buf, sizeof(buf) - 1);
	if (len < 0)
		fail(errno, "read /proc/cmdline");
	close(fd);
	buf[len] = '\0';

	p = buf;
	for (;;) {
		bool quoted = false;
		char *out;

		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		word = out = p;
		for (; *p != '\0' && (quoted || (*p != ' ' && *p != '\t' && *p != '\n')); p++) {
			if (*p == '"')
				quoted = !quoted;
			else
				*out++ = *p;
		}
		if (*p != '\0')
			p++;
		*out = '\0';

		if (strncmp(word, "rdo.script=", 11) == 0) {
			script = word + 11;
		} else if (strncmp(word, "rdo.cwd=", 8) == 0) {
			cwd = word + 8;
		} else if (strncmp(word, "rdo.9p=", 7) == 0) {
			host_opts = word + 7;
		} else if (strncmp(word, "rdo.keep=", 9) == 0 && word[9] == '/') {
			if (n_keep == MAX_KEEP) {
				say("FAILED: more than %d rdo.keep= parameters", MAX_KEEP);
				finish(INIT_FAILED);
			}
			keep[n_keep++] = word + 9;
		} else if (strncmp(word, "rdo.env.", 8) == 0 && strchr(word + 8, '=') != NULL) {
			if (n_env == MAX_ENV) {
				say("FAILED: more than %d rdo.env. parameters", MAX_ENV);
				finish(INIT_FAILED);
			}
			env_pairs[n_env++] = word + 8;
		}
	}
	if (script == NULL || *script == '\0') {
		say("FAILED: no rdo.script= on the kernel command line");
		finish(INIT_FAILED);
	}
}

static void load_modules(void)
{
	char path[512];
	FILE *list = fopen(MODULE_LIST, "r");

	if (list == NULL)
		fail(errno, "open " MODULE_LIST);
	while (fgets(path, sizeof(path), list) != NULL) {
		int fd;

		path[strcspn(path, "\n")] = '\0';
		if (path[0] == '\0')
			continue;
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			fail(errno, "open %s", path);
		if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) {
			fail(errno, "load module %s", path);
		}
		close(fd);
	}
	fclose(list);
}

/* 9pnet_virtio finds its device while loading; retry briefly all the same. */
static void mount_host(void)
{
	int tries;

	make_dir(NEWROOT, 0755);
	for (tries = 0;; tries++) {
		struct timespec pause = {0, 100 * 1000 * 1000};

		if (mount(HOST_TAG, NEWROOT, "9p", MS_RDONLY, host_opts) == 0)
			return;
		if (tries == 50 || (errno != ENOENT && errno != ENODEV))
			fail(errno, "mount 9p " HOST_TAG " on " NEWROOT);
		nanosleep(&pause, NULL);
	}
}

static void bind_dir(const char *src, const char *dst)
{
	if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) != 0) {
		fail(errno, "bind %s on %s", src, dst);
	}
}

/* mkdir -p inside the guest's tmpfs: the host's folders are read-only. */
static void make_path(char *path)
{
	char *slash;

	for (slash = strchr(path + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		make_dir(path, 0755);
		*slash = '/';
	}
	make_dir(path, 0755);
}

/* The host's view of each kept folder, set aside before tmpfs hides it. */
static void save_kept(void)
{
	char src[600], dst[32];
	int i;

	make_dir("/keep", 0755);
	for (i = 0; i < n_keep; i++) {
		snprintf(src, sizeof(src), NEWROOT "%s", keep[i]);
		snprintf(dst, sizeof(dst), "/keep/%d", i);
		make_dir(dst, 0755);
		bind_dir(src, dst);
	}
}

static void restore_kept(void)
{
	char src[32], dst[600];
	int i;

	for (i = 0; i < n_keep; i++) {
		snprintf(src, sizeof(src), "/keep/%d", i);
		snprintf(dst, sizeof(dst), NEWROOT "%s", keep[i]);
		make_path(dst);
		bind_dir(src, dst);
	}
}

static void setup_newroot(void)
{
	static const char *const links[][2] = {
	    {"/proc/self/fd", NEWROOT "/dev/fd"},
	    {"/proc/self/fd/0", NEWROOT "/dev/stdin"},
	    {"/proc/self/fd/1", NEWROOT "/dev/stdout"},
	    {"/proc/self/fd/2", NEWROOT "/dev/stderr"},
	};
	size_t i;

	mount_fs("devtmpfs", NEWROOT "/dev", "devtmpfs", 0, "mode=0755");
	mount_fs("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_fs("sysfs", NEWROOT "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
	mount_fs("tmpfs", NEWROOT "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	mount_fs("tmpfs", NEWROOT "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755");
	mount_fs("tmpfs", NEWROOT "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777");
	/* Nice to have for debugging a module: no failure when it cannot be. */
	if (mount("debugfs", NEWROOT "/sys/kernel/debug", "debugfs", 0, NULL) != 0)
		say("note: no debugfs: %s", strerror(errno));
	for (i = 0; i < sizeof(links) / sizeof(links[0]); i++) {
		if (symlink(links[i][0], links[i][1]) != 0 && errno != EEXIST)
			fail(errno, "symlink %s", links[i][1]);
	}
}

/* Servers under test listen on 127.0.0.1: lo starts down. */
static void loopback_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr) != 0) {
		say("note: loopback left down: %s", strerror(errno));
	} else {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr) != 0)
			say("note: loopback left down: %s", strerror(errno));
	}
	if (fd >= 0)
		close(fd);
}

static void setup_env(void)
{
	int i;

	clearenv();
	setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
	setenv("HOME", "/root", 1);
	setenv("TERM", "dumb", 1);
	setenv("LANG", "C.UTF-8", 1);
	setenv("RDO_VM", "1", 1);
	for (i = 0; i < n_env; i++) {
		if (putenv(env_pairs[i]) != 0)
			fail(errno, "putenv");
	}
}

static int run_script(void)
{
	int status;
	pid_t pid, done;

	pid = fork();
	if (pid < 0)
		fail(errno, "fork");
	if (pid == 0) {
		char *argv[] = {"sh", (char *)script, NULL};

		setsid();
		ioctl(STDIN_FILENO, TIOCSCTTY, 1);
		execv("/bin/sh", argv);
		say("FAILED: exec /bin/sh %s: %s", script, strerror(errno));
		_exit(127);
	}
	/* PID 1 also reaps every orphan until the script itself ends. */
	do {
		done = waitpid(-1, &status, 0);
	} while (done != pid && (done > 0 || errno == EINTR));
	if (done != pid)
		fail(errno, "waitpid");
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	say("the script was killed by signal %d (%s)", WTERMSIG(status),
	    strsignal(WTERMSIG(status)));
	return 128 + WTERMSIG(status);
}

int main(void)
{
	int status;

	setup_console();
	mount_fs("proc", "/proc", "proc", 0, NULL);
	mount_fs("sysfs", "/sys", "sysfs", 0, NULL);
	parse_cmdline();
	load_modules();
	mount_host();
	save_kept();
	setup_newroot();
	restore_kept();
	if (chroot(NEWROOT) != 0)
		fail(errno, "chroot " NEWROOT);
	if (chdir("/") != 0)
		fail(errno, "chdir /");
	if (chdir(cwd) != 0)
		fail(errno, "chdir %s", cwd);
	loopback_up();
	setup_env();
	status = run_script();
	finish(status);
	return status;
}
