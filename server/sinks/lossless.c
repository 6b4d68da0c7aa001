#include "sinks/lossless.h"

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
#include "proto/readout.pb-c.h"

#define MAX_CONSUMERS 16
#define ID_MAX	      256
#define PING_NS	      1000000000ull

struct consumer {
	uint8_t id[ID_MAX]; /* the ROUTER's routing id of its connection */
	size_t idlen;
	char name[64];
	uint32_t credits;
	uint64_t last_seen_ns, sent;
	uint64_t unacked; /* sent, and not yet returned as a credit */
};

struct lossless {
	struct rdo_sink base;
	struct rdo_sink_thread t;
	char card[RDO_CARD_NAME_MAX];
	void *sock; /* the sink thread's, after create */
	struct rdo_endpoints bound;
	uint64_t timeout_ns;
	/* The sink thread's: */
	struct consumer consumer[MAX_CONSUMERS];
	unsigned nconsumers, rr;
	uint64_t next_ping_ns;
	/* For the DMA thread and the stats: */
	_Atomic uint32_t attached;
};

void rdo_lossless_opts_init(struct rdo_lossless_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->enabled = true;
	rdo_endpoints_add(&o->bind, RDO_DEFAULT_LOSSLESS_TCP);
	rdo_endpoints_add(&o->bind, RDO_DEFAULT_LOSSLESS_IPC);
	o->timeout_ms = 5000;
}

static struct lossless *to_lossless(struct rdo_sink *s)
{
	return container_of(s, struct lossless, base);
}

/* Take every superpage while a consumer is attached; the queue holds the whole pool. */
static bool lossless_offer(struct rdo_sink *s, struct rdo_superpage *sp)
{
	struct lossless *ll = to_lossless(s);
	if (!atomic_load_explicit(&ll->attached, memory_order_relaxed)) /* a level */
		return false;
	return rdo_sink_thread_offer(&ll->t, sp);
}

/* The run's last superpage is queued: say so to the consumers once it is sent. */
static void lossless_run_end(struct rdo_sink *s, uint64_t run)
{
	(void)run; /* the superpages carry it */
	struct lossless *ll = to_lossless(s);
	if (atomic_load_explicit(&ll->attached, memory_order_relaxed) && /* a level */
	    !rdo_sink_thread_run_end(&ll->t))
		rdo_warn("lossless stream: its queue is full; the consumers miss this run's end");
}

static void lossless_stats(struct rdo_sink *s, struct rdo_sink_stats *st)
{
	struct lossless *ll = to_lossless(s);
	/* relaxed: a level */
	*st = (struct rdo_sink_stats){
	    .name = "lossless",
	    .consumers = atomic_load_explicit(&ll->attached, memory_order_relaxed),
	    .endpoints = &ll->bound,
	};
	rdo_sink_thread_stats(&ll->t, st);
}

/* Send a one-frame notice to a consumer: 0, or -errno (EHOSTUNREACH: it is gone). */
static int notice(struct lossless *ll, const uint8_t *id, size_t idlen, Rdo__NoticeKind kind,
		  const char *message)
{
	Rdo__StreamNotice n = RDO__STREAM_NOTICE__INIT;
	n.version = RDO_PROTOCOL_VERSION;
	n.kind = kind;
	n.message = (char *)message;
	n.card = ll->card;
	n.superpage_size = rdo_pool_superpage_size(ll->t.pool);
	uint8_t buf[512];
	size_t len = rdo__stream_notice__get_packed_size(&n);
	if (len > sizeof(buf))
		return -EMSGSIZE;
	rdo__stream_notice__pack(&n, buf);
	if (zmq_send(ll->sock, id, idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
		return -errno;
	zmq_send(ll->sock, buf, len, 0);
	return 0;
}

static void set_attached(struct lossless *ll)
{
	atomic_store_explicit(&ll->attached, ll->nconsumers, memory_order_relaxed); /* a level */
}

/*
 * Forget a consumer. What it had not acknowledged, it did not consume: still
 * queued in ZeroMQ, held when it died, or received after it decided to leave.
 * Those superpages are counted as dropped, also after a bye.
 */
static void detach(struct lossless *ll, unsigned i, const char *why)
{
	struct consumer *c = &ll->consumer[i];
	rdo_notice("lossless stream: consumer \"%s\" detached (%s) after %llu superpages, %llu "
		   "not acknowledged%s",
		   c->name, why, (unsigned long long)c->sent, (unsigned long long)c->unacked,
		   c->unacked ? ": counted as dropped" : "");
	rdo_sink_thread_count_dropped(&ll->t, c->unacked);
	ll->consumer[i] = ll->consumer[--ll->nconsumers];
	set_attached(ll);
}

static struct consumer *find(struct lossless *ll, const uint8_t *id, size_t idlen)
{
	for (unsigned i = 0; i < ll->nconsumers; i++)
		if (ll->consumer[i].idlen == idlen && memcmp(ll->consumer[i].id, id, idlen) == 0)
			return &ll->consumer[i];
	return NULL;
}

static uint32_t add_credits(uint32_t have, uint64_t more, uint32_t cap)
{
	return have + more > cap ? cap : (uint32_t)(have + more);
}

static void hello(struct lossless *ll, const uint8_t *id, size_t idlen, const Rdo__StreamHello *h,
		  uint64_t now)
{
	uint32_t cap = rdo_pool_count(ll->t.pool);
	struct consumer *c = find(ll, id, idlen);
	if (!c && ll->nconsumers == MAX_CONSUMERS) {
		notice(ll, id, idlen, RDO__NOTICE_KIND__NOTICE_REFUSED,
		       "too many consumers on this lossless stream (16): detach one first");
		return;
	}
	if (!c) {
		c = &ll->consumer[ll->nconsumers++];
		memset(c, 0, sizeof(*c));
		memcpy(c->id, id, idlen);
		c->idlen = idlen;
	}
	rdo_strlcpy(c->name, h->name && h->name[0] ? h->name : "unnamed", sizeof(c->name));
	c->credits = add_credits(0, h->credits, cap);
	c->unacked = 0; /* a fresh start: what it had in flight before is its own affair */
	c->last_seen_ns = now;
	set_attached(ll);
	rdo_notice("lossless stream: consumer \"%s\" attached with %u credits", c->name,
		   c->credits);
	notice(ll, id, idlen, RDO__NOTICE_KIND__NOTICE_WELCOME, "welcome");
}

/* Read what consumers sent: hellos, credits, byes. */
static void read_requests(struct lossless *ll, uint64_t now)
{
	for (;;) {
		uint8_t id[ID_MAX];
		int idlen = zmq_recv(ll->sock, id, sizeof(id), ZMQ_DONTWAIT);
		if (idlen < 0)
			return;
		zmq_msg_t m;
		zmq_msg_init(&m);
		int more = 0;
		size_t ml = sizeof(more);
		zmq_getsockopt(ll->sock, ZMQ_RCVMORE, &more, &ml);
		if (!more || zmq_msg_recv(&m, ll->sock, 0) < 0) {
			zmq_msg_close(&m);
			continue;
		}
		while (zmq_msg_more(&m)) { /* extra frames: not ours to read */
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			zmq_msg_recv(&m, ll->sock, 0);
		}
		Rdo__StreamRequest *r =
		    rdo__stream_request__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
		zmq_msg_close(&m);
		size_t n = (size_t)idlen < sizeof(id) ? (size_t)idlen : sizeof(id);
		struct consumer *c = find(ll, id, n);
		if (!r || r->version != RDO_PROTOCOL_VERSION) {
			char msg[128];
			snprintf(msg, sizeof(msg), "%s: expected a StreamRequest of protocol %d",
				 r ? "wrong protocol version" : "malformed request",
				 RDO_PROTOCOL_VERSION);
			notice(ll, id, n, RDO__NOTICE_KIND__NOTICE_REFUSED, msg);
		} else if (r->msg_case == RDO__STREAM_REQUEST__MSG_HELLO) {
			hello(ll, id, n, r->hello, now);
		} else if (!c) {
			notice(ll, id, n, RDO__NOTICE_KIND__NOTICE_REFUSED,
			       "not attached: send a hello first");
		} else if (r->msg_case == RDO__STREAM_REQUEST__MSG_CREDIT) {
			c->credits = add_credits(c->credits, r->credit, rdo_pool_count(ll->t.pool));
			c->unacked -= r->credit < c->unacked ? r->credit : c->unacked;
			c->last_seen_ns = now;
		} else if (r->msg_case == RDO__STREAM_REQUEST__MSG_BYE) {
			detach(ll, (unsigned)(c - ll->consumer), "said bye");
		} else {
			c->last_seen_ns = now;
		}
		rdo__stream_request__free_unpacked(r, NULL);
	}
}

/*
 * Send `sp` to a consumer with credit, round-robin. True if sent; false if no
 * consumer has credit now (the superpage stays held).
 */
static bool send_one(struct rdo_sink_thread *t, struct rdo_superpage *sp)
{
	struct lossless *ll = container_of(t, struct lossless, t);
	while (ll->nconsumers) {
		unsigned i, k;
		for (k = 0; k < ll->nconsumers; k++) {
			i = (ll->rr + k) % ll->nconsumers;
			if (ll->consumer[i].credits)
				break;
		}
		if (k == ll->nconsumers)
			return false;
		struct consumer *c = &ll->consumer[i];
		if (zmq_send(ll->sock, c->id, c->idlen, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
			if (errno == EAGAIN)
				return false;
			detach(ll, i, "connection gone");
			continue;
		}
		uint64_t dropped = rdo_sink_thread_drops(t);
		rdo_sink_thread_count_delivered(t, rdo_sink_send(ll->sock, ll->card, sp, dropped));
		c->credits--;
		c->sent++;
		c->unacked++;
		ll->rr = i + 1;
		return true;
	}
	return false;
}

/* No consumer left: what is queued for the stream has nowhere to go. Counted. */
static void release_all(struct lossless *ll)
{
	uint64_t n = rdo_sink_thread_release_all(&ll->t);
	if (n)
		rdo_warn("lossless stream: no consumer left: %llu queued superpages dropped",
			 (unsigned long long)n);
}

/* Send a notice to every consumer; forget those whose connection is gone. */
static void notice_all(struct lossless *ll, Rdo__NoticeKind kind, const char *message)
{
	for (unsigned i = 0; i < ll->nconsumers;) {
		struct consumer *c = &ll->consumer[i];
		if (notice(ll, c->id, c->idlen, kind, message) == -EHOSTUNREACH)
			detach(ll, i, "connection gone");
		else
			i++;
	}
}

/* Each turn of the sink's thread: what the consumers sent, who is silent, the ping. */
static void housekeeping(struct rdo_sink_thread *t)
{
	struct lossless *ll = container_of(t, struct lossless, t);
	uint64_t now = rdo_now_ns();
	read_requests(ll, now);
	for (unsigned i = 0; i < ll->nconsumers;) {
		if (now - ll->consumer[i].last_seen_ns > ll->timeout_ns)
			detach(ll, i, "silent too long");
		else
			i++;
	}
	if (now >= ll->next_ping_ns) {
		ll->next_ping_ns = now + PING_NS;
		notice_all(ll, RDO__NOTICE_KIND__NOTICE_PING, "");
	}
	if (!ll->nconsumers)
		release_all(ll);
}

static void run_ended(struct rdo_sink_thread *t)
{
	notice_all(container_of(t, struct lossless, t), RDO__NOTICE_KIND__NOTICE_RUN_END,
		   "the run stopped");
}

static void lossless_destroy(struct rdo_sink *s)
{
	struct lossless *ll = to_lossless(s);
	rdo_sink_thread_stop(&ll->t);
	notice_all(ll, RDO__NOTICE_KIND__NOTICE_END, "readoutd is stopping");
	ll->nconsumers = 0;
	set_attached(ll);
	release_all(ll);
	rdo_sink_thread_fini(&ll->t);
	zmq_close(ll->sock);
	free(ll);
}

static const struct rdo_sink_thread_ops lossless_thread_ops = {
    .superpage = send_one,
    .run_end = run_ended,
    .before_queue = housekeeping,
};

static const struct rdo_sink_ops lossless_ops = {
    .name = "lossless",
    .offer = lossless_offer,
    .run_end = lossless_run_end,
    .stats = lossless_stats,
    .destroy = lossless_destroy,
};

struct rdo_sink *rdo_lossless_create(void *zctx, const struct rdo_zsock_policy *policy,
				     const char *card, struct rdo_pool *pool,
				     const struct rdo_lossless_opts *o)
{
	struct lossless *ll = calloc(1, sizeof(*ll));
	if (!ll) {
		rdo_err("lossless stream: out of memory");
		return NULL;
	}
	ll->base.ops = &lossless_ops;
	ll->timeout_ns = (uint64_t)o->timeout_ms * 1000000u;
	rdo_strlcpy(ll->card, card, sizeof(ll->card));
	if (rdo_sink_thread_init(&ll->t, "lossless stream", &lossless_thread_ops, pool,
				 rdo_pool_count(pool) + RDO_SQUEUE_MARKS))
		goto fail;
	ll->sock = zmq_socket(zctx, ZMQ_ROUTER);
	int one = 1, linger = 1000, hwm = 0;
	if (!ll->sock || zmq_setsockopt(ll->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one)) ||
	    zmq_setsockopt(ll->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(ll->sock, ZMQ_LINGER, &linger, sizeof(linger))) {
		rdo_err("lossless stream: cannot create its socket: %s", zmq_strerror(errno));
		goto fail_queue;
	}
	if (rdo_zsock_bind_all(ll->sock, policy, "lossless stream", &o->bind, &ll->bound) ||
	    rdo_sink_thread_start(&ll->t, "rdo-lossless", ll->sock, -1))
		goto fail_sock;
	return &ll->base;
fail_sock:
	zmq_close(ll->sock);
fail_queue:
	rdo_sink_thread_fini(&ll->t);
fail:
	free(ll);
	return NULL;
}
