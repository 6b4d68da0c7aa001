#include "service/service.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "common/log.h"

/* A STATUS= line longer than this is cut: systemctl status shows one line anyway. */
#define STATUS_MAX 512

static atomic_bool warned;

/*
 * Send `msg` and warn about the first failure only: a daemon whose notify
 * socket went away would otherwise log at every watchdog ping.
 */
static void notify(const char *msg)
{
	int rc = sd_notify(0, msg);
	if (rc >= 0)
		return;
	/* relaxed: orders nothing, only makes the warning happen once */
	if (atomic_exchange_explicit(&warned, true, memory_order_relaxed))
		return;
	const char *sock = getenv("NOTIFY_SOCKET");
	rdo_warn("cannot notify systemd (%.*s) on NOTIFY_SOCKET %s: %s; further failures are not "
		 "logged",
		 (int)strcspn(msg, "\n"), msg, sock ? sock : "(unset)", strerror(-rc));
}

/* `state` alone, or `state`\nSTATUS=`status` with the status on one line. */
static void notify_with_status(const char *state, const char *status)
{
	if (!status) {
		notify(state);
		return;
	}
	char msg[STATUS_MAX + 64];
	int n = snprintf(msg, sizeof(msg), "%s\nSTATUS=%s", state, status);
	if (n < 0)
		return;
	for (char *p = msg + strlen(state) + 1; *p; p++)
		if (*p == '\n')
			*p = ' ';
	notify(msg);
}

void rdo_service_ready(const char *status)
{
	notify_with_status("READY=1", status);
}

void rdo_service_status(const char *fmt, ...)
{
	char status[STATUS_MAX];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	char msg[STATUS_MAX + 16];
	snprintf(msg, sizeof(msg), "STATUS=%s", status);
	for (char *p = msg; *p; p++)
		if (*p == '\n')
			*p = ' ';
	notify(msg);
}

void rdo_service_reloading(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	unsigned long long usec =
	    (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000u;
	char msg[64];
	snprintf(msg, sizeof(msg), "RELOADING=1\nMONOTONIC_USEC=%llu", usec);
	notify(msg);
}

void rdo_service_reloaded(const char *status)
{
	notify_with_status("READY=1", status);
}

void rdo_service_stopping(const char *status)
{
	notify_with_status("STOPPING=1", status);
}

uint64_t rdo_service_watchdog_usec(void)
{
	uint64_t usec = 0;
	int rc = sd_watchdog_enabled(0, &usec);
	if (rc < 0) {
		const char *v = getenv("WATCHDOG_USEC");
		const char *pid = getenv("WATCHDOG_PID");
		rdo_warn("systemd's watchdog settings WATCHDOG_USEC=%s WATCHDOG_PID=%s are not "
			 "valid (%s): running without the watchdog",
			 v ? v : "(unset)", pid ? pid : "(unset)", strerror(-rc));
		return 0;
	}
	return rc > 0 ? usec : 0;
}

void rdo_service_watchdog(void)
{
	notify("WATCHDOG=1");
}
