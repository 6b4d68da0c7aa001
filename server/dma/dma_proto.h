/*
 * Inside the DMA channel: what the channel core (dma.c) shares with the DMA
 * protocols that drive a card's engine. Private to server/dma*.c.
 *
 * The core owns what every protocol needs: the pool, the superpages posted to
 * each link (in posting order), the sinks, the states, the commands and the
 * counters. A protocol owns the card's DMA registers and memory beyond the
 * pool, and fills these ops; all of them run on the channel thread.
 *   superpage (dma_superpage.c): readout cards and the emulator: free FIFOs
 *     per link, completion descriptors in host memory, ready counters;
 *   edu (dma_edu.c): QEMU's edu device: one host-driven copy engine and a
 *     4 KiB device buffer, one link.
 */
#ifndef RDO_DMA_PROTO_H
#define RDO_DMA_PROTO_H

#include <pthread.h>
#include <stdatomic.h>

#include "core/pool.h"
#include "dma/dma.h"

struct rdo_regmap;

/* A register or field a protocol uses, resolved once from the map. */
struct dreg {
	bool present;
	unsigned bar, width, lsb;
	uint64_t off, mask; /* mask in register position; all ones of width for a register */
};

struct dma_link {
	unsigned index;
	struct rdo_superpage **posted; /* in the order posted, `depth` entries */
	uint32_t posted_head, posted_tail;
	uint64_t sequence;
	uint64_t card_dropped; /* the card's dropped pages as last read, for the superpage meta */
	uint64_t last_pages, last_progress_ns;
	/* For readers of the stats; written by the channel thread only. */
	_Atomic uint64_t superpages, bytes, pages, pages_dropped, bytes_dropped;
	_Atomic uint32_t in_card;
	_Atomic bool up, stalled;
};

struct dma_proto {
	const char *name;
	/* The size of d->proto_state: zeroed by the core before setup, freed after teardown. */
	size_t state_size;
	/*
	 * Resolve the registers in `map`, set d->depth (a power of two: the most
	 * superpages one link holds) and allocate what else the protocol needs.
	 * 0 or -errno, logged. Runs before the channel thread exists.
	 */
	int (*setup)(struct rdo_dma *d, const struct rdo_regmap *map);
	/* Free what setup allocated; after the thread is gone, also after a failed setup. */
	void (*teardown)(struct rdo_dma *d);
	/* From reset: program the engine, post the first superpages, enable it. */
	void (*start)(struct rdo_dma *d);
	/*
	 * Deliver what the card has filled (dma_deliver); the number delivered.
	 * It leaves the card's interrupt acknowledged (INTx is unmasked after it).
	 */
	unsigned (*collect)(struct rdo_dma *d);
	/* Post free superpages while the pool and the links' shares allow. */
	void (*post)(struct rdo_dma *d);
	/* Stop taking new data; what is partly filled is flushed to collect. */
	void (*disable)(struct rdo_dma *d);
	/*
	 * True while the engine still flushes after disable; `collecting`: the
	 * core calls collect meanwhile (false after a protocol error).
	 */
	bool (*busy)(struct rdo_dma *d, bool collecting);
	/* Reset the engine; the core then takes back every posted superpage. */
	void (*reset)(struct rdo_dma *d);
	/* Optional: clear the card's error flags (the reset command, after the last counters). */
	void (*clear_errors)(struct rdo_dma *d);
	/*
	 * Read the card's per-link counters into the links' stats when
	 * `counting`, raise the card's faults (dma_note_error); return the mask
	 * of links that are up.
	 */
	uint64_t (*poll_card)(struct rdo_dma *d, bool counting);
};

extern const struct dma_proto rdo_dma_superpage_proto;
extern const struct dma_proto rdo_dma_edu_proto;

enum dma_cmd { CMD_NONE, CMD_START, CMD_STOP, CMD_RESET, CMD_QUIT };

struct rdo_dma {
	struct rdo_card *card;
	const struct dma_proto *proto;
	void *proto_state; /* the protocol's */
	struct rdo_dma_opts o;
	unsigned address_bits; /* the card's DMA engine, from the map */
	struct rdo_events *events;
	struct rdo_dma_buf mem;
	struct rdo_pool *pool;
	struct rdo_sink *sink[RDO_DMA_MAX_SINKS];
	unsigned nsinks;
	unsigned nlinks, depth;
	unsigned share; /* superpages one link may hold in the card: a dead link cannot take all */
	uint32_t link_mask;
	struct dma_link link[RDO_DMA_MAX_LINKS];
	int irq_fd, cmd_fd, done_fd;
	pthread_t thread;
	/* Commands: the control thread writes cmd_run then cmd; the channel answers in cmd_rc. */
	uint64_t cmd_run;
	_Atomic int cmd;
	int cmd_rc;
	char cmd_err[256];
	_Atomic uint64_t cmd_done;
	uint64_t cmd_sent;
	/* Owned by the channel thread, atomics for readers. */
	_Atomic int state;
	_Atomic uint64_t run, started_ns, errors, fifo_overflows, unclaimed;
	_Atomic uint64_t heartbeat; /* turns of the thread's loop, for the service watchdog */
	uint64_t next_housekeeping_ns;
	unsigned rr; /* the link to post to first */
	/* The one lock: a diagnostic string, never taken on the data path. */
	pthread_mutex_t error_lock;
	char last_error[256];
};

/* Register access through a resolved dreg: a field is read-modify-written. */
uint64_t dma_rd(struct rdo_dma *d, const struct dreg *r);
void dma_wr(struct rdo_dma *d, const struct dreg *r, uint64_t v);

/* Resolve the name `fmt` makes in `map`; a missing name is an error (logged) when `required`. */
int dma_resolve(struct rdo_dma *d, const struct rdo_regmap *map, struct dreg *r, bool required,
		const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Count an error, keep it as the last one, and raise it as an event of `kind`. */
void dma_note_error(struct rdo_dma *d, const char *kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The protocol broke: disable the engine where it is and wait for a reset. */
void dma_protocol_error(struct rdo_dma *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Posting order per link. */
bool dma_link_can_post(struct rdo_dma *d, struct dma_link *l);
void dma_posted_push(struct rdo_dma *d, struct dma_link *l, struct rdo_superpage *sp);
struct rdo_superpage *dma_posted_oldest(struct rdo_dma *d, struct dma_link *l); /* NULL: none */
void dma_posted_pop(struct dma_link *l);

/*
 * A superpage the card filled: `length` bytes (0: flushed empty, straight
 * back to the pool) with RDO_SP_* `flags`; to every sink, then the channel's
 * reference back. Pop it from the link first.
 */
void dma_deliver(struct rdo_dma *d, struct dma_link *l, struct rdo_superpage *sp, uint32_t length,
		 uint32_t flags);

uint64_t dma_now_wall_ns(void);

#endif
