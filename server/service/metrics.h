/*
 * The metrics endpoint: the status stream's counters over HTTP, in the
 * Prometheus text exposition format (version 0.0.4), so that a site's
 * Prometheus scrapes readoutd with no glue. libmicrohttpd serves it from one
 * internal thread (the metrics thread):
 *   GET /metrics  200, text/plain; version=0.0.4: every card's status
 *   GET /         a short page pointing at /metrics
 *   other paths 404, other methods than GET and HEAD 405.
 *
 * The metrics do not know the cards: each scrape asks a callback for the
 * status of card 0, 1, ... until it answers -ENOENT, and another one for the
 * daemon-wide counters. Rates are not exported: Prometheus computes them
 * from the counters (rate()).
 *
 * Names (all readoutd_*, labels card="NAME", link="N", sink="NAME"):
 *   readoutd_build_info{version}, readoutd_start_time_seconds,
 *   readoutd_control_requests_served_total, readoutd_control_requests_refused_total,
 *   readoutd_connections_refused_total, readoutd_reloads_total;
 *   per card: readoutd_dma_state{state}, readoutd_run_number, readoutd_superpages_total,
 *   readoutd_bytes_total, readoutd_dropped_pages_total, readoutd_dropped_bytes_total,
 *   readoutd_errors_total, readoutd_fifo_overflows_total,
 *   readoutd_unclaimed_superpages_total, readoutd_events_lost_total,
 *   readoutd_pool_superpages{place}, readoutd_pool_capacity_superpages,
 *   readoutd_superpage_size_bytes, readoutd_pool_memory_info{memory},
 *   readoutd_temperature_celsius, readoutd_acquisition_uptime_seconds;
 *   per link: readoutd_link_{enabled,up,stalled}, readoutd_link_superpages_total,
 *   readoutd_link_bytes_total, readoutd_link_pages_total, readoutd_link_dropped_pages_total,
 *   readoutd_link_dropped_bytes_total, readoutd_link_in_card_superpages;
 *   per sink: readoutd_sink_superpages_total, readoutd_sink_bytes_total,
 *   readoutd_sink_dropped_superpages_total, readoutd_sink_queued_superpages,
 *   readoutd_sink_consumers; sinks with a state (the writer): readoutd_writer_state{state},
 *   readoutd_writer_files_total, readoutd_writer_errors_total.
 *
 * Thread-safety: create and destroy from one thread. The callbacks run on the
 * metrics thread only, one scrape at a time, never after destroy returns.
 */
#ifndef RDO_METRICS_H
#define RDO_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDO_DEFAULT_METRICS_BIND "127.0.0.1:5574"

/* What config sets (the metrics: section). Plain value. */
struct rdo_metrics_opts {
	bool enabled;	/* default true; the caller checks it: create ignores it */
	char bind[128]; /* "HOST:PORT", "[IPv6]:PORT"; default 127.0.0.1:5574; port 0: any free */
};

void rdo_metrics_opts_init(struct rdo_metrics_opts *o);

/*
 * Is `bind` a form rdo_metrics_create() takes: an IPv4 address, a bracketed
 * IPv6 address or a host name, a colon, a port 0..65535? 0, or -EINVAL with
 * the reason and the expected form in `err` (for config's messages). Names
 * are resolved (getaddrinfo) by create, not here.
 */
int rdo_metrics_bind_check(const char *bind, char *err, size_t errlen);

struct rdo_status_msg;

/*
 * Fill `m` (zeroed, owned by the metrics) with card i's status. Returns 0,
 * or -ENOENT past the last card; any other negative value skips card i this
 * scrape. The strings and arrays `m` points at must stay valid until the
 * scrape ends: rdo_status_fill()'s point into `m` itself or at constants.
 */
typedef int (*rdo_metrics_fill_fn)(void *arg, unsigned i, struct rdo_status_msg *m);

/* Daemon-wide counters beside the cards'. Plain value. */
struct rdo_metrics_daemon {
	uint64_t requests_served, requests_refused; /* control requests */
	uint64_t connections_refused;		    /* by the authentication handler */
	uint64_t reloads;			    /* SIGHUP reloads done */
	uint64_t start_time_s;			    /* CLOCK_REALTIME when readoutd started */
};

/* Fill `d` (zeroed before the call). */
typedef void (*rdo_metrics_daemon_fn)(void *arg, struct rdo_metrics_daemon *d);

/* At most this many cards per scrape: a fill that never says -ENOENT stops here. */
#define RDO_METRICS_MAX_CARDS 64

/*
 * The exposition text of the daemon and every card, NUL-terminated; its
 * length (without the NUL) in `*len` when `len` is not NULL. Caller owns the
 * result (free()). NULL on out of memory. `daemon` may be NULL: no daemon
 * metrics. Calls `fill` and `daemon` from the calling thread.
 */
char *rdo_metrics_render(rdo_metrics_fill_fn fill, rdo_metrics_daemon_fn daemon, void *arg,
			 size_t *len);

struct rdo_metrics;

/*
 * Serve the metrics on o->bind from the metrics thread, which calls `fill`
 * and `daemon` (may be NULL) with `arg` on each scrape; `arg` must outlive
 * the metrics. Logs why and returns NULL on failure (an address in use names
 * it and the fix). libmicrohttpd's own messages go to the log, rate-limited.
 */
struct rdo_metrics *rdo_metrics_create(const struct rdo_metrics_opts *o, rdo_metrics_fill_fn fill,
				       rdo_metrics_daemon_fn daemon, void *arg);

/* Stop serving (waits for a scrape in progress) and free. */
void rdo_metrics_destroy(struct rdo_metrics **m);

/* "http://HOST:PORT/metrics" as bound, the port resolved when 0; owned by `m`. */
const char *rdo_metrics_url(const struct rdo_metrics *m);

#endif
