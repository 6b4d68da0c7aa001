/*
 * The DMA channel: drives a card's DMA engine through its registers (named in
 * the register map) and DMA memory, moving superpages pool -> card -> sinks
 * -> pool.
 *
 * Protocol, per enabled link: post free superpages into the card's free FIFO
 * (dma_link<N>.free_addr, then free_push with the size), round-robin over the
 * links; learn filled ones from dma_link<N>.ready_count and the completion
 * descriptors the card writes into host memory; woken by the card's interrupt
 * (eventfd) or, at the latest, by a 10 ms poll. Each filled superpage gets a
 * sequence number per link and is offered to every sink; it returns to the
 * pool when the last sink releases it, and to the card from there.
 *
 * States: IDLE -> start -> RUNNING -> stop -> STOPPING -> IDLE; a protocol
 * error (a descriptor that does not match what was posted) -> ERROR, which
 * reset clears. Stop disables the engine, collects the flushed superpages,
 * resets the DMA and takes back every superpage still posted.
 *
 * Threads: one channel thread owns the card's DMA registers. start, stop,
 * reset and the status snapshot may be called from any one other thread (the
 * control thread); they wait for the channel thread to act.
 */
#ifndef RDO_DMA_H
#define RDO_DMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card/card.h"

#define RDO_DMA_MAX_LINKS 32
#define RDO_DMA_MAX_SINKS 4

/* What config sets. Plain value; rdo_dma_opts_init() fills the defaults. */
struct rdo_dma_opts {
	size_t superpage_size;	 /* bytes, a multiple of page_size; default 1 MiB */
	unsigned superpages;	 /* in the pool; default 256 */
	uint32_t link_mask;	 /* links to read out; default all the card has */
	unsigned page_size;	 /* DMA page slot the card writes; default 8 KiB */
	unsigned irq_coalesce;	 /* superpages per interrupt; default 4 */
	unsigned irq_holdoff_us; /* longest interrupt delay; default 1000 */
	bool autostart;		 /* start acquisition once readoutd is up; default true */
};

void rdo_dma_opts_init(struct rdo_dma_opts *o);

enum rdo_dma_state { RDO_DMA_IDLE, RDO_DMA_RUNNING, RDO_DMA_STOPPING, RDO_DMA_ERROR };

const char *rdo_dma_state_name(enum rdo_dma_state s);

struct rdo_dma_link_stats {
	bool enabled, up, stalled;
	uint64_t superpages, bytes;
	uint64_t pages, pages_dropped, bytes_dropped; /* the card's counters */
	uint32_t in_card;
};

/* A snapshot of the channel's counters. Plain value. */
struct rdo_dma_stats {
	enum rdo_dma_state state;
	uint64_t run;
	uint64_t started_ns; /* monotonic time of the last start, 0 if never */
	uint64_t superpages, bytes;
	uint64_t pages_dropped, bytes_dropped, fifo_overflows;
	uint64_t unclaimed; /* read out while no sink took them (no consumer) */
	unsigned links;
	struct rdo_dma_link_stats link[RDO_DMA_MAX_LINKS];
	uint32_t pool_total, pool_free, pool_in_card, pool_in_sinks;
	size_t superpage_size;
	const char *pool_memory;
	uint64_t errors;
	char last_error[256];
	uint64_t heartbeat; /* turns of the channel thread's loop: still turning means alive */
};

struct rdo_dma;
struct rdo_events;
struct rdo_regmap;
struct rdo_sink;

/*
 * Set up the channel for `card`: resolve its DMA registers in `map`, allocate
 * the pool and completion rings in the card's DMA memory, start the channel
 * thread (idle). Logs why and returns NULL on failure. `events` may be NULL.
 * The card, map and events must outlive the channel; the map is only read
 * here, never from the channel thread.
 */
struct rdo_dma *rdo_dma_create(struct rdo_card *card, const struct rdo_regmap *map,
			       const struct rdo_dma_opts *o, struct rdo_events *events);

/*
 * Stop acquisition if running (superpages still flushed go back to the pool,
 * not to the sinks), stop the thread, free the pool and DMA memory. Stop
 * acquisition with rdo_dma_stop() first to deliver everything; destroy the
 * sinks and the ZeroMQ context (which releases superpages still in flight)
 * before this.
 */
void rdo_dma_destroy(struct rdo_dma **dma);

/* Add a sink before the first start; the channel does not own it. 0 or -ENOSPC. */
int rdo_dma_add_sink(struct rdo_dma *dma, struct rdo_sink *sink);

struct rdo_pool *rdo_dma_pool(struct rdo_dma *dma);

/*
 * Commands, from one control thread; each waits until the channel thread has
 * acted. 0, or -EBUSY (not in a state that allows it; the reason in `err`),
 * or -ETIMEDOUT / -EIO with the reason in `err`.
 *   start: IDLE -> RUNNING, with run number `run`
 *   stop:  RUNNING -> IDLE, after the card has flushed and every superpage is back
 *   reset: any state -> IDLE: stops if needed, resets the card's DMA, clears errors
 */
int rdo_dma_start(struct rdo_dma *dma, uint64_t run, char *err, size_t errlen);
int rdo_dma_stop(struct rdo_dma *dma, char *err, size_t errlen);
int rdo_dma_reset(struct rdo_dma *dma, char *err, size_t errlen);

/* A snapshot of the counters. Any thread. */
void rdo_dma_stats(struct rdo_dma *dma, struct rdo_dma_stats *st);

#endif
