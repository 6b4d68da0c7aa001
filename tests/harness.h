/*
 * Test harness: start a real readoutd on the emulated card in a temporary
 * folder, learn its bound endpoints from its "ready:" log line, run
 * readoutctl and the other clients against it, and stop it. Used by the
 * integration tests and the benchmarks. Not thread-safe.
 *
 * Isolation: every daemon the harness starts owns a card and endpoints no
 * other daemon uses, whatever runs beside it (other tests, a developer's
 * readoutd on the default ports). Unless the config text sets them, the
 * harness fills in
 *   card.address            the temporary folder (the card's owner lock is
 *                           named after backend and address); a config with
 *                           a cards list gives each card its own address
 *   control/live/lossless/status.bind
 *                           tcp://127.0.0.1:* and ipc://DIR/ctl, /live,
 *                           /lossless, /status
 *   metrics.bind            127.0.0.1:0 (any free port)
 * A config text may still name fixed endpoints or an address on purpose.
 */
#ifndef RDO_HARNESS_H
#define RDO_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RDO_EP_MAX 256

struct rdo_daemon {
	pid_t pid;
	char dir[64]; /* temporary folder: config.yaml, readoutd.log */
	char config[PATH_MAX];
	char log[PATH_MAX];
	/* Bound endpoints, from the ready line; "" when a stream is off or has none of the kind. */
	char tcp[RDO_EP_MAX]; /* control */
	char ipc[RDO_EP_MAX];
	char live_tcp[RDO_EP_MAX];
	char live_ipc[RDO_EP_MAX];
	char lossless_tcp[RDO_EP_MAX];
	char lossless_ipc[RDO_EP_MAX];
	char status_tcp[RDO_EP_MAX];
	char status_ipc[RDO_EP_MAX];
	char metrics[RDO_EP_MAX]; /* http://HOST:PORT/metrics; "" when off */
	int exit_status;	  /* after rdo_daemon_stop, or a failed start */
};

/*
 * The config used when none is given: the emulated card with the repository's
 * map, control on a free loopback port and an ipc socket in the folder, and
 * acquisition idle until started (readoutd's default starts it at once, at
 * 100 MB/s over 12 links, which a test of registers only pays for).
 * In a config text, @MAP@ stands for the repository's config/regmaps folder and
 * @DIR@ for the temporary folder.
 */
extern const char rdo_default_test_config[];

/* How to start a daemon. Zero-initialise, then set what the test needs. */
struct rdo_daemon_opts {
	const char *config;	 /* NULL: rdo_default_test_config */
	const char *const *args; /* extra arguments, NULL-terminated; may be NULL */
	/*
	 * "section.key=value" settings applied over the config text, replacing
	 * or adding the key: { "dma.autostart=false", "status.log_interval_s=1",
	 * NULL }. Top-level sections only; NULL-terminated; may be NULL.
	 */
	const char *const *set;
	/*
	 * Write the config as it is, @MAP@ and @DIR@ expanded, without the
	 * isolation above: for a text that is not valid YAML, whose error
	 * position must not move. Such a daemon must never get to serve.
	 */
	bool verbatim;
};

/*
 * Write the config (with the isolation above and `o->set` applied) and start
 * readoutd with it. 0 once it is ready; -1 if it exited first (exit_status and
 * the log tell why) or was not ready within 10 s.
 */
int rdo_daemon_start_opts(struct rdo_daemon *d, const struct rdo_daemon_opts *o);

/* rdo_daemon_start_opts with only a config text (NULL: the default) and arguments. */
int rdo_daemon_start(struct rdo_daemon *d, const char *config, const char *const *args);

/* Is the daemon still running? */
bool rdo_daemon_alive(struct rdo_daemon *d);

/*
 * SIGTERM, wait (at most 10 s, then SIGKILL); returns the exit status, -1 if
 * killed. After a clean exit (0) the temporary folder is removed.
 */
int rdo_daemon_stop(struct rdo_daemon *d);

/* Milliseconds of CLOCK_MONOTONIC, and a sleep: what the tests' polling loops use. */
uint64_t rdo_now_ms(void);
void rdo_sleep_ms(long ms);

/* Remove the temporary folder of a daemon that is not running. */
void rdo_daemon_cleanup(struct rdo_daemon *d);

/* The daemon's log so far; caller frees. */
char *rdo_daemon_log(const struct rdo_daemon *d);

/* Output of a command run with rdo_run or rdo_proc_wait. */
struct rdo_output {
	int status; /* exit status, or -1 */
	char out[65536];
	char err[8192];
};

/*
 * Run a shell command (printf-style) with the build's bin folder first in
 * PATH, capturing stdout and stderr. Returns the exit status.
 */
int rdo_run(struct rdo_output *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A shell command running in the background, in its own process group. */
struct rdo_proc {
	pid_t pid; /* of the shell, which leads the group; -1 once reaped */
	char out[64], err[64];
};

/* Start a command as rdo_run would, without waiting: 0, or -1 if it could not start. */
int rdo_spawn(struct rdo_proc *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Wait up to `timeout_ms` (-1: no limit) for a spawned command, then collect
 * its output into `o` (may be NULL). Returns its exit status; on timeout the
 * group gets SIGKILL and the result is -1.
 */
int rdo_proc_wait(struct rdo_proc *p, struct rdo_output *o, int timeout_ms);

/* Send `sig` to a spawned command's process group, if it still runs. */
void rdo_proc_signal(struct rdo_proc *p, int sig);

/*
 * End every daemon (SIGTERM, then SIGKILL after 5 s) and spawned command
 * (SIGKILL) still running: for a suite's .fini, when an assertion cut a test
 * short. Their folders stay for the post-mortem.
 */
void rdo_harness_cleanup(void);

/*
 * Paths of the build, for tests that exec binaries themselves. $RDO_BIN_DIR
 * overrides the bin folder (make tsan points it at the TSan daemon).
 */
const char *rdo_bin_dir(void);
const char *rdo_source_dir(void);

#endif
