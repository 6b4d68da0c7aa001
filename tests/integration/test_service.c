/*
 * Integration: readoutd as a systemd service. `make install` into a DESTDIR
 * lays out the binaries, the unit (which systemd-analyze finds clean), the
 * users, the udev rule and the config; and a real readoutd speaks the notify
 * protocol to a NOTIFY_SOCKET listener standing in for systemd: READY=1 with
 * STATUS=, watchdog pings while acquiring, RELOADING=1 then READY=1 at
 * SIGHUP, STOPPING=1 at SIGTERM.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct rdo_output o;

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	static char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return strdup(buf);
}

static void assert_file(const char *root, const char *path, mode_t mode)
{
	char full[PATH_MAX];
	snprintf(full, sizeof(full), "%s%s", root, path);
	struct stat st;
	cr_assert_eq(stat(full, &st), 0, "%s not installed: %s", path, strerror(errno));
	cr_assert(S_ISREG(st.st_mode), "%s is not a regular file", path);
	cr_assert_eq(st.st_mode & 07777, mode, "%s has mode %04o, expected %04o", path,
		     (unsigned)(st.st_mode & 07777), (unsigned)mode);
}

static bool same_content(const char *a, const char *b)
{
	char *x = slurp(a), *y = slurp(b);
	bool same = strcmp(x, y) == 0;
	free(x);
	free(y);
	return same;
}

static char root[64];

/*
 * make install from the source tree, of the binaries the tests run (rdo_bin_dir,
 * which make tsan points elsewhere), without building: INSTALL_DEPS= . The
 * outer make's MAKEFLAGS (its command-line variables, its jobserver) stay out.
 */
static int make_install(void)
{
	return rdo_run(&o,
		       "env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C '%s' "
		       "install DESTDIR='%s' PREFIX=/usr BIN='%s' INSTALL_DEPS=",
		       rdo_source_dir(), root, rdo_bin_dir());
}

static void install_setup(void)
{
	snprintf(root, sizeof(root), "/tmp/rdo-test-install-XXXXXX");
	cr_assert_not_null(mkdtemp(root));
	cr_assert_eq(make_install(), 0, "make install failed:\n%s\n%s", o.out, o.err);
}

static void install_teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (root[0] && system(cmd) == 0)
		root[0] = '\0';
}

TestSuite(install, .init = install_setup, .fini = install_teardown);

Test(install, layout_and_modes)
{
	static const char *const bins[] = {"readoutd", "readoutctl", "readout-sub",
					   "readout-writer"};
	char path[PATH_MAX];
	for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
		snprintf(path, sizeof(path), "/usr/bin/%s", bins[i]);
		assert_file(root, path, 0755);
	}
	assert_file(root, "/usr/lib/systemd/system/readoutd.service", 0644);
	assert_file(root, "/usr/lib/sysusers.d/readoutd.conf", 0644);
	assert_file(root, "/usr/lib/udev/rules.d/99-readout-shim.rules", 0644);
	assert_file(root, "/etc/readoutd/readoutd.yaml", 0644);
	assert_file(root, "/etc/readoutd/regmaps/rdo-sim.yaml", 0644);
	assert_file(root, "/etc/readoutd/regmaps/edu.yaml", 0644);

	/* The config's relative regmap path holds next to the installed config too. */
	char src[PATH_MAX], dst[PATH_MAX];
	snprintf(src, sizeof(src), "%s/config/readoutd.yaml", rdo_source_dir());
	snprintf(dst, sizeof(dst), "%s/etc/readoutd/readoutd.yaml", root);
	cr_assert(same_content(src, dst), "installed config differs from config/readoutd.yaml");

	snprintf(path, sizeof(path), "%s/usr/lib/systemd/system/readoutd.service", root);
	char *unit = slurp(path);
	cr_assert(strstr(unit, "\nExecStart=/usr/bin/readoutd -c /etc/readoutd/readoutd.yaml\n"),
		  "ExecStart not substituted:\n%s", unit);
	for (const char *at = strchr(unit, '@'); at; at = strchr(at + 1, '@')) {
		size_t len = strspn(at + 1, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_");
		cr_assert(len == 0 || at[1 + len] != '@', "placeholder %.*s left in the unit",
			  (int)len + 2, at);
	}
	free(unit);
}

Test(install, existing_config_is_kept)
{
	char cfg[PATH_MAX], example[PATH_MAX], src[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "%s/etc/readoutd/readoutd.yaml", root);
	snprintf(example, sizeof(example), "%s/etc/readoutd/readoutd.yaml.example", root);
	snprintf(src, sizeof(src), "%s/config/readoutd.yaml", rdo_source_dir());

	/* Unchanged: reinstalling is quiet and leaves no example beside it. */
	cr_assert_eq(make_install(), 0, "%s", o.err);
	cr_assert_neq(access(example, F_OK), 0, "an example beside an unchanged config");

	FILE *f = fopen(cfg, "a");
	cr_assert_not_null(f);
	fputs("# edited on site\n", f);
	fclose(f);
	cr_assert_eq(make_install(), 0, "%s", o.err);
	char *kept = slurp(cfg);
	cr_assert(strstr(kept, "# edited on site\n"), "make install overwrote the site's config");
	free(kept);
	cr_assert(same_content(src, example), "the new config is not beside the old one");
	cr_assert(strstr(o.out, "keeping"), "make install did not say it kept the config:\n%s",
		  o.out);
}

static bool have(const char *tool)
{
	struct rdo_output w;
	return rdo_run(&w, "command -v %s", tool) == 0;
}

/*
 * systemd-analyze verify on the installed unit: quiet or failing. verify
 * checks that ExecStart exists, so a copy of the unit has it point into the
 * DESTDIR (what make check-unit does too: --root is of no use on systemd 252).
 */
Test(install, unit_verifies_clean)
{
	if (!have("systemd-analyze"))
		cr_skip_test("systemd-analyze is not installed (apt-get install systemd)");
	int rc = rdo_run(&o,
			 "d=$(mktemp -d) && sed 's|^ExecStart=/usr/bin/|ExecStart=%s/usr/bin/|' "
			 "%s/usr/lib/systemd/system/readoutd.service > $d/readoutd.service && "
			 "systemd-analyze verify $d/readoutd.service; rc=$?; rm -rf $d; exit $rc",
			 root, root);
	cr_assert_eq(rc, 0, "systemd-analyze verify failed:\n%s%s", o.out, o.err);
	cr_assert_str_eq(o.out, "", "systemd-analyze verify: %s", o.out);
	cr_assert_str_eq(o.err, "", "systemd-analyze verify: %s", o.err);

	/* The hardening stays: systemd-analyze's exposure (0 best, 10 worst) at most 2. */
	rc = rdo_run(&o,
		     "systemd-analyze security --offline=yes --no-pager "
		     "%s/usr/lib/systemd/system/readoutd.service",
		     root);
	const char *score = strstr(o.out, "Overall exposure level for readoutd.service: ");
	cr_assert_not_null(score, "systemd-analyze security said:\n%s%s", o.out, o.err);
	double exposure =
	    strtod(score + strlen("Overall exposure level for readoutd.service: "), NULL);
	cr_assert_leq(exposure, 2.0, "exposure %.1f:\n%s", exposure, o.out);
}

/* The sysusers file makes user readoutd, and group readout with readoutd in it. */
Test(install, sysusers_creates_the_users)
{
	if (!have("systemd-sysusers"))
		cr_skip_test("systemd-sysusers is not installed (apt-get install systemd)");
	if (geteuid() != 0)
		cr_skip_test("systemd-sysusers --root needs root");
	int rc = rdo_run(&o, "systemd-sysusers --root='%s' '%s/usr/lib/sysusers.d/readoutd.conf'",
			 root, root);
	cr_assert_eq(rc, 0, "systemd-sysusers failed:\n%s%s", o.out, o.err);
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/etc/passwd", root);
	char *passwd = slurp(path);
	cr_assert(strstr(passwd, "readoutd:x:") && strstr(passwd, ":/usr/sbin/nologin\n"),
		  "no readoutd user:\n%s", passwd);
	free(passwd);
	snprintf(path, sizeof(path), "%s/etc/group", root);
	char *group = slurp(path);
	const char *g = strstr(group, "readout:x:");
	cr_assert_not_null(g, "no readout group:\n%s", group);
	const char *nl = strchr(g, '\n');
	cr_assert(nl && nl - g > 9 && strncmp(nl - 9, ":readoutd", 9) == 0,
		  "readoutd is not in group readout:\n%s", group);
	cr_assert(strstr(group, "readoutd:x:"), "no readoutd group:\n%s", group);
	free(group);
}

/*
 * A stand-in for systemd's notify socket: a thread receives every datagram
 * into `rx`, stamped with CLOCK_MONOTONIC, so the daemon never waits on a full
 * socket queue (net.unix.max_dgram_qlen is often 10).
 */
#define RX_MAX 4096
struct rx_msg {
	char text[600];
	double t; /* seconds, CLOCK_MONOTONIC */
};
static struct {
	pthread_mutex_t lock;
	struct rx_msg msg[RX_MAX];
	unsigned n;
} rx = {.lock = PTHREAD_MUTEX_INITIALIZER};
static atomic_bool rx_stop;
static pthread_t rx_thread;
static int notify_fd = -1;
static char notify_dir[64], notify_path[96];
static struct rdo_daemon d;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *receive(void *arg)
{
	(void)arg;
	/* relaxed: the flag orders nothing; join() publishes the thread's last writes */
	while (!atomic_load_explicit(&rx_stop, memory_order_relaxed)) {
		char buf[sizeof(rx.msg[0].text)];
		ssize_t n = recv(notify_fd, buf, sizeof(buf) - 1, 0);
		if (n <= 0)
			continue; /* the receive timeout: look at the flag again */
		buf[n] = '\0';
		pthread_mutex_lock(&rx.lock);
		if (rx.n < RX_MAX) {
			memcpy(rx.msg[rx.n].text, buf, (size_t)n + 1);
			rx.msg[rx.n].t = now();
			rx.n++;
		}
		pthread_mutex_unlock(&rx.lock);
	}
	return NULL;
}

static void notify_setup(void)
{
	snprintf(notify_dir, sizeof(notify_dir), "/tmp/rdo-test-notify-XXXXXX");
	cr_assert_not_null(mkdtemp(notify_dir));
	snprintf(notify_path, sizeof(notify_path), "%s/notify", notify_dir);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(notify_fd, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", notify_path);
	cr_assert_eq(bind(notify_fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s",
		     notify_path, strerror(errno));
	struct timeval tv = {.tv_usec = 100000};
	setsockopt(notify_fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	cr_assert_eq(pthread_create(&rx_thread, NULL, receive, NULL), 0);
	/*
	 * readoutd inherits these. WATCHDOG_PID stays unset: sd_watchdog_enabled()
	 * compares it with the caller's pid, which only systemd knows in advance.
	 */
	setenv("NOTIFY_SOCKET", notify_path, 1);
	setenv("WATCHDOG_USEC", "1000000", 1);
	unsetenv("WATCHDOG_PID");
}

static void notify_teardown(void)
{
	rdo_harness_cleanup();
	atomic_store_explicit(&rx_stop, true, memory_order_relaxed); /* orders nothing */
	pthread_join(rx_thread, NULL);
	close(notify_fd);
	unlink(notify_path);
	rmdir(notify_dir);
}

/* The value of `field` (e.g. "STATUS") in message `m`, up to the line's end; NULL if absent. */
static const char *field(const char *m, const char *name, char *val, size_t len)
{
	size_t nl = strlen(name);
	for (const char *p = m; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, name, nl) == 0 && p[nl] == '=') {
			snprintf(val, len, "%.*s", (int)strcspn(p + nl + 1, "\n"), p + nl + 1);
			return val;
		}
	}
	return NULL;
}

/* A copy of message `i`, or false if there is none yet. */
static bool message(unsigned i, struct rx_msg *out)
{
	pthread_mutex_lock(&rx.lock);
	bool got = i < rx.n;
	if (got)
		*out = rx.msg[i];
	pthread_mutex_unlock(&rx.lock);
	return got;
}

/*
 * The index of the first message from `from` on that has `name`=`value`
 * (value NULL: any), waiting up to `timeout_s`; -1 if none came.
 */
static int wait_for(unsigned from, const char *name, const char *value, double timeout_s)
{
	double end = now() + timeout_s;
	struct rx_msg m;
	char val[sizeof(m.text)];
	for (unsigned i = from;;) {
		if (message(i, &m)) {
			if (field(m.text, name, val, sizeof(val)) &&
			    (!value || !strcmp(val, value)))
				return (int)i;
			i++;
			continue;
		}
		if (now() > end)
			return -1;
		usleep(10000);
	}
}

static char *all_messages(void)
{
	static char all[32768];
	size_t len = 0;
	all[0] = '\0';
	pthread_mutex_lock(&rx.lock);
	for (unsigned i = 0; i < rx.n && len < sizeof(all) - 1; i++) {
		int w = snprintf(all + len, sizeof(all) - len, "[%u] %s\n", i, rx.msg[i].text);
		len += w > 0 ? (size_t)w : 0;
	}
	pthread_mutex_unlock(&rx.lock);
	return all;
}

/* readoutd acquiring on the emulated card, with the notify socket and a 1 s watchdog. */
static void start_acquiring(void)
{
	static const char *const set[] = {"dma.autostart=true", "status.log_interval_s=1", NULL};
	struct rdo_daemon_opts opts = {.set = set};
	cr_assert_eq(rdo_daemon_start_opts(&d, &opts), 0, "readoutd did not start:\n%s",
		     rdo_daemon_log(&d));
}

TestSuite(notify, .init = notify_setup, .fini = notify_teardown, .timeout = 60);

Test(notify, ready_status_and_watchdog)
{
	start_acquiring();
	int ready = wait_for(0, "READY", "1", 5);
	cr_assert_geq(ready, 0, "no READY=1; got:\n%s", all_messages());
	struct rx_msg m;
	message((unsigned)ready, &m);
	char status[sizeof(m.text)];
	cr_assert_not_null(field(m.text, "STATUS", status, sizeof(status)),
			   "READY=1 without STATUS=: \"%s\"", m.text);
	cr_assert_gt(strlen(status), 0, "empty STATUS= with READY=1");

	/* Pings at half the 1 s interval: at least two in the first 2 s of acquisition. */
	double t_ready = m.t;
	usleep(2500000);
	unsigned pings = 0;
	for (unsigned i = (unsigned)ready + 1; message(i, &m); i++)
		if (m.t <= t_ready + 2.0 && field(m.text, "WATCHDOG", status, sizeof(status)))
			pings += strcmp(status, "1") == 0;
	cr_assert_geq(pings, 2, "%u WATCHDOG=1 in 2 s after READY=1; got:\n%s", pings,
		      all_messages());

	/* The summary keeps up: a STATUS= of its own after READY=1. */
	int update = -1;
	for (unsigned i = (unsigned)ready + 1; update < 0 && message(i, &m); i++)
		if (!field(m.text, "READY", status, sizeof(status)) &&
		    field(m.text, "STATUS", status, sizeof(status)))
			update = (int)i;
	if (update < 0)
		update = wait_for((unsigned)ready + 1, "STATUS", NULL, 5);
	cr_assert_geq(update, 0, "no STATUS= update after READY=1; got:\n%s", all_messages());

	cr_assert_eq(rdo_daemon_stop(&d), 0, "readoutd exited with %d:\n%s", d.exit_status,
		     rdo_daemon_log(&d));
}

Test(notify, reload)
{
	start_acquiring();
	int ready = wait_for(0, "READY", "1", 5);
	cr_assert_geq(ready, 0, "no READY=1; got:\n%s", all_messages());

	double before = now();
	kill(d.pid, SIGHUP);
	int reloading = wait_for((unsigned)ready + 1, "RELOADING", "1", 5);
	cr_assert_geq(reloading, 0, "no RELOADING=1 after SIGHUP; got:\n%s", all_messages());
	struct rx_msg m;
	message((unsigned)reloading, &m);
	char usec[64];
	cr_assert_not_null(field(m.text, "MONOTONIC_USEC", usec, sizeof(usec)),
			   "RELOADING=1 without MONOTONIC_USEC=: \"%s\"", m.text);
	double t = strtod(usec, NULL) / 1e6;
	cr_assert(t >= before - 0.01 && t <= m.t + 0.01,
		  "MONOTONIC_USEC=%s is not the time of the reload (%.3f to %.3f s)", usec, before,
		  m.t);

	int reloaded = wait_for((unsigned)reloading + 1, "READY", "1", 10);
	cr_assert_geq(reloaded, 0, "no READY=1 after RELOADING=1; got:\n%s", all_messages());
	cr_assert(rdo_daemon_alive(&d), "readoutd died at SIGHUP:\n%s", rdo_daemon_log(&d));

	/* Still acquiring and healthy: the watchdog pings go on. */
	cr_assert_geq(wait_for((unsigned)reloaded + 1, "WATCHDOG", "1", 2), 0,
		      "no WATCHDOG=1 after the reload; got:\n%s", all_messages());
	cr_assert_eq(rdo_daemon_stop(&d), 0, "readoutd exited with %d:\n%s", d.exit_status,
		     rdo_daemon_log(&d));
}

Test(notify, stopping)
{
	start_acquiring();
	int ready = wait_for(0, "READY", "1", 5);
	cr_assert_geq(ready, 0, "no READY=1; got:\n%s", all_messages());

	cr_assert_eq(rdo_daemon_stop(&d), 0, "readoutd exited with %d at SIGTERM:\n%s",
		     d.exit_status, rdo_daemon_log(&d));
	int stopping = wait_for((unsigned)ready + 1, "STOPPING", "1", 2);
	cr_assert_geq(stopping, 0, "no STOPPING=1 at SIGTERM; got:\n%s", all_messages());
	struct rx_msg m;
	message((unsigned)stopping, &m);
	char status[sizeof(m.text)];
	cr_assert_not_null(field(m.text, "STATUS", status, sizeof(status)),
			   "STOPPING=1 without STATUS=: \"%s\"", m.text);
	cr_assert_lt(wait_for((unsigned)stopping + 1, "READY", "1", 0.2), 0,
		     "READY=1 after STOPPING=1; got:\n%s", all_messages());
}
