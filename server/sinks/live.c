#include "sinks/live.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "core/pool.h"
#include "proto/readout.pb-c.h"
#include "core/sink.h"
#include "core/zsock.h"

/* The sink's own queue: a publisher that falls this far behind drops. */
#define LIVE_QUEUE 16

struct live {
	struct rdo_sink base;
	char card[RDO_CARD_NAME_MAX];
	struct rdo_pool *pool;
	void *sock; /* the publisher thread's, after create */
	struct rdo_squeue q;
	struct rdo_endpoints bound;
	pthread_t thread;
	_Atomic bool quit;
	_Atomic uint64_t superpages, bytes, dropped;
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
	rdo_pool_ref(sp);
	if (rdo_squeue_push(&lv->q, sp->index))
		return true;
	rdo_pool_put(sp->pool, sp);
	atomic_fetch_add_explicit(&lv->dropped, 1, memory_order_relaxed); /* a counter */
	return false;
}

static void live_stats(struct rdo_sink *s, struct rdo_sink_stats *st)
{
	struct live *lv = to_live(s);
	/* relaxed: counters */
	*st = (struct rdo_sink_stats){
	    .name = "live",
	    .superpages = atomic_load_explicit(&lv->superpages, memory_order_relaxed),
	    .bytes = atomic_load_explicit(&lv->bytes, memory_order_relaxed),
	    .dropped = atomic_load_explicit(&lv->dropped, memory_order_relaxed),
	    .queued = (uint32_t)rdo_squeue_count(&lv->q),
	    .consumers = atomic_load_explicit(&lv->subscriptions, memory_order_relaxed),
	    .endpoints = &lv->bound,
	};
}

/* How long the publisher waits for a subscriber at its high-water mark before dropping. */
#define LIVE_WAIT_MS 100

/*
 * Publish one superpage, the payload zero-copy: ZeroMQ releases it with
 * rdo_pool_release once every subscriber's copy of the message is sent. A
 * subscriber at its high-water mark makes the whole message wait
 * (XPUB_NODROP), then be dropped here and counted.
 */
static void publish(struct live *lv, struct rdo_superpage *sp)
{
	char topic[RDO_CARD_NAME_MAX + 8];
	int tlen = snprintf(topic, sizeof(topic), "%s/%02u", lv->card, sp->link);
	/* relaxed: the queue's release/acquire orders the DMA thread's drops before this one */
	uint64_t dropped = atomic_load_explicit(&lv->dropped, memory_order_relaxed);
	/* A subscriber at its high-water mark makes this wait, up to LIVE_WAIT_MS (SNDTIMEO). */
	if (zmq_send(lv->sock, topic, (size_t)tlen, ZMQ_SNDMORE) < 0) {
		rdo_pool_put(sp->pool, sp);
		atomic_fetch_add_explicit(&lv->dropped, 1, memory_order_relaxed); /* a counter */
		return;
	}
	size_t size = rdo_sink_send(lv->sock, lv->card, sp, dropped);
	/* relaxed: counters */
	atomic_fetch_add_explicit(&lv->superpages, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&lv->bytes, size, memory_order_relaxed);
}

/* Subscriptions arrive as messages on the XPUB: 1 + topic, or 0 + topic. */
static void read_subscriptions(struct live *lv)
{
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

static void *live_thread(void *arg)
{
	struct live *lv = arg;
	zmq_pollitem_t items[2] = {{lv->sock, 0, ZMQ_POLLIN, 0},
				   {NULL, rdo_squeue_fd(&lv->q), ZMQ_POLLIN, 0}};
	/* acquire: nothing but the flag itself */
	while (!atomic_load_explicit(&lv->quit, memory_order_acquire)) {
		uint32_t idx;
		while (rdo_squeue_pop(&lv->q, &idx))
			publish(lv, rdo_pool_at(lv->pool, idx));
		read_subscriptions(lv);
		if (!rdo_squeue_sleep(&lv->q))
			continue;
		zmq_poll(items, 2, 100);
		rdo_squeue_woken(&lv->q);
	}
	return NULL;
}

/* Whatever is still queued goes back to the pool, counted as dropped. */
static void live_destroy(struct rdo_sink *s)
{
	struct live *lv = to_live(s);
	atomic_store_explicit(&lv->quit, true, memory_order_release); /* a flag */
	pthread_join(lv->thread, NULL);
	atomic_fetch_add_explicit(&lv->dropped, rdo_squeue_release_all(&lv->q, lv->pool),
				  memory_order_relaxed); /* a counter */
	zmq_close(lv->sock);
	rdo_squeue_fini(&lv->q);
	free(lv);
}

static const struct rdo_sink_ops live_ops = {
    .name = "live",
    .offer = live_offer,
    .stats = live_stats,
    .destroy = live_destroy,
};

struct rdo_sink *rdo_live_create(void *zctx, const struct rdo_zsock_policy *policy, const char *card,
				 struct rdo_pool *pool, const struct rdo_live_opts *o)
{
	struct live *lv = calloc(1, sizeof(*lv));
	if (!lv) {
		rdo_err("live stream: out of memory");
		return NULL;
	}
	lv->base.ops = &live_ops;
	lv->pool = pool;
	rdo_strlcpy(lv->card, card, sizeof(lv->card));
	int qrc = rdo_squeue_init(&lv->q, LIVE_QUEUE);
	if (qrc) {
		rdo_err("live stream: cannot create its queue: %s (out of file descriptors? raise "
			"LimitNOFILE)",
			strerror(-qrc));
		goto fail;
	}
	lv->sock = zmq_socket(zctx, ZMQ_XPUB);
	int one = 1, hwm = (int)o->hwm, linger = 0, wait = LIVE_WAIT_MS;
	if (!lv->sock || zmq_setsockopt(lv->sock, ZMQ_XPUB_NODROP, &one, sizeof(one)) ||
	    zmq_setsockopt(lv->sock, ZMQ_SNDTIMEO, &wait, sizeof(wait)) ||
	    zmq_setsockopt(lv->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(lv->sock, ZMQ_LINGER, &linger, sizeof(linger))) {
		rdo_err("live stream: cannot create its socket: %s", zmq_strerror(errno));
		goto fail_queue;
	}
	if (rdo_zsock_bind_all(lv->sock, policy, "live stream", &o->bind, &lv->bound))
		goto fail_sock;
	int rc = pthread_create(&lv->thread, NULL, live_thread, lv);
	if (rc) {
		rdo_err("live stream: cannot start its thread: %s", strerror(rc));
		goto fail_sock;
	}
	pthread_setname_np(lv->thread, "rdo-live");
	return &lv->base;
fail_sock:
	zmq_close(lv->sock);
fail_queue:
	rdo_squeue_fini(&lv->q);
fail:
	free(lv);
	return NULL;
}
