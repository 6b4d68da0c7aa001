#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const char rdo_default_test_config[] = "log_level: info\n"
				       "card:\n"
				       "  name: sim0\n"
				       "  backend: sim\n"
				       "  regmap: @MAP@/rdo-sim.yaml\n"
				       "control:\n"
				       "  bind: [ \"tcp://127.0.0.1:*\", \"ipc://@DIR@/ctl\" ]\n"
				       "dma:\n"
				       "  autostart: false\n";

const char *rdo_bin_dir(void)
{
	const char *dir = getenv("RDO_BIN_DIR");
	return dir && dir[0] ? dir : RDO_BIN_DIR;
}

const char *rdo_source_dir(void)
{
	return RDO_SOURCE_DIR;
}

void rdo_sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

uint64_t rdo_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *s = malloc((size_t)n + 1);
	size_t got = fread(s, 1, (size_t)n, f);
	s[got] = '\0';
	fclose(f);
	return s;
}

/* Children still running, for rdo_harness_cleanup: daemons, and groups of spawned commands. */
#define MAX_CHILDREN 32
static struct {
	pid_t pid;
	bool group;
} children[MAX_CHILDREN];

static void track(pid_t pid, bool group)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++)
		if (children[i].pid <= 0) {
			children[i].pid = pid;
			children[i].group = group;
			return;
		}
}

static void untrack(pid_t pid)
{
	for (size_t i = 0; i < MAX_CHILDREN; i++)
		if (children[i].pid == pid)
			children[i].pid = 0;
}

/* waitpid(WNOHANG) that forgets a child once it is reaped. */
static bool reaped(pid_t pid, int *status)
{
	if (waitpid(pid, status, WNOHANG) != pid)
		return false;
	untrack(pid);
	return true;
}

/* A config text being edited: a growing string. */
struct text {
	char *s;
	size_t len;
};

/* Replace `del` bytes at `at` with `ins`. */
static void text_splice(struct text *t, size_t at, size_t del, const char *ins)
{
	size_t n = strlen(ins);
	char *s = malloc(t->len - del + n + 1);
	memcpy(s, t->s, at);
	memcpy(s + at, ins, n);
	memcpy(s + at + n, t->s + at + del, t->len - at - del + 1);
	free(t->s);
	t->s = s;
	t->len = t->len - del + n;
}

/* Copy `in`, replacing @MAP@ and @DIR@. */
static struct text expand(const char *in, const char *dir)
{
	char map[PATH_MAX];
	snprintf(map, sizeof(map), "%s/config/regmaps", RDO_SOURCE_DIR);
	struct text t = {strdup(in), strlen(in)};
	for (size_t i = 0; i < t.len;) {
		const char *sub = strncmp(t.s + i, "@MAP@", 5) == 0   ? map
				  : strncmp(t.s + i, "@DIR@", 5) == 0 ? dir
								      : NULL;
		if (!sub) {
			i++;
			continue;
		}
		text_splice(&t, i, 5, sub);
		i += strlen(sub);
	}
	return t;
}

static size_t line_end(const char *s, size_t i)
{
	const char *nl = strchr(s + i, '\n');
	return nl ? (size_t)(nl - s) : strlen(s);
}

static size_t indent_of(const char *s, size_t i)
{
	size_t n = 0;
	while (s[i + n] == ' ')
		n++;
	return n;
}

/* A line with nothing but blanks or a comment. */
static bool blank_line(const char *s, size_t i)
{
	i += indent_of(s, i);
	return s[i] == '\n' || s[i] == '\0' || s[i] == '#';
}

/*
 * A top-level section of a config text, "name:" at column 0: a flow mapping
 * ({ ... } on its line; body and end inside the braces) or a block mapping
 * (nothing after the colon; body and end span its lines below the header,
 * `indent` is that of its keys). `other` is a section of another form.
 */
struct section {
	bool found, flow, other;
	size_t body, end, indent;
};

static size_t next_line(const char *s, size_t i)
{
	size_t e = line_end(s, i);
	return s[e] ? e + 1 : e;
}

static struct section find_section(const char *s, const char *name)
{
	struct section sec = {0};
	size_t n = strlen(name);
	for (size_t i = 0; s[i]; i = next_line(s, i)) {
		if (strncmp(s + i, name, n) != 0 || s[i + n] != ':')
			continue;
		size_t p = i + n + 1;
		while (s[p] == ' ')
			p++;
		sec.found = true;
		if (s[p] == '{') {
			sec.flow = true;
			sec.body = p + 1;
			int depth = 1;
			for (p++; s[p] && depth; p++)
				depth += s[p] == '{' ? 1 : s[p] == '}' ? -1 : 0;
			sec.end = depth ? p : p - 1;
			return sec;
		}
		sec.other = s[p] != '\n' && s[p] != '\0' && s[p] != '#';
		sec.body = sec.end = next_line(s, i);
		for (size_t j = sec.body; s[j]; j = next_line(s, j)) {
			if (blank_line(s, j))
				continue;
			if (indent_of(s, j) == 0)
				break;
			if (!sec.indent)
				sec.indent = indent_of(s, j);
			sec.end = next_line(s, j);
		}
		if (!sec.indent)
			sec.indent = 2;
		return sec;
	}
	return sec;
}

/*
 * Where `key` of the section starts and where its value ends, or false. In a
 * block, a value runs to the end of its line and over the more indented lines
 * below; in a flow mapping, to the next ',' or '}' outside brackets.
 */
static bool find_key(const char *s, const struct section *sec, const char *key, size_t *at,
		     size_t *value_end)
{
	size_t n = strlen(key);
	if (sec->flow) {
		int depth = 0;
		for (size_t i = sec->body; i < sec->end; i++) {
			if (s[i] == '{' || s[i] == '[')
				depth++;
			else if (s[i] == '}' || s[i] == ']')
				depth--;
			bool starts =
			    i == sec->body || s[i - 1] == ' ' || s[i - 1] == ',' || s[i - 1] == '{';
			if (depth || !starts || strncmp(s + i, key, n) != 0 || s[i + n] != ':')
				continue;
			*at = i;
			size_t e = i + n + 1;
			for (int d = 0; e < sec->end && (d || (s[e] != ',' && s[e] != '}')); e++)
				d += (s[e] == '{' || s[e] == '[')   ? 1
				     : (s[e] == '}' || s[e] == ']') ? -1
								    : 0;
			*value_end = e;
			return true;
		}
		return false;
	}
	for (size_t i = sec->body; i < sec->end; i = next_line(s, i)) {
		size_t k = i + indent_of(s, i);
		if (blank_line(s, i) || k - i != sec->indent || strncmp(s + k, key, n) != 0 ||
		    s[k + n] != ':')
			continue;
		*at = k;
		size_t e = line_end(s, k);
		while (e + 1 < sec->end &&
		       (blank_line(s, e + 1) || indent_of(s, e + 1) > sec->indent))
			e = line_end(s, e + 1);
		*value_end = e;
		return true;
	}
	return false;
}

/*
 * Set `section.key` to `value` (YAML) in `t`; with `replace` false only if it
 * is not set. New keys go last in their section and new sections last in the
 * text, so that what the text says keeps its line and column in the daemon's
 * messages. A section that is not a mapping is left alone.
 */
static void put_key(struct text *t, const char *section, const char *key, const char *value,
		    bool replace)
{
	char entry[1024];
	bool newline = t->len && t->s[t->len - 1] != '\n';
	struct section sec = find_section(t->s, section);
	size_t at, end;
	if (!sec.found) {
		snprintf(entry, sizeof(entry), "%s%s:\n  %s: %s\n", newline ? "\n" : "", section,
			 key, value);
		text_splice(t, t->len, 0, entry);
	} else if (sec.other) {
		return;
	} else if (find_key(t->s, &sec, key, &at, &end)) {
		if (replace) {
			snprintf(entry, sizeof(entry), "%s: %s", key, value);
			text_splice(t, at, end - at, entry);
		}
	} else if (sec.flow) {
		size_t last = sec.end;
		while (last > sec.body && t->s[last - 1] == ' ')
			last--;
		snprintf(entry, sizeof(entry), "%s%s: %s", last > sec.body ? ", " : " ", key,
			 value);
		text_splice(t, last, 0, entry);
	} else {
		snprintf(entry, sizeof(entry), "%s%*s%s: %s\n",
			 sec.end == t->len && newline ? "\n" : "", (int)sec.indent, "", key, value);
		text_splice(t, sec.end, 0, entry);
	}
}

/* "section.key=value" over the config. */
static int apply_setting(struct text *t, const char *setting)
{
	const char *dot = strchr(setting, '.'), *eq = strchr(setting, '=');
	if (!dot || !eq || eq < dot) {
		fprintf(stderr, "harness: setting \"%s\": expected section.key=value\n", setting);
		return -1;
	}
	char section[64], key[64];
	snprintf(section, sizeof(section), "%.*s", (int)(dot - setting), setting);
	snprintf(key, sizeof(key), "%.*s", (int)(eq - dot - 1), dot + 1);
	put_key(t, section, key, eq + 1, true);
	return 0;
}

/* Give the daemon a card and endpoints of its own, where the config does not name them. */
static void isolate(struct text *t, const char *dir)
{
	static const char *const streams[][2] = {
	    {"control", "ctl"}, {"live", "live"}, {"lossless", "lossless"}, {"status", "status"}};
	char value[PATH_MAX + 64];
	snprintf(value, sizeof(value), "\"%s\"", dir);
	/* A config listing cards gives each its own address (@DIR@/a, ...). */
	if (!find_section(t->s, "cards").found)
		put_key(t, "card", "address", value, false);
	for (size_t i = 0; i < sizeof(streams) / sizeof(streams[0]); i++) {
		snprintf(value, sizeof(value), "[ \"tcp://127.0.0.1:*\", \"ipc://%s/%s\" ]", dir,
			 streams[i][1]);
		put_key(t, streams[i][0], "bind", value, false);
	}
	put_key(t, "metrics", "bind", "\"127.0.0.1:0\"", false);
}

/* The first tcp and ipc endpoint after " WHAT on " in the ready line, up to the next ','. */
static void parse_endpoints(const char *line, const char *what, char *tcp, char *ipc)
{
	char key[32];
	snprintf(key, sizeof(key), " %s on ", what);
	const char *p = strstr(line, key);
	tcp[0] = ipc[0] = '\0';
	if (!p)
		return;
	for (p += strlen(key); *p && *p != ',';) {
		while (*p == ' ')
			p++;
		size_t len = strcspn(p, " ,");
		char *dst = strncmp(p, "tcp://", 6) == 0   ? tcp
			    : strncmp(p, "ipc://", 6) == 0 ? ipc
							   : NULL;
		if (dst && !dst[0])
			snprintf(dst, RDO_EP_MAX, "%.*s", (int)len, p);
		p += len;
	}
}

/*
 * "ready: card C, map M (N registers), control on EP EP, live on EP EP,
 * lossless on EP EP, status on EP EP" -> the endpoints, once the line is whole.
 */
static bool parse_ready(struct rdo_daemon *d, const char *log)
{
	const char *start = strstr(log, "ready: ");
	const char *nl = start ? strchr(start, '\n') : NULL;
	if (!nl)
		return false;
	char *line = strndup(start, (size_t)(nl - start));
	parse_endpoints(line, "control", d->tcp, d->ipc);
	parse_endpoints(line, "live", d->live_tcp, d->live_ipc);
	parse_endpoints(line, "lossless", d->lossless_tcp, d->lossless_ipc);
	parse_endpoints(line, "status", d->status_tcp, d->status_ipc);
	const char *m = strstr(line, " metrics on http://");
	if (m)
		snprintf(d->metrics, sizeof(d->metrics), "%.*s", (int)strcspn(m + 12, " ,"),
			 m + 12);
	free(line);
	return true;
}

static int write_config(struct rdo_daemon *d, const struct rdo_daemon_opts *o)
{
	struct text t = expand(o->config ? o->config : rdo_default_test_config, d->dir);
	int rc = 0;
	for (size_t i = 0; o->set && o->set[i] && rc == 0; i++)
		rc = apply_setting(&t, o->set[i]);
	if (!o->verbatim)
		isolate(&t, d->dir);
	FILE *f = rc ? NULL : fopen(d->config, "w");
	if (f) {
		fputs(t.s, f);
		fclose(f);
	}
	free(t.s);
	return f ? 0 : -1;
}

int rdo_daemon_start_opts(struct rdo_daemon *d, const struct rdo_daemon_opts *o)
{
	memset(d, 0, sizeof(*d));
	d->pid = -1;
	snprintf(d->dir, sizeof(d->dir), "/tmp/rdo-test-XXXXXX");
	if (!mkdtemp(d->dir))
		return -1;
	snprintf(d->config, sizeof(d->config), "%s/config.yaml", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/readoutd.log", d->dir);
	if (write_config(d, o))
		return -1;

	char exe[PATH_MAX];
	snprintf(exe, sizeof(exe), "%s/readoutd", rdo_bin_dir());
	const char *argv[32] = {exe, "-c", d->config};
	size_t argc = 3;
	for (size_t i = 0; o->args && o->args[i] && argc < 31; i++)
		argv[argc++] = o->args[i];
	d->pid = fork();
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	track(d->pid, false);
	for (int i = 0; i < 1000; i++) {
		char *log = read_file(d->log);
		bool ready = parse_ready(d, log);
		free(log);
		if (ready)
			return 0;
		int status;
		if (reaped(d->pid, &status)) {
			d->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			d->pid = -1;
			return -1;
		}
		rdo_sleep_ms(10);
	}
	rdo_daemon_stop(d);
	return -1;
}

int rdo_daemon_start(struct rdo_daemon *d, const char *config, const char *const *args)
{
	struct rdo_daemon_opts o = {.config = config, .args = args};
	return rdo_daemon_start_opts(d, &o);
}

bool rdo_daemon_alive(struct rdo_daemon *d)
{
	if (d->pid <= 0)
		return false;
	int status;
	if (reaped(d->pid, &status)) {
		d->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		d->pid = -1;
		return false;
	}
	return true;
}

void rdo_daemon_cleanup(struct rdo_daemon *d)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d->dir);
	if (d->pid <= 0 && d->dir[0] && system(cmd) == 0)
		d->dir[0] = '\0';
}

int rdo_daemon_stop(struct rdo_daemon *d)
{
	if (d->pid <= 0)
		return d->exit_status;
	kill(d->pid, SIGTERM);
	int status = 0;
	for (int i = 0; i < 1000; i++) {
		if (reaped(d->pid, &status)) {
			d->pid = -1;
			d->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			if (d->exit_status == 0)
				rdo_daemon_cleanup(d);
			return d->exit_status;
		}
		rdo_sleep_ms(10);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
	untrack(d->pid);
	d->pid = -1;
	d->exit_status = -1;
	return -1;
}

char *rdo_daemon_log(const struct rdo_daemon *d)
{
	return read_file(d->log);
}

/* Fork and exec `sh -c CMD` in a process group of its own, output to the files of `p`. */
static int vspawn(struct rdo_proc *p, const char *fmt, va_list ap)
{
	static unsigned serial;
	char cmd[8192], shell[8192 + PATH_MAX];
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	/* Everything the child needs is made here: after fork, only async-signal-safe calls. */
	snprintf(shell, sizeof(shell), "PATH=\"%s:$PATH\"; %s", rdo_bin_dir(), cmd);
	serial++;
	snprintf(p->out, sizeof(p->out), "/tmp/rdo-run-%d-%u.out", (int)getpid(), serial);
	snprintf(p->err, sizeof(p->err), "/tmp/rdo-run-%d-%u.err", (int)getpid(), serial);
	fflush(NULL);
	p->pid = fork();
	if (p->pid < 0)
		return -1;
	if (p->pid == 0) {
		setpgid(0, 0);
		int in = open("/dev/null", O_RDONLY);
		int out = open(p->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		int err = open(p->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (in < 0 || out < 0 || err < 0)
			_exit(127);
		dup2(in, STDIN_FILENO);
		dup2(out, STDOUT_FILENO);
		dup2(err, STDERR_FILENO);
		execl("/bin/sh", "sh", "-c", shell, (char *)NULL);
		_exit(127);
	}
	setpgid(p->pid, p->pid); /* also here: a signal right after spawn must find the group */
	track(p->pid, true);
	return 0;
}

int rdo_spawn(struct rdo_proc *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = vspawn(p, fmt, ap);
	va_end(ap);
	return rc;
}

void rdo_proc_signal(struct rdo_proc *p, int sig)
{
	if (p->pid > 0)
		kill(-p->pid, sig);
}

int rdo_proc_wait(struct rdo_proc *p, struct rdo_output *o, int timeout_ms)
{
	int status = 0, rc = -1;
	if (timeout_ms < 0 && p->pid > 0 && waitpid(p->pid, &status, 0) == p->pid) {
		untrack(p->pid);
		rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
		p->pid = -1;
	}
	for (long waited = 0; p->pid > 0; waited += 5) {
		if (reaped(p->pid, &status)) {
			rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			p->pid = -1;
			break;
		}
		if (timeout_ms >= 0 && waited >= timeout_ms) {
			rdo_proc_signal(p, SIGKILL);
			waitpid(p->pid, &status, 0);
			untrack(p->pid);
			p->pid = -1;
			break;
		}
		rdo_sleep_ms(5);
	}
	if (o) {
		o->status = rc;
		char *s = read_file(p->out);
		snprintf(o->out, sizeof(o->out), "%s", s);
		free(s);
		s = read_file(p->err);
		snprintf(o->err, sizeof(o->err), "%s", s);
		free(s);
	}
	unlink(p->out);
	unlink(p->err);
	return rc;
}

int rdo_run(struct rdo_output *o, const char *fmt, ...)
{
	struct rdo_proc p;
	va_list ap;
	va_start(ap, fmt);
	int rc = vspawn(&p, fmt, ap);
	va_end(ap);
	if (rc) {
		o->status = -1;
		o->out[0] = o->err[0] = '\0';
		return -1;
	}
	return rdo_proc_wait(&p, o, -1);
}

void rdo_harness_cleanup(void)
{
	int status;
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		pid_t pid = children[i].pid;
		if (pid > 0)
			kill(children[i].group ? -pid : pid, children[i].group ? SIGKILL : SIGTERM);
	}
	for (int waited = 0; waited < 5000; waited += 10) {
		bool left = false;
		for (size_t i = 0; i < MAX_CHILDREN; i++)
			left |= children[i].pid > 0 && !reaped(children[i].pid, &status);
		if (!left)
			return;
		rdo_sleep_ms(10);
	}
	for (size_t i = 0; i < MAX_CHILDREN; i++) {
		pid_t pid = children[i].pid;
		if (pid > 0) {
			kill(children[i].group ? -pid : pid, SIGKILL);
			waitpid(pid, &status, 0);
			untrack(pid);
		}
	}
}
