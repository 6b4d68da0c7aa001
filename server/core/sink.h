/*
 * Sinks: where filled superpages go. The DMA channel offers each filled
 * superpage to every sink (sinks/: the live stream, the lossless stream, the
 * disk writer); a sink that keeps it takes a reference and releases it with
 * rdo_pool_put() when its consumers are done, from whatever thread that
 * happens on.
 *
 * The contract of the ops below: offer and run_end come from the DMA thread
 * and never block; stats may come from any thread at any time; destroy comes
 * once, after the channel stopped offering, and returns every reference the
 * sink still holds to the pool.
 *
 * Every sink of sinks/ runs one thread, struct rdo_sink_thread: a queue
 * carries superpages from the DMA thread to it without locks and wakes it only
 * when it sleeps; the thread hands them to the sink in order and runs the
 * sink's own I/O around them. The queue, struct rdo_squeue, is usable alone.
 */
#ifndef RDO_SINK_H
#define RDO_SINK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "common/writer.h"
#include "core/pool.h"
#include "core/ring.h"

/* Which part of struct rdo_sink_stats a sink filled besides the base. */
enum rdo_sink_kind {
	RDO_SINK_BASE,	 /* the base counters only */
	RDO_SINK_WRITER, /* and `writer` */
};

/*
 * A sink's counters. Plain value: the base is what every sink has; what one
 * kind of sink adds is the tagged part after it.
 */
struct rdo_sink_stats {
	const char *name;
	uint64_t superpages, bytes; /* delivered to consumers */
	uint64_t dropped;	    /* superpages this sink dropped */
	uint32_t queued;	    /* waiting in the sink */
	uint32_t consumers;
	const struct rdo_endpoints *endpoints; /* as bound, owned by the sink; NULL: none */
	enum rdo_sink_kind kind;
	union {
		struct rdo_writer_stats writer; /* RDO_SINK_WRITER: the disk sink's writer */
	};
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

/* The sink's destroy op; accepts NULL and sets `*sink` to NULL. */
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
/* Wake the consumer whether or not it announced sleep: for a stop it must see at once. */
void rdo_squeue_wake(struct rdo_squeue *q);
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

/*
 * A sink's thread: its queue, its loop and the counters every sink keeps.
 * The sink embeds it and reaches itself from the ops with container_of.
 *
 * Each turn the loop runs before_queue, then pops the queue in order: a
 * superpage goes to `superpage`, a run-end mark to `run_end`; a superpage the
 * sink cannot take yet is held and comes back first at the next turn. Then
 * after_queue. Then the thread sleeps for at most RDO_SINK_TICK_MS: on the
 * sink's own socket or fd, and on the queue unless it holds a superpage (only
 * the sink's own I/O can free it then).
 *
 * Ownership: a superpage popped from the queue comes with the sink's
 * reference; `superpage` returns true once it handed that reference on or put
 * it back. At stop, what is held and queued goes back to the pool, counted
 * as dropped.
 *
 * Thread-safety: offer, run_end, the counters and stats from any thread; the
 * ops run on the sink's thread, and after rdo_sink_thread_stop() on the
 * thread that stopped it, which then owns the sink's socket and queue too.
 */
struct rdo_sink_thread;

struct rdo_sink_thread_ops {
	/* `sp` popped, with the sink's reference: true when done with it, false to hold it. */
	bool (*superpage)(struct rdo_sink_thread *t, struct rdo_superpage *sp);
	/* Optional. A run-end mark popped: every superpage queued before it was taken. */
	void (*run_end)(struct rdo_sink_thread *t);
	/* Optional. Each turn, first: read the sink's socket, keep its time. */
	void (*before_queue)(struct rdo_sink_thread *t);
	/* Optional. Each turn, after the queue is empty or a superpage held: before sleeping. */
	void (*after_queue)(struct rdo_sink_thread *t);
};

/* The longest a sink's thread sleeps: the resolution of its timers and retries. */
#define RDO_SINK_TICK_MS 100

/* Embedded in the sink. The sink may read `pool`; the other fields are the functions' below. */
struct rdo_sink_thread {
	const struct rdo_sink_thread_ops *ops;
	const char *name; /* for the log: "live stream" */
	struct rdo_pool *pool;
	struct rdo_squeue q;
	void *sock; /* what the thread sleeps on besides the queue: a ZeroMQ socket, */
	int fd;	    /* or else a file descriptor (-1: none) */
	pthread_t thread;
	bool started;
	_Atomic bool quit;
	struct rdo_superpage *held; /* the thread's: popped, not yet taken by the sink */
	_Atomic uint64_t superpages, bytes, dropped;
};

/*
 * Set up `t` with a queue of `capacity` entries for superpages of `pool`;
 * `name` (static) names the sink in the log. Logs why and returns -errno on
 * failure; then there is nothing to undo.
 */
int rdo_sink_thread_init(struct rdo_sink_thread *t, const char *name,
			 const struct rdo_sink_thread_ops *ops, struct rdo_pool *pool,
			 size_t capacity);

/*
 * Start the loop on a thread named `thread_name`, sleeping also on the
 * ZeroMQ socket `sock` or, when that is NULL, on `fd` (-1: neither). From
 * here on the thread owns `sock`. Logs why and returns -errno on failure.
 */
int rdo_sink_thread_start(struct rdo_sink_thread *t, const char *thread_name, void *sock, int fd);

/* Wake the thread, wait for it to end. Harmless when it never started or already stopped. */
void rdo_sink_thread_stop(struct rdo_sink_thread *t);

/* After stop: one pass over the queue as the loop makes it, on the caller's thread. */
void rdo_sink_thread_drain(struct rdo_sink_thread *t);

/*
 * Return the held superpage and every queued one to the pool, counted as
 * dropped: how many. From the sink's thread, or after stop.
 */
uint64_t rdo_sink_thread_release_all(struct rdo_sink_thread *t);

/* After stop: release what is left as rdo_sink_thread_release_all() does, close the queue. */
void rdo_sink_thread_fini(struct rdo_sink_thread *t);

/*
 * From the DMA thread: queue `sp` with a reference of the sink's. False when
 * the queue is full: the superpage is not taken and is counted as dropped.
 */
bool rdo_sink_thread_offer(struct rdo_sink_thread *t, struct rdo_superpage *sp);

/* From the DMA thread: queue a run-end mark. False when the queue is full. */
bool rdo_sink_thread_run_end(struct rdo_sink_thread *t);

/* A superpage of `bytes` delivered to a consumer. */
void rdo_sink_thread_count_delivered(struct rdo_sink_thread *t, uint64_t bytes);

/* `n` superpages dropped. */
void rdo_sink_thread_count_dropped(struct rdo_sink_thread *t, uint64_t n);

/*
 * Superpages dropped so far. On the sink's thread this includes every drop
 * the DMA thread counted before it queued the superpage in hand.
 */
uint64_t rdo_sink_thread_drops(const struct rdo_sink_thread *t);

/* The base counters into `st`: superpages, bytes, dropped, queued. */
void rdo_sink_thread_stats(const struct rdo_sink_thread *t, struct rdo_sink_stats *st);

#endif
