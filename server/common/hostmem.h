/*
 * Host memory for DMA: one anonymous region, hugepages when the system has
 * them reserved, otherwise normal pages locked in RAM, otherwise (when the
 * memlock limit is too small) normal pages pre-touched, with a warning naming
 * the limit. Every page is faulted in before the region is returned, so the
 * data path never takes a page fault.
 */
#ifndef RDO_HOSTMEM_H
#define RDO_HOSTMEM_H

#include <stddef.h>

/*
 * Map at least `len` bytes. 0 with `*va`, `*mapped` (the length to unmap) and
 * `*kind` ("hugepages", "locked" or "unlocked", static) set; or -errno, logged
 * with `what` naming the user.
 */
int rdo_hostmem_alloc(const char *what, size_t len, void **va, size_t *mapped, const char **kind);

void rdo_hostmem_free(void *va, size_t mapped);

#endif
