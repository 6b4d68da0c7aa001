#include <criterion/criterion.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "card/card.h"
#include "card/regmap.h"
#include "card/regmap_load.h"
#include "common/log.h"
#include "common/util.h"
#include "core/events.h"
#include "core/sink.h"
#include "dma/dma.h"
#include "net/status.h"
#include "proto/readout.pb-c.h"

#define REGMAP_FILE RDO_SOURCE_DIR "/config/regmaps/rdo-sim.yaml"
#define LINKS	    3u

/* A sink that only reports fixed counters. */
struct fake_sink {
	struct rdo_sink base;
	struct rdo_endpoints endpoints;
};

static bool fake_offer(struct rdo_sink *sink, struct rdo_superpage *sp)
{
	(void)sink;
	(void)sp;
	return false;
}

static void fake_stats(struct rdo_sink *sink, struct rdo_sink_stats *st)
{
	struct fake_sink *f = container_of(sink, struct fake_sink, base);
	memset(st, 0, sizeof(*st));
	st->name = "fake";
	st->superpages = 11;
	st->bytes = 22;
	st->dropped = 3;
	st->queued = 4;
	st->consumers = 2;
	st->endpoints = &f->endpoints;
}

static void fake_destroy(struct rdo_sink *sink)
{
	(void)sink;
}

static const struct rdo_sink_ops fake_ops = {
    .name = "fake",
    .offer = fake_offer,
    .stats = fake_stats,
    .destroy = fake_destroy,
};

/* The writer's sink: the base counters and the writer's own. */
static void writer_stats(struct rdo_sink *sink, struct rdo_sink_stats *st)
{
	(void)sink;
	memset(st, 0, sizeof(*st));
	st->name = "writer";
	st->superpages = 5;
	st->consumers = 1;
	st->kind = RDO_SINK_WRITER;
	st->writer.state = RDO_WRITER_DISK_FULL;
	st->writer.files = 7;
	st->writer.errors = 2;
	rdo_strlcpy(st->writer.file, "/data/run000001_sim0_0003.rdo", sizeof(st->writer.file));
	rdo_strlcpy(st->writer.last_error, "disk full on /data", sizeof(st->writer.last_error));
}

static const struct rdo_sink_ops writer_ops = {
    .name = "writer",
    .offer = fake_offer,
    .stats = writer_stats,
    .destroy = fake_destroy,
};

static struct rdo_card *card;
static struct rdo_regmap *map;
static struct rdo_events *events;
static struct rdo_dma *dma;
static struct fake_sink fake;
static struct rdo_sink *sinks[1];
static void *zctx;

static void setup(void)
{
	rdo_log_set_level(LOG_WARNING);
	struct rdo_card_opts co;
	rdo_card_opts_init(&co);
	co.links = LINKS;
	co.sim_rate = 1000000;
	card = rdo_card_open(&co);
	cr_assert_not_null(card);
	char err[512] = "";
	map = rdo_regmap_load(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	events = rdo_events_create();
	cr_assert_not_null(events);
	struct rdo_dma_opts o;
	rdo_dma_opts_init(&o);
	o.superpage_size = 16384;
	o.superpages = 8;
	o.page_size = 1024;
	o.link_mask = 0x6;
	dma = rdo_dma_create(card, map, &o, events);
	cr_assert_not_null(dma);
	memset(&fake, 0, sizeof(fake));
	fake.base.ops = &fake_ops;
	rdo_endpoints_add(&fake.endpoints, "tcp://127.0.0.1:1");
	rdo_endpoints_add(&fake.endpoints, "ipc:///tmp/fake");
	sinks[0] = &fake.base;
	zctx = zmq_ctx_new();
	cr_assert_not_null(zctx);
}

static void teardown(void)
{
	rdo_dma_destroy(&dma);
	zmq_ctx_term(zctx);
	rdo_events_destroy(&events);
	rdo_regmap_destroy(&map);
	rdo_card_close(&card);
}

TestSuite(status, .init = setup, .fini = teardown);

/* A status of the card above and `n` sinks, published every `interval_ms`. */
static struct rdo_status *make_status_of(unsigned interval_ms, struct rdo_sink *const *of,
					 unsigned n)
{
	struct rdo_status_opts o;
	rdo_status_opts_init(&o);
	memset(&o.bind, 0, sizeof(o.bind));
	rdo_endpoints_add(&o.bind, "tcp://127.0.0.1:*");
	o.interval_ms = interval_ms;
	o.log_interval_s = 0;
	struct rdo_status_sources src = {
	    .card = card, .map = map, .dma = dma, .sinks = of, .nsinks = n, .events = events};
	struct rdo_status *st = rdo_status_create(zctx, NULL, &src, 1, &o);
	cr_assert_not_null(st);
	return st;
}

static struct rdo_status *make_status(unsigned interval_ms)
{
	return make_status_of(interval_ms, sinks, 1);
}

/* `m` packed and unpacked again: free it with rdo__status__free_unpacked. */
static Rdo__Status *round_trip(const struct rdo_status_msg *m)
{
	size_t len = rdo__status__get_packed_size(&m->st);
	static uint8_t buf[16384];
	cr_assert_leq(len, sizeof(buf));
	rdo__status__pack(&m->st, buf);
	Rdo__Status *back = rdo__status__unpack(NULL, len, buf);
	cr_assert_not_null(back, "a status that does not unpack");
	return back;
}

Test(status, opts_defaults)
{
	struct rdo_status_opts o;
	rdo_status_opts_init(&o);
	cr_assert_eq(o.interval_ms, 1000);
	cr_assert_eq(o.log_interval_s, 5);
	cr_assert_eq(o.bind.n, 2);
	cr_assert_str_eq(o.bind.ep[0], RDO_DEFAULT_STATUS_TCP);
	cr_assert_str_eq(o.bind.ep[1], RDO_DEFAULT_STATUS_IPC);
}

Test(status, fill_reports_card_channel_and_sinks)
{
	struct rdo_status *st = make_status(1000);
	const struct rdo_endpoints *bound = rdo_status_endpoints(st);
	cr_assert_eq(bound->n, 1);
	cr_assert(strncmp(bound->ep[0], "tcp://127.0.0.1:", 16) == 0 &&
		      strcmp(bound->ep[0], "tcp://127.0.0.1:*") != 0,
		  "bound \"%s\": the actual port is reported", bound->ep[0]);

	static struct rdo_status_msg m;
	rdo_status_fill(st, 0, &m);
	cr_assert_str_eq(m.st.card, "sim0");
	cr_assert_eq(m.st.state, RDO__STATE__STATE_IDLE);
	cr_assert_eq(m.st.pool_total, 8);
	cr_assert_eq(m.st.pool_free, 8);
	cr_assert_eq(m.st.superpage_size, 16384);
	cr_assert_not_null(m.st.pool_memory);
	cr_assert_str_eq(m.st.last_error, "");
	cr_assert_eq(m.st.uptime_s, 0, "no uptime while idle");
	cr_assert(m.st.temperature_mc > 30000 && m.st.temperature_mc < 60000,
		  "temperature %d m°C from mon.temperature", m.st.temperature_mc);
	cr_assert_neq(m.st.time_ns, 0);
	cr_assert_eq(m.st.n_links, LINKS);
	for (unsigned i = 0; i < LINKS; i++) {
		cr_assert_eq(m.st.links[i]->link, i);
		cr_assert_eq(m.st.links[i]->enabled, i == 1 || i == 2, "link %u", i);
	}
	cr_assert_eq(m.st.n_sinks, 1);
	const Rdo__SinkStatus *k = m.st.sinks[0];
	cr_assert_str_eq(k->name, "fake");
	cr_assert_eq(k->superpages, 11);
	cr_assert_eq(k->bytes, 22);
	cr_assert_eq(k->dropped, 3);
	cr_assert_eq(k->queued, 4);
	cr_assert_eq(k->consumers, 2);
	cr_assert_eq(k->n_endpoints, 2);
	cr_assert_str_eq(k->endpoints[0], "tcp://127.0.0.1:1");
	cr_assert_str_eq(k->endpoints[1], "ipc:///tmp/fake");

	/* It packs and unpacks as the protobuf it claims to be. */
	Rdo__Status *back = round_trip(&m);
	cr_assert_str_eq(back->card, "sim0");
	cr_assert_eq(back->n_links, LINKS);
	cr_assert_eq(back->n_sinks, 1);
	rdo__status__free_unpacked(back, NULL);
	rdo_status_destroy(&st);
	cr_assert_null(st);
	rdo_status_destroy(&st);
}

/* Only a sink that says it is the writer carries the writer's fields. */
Test(status, fill_carries_the_writers_own_fields)
{
	struct rdo_sink writer = {.ops = &writer_ops};
	struct rdo_sink *both[2] = {&fake.base, &writer};
	struct rdo_status *st = make_status_of(1000, both, 2);
	static struct rdo_status_msg m;
	rdo_status_fill(st, 0, &m);
	cr_assert_eq(m.st.n_sinks, 2);
	const Rdo__SinkStatus *f = m.st.sinks[0], *w = m.st.sinks[1];
	cr_assert(!f->state || !*f->state, "the fake sink has a state \"%s\"", f->state);
	cr_assert(!f->file || !*f->file);
	cr_assert_eq(f->files + f->errors, 0);
	cr_assert_str_eq(w->name, "writer");
	cr_assert_eq(w->superpages, 5);
	cr_assert_eq(w->consumers, 1);
	cr_assert_str_eq(w->state, "disk_full");
	cr_assert_str_eq(w->file, "/data/run000001_sim0_0003.rdo");
	cr_assert_eq(w->files, 7);
	cr_assert_eq(w->errors, 2);
	cr_assert_str_eq(w->last_error, "disk full on /data");
	cr_assert_eq(w->n_endpoints, 0);

	Rdo__Status *back = round_trip(&m);
	cr_assert_str_eq(back->sinks[1]->state, "disk_full");
	cr_assert_str_eq(back->sinks[1]->last_error, "disk full on /data");
	rdo__status__free_unpacked(back, NULL);
	rdo_status_destroy(&st);
}

Test(status, fill_follows_the_channel)
{
	struct rdo_status *st = make_status(1000);
	char err[256] = "";
	cr_assert_eq(rdo_dma_start(dma, 9, err, sizeof(err)), 0, "%s", err);
	struct timespec ts = {0, 100000000};
	nanosleep(&ts, NULL);
	static struct rdo_status_msg m;
	rdo_status_fill(st, 0, &m);
	cr_assert_eq(m.st.state, RDO__STATE__STATE_RUNNING);
	cr_assert_eq(m.st.run, 9);
	cr_assert_gt(m.st.superpages, 0, "no superpages after 100 ms at 1 MB/s");
	cr_assert_eq(m.st.superpages, m.dma.superpages);
	cr_assert_eq(m.st.bytes, m.dma.bytes);
	cr_assert_eq(m.st.pool_total, m.st.pool_free + m.st.pool_in_card + m.st.pool_in_sinks);
	cr_assert_eq(rdo_dma_stop(dma, err, sizeof(err)), 0, "%s", err);
	rdo_status_fill(st, 0, &m);
	cr_assert_eq(m.st.state, RDO__STATE__STATE_IDLE);
	rdo_status_destroy(&st);
}

/* Receive one two-part message on `sub` with topic `topic` within 5 s; its body's length. */
static int recv_topic(void *sub, const char *topic, uint8_t *buf, size_t cap)
{
	int timeout = 5000;
	zmq_setsockopt(sub, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	for (int tries = 0; tries < 50; tries++) {
		char t[32] = "";
		int n = zmq_recv(sub, t, sizeof(t) - 1, 0);
		cr_assert_geq(n, 0, "nothing on the status stream: %s", zmq_strerror(zmq_errno()));
		int more = 0;
		size_t ml = sizeof(more);
		zmq_getsockopt(sub, ZMQ_RCVMORE, &more, &ml);
		cr_assert(more, "topic \"%s\" without a body", t);
		int len = zmq_recv(sub, buf, cap, 0);
		cr_assert_geq(len, 0);
		if (strcmp(t, topic) == 0)
			return len;
	}
	cr_assert_fail("no \"%s\" message", topic);
	return -1;
}

Test(status, publishes_status_and_events)
{
	struct rdo_status *st = make_status(50);
	void *sub = zmq_socket(zctx, ZMQ_SUB);
	cr_assert_not_null(sub);
	int linger = 0;
	zmq_setsockopt(sub, ZMQ_LINGER, &linger, sizeof(linger));
	zmq_setsockopt(sub, ZMQ_SUBSCRIBE, "", 0);
	cr_assert_eq(zmq_connect(sub, rdo_status_endpoints(st)->ep[0]), 0);

	static uint8_t buf[8192];
	int len = recv_topic(sub, "status/sim0", buf, sizeof(buf));
	Rdo__Status *s = rdo__status__unpack(NULL, (size_t)len, buf);
	cr_assert_not_null(s, "a status message that does not unpack");
	cr_assert_str_eq(s->card, "sim0");
	cr_assert_eq(s->n_links, LINKS);
	rdo__status__free_unpacked(s, NULL);

	/* Events raised after the subscription is up arrive under "event". */
	rdo_event(events, RDO_SEV_WARNING, "fault", 0, "test event %d", 42);
	len = recv_topic(sub, "event/sim0", buf, sizeof(buf));
	Rdo__Event *e = rdo__event__unpack(NULL, (size_t)len, buf);
	cr_assert_not_null(e);
	cr_assert_str_eq(e->card, "sim0");
	cr_assert_str_eq(e->kind, "fault");
	cr_assert_str_eq(e->message, "test event 42");
	cr_assert_eq(e->severity, RDO__SEVERITY__SEV_WARNING);
	rdo__event__free_unpacked(e, NULL);
	zmq_close(sub);
	rdo_status_destroy(&st);
}

Test(status, create_refuses_a_taken_endpoint)
{
	struct rdo_status *a = make_status(1000);
	struct rdo_status_opts o;
	rdo_status_opts_init(&o);
	memset(&o.bind, 0, sizeof(o.bind));
	rdo_endpoints_add(&o.bind, rdo_status_endpoints(a)->ep[0]);
	struct rdo_status_sources src = {.card = card, .map = map, .dma = dma, .events = events};
	rdo_log_set_level(LOG_CRIT); /* the refusal logs an error on purpose */
	struct rdo_status *b = rdo_status_create(zctx, NULL, &src, 1, &o);
	rdo_log_set_level(LOG_WARNING);
	cr_assert_null(b, "bound %s twice", rdo_status_endpoints(a)->ep[0]);
	rdo_status_destroy(&a);
}
