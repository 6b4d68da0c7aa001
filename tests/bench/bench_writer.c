/*
 * readoutd's disk writer (the writer sink, server/sinks/disk.c on server/common/writer.c)
 * next to fio writing the same way, measured in the same run.
 *
 * Local writer: a readoutd on the emulated card writes every superpage into
 * .rdo files. The card fills superpages as fast as the writer gives them
 * back (card.sim.rate 0) and writes only one page header per superpage
 * (header_only), so that the emulator does not take a core of the two
 * writing payload bytes; the writer still CRCs and writes every byte of
 * every superpage. GB/s are the writer's payload bytes from its status
 * (readoutctl status --json, over the server's clock); CPU per GB is that of
 * readoutd's threads but the emulator's ("rdo-sim"), from /proc.
 *
 * The baseline is fio with the writer's own way of writing: libaio,
 * O_DIRECT, 4 MiB writes, 8 in flight, one file written from the start. Its
 * GB/s is its write bandwidth, its CPU per GB its own usr+sys time per GB.
 *
 * Where: $RDO_BENCH_DIR, else build/bench-data in the source tree (created).
 * It must be on the disk to measure, not tmpfs, where both sides would copy
 * memory. The bench works in a folder of its own in there and removes it
 * and every file in it; it skips (exit 0, saying why) when less than
 * MIN_FREE is free there, and bounds each block's files by the space there
 * is (block_budget).
 *
 * A shared 2-core machine is noisy, so readoutd and fio run in alternating
 * blocks, each after a warm-up, and each side is pooled over its blocks;
 * acquisition is stopped and the files deleted between blocks.
 *
 * Remote writer: readout-writer, another process, takes a second readoutd's
 * lossless stream over tcp loopback and writes it into the same folder; that
 * readoutd has no writer of its own, and its card runs as the local one's.
 * GB/s are the lossless stream's payload bytes from readoutd's status:
 * readoutd sends a superpage only for a credit readout-writer returns once
 * the superpage is on disk, so what is sent is what is written, give or take
 * the 64 buffers in flight. A new readout-writer starts for each block and
 * is stopped with SIGTERM at its end; its JSON summary must show nothing
 * lost. CPU per GB, over the same window: readoutd's threads but the
 * emulator's, and every thread of readout-writer.
 *
 * The remote writer's baselines: fio's GB/s, as for the local writer; for
 * readoutd's CPU, a plain libzmq PUSH sending buffers of the superpage size
 * zero-copy over tcp loopback from as much memory as the pool, in a child
 * process; for readout-writer's CPU, the PULL that receives them (and only
 * frees them) in this process, plus fio's CPU per GB: receiving and writing,
 * each done alone.
 *
 * The four kinds of block (local, fio, remote, plain libzmq) take turns,
 * each round starting one kind later.
 *
 * Prints, per figure: "bench <name> <value> <unit> baseline <value> ratio <value>".
 * Exits 1 when fio is not on PATH or fails, when a daemon fails, or when a
 * writer loses a superpage or reports an error.
 */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/benchlib.h"
#include "common/util.h"

#define MIB (1024u * 1024u)
#define GB  1e9

#define MIN_FREE	8e9  /* bytes free in the bench folder, or the bench is skipped */
#define RESERVE		2e9  /* left free for everything else on that disk */
#define BLOCK_BYTES_MAX 12e9 /* the most one block's files may take */

#define ROUNDS	   3
#define WARM_MS	   500
#define BLOCK_MS   2000
#define POLL_MS	   250	 /* status polls in a readoutd block, to stop it within its budget */
#define IDLE_MS	   30000 /* the most a stopped writer may take to write what it holds */
#define SUPERPAGES 256
#define SP_SIZE	   MIB

#ifndef TMPFS_MAGIC
#define TMPFS_MAGIC 0x01021994
#endif

/* The bench's folder, and what it created. */
struct place {
	char dir[PATH_MAX];	  /* the folder of its own, where both sides write */
	char base[PATH_MAX - 64]; /* the bench folder it is in */
	bool made_base;
};

/* A side's totals over its blocks. */
struct tally {
	double bytes, seconds, cpu_s;
	unsigned blocks;
};

/* The writer sink's status and readoutd's threads' CPU at one moment. */
struct wsample {
	double bytes, dropped, queued, errors, time_ns;
	char state[32]; /* "" when the status does not say */
	char last_error[256];
	struct bench_cpu cpu;
};

/*
 * The writer's object in the status's "sinks": copied to `buf` up to its
 * closing brace, so that searches for its keys stay inside it. -1 if none.
 */
static int writer_object(const char *status, char *buf, size_t len)
{
	const char *p = strstr(status, "\"name\":\"writer\"");
	if (!p)
		return -1;
	const char *open = p;
	while (open > status && *open != '{')
		open--;
	bool in_string = false;
	int depth = 0;
	for (const char *q = open; *q; q++) {
		if (in_string) {
			if (*q == '\\' && q[1])
				q++;
			else if (*q == '"')
				in_string = false;
			continue;
		}
		if (*q == '"')
			in_string = true;
		else if (*q == '{' || *q == '[')
			depth++;
		else if ((*q == '}' || *q == ']') && --depth == 0) {
			snprintf(buf, len, "%.*s", (int)(q + 1 - open), open);
			return 0;
		}
	}
	return -1;
}

/* A string member of a flat JSON object, without unescaping: "" if absent. */
static void json_string(const char *obj, const char *key, char *buf, size_t len)
{
	const char *v = bench_json_find(obj, key);
	buf[0] = '\0';
	if (!v || *v != '"')
		return;
	size_t n = strcspn(v + 1, "\"");
	snprintf(buf, len, "%.*s", (int)n, v + 1);
}

static int wsample(struct rdo_daemon *d, struct wsample *s)
{
	const char *st = bench_daemon_status(d);
	if (!st)
		return -1;
	char w[16384];
	if (writer_object(st, w, sizeof(w))) {
		fprintf(stderr, "bench_writer: readoutd's status has no \"writer\" sink: %s\n", st);
		return -1;
	}
	if (bench_json_number(w, "bytes", &s->bytes) ||
	    bench_json_number(w, "dropped", &s->dropped) ||
	    bench_json_number(w, "queued", &s->queued) ||
	    bench_json_number(st, "time_ns", &s->time_ns) || bench_thread_cpu(d->pid, &s->cpu)) {
		fprintf(stderr, "bench_writer: unexpected status: %s\n", st);
		return -1;
	}
	if (bench_json_number(w, "errors", &s->errors))
		s->errors = 0;
	json_string(w, "state", s->state, sizeof(s->state));
	json_string(w, "last_error", s->last_error, sizeof(s->last_error));
	return 0;
}

/* Is the writer refusing superpages (disk_full, error)? Said on stderr. */
static bool writer_failing(const struct wsample *s)
{
	if (strcmp(s->state, "disk_full") != 0 && strcmp(s->state, "error") != 0)
		return false;
	fprintf(stderr, "bench_writer: readoutd's writer is in state %s: %s\n", s->state,
		s->last_error[0] ? s->last_error : "(no error message)");
	return true;
}

/* Remove every entry of the bench's own folder (it makes only files there). */
static int empty_dir(const char *dir)
{
	DIR *dp = opendir(dir);
	if (!dp) {
		fprintf(stderr, "bench_writer: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(dp))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		char path[PATH_MAX + 256];
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (unlink(path) != 0) {
			fprintf(stderr, "bench_writer: cannot remove %s: %s\n", path,
				strerror(errno));
			rc = -1;
		}
	}
	closedir(dp);
	return rc;
}

/*
 * The bench folder: $RDO_BENCH_DIR, which must exist, else build/bench-data,
 * made if missing; then a folder of the bench's own in it. Paths go into a
 * shell command and a YAML value, quoted: quotes and backslashes are refused.
 */
static int place_make(struct place *pl)
{
	const char *env = getenv("RDO_BENCH_DIR");
	int n = env && env[0]
		    ? snprintf(pl->base, sizeof(pl->base), "%s", env)
		    : snprintf(pl->base, sizeof(pl->base), "%s/build/bench-data", rdo_source_dir());
	if (n < 0 || (size_t)n >= sizeof(pl->base)) {
		fprintf(stderr,
			"bench_writer: bench folder %s: too long a path (set RDO_BENCH_DIR)\n",
			env && env[0] ? env : rdo_source_dir());
		return -1;
	}
	if (strpbrk(pl->base, "'\"\\\n")) {
		fprintf(stderr,
			"bench_writer: bench folder %s: a path without quotes or "
			"backslashes, please (set RDO_BENCH_DIR)\n",
			pl->base);
		return -1;
	}
	if (!(env && env[0]) && mkdir(pl->base, 0755) == 0)
		pl->made_base = true;
	else if (!(env && env[0]) && errno != EEXIST) {
		fprintf(stderr, "bench_writer: cannot create %s: %s\n", pl->base, strerror(errno));
		return -1;
	}
	struct stat st;
	if (stat(pl->base, &st) != 0 || !S_ISDIR(st.st_mode)) {
		fprintf(stderr,
			"bench_writer: RDO_BENCH_DIR=%s: not a folder; create it on the "
			"disk to measure\n",
			pl->base);
		return -1;
	}
	snprintf(pl->dir, sizeof(pl->dir), "%s/writer-XXXXXX", pl->base);
	if (!mkdtemp(pl->dir)) {
		fprintf(stderr, "bench_writer: cannot create a folder in %s: %s\n", pl->base,
			strerror(errno));
		goto fail_base;
	}
	return 0;
fail_base:
	if (pl->made_base)
		rmdir(pl->base);
	return -1;
}

static void place_remove(struct place *pl)
{
	empty_dir(pl->dir);
	if (rmdir(pl->dir) != 0)
		fprintf(stderr, "bench_writer: cannot remove %s: %s\n", pl->dir, strerror(errno));
	if (pl->made_base)
		rmdir(pl->base);
}

/*
 * Bytes one block's files may take: what is free but RESERVE, at most
 * BLOCK_BYTES_MAX, in whole 4 MiB writes. 0 (and said why) when there is
 * less than MIN_FREE, or -1 when the folder cannot be looked at.
 */
static double block_budget(const char *dir)
{
	struct statvfs vfs;
	if (statvfs(dir, &vfs) != 0) {
		fprintf(stderr, "bench_writer: %s: %s\n", dir, strerror(errno));
		return -1;
	}
	double free_bytes = (double)vfs.f_bavail * (double)vfs.f_frsize;
	if (free_bytes < MIN_FREE) {
		printf("bench_writer: skipped: %.1f GB free in %s, the writer bench needs %.0f GB "
		       "(set RDO_BENCH_DIR to a folder on a disk with room)\n",
		       free_bytes / GB, dir, MIN_FREE / GB);
		fflush(stdout);
		return 0;
	}
	struct statfs fs;
	if (statfs(dir, &fs) == 0 && fs.f_type == TMPFS_MAGIC)
		fprintf(stderr,
			"bench_writer: %s is on tmpfs: both sides measure memory, not a "
			"disk (set RDO_BENCH_DIR)\n",
			dir);
	double budget =
	    free_bytes - RESERVE < BLOCK_BYTES_MAX ? free_bytes - RESERVE : BLOCK_BYTES_MAX;
	return (double)((uint64_t)budget / (4 * MIB) * (4 * MIB));
}

/*
 * A readoutd writing every superpage into the bench's folder `pl`, as fio
 * writes: 4 MiB, 8 in flight. `pl` NULL: no writer, the lossless stream on
 * instead, for readout-writer.
 */
static int daemon_start(struct rdo_daemon *d, const struct place *pl)
{
	char directory[PATH_MAX + 32];
	snprintf(directory, sizeof(directory), "writer.directory=\"%s\"", pl ? pl->dir : "");
	const char *const set[] = {
	    "writer.enabled=true",     directory, "writer.block_size=4MiB", "writer.depth=8",
	    "writer.rotate_size=1GiB", NULL,
	};
	struct bench_daemon_cfg c = {
	    .superpage_size = SP_SIZE,
	    .superpages = SUPERPAGES,
	    .links = "all",
	    .header_only = true,
	    .lossless = !pl,
	    .set = pl ? set : NULL,
	};
	return bench_daemon_start(d, &c);
}

/* What readoutd logged as writer warnings and errors ("<3>", "<4>"), on stderr. */
static void writer_complaints(const struct rdo_daemon *d)
{
	char *log = rdo_daemon_log(d);
	unsigned shown = 0;
	for (char *line = log, *nl; line && *line; line = nl ? nl + 1 : NULL) {
		nl = strchr(line, '\n');
		if (nl)
			*nl = '\0';
		if ((strncmp(line, "<3>", 3) == 0 || strncmp(line, "<4>", 3) == 0) &&
		    strstr(line, "writer") && shown++ < 10)
			fprintf(stderr, "bench_writer: readoutd logged: %s\n", line + 3);
		if (!nl)
			break;
	}
	free(log);
}

/*
 * Is a block's timed window over, from `ns0` to `ns1` on the server's clock?
 * After BLOCK_MS, or when the run's files (`bytes` now, `first` at its
 * start, `last` at the poll before) would outgrow `budget` with room for two
 * more polls' worth and the pool, before the stop takes hold.
 */
static bool window_over(double ns0, double ns1, double first, double last, double bytes,
			double budget)
{
	double margin = 2 * (bytes - last) + (double)SUPERPAGES * SP_SIZE;
	return (ns1 - ns0) / 1e6 >= BLOCK_MS || bytes - first + margin >= budget;
}

/* Wait until the stopped writer holds nothing and has closed its file. */
static int writer_idle(struct rdo_daemon *d, struct wsample *s)
{
	uint64_t t0 = rdo_now_ns();
	for (;;) {
		if (wsample(d, s))
			return -1;
		if (s->queued == 0 && strcmp(s->state, "writing") != 0)
			return 0;
		if (bench_seconds_since(t0) * 1000 > IDLE_MS) {
			fprintf(stderr,
				"bench_writer: the writer still holds %.0f superpages (state %s) "
				"%d s after the stop\n",
				s->queued, s->state[0] ? s->state : "?", IDLE_MS / 1000);
			return -1;
		}
		bench_sleep_ms(50);
	}
}

/*
 * One readoutd block: run `run` for a warm-up, then time the writer's bytes
 * for BLOCK_MS, or less if the run's files would outgrow `budget`; stop,
 * wait for the writer to finish, check it lost nothing, delete the files.
 */
static int writer_block(struct rdo_daemon *d, const struct place *pl, unsigned run, double budget,
			struct tally *t)
{
	struct wsample pre, s0, s1 = {0}, prev;
	if (wsample(d, &pre) || bench_daemon_ctl(d, "start --run %u", run))
		return -1;
	bench_sleep_ms(WARM_MS);
	int rc = wsample(d, &s0);
	prev = s0;
	while (rc == 0) {
		bench_sleep_ms(POLL_MS);
		rc = wsample(d, &s1);
		if (rc == 0 && writer_failing(&s1))
			rc = -1;
		if (rc)
			break;
		if (window_over(s0.time_ns, s1.time_ns, pre.bytes, prev.bytes, s1.bytes, budget))
			break;
		prev = s1;
	}
	if (bench_daemon_ctl(d, "stop") || rc)
		return -1;
	struct wsample end;
	if (writer_idle(d, &end) || writer_failing(&end))
		return -1;
	if (end.dropped > pre.dropped || end.errors > pre.errors) {
		fprintf(stderr,
			"bench_writer: run %u: the writer lost %.0f superpages, %.0f errors%s%s\n",
			run, end.dropped - pre.dropped, end.errors - pre.errors,
			end.last_error[0] ? ": " : "", end.last_error);
		return -1;
	}
	if (empty_dir(pl->dir))
		return -1;
	t->bytes += s1.bytes - s0.bytes;
	t->seconds += (s1.time_ns - s0.time_ns) / 1e9;
	t->cpu_s += s1.cpu.server_s - s0.cpu.server_s;
	t->blocks++;
	return 0;
}

/*
 * One fio block: a new file of at most `budget` bytes, written for BLOCK_MS
 * after a WARM_MS ramp (ramp_time, not counted), then deleted. From its
 * JSON: jobs[0].write.io_bytes over write.runtime (ms) is its bw_bytes;
 * jobs[0].usr_cpu and sys_cpu are percentages of job_runtime (ms).
 */
static int fio_block(const struct place *pl, double budget, struct tally *t)
{
	static struct rdo_output o;
	int st = rdo_run(&o,
			 "fio --name=base --ioengine=libaio --direct=1 --bs=4m --iodepth=8 "
			 "--rw=write --size=%llu --runtime=%dms --ramp_time=%dms "
			 "--filename='%s/fio.tmp' --output-format=json",
			 (unsigned long long)budget, BLOCK_MS, WARM_MS, pl->dir);
	int rc = empty_dir(pl->dir);
	const char *job = bench_json_find(o.out, "jobs");
	const char *w = job ? bench_json_find(job, "write") : NULL;
	double err, bytes, ms, usr, sys, job_ms;
	if (st != 0 || !w || bench_json_number(job, "error", &err) || err != 0 ||
	    bench_json_number(w, "io_bytes", &bytes) || bench_json_number(w, "runtime", &ms) ||
	    bench_json_number(job, "usr_cpu", &usr) || bench_json_number(job, "sys_cpu", &sys) ||
	    bench_json_number(job, "job_runtime", &job_ms) || bytes <= 0 || ms <= 0) {
		fprintf(stderr, "bench_writer: fio failed (exit status %d): %s%s", st, o.err,
			o.out);
		return -1;
	}
	t->bytes += bytes;
	t->seconds += ms / 1e3;
	t->cpu_s += (usr + sys) / 100 * job_ms / 1e3;
	t->blocks++;
	return rc;
}

static bool fio_on_path(void)
{
	static struct rdo_output o;
	return rdo_run(&o, "command -v fio") == 0;
}

/* The lossless sink's bytes sent, the server's clock and its threads' CPU at one moment. */
struct lsample {
	double bytes, dropped, time_ns;
	struct bench_cpu cpu;
};

static int lsample(struct rdo_daemon *d, struct lsample *s)
{
	const char *st = bench_daemon_status(d);
	const char *ll = st ? strstr(st, "\"name\":\"lossless\"") : NULL;
	if (!ll || bench_json_number(ll, "bytes", &s->bytes) ||
	    bench_json_number(ll, "dropped", &s->dropped) ||
	    bench_json_number(st, "time_ns", &s->time_ns) || bench_thread_cpu(d->pid, &s->cpu)) {
		fprintf(stderr, "bench_writer: unexpected status: %s\n", st ? st : "(none)");
		return -1;
	}
	return 0;
}

/* Wait until the lossless stream has sent all it holds: 0, or -1 (said) after IDLE_MS. */
static int lossless_sent(struct rdo_daemon *d)
{
	uint64_t t0 = rdo_now_ns();
	double queued = -1;
	while (bench_seconds_since(t0) * 1000 < IDLE_MS) {
		const char *st = bench_daemon_status(d);
		const char *ll = st ? strstr(st, "\"name\":\"lossless\"") : NULL;
		if (!ll || bench_json_number(ll, "queued", &queued))
			break;
		if (queued == 0)
			return 0;
		bench_sleep_ms(50);
	}
	fprintf(stderr, "bench_writer: the lossless stream still holds %.0f superpages\n", queued);
	return -1;
}

/* CPU seconds of every thread of `pid` so far, or -1 if it is gone. */
static double process_cpu(pid_t pid)
{
	struct bench_cpu c;
	return bench_thread_cpu(pid, &c) ? -1 : c.server_s + c.sim_s;
}

/* readout-writer on the daemon's lossless stream, into the bench's folder, attached. */
static int remote_start(struct rdo_daemon *d, const struct place *pl, struct rdo_proc *w)
{
	if (rdo_spawn(w, "exec readout-writer --control %s -e %s -d '%s' --buffers 64 --json",
		      d->tcp, d->lossless_tcp, pl->dir)) {
		fprintf(stderr, "bench_writer: cannot start readout-writer\n");
		return -1;
	}
	for (int i = 0; i < 100; i++) {
		const char *st = bench_daemon_status(d);
		const char *ll = st ? strstr(st, "\"name\":\"lossless\"") : NULL;
		double consumers;
		if (ll && bench_json_number(ll, "consumers", &consumers) == 0 && consumers >= 1)
			return 0;
		bench_sleep_ms(50);
	}
	static struct rdo_output o;
	rdo_proc_signal(w, SIGKILL);
	rdo_proc_wait(w, &o, 5000);
	fprintf(stderr, "bench_writer: readout-writer did not attach in 5 s: %s\n", o.err);
	return -1;
}

/* SIGTERM readout-writer; -1, said, unless it exits 0 having lost nothing. */
static int remote_stop(struct rdo_proc *w, unsigned run)
{
	static struct rdo_output o;
	rdo_proc_signal(w, SIGTERM);
	int st = rdo_proc_wait(w, &o, IDLE_MS);
	double lost = -1, errors = -1;
	bench_json_number(o.out, "lost", &lost);
	bench_json_number(o.out, "errors", &errors);
	if (st != 0 || lost != 0 || errors != 0) {
		fprintf(stderr,
			"bench_writer: run %u: readout-writer exited %d, %.0f lost, %.0f errors: "
			"%s%s\n",
			run, st, lost, errors, o.out, o.err);
		return -1;
	}
	return 0;
}

/*
 * One remote block: a new readout-writer, the run `run` for a warm-up, then
 * the stream's bytes and both sides' CPU for BLOCK_MS (or less, within
 * `budget`); stop the run, then readout-writer, which must have lost
 * nothing; delete the files.
 */
static int remote_block(struct rdo_daemon *d, const struct place *pl, unsigned run, double budget,
			struct tally *t, struct tally *wt)
{
	struct rdo_proc w;
	if (remote_start(d, pl, &w))
		return -1;
	struct lsample pre, s0, s1 = {0}, prev;
	double w0 = -1, w1 = -1;
	int rc = lsample(d, &pre) || bench_daemon_ctl(d, "start --run %u", run) ? -1 : 0;
	if (rc == 0) {
		bench_sleep_ms(WARM_MS);
		rc = lsample(d, &s0);
		w0 = process_cpu(w.pid);
		prev = s0;
	}
	while (rc == 0) {
		bench_sleep_ms(POLL_MS);
		rc = lsample(d, &s1);
		w1 = process_cpu(w.pid);
		if (rc)
			break;
		if (window_over(s0.time_ns, s1.time_ns, pre.bytes, prev.bytes, s1.bytes, budget))
			break;
		prev = s1;
	}
	if (bench_daemon_ctl(d, "stop") || lossless_sent(d))
		rc = -1;
	if (remote_stop(&w, run) || rc || w0 < 0 || w1 < 0)
		return -1;
	struct lsample end;
	if (lsample(d, &end) || empty_dir(pl->dir))
		return -1;
	if (end.dropped > pre.dropped) {
		fprintf(stderr, "bench_writer: run %u: the lossless stream dropped %.0f\n", run,
			end.dropped - pre.dropped);
		return -1;
	}
	t->bytes += s1.bytes - s0.bytes;
	t->seconds += (s1.time_ns - s0.time_ns) / 1e9;
	t->cpu_s += s1.cpu.server_s - s0.cpu.server_s;
	t->blocks++;
	wt->bytes += s1.bytes - s0.bytes;
	wt->cpu_s += w1 - w0;
	return 0;
}

/* The payload is the sender's until it exits: nothing to free. */
static void no_free(void *data, void *hint)
{
	(void)data;
	(void)hint;
}

/* The baseline sender, in a child process: buffers of the pool's size in turn, until killed. */
static void zmq_sender(const char *ep)
{
	char *mem = malloc((size_t)SUPERPAGES * SP_SIZE);
	void *ctx = zmq_ctx_new();
	void *sock = ctx ? zmq_socket(ctx, ZMQ_PUSH) : NULL;
	if (!mem || !sock || zmq_connect(sock, ep) != 0)
		_exit(1);
	memset(mem, 0xa5, (size_t)SUPERPAGES * SP_SIZE);
	for (unsigned next = 0;; next = (next + 1) % SUPERPAGES) {
		zmq_msg_t m;
		zmq_msg_init_data(&m, mem + (size_t)next * SP_SIZE, SP_SIZE, no_free, NULL);
		if (zmq_msg_send(&m, sock, 0) < 0)
			_exit(1);
	}
}

/*
 * One plain-libzmq block: a child PUSHes superpage-sized buffers over tcp
 * loopback, this process PULLs them; after WARM_MS, bytes and each side's
 * CPU for BLOCK_MS.
 */
static int zmq_block(struct tally *send, struct tally *recv)
{
	void *ctx = zmq_ctx_new();
	void *sock = ctx ? zmq_socket(ctx, ZMQ_PULL) : NULL;
	char ep[256];
	size_t eplen = sizeof(ep);
	int timeout = 100, zero = 0, rc = -1;
	pid_t child = -1;
	if (!sock || zmq_setsockopt(sock, ZMQ_RCVTIMEO, &timeout, sizeof(timeout)) ||
	    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_bind(sock, "tcp://127.0.0.1:*") ||
	    zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &eplen)) {
		fprintf(stderr, "bench_writer: baseline receiver: %s\n", zmq_strerror(errno));
		goto out;
	}
	fflush(NULL);
	child = fork();
	if (child == 0)
		zmq_sender(ep);
	if (child < 0) {
		fprintf(stderr, "bench_writer: fork: %s\n", strerror(errno));
		goto out;
	}
	double bytes = 0, b0 = 0, c0 = 0, r0 = 0;
	uint64_t start = rdo_now_ns(), t0 = 0;
	while (bench_seconds_since(start) * 1000 < WARM_MS + BLOCK_MS) {
		if (!t0 && bench_seconds_since(start) * 1000 >= WARM_MS) {
			t0 = rdo_now_ns();
			b0 = bytes;
			c0 = process_cpu(child);
			r0 = process_cpu(getpid());
		}
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, sock, 0) >= 0)
			bytes += (double)zmq_msg_size(&m);
		zmq_msg_close(&m);
	}
	double c1 = process_cpu(child), r1 = process_cpu(getpid());
	if (!t0 || c0 < 0 || c1 < 0 || bytes - b0 <= 0) {
		fprintf(stderr, "bench_writer: the plain libzmq baseline moved nothing\n");
		goto out;
	}
	send->bytes += bytes - b0;
	send->seconds += bench_seconds_since(t0);
	send->cpu_s += c1 - c0;
	send->blocks++;
	recv->bytes += bytes - b0;
	recv->cpu_s += r1 - r0;
	rc = 0;
out:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	if (sock)
		zmq_close(sock);
	if (ctx)
		zmq_ctx_term(ctx);
	return rc;
}

/* What the blocks of every kind add up to. */
struct tallies {
	struct tally local, fio, remote, remote_writer, zmq_send, zmq_recv;
};

/* Block `kind` (0 local, 1 fio, 2 remote, 3 plain libzmq) of round `round`. */
static int block(unsigned kind, unsigned round, struct rdo_daemon *local, struct rdo_daemon *remote,
		 const struct place *pl, double budget, struct tallies *t)
{
	switch (kind) {
	case 0:
		return writer_block(local, pl, 2 * round + 1, budget, &t->local);
	case 1:
		return fio_block(pl, budget, &t->fio);
	case 2:
		return remote_block(remote, pl, 2 * round + 2, budget, &t->remote,
				    &t->remote_writer);
	default:
		return zmq_block(&t->zmq_send, &t->zmq_recv);
	}
}

static double per_gb(const struct tally *t)
{
	return t->cpu_s / (t->bytes / GB);
}

static double gbps(const struct tally *t)
{
	return t->bytes / t->seconds / GB;
}

/* Both writers against their baselines, in blocks of four kinds taking turns, each round one on. */
static int bench_writers(const struct place *pl, double budget)
{
	struct rdo_daemon local, remote;
	if (daemon_start(&local, pl))
		return -1;
	if (daemon_start(&remote, NULL)) {
		bench_daemon_stop(&local);
		return -1;
	}
	struct tallies t = {0};
	int rc = 0;
	for (unsigned round = 0; rc == 0 && round < ROUNDS; round++)
		for (unsigned k = 0; rc == 0 && k < 4; k++)
			rc = block((round + k) % 4, round, &local, &remote, pl, budget, &t);
	writer_complaints(&local);
	if (bench_daemon_stop(&local) | bench_daemon_stop(&remote))
		rc = -1;
	if (rc)
		return -1;
	if (t.local.bytes <= 0 || t.remote.bytes <= 0) {
		fprintf(stderr, "bench_writer: a writer wrote nothing in %u blocks\n", ROUNDS);
		return -1;
	}
	fprintf(stderr,
		"bench_writer: readoutd wrote %.1f GB in %.1f s, readout-writer %.1f GB in %.1f "
		"s, fio %.1f GB in %.1f s, plain libzmq moved %.1f GB in %.1f s; %u blocks each "
		"in %s\n",
		t.local.bytes / GB, t.local.seconds, t.remote.bytes / GB, t.remote.seconds,
		t.fio.bytes / GB, t.fio.seconds, t.zmq_send.bytes / GB, t.zmq_send.seconds, ROUNDS,
		pl->base);
	bench_print_figure("writer_local_GBps", gbps(&t.local), "GB/s", gbps(&t.fio), 3);
	bench_print_figure("writer_local_cpu_s_per_GB", per_gb(&t.local), "s/GB", per_gb(&t.fio),
			   4);
	bench_print_figure("writer_remote_GBps", gbps(&t.remote), "GB/s", gbps(&t.fio), 3);
	bench_print_figure("writer_remote_readoutd_cpu_s_per_GB", per_gb(&t.remote), "s/GB",
			   per_gb(&t.zmq_send), 4);
	bench_print_figure("writer_remote_writer_cpu_s_per_GB", per_gb(&t.remote_writer), "s/GB",
			   per_gb(&t.zmq_recv) + per_gb(&t.fio), 4);
	return 0;
}

int main(void)
{
	struct place pl = {0};
	if (place_make(&pl))
		return 1;
	int rc = 0;
	double budget = block_budget(pl.base);
	if (budget < 0)
		rc = -1;
	else if (budget > 0 && !fio_on_path()) {
		fprintf(stderr, "bench_writer: fio is not on PATH: it is the writer's baseline; "
				"install it (make bench does, through make deps DEBS=fio)\n");
		rc = -1;
	} else if (budget > 0) {
		rc = bench_writers(&pl, budget);
	}
	place_remove(&pl);
	return rc == 0 ? 0 : 1;
}
