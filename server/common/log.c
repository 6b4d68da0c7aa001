#include "common/log.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static atomic_int log_level = LOG_INFO;
static char log_name[32] = "readoutd"; /* set before any thread starts */

void rdo_log_set_name(const char *name)
{
	snprintf(log_name, sizeof(log_name), "%s", name);
}

void rdo_log_set_level(int level)
{
	atomic_store_explicit(&log_level, level, memory_order_relaxed); /* orders nothing */
}

int rdo_log_get_level(void)
{
	return atomic_load_explicit(&log_level, memory_order_relaxed); /* orders nothing */
}

int rdo_log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int level;
	} levels[] = {
	    {"err", LOG_ERR},	    {"error", LOG_ERR}, {"warning", LOG_WARNING},
	    {"notice", LOG_NOTICE}, {"info", LOG_INFO}, {"debug", LOG_DEBUG},
	};
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(name, levels[i].name) == 0)
			return levels[i].level;
	return -1;
}

void rdo_log(int level, const char *fmt, ...)
{
	if (level > rdo_log_get_level())
		return;
	char line[2048];
	int n = snprintf(line, sizeof(line), "<%d>%s: ", level, log_name);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w; /* nowhere left to report a failing stderr */
}
