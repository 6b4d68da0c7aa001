/*
 * Test harness: start a real readoutd on the emulated card in a temporary
 * folder, learn its bound endpoints from its "ready:" log line, run
 * readoutctl against it, and stop it. Used by the integration tests and the
 * benchmarks. Not thread-safe.
 */
#ifndef RDO_HARNESS_H
#define RDO_HARNESS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct rdo_daemon {
	pid_t pid;
	char dir[64];		 /* temporary folder: config.yaml, readoutd.log */
	char config[PATH_MAX];
	char log[PATH_MAX];
	char tcp[256];		 /* bound control endpoints, from the ready line */
	char ipc[256];
	int exit_status;	 /* after rdo_daemon_stop, or a failed start */
};

/*
 * The config used when none is given: the emulated card with the repository's
 * map, control on a free loopback port and an ipc socket in the folder.
 * In a config text, @MAP@ stands for the repository's config/regmaps folder and
 * @DIR@ for the temporary folder.
 */
extern const char rdo_default_test_config[];

/*
 * Write `config` (NULL: the default) and start readoutd with it and `args`
 * (NULL-terminated, may be NULL). 0 once it is ready; -1 if it exited first
 * (exit_status and the log tell why) or was not ready within 10 s.
 */
int rdo_daemon_start(struct rdo_daemon *d, const char *config, const char *const *args);

/* Is the daemon still running? */
bool rdo_daemon_alive(struct rdo_daemon *d);

/*
 * SIGTERM, wait (at most 10 s, then SIGKILL); returns the exit status, -1 if
 * killed. After a clean exit (0) the temporary folder is removed.
 */
int rdo_daemon_stop(struct rdo_daemon *d);

/* Remove the temporary folder of a daemon that is not running. */
void rdo_daemon_cleanup(struct rdo_daemon *d);

/* The daemon's log so far; caller frees. */
char *rdo_daemon_log(const struct rdo_daemon *d);

/* Output of a command run with rdo_run. */
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

/*
 * Paths of the build, for tests that exec binaries themselves. $RDO_BIN_DIR
 * overrides the bin folder (make tsan points it at the TSan daemon).
 */
const char *rdo_bin_dir(void);
const char *rdo_source_dir(void);

#endif
