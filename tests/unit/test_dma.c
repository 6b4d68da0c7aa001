#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "card/card.h"
#include "card/card_sim.h"
#include "card/regmap.h"
#include "card/regmap_load.h"
#include "common/log.h"
#include "common/page.h"
#include "common/util.h"
#include "core/events.h"
#include "core/pool.h"
#include "core/sink.h"
#include "dma/dma.h"
#include "unit/refusal.h"

#define REGMAP_FILE RDO_SOURCE_DIR "/config/regmaps/rdo-sim.yaml"
#define LINKS	    4u
#define LINK_MASK   0x5u /* links 0 and 2: a hole in the mask */
#define PAGE	    1024u
#define SP_SIZE	    (16u * PAGE)
#define SUPERPAGES  32u
#define RATE	    8000000u /* bytes per second over the enabled links */
#define MAX_HELD    64u

/*
 * A sink that counts what the channel offers and checks it: sequence numbers
 * continuous per link, whole valid pages, page counters continuous unless the
 * superpage says DISCONTINUITY. Offers come on the DMA thread, where criterion
 * cannot assert: the first problem is kept for the test thread to report.
 */
struct test_sink {
	struct rdo_sink base;
	struct rdo_pool *pool;
	pthread_mutex_t lock;
	bool hold; /* keep every superpage until test_sink_release() */
	struct rdo_superpage *held[MAX_HELD];
	unsigned nheld;
	uint64_t run;
	uint64_t next_seq[LINKS];
	uint64_t next_counter[LINKS];
	uint64_t gap_pages[LINKS]; /* pages missing between superpages */
	uint64_t superpages[LINKS], bytes[LINKS], partial[LINKS], discontinuities[LINKS];
	unsigned problems;
	char problem[256];
};

static void sink_problem(struct test_sink *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sink_problem(struct test_sink *t, const char *fmt, ...)
{
	if (t->problems++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->problem, sizeof(t->problem), fmt, ap);
		va_end(ap);
	}
}

static void check_superpage(struct test_sink *t, const struct rdo_superpage *sp)
{
	unsigned l = sp->link;
	if (l >= LINKS || !(LINK_MASK & (1u << l))) {
		sink_problem(t, "superpage from link %u, not in the mask", l);
		return;
	}
	if (sp->sequence != t->next_seq[l])
		sink_problem(t, "link %u: sequence %llu, expected %llu", l,
			     (unsigned long long)sp->sequence, (unsigned long long)t->next_seq[l]);
	t->next_seq[l] = sp->sequence + 1;
	if (sp->run != t->run)
		sink_problem(t, "link %u: run %llu, expected %llu", l, (unsigned long long)sp->run,
			     (unsigned long long)t->run);
	if (sp->size == 0 || sp->size > SP_SIZE || sp->size % PAGE)
		sink_problem(t, "link %u seq %llu: size %u", l, (unsigned long long)sp->sequence,
			     sp->size);
	if (sp->size < SP_SIZE && !(sp->flags & RDO_SP_PARTIAL))
		sink_problem(t, "link %u seq %llu: %u bytes without PARTIAL", l,
			     (unsigned long long)sp->sequence, sp->size);
	for (uint32_t off = 0; off + PAGE <= sp->size; off += PAGE) {
		const unsigned char *p = (const unsigned char *)sp->data + off;
		size_t bad = 0;
		enum rdo_page_verdict v = rdo_page_check(p, sp->size - off, l, true, &bad);
		if (v != RDO_PAGE_OK) {
			sink_problem(t, "link %u seq %llu page at %u: %s", l,
				     (unsigned long long)sp->sequence, off,
				     rdo_page_verdict_name(v));
			return;
		}
		struct rdo_page_header h;
		memcpy(&h, p, sizeof(h));
		if (h.counter != t->next_counter[l]) {
			if (off != 0 || !(sp->flags & RDO_SP_DISCONTINUITY) ||
			    h.counter < t->next_counter[l])
				sink_problem(
				    t, "link %u seq %llu page at %u: counter %llu, expected %llu",
				    l, (unsigned long long)sp->sequence, off,
				    (unsigned long long)h.counter,
				    (unsigned long long)t->next_counter[l]);
			else
				t->gap_pages[l] += h.counter - t->next_counter[l];
		}
		t->next_counter[l] = h.counter + 1;
	}
	if ((sp->flags & RDO_SP_DISCONTINUITY) && sp->card_pages_dropped < t->gap_pages[l])
		sink_problem(t, "link %u seq %llu: card_pages_dropped %llu below the %llu missing",
			     l, (unsigned long long)sp->sequence,
			     (unsigned long long)sp->card_pages_dropped,
			     (unsigned long long)t->gap_pages[l]);
	t->superpages[l]++;
	t->bytes[l] += sp->size;
	t->partial[l] += !!(sp->flags & RDO_SP_PARTIAL);
	t->discontinuities[l] += !!(sp->flags & RDO_SP_DISCONTINUITY);
}

static bool test_offer(struct rdo_sink *sink, struct rdo_superpage *sp)
{
	struct test_sink *t = container_of(sink, struct test_sink, base);
	pthread_mutex_lock(&t->lock);
	check_superpage(t, sp);
	bool keep = t->hold && t->nheld < MAX_HELD;
	if (keep) {
		rdo_pool_ref(sp);
		t->held[t->nheld++] = sp;
	} else {
		/* A consumer that is done at once: take the reference, then give it back. */
		rdo_pool_ref(sp);
		rdo_pool_put(t->pool, sp);
	}
	pthread_mutex_unlock(&t->lock);
	return keep;
}

static void test_stats(struct rdo_sink *sink, struct rdo_sink_stats *st)
{
	struct test_sink *t = container_of(sink, struct test_sink, base);
	memset(st, 0, sizeof(*st));
	st->name = "test";
	pthread_mutex_lock(&t->lock);
	for (unsigned l = 0; l < LINKS; l++) {
		st->superpages += t->superpages[l];
		st->bytes += t->bytes[l];
	}
	st->queued = t->nheld;
	pthread_mutex_unlock(&t->lock);
}

static void test_destroy(struct rdo_sink *sink)
{
	(void)sink; /* static storage: the test owns it */
}

static const struct rdo_sink_ops test_sink_ops = {
    .name = "test",
    .offer = test_offer,
    .stats = test_stats,
    .destroy = test_destroy,
};

/* Forget the counts before a run: sequences and page counters start at 0 again. */
static void test_sink_rearm(struct test_sink *t, uint64_t run)
{
	pthread_mutex_lock(&t->lock);
	t->run = run;
	memset(t->next_seq, 0, sizeof(t->next_seq));
	memset(t->next_counter, 0, sizeof(t->next_counter));
	memset(t->gap_pages, 0, sizeof(t->gap_pages));
	memset(t->superpages, 0, sizeof(t->superpages));
	memset(t->bytes, 0, sizeof(t->bytes));
	memset(t->partial, 0, sizeof(t->partial));
	memset(t->discontinuities, 0, sizeof(t->discontinuities));
	pthread_mutex_unlock(&t->lock);
}

static void test_sink_release(struct test_sink *t)
{
	pthread_mutex_lock(&t->lock);
	t->hold = false;
	for (unsigned i = 0; i < t->nheld; i++)
		rdo_pool_put(t->pool, t->held[i]);
	t->nheld = 0;
	pthread_mutex_unlock(&t->lock);
}

static uint64_t sink_total(struct test_sink *t, const uint64_t *per_link)
{
	pthread_mutex_lock(&t->lock);
	uint64_t n = 0;
	for (unsigned l = 0; l < LINKS; l++)
		n += per_link[l];
	pthread_mutex_unlock(&t->lock);
	return n;
}

static unsigned sink_held(struct test_sink *t)
{
	pthread_mutex_lock(&t->lock);
	unsigned n = t->nheld;
	pthread_mutex_unlock(&t->lock);
	return n;
}

static void sink_assert_clean(struct test_sink *t)
{
	pthread_mutex_lock(&t->lock);
	unsigned n = t->problems;
	char msg[256];
	rdo_strlcpy(msg, t->problem, sizeof(msg));
	pthread_mutex_unlock(&t->lock);
	cr_assert_eq(n, 0, "the sink saw %u problems, the first: %s", n, msg);
}

static struct rdo_card *card;
static struct rdo_regmap *map;
static struct rdo_events *events;
static struct test_sink sink;

static void setup(void)
{
	rdo_log_set_level(LOG_WARNING);
	struct rdo_card_opts co;
	rdo_card_opts_init(&co);
	co.links = LINKS;
	co.sim_rate = RATE;
	card = rdo_card_open(&co);
	cr_assert_not_null(card);
	char err[512] = "";
	map = rdo_regmap_load(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	events = rdo_events_create();
	cr_assert_not_null(events);
	memset(&sink, 0, sizeof(sink));
	sink.base.ops = &test_sink_ops;
	pthread_mutex_init(&sink.lock, NULL);
}

static void teardown(void)
{
	rdo_events_destroy(&events);
	rdo_regmap_destroy(&map);
	rdo_card_close(&card);
	pthread_mutex_destroy(&sink.lock);
}

TestSuite(dma, .init = setup, .fini = teardown);

static void test_opts(struct rdo_dma_opts *o)
{
	rdo_dma_opts_init(o);
	o->superpage_size = SP_SIZE;
	o->superpages = SUPERPAGES;
	o->page_size = PAGE;
	o->link_mask = LINK_MASK;
	o->irq_coalesce = 1;
	o->irq_holdoff_us = 1000;
}

static struct rdo_dma *make_dma(void)
{
	struct rdo_dma_opts o;
	test_opts(&o);
	struct rdo_dma *dma = rdo_dma_create(card, map, &o, events);
	cr_assert_not_null(dma);
	sink.pool = rdo_dma_pool(dma);
	cr_assert_not_null(sink.pool);
	cr_assert_eq(rdo_dma_add_sink(dma, &sink.base), 0);
	return dma;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void start(struct rdo_dma *dma, uint64_t run)
{
	test_sink_rearm(&sink, run);
	char err[256] = "";
	int rc = rdo_dma_start(dma, run, err, sizeof(err));
	cr_assert_eq(rc, 0, "start: %d %s", rc, err);
}

static void stop(struct rdo_dma *dma)
{
	char err[256] = "";
	int rc = rdo_dma_stop(dma, err, sizeof(err));
	cr_assert_eq(rc, 0, "stop: %d %s", rc, err);
}

/* Wait until the sink has counted at least `n` superpages on every enabled link. */
static void wait_superpages(uint64_t n)
{
	for (int i = 0; i < 5000; i++) {
		bool all = true;
		pthread_mutex_lock(&sink.lock);
		for (unsigned l = 0; l < LINKS; l++)
			if ((LINK_MASK & (1u << l)) && sink.superpages[l] < n)
				all = false;
		pthread_mutex_unlock(&sink.lock);
		if (all)
			return;
		sleep_ms(1);
	}
	cr_assert_fail("fewer than %llu superpages per link after 5 s", (unsigned long long)n);
}

/* After a stop: the channel's counters and the sink's agree, and the pool is home. */
static void assert_stats_add_up(struct rdo_dma *dma, uint64_t run)
{
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_IDLE, "state %s", rdo_dma_state_name(st.state));
	cr_assert_eq(st.run, run);
	cr_assert_eq(st.links, LINKS);
	cr_assert_eq(st.superpage_size, SP_SIZE);
	cr_assert_eq(st.pool_total, SUPERPAGES);
	cr_assert_eq(st.pool_free, SUPERPAGES, "pool: %u free of %u, %u in card, %u in sinks",
		     st.pool_free, st.pool_total, st.pool_in_card, st.pool_in_sinks);
	cr_assert_eq(st.pool_in_card, 0);
	cr_assert_eq(st.pool_in_sinks, 0);
	cr_assert_eq(st.superpages, sink_total(&sink, sink.superpages));
	cr_assert_eq(st.bytes, sink_total(&sink, sink.bytes));
	uint64_t sum_dropped = 0, sum_bytes_dropped = 0;
	for (unsigned l = 0; l < LINKS; l++) {
		const struct rdo_dma_link_stats *ls = &st.link[l];
		bool on = LINK_MASK & (1u << l);
		cr_assert_eq(ls->enabled, on, "link %u enabled %d", l, ls->enabled);
		cr_assert_eq(ls->in_card, 0, "link %u: %u in card", l, ls->in_card);
		cr_assert_eq(ls->superpages, sink.superpages[l], "link %u", l);
		cr_assert_eq(ls->bytes, sink.bytes[l], "link %u", l);
		if (!on) {
			cr_assert_eq(ls->superpages, 0);
			continue;
		}
		cr_assert_eq(ls->bytes % PAGE, 0);
		cr_assert_eq(ls->bytes_dropped, ls->pages_dropped * PAGE);
		sum_dropped += ls->pages_dropped;
		sum_bytes_dropped += ls->bytes_dropped;
	}
	cr_assert_eq(st.pages_dropped, sum_dropped);
	cr_assert_eq(st.bytes_dropped, sum_bytes_dropped);
}

/* After a stop: every page the card generated on a link was delivered or dropped. */
static void assert_pages_add_up(struct rdo_dma *dma)
{
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	for (unsigned l = 0; l < LINKS; l++) {
		if (!(LINK_MASK & (1u << l)))
			continue;
		const struct rdo_dma_link_stats *ls = &st.link[l];
		uint64_t delivered = ls->bytes / PAGE;
		cr_assert_eq(
		    ls->pages, delivered + ls->pages_dropped,
		    "link %u: the card generated %llu pages, %llu delivered + %llu dropped", l,
		    (unsigned long long)ls->pages, (unsigned long long)delivered,
		    (unsigned long long)ls->pages_dropped);
	}
}

Test(dma, opts_defaults)
{
	struct rdo_dma_opts o;
	rdo_dma_opts_init(&o);
	cr_assert_eq(o.superpage_size, 1u << 20);
	cr_assert_eq(o.superpages, 256);
	cr_assert_eq(o.page_size, 8192);
	cr_assert_eq(o.link_mask, UINT32_MAX);
	cr_assert_str_eq(rdo_dma_state_name(RDO_DMA_IDLE), "idle");
	cr_assert_str_eq(rdo_dma_state_name(RDO_DMA_RUNNING), "running");
	cr_assert_str_eq(rdo_dma_state_name(RDO_DMA_STOPPING), "stopping");
	cr_assert_str_eq(rdo_dma_state_name(RDO_DMA_ERROR), "error");
	cr_assert_str_eq(rdo_dma_state_name((enum rdo_dma_state)42), "unknown");
}

Test(dma, idle_after_create)
{
	struct rdo_dma *dma = make_dma();
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_IDLE);
	cr_assert_eq(st.started_ns, 0);
	cr_assert_eq(st.superpages, 0);
	cr_assert_eq(st.pool_total, SUPERPAGES);
	cr_assert_eq(st.pool_free, SUPERPAGES);
	cr_assert_not_null(st.pool_memory);
	cr_assert_eq(st.errors, 0);
	cr_assert_str_eq(st.last_error, "");
	rdo_dma_destroy(&dma);
	cr_assert_null(dma);
	rdo_dma_destroy(&dma);
}

Test(dma, start_stop_delivers_in_sequence)
{
	struct rdo_dma *dma = make_dma();
	start(dma, 7);
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_RUNNING);
	cr_assert_eq(st.run, 7);
	cr_assert_neq(st.started_ns, 0);
	wait_superpages(5);
	stop(dma);
	sink_assert_clean(&sink);
	assert_stats_add_up(dma, 7);
	for (unsigned l = 0; l < LINKS; l++)
		if (LINK_MASK & (1u << l))
			cr_assert_leq(sink.partial[l], 1, "link %u: %llu partial superpages", l,
				      (unsigned long long)sink.partial[l]);
	uint64_t n = sink_total(&sink, sink.superpages);
	sleep_ms(30);
	cr_assert_eq(sink_total(&sink, sink.superpages), n, "nothing is delivered after stop");
	rdo_dma_destroy(&dma);
}

Test(dma, restart_starts_sequences_from_zero)
{
	struct rdo_dma *dma = make_dma();
	for (uint64_t run = 1; run <= 3; run++) {
		start(dma, run);
		wait_superpages(3);
		stop(dma);
		/* the sink checked that sequences and page counters began at 0 for this run */
		sink_assert_clean(&sink);
		assert_stats_add_up(dma, run);
	}
	rdo_dma_destroy(&dma);
}

Test(dma, start_while_running_is_busy)
{
	struct rdo_dma *dma = make_dma();
	start(dma, 1);
	char err[256] = "";
	cr_assert_eq(rdo_dma_start(dma, 2, err, sizeof(err)), -EBUSY);
	cr_assert(strstr(err, "running") && strstr(err, "stop"), "message \"%s\"", err);
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_RUNNING);
	cr_assert_eq(st.run, 1, "the refused start changed the run");
	wait_superpages(2);
	stop(dma);
	sink_assert_clean(&sink);
	rdo_dma_destroy(&dma);
}

Test(dma, stop_while_idle_is_busy)
{
	struct rdo_dma *dma = make_dma();
	char err[256] = "";
	cr_assert_eq(rdo_dma_stop(dma, err, sizeof(err)), -EBUSY);
	cr_assert(strstr(err, "idle") && strstr(err, "not running"), "message \"%s\"", err);
	start(dma, 1);
	stop(dma);
	err[0] = '\0';
	cr_assert_eq(rdo_dma_stop(dma, err, sizeof(err)), -EBUSY, "a second stop");
	cr_assert_neq(err[0], '\0');
	rdo_dma_destroy(&dma);
}

/* Hold the whole pool until the card has dropped pages on every enabled link, then let go. */
static void hold_until_dropped(struct rdo_dma *dma)
{
	sink.hold = true;
	for (int i = 0; i < 5000 && sink_held(&sink) < SUPERPAGES; i++)
		sleep_ms(1);
	cr_assert_eq(sink_held(&sink), SUPERPAGES, "the sink holds the whole pool");
	struct rdo_dma_stats st;
	for (int i = 0; i < 500; i++) {
		rdo_dma_stats(dma, &st);
		if (st.link[0].pages_dropped > 0 && st.link[2].pages_dropped > 0)
			break;
		sleep_ms(10);
	}
	cr_assert_gt(st.link[0].pages_dropped, 0, "link 0 dropped nothing with the pool held");
	cr_assert_gt(st.link[2].pages_dropped, 0, "link 2 dropped nothing with the pool held");
	cr_assert_eq(st.pool_free, 0);
	cr_assert_eq(st.pool_in_card, 0);
	cr_assert_eq(st.pool_in_sinks, SUPERPAGES);
	cr_assert_eq(st.state, RDO_DMA_RUNNING);
	cr_assert_eq(sink_total(&sink, sink.superpages), SUPERPAGES,
		     "only the pool's superpages were delivered");
	test_sink_release(&sink);
}

/* A run in which the sink holds the pool long enough for the card to drop, then catches up. */
static struct rdo_dma *run_through_drops(void)
{
	struct rdo_dma *dma = make_dma();
	start(dma, 1);
	hold_until_dropped(dma);
	wait_superpages(SUPERPAGES / 2 + 3);
	stop(dma);
	sink_assert_clean(&sink);
	return dma;
}

Test(dma, holding_sink_makes_the_card_drop_at_the_source)
{
	struct rdo_dma *dma = run_through_drops();
	for (unsigned l = 0; l < LINKS; l++) {
		if (!(LINK_MASK & (1u << l)))
			continue;
		cr_assert_geq(sink.discontinuities[l], 1,
			      "link %u: no DISCONTINUITY after the drop", l);
		cr_assert_gt(sink.gap_pages[l], 0, "link %u: the page counters never jumped", l);
	}
	assert_stats_add_up(dma, 1);
	rdo_dma_destroy(&dma);
}

Test(dma, stats_after_stop_count_every_page_of_the_run)
{
	struct rdo_dma *dma = run_through_drops();
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_gt(st.link[0].pages_dropped, 0, "the run's drops are gone from the stats");
	cr_assert_gt(st.pages_dropped, 0);
	assert_pages_add_up(dma);
	rdo_dma_destroy(&dma);
}

Test(dma, reset_from_idle_and_running)
{
	struct rdo_dma *dma = make_dma();
	char err[256] = "";
	cr_assert_eq(rdo_dma_reset(dma, err, sizeof(err)), 0, "reset when idle: %s", err);
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_IDLE);

	start(dma, 1);
	wait_superpages(2);
	cr_assert_eq(rdo_dma_reset(dma, err, sizeof(err)), 0, "reset when running: %s", err);
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_IDLE);
	cr_assert_eq(st.pool_free, SUPERPAGES);
	cr_assert_eq(st.pool_in_card, 0);
	uint64_t n = sink_total(&sink, sink.superpages);
	sleep_ms(30);
	cr_assert_eq(sink_total(&sink, sink.superpages), n, "nothing is delivered after reset");

	start(dma, 2);
	wait_superpages(2);
	stop(dma);
	sink_assert_clean(&sink);
	assert_stats_add_up(dma, 2);
	rdo_dma_destroy(&dma);
}

Test(dma, protocol_error_until_reset)
{
	struct rdo_dma *dma = make_dma();
	struct rdo_dma_buf stray;
	cr_assert_eq(rdo_card_dma_alloc(card, SP_SIZE, SP_SIZE, 64, &stray), 0);
	start(dma, 1);
	/* Someone else posts to link 0 behind the channel's back: its completion matches nothing.
	 */
	uint64_t base = SIM_LINK_BASE + 0 * SIM_LINK_STRIDE;
	cr_assert_eq(rdo_card_write(card, 0, base + SIM_LINK_FREE_ADDR, 64, stray.seg[0].bus), 0);
	cr_assert_eq(rdo_card_write(card, 0, base + SIM_LINK_FREE_PUSH, 32, SP_SIZE), 0);
	struct rdo_dma_stats st;
	for (int i = 0; i < 500; i++) {
		rdo_dma_stats(dma, &st);
		if (st.state == RDO_DMA_ERROR)
			break;
		sleep_ms(10);
	}
	cr_assert_eq(st.state, RDO_DMA_ERROR, "state %s", rdo_dma_state_name(st.state));
	cr_assert_geq(st.errors, 1);
	cr_assert(strstr(st.last_error, "protocol error"), "last error \"%s\"", st.last_error);

	char err[256] = "";
	cr_assert_eq(rdo_dma_start(dma, 2, err, sizeof(err)), -EBUSY);
	cr_assert(strstr(err, "error") && strstr(err, "reset"), "message \"%s\"", err);
	cr_assert_eq(rdo_dma_stop(dma, err, sizeof(err)), -EBUSY);
	cr_assert(strstr(err, "reset"), "message \"%s\"", err);

	cr_assert_eq(rdo_dma_reset(dma, err, sizeof(err)), 0, "reset: %s", err);
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_IDLE);
	cr_assert_eq(st.errors, 0, "reset clears the errors");
	cr_assert_str_eq(st.last_error, "");
	cr_assert_eq(st.pool_free, SUPERPAGES, "the reset took back every superpage");

	start(dma, 3);
	wait_superpages(2);
	stop(dma);
	sink_assert_clean(&sink);
	assert_stats_add_up(dma, 3);
	rdo_dma_destroy(&dma);
	rdo_card_dma_free(card, &stray);
}

Test(dma, state_changes_are_events)
{
	struct rdo_dma *dma = make_dma();
	struct rdo_event e;
	while (rdo_events_next(events, &e))
		;
	start(dma, 1);
	stop(dma);
	static const int want[] = {RDO_DMA_RUNNING, RDO_DMA_STOPPING, RDO_DMA_IDLE};
	size_t n = 0;
	while (rdo_events_next(events, &e)) {
		if (strcmp(e.kind, "state") != 0)
			continue;
		cr_assert_lt(n, RDO_ARRAY_SIZE(want), "an extra state event: %s", e.message);
		cr_assert_eq(e.state, want[n], "state event %zu: %d (%s)", n, e.state, e.message);
		cr_assert_eq(e.severity, RDO_SEV_INFO);
		cr_assert(strstr(e.message, card->name), "\"%s\" does not name the card",
			  e.message);
		n++;
	}
	cr_assert_eq(n, RDO_ARRAY_SIZE(want));
	rdo_dma_destroy(&dma);
}

/* rdo_dma_create must refuse `o` with map `m`, saying `needle`. */
static void expect_refused(const struct rdo_regmap *m, const struct rdo_dma_opts *o,
			   const char *needle)
{
	expect_dma_refused(card, m, o, needle);
}

Test(dma, create_refuses_bad_opts)
{
	struct rdo_dma_opts o;
	test_opts(&o);
	o.page_size = 1020;
	expect_refused(map, &o, "page_size 1020");
	o.page_size = 32;
	expect_refused(map, &o, "page_size 32");
	o.page_size = 16384;
	expect_refused(map, &o, "page_size 16384");

	test_opts(&o);
	o.superpage_size = SP_SIZE + 8;
	expect_refused(map, &o, "superpage_size");
	o.superpage_size = PAGE / 2;
	expect_refused(map, &o, "superpage_size");

	test_opts(&o);
	o.link_mask = 0;
	expect_refused(map, &o, "links");
	o.link_mask = 0xf0; /* links the 4-link card does not have */
	expect_refused(map, &o, "links");

	test_opts(&o);
	o.superpages = 1;
	expect_refused(map, &o, "superpages");

	test_opts(&o);
	struct rdo_dma *dma = rdo_dma_create(card, map, &o, NULL);
	cr_assert_not_null(dma, "the good opts are refused");
	rdo_dma_destroy(&dma);
}

/* The sim map with the bank `bank` cut out, loaded from a temp file. */
static struct rdo_regmap *map_without(const char *bank)
{
	FILE *f = fopen(REGMAP_FILE, "r");
	cr_assert_not_null(f);
	static char text[65536];
	size_t len = fread(text, 1, sizeof(text) - 1, f);
	fclose(f);
	text[len] = '\0';
	char start[64];
	snprintf(start, sizeof(start), "\n  - name: %s\n", bank);
	char *from = strstr(text, start);
	cr_assert_not_null(from, "no bank %s in the map", bank);
	char *to = strstr(from + 1, "\n  - name: ");
	if (!to)
		to = text + len;
	memmove(from, to, strlen(to) + 1);
	cr_assert_null(strstr(text, start));

	char path[] = "/tmp/rdo-test-dma-map-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	char err[512] = "";
	struct rdo_regmap *m = rdo_regmap_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_not_null(m, "the map without %s does not load: %s", bank, err);
	return m;
}

Test(dma, create_refuses_a_map_without_dma_registers)
{
	struct rdo_dma_opts o;
	test_opts(&o);
	struct rdo_regmap *m = map_without("dma");
	struct rdo_target t;
	char err[256];
	cr_assert_neq(rdo_regmap_resolve(m, "dma.control.enable", &t, err, sizeof(err)), 0);
	cr_assert_eq(rdo_regmap_resolve(m, "dma_link0.free_addr", &t, err, sizeof(err)), 0);
	expect_refused(m, &o, "dma.control.enable");
	rdo_regmap_destroy(&m);

	m = map_without("dma_link");
	expect_refused(m, &o, "dma_link0.free_addr");
	rdo_regmap_destroy(&m);
}

Test(dma, add_sink_limit)
{
	struct rdo_dma_opts o;
	test_opts(&o);
	struct rdo_dma *dma = rdo_dma_create(card, map, &o, NULL);
	cr_assert_not_null(dma);
	for (unsigned i = 0; i < RDO_DMA_MAX_SINKS; i++)
		cr_assert_eq(rdo_dma_add_sink(dma, &sink.base), 0);
	cr_assert_eq(rdo_dma_add_sink(dma, &sink.base), -ENOSPC);
	rdo_dma_destroy(&dma);
}

/* Superpages that no sink takes are read out, counted as unclaimed, and go back to the card. */
Test(dma, superpages_no_sink_takes_are_counted_unclaimed)
{
	struct rdo_dma_opts o;
	test_opts(&o);
	struct rdo_dma *dma = rdo_dma_create(card, map, &o, events);
	cr_assert_not_null(dma);
	char err[256] = "";
	cr_assert_eq(rdo_dma_start(dma, 1, err, sizeof(err)), 0, "%s", err);
	struct rdo_dma_stats st;
	for (int i = 0; i < 200; i++) {
		rdo_dma_stats(dma, &st);
		if (st.superpages >= 2 * SUPERPAGES)
			break;
		sleep_ms(10);
	}
	cr_assert_eq(rdo_dma_stop(dma, err, sizeof(err)), 0, "%s", err);
	rdo_dma_stats(dma, &st);
	cr_assert_geq(st.superpages, 2 * SUPERPAGES, "superpages cycle through the pool");
	cr_assert_eq(st.unclaimed, st.superpages, "every one was read out with no sink to take it");
	cr_assert_eq(st.pool_free, st.pool_total, "all back in the pool");
	cr_assert_eq(rdo_dma_reset(dma, err, sizeof(err)), 0, "%s", err);
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.unclaimed, 0, "reset clears the counter");
	rdo_dma_destroy(&dma);
}
