#include "bench/benchlib.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

/* The program's name, for messages: glibc's, set from argv[0] before main. */
#define ME program_invocation_short_name

void bench_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

double bench_seconds_since(uint64_t t0)
{
	return (double)(rdo_now_ns() - t0) / 1e9;
}

void bench_print_figure(const char *name, double value, const char *unit, double baseline,
			int decimals)
{
	printf("bench %s %.*f %s baseline %.*f ratio %.3f\n", name, decimals, value, unit, decimals,
	       baseline, value / baseline);
	fflush(stdout);
}

const char *bench_size_name(char *buf, size_t len, size_t bytes)
{
	if (bytes % MIB == 0)
		snprintf(buf, len, "%zuMiB", bytes / MIB);
	else
		snprintf(buf, len, "%zuKiB", bytes / KIB);
	return buf;
}

int bench_daemon_start(struct rdo_daemon *d, const struct bench_daemon_cfg *c)
{
	char hwm[32] = "";
	if (c->live_hwm)
		snprintf(hwm, sizeof(hwm), "  hwm: %u\n", c->live_hwm);
	char config[2048];
	snprintf(config, sizeof(config),
		 "log_level: info\n"
		 "card:\n"
		 "  name: sim0\n"
		 "  backend: sim\n"
		 "  regmap: @MAP@/rdo-sim.yaml\n"
		 "  sim:\n"
		 "    links: 12\n"
		 "    rate: %llu\n"
		 "    header_only: %s\n"
		 "dma:\n"
		 "  superpage_size: %zu\n"
		 "  superpages: %u\n"
		 "  links: %s\n"
		 "  autostart: %s\n"
		 "live:\n"
		 "  enabled: %s\n"
		 "%s"
		 "lossless:\n"
		 "  enabled: %s\n"
		 "status:\n"
		 "  log_interval_s: 0\n",
		 (unsigned long long)c->rate, c->header_only ? "true" : "false", c->superpage_size,
		 c->superpages, c->links, c->autostart ? "true" : "false",
		 c->live ? "true" : "false", hwm, c->lossless ? "true" : "false");
	struct rdo_daemon_opts o = {.config = config, .set = c->set};
	if (rdo_daemon_start_opts(d, &o) != 0) {
		fprintf(stderr, "%s: readoutd did not start (exit status %d, log in %s)\n", ME,
			d->exit_status, d->log);
		return -1;
	}
	if (!d->tcp[0] || (c->live && !d->live_tcp[0]) || (c->lossless && !d->lossless_tcp[0])) {
		fprintf(stderr, "%s: no tcp endpoints in readoutd's ready line (log in %s)\n", ME,
			d->log);
		rdo_daemon_stop(d);
		return -1;
	}
	return 0;
}

int bench_daemon_stop(struct rdo_daemon *d)
{
	bool alive = rdo_daemon_alive(d);
	if (rdo_daemon_stop(d) != 0 || !alive) {
		fprintf(stderr, "%s: readoutd %s (exit status %d, log in %s)\n", ME,
			alive ? "did not exit cleanly" : "died", d->exit_status, d->log);
		return -1;
	}
	return 0;
}

int bench_daemon_ctl(struct rdo_daemon *d, const char *fmt, ...)
{
	static struct rdo_output o;
	char cmd[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (rdo_run(&o, "readoutctl -e %s %s", d->tcp, cmd) != 0) {
		fprintf(stderr, "%s: readoutctl %s failed (%d): %s", ME, cmd, o.status, o.err);
		return -1;
	}
	return 0;
}

const char *bench_daemon_status(struct rdo_daemon *d)
{
	static struct rdo_output o;
	if (rdo_run(&o, "readoutctl -e %s --json status", d->tcp) != 0) {
		fprintf(stderr, "%s: readoutctl status failed (%d): %s", ME, o.status, o.err);
		return NULL;
	}
	return o.out;
}

const char *bench_json_find(const char *text, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	for (const char *p = strstr(text, pat); p; p = strstr(p + 1, pat)) {
		const char *v = p + strlen(pat);
		while (isspace((unsigned char)*v))
			v++;
		if (*v != ':')
			continue; /* a string value that reads like the key */
		v++;
		while (isspace((unsigned char)*v))
			v++;
		return v;
	}
	return NULL;
}

int bench_json_number(const char *text, const char *key, double *v)
{
	const char *p = bench_json_find(text, key);
	if (!p)
		return -1;
	char *end;
	*v = strtod(p, &end);
	return end == p ? -1 : 0;
}

/*
 * From /proc/PID/task/TID/stat: the thread name in parentheses (field 2),
 * then utime and stime as fields 14 and 15, in clock ticks.
 */
int bench_thread_cpu(pid_t pid, struct bench_cpu *s)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	DIR *dir = opendir(path);
	if (!dir)
		return -1;
	double tick = (double)sysconf(_SC_CLK_TCK);
	*s = (struct bench_cpu){0};
	struct dirent *e;
	while ((e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		char stat[512], file[PATH_MAX];
		snprintf(file, sizeof(file), "%s/%s/stat", path, e->d_name);
		FILE *f = fopen(file, "r");
		if (!f)
			continue; /* the thread just ended */
		size_t n = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
		stat[n] = '\0';
		char *open = strchr(stat, '('), *close = strrchr(stat, ')');
		unsigned long ut, st;
		if (!open || !close ||
		    sscanf(close + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			   &st) != 2)
			continue;
		bool sim = close - open - 1 == 7 && strncmp(open + 1, "rdo-sim", 7) == 0;
		*(sim ? &s->sim_s : &s->server_s) += (double)(ut + st) / tick;
	}
	closedir(dir);
	return 0;
}
