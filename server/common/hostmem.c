#include "common/hostmem.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include "common/log.h"

#define HUGEPAGE_SIZE (2u << 20)

static size_t round_up(size_t v, size_t to)
{
	return (v + to - 1) / to * to;
}

static void touch(void *va, size_t len)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < len; off += page)
		((volatile char *)va)[off] = 0;
}

int rdo_hostmem_alloc(const char *what, size_t len, void **va, size_t *mapped, const char **kind)
{
	size_t huge = round_up(len, HUGEPAGE_SIZE);
	void *p = mmap(NULL, huge, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);
	if (p != MAP_FAILED) {
		*va = p;
		*mapped = huge;
		*kind = "hugepages";
		return 0;
	}
	size_t plain = round_up(len, (size_t)sysconf(_SC_PAGESIZE));
	p = mmap(NULL, plain, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		int rc = -errno;
		rdo_err("%s: cannot map %zu bytes of DMA memory: %s", what, len, strerror(errno));
		return rc;
	}
	/* Transparent hugepages still cut TLB misses when no hugetlb pages are reserved. */
	madvise(p, plain, MADV_HUGEPAGE);
	*va = p;
	*mapped = plain;
	if (mlock(p, plain) == 0) {
		*kind = "locked";
		touch(p, plain);
		return 0;
	}
	struct rlimit rl = {0};
	getrlimit(RLIMIT_MEMLOCK, &rl);
	rdo_warn(
	    "%s: %zu MiB of DMA memory is neither on hugepages (none reserved: "
	    "/proc/sys/vm/nr_hugepages) nor locked (memlock limit %llu KiB): using pre-touched "
	    "memory that the kernel may swap. Reserve hugepages or raise LimitMEMLOCK",
	    what, plain >> 20, (unsigned long long)rl.rlim_cur / 1024);
	*kind = "unlocked";
	touch(p, plain);
	return 0;
}

void rdo_hostmem_free(void *va, size_t mapped)
{
	if (va)
		munmap(va, mapped);
}
