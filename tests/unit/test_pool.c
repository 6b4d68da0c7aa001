#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "card/card.h"
#include "common/hostmem.h"
#include "common/log.h"
#include "core/pool.h"
#include "stress/scenario.h"

#define SP_SIZE	 8192u
#define SP_COUNT 16u
#define FAKE_BUS 0x80000000ull

static struct rdo_dma_buf mem;
static struct rdo_pool *pool;

/* DMA memory as a card backend would fill it: host memory at a made-up bus address. */
static struct rdo_dma_buf dma_mem(size_t len)
{
	static struct rdo_dma_seg seg;
	struct rdo_dma_buf m = {.nsegs = 1, .seg = &seg};
	int rc = rdo_hostmem_alloc("test_pool", len, &m.va, &m.len, &m.memory);
	cr_assert_eq(rc, 0, "rdo_hostmem_alloc(%zu): %s", len, strerror(-rc));
	seg = (struct rdo_dma_seg){.off = 0, .len = m.len, .bus = FAKE_BUS};
	return m;
}

static void setup(void)
{
	rdo_log_set_level(LOG_CRIT); /* the refusals below log errors on purpose */
	mem = dma_mem((size_t)SP_SIZE * SP_COUNT);
	pool = rdo_pool_create(&mem, SP_SIZE, SP_COUNT);
	cr_assert_not_null(pool);
}

static void teardown(void)
{
	rdo_pool_destroy(&pool);
	rdo_hostmem_free(mem.va, mem.len);
}

TestSuite(pool, .init = setup, .fini = teardown);

static uint32_t refs(struct rdo_superpage *sp)
{
	/* relaxed: single-threaded here */
	return atomic_load_explicit(&sp->refs, memory_order_relaxed);
}

Test(pool, hostmem_kind_and_writable)
{
	cr_assert_geq(mem.len, (size_t)SP_SIZE * SP_COUNT);
	cr_assert(!strcmp(mem.memory, "hugepages") || !strcmp(mem.memory, "locked") ||
		      !strcmp(mem.memory, "unlocked"),
		  "kind \"%s\"", mem.memory);
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	for (size_t off = 0; off < mem.len; off += page)
		((volatile unsigned char *)mem.va)[off] = (unsigned char)(off / page);
	for (size_t off = 0; off < mem.len; off += page)
		cr_assert_eq(((volatile unsigned char *)mem.va)[off], (unsigned char)(off / page));
}

Test(pool, create_refuses_what_does_not_fit)
{
	struct rdo_pool *p = rdo_pool_create(&mem, mem.len / 3 + 1, 3);
	cr_assert_null(p, "3 superpages of len / 3 + 1 bytes");
	cr_assert_null(rdo_pool_create(&mem, SP_SIZE, 0), "no superpages");
	cr_assert_null(rdo_pool_create(&mem, 0, SP_COUNT), "empty superpages");
	cr_assert_null(rdo_pool_create(&mem, SIZE_MAX / 2 + 1, 4),
		       "a size that wraps when multiplied");
	p = rdo_pool_create(&mem, mem.len / 3, 3);
	cr_assert_not_null(p, "3 superpages of len / 3 bytes fit");
	rdo_pool_destroy(&p);
	cr_assert_null(p);
	rdo_pool_destroy(&p);
}

Test(pool, starts_all_free)
{
	cr_assert_eq(rdo_pool_count(pool), SP_COUNT);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT);
	cr_assert_eq(rdo_pool_superpage_size(pool), SP_SIZE);
	for (uint32_t i = 0; i < SP_COUNT; i++)
		cr_assert_eq(refs(rdo_pool_at(pool, i)), 0);
}

Test(pool, get_until_empty)
{
	for (unsigned i = 0; i < SP_COUNT; i++) {
		struct rdo_superpage *sp = rdo_pool_get(pool);
		cr_assert_not_null(sp, "get %u of %u", i + 1, SP_COUNT);
		cr_assert_eq(refs(sp), 1);
		cr_assert_eq(rdo_pool_free(pool), SP_COUNT - 1 - i);
	}
	cr_assert_null(rdo_pool_get(pool), "get from an empty pool");
	cr_assert_eq(rdo_pool_free(pool), 0);
}

Test(pool, superpages_distinct_and_inside)
{
	char *base = mem.va;
	struct rdo_superpage *got[SP_COUNT];
	for (unsigned i = 0; i < SP_COUNT; i++)
		got[i] = rdo_pool_get(pool);
	for (unsigned i = 0; i < SP_COUNT; i++) {
		struct rdo_superpage *sp = got[i];
		char *d = sp->data;
		cr_assert(d >= base && d + SP_SIZE <= base + mem.len,
			  "superpage %u outside the region", sp->index);
		cr_assert_eq(sp->bus - mem.seg[0].bus, (uint64_t)(d - base),
			     "superpage %u: bus and virtual offsets differ", sp->index);
		cr_assert_eq(rdo_pool_at(pool, sp->index), sp);
		/* Ranges [d, d + SP_SIZE) of two superpages must not overlap. */
		for (unsigned j = 0; j < i; j++) {
			char *o = got[j]->data;
			cr_assert(d + SP_SIZE <= o || o + SP_SIZE <= d,
				  "superpages %u and %u overlap", sp->index, got[j]->index);
			cr_assert_neq(sp->bus, got[j]->bus);
			cr_assert_neq(sp->index, got[j]->index);
		}
	}
	cr_assert_null(rdo_pool_at(pool, SP_COUNT));
}

/* A backend's DMA memory in chunks at scattered bus addresses, as the shim gives it. */
Test(pool, superpages_take_their_segments_bus_address)
{
	static char va[4 * SP_SIZE];
	const struct rdo_dma_seg seg[] = {
	    {.off = 0, .len = 2 * SP_SIZE, .bus = 0x100000},
	    {.off = 2 * SP_SIZE, .len = 2 * SP_SIZE, .bus = 0x40000},
	};
	struct rdo_dma_buf m = {.va = va, .len = sizeof(va), .nsegs = 2, .seg = seg};
	uint64_t bus;
	cr_assert_eq(rdo_dma_buf_bus(&m, SP_SIZE, SP_SIZE, &bus), 0);
	cr_assert_eq(bus, 0x100000 + SP_SIZE);
	cr_assert_eq(rdo_dma_buf_bus(&m, 3 * SP_SIZE + 8, 8, &bus), 0);
	cr_assert_eq(bus, 0x40000 + SP_SIZE + 8);
	cr_assert_eq(rdo_dma_buf_bus(&m, SP_SIZE + 8, SP_SIZE, &bus), -ERANGE,
		     "a range across two segments has no one bus address");
	cr_assert_eq(rdo_dma_buf_bus(&m, 4 * SP_SIZE, 1, &bus), -ERANGE, "past the end");
	struct rdo_pool *p = rdo_pool_create(&m, SP_SIZE, 4);
	cr_assert_not_null(p);
	const uint64_t want[] = {0x100000, 0x100000 + SP_SIZE, 0x40000, 0x40000 + SP_SIZE};
	for (unsigned i = 0; i < 4; i++)
		cr_assert_eq(rdo_pool_at(p, i)->bus, want[i], "superpage %u at 0x%llx", i,
			     (unsigned long long)rdo_pool_at(p, i)->bus);
	rdo_pool_destroy(&p);
	/* Superpages of 1.5 segments would straddle one: refused. */
	cr_assert_null(rdo_pool_create(&m, SP_SIZE + SP_SIZE / 2, 2));
}

Test(pool, put_after_get)
{
	struct rdo_superpage *sp = rdo_pool_get(pool);
	cr_assert_not_null(sp);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT - 1);
	rdo_pool_put(pool, sp);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT);
	cr_assert_eq(refs(sp), 0);
	bool again = false;
	for (unsigned i = 0; i < SP_COUNT; i++)
		again |= rdo_pool_get(pool) == sp;
	cr_assert(again, "a superpage put back is not handed out again");
	cr_assert_eq(refs(sp), 1);
}

Test(pool, only_last_put_frees)
{
	struct rdo_superpage *sp = rdo_pool_get(pool);
	rdo_pool_ref(sp);
	rdo_pool_ref(sp);
	cr_assert_eq(refs(sp), 3);
	rdo_pool_put(pool, sp);
	rdo_pool_put(pool, sp);
	cr_assert_eq(refs(sp), 1);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT - 1, "freed while still referenced");
	rdo_pool_put(pool, sp);
	cr_assert_eq(refs(sp), 0);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT);
}

Test(pool, free_count_follows_gets_and_puts)
{
	struct rdo_superpage *a = rdo_pool_get(pool), *b = rdo_pool_get(pool);
	struct rdo_superpage *c = rdo_pool_get(pool);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT - 3);
	rdo_pool_put(pool, b);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT - 2);
	rdo_pool_ref(a);
	rdo_pool_put(pool, a);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT - 2);
	rdo_pool_put(pool, a);
	rdo_pool_put(pool, c);
	cr_assert_eq(rdo_pool_free(pool), SP_COUNT);
}

Test(pool, sinks_never_see_reuse)
{
	struct scenario_pool_opts o = {.sinks = 3, .superpages = 8, .superpage_size = 4096};
	o.handoffs = 20000;
	o.hold_max = 4;
	char why[256] = "";
	int rc = scenario_pool_sinks(&o, why, sizeof(why));
	cr_assert_eq(rc, 0, "%s", why);
}
