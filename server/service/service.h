/*
 * systemd's service notification protocol (sd_notify(3)): readoutd tells the
 * service manager when it is ready, reloading or stopping, keeps a one-line
 * STATUS= up to date (systemctl status shows it) and pings the watchdog.
 *
 * Every call is a no-op when NOTIFY_SOCKET is unset (readoutd started by hand,
 * or by the tests), so callers need not check. A failing send is logged once,
 * as a warning, and otherwise ignored: notification is best effort, and a
 * daemon that cannot reach systemd still serves. The environment is left as
 * it is (NOTIFY_SOCKET stays set).
 *
 * Thread-safe: any thread may call any function (the watchdog pings usually
 * come from the health check's thread, the others from the main thread).
 */
#ifndef RDO_SERVICE_H
#define RDO_SERVICE_H

#include <stdint.h>

/* READY=1 with STATUS=`status` (NULL: none): cards open, sockets bound. */
void rdo_service_ready(const char *status);

/*
 * STATUS=<printf>: the one-line summary, at start-up and while running. A
 * newline in the result becomes a space: a line break would end the field.
 */
void rdo_service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * At SIGHUP: RELOADING=1 with MONOTONIC_USEC= (CLOCK_MONOTONIC now, which
 * systemd 253's Type=notify-reload requires and older versions ignore), then
 * rdo_service_reloaded() once the reload is done: READY=1 with
 * STATUS=`status` (NULL: none).
 */
void rdo_service_reloading(void);
void rdo_service_reloaded(const char *status);

/* At SIGTERM: STOPPING=1 with STATUS=`status` (NULL: none). */
void rdo_service_stopping(const char *status);

/*
 * The watchdog interval systemd asks for (WatchdogSec=, passed as
 * WATCHDOG_USEC and, when set, WATCHDOG_PID naming this process), in
 * microseconds; 0: no watchdog. The daemon pings at half of it, and only when
 * its health check passes, so that systemd restarts a daemon whose DMA stalls.
 */
uint64_t rdo_service_watchdog_usec(void);

/* WATCHDOG=1. */
void rdo_service_watchdog(void);

#endif
