#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "common/page.h"
#include "common/util.h"
#include "lib/verify.h"

#define SLOT	512u
#define PAGES	8u
#define SP_SIZE (SLOT * PAGES)
#define MS	1000000ull

/* What the report callback saw. */
static unsigned reported[RDO_VERIFY_NPROBLEMS];
static char last_line[1024];

static void on_report(void *arg, enum rdo_verify_problem p, const char *line)
{
	(void)arg;
	reported[p]++;
	rdo_strlcpy(last_line, line, sizeof(last_line));
	cr_log_info("%s: %s", rdo_verify_problem_name(p), line);
}

static unsigned total_reported(void)
{
	unsigned n = 0;
	for (int i = 0; i < RDO_VERIFY_NPROBLEMS; i++)
		n += reported[i];
	return n;
}

static struct rdo_verify *make(bool check_payload)
{
	memset(reported, 0, sizeof(reported));
	last_line[0] = '\0';
	struct rdo_verify_opts o;
	rdo_verify_opts_init(&o);
	o.check_payload = check_payload;
	o.report = on_report;
	struct rdo_verify *v = rdo_verify_create(&o);
	cr_assert_not_null(v);
	return v;
}

/* The superpages under test: one at a time. */
static unsigned char buf[SP_SIZE];

/* A superpage of `pages` full pages of `link` from page counter `counter` on. */
static struct rdo_data_view superpage(unsigned char *buf, unsigned link, uint64_t seq,
				      uint64_t counter, unsigned pages)
{
	for (unsigned i = 0; i < pages; i++)
		rdo_page_write(buf + i * SLOT, link, counter + i, SLOT, SLOT - 32, 1000 + i);
	struct rdo_data_view v = {
	    .data = buf, .size = (size_t)pages * SLOT, .link = link, .sequence = seq, .run = 7};
	rdo_strlcpy(v.card, "sim0", sizeof(v.card));
	return v;
}

/* A verifier (payloads checked) that has seen superpage 0 of `link`, pages 0..PAGES-1. */
static struct rdo_verify *make_started(unsigned link)
{
	struct rdo_verify *v = make(true);
	struct rdo_data_view sp = superpage(buf, link, 0, 0, PAGES);
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
	return v;
}

static struct rdo_verify_counts totals(const struct rdo_verify *v)
{
	struct rdo_verify_totals t;
	rdo_verify_totals(v, &t);
	return t.c;
}

Test(verify, clean_run)
{
	struct rdo_verify *v = make(true);
	for (uint64_t seq = 0; seq < 20; seq++)
		for (unsigned link = 0; link < 3; link++) {
			struct rdo_data_view sp = superpage(buf, link, seq, seq * PAGES, PAGES);
			cr_assert_eq(rdo_verify_superpage(v, &sp, seq * MS), 0);
		}
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.superpages, 60);
	cr_assert_eq(t.pages, 60 * PAGES);
	cr_assert_eq(t.bytes, 60ull * SP_SIZE);
	cr_assert_eq(t.sequence_gaps + t.card_pages_dropped + t.pages_missing + t.corrupt_pages +
			 t.out_of_order + t.unverified,
		     0);
	cr_assert_eq(total_reported(), 0, "%s", last_line);
	cr_assert_eq(rdo_verify_nlinks(v), 3);
	const struct rdo_verify_link *l = rdo_verify_link_at(v, 2);
	cr_assert_str_eq(l->card, "sim0");
	cr_assert_eq(l->link, 2);
	cr_assert_eq(l->next_sequence, 20);
	cr_assert_eq(l->last_seen_ns, 19 * MS);
	cr_assert_null(rdo_verify_link_at(v, 3));
	rdo_verify_destroy(&v);
	cr_assert_null(v);
	rdo_verify_destroy(&v);
}

Test(verify, joining_late_is_not_a_gap)
{
	struct rdo_verify *v = make(true);
	struct rdo_data_view sp = superpage(buf, 0, 500, 4000, PAGES);
	sp.dropped_before = 12;
	sp.card_pages_dropped = 30;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0);
	sp = superpage(buf, 0, 501, 4000 + PAGES, PAGES);
	sp.dropped_before = 12;
	sp.card_pages_dropped = 30;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.sequence_gaps + t.card_pages_dropped, 0, "baselines come from the first");
	rdo_verify_destroy(&v);
}

Test(verify, corrupted_byte)
{
	struct rdo_verify *v = make_started(1);
	struct rdo_data_view sp;
	sp = superpage(buf, 1, 1, PAGES, PAGES);
	buf[3 * SLOT + 100] ^= 0x10;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_CORRUPT], 1);
	cr_assert(strstr(last_line, "sim0/01 sequence 1"), "%s", last_line);
	cr_assert(strstr(last_line, "page counter 11"), "%s", last_line);
	cr_assert(strstr(last_line, "byte 1636 of the superpage"), "%s", last_line);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.corrupt_pages, 1);
	cr_assert_eq(t.pages, 2 * PAGES, "a bad payload does not stop the walk");
	cr_assert_eq(t.pages_missing, 0);
	rdo_verify_destroy(&v);
}

Test(verify, payload_not_checked_unless_asked)
{
	struct rdo_verify *v = make(false);
	struct rdo_data_view sp = superpage(buf, 1, 0, 0, PAGES);
	buf[SLOT + 40] ^= 1;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0);
	sp = superpage(buf, 1, 1, PAGES, PAGES);
	buf[SLOT] ^= 1; /* the magic of page 1: headers are always checked */
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_CORRUPT], 1);
	cr_assert(strstr(last_line, "bad magic"), "%s", last_line);
	rdo_verify_destroy(&v);
}

Test(verify, page_counter_jump)
{
	struct rdo_verify *v = make_started(2);
	struct rdo_data_view sp;
	/* 5 pages lost between this superpage's pages 3 and 4, and counted by the card. */
	sp = superpage(buf, 2, 1, PAGES, PAGES);
	for (unsigned i = 4; i < PAGES; i++)
		rdo_page_write(buf + i * SLOT, 2, PAGES + i + 5, SLOT, SLOT - 32, 0);
	sp.card_pages_dropped = 5;
	sp.flags = RDO_SP_DISCONTINUITY;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_CARD_DROP], 1);
	cr_assert(strstr(last_line, "page counter 11 -> 17 (5 pages missing)"), "%s", last_line);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.pages_missing, 5);
	cr_assert_eq(t.card_pages_dropped, 5);
	cr_assert_eq(t.corrupt_pages, 0);
	/* The next superpage goes on from the new counter: no second report. */
	sp = superpage(buf, 2, 2, 2 * PAGES + 5, PAGES);
	sp.card_pages_dropped = 5;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0);
	rdo_verify_destroy(&v);
}

Test(verify, page_counter_jump_the_card_does_not_count)
{
	struct rdo_verify *v = make_started(0);
	struct rdo_data_view sp;
	sp = superpage(buf, 0, 1, PAGES + 2, PAGES);
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert(strstr(last_line, "neither counted nor flagged"), "%s", last_line);
	cr_assert_eq(totals(v).pages_missing, 2);
	rdo_verify_destroy(&v);
}

Test(verify, page_counter_going_back_is_corrupt)
{
	struct rdo_verify *v = make_started(0);
	struct rdo_data_view sp;
	sp = superpage(buf, 0, 1, PAGES - 1, PAGES);
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_CORRUPT], 1);
	cr_assert(strstr(last_line, "went back"), "%s", last_line);
	cr_assert_eq(totals(v).corrupt_pages, 1);
	rdo_verify_destroy(&v);
}

Test(verify, gap_counted_by_the_server)
{
	struct rdo_verify *v = make_started(0);
	struct rdo_data_view sp;
	/* Superpages 1..3 dropped by the live sink; their pages are absent too. */
	sp = superpage(buf, 0, 4, 4 * PAGES, PAGES);
	sp.dropped_before = 3;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_SINK_DROP], 1, "%s", last_line);
	cr_assert(strstr(last_line, "3 superpages missing before sequence 4"), "%s", last_line);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.sequence_gaps, 3);
	cr_assert_eq(t.gaps_counted, 3);
	cr_assert_eq(t.pages_missing, 0, "pages of dropped superpages are not card drops");
	rdo_verify_destroy(&v);
}

Test(verify, gap_not_counted_is_lost)
{
	struct rdo_verify *v = make(true);
	struct rdo_data_view sp = superpage(buf, 0, 0, 0, PAGES);
	sp.dropped_before = 1;
	rdo_verify_superpage(v, &sp, 0);
	/* 4 missing, the sink counted 1 of them. */
	sp = superpage(buf, 0, 5, 5 * PAGES, PAGES);
	sp.dropped_before = 2;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_GAP], 1, "%s", last_line);
	cr_assert(strstr(last_line, "3 of them not counted"), "%s", last_line);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.sequence_gaps, 4);
	cr_assert_eq(t.gaps_counted, 1);
	rdo_verify_destroy(&v);
}

Test(verify, sink_drops_of_links_never_seen)
{
	struct rdo_verify *v = make(true);
	/* Link 0 comes whole; the sink drops every superpage of link 1 and counts them. */
	for (uint64_t seq = 0; seq < 5; seq++) {
		struct rdo_data_view sp = superpage(buf, 0, seq, seq * PAGES, PAGES);
		sp.dropped_before = 10 + seq;
		cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
		rdo_strlcpy(sp.card, "sim1", sizeof(sp.card));
		sp.dropped_before = 100;
		cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
	}
	struct rdo_verify_totals t;
	rdo_verify_totals(v, &t);
	cr_assert_eq(t.sink_dropped, 4, "from the first superpage's 10 to the last one's 14");
	cr_assert_eq(t.c.sequence_gaps, 0);
	cr_assert_eq(t.links, 2);
	cr_assert_eq(t.silent_links, 0);
	rdo_verify_destroy(&v);
}

Test(verify, out_of_order_and_restart)
{
	struct rdo_verify *v = make(true);
	for (uint64_t s = 0; s < 3; s++) {
		struct rdo_data_view sp = superpage(buf, 0, s, s * PAGES, PAGES);
		rdo_verify_superpage(v, &sp, 0);
	}
	struct rdo_data_view sp = superpage(buf, 0, 1, PAGES, PAGES);
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_ORDER], 1, "%s", last_line);
	/* A new run from sequence 0 with its own page counters is no problem. */
	sp = superpage(buf, 0, 0, 0, PAGES);
	sp.run = 8;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
	sp = superpage(buf, 0, 1, PAGES, PAGES);
	sp.run = 8;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
	cr_assert_eq(totals(v).out_of_order, 1);
	rdo_verify_destroy(&v);
}

Test(verify, wrong_link)
{
	struct rdo_verify *v = make(true);
	struct rdo_data_view sp = superpage(buf, 4, 0, 0, PAGES);
	sp.link = 5;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert_eq(reported[RDO_VERIFY_CORRUPT], 1);
	cr_assert(strstr(last_line, "sim0/05"), "%s", last_line);
	cr_assert(strstr(last_line, "wrong link id"), "%s", last_line);
	cr_assert(strstr(last_line, "link 4"), "%s", last_line);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.corrupt_pages, 1);
	cr_assert_eq(t.pages, 0, "no page of another link is taken");
	rdo_verify_destroy(&v);
}

Test(verify, truncated_page)
{
	struct rdo_verify *v = make(true);
	struct rdo_data_view sp = superpage(buf, 0, 0, 0, PAGES);
	sp.size -= 100;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert(strstr(last_line, "truncated page"), "%s", last_line);
	cr_assert(strstr(last_line, "412 bytes left"), "%s", last_line);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.pages, PAGES - 1);
	cr_assert_eq(t.corrupt_pages, 1);
	/* Fewer bytes than a header at the end. */
	sp = superpage(buf, 0, 1, PAGES, PAGES);
	sp.size = SLOT + 10;
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert(strstr(last_line, "10 bytes left"), "%s", last_line);
	rdo_verify_destroy(&v);
}

Test(verify, header_only)
{
	struct rdo_verify *v = make_started(0);
	struct rdo_data_view sp;
	/* Only the first header is written; the rest is whatever the memory held. */
	memset(buf, 0x5a, SP_SIZE);
	rdo_page_write_header(buf, 0, PAGES, SLOT, SLOT - 32, 0);
	sp = (struct rdo_data_view){
	    .data = buf, .size = SP_SIZE, .sequence = 1, .run = 7, .flags = RDO_SP_HEADER_ONLY};
	rdo_strlcpy(sp.card, "sim0", sizeof(sp.card));
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
	/* The count of pages it held keeps the page counter going. */
	sp = superpage(buf, 0, 2, 2 * PAGES, PAGES);
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
	struct rdo_verify_counts t = totals(v);
	cr_assert_eq(t.unverified, 1);
	cr_assert_eq(t.pages, 3 * PAGES);
	cr_assert_eq(t.corrupt_pages, 0);
	/* A bad first header still shows. */
	memset(buf, 0, SP_SIZE);
	sp = (struct rdo_data_view){
	    .data = buf, .size = SP_SIZE, .sequence = 3, .run = 7, .flags = RDO_SP_HEADER_ONLY};
	rdo_strlcpy(sp.card, "sim0", sizeof(sp.card));
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1);
	cr_assert(strstr(last_line, "bad magic"), "%s", last_line);
	rdo_verify_destroy(&v);
}

Test(verify, variable_payload_sizes)
{
	struct rdo_verify *v = make(true);
	uint64_t counter = 0;
	for (uint64_t seq = 0; seq < 10; seq++) {
		for (unsigned i = 0; i < PAGES; i++, counter++)
			rdo_page_write(buf + i * SLOT, 3, counter, SLOT,
				       rdo_page_variable_payload(counter, SLOT), 0);
		struct rdo_data_view sp = {
		    .data = buf, .size = SP_SIZE, .link = 3, .sequence = seq};
		rdo_strlcpy(sp.card, "sim0", sizeof(sp.card));
		cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0, "%s", last_line);
	}
	/* A flipped byte in a short payload is found; one in the padding is not a fault. */
	struct rdo_page_header h;
	for (unsigned i = 0; i < PAGES; i++) {
		memcpy(&h, buf + i * SLOT, sizeof(h));
		if (h.payload < SLOT - 32)
			buf[i * SLOT + 32 + h.payload] ^= 1;
	}
	memcpy(&h, buf + 2 * SLOT, sizeof(h));
	buf[2 * SLOT + 32 + h.payload - 1] ^= 1;
	struct rdo_data_view sp = {
	    .data = buf, .size = SP_SIZE, .link = 3, .sequence = 0, .run = 1};
	rdo_strlcpy(sp.card, "sim0", sizeof(sp.card));
	cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 1, "%s", last_line);
	cr_assert_eq(totals(v).corrupt_pages, 1);
	rdo_verify_destroy(&v);
}

Test(verify, cards_are_told_apart)
{
	struct rdo_verify *v = make(true);
	for (uint64_t seq = 0; seq < 3; seq++) {
		struct rdo_data_view sp = superpage(buf, 0, seq, seq * PAGES, PAGES);
		cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0);
		rdo_strlcpy(sp.card, "sim1", sizeof(sp.card));
		cr_assert_eq(rdo_verify_superpage(v, &sp, 0), 0);
	}
	cr_assert_eq(rdo_verify_nlinks(v), 2);
	cr_assert_str_eq(rdo_verify_link_at(v, 1)->card, "sim1");
	rdo_verify_destroy(&v);
}

Test(verify, silent_link)
{
	struct rdo_verify *v = make(true);
	uint64_t t = 0;
	for (uint64_t seq = 0; seq < 30; seq++, t += 100 * MS) {
		struct rdo_data_view sp = superpage(buf, 0, seq, seq * PAGES, PAGES);
		rdo_verify_superpage(v, &sp, t);
		if (seq < 5) {
			sp = superpage(buf, 1, seq, seq * PAGES, PAGES);
			sp.flags = seq == 4 ? RDO_SP_LINK_DOWN : 0;
			rdo_verify_superpage(v, &sp, t);
		}
		rdo_verify_tick(v, t);
	}
	cr_assert_eq(reported[RDO_VERIFY_SILENT], 1, "reported once, not every tick");
	cr_assert(strstr(last_line, "sim0/01: silent for 1.0 s"), "%s", last_line);
	cr_assert(strstr(last_line, "link down"), "%s", last_line);
	cr_assert(rdo_verify_link_at(v, 1)->silent);
	cr_assert_not(rdo_verify_link_at(v, 0)->silent);
	/* When every link is quiet it is a stopped run, not a silent link. */
	rdo_verify_tick(v, t + 5000 * MS);
	cr_assert_eq(reported[RDO_VERIFY_SILENT], 1);
	/* Data again clears it. */
	struct rdo_data_view sp = superpage(buf, 1, 5, 5 * PAGES, PAGES);
	rdo_verify_superpage(v, &sp, t);
	cr_assert_not(rdo_verify_link_at(v, 1)->silent);
	rdo_verify_destroy(&v);
}
