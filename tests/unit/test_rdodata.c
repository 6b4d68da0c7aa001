#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "common/page.h"
#include "common/util.h"
#include "lib/rdodata.h"
#include "proto/readout.pb-c.h"

#define SLOT	1024u
#define PAGES	4u
#define SP_SIZE (SLOT * PAGES)

/*
 * A fake readoutd data side: an XPUB (live) and a ROUTER (lossless) on free
 * loopback ports, driven by a script in its own thread. The test reads the
 * results after fake_stop() has joined the thread.
 */
struct fake {
	void *ctx, *pub, *router;
	char pub_ep[256], router_ep[256];
	pthread_t thread;
	void *(*script)(void *);
	char id[256]; /* the lossless consumer's ROUTER identity */
	size_t idlen;
	/* lossless bookkeeping */
	unsigned credits; /* from the hello */
	long in_flight;	  /* sent and not yet credited back */
	long max_in_flight;
	unsigned violations; /* credits returned for superpages never sent */
	unsigned heartbeats; /* credit=0 requests */
	unsigned credited;
	unsigned sent;
	bool hello, bye;
	char name[64];
	unsigned subscriptions;
};

static void bind_any(void *sock, char *ep, size_t len)
{
	cr_assert_eq(zmq_bind(sock, "tcp://127.0.0.1:*"), 0, "%s", zmq_strerror(errno));
	cr_assert_eq(zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, ep, &len), 0);
}

static void fake_start(struct fake *f, void *(*script)(void *))
{
	memset(f, 0, sizeof(*f));
	f->ctx = zmq_ctx_new();
	f->pub = zmq_socket(f->ctx, ZMQ_XPUB);
	f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
	int zero = 0;
	zmq_setsockopt(f->pub, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof(zero));
	bind_any(f->pub, f->pub_ep, sizeof(f->pub_ep));
	bind_any(f->router, f->router_ep, sizeof(f->router_ep));
	f->script = script;
	cr_assert_eq(pthread_create(&f->thread, NULL, script, f), 0);
}

static void fake_stop(struct fake *f)
{
	pthread_join(f->thread, NULL);
	zmq_close(f->pub);
	zmq_close(f->router);
	zmq_ctx_term(f->ctx);
}

static bool readable(void *sock, int timeout_ms)
{
	zmq_pollitem_t item = {.socket = sock, .events = ZMQ_POLLIN};
	return zmq_poll(&item, 1, timeout_ms) > 0;
}

/* Wait for a subscription to reach the XPUB, so that what follows is not lost. */
static void fake_wait_subscriber(struct fake *f)
{
	char buf[256];
	while (readable(f->pub, 3000)) {
		int n = zmq_recv(f->pub, buf, sizeof(buf), 0);
		if (n > 0 && buf[0] == 1) {
			f->subscriptions++;
			return;
		}
	}
}

static size_t header(uint8_t *out, const char *card, unsigned link, uint64_t seq, size_t size,
		     uint64_t dropped_before)
{
	Rdo__SuperpageHeader h;
	rdo__superpage_header__init(&h);
	h.version = RDO_PROTOCOL_VERSION;
	h.card = (char *)card;
	h.link = link;
	h.sequence = seq;
	h.size = (uint32_t)size;
	h.timestamp_ns = 1000 + seq;
	h.dropped_before = dropped_before;
	h.run = 3;
	return rdo__superpage_header__pack(&h, out);
}

static void payload(uint8_t *out, unsigned link, uint64_t seq)
{
	for (unsigned i = 0; i < PAGES; i++)
		rdo_page_write(out + i * SLOT, link, seq * PAGES + i, SLOT, SLOT - 32, 0);
}

static void publish(struct fake *f, const char *card, unsigned link, uint64_t seq)
{
	static uint8_t data[SP_SIZE];
	uint8_t hdr[256];
	char topic[64];
	snprintf(topic, sizeof(topic), "%s/%02u", card, link);
	payload(data, link, seq);
	zmq_send(f->pub, topic, strlen(topic), ZMQ_SNDMORE);
	zmq_send(f->pub, hdr, header(hdr, card, link, seq, SP_SIZE, 0), ZMQ_SNDMORE);
	zmq_send(f->pub, data, SP_SIZE, 0);
}

static void to_consumer(struct fake *f, const void *frame, size_t n, int flags)
{
	zmq_send(f->router, f->id, f->idlen, ZMQ_SNDMORE);
	zmq_send(f->router, frame, n, flags);
}

static void notice(struct fake *f, Rdo__NoticeKind kind, const char *message)
{
	Rdo__StreamNotice n;
	rdo__stream_notice__init(&n);
	n.version = RDO_PROTOCOL_VERSION;
	n.kind = kind;
	n.message = (char *)message;
	n.card = "sim0";
	n.superpage_size = SP_SIZE;
	uint8_t buf[256];
	to_consumer(f, buf, rdo__stream_notice__pack(&n, buf), 0);
}

static void send_superpage(struct fake *f, uint64_t seq)
{
	static uint8_t data[SP_SIZE];
	uint8_t hdr[256];
	payload(data, 0, seq);
	zmq_send(f->router, f->id, f->idlen, ZMQ_SNDMORE);
	zmq_send(f->router, hdr, header(hdr, "sim0", 0, seq, SP_SIZE, 0), ZMQ_SNDMORE);
	zmq_send(f->router, data, SP_SIZE, 0);
	f->sent++;
	f->in_flight++;
	if (f->in_flight > f->max_in_flight)
		f->max_in_flight = f->in_flight;
}

/* Take one request from the consumer within `timeout_ms` and account for it. */
static bool fake_request(struct fake *f, int timeout_ms)
{
	if (!readable(f->router, timeout_ms))
		return false;
	uint8_t buf[1024];
	int n = zmq_recv(f->router, f->id, sizeof(f->id), 0);
	f->idlen = n > 0 ? (size_t)n : 0;
	n = zmq_recv(f->router, buf, sizeof(buf), 0);
	Rdo__StreamRequest *r = rdo__stream_request__unpack(NULL, n > 0 ? (size_t)n : 0, buf);
	if (!r)
		return true;
	switch (r->msg_case) {
	case RDO__STREAM_REQUEST__MSG_HELLO:
		f->hello = true;
		f->credits = r->hello->credits;
		rdo_strlcpy(f->name, r->hello->name, sizeof(f->name));
		break;
	case RDO__STREAM_REQUEST__MSG_CREDIT:
		f->credited += r->credit;
		f->in_flight -= r->credit;
		if (f->in_flight < 0)
			f->violations++;
		if (r->credit == 0)
			f->heartbeats++;
		break;
	case RDO__STREAM_REQUEST__MSG_BYE:
		f->bye = true;
		break;
	default:
		break;
	}
	rdo__stream_request__free_unpacked(r, NULL);
	return true;
}

static void fake_welcome(struct fake *f)
{
	while (!f->hello && fake_request(f, 3000))
		;
	if (f->hello)
		notice(f, RDO__NOTICE_KIND__NOTICE_WELCOME, "");
}

/* `n` pings 200 ms apart, taking the consumer's requests in between. */
static void fake_pings(struct fake *f, int n)
{
	for (int i = 0; i < n; i++) {
		notice(f, RDO__NOTICE_KIND__NOTICE_PING, "");
		uint64_t until = rdo_now_ns() + 200000000ull;
		while (rdo_now_ns() < until)
			fake_request(f, 20);
	}
}

/* Requests until bye, or `timeout_ms` of quiet. */
static void fake_until_bye(struct fake *f, int timeout_ms)
{
	while (!f->bye && fake_request(f, timeout_ms))
		;
}

static struct rdo_data *open_data(const struct fake *f, enum rdo_data_mode mode, const char *topic,
				  unsigned credits)
{
	struct rdo_data_opts o;
	rdo_data_opts_init(&o);
	o.mode = mode;
	o.endpoint = mode == RDO_DATA_LIVE ? f->pub_ep : f->router_ep;
	o.topic = topic;
	o.credits = credits;
	o.name = "test";
	char err[256];
	struct rdo_data *d = rdo_data_open(&o, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	return d;
}

/* A lossless consumer with what the plain open_data() leaves at its defaults. */
static struct rdo_data *open_lossless(const struct fake *f, unsigned credits, unsigned silence_ms,
				      bool run_ends)
{
	struct rdo_data_opts o;
	rdo_data_opts_init(&o);
	o.mode = RDO_DATA_LOSSLESS;
	o.endpoint = f->router_ep;
	o.credits = credits;
	o.silence_ms = silence_ms;
	o.run_ends = run_ends;
	char err[256];
	struct rdo_data *d = rdo_data_open(&o, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	return d;
}

static void assert_pages(const struct rdo_data_view *v)
{
	cr_assert_eq(v->size, SP_SIZE);
	for (unsigned i = 0; i < PAGES; i++) {
		size_t bad;
		cr_assert_eq(
		    rdo_page_check((const uint8_t *)v->data + i * SLOT, SLOT, v->link, true, &bad),
		    RDO_PAGE_OK, "page %u of sequence %llu", i, (unsigned long long)v->sequence);
	}
}

static void *live_script(void *arg)
{
	struct fake *f = arg;
	fake_wait_subscriber(f);
	for (uint64_t seq = 0; seq < 10; seq++) {
		for (unsigned link = 0; link < 3; link++)
			publish(f, "sim0", link, seq);
		publish(f, "sim1", 1, seq);
	}
	return NULL;
}

Test(rdodata, live_topic_filter)
{
	struct fake f;
	fake_start(&f, live_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LIVE, "sim0/01", 16);
	struct rdo_data_view v;
	for (uint64_t seq = 0; seq < 10; seq++) {
		cr_assert_eq(rdo_data_wait(d, &v, 3000), 0, "superpage %llu",
			     (unsigned long long)seq);
		cr_assert_str_eq(v.card, "sim0");
		cr_assert_eq(v.link, 1);
		cr_assert_eq(v.sequence, seq);
		cr_assert_eq(v.run, 3);
		cr_assert_eq(v.timestamp_ns, 1000 + seq);
		assert_pages(&v);
		cr_assert_eq(rdo_data_ack(d, &v), 0);
		cr_assert_null(v.data);
	}
	cr_assert_eq(rdo_data_wait(d, &v, 200), -ETIMEDOUT, "nothing of other topics");
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert_eq(st.superpages, 10);
	cr_assert_eq(st.bytes, 10 * SP_SIZE);
	cr_assert_eq(st.malformed, 0);
	cr_assert_eq(st.held, 0);
	cr_assert_str_eq(rdo_data_endpoint(d), f.pub_ep);
	rdo_data_close(&d);
	cr_assert_null(d);
	rdo_data_close(&d);
	fake_stop(&f);
}

Test(rdodata, live_hold_and_ack_in_any_order)
{
	struct fake f;
	fake_start(&f, live_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LIVE, "sim0/02", 3);
	struct rdo_data_view v[4];
	for (int i = 0; i < 3; i++)
		cr_assert_eq(rdo_data_wait(d, &v[i], 3000), 0);
	cr_assert_eq(rdo_data_wait(d, &v[3], 0), -ENOBUFS, "3 held of 3");
	/* Held views stay intact while others come and go. */
	cr_assert_eq(rdo_data_ack(d, &v[1]), 0);
	cr_assert_eq(rdo_data_wait(d, &v[1], 3000), 0);
	cr_assert_eq(v[1].sequence, 3);
	assert_pages(&v[0]);
	assert_pages(&v[2]);
	struct rdo_data_view stale = v[0];
	cr_assert_eq(rdo_data_ack(d, &v[0]), 0);
	cr_assert_eq(rdo_data_ack(d, &stale), -EINVAL, "acked twice");
	cr_assert_eq(rdo_data_ack(d, &v[0]), -EINVAL, "cleared by the ack");
	cr_assert_eq(rdo_data_ack(d, &v[2]), 0);
	/* Close releases what is still held. */
	rdo_data_close(&d);
	fake_stop(&f);
}

static void *malformed_live_script(void *arg)
{
	struct fake *f = arg;
	fake_wait_subscriber(f);
	uint8_t hdr[256], data[SP_SIZE];
	/* Two frames only. */
	zmq_send(f->pub, "sim0/00", 7, ZMQ_SNDMORE);
	zmq_send(f->pub, "x", 1, 0);
	/* A header frame that is not a protobuf. */
	zmq_send(f->pub, "sim0/00", 7, ZMQ_SNDMORE);
	zmq_send(f->pub, "\xff\xff\xff", 3, ZMQ_SNDMORE);
	zmq_send(f->pub, data, 16, 0);
	/* The header's size is not the payload's. */
	payload(data, 0, 0);
	zmq_send(f->pub, "sim0/00", 7, ZMQ_SNDMORE);
	zmq_send(f->pub, hdr, header(hdr, "sim0", 0, 0, SP_SIZE + 1, 0), ZMQ_SNDMORE);
	zmq_send(f->pub, data, SP_SIZE, 0);
	/* The topic is not the header's card and link. */
	zmq_send(f->pub, "sim0/00", 7, ZMQ_SNDMORE);
	zmq_send(f->pub, hdr, header(hdr, "sim0", 1, 0, SP_SIZE, 0), ZMQ_SNDMORE);
	zmq_send(f->pub, data, SP_SIZE, 0);
	/* Five frames. */
	for (int i = 0; i < 4; i++)
		zmq_send(f->pub, "sim0/00", 7, ZMQ_SNDMORE);
	zmq_send(f->pub, "", 0, 0);
	publish(f, "sim0", 0, 7);
	return NULL;
}

Test(rdodata, live_malformed_skipped)
{
	struct fake f;
	fake_start(&f, malformed_live_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LIVE, "", 8);
	struct rdo_data_view v;
	static const char *const why[] = {"2 frames", "not a SuperpageHeader", "payload bytes",
					  "does not match", "5 frames"};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(why); i++) {
		cr_assert_eq(rdo_data_wait(d, &v, 3000), -EPROTO, "message %zu", i);
		cr_assert(strstr(rdo_data_error(d), why[i]), "%s", rdo_data_error(d));
	}
	cr_assert_eq(rdo_data_wait(d, &v, 3000), 0, "the next good one still arrives");
	cr_assert_eq(v.sequence, 7);
	assert_pages(&v);
	rdo_data_ack(d, &v);
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert_eq(st.malformed, 5);
	cr_assert_eq(st.superpages, 1);
	rdo_data_close(&d);
	fake_stop(&f);
}

static void *silent_script(void *arg)
{
	(void)arg;
	return NULL;
}

Test(rdodata, timeout)
{
	struct fake f;
	fake_start(&f, silent_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LIVE, "", 8);
	struct rdo_data_view v;
	uint64_t t0 = rdo_now_ns();
	cr_assert_eq(rdo_data_wait(d, &v, 0), -ETIMEDOUT);
	cr_assert_eq(rdo_data_wait(d, &v, 300), -ETIMEDOUT);
	uint64_t ms = (rdo_now_ns() - t0) / 1000000;
	cr_assert(ms >= 290 && ms < 1000, "waited %llu ms", (unsigned long long)ms);
	rdo_data_close(&d);
	/* Lossless with nobody there: the hello waits, the wait times out, not EPIPE. */
	struct rdo_data_opts o;
	rdo_data_opts_init(&o);
	o.mode = RDO_DATA_LOSSLESS;
	o.endpoint = "tcp://127.0.0.1:1";
	o.silence_ms = 100;
	char err[256];
	d = rdo_data_open(&o, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);
	cr_assert_eq(rdo_data_wait(d, &v, 300), -ETIMEDOUT);
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert_not(st.welcomed);
	rdo_data_close(&d);
	fake_stop(&f);
}

Test(rdodata, open_errors)
{
	struct rdo_data_opts o;
	rdo_data_opts_init(&o);
	char err[256];
	o.endpoint = "nowhere";
	cr_assert_null(rdo_data_open(&o, err, sizeof(err)));
	cr_assert(strstr(err, "nowhere") && strstr(err, "tcp://HOST:PORT"), "%s", err);
	o.endpoint = NULL;
	o.credits = 0;
	cr_assert_null(rdo_data_open(&o, err, sizeof(err)));
	cr_assert(strstr(err, "credits"), "%s", err);
}

#define LOSSLESS_TOTAL 40

static void *lossless_script(void *arg)
{
	struct fake *f = arg;
	fake_welcome(f);
	uint64_t seq = 0;
	uint64_t deadline = rdo_now_ns() + 10000000000ull;
	while (!f->bye && rdo_now_ns() < deadline) {
		while (seq < LOSSLESS_TOTAL && f->in_flight < (long)f->credits)
			send_superpage(f, seq++);
		fake_request(f, 100);
	}
	return NULL;
}

Test(rdodata, lossless_credits)
{
	struct fake f;
	fake_start(&f, lossless_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LOSSLESS, NULL, 4);
	struct rdo_data_view v[4], extra;
	uint64_t next = 0;
	while (next < LOSSLESS_TOTAL) {
		for (int i = 0; i < 4; i++) {
			cr_assert_eq(rdo_data_wait(d, &v[i], 3000), 0, "superpage %llu",
				     (unsigned long long)next);
			cr_assert_eq(v[i].sequence, next++);
			assert_pages(&v[i]);
		}
		cr_assert_eq(rdo_data_wait(d, &extra, 0), -ENOBUFS);
		for (int i = 3; i >= 0; i--)
			cr_assert_eq(rdo_data_ack(d, &v[i]), 0);
	}
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert(st.welcomed);
	cr_assert_str_eq(st.card, "sim0");
	cr_assert_eq(st.superpage_size, SP_SIZE);
	cr_assert_eq(st.superpages, LOSSLESS_TOTAL);
	cr_assert_eq(rdo_data_wait(d, &extra, 200), -ETIMEDOUT);
	rdo_data_close(&d);
	fake_stop(&f);
	cr_assert_eq(f.credits, 4);
	cr_assert_str_eq(f.name, "test");
	cr_assert_eq(f.sent, LOSSLESS_TOTAL);
	cr_assert_eq(f.max_in_flight, 4, "the fake sends up to the credits");
	cr_assert_eq(f.violations, 0, "credits returned for superpages not received");
	cr_assert_eq(f.credited, LOSSLESS_TOTAL, "a credit for every ack");
	cr_assert(f.bye, "close says bye");
}

static void *end_script(void *arg)
{
	struct fake *f = arg;
	fake_welcome(f);
	send_superpage(f, 0);
	send_superpage(f, 1);
	notice(f, RDO__NOTICE_KIND__NOTICE_END, "readoutd is stopping");
	fake_until_bye(f, 3000);
	return NULL;
}

Test(rdodata, lossless_end)
{
	struct fake f;
	fake_start(&f, end_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LOSSLESS, NULL, 8);
	struct rdo_data_view v, held;
	cr_assert_eq(rdo_data_wait(d, &held, 3000), 0);
	cr_assert_eq(rdo_data_wait(d, &v, 3000), 0);
	cr_assert_eq(v.sequence, 1);
	rdo_data_ack(d, &v);
	cr_assert_eq(rdo_data_wait(d, &v, 3000), -EPIPE);
	cr_assert(strstr(rdo_data_error(d), "readoutd is stopping"), "%s", rdo_data_error(d));
	cr_assert_eq(rdo_data_wait(d, &v, 3000), -EPIPE, "and it stays ended");
	assert_pages(&held);
	cr_assert_eq(rdo_data_ack(d, &held), 0, "what is held outlives the end");
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert(st.ended);
	rdo_data_close(&d);
	fake_stop(&f);
}

static void *run_end_script(void *arg)
{
	struct fake *f = arg;
	fake_welcome(f);
	send_superpage(f, 0);
	notice(f, RDO__NOTICE_KIND__NOTICE_RUN_END, "the run stopped");
	send_superpage(f, 1);
	fake_until_bye(f, 3000);
	return NULL;
}

/* Asked for, a run's end comes between its last superpage and the next run's first. */
Test(rdodata, lossless_run_end_in_order)
{
	struct fake f;
	fake_start(&f, run_end_script);
	struct rdo_data *d = open_lossless(&f, 8, 5000, true);
	struct rdo_data_view v;
	cr_assert_eq(rdo_data_wait(d, &v, 3000), 0);
	cr_assert_eq(v.sequence, 0);
	cr_assert_eq(rdo_data_ack(d, &v), 0);
	cr_assert_eq(rdo_data_wait(d, &v, 3000), RDO_DATA_RUN_END);
	cr_assert_str_eq(v.card, "sim0");
	cr_assert_eq(rdo_data_ack(d, &v), -EINVAL, "a run end is nothing to ack");
	cr_assert_eq(rdo_data_wait(d, &v, 3000), 0);
	cr_assert_eq(v.sequence, 1);
	rdo_data_ack(d, &v);
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert_eq(st.run_ends, 1);
	rdo_data_close(&d);
	fake_stop(&f);
}

/* Not asked for, it is counted and skipped: consumers that do not care see superpages only. */
Test(rdodata, lossless_run_end_skipped_by_default)
{
	struct fake f;
	fake_start(&f, run_end_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LOSSLESS, NULL, 8);
	struct rdo_data_view v;
	for (uint64_t seq = 0; seq < 2; seq++) {
		cr_assert_eq(rdo_data_wait(d, &v, 3000), 0);
		cr_assert_eq(v.sequence, seq);
		rdo_data_ack(d, &v);
	}
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert_eq(st.run_ends, 1);
	rdo_data_close(&d);
	fake_stop(&f);
}

static void *release_script(void *arg)
{
	struct fake *f = arg;
	fake_welcome(f);
	for (uint64_t seq = 0; seq < 4; seq++)
		send_superpage(f, seq);
	fake_pings(f, 8); /* while the consumer is busy elsewhere, past its silence limit */
	send_superpage(f, 4);
	fake_until_bye(f, 3000);
	return NULL;
}

/*
 * A consumer that copies out releases views at once and credits them later:
 * the credits bound what it holds either way, only credited superpages count
 * as consumed at the server, and time spent away from wait is no silence.
 */
Test(rdodata, lossless_release_then_credit)
{
	struct fake f;
	fake_start(&f, release_script);
	struct rdo_data *d = open_lossless(&f, 4, 500, false);
	struct rdo_data_view v, extra;
	for (uint64_t seq = 0; seq < 4; seq++) {
		cr_assert_eq(rdo_data_wait(d, &v, 3000), 0);
		cr_assert_eq(v.sequence, seq);
		cr_assert_eq(rdo_data_release(d, &v), 0);
		cr_assert_eq(rdo_data_release(d, &v), -EINVAL, "released twice");
	}
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert_eq(st.held, 0);
	cr_assert_eq(st.uncredited, 4);
	cr_assert_eq(rdo_data_wait(d, &extra, 0), -ENOBUFS, "released is not credited");
	cr_assert_eq(rdo_data_credit(d, 5), -EINVAL, "more credits than released");
	/* Busy elsewhere, three times the silence limit, keeping the connection alive. */
	for (int i = 0; i < 15; i++) {
		cr_assert_eq(rdo_data_credit(d, 0), 0);
		struct timespec ts = {0, 100000000};
		nanosleep(&ts, NULL);
	}
	cr_assert_eq(rdo_data_credit(d, 4), 0);
	cr_assert_eq(rdo_data_wait(d, &v, 3000), 0, "%s", rdo_data_error(d));
	cr_assert_eq(v.sequence, 4);
	cr_assert_eq(rdo_data_release(d, &v), 0);
	rdo_data_close(&d);
	fake_stop(&f);
	cr_assert_eq(f.violations, 0);
	cr_assert_eq(f.credited, 4, "the last one was released, not credited: not consumed");
	cr_assert_geq(f.heartbeats, 2, "kept alive while busy");
	cr_assert(f.bye);
}

static void *malformed_lossless_script(void *arg)
{
	struct fake *f = arg;
	fake_welcome(f);
	to_consumer(f, "\xff\xff", 2, 0);
	zmq_send(f->router, f->id, f->idlen, ZMQ_SNDMORE);
	zmq_send(f->router, "\xff\xff\xff", 3, ZMQ_SNDMORE);
	zmq_send(f->router, "payload", 7, 0);
	f->in_flight++;
	send_superpage(f, 0);
	fake_until_bye(f, 3000);
	return NULL;
}

Test(rdodata, lossless_malformed_skipped)
{
	struct fake f;
	fake_start(&f, malformed_lossless_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LOSSLESS, NULL, 8);
	struct rdo_data_view v;
	cr_assert_eq(rdo_data_wait(d, &v, 3000), -EPROTO);
	cr_assert(strstr(rdo_data_error(d), "not a StreamNotice"), "%s", rdo_data_error(d));
	cr_assert_eq(rdo_data_wait(d, &v, 3000), -EPROTO);
	cr_assert(strstr(rdo_data_error(d), "not a SuperpageHeader"), "%s", rdo_data_error(d));
	cr_assert_eq(rdo_data_wait(d, &v, 3000), 0, "the next good one still arrives");
	cr_assert_eq(v.sequence, 0);
	rdo_data_ack(d, &v);
	rdo_data_close(&d);
	fake_stop(&f);
	cr_assert_eq(f.violations, 0);
	cr_assert_eq(f.credited, 2, "the bad superpage's credit comes back too");
}

static void *refuse_script(void *arg)
{
	struct fake *f = arg;
	while (!f->hello && fake_request(f, 3000))
		;
	notice(f, RDO__NOTICE_KIND__NOTICE_REFUSED, "lossless sink disabled in the config");
	fake_until_bye(f, 300);
	return NULL;
}

Test(rdodata, lossless_refused)
{
	struct fake f;
	fake_start(&f, refuse_script);
	struct rdo_data *d = open_data(&f, RDO_DATA_LOSSLESS, NULL, 8);
	struct rdo_data_view v;
	cr_assert_eq(rdo_data_wait(d, &v, 3000), -ECONNREFUSED);
	cr_assert(strstr(rdo_data_error(d), "lossless sink disabled"), "%s", rdo_data_error(d));
	cr_assert_eq(rdo_data_wait(d, &v, 0), -ECONNREFUSED);
	rdo_data_close(&d);
	fake_stop(&f);
	cr_assert_not(f.bye, "no bye to a server that refused");
}

static void *ping_script(void *arg)
{
	struct fake *f = arg;
	fake_welcome(f);
	fake_pings(f, 6);
	/* Then silence: the consumer should give up on its own. */
	fake_until_bye(f, 1500);
	return NULL;
}

Test(rdodata, lossless_heartbeat_and_silence)
{
	struct fake f;
	fake_start(&f, ping_script);
	struct rdo_data *d = open_lossless(&f, 8, 500, false);
	struct rdo_data_view v;
	cr_assert_eq(rdo_data_wait(d, &v, 1150), -ETIMEDOUT, "pings are no data");
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	cr_assert_geq(st.pings, 5);
	cr_assert(st.welcomed);
	uint64_t t0 = rdo_now_ns();
	cr_assert_eq(rdo_data_wait(d, &v, 3000), -EPIPE, "silent server");
	uint64_t ms = (rdo_now_ns() - t0) / 1000000;
	cr_assert(ms < 1000, "gave up after %llu ms", (unsigned long long)ms);
	cr_assert(strstr(rdo_data_error(d), "nothing from the server"), "%s", rdo_data_error(d));
	rdo_data_stats(d, &st);
	cr_assert(st.silent);
	cr_assert_not(st.ended);
	rdo_data_close(&d);
	fake_stop(&f);
	cr_assert_geq(f.heartbeats, 2, "a heartbeat every half second");
	cr_assert_eq(f.violations, 0);
}

Test(rdodata, format_bytes)
{
	char b[32];
	cr_assert_str_eq(rdo_data_format_bytes(b, sizeof(b), 0), "0 B");
	cr_assert_str_eq(rdo_data_format_bytes(b, sizeof(b), 999), "999 B");
	cr_assert_str_eq(rdo_data_format_bytes(b, sizeof(b), 1000), "1.00 kB");
	cr_assert_str_eq(rdo_data_format_bytes(b, sizeof(b), 2345678901.0), "2.35 GB");
	cr_assert_str_eq(rdo_data_format_bytes(b, sizeof(b), 999999), "1.00 MB");
}
