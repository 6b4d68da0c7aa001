/*
 * The lossless stream sink: superpages for consumers that must get every one
 * (disk writers, event builders), with credit-based flow control on a ROUTER
 * socket. A consumer says hello with a number of credits; each superpage sent
 * uses one; the consumer returns credits as it consumes. With several
 * consumers each superpage goes to exactly one of them.
 *
 * While at least one consumer is attached the sink takes every superpage and
 * holds it until a consumer has credit for it: a slow consumer fills the
 * pool, and the card then drops at the source, counted there. Nothing is lost
 * between the card and the consumer. With no consumer attached the sink takes
 * nothing. After a run's last superpage each consumer gets a RUN_END notice.
 *
 * Ownership: the sink holds a reference on a superpage from offer until
 * ZeroMQ has sent it to its consumer. A superpage sent and not yet credited
 * back when its consumer detaches, and what is queued when the last one
 * detaches or at destroy, is counted as dropped.
 *
 * Thread-safety: a sink of core/sink.h (offer and run_end from the DMA
 * thread, stats from any thread); the ROUTER socket is the sink thread's.
 */
#ifndef RDO_LOSSLESS_H
#define RDO_LOSSLESS_H

#include <stdbool.h>

#include "common/util.h"

/* The default binds: RDO_DEFAULT_LOSSLESS_TCP (common/util.h) and this. */
#define RDO_DEFAULT_LOSSLESS_IPC "ipc://{runtime}/readoutd.lossless"

/* What config sets. Plain value. */
struct rdo_lossless_opts {
	bool enabled;		   /* default true */
	struct rdo_endpoints bind; /* default loopback tcp and ipc */
	unsigned timeout_ms;	   /* a consumer silent this long is detached; default 5000 */
};

void rdo_lossless_opts_init(struct rdo_lossless_opts *o);

struct rdo_sink;
struct rdo_pool;
struct rdo_zsock_policy;

/*
 * Bind the lossless stream of card `card` through `policy` (core/zsock.h;
 * NULL: local endpoints only) on a socket of `zctx` and start its thread.
 * Logs why and returns NULL on failure. Caller owns the result: destroy it
 * with rdo_sink_destroy(), which tells every consumer the stream has ended,
 * before `zctx` ends and while `pool` lives.
 */
struct rdo_sink *rdo_lossless_create(void *zctx, const struct rdo_zsock_policy *policy,
				     const char *card, struct rdo_pool *pool,
				     const struct rdo_lossless_opts *o);

#endif
