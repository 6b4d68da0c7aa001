#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "service/service.h"

/* A listener standing in for systemd: a datagram socket NOTIFY_SOCKET names. */
static char dir[64];
static char sock_path[96];
static int listener = -1;

static void listen_setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rdo-test-service-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/notify", dir);
	listener = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(listener, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock_path);
	cr_assert_eq(bind(listener, (struct sockaddr *)&sa, sizeof(sa)), 0, "bind %s: %s",
		     sock_path, strerror(errno));
	struct timeval tv = {.tv_sec = 2};
	setsockopt(listener, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setenv("NOTIFY_SOCKET", sock_path, 1);
	unsetenv("WATCHDOG_USEC");
	unsetenv("WATCHDOG_PID");
}

static void listen_teardown(void)
{
	if (listener >= 0)
		close(listener);
	listener = -1;
	unlink(sock_path);
	rmdir(dir);
}

/* The next datagram, as a string; fails the test when none comes within 2 s. */
static const char *next_message(void)
{
	static char buf[4096];
	ssize_t n = recv(listener, buf, sizeof(buf) - 1, 0);
	cr_assert_gt(n, 0, "no notification within 2 s: %s", strerror(errno));
	buf[n] = '\0';
	return buf;
}

static void assert_no_message(void)
{
	char buf[64];
	cr_assert_lt(recv(listener, buf, sizeof(buf), MSG_DONTWAIT), 0, "unexpected notification");
}

TestSuite(service, .init = listen_setup, .fini = listen_teardown);

Test(service, ready_with_status)
{
	rdo_service_ready("2 cards open, acquiring");
	cr_assert_str_eq(next_message(), "READY=1\nSTATUS=2 cards open, acquiring");
	rdo_service_ready(NULL);
	cr_assert_str_eq(next_message(), "READY=1");
	assert_no_message();
}

Test(service, status_is_printf_and_one_line)
{
	rdo_service_status("%u cards, %s, %.1f MB/s", 2u, "acquiring", 99.5);
	cr_assert_str_eq(next_message(), "STATUS=2 cards, acquiring, 99.5 MB/s");
	rdo_service_status("line one\nREADY=1");
	cr_assert_str_eq(next_message(), "STATUS=line one READY=1");
	rdo_service_ready("a\nb");
	cr_assert_str_eq(next_message(), "READY=1\nSTATUS=a b");
}

Test(service, long_status_is_cut)
{
	char big[2048];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	rdo_service_status("%s", big);
	const char *m = next_message();
	cr_assert_eq(strncmp(m, "STATUS=xxx", 10), 0);
	cr_assert_lt(strlen(m), sizeof(big));
}

static unsigned long long monotonic_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
}

Test(service, reload)
{
	unsigned long long before = monotonic_usec();
	rdo_service_reloading();
	unsigned long long after = monotonic_usec();
	const char *m = next_message();
	const char *prefix = "RELOADING=1\nMONOTONIC_USEC=";
	cr_assert_eq(strncmp(m, prefix, strlen(prefix)), 0, "got \"%s\"", m);
	char *end;
	unsigned long long usec = strtoull(m + strlen(prefix), &end, 10);
	cr_assert_eq(*end, '\0', "got \"%s\"", m);
	cr_assert(usec >= before && usec <= after, "MONOTONIC_USEC=%llu not in [%llu, %llu]", usec,
		  before, after);
	rdo_service_reloaded("reloaded: 1 map, 3 keys");
	cr_assert_str_eq(next_message(), "READY=1\nSTATUS=reloaded: 1 map, 3 keys");
}

Test(service, stopping)
{
	rdo_service_stopping("stopping: draining 2 cards");
	cr_assert_str_eq(next_message(), "STOPPING=1\nSTATUS=stopping: draining 2 cards");
	rdo_service_stopping(NULL);
	cr_assert_str_eq(next_message(), "STOPPING=1");
}

Test(service, watchdog)
{
	rdo_service_watchdog();
	cr_assert_str_eq(next_message(), "WATCHDOG=1");
	rdo_service_watchdog();
	cr_assert_str_eq(next_message(), "WATCHDOG=1");
	assert_no_message();
}

Test(service, watchdog_interval)
{
	cr_assert_eq(rdo_service_watchdog_usec(), 0, "no WATCHDOG_USEC: no watchdog");

	char pid[32];
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("WATCHDOG_USEC", "2000000", 1);
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(rdo_service_watchdog_usec(), 2000000);

	/* Without WATCHDOG_PID the interval is for whoever reads it (the integration test's case).
	 */
	unsetenv("WATCHDOG_PID");
	cr_assert_eq(rdo_service_watchdog_usec(), 2000000);

	/* Meant for another process (the shell that exec'd us, say): not ours. */
	snprintf(pid, sizeof(pid), "%d", (int)getppid());
	setenv("WATCHDOG_PID", pid, 1);
	cr_assert_eq(rdo_service_watchdog_usec(), 0);
}

/* stderr into a file for the duration of `fn`; returns what was written (static). */
static const char *capture_stderr(void (*fn)(void))
{
	static char out[8192];
	char path[] = "/tmp/rdo-test-service-err-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	unlink(path);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	fn();
	dup2(saved, STDERR_FILENO);
	close(saved);
	ssize_t n = pread(fd, out, sizeof(out) - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	return out;
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void call_everything(void)
{
	rdo_service_ready("ready");
	rdo_service_status("status %d", 1);
	rdo_service_reloading();
	rdo_service_reloaded("reloaded");
	rdo_service_watchdog();
	rdo_service_watchdog();
	rdo_service_stopping("stopping");
}

Test(service, without_notify_socket_all_are_noops)
{
	unsetenv("NOTIFY_SOCKET");
	const char *err = capture_stderr(call_everything);
	cr_assert_str_eq(err, "", "logged: %s", err);
	cr_assert_eq(rdo_service_watchdog_usec(), 0);
	assert_no_message();
}

Test(service, send_failure_is_logged_once)
{
	char gone[160];
	snprintf(gone, sizeof(gone), "%s/no-such-socket", dir);
	setenv("NOTIFY_SOCKET", gone, 1);
	const char *err = capture_stderr(call_everything);
	cr_assert_eq(count(err, "cannot notify systemd"), 1, "logged: %s", err);
	cr_assert_neq(strstr(err, "<4>"), NULL, "a warning: %s", err);
	cr_assert_neq(strstr(err, gone), NULL, "names the socket: %s", err);
}

static void read_bad_interval(void)
{
	setenv("WATCHDOG_USEC", "soon", 1);
	cr_assert_eq(rdo_service_watchdog_usec(), 0);
}

Test(service, bad_watchdog_interval_is_logged)
{
	const char *err = capture_stderr(read_bad_interval);
	cr_assert_neq(strstr(err, "WATCHDOG_USEC=soon"), NULL, "logged: %s", err);
}
