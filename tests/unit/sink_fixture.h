/*
 * For the sink unit tests: a pool without a card, superpages filled and
 * offered as the DMA channel fills and offers them, a payload each can be
 * checked by, and waiting for a sink's counters.
 */
#ifndef RDO_TEST_SINK_FIXTURE_H
#define RDO_TEST_SINK_FIXTURE_H

#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "card/card.h"
#include "common/log.h"
#include "common/rdofile.h"
#include "core/pool.h"
#include "core/sink.h"

/* A pool on aligned host memory (O_DIRECT takes it), as a card backend would give it. */
struct fixture_pool {
	struct rdo_dma_seg seg;
	struct rdo_dma_buf buf;
	struct rdo_pool *pool;
};

static inline void fixture_pool_create(struct fixture_pool *f, size_t size, unsigned count)
{
	size_t len = size * count;
	void *mem;
	cr_assert_eq(posix_memalign(&mem, RDO_FILE_ALIGN, len), 0);
	memset(mem, 0, len);
	f->seg = (struct rdo_dma_seg){.off = 0, .len = len, .bus = 0x80000000ull};
	f->buf = (struct rdo_dma_buf){.va = mem, .len = len, .nsegs = 1, .seg = &f->seg};
	f->pool = rdo_pool_create(&f->buf, size, count);
	cr_assert_not_null(f->pool);
}

static inline void fixture_pool_destroy(struct fixture_pool *f)
{
	rdo_pool_destroy(&f->pool);
	free(f->buf.va);
}

/* For a test of a ZeroMQ sink: quiet logs, a pool as above, and a context: returned. */
static inline void *fixture_begin(struct fixture_pool *f, size_t size, unsigned count)
{
	rdo_log_set_level(LOG_WARNING);
	fixture_pool_create(f, size, count);
	void *zctx = zmq_ctx_new();
	cr_assert_not_null(zctx);
	return zctx;
}

/* Once every socket of `zctx` is closed. */
static inline void fixture_end(struct fixture_pool *f, void *zctx)
{
	zmq_ctx_term(zctx);
	fixture_pool_destroy(f);
}

/* The payload byte `i` of superpage `seq` of `link`: any two superpages differ. */
static inline uint8_t fixture_byte(uint32_t link, uint64_t seq, size_t i)
{
	return (uint8_t)(i * 31u + seq * 7u + link * 101u + i / 4096u);
}

/* Do `size` bytes at `data` hold the payload of superpage `seq` of `link`? */
static inline bool fixture_payload_ok(const void *data, size_t size, uint32_t link, uint64_t seq)
{
	const uint8_t *p = data;
	for (size_t i = 0; i < size; i++)
		if (p[i] != fixture_byte(link, seq, i))
			return false;
	return true;
}

/*
 * A free superpage filled as the DMA channel fills one, with the channel's
 * reference: `size` payload bytes, the metadata derived from link and seq.
 */
static inline struct rdo_superpage *fixture_fill(struct rdo_pool *pool, uint32_t link, uint64_t seq,
						 uint64_t run, uint32_t size)
{
	struct rdo_superpage *sp = rdo_pool_get(pool);
	cr_assert_not_null(sp, "the pool ran dry at link %u sequence %llu", link,
			   (unsigned long long)seq);
	cr_assert_leq(size, rdo_pool_superpage_size(pool));
	uint8_t *p = sp->data;
	for (size_t i = 0; i < size; i++)
		p[i] = fixture_byte(link, seq, i);
	sp->size = size;
	sp->link = link;
	sp->flags = seq % 3 == 0 ? RDO_SP_PARTIAL : 0;
	sp->sequence = seq;
	sp->timestamp_ns = 1700000000000000000ull + seq * 1000u + link;
	sp->card_pages_dropped = seq / 2;
	sp->run = run;
	return sp;
}

/* Offer `sp` to `sink` and drop the channel's reference, as the DMA channel does: taken? */
static inline bool fixture_offer(struct rdo_sink *sink, struct rdo_superpage *sp)
{
	bool taken = sink->ops->offer(sink, sp);
	rdo_pool_put(sp->pool, sp);
	return taken;
}

static inline struct rdo_sink_stats fixture_stats(struct rdo_sink *sink)
{
	struct rdo_sink_stats st;
	sink->ops->stats(sink, &st);
	return st;
}

static inline void fixture_sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Wait up to `ms` for `cond` (over `st`, the sink's stats, fetched anew each time). */
#define FIXTURE_WAIT_STATS(sink, st, cond, ms)                                                     \
	do {                                                                                       \
		for (unsigned waited_ = 0;; waited_ += 10) {                                       \
			st = fixture_stats(sink);                                                  \
			if ((cond) || waited_ >= (ms))                                             \
				break;                                                             \
			fixture_sleep_ms(10);                                                      \
		}                                                                                  \
		cr_assert(cond,                                                                    \
			  "after %u ms: %s (superpages %llu, dropped %llu, queued %u, "            \
			  "consumers %u)",                                                         \
			  (unsigned)(ms), #cond, (unsigned long long)st.superpages,                \
			  (unsigned long long)st.dropped, st.queued, st.consumers);                \
	} while (0)

/* Wait up to `ms` for every superpage of `pool` to be free again. */
static inline void fixture_wait_pool_full(struct rdo_pool *pool, unsigned ms)
{
	for (unsigned waited = 0; rdo_pool_free(pool) != rdo_pool_count(pool) && waited < ms;
	     waited += 10)
		fixture_sleep_ms(10);
	cr_assert_eq(rdo_pool_free(pool), rdo_pool_count(pool), "%u of %u superpages back in %u ms",
		     rdo_pool_free(pool), rdo_pool_count(pool), ms);
}

/* `sink`, named `name`, took nothing, holds nothing and counts nothing; one endpoint, `ep`. */
static inline void fixture_expect_untouched(struct rdo_sink *sink, const char *name, const char *ep)
{
	struct rdo_sink_stats st = fixture_stats(sink);
	cr_assert_str_eq(st.name, name);
	cr_assert_eq(st.kind, RDO_SINK_BASE);
	cr_assert_eq(st.superpages + st.bytes + st.dropped + st.queued + st.consumers, 0);
	cr_assert_eq(st.endpoints->n, 1);
	cr_assert_str_eq(st.endpoints->ep[0], ep);
}

/* A sink's default binds: `tcp` and `ipc`. */
static inline void fixture_expect_binds(const struct rdo_endpoints *bind, const char *tcp,
					const char *ipc)
{
	cr_assert_eq(bind->n, 2);
	cr_assert_str_eq(bind->ep[0], tcp);
	cr_assert_str_eq(bind->ep[1], ipc);
}

#endif
