/*
 * The buffer pool: one region of DMA memory cut into superpages, a ring of
 * free superpage indices, and a reference count per superpage.
 *
 * A superpage's life: free ring -> rdo_pool_get() by the DMA channel (one
 * reference, the channel's) -> posted to the card -> filled -> offered to the
 * sinks, each taking a reference with rdo_pool_ref() -> each rdo_pool_put()
 * when done -> the last put returns it to the free ring. The payload is never
 * copied: sinks hand `data` to ZeroMQ or the disk as it is.
 *
 * The metadata of a superpage (link, sequence, size, ...) is written by the
 * DMA channel before it shares the superpage and is read-only afterwards.
 * get/ref/put are safe from any thread; the pool does not own its memory.
 */
#ifndef RDO_POOL_H
#define RDO_POOL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card/card.h"

struct rdo_pool;

struct rdo_superpage {
	struct rdo_pool *pool;
	void *data;
	uint64_t bus;	/* where the card writes it */
	uint32_t index; /* in the pool */
	/* Set by the DMA channel when filled: */
	uint32_t size; /* bytes of whole DMA pages */
	uint32_t link;
	uint32_t flags; /* SuperpageFlag bits */
	uint64_t sequence;
	uint64_t timestamp_ns;
	uint64_t card_pages_dropped;
	uint64_t run;
	_Atomic uint32_t refs;
};

/*
 * Cut `count` superpages of `size` bytes from `mem` (which must hold them and
 * outlive the pool; the caller keeps ownership). Every superpage starts free.
 * Logs why and returns NULL on failure.
 */
struct rdo_pool *rdo_pool_create(const struct rdo_dma_buf *mem, size_t size, unsigned count);
void rdo_pool_destroy(struct rdo_pool **pool);

/* A free superpage with one reference, or NULL when none is free. */
struct rdo_superpage *rdo_pool_get(struct rdo_pool *pool);

/* One more reference, for a holder that already has one in hand. */
void rdo_pool_ref(struct rdo_superpage *sp);

/* Drop one reference; the last returns the superpage to the free ring. */
void rdo_pool_put(struct rdo_pool *pool, struct rdo_superpage *sp);

/*
 * Before handing a reference to another thread by a channel the pool cannot
 * see (ZeroMQ, which releases it from its I/O thread): make what this thread
 * did with the superpage visible to whoever drops the last reference.
 */
void rdo_pool_handoff(struct rdo_superpage *sp);

/* rdo_pool_put() in the shape of a zmq_free_fn: `hint` is the superpage. */
void rdo_pool_release(void *data, void *hint);

struct rdo_superpage *rdo_pool_at(struct rdo_pool *pool, uint32_t index);
unsigned rdo_pool_count(const struct rdo_pool *pool);
unsigned rdo_pool_free(const struct rdo_pool *pool); /* exact when quiet */
size_t rdo_pool_superpage_size(const struct rdo_pool *pool);

#endif
