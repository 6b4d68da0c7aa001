/*
 * Sinks: where filled superpages go (live stream, lossless stream, later the
 * disk writer). The DMA channel offers each filled superpage to every sink;
 * a sink that keeps it takes a reference and releases it with rdo_pool_put()
 * when its consumers are done, from whatever thread that happens on.
 *
 * A sink runs its own thread. The queue below carries superpages from the
 * DMA thread to it without locks and wakes it only when it sleeps.
 */
#ifndef RDO_SINK_H
#define RDO_SINK_H

#include <limits.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/pool.h"
#include "core/ring.h"
#include "common/util.h"

/* A sink's counters. Plain value. */
struct rdo_sink_stats {
	const char *name;
	uint64_t superpages, bytes; /* delivered to consumers */
	uint64_t dropped;	    /* superpages this sink dropped */
	uint32_t queued;	    /* waiting in the sink */
	uint32_t consumers;
	const struct rdo_endpoints *endpoints; /* as bound, owned by the sink; NULL: none */
	/* The writer's: */
	const char *state; /* static; NULL: the sink has no state of its own */
	uint64_t files, errors;
	char file[PATH_MAX]; /* the file being written, or the last one */
	char last_error[256];
};

struct rdo_sink;

struct rdo_sink_ops {
	const char *name;
	/*
	 * From the DMA thread: take `sp` (rdo_pool_ref) and return true, or pass
	 * and return false. Never blocks.
	 */
	bool (*offer)(struct rdo_sink *sink, struct rdo_superpage *sp);
	/*
	 * Optional. From the DMA thread, after the last superpage of run `run`
	 * was offered (the acquisition stopped or was reset). Never blocks.
	 */
	void (*run_end)(struct rdo_sink *sink, uint64_t run);
	/* From any thread. */
	void (*stats)(struct rdo_sink *sink, struct rdo_sink_stats *st);
	/* Stop the sink's thread, release what it holds, free it. */
	void (*destroy)(struct rdo_sink *sink);
};

/* The base every sink embeds. */
struct rdo_sink {
	const struct rdo_sink_ops *ops;
};

void rdo_sink_destroy(struct rdo_sink **sink);

/*
 * The SuperpageHeader (proto/) of `sp` as sent on the data streams, packed
 * into `buf`: its length, 0 if `cap` is too small. `dropped` is what the
 * sending sink dropped before it.
 */
size_t rdo_sink_pack_header(const char *card, const struct rdo_superpage *sp, uint64_t dropped,
			    uint8_t *buf, size_t cap);

/*
 * After the first frame of a message (a topic, a routing id) was accepted on
 * `sock`: send the superpage's header and then its payload zero-copy, which
 * hands the sink's reference to ZeroMQ (released by rdo_pool_release once
 * sent). Returns the payload bytes sent; the superpage must not be touched
 * afterwards.
 */
size_t rdo_sink_send(void *sock, const char *card, struct rdo_superpage *sp, uint64_t dropped);

/*
 * A single-consumer queue of superpage indices with a wake-up eventfd. Any
 * thread pushes; the sink thread pops, and before it sleeps calls
 * rdo_squeue_sleep() and polls rdo_squeue_fd() only if that returned true.
 */
struct rdo_squeue {
	struct rdo_ring ring;
	int fd;
	_Atomic bool sleeping;
};

int rdo_squeue_init(struct rdo_squeue *q, size_t capacity);
void rdo_squeue_fini(struct rdo_squeue *q);
bool rdo_squeue_push(struct rdo_squeue *q, uint32_t index);
bool rdo_squeue_pop(struct rdo_squeue *q, uint32_t *index);
/* Announce sleep: false if something arrived meanwhile (do not sleep). */
bool rdo_squeue_sleep(struct rdo_squeue *q);
/* After the poll: clear the wake-up. */
void rdo_squeue_woken(struct rdo_squeue *q);
int rdo_squeue_fd(const struct rdo_squeue *q);
size_t rdo_squeue_count(const struct rdo_squeue *q);

/*
 * A mark a sink with a run_end op pushes into its own queue, after the run's
 * last superpage: no superpage. A queue that takes marks holds the whole pool
 * plus RDO_SQUEUE_MARKS of them.
 */
#define RDO_SQUEUE_RUN_END UINT32_MAX
#define RDO_SQUEUE_MARKS   64

/* Pop everything queued and return it to its pool: the number of superpages released (marks
 * skipped). */
uint64_t rdo_squeue_release_all(struct rdo_squeue *q, struct rdo_pool *pool);

#endif
