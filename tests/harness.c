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
				       "  bind: [ \"tcp://127.0.0.1:*\", \"ipc://@DIR@/ctl\" ]\n";

const char *rdo_bin_dir(void)
{
	const char *dir = getenv("RDO_BIN_DIR");
	return dir && dir[0] ? dir : RDO_BIN_DIR;
}

const char *rdo_source_dir(void)
{
	return RDO_SOURCE_DIR;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
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

/* Copy `in` to `out`, replacing @MAP@ and @DIR@. */
static void expand(char *out, size_t cap, const char *in, const char *dir)
{
	char map[PATH_MAX];
	snprintf(map, sizeof(map), "%s/config/regmaps", RDO_SOURCE_DIR);
	size_t n = 0;
	while (*in && n + 1 < cap) {
		const char *sub = NULL;
		if (strncmp(in, "@MAP@", 5) == 0)
			sub = map;
		else if (strncmp(in, "@DIR@", 5) == 0)
			sub = dir;
		if (sub) {
			n += (size_t)snprintf(out + n, cap - n, "%s", sub);
			in += 5;
		} else {
			out[n++] = *in++;
		}
	}
	out[n < cap ? n : cap - 1] = '\0';
}

/* "... control on EP EP" -> the tcp and ipc endpoints. */
static bool parse_ready(struct rdo_daemon *d, const char *log)
{
	const char *line = strstr(log, "ready: ");
	const char *on = line ? strstr(line, "control on ") : NULL;
	if (!on)
		return false;
	on += strlen("control on ");
	while (*on && *on != '\n') {
		while (*on == ' ')
			on++;
		size_t len = strcspn(on, " \n");
		char *dst = strncmp(on, "tcp://", 6) == 0 ? d->tcp : d->ipc;
		snprintf(dst, sizeof(d->tcp), "%.*s", (int)len, on);
		on += len;
	}
	return true;
}

int rdo_daemon_start(struct rdo_daemon *d, const char *config, const char *const *args)
{
	memset(d, 0, sizeof(*d));
	d->pid = -1;
	snprintf(d->dir, sizeof(d->dir), "/tmp/rdo-test-XXXXXX");
	if (!mkdtemp(d->dir))
		return -1;
	snprintf(d->config, sizeof(d->config), "%s/config.yaml", d->dir);
	snprintf(d->log, sizeof(d->log), "%s/readoutd.log", d->dir);
	char text[16384];
	expand(text, sizeof(text), config ? config : rdo_default_test_config, d->dir);
	FILE *f = fopen(d->config, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fclose(f);

	char exe[PATH_MAX];
	snprintf(exe, sizeof(exe), "%s/readoutd", rdo_bin_dir());
	const char *argv[32] = { exe, "-c", d->config };
	size_t argc = 3;
	for (size_t i = 0; args && args[i] && argc < 31; i++)
		argv[argc++] = args[i];
	d->pid = fork();
	if (d->pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 1000; i++) {
		char *log = read_file(d->log);
		bool ready = parse_ready(d, log);
		free(log);
		if (ready)
			return 0;
		int status;
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			d->pid = -1;
			return -1;
		}
		sleep_ms(10);
	}
	rdo_daemon_stop(d);
	return -1;
}

bool rdo_daemon_alive(struct rdo_daemon *d)
{
	if (d->pid <= 0)
		return false;
	int status;
	if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
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
		if (waitpid(d->pid, &status, WNOHANG) == d->pid) {
			d->pid = -1;
			d->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
			if (d->exit_status == 0)
				rdo_daemon_cleanup(d);
			return d->exit_status;
		}
		sleep_ms(10);
	}
	kill(d->pid, SIGKILL);
	waitpid(d->pid, &status, 0);
	d->pid = -1;
	d->exit_status = -1;
	return -1;
}

char *rdo_daemon_log(const struct rdo_daemon *d)
{
	return read_file(d->log);
}

int rdo_run(struct rdo_output *o, const char *fmt, ...)
{
	char cmd[8192], out[64], err[64], shell[8400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	snprintf(out, sizeof(out), "/tmp/rdo-run-%d.out", (int)getpid());
	snprintf(err, sizeof(err), "/tmp/rdo-run-%d.err", (int)getpid());
	snprintf(shell, sizeof(shell), "PATH=\"%s:$PATH\"; { %s ; } >%s 2>%s </dev/null",
		 rdo_bin_dir(), cmd, out, err);
	int status = system(shell);
	o->status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
	char *s = read_file(out);
	snprintf(o->out, sizeof(o->out), "%s", s);
	free(s);
	s = read_file(err);
	snprintf(o->err, sizeof(o->err), "%s", s);
	free(s);
	unlink(out);
	unlink(err);
	return o->status;
}
