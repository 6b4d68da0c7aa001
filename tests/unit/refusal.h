/*
 * For unit tests: create something that must be refused, and check that the
 * refusal says why. What the call logs to stderr is captured meanwhile.
 */
#ifndef RDO_TEST_REFUSAL_H
#define RDO_TEST_REFUSAL_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dma/dma.h"

/* rdo_dma_create(card, map, o) must return NULL and log `needle`. */
static inline void expect_dma_refused(struct rdo_card *card, const struct rdo_regmap *map,
				      const struct rdo_dma_opts *o, const char *needle)
{
	char path[] = "/tmp/rdo-test-refusal-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	struct rdo_dma *dma = rdo_dma_create(card, map, o, NULL);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	char log[2048] = "";
	ssize_t len = pread(fd, log, sizeof(log) - 1, 0);
	close(fd);
	unlink(path);
	cr_assert_null(dma, "created despite: %s", needle);
	cr_assert_gt(len, 0, "refused without a word");
	cr_assert(strstr(log, needle), "the message \"%s\" lacks \"%s\"", log, needle);
}

#endif
