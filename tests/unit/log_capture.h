/*
 * For unit tests that check what a module logs: stderr goes to a file in the
 * test's folder from log_capture_start() to log_capture_stop(), and logged()
 * reads everything written since. One capture per test process at a time.
 */
#ifndef RDO_TEST_LOG_CAPTURE_H
#define RDO_TEST_LOG_CAPTURE_H

#include <criterion/criterion.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static int log_capture_fd = -1, log_capture_saved = -1;

/* Capture stderr into DIR/log, at level LOG_INFO. */
static inline void log_capture_start(const char *dir)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/log", dir);
	log_capture_fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(log_capture_fd, 0, "%s", path);
	fflush(stderr);
	log_capture_saved = dup(STDERR_FILENO);
	dup2(log_capture_fd, STDERR_FILENO);
	rdo_log_set_level(LOG_INFO);
}

static inline void log_capture_stop(void)
{
	if (log_capture_saved >= 0) {
		fflush(stderr);
		dup2(log_capture_saved, STDERR_FILENO);
		close(log_capture_saved);
	}
	log_capture_saved = -1;
	if (log_capture_fd >= 0)
		close(log_capture_fd);
	log_capture_fd = -1;
}

/* Everything logged since log_capture_start(). */
static inline const char *logged(void)
{
	static char text[64 * 1024];
	fflush(stderr);
	ssize_t n = pread(log_capture_fd, text, sizeof(text) - 1, 0);
	text[n > 0 ? n : 0] = '\0';
	return text;
}

#define assert_logged(needle)                                                                      \
	cr_assert(strstr(logged(), needle), "the log lacks \"%s\":\n%s", needle, logged())

#endif
