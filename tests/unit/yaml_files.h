/*
 * For the unit tests of config files (test_yaml, test_config,
 * test_regmap_load, test_writer_config): YAML written to a file of its own,
 * and the check that an error message points at the right place.
 */
#ifndef RDO_TEST_YAML_FILES_H
#define RDO_TEST_YAML_FILES_H

#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/util.h"

/* Write `text` to a new file in /tmp; its name goes to `path` (PATH_MAX bytes). */
static inline void write_temp(const char *text, char *path)
{
	rdo_strlcpy(path, "/tmp/rdo-test-config-XXXXXX", PATH_MAX);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* Assert that `err` starts with exactly "path:line:col: " and contains `needle`. */
static inline void expect_message(const char *err, const char *path, int line, int col,
				  const char *needle)
{
	char prefix[PATH_MAX + 32];
	snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", path, line, col);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "\"%s\" does not start with \"%s\"",
		  err, prefix);
	cr_assert(strstr(err + strlen(prefix), needle), "\"%s\" lacks \"%s\"", err, needle);
}

/* A file that must be refused: at line:col, with `needle` in the message. */
struct bad_yaml {
	const char *yaml;
	int line, col;
	const char *needle;
};

#endif
