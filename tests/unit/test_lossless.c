#include <criterion/criterion.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "core/pool.h"
#include "core/sink.h"
#include "proto/readout.pb-c.h"
#include "sinks/lossless.h"
#include "unit/sink_fixture.h"

#define SP_SIZE	 8192u
#define SP_COUNT 16u
#define ENDPOINT "inproc://test-lossless"

static struct fixture_pool fp;
static void *zctx;
static struct rdo_sink *sink; /* destroyed by the test, or by the teardown after a failure */
static void *socks[4];	      /* the consumers' sockets, closed likewise */

static void setup(void)
{
	zctx = fixture_begin(&fp, SP_SIZE, SP_COUNT);
}

static void teardown(void)
{
	rdo_sink_destroy(&sink);
	for (size_t i = 0; i < RDO_ARRAY_SIZE(socks); i++)
		if (socks[i])
			zmq_close(socks[i]);
	fixture_end(&fp, zctx);
}

TestSuite(lossless, .init = setup, .fini = teardown);

static struct rdo_sink *make_lossless(void)
{
	struct rdo_lossless_opts o;
	rdo_lossless_opts_init(&o);
	memset(&o.bind, 0, sizeof(o.bind));
	rdo_endpoints_add(&o.bind, ENDPOINT);
	sink = rdo_lossless_create(zctx, NULL, "sim0", fp.pool, &o);
	cr_assert_not_null(sink);
	return sink;
}

/* A StreamRequest as a consumer sends it: hello (credits, name), credit, or bye. */
static void request(void *c, Rdo__StreamRequest__MsgCase kind, uint32_t credits)
{
	Rdo__StreamRequest r = RDO__STREAM_REQUEST__INIT;
	Rdo__StreamHello h = RDO__STREAM_HELLO__INIT;
	r.version = RDO_PROTOCOL_VERSION;
	r.msg_case = kind;
	if (kind == RDO__STREAM_REQUEST__MSG_HELLO) {
		h.credits = credits;
		h.name = "test";
		r.hello = &h;
	} else if (kind == RDO__STREAM_REQUEST__MSG_CREDIT) {
		r.credit = credits;
	} else {
		r.bye = true;
	}
	uint8_t buf[128];
	size_t len = rdo__stream_request__pack(&r, buf);
	cr_assert_eq(zmq_send(c, buf, len, 0), (int)len);
}

/* What arrives at a consumer: a notice (one frame) or a superpage (header and payload). */
struct arrival {
	Rdo__StreamNotice *notice; /* or NULL; free with rdo__stream_notice__free_unpacked */
	Rdo__SuperpageHeader *h;   /* or NULL; free with rdo__superpage_header__free_unpacked */
	bool payload_ok;
};

static void arrival_free(struct arrival *a)
{
	if (a->notice)
		rdo__stream_notice__free_unpacked(a->notice, NULL);
	if (a->h)
		rdo__superpage_header__free_unpacked(a->h, NULL);
}

static struct arrival next_any(void *c)
{
	struct arrival a = {0};
	zmq_msg_t m;
	zmq_msg_init(&m);
	cr_assert_geq(zmq_msg_recv(&m, c, 0), 0, "nothing came: %s", zmq_strerror(zmq_errno()));
	if (!zmq_msg_more(&m)) {
		a.notice = rdo__stream_notice__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
		cr_assert_not_null(a.notice, "a one-frame message that is no notice");
		zmq_msg_close(&m);
		return a;
	}
	a.h = rdo__superpage_header__unpack(NULL, zmq_msg_size(&m), zmq_msg_data(&m));
	cr_assert_not_null(a.h, "the header does not unpack");
	cr_assert_geq(zmq_msg_recv(&m, c, 0), 0);
	cr_assert(!zmq_msg_more(&m), "more than two frames");
	cr_assert_eq(zmq_msg_size(&m), a.h->size);
	a.payload_ok = fixture_payload_ok(zmq_msg_data(&m), a.h->size, a.h->link, a.h->sequence);
	zmq_msg_close(&m); /* zero-copy: this returns the superpage to the pool */
	return a;
}

/* The next arrival but a ping. */
static struct arrival next(void *c)
{
	for (;;) {
		struct arrival a = next_any(c);
		if (!a.notice || a.notice->kind != RDO__NOTICE_KIND__NOTICE_PING)
			return a;
		arrival_free(&a);
	}
}

/* The next arrival but a ping, which must be a superpage: its sequence. */
static uint64_t next_superpage(void *c)
{
	struct arrival a = next(c);
	cr_assert_not_null(a.h, "a notice of kind %d where a superpage was due",
			   a.notice ? (int)a.notice->kind : -1);
	cr_assert(a.payload_ok, "payload of sequence %llu", (unsigned long long)a.h->sequence);
	cr_assert_eq(a.h->dropped_before, 0);
	uint64_t seq = a.h->sequence;
	arrival_free(&a);
	return seq;
}

/* The next arrival but a ping must be a notice of `kind`. */
static void expect_notice(void *c, Rdo__NoticeKind kind)
{
	struct arrival a = next(c);
	cr_assert_not_null(a.notice, "superpage %llu where notice %d was due",
			   a.h ? (unsigned long long)a.h->sequence : 0ull, (int)kind);
	Rdo__NoticeKind got = a.notice->kind;
	arrival_free(&a);
	cr_assert_eq(got, kind);
}

/* Only pings, if anything, within `ms`. */
static bool nothing_within(void *c, int ms)
{
	zmq_pollitem_t item = {c, 0, ZMQ_POLLIN, 0};
	while (zmq_poll(&item, 1, ms) == 1) {
		struct arrival a = next_any(c);
		bool ping = a.notice && a.notice->kind == RDO__NOTICE_KIND__NOTICE_PING;
		arrival_free(&a);
		if (!ping)
			return false;
	}
	return true;
}

static void *consumer_socket(void)
{
	void *c = zmq_socket(zctx, ZMQ_DEALER);
	cr_assert_not_null(c);
	int linger = 0, timeout = 2000;
	zmq_setsockopt(c, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(c, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	cr_assert_eq(zmq_connect(c, ENDPOINT), 0, "%s", zmq_strerror(zmq_errno()));
	for (size_t i = 0; i < RDO_ARRAY_SIZE(socks); i++)
		if (!socks[i]) {
			socks[i] = c;
			return c;
		}
	cr_assert_fail("more consumers than the test keeps");
	return NULL;
}

static void close_consumer(void *c)
{
	for (size_t i = 0; i < RDO_ARRAY_SIZE(socks); i++)
		if (socks[i] == c)
			socks[i] = NULL;
	zmq_close(c);
}

/* A consumer welcomed with `credits`, once the sink counts it. */
static void *attach(struct rdo_sink *s, uint32_t credits)
{
	unsigned before = fixture_stats(s).consumers;
	void *c = consumer_socket();
	request(c, RDO__STREAM_REQUEST__MSG_HELLO, credits);
	struct arrival a = next(c);
	cr_assert_not_null(a.notice);
	cr_assert_eq(a.notice->kind, RDO__NOTICE_KIND__NOTICE_WELCOME);
	cr_assert_str_eq(a.notice->card, "sim0");
	cr_assert_eq(a.notice->superpage_size, SP_SIZE);
	arrival_free(&a);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.consumers == before + 1, 2000);
	return c;
}

/*
 * Every one of the `n` superpages offered was delivered and none dropped;
 * then the consumer goes, the sink too, and every superpage is back.
 */
static void expect_delivered_and_finish(void *c, uint64_t n)
{
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(sink, st, st.superpages == n, 2000);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(st.queued, 0);
	fixture_wait_pool_full(fp.pool, 2000);
	close_consumer(c);
	rdo_sink_destroy(&sink);
}

Test(lossless, opts_defaults)
{
	struct rdo_lossless_opts o;
	rdo_lossless_opts_init(&o);
	cr_assert(o.enabled);
	cr_assert_eq(o.timeout_ms, 5000);
	fixture_expect_binds(&o.bind, RDO_DEFAULT_LOSSLESS_TCP, RDO_DEFAULT_LOSSLESS_IPC);
}

Test(lossless, takes_nothing_without_a_consumer)
{
	struct rdo_sink *s = make_lossless();
	cr_assert(!fixture_offer(s, fixture_fill(fp.pool, 0, 0, 1, 100)));
	s->ops->run_end(s, 1);
	fixture_expect_untouched(s, "lossless", ENDPOINT);
	cr_assert_eq(rdo_pool_free(fp.pool), SP_COUNT);
	rdo_sink_destroy(&sink);
	cr_assert_null(sink);
}

Test(lossless, a_consumer_gets_every_superpage_in_order)
{
	struct rdo_sink *s = make_lossless();
	void *c = attach(s, 100);
	uint64_t bytes = 0;
	for (uint64_t i = 0; i < 10; i++) {
		bytes += 1000 + i;
		cr_assert(fixture_offer(s, fixture_fill(fp.pool, 2, i, 3, 1000 + (uint32_t)i)));
	}
	for (uint64_t i = 0; i < 10; i++) {
		struct arrival a = next(c);
		cr_assert_not_null(a.h, "superpage %llu", (unsigned long long)i);
		cr_assert_eq(a.h->version, RDO_PROTOCOL_VERSION);
		cr_assert_str_eq(a.h->card, "sim0");
		cr_assert_eq(a.h->link, 2);
		cr_assert_eq(a.h->sequence, i);
		cr_assert_eq(a.h->size, 1000 + i);
		cr_assert(a.payload_ok);
		cr_assert_eq(a.h->run, 3);
		cr_assert_eq(a.h->timestamp_ns, 1700000000000000000ull + i * 1000u + 2);
		cr_assert_eq(a.h->card_pages_dropped, i / 2);
		cr_assert_eq(a.h->flags, i % 3 == 0 ? RDO_SP_PARTIAL : 0u);
		cr_assert_eq(a.h->dropped_before, 0);
		arrival_free(&a);
	}
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.superpages == 10, 2000);
	cr_assert_eq(st.bytes, bytes);
	expect_delivered_and_finish(c, 10);
}

/*
 * Without credit nothing is sent and nothing is dropped: the sink takes every
 * superpage until the pool runs dry (the card would drop at the source then),
 * and sends them in order as credits come back.
 */
Test(lossless, without_credit_it_holds_everything_and_drops_nothing)
{
	struct rdo_sink *s = make_lossless();
	void *c = attach(s, 2);
	unsigned offered = 0;
	while (rdo_pool_free(fp.pool) > 0) {
		cr_assert(fixture_offer(s, fixture_fill(fp.pool, 0, offered, 1, 512)),
			  "superpage %u refused", offered);
		offered++;
	}
	cr_assert_eq(offered, SP_COUNT, "the pool ran dry before every superpage was offered");
	cr_assert_eq(next_superpage(c), 0);
	cr_assert_eq(next_superpage(c), 1);
	cr_assert(nothing_within(c, 300), "sent without credit");
	struct rdo_sink_stats st = fixture_stats(s);
	cr_assert_eq(st.superpages, 2);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(rdo_pool_free(fp.pool), 2, "only the two the consumer read are back");

	request(c, RDO__STREAM_REQUEST__MSG_CREDIT, 5);
	for (uint64_t seq = 2; seq < 7; seq++)
		cr_assert_eq(next_superpage(c), seq);
	cr_assert(nothing_within(c, 200), "sent more than the credits");
	request(c, RDO__STREAM_REQUEST__MSG_CREDIT, 100);
	for (uint64_t seq = 7; seq < offered; seq++)
		cr_assert_eq(next_superpage(c), seq);
	expect_delivered_and_finish(c, offered);
}

/* The run's end comes after the last superpage of the run, also one waiting for credit. */
Test(lossless, run_end_comes_after_the_runs_superpages)
{
	struct rdo_sink *s = make_lossless();
	void *c = attach(s, 1);
	for (uint64_t i = 0; i < 3; i++)
		cr_assert(fixture_offer(s, fixture_fill(fp.pool, 0, i, 4, 100)));
	s->ops->run_end(s, 4);
	cr_assert_eq(next_superpage(c), 0);
	cr_assert(nothing_within(c, 200), "the run's end overtook superpages waiting for credit");
	request(c, RDO__STREAM_REQUEST__MSG_CREDIT, 10);
	cr_assert_eq(next_superpage(c), 1);
	cr_assert_eq(next_superpage(c), 2);
	expect_notice(c, RDO__NOTICE_KIND__NOTICE_RUN_END);
	/* the next run goes on */
	cr_assert(fixture_offer(s, fixture_fill(fp.pool, 0, 0, 5, 100)));
	cr_assert_eq(next_superpage(c), 0);
	close_consumer(c);
	rdo_sink_destroy(&sink);
	fixture_wait_pool_full(fp.pool, 2000);
}

/* Each superpage goes to exactly one consumer, round-robin. */
Test(lossless, two_consumers_share_the_stream)
{
	struct rdo_sink *s = make_lossless();
	void *a = attach(s, 100), *b = attach(s, 100);
	for (uint64_t i = 0; i < 10; i++)
		cr_assert(fixture_offer(s, fixture_fill(fp.pool, 0, i, 1, 100)));
	bool seen[10] = {false};
	for (int k = 0; k < 5; k++) {
		uint64_t x = next_superpage(a), y = next_superpage(b);
		cr_assert(x < 10 && !seen[x], "sequence %llu twice", (unsigned long long)x);
		seen[x] = true;
		cr_assert(y < 10 && !seen[y], "sequence %llu twice", (unsigned long long)y);
		seen[y] = true;
	}
	cr_assert(nothing_within(a, 100) && nothing_within(b, 100), "more than was offered");
	close_consumer(a);
	close_consumer(b);
	rdo_sink_destroy(&sink);
	fixture_wait_pool_full(fp.pool, 2000);
}

/* What a consumer leaves without crediting it did not consume: counted as dropped. */
Test(lossless, bye_detaches_and_what_was_not_credited_is_dropped)
{
	struct rdo_sink *s = make_lossless();
	void *c = attach(s, 10);
	for (uint64_t i = 0; i < 4; i++)
		fixture_offer(s, fixture_fill(fp.pool, 0, i, 1, 100));
	for (uint64_t i = 0; i < 4; i++)
		cr_assert_eq(next_superpage(c), i);
	request(c, RDO__STREAM_REQUEST__MSG_CREDIT, 1);
	request(c, RDO__STREAM_REQUEST__MSG_BYE, 0);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.consumers == 0, 2000);
	cr_assert_eq(st.superpages, 4);
	cr_assert_eq(st.dropped, 3, "4 sent, 1 credited back");
	cr_assert(!fixture_offer(s, fixture_fill(fp.pool, 0, 4, 1, 100)), "taken after the bye");
	close_consumer(c);
	rdo_sink_destroy(&sink);
	fixture_wait_pool_full(fp.pool, 2000);
}

Test(lossless, requests_out_of_turn_are_refused)
{
	struct rdo_sink *s = make_lossless();
	void *c = consumer_socket();
	request(c, RDO__STREAM_REQUEST__MSG_CREDIT, 5);
	struct arrival a = next(c);
	cr_assert(a.notice && a.notice->kind == RDO__NOTICE_KIND__NOTICE_REFUSED);
	cr_assert(strstr(a.notice->message, "hello"), "\"%s\"", a.notice->message);
	arrival_free(&a);
	cr_assert_eq(zmq_send(c, "garbage", 7, 0), 7);
	a = next(c);
	cr_assert(a.notice && a.notice->kind == RDO__NOTICE_KIND__NOTICE_REFUSED);
	cr_assert(strstr(a.notice->message, "malformed"), "\"%s\"", a.notice->message);
	arrival_free(&a);
	cr_assert_eq(fixture_stats(s).consumers, 0);
	close_consumer(c);
	rdo_sink_destroy(&sink);
}

/* Destroy tells the consumer the stream ended and returns what it held. */
Test(lossless, destroy_ends_the_stream_and_returns_every_superpage)
{
	struct rdo_sink *s = make_lossless();
	void *c = attach(s, 1);
	for (uint64_t i = 0; i < 5; i++)
		cr_assert(fixture_offer(s, fixture_fill(fp.pool, 0, i, 1, 100)));
	cr_assert_eq(next_superpage(c), 0);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.queued == 3, 2000); /* one more waits for credit */
	cr_assert_eq(rdo_pool_free(fp.pool), SP_COUNT - 4);
	rdo_log_set_level(LOG_ERR); /* it warns of the 4 it drops, on purpose */
	rdo_sink_destroy(&sink);
	expect_notice(c, RDO__NOTICE_KIND__NOTICE_END);
	fixture_wait_pool_full(fp.pool, 2000);
	close_consumer(c);
}
