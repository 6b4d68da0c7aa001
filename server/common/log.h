/*
 * Logging to stderr with syslog priority prefixes ("<3>readoutd: ..."), the
 * form journald and sd-daemon(3) read levels from. One write(2) per line, so
 * lines from several threads never interleave. Thread-safe.
 */
#ifndef RDO_LOG_H
#define RDO_LOG_H

#include <stdarg.h>
#include <syslog.h>

/* Lines above `level` (a LOG_* priority) are dropped. Default LOG_INFO. */
void rdo_log_set_level(int level);
/* The program name each line starts with (default "readoutd"); call before threads start. */
void rdo_log_set_name(const char *name);
int rdo_log_get_level(void);

/* "err", "warning", "notice", "info", "debug" to LOG_*; -1 when unknown. */
int rdo_log_level_parse(const char *name);

void rdo_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define rdo_err(...)	rdo_log(LOG_ERR, __VA_ARGS__)
#define rdo_warn(...)	rdo_log(LOG_WARNING, __VA_ARGS__)
#define rdo_notice(...) rdo_log(LOG_NOTICE, __VA_ARGS__)
#define rdo_info(...)	rdo_log(LOG_INFO, __VA_ARGS__)
#define rdo_debug(...)	rdo_log(LOG_DEBUG, __VA_ARGS__)

#endif
