/*
 * What the benchmarks (tests/bench/bench_*.c) share: sleeping and timing,
 * the figure line they all print, a readoutd on the emulated card started,
 * driven and stopped through the harness (harness.h), a number out of a
 * JSON text, and the CPU time of a process's threads.
 *
 * Messages on stderr start with the program's name ("bench_data: ...").
 * Not thread-safe, like the harness: the benches call it from their main
 * thread only.
 */
#ifndef RDO_BENCHLIB_H
#define RDO_BENCHLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness.h"

void bench_sleep_ms(long ms);

/* Seconds from `t0` (rdo_now_ns()) to now. */
double bench_seconds_since(uint64_t t0);

/*
 * Print "bench <name> <value> <unit> baseline <baseline> ratio <value/baseline>"
 * on stdout, value and baseline with `decimals`, and flush: a bench that
 * fails later still leaves its earlier figures.
 */
void bench_print_figure(const char *name, double value, const char *unit, double baseline,
			int decimals);

/* "64KiB", "1MiB": a superpage size for a figure's name, into `buf`; returns `buf`. */
const char *bench_size_name(char *buf, size_t len, size_t bytes);

/* What varies between the readoutds the benches start. Zero-initialise, then set. */
struct bench_daemon_cfg {
	size_t superpage_size;
	unsigned superpages;
	const char *links; /* dma.links: "all" or a list */
	uint64_t rate;	   /* card.sim.rate in bytes/s; 0: as fast as the host takes it */
	bool header_only;  /* card.sim.header_only: the card writes one page header a superpage */
	bool live, lossless;
	unsigned live_hwm; /* live.hwm; 0: readoutd's default */
	bool autostart;
	/* More "section.key=value" settings (harness.h), NULL-terminated; may be NULL. */
	const char *const *set;
};

/*
 * Start a readoutd on the emulated card (12 links, the repository's map) for
 * `c`, its status summary line off. The harness gives it a card address of
 * its own and every socket on a free loopback port. 0, or -1 with the reason
 * on stderr (and nothing left running).
 */
int bench_daemon_start(struct rdo_daemon *d, const struct bench_daemon_cfg *c);

/* Stop the daemon; -1, said on stderr, unless it ran all along and exited cleanly. */
int bench_daemon_stop(struct rdo_daemon *d);

/* Run `readoutctl -e CONTROL <command>` (printf-style) against the daemon: 0 or -1, said. */
int bench_daemon_ctl(struct rdo_daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/*
 * `readoutctl --json status` of the daemon: its text, valid until the next
 * call, or NULL with the reason on stderr.
 */
const char *bench_daemon_status(struct rdo_daemon *d);

/*
 * Where the value of the first `"key":` at or after `text` starts (spaces
 * around the colon allowed, as fio prints them), or NULL. A plain text
 * search: the first match in document order, whatever its depth, so callers
 * search from inside the object they mean.
 */
const char *bench_json_find(const char *text, const char *key);

/* The number after the first `"key":` at or after `text`: 0, or -1 if none. */
int bench_json_number(const char *text, const char *key, double *v);

/* CPU seconds of a process's threads so far: the card emulator's ("rdo-sim"), and the rest. */
struct bench_cpu {
	double server_s, sim_s;
};

/* Sum the process's threads from /proc: 0, or -1 if the process is gone. */
int bench_thread_cpu(pid_t pid, struct bench_cpu *s);

#endif
