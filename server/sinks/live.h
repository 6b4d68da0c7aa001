/*
 * The live stream sink: every superpage, zero-copy, to ZeroMQ subscribers
 * that may miss some. Multipart [topic "CARD/LL"][SuperpageHeader][payload];
 * a subscriber picks a card with "CARD/" and a link with "CARD/03".
 *
 * It never holds up the card: a subscriber at its high-water mark makes the
 * publisher wait up to 100 ms, then drop that superpage for all subscribers;
 * meanwhile its queue fills and new superpages are dropped at the door. Every
 * drop is counted, and subscribers see the count in the next header's
 * dropped_before. It takes nothing while nobody subscribes.
 *
 * Ownership: the sink holds a reference on a superpage from offer until
 * ZeroMQ has sent the message to every subscriber, or until it drops it;
 * destroy returns what is still queued to the pool, counted as dropped.
 *
 * Thread-safety: a sink of core/sink.h (offer from the DMA thread, stats from
 * any thread); the XPUB socket is the sink thread's.
 */
#ifndef RDO_LIVE_H
#define RDO_LIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* The default binds: RDO_DEFAULT_LIVE_TCP (common/util.h) and this. */
#define RDO_DEFAULT_LIVE_IPC "ipc://{runtime}/readoutd.live"

/* What config sets. Plain value. */
struct rdo_live_opts {
	bool enabled;		   /* default true */
	struct rdo_endpoints bind; /* default loopback tcp and ipc */
	unsigned hwm;		   /* superpages queued per subscriber; default 32 */
};

void rdo_live_opts_init(struct rdo_live_opts *o);

struct rdo_sink;
struct rdo_pool;
struct rdo_zsock_policy;

/*
 * Bind the live stream of card `card` through `policy` (core/zsock.h;
 * NULL: local endpoints only) on a socket of `zctx` and start its thread.
 * Logs why and returns NULL on failure. Caller owns the result: destroy it
 * with rdo_sink_destroy() before `zctx` ends and while `pool` lives;
 * endpoints as bound are in the sink's stats.
 */
struct rdo_sink *rdo_live_create(void *zctx, const struct rdo_zsock_policy *policy,
				 const char *card, struct rdo_pool *pool,
				 const struct rdo_live_opts *o);

#endif
