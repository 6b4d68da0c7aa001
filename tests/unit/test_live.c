#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "core/pool.h"
#include "core/sink.h"
#include "proto/readout.pb-c.h"
#include "sinks/live.h"
#include "unit/sink_fixture.h"

#define SP_SIZE	 8192u
#define SP_COUNT 32u
#define ENDPOINT "inproc://test-live"

static struct fixture_pool fp;
static void *zctx;
static struct rdo_sink *sink; /* destroyed by the test, or by the teardown after a failure */
static void *sub;	      /* the subscriber, closed likewise */

static void setup(void)
{
	zctx = fixture_begin(&fp, SP_SIZE, SP_COUNT);
}

static void teardown(void)
{
	rdo_sink_destroy(&sink);
	if (sub)
		zmq_close(sub);
	fixture_end(&fp, zctx);
}

TestSuite(live, .init = setup, .fini = teardown);

static struct rdo_sink *make_live(unsigned hwm)
{
	struct rdo_live_opts o;
	rdo_live_opts_init(&o);
	memset(&o.bind, 0, sizeof(o.bind));
	rdo_endpoints_add(&o.bind, ENDPOINT);
	o.hwm = hwm;
	sink = rdo_live_create(zctx, NULL, "sim0", fp.pool, &o);
	cr_assert_not_null(sink);
	return sink;
}

/* `sub`: a subscriber to `topic` holding at most `hwm` messages, once the sink counts it. */
static void subscribe(struct rdo_sink *s, const char *topic, int hwm)
{
	sub = zmq_socket(zctx, ZMQ_SUB);
	cr_assert_not_null(sub);
	int linger = 0, timeout = 2000;
	zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sub, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	cr_assert_eq(zmq_setsockopt(sub, ZMQ_SUBSCRIBE, topic, strlen(topic)), 0);
	cr_assert_eq(zmq_connect(sub, ENDPOINT), 0, "%s", zmq_strerror(zmq_errno()));
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.consumers == 1, 2000);
}

struct received {
	char topic[32];
	Rdo__SuperpageHeader *h; /* free with rdo__superpage_header__free_unpacked */
	bool payload_ok;
	size_t payload_size;
};

/* One [topic][header][payload] message, the payload checked against the fixture's pattern. */
static struct received receive(void)
{
	struct received r = {0};
	int n = zmq_recv(sub, r.topic, sizeof(r.topic) - 1, 0);
	cr_assert_geq(n, 0, "no message: %s", zmq_strerror(zmq_errno()));
	int more = 0;
	size_t ml = sizeof(more);
	zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &ml);
	cr_assert(more, "a topic \"%s\" alone", r.topic);
	zmq_msg_t m;
	zmq_msg_init(&m);
	cr_assert_geq(zmq_msg_recv(&m, sub, 0), 0);
	r.h = rdo__superpage_header__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
	cr_assert_not_null(r.h, "the header does not unpack");
	cr_assert(zmq_msg_more(&m), "a header without a payload");
	cr_assert_geq(zmq_msg_recv(&m, sub, 0), 0);
	cr_assert(!zmq_msg_more(&m), "more than three frames");
	r.payload_size = zmq_msg_size(&m);
	r.payload_ok =
	    fixture_payload_ok(zmq_msg_data(&m), r.payload_size, r.h->link, r.h->sequence);
	zmq_msg_close(&m); /* zero-copy: this returns the superpage to the pool */
	return r;
}

/* The subscriber closed and the sink destroyed: every superpage is back in the pool. */
static void finish(void)
{
	zmq_close(sub);
	sub = NULL;
	rdo_sink_destroy(&sink);
	fixture_wait_pool_full(fp.pool, 2000);
}

static bool nothing_within(int ms)
{
	zmq_pollitem_t item = {sub, 0, ZMQ_POLLIN, 0};
	return zmq_poll(&item, 1, ms) == 0;
}

Test(live, opts_defaults)
{
	struct rdo_live_opts o;
	rdo_live_opts_init(&o);
	cr_assert(o.enabled);
	cr_assert_eq(o.hwm, 32);
	fixture_expect_binds(&o.bind, RDO_DEFAULT_LIVE_TCP, RDO_DEFAULT_LIVE_IPC);
}

Test(live, takes_nothing_while_nobody_subscribes)
{
	struct rdo_sink *s = make_live(32);
	for (uint64_t i = 0; i < 4; i++)
		cr_assert(!fixture_offer(s, fixture_fill(fp.pool, 0, i, 1, 100)));
	fixture_expect_untouched(s, "live", ENDPOINT);
	cr_assert_eq(rdo_pool_free(fp.pool), SP_COUNT, "it kept a superpage it did not take");
	rdo_sink_destroy(&sink);
	cr_assert_null(sink);
}

Test(live, a_subscriber_gets_every_superpage_with_its_header)
{
	struct rdo_sink *s = make_live(32);
	subscribe(s, "sim0/", 100);
	uint64_t bytes = 0;
	for (uint64_t i = 0; i < 12; i++) {
		uint32_t size = SP_SIZE - (uint32_t)i * 100u;
		bytes += size;
		cr_assert(fixture_offer(s, fixture_fill(fp.pool, (uint32_t)i % 3, i / 3, 7, size)));
	}
	for (uint64_t i = 0; i < 12; i++) {
		struct received r = receive();
		char want[32];
		snprintf(want, sizeof(want), "sim0/%02u", (unsigned)(i % 3));
		cr_assert_str_eq(r.topic, want);
		cr_assert_eq(r.h->version, RDO_PROTOCOL_VERSION);
		cr_assert_str_eq(r.h->card, "sim0");
		cr_assert_eq(r.h->link, i % 3);
		cr_assert_eq(r.h->sequence, i / 3, "superpage %llu", (unsigned long long)i);
		cr_assert_eq(r.h->size, SP_SIZE - i * 100u);
		cr_assert_eq(r.payload_size, r.h->size);
		cr_assert(r.payload_ok, "payload of superpage %llu", (unsigned long long)i);
		cr_assert_eq(r.h->run, 7);
		cr_assert_eq(r.h->timestamp_ns, 1700000000000000000ull + (i / 3) * 1000u + i % 3);
		cr_assert_eq(r.h->card_pages_dropped, (i / 3) / 2);
		cr_assert_eq(r.h->flags, (i / 3) % 3 == 0 ? RDO_SP_PARTIAL : 0u);
		cr_assert_eq(r.h->dropped_before, 0);
		rdo__superpage_header__free_unpacked(r.h, NULL);
	}
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.superpages == 12, 2000);
	cr_assert_eq(st.bytes, bytes);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(st.queued, 0);
	fixture_wait_pool_full(fp.pool, 2000);
	finish();
}

Test(live, a_subscriber_picks_its_link_by_topic)
{
	struct rdo_sink *s = make_live(32);
	subscribe(s, "sim0/01", 100);
	for (uint64_t i = 0; i < 6; i++)
		fixture_offer(s, fixture_fill(fp.pool, (uint32_t)i % 2, i / 2, 1, 64));
	for (uint64_t seq = 0; seq < 3; seq++) {
		struct received r = receive();
		cr_assert_str_eq(r.topic, "sim0/01");
		cr_assert_eq(r.h->sequence, seq);
		rdo__superpage_header__free_unpacked(r.h, NULL);
	}
	cr_assert(nothing_within(100), "a superpage of link 0 came through");
	finish();
}

/*
 * A subscriber that does not read: the publisher waits at the high-water
 * mark, drops, its queue fills and the door refuses. Every superpage is
 * either sent or counted, and the next header the subscriber gets says how
 * many were dropped before it.
 */
Test(live, a_slow_subscriber_makes_it_drop_and_count)
{
	struct rdo_sink *s = make_live(1);
	subscribe(s, "sim0/", 1);
	unsigned offered = 24, refused = 0;
	for (uint64_t i = 0; i < offered; i++)
		refused += !fixture_offer(s, fixture_fill(fp.pool, 0, i, 1, 256));
	cr_assert_gt(refused, 0, "a full queue took every superpage");
	struct rdo_sink_stats st;
	/* each drop past the high-water mark waits 100 ms: 16 queued take 1.6 s */
	FIXTURE_WAIT_STATS(s, st, st.superpages + st.dropped == offered && st.queued == 0, 5000);
	cr_assert_geq(st.dropped, refused);
	cr_assert_gt(st.superpages, 0);
	uint64_t sent = st.superpages, dropped = st.dropped;

	/* What the subscriber holds: in order, and gaps only where superpages were dropped. */
	uint64_t last = 0;
	for (uint64_t k = 0; k < sent; k++) {
		struct received r = receive();
		cr_assert(k == 0 || r.h->sequence > last, "out of order");
		cr_assert_leq(r.h->dropped_before, dropped);
		last = r.h->sequence;
		rdo__superpage_header__free_unpacked(r.h, NULL);
	}
	cr_assert(nothing_within(100), "more messages than the sink counted as sent");

	/* Once it reads again, the next superpage comes with the count. */
	cr_assert(fixture_offer(s, fixture_fill(fp.pool, 0, offered, 1, 256)));
	struct received r = receive();
	cr_assert_eq(r.h->sequence, offered);
	cr_assert_eq(r.h->dropped_before, dropped, "dropped_before %llu, the sink dropped %llu",
		     (unsigned long long)r.h->dropped_before, (unsigned long long)dropped);
	rdo__superpage_header__free_unpacked(r.h, NULL);
	FIXTURE_WAIT_STATS(s, st, st.superpages == sent + 1, 2000);
	cr_assert_eq(st.dropped, dropped, "a superpage read at once was dropped");
	finish();
}

Test(live, unsubscribing_makes_it_take_nothing_again)
{
	struct rdo_sink *s = make_live(32);
	subscribe(s, "sim0/", 100);
	cr_assert_eq(zmq_setsockopt(sub, ZMQ_UNSUBSCRIBE, "sim0/", 5), 0);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.consumers == 0, 2000);
	cr_assert(!fixture_offer(s, fixture_fill(fp.pool, 0, 0, 1, 64)));
	finish();
}

/* Destroyed with a subscriber that does not read: what it holds goes back to the pool. */
Test(live, destroy_returns_every_superpage)
{
	struct rdo_sink *s = make_live(1);
	subscribe(s, "sim0/", 1);
	for (uint64_t i = 0; i < 20; i++)
		fixture_offer(s, fixture_fill(fp.pool, 0, i, 1, 256));
	cr_assert_lt(rdo_pool_free(fp.pool), SP_COUNT,
		     "the sink holds nothing: the test proves "
		     "nothing");
	finish(); /* what ZeroMQ held it returns as the sockets close */
}
