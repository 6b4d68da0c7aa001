#include "sinks/live.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "core/pool.h"
#include "core/sink.h"
#include "core/zsock.h"

/* The sink's own queue: a publisher that falls this far behind drops. */
#define LIVE_QUEUE 16

struct live {
	struct rdo_sink base;
	struct rdo_sink_thread t;
	char card[RDO_CARD_NAME_MAX];
	void *sock; /* the publisher thread's, after create */
	struct rdo_endpoints bound;
	_Atomic uint32_t subscriptions;
};

void rdo_live_opts_init(struct rdo_live_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->enabled = true;
	rdo_endpoints_add(&o->bind, RDO_DEFAULT_LIVE_TCP);
	rdo_endpoints_add(&o->bind, RDO_DEFAULT_LIVE_IPC);
	o->hwm = 32;
}

static struct live *to_live(struct rdo_sink *s)
{
	return container_of(s, struct live, base);
}

static bool live_offer(struct rdo_sink *s, struct rdo_superpage *sp)
{
	struct live *lv = to_live(s);
	if (!atomic_load_explicit(&lv->subscriptions, memory_order_relaxed)) /* a level */
		return false; /* nobody listens: nothing to publish, nothing dropped */
	return rdo_sink_thread_offer(&lv->t, sp);
}

static void live_stats(struct rdo_sink *s, struct rdo_sink_stats *st)
{
	struct live *lv = to_live(s);
	/* relaxed: a level */
	*st = (struct rdo_sink_stats){
	    .name = "live",
	    .consumers = atomic_load_explicit(&lv->subscriptions, memory_order_relaxed),
	    .endpoints = &lv->bound,
	};
	rdo_sink_thread_stats(&lv->t, st);
}

/* How long the publisher waits for a subscriber at its high-water mark before dropping. */
#define LIVE_WAIT_MS 100

/*
 * Publish one superpage, the payload zero-copy: ZeroMQ releases it with
 * rdo_pool_release once every subscriber's copy of the message is sent. A
 * subscriber at its high-water mark makes the whole message wait
 * (XPUB_NODROP), then be dropped here and counted.
 */
static bool publish(struct rdo_sink_thread *t, struct rdo_superpage *sp)
{
	struct live *lv = container_of(t, struct live, t);
	char topic[RDO_CARD_NAME_MAX + 8];
	int tlen = snprintf(topic, sizeof(topic), "%s/%02u", lv->card, sp->link);
	uint64_t dropped = rdo_sink_thread_drops(t);
	/* A subscriber at its high-water mark makes this wait, up to LIVE_WAIT_MS (SNDTIMEO). */
	if (zmq_send(lv->sock, topic, (size_t)tlen, ZMQ_SNDMORE) < 0) {
		rdo_pool_put(sp->pool, sp);
		rdo_sink_thread_count_dropped(t, 1);
		return true;
	}
	rdo_sink_thread_count_delivered(t, rdo_sink_send(lv->sock, lv->card, sp, dropped));
	return true;
}

/* Subscriptions arrive as messages on the XPUB: 1 + topic, or 0 + topic. */
static void read_subscriptions(struct rdo_sink_thread *t)
{
	struct live *lv = container_of(t, struct live, t);
	uint8_t buf[128];
	int n;
	while ((n = zmq_recv(lv->sock, buf, sizeof(buf), ZMQ_DONTWAIT)) > 0) {
		if (buf[0] == 1)
			atomic_fetch_add_explicit(&lv->subscriptions, 1,
						  memory_order_relaxed); /* a counter */
		else if (buf[0] == 0 &&
			 atomic_load_explicit(&lv->subscriptions, memory_order_relaxed))
			atomic_fetch_sub_explicit(&lv->subscriptions, 1,
						  memory_order_relaxed); /* a counter */
	}
}

/* Whatever is still queued goes back to the pool, counted as dropped. */
static void live_destroy(struct rdo_sink *s)
{
	struct live *lv = to_live(s);
	rdo_sink_thread_stop(&lv->t);
	rdo_sink_thread_fini(&lv->t);
	zmq_close(lv->sock);
	free(lv);
}

static const struct rdo_sink_thread_ops live_thread_ops = {
    .superpage = publish,
    .after_queue = read_subscriptions,
};

static const struct rdo_sink_ops live_ops = {
    .name = "live",
    .offer = live_offer,
    .stats = live_stats,
    .destroy = live_destroy,
};

struct rdo_sink *rdo_live_create(void *zctx, const struct rdo_zsock_policy *policy,
				 const char *card, struct rdo_pool *pool,
				 const struct rdo_live_opts *o)
{
	struct live *lv = calloc(1, sizeof(*lv));
	if (!lv) {
		rdo_err("live stream: out of memory");
		return NULL;
	}
	lv->base.ops = &live_ops;
	rdo_strlcpy(lv->card, card, sizeof(lv->card));
	if (rdo_sink_thread_init(&lv->t, "live stream", &live_thread_ops, pool, LIVE_QUEUE))
		goto fail;
	lv->sock = zmq_socket(zctx, ZMQ_XPUB);
	int one = 1, hwm = (int)o->hwm, linger = 0, wait = LIVE_WAIT_MS;
	if (!lv->sock || zmq_setsockopt(lv->sock, ZMQ_XPUB_NODROP, &one, sizeof(one)) ||
	    zmq_setsockopt(lv->sock, ZMQ_SNDTIMEO, &wait, sizeof(wait)) ||
	    zmq_setsockopt(lv->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(lv->sock, ZMQ_LINGER, &linger, sizeof(linger))) {
		rdo_err("live stream: cannot create its socket: %s", zmq_strerror(errno));
		goto fail_queue;
	}
	if (rdo_zsock_bind_all(lv->sock, policy, "live stream", &o->bind, &lv->bound) ||
	    rdo_sink_thread_start(&lv->t, "rdo-live", lv->sock, -1))
		goto fail_sock;
	return &lv->base;
fail_sock:
	zmq_close(lv->sock);
fail_queue:
	rdo_sink_thread_fini(&lv->t);
fail:
	free(lv);
	return NULL;
}
