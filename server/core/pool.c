#include "core/pool.h"

#include <stdlib.h>

#include "common/log.h"
#include "core/ring.h"

struct rdo_pool {
	struct rdo_ring free;
	size_t size;
	unsigned count;
	struct rdo_superpage *sp;
};

struct rdo_pool *rdo_pool_create(const struct rdo_dma_buf *mem, size_t size, unsigned count)
{
	if (count == 0 || size == 0 || size > mem->len / count) {
		rdo_err("buffer pool: %u superpages of %zu bytes do not fit in %zu bytes of DMA "
			"memory",
			count, size, mem->len);
		return NULL;
	}
	struct rdo_pool *p = calloc(1, sizeof(*p));
	if (!p)
		goto fail;
	p->sp = calloc(count, sizeof(*p->sp));
	if (!p->sp)
		goto fail_pool;
	if (rdo_ring_init(&p->free, count))
		goto fail_sp;
	p->size = size;
	p->count = count;
	for (uint32_t i = 0; i < count; i++) {
		struct rdo_superpage *sp = &p->sp[i];
		sp->pool = p;
		sp->data = (char *)mem->va + (size_t)i * size;
		if (rdo_dma_buf_bus(mem, (size_t)i * size, size, &sp->bus)) {
			rdo_err("buffer pool: superpage %u of %zu bytes spans two bus-contiguous "
				"chunks of the card's DMA memory: the card backend must keep "
				"superpages whole (a bug: report it)",
				i, size);
			goto fail_ring;
		}
		sp->index = i;
		atomic_init(&sp->refs, 0);
		rdo_ring_push(&p->free, i);
	}
	return p;
fail_ring:
	rdo_ring_fini(&p->free);
	free(p->sp);
	free(p);
	return NULL;
fail_sp:
	free(p->sp);
fail_pool:
	free(p);
fail:
	rdo_err("buffer pool: out of memory for %u superpages", count);
	return NULL;
}

void rdo_pool_destroy(struct rdo_pool **pool)
{
	struct rdo_pool *p = *pool;
	if (!p)
		return;
	rdo_ring_fini(&p->free);
	free(p->sp);
	free(p);
	*pool = NULL;
}

struct rdo_superpage *rdo_pool_get(struct rdo_pool *pool)
{
	uint32_t i;
	if (!rdo_ring_pop(&pool->free, &i))
		return NULL;
	struct rdo_superpage *sp = &pool->sp[i];
	/* relaxed: the ring's acquire already ordered the last holder's release */
	atomic_store_explicit(&sp->refs, 1, memory_order_relaxed);
	return sp;
}

void rdo_pool_ref(struct rdo_superpage *sp)
{
	/* relaxed: the caller holds a reference, so the count cannot reach zero meanwhile */
	atomic_fetch_add_explicit(&sp->refs, 1, memory_order_relaxed);
}

void rdo_pool_put(struct rdo_pool *pool, struct rdo_superpage *sp)
{
	/* acq_rel: every holder's use of the data happens before the superpage is reused */
	if (atomic_fetch_sub_explicit(&sp->refs, 1, memory_order_acq_rel) == 1)
		rdo_ring_push(&pool->free, sp->index);
}

void rdo_pool_handoff(struct rdo_superpage *sp)
{
	/* release: our reads of the superpage before the put that may recycle it (acq_rel) */
	atomic_fetch_add_explicit(&sp->refs, 0, memory_order_release);
}

void rdo_pool_release(void *data, void *hint)
{
	(void)data;
	struct rdo_superpage *sp = hint;
	rdo_pool_put(sp->pool, sp);
}

struct rdo_superpage *rdo_pool_at(struct rdo_pool *pool, uint32_t index)
{
	return index < pool->count ? &pool->sp[index] : NULL;
}

unsigned rdo_pool_count(const struct rdo_pool *pool)
{
	return pool->count;
}

unsigned rdo_pool_free(const struct rdo_pool *pool)
{
	return (unsigned)rdo_ring_count(&pool->free);
}

size_t rdo_pool_superpage_size(const struct rdo_pool *pool)
{
	return pool->size;
}
