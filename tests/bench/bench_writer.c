/*
 * readoutd's disk writer (the writer sink, server/disk.c on server/writer.c)
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
 * Prints, per figure: "bench <name> <value> <unit> baseline <value> ratio <value>".
 * Exits 1 when fio is not on PATH or fails, when the daemon fails, or when
 * the writer loses a superpage or reports an error.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "benchlib.h"
#include "util.h"

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

/* A readoutd writing every superpage into the bench's folder, as fio writes: 4 MiB, 8 in flight. */
static int daemon_start(struct rdo_daemon *d, const struct place *pl)
{
	char directory[PATH_MAX + 32];
	snprintf(directory, sizeof(directory), "writer.directory=\"%s\"", pl->dir);
	const char *const set[] = {
	    "writer.enabled=true",     directory, "writer.block_size=4MiB", "writer.depth=8",
	    "writer.rotate_size=1GiB", NULL,
	};
	struct bench_daemon_cfg c = {
	    .superpage_size = SP_SIZE,
	    .superpages = SUPERPAGES,
	    .links = "all",
	    .header_only = true,
	    .set = set,
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
		/* Room for two more polls' worth and the pool, before the stop takes hold. */
		double margin = 2 * (s1.bytes - prev.bytes) + (double)SUPERPAGES * SP_SIZE;
		if ((s1.time_ns - s0.time_ns) / 1e6 >= BLOCK_MS ||
		    s1.bytes - pre.bytes + margin >= budget)
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

/* The local writer against fio, in alternating blocks. */
static int bench_local(const struct place *pl, double budget)
{
	struct rdo_daemon d;
	if (daemon_start(&d, pl))
		return -1;
	struct tally rdo = {0}, fio = {0};
	int rc = 0;
	for (unsigned round = 0; rc == 0 && round < ROUNDS; round++) {
		/* readoutd first in even rounds, fio first in odd ones. */
		for (unsigned k = 0; rc == 0 && k < 2; k++)
			rc = (round + k) % 2 ? fio_block(pl, budget, &fio)
					     : writer_block(&d, pl, round + 1, budget, &rdo);
	}
	writer_complaints(&d);
	if (bench_daemon_stop(&d))
		rc = -1;
	if (rc)
		return -1;
	if (rdo.bytes <= 0) {
		fprintf(stderr, "bench_writer: the writer wrote nothing in %u blocks\n",
			rdo.blocks);
		return -1;
	}
	fprintf(stderr,
		"bench_writer: local: readoutd wrote %.1f GB in %.1f s, fio %.1f GB in %.1f s, "
		"%u blocks each in %s\n",
		rdo.bytes / GB, rdo.seconds, fio.bytes / GB, fio.seconds, ROUNDS, pl->base);
	bench_print_figure("writer_local_GBps", rdo.bytes / rdo.seconds / GB, "GB/s",
			   fio.bytes / fio.seconds / GB, 3);
	bench_print_figure("writer_local_cpu_s_per_GB", rdo.cpu_s / (rdo.bytes / GB), "s/GB",
			   fio.cpu_s / (fio.bytes / GB), 4);
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
		rc = bench_local(&pl, budget);
	}
	/* The remote writer, readout-writer on the lossless stream, is benched here once it exists.
	 */
	place_remove(&pl);
	return rc == 0 ? 0 : 1;
}
