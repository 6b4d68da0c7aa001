#include "lib/verify.h"

#include <stdarg.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/page.h"
#include "common/util.h"

/* The sink's drop count as one card's superpages show it. */
struct card_state {
	char card[RDO_DATA_CARD_MAX];
	uint64_t dropped;      /* rises of dropped_before seen so far */
	uint64_t last_dropped; /* dropped_before of its latest superpage */
};

struct link_state {
	struct rdo_verify_link pub;
	size_t card;			  /* index into rdo_verify.cards */
	char name[RDO_DATA_CARD_MAX + 8]; /* "sim0/03" */
	uint64_t run;
	uint64_t dropped_before;     /* of its previous superpage */
	uint64_t card_pages_dropped; /* of its previous superpage, or the baseline */
	uint64_t next_counter;	     /* page counter expected next, when counter_known */
	bool counter_known;
};

struct rdo_verify {
	struct rdo_verify_opts o;
	struct link_state *links;
	size_t n, cap;
	struct card_state *cards;
	size_t ncards;
	size_t last; /* the link of the previous superpage: usually the next one's too */
};

/* What the page walk of one superpage found, reported once per superpage. */
struct walk {
	uint64_t pages;
	uint64_t missing; /* pages skipped by counter jumps */
	uint64_t jump_from, jump_to;
	uint64_t corrupt;
	char first_corrupt[256];
	size_t unchecked; /* bytes after a page the walk could not step over */
};

void rdo_verify_opts_init(struct rdo_verify_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->silent_ns = 1000000000ull;
}

const char *rdo_verify_problem_name(enum rdo_verify_problem p)
{
	static const char *const names[] = {
	    [RDO_VERIFY_GAP] = "lost superpages",
	    [RDO_VERIFY_SINK_DROP] = "superpages dropped by the server",
	    [RDO_VERIFY_CARD_DROP] = "pages dropped by the card",
	    [RDO_VERIFY_CORRUPT] = "corrupt pages",
	    [RDO_VERIFY_ORDER] = "superpages out of order",
	    [RDO_VERIFY_SILENT] = "silent links",
	};
	return (unsigned)p < RDO_ARRAY_SIZE(names) ? names[p] : "problem";
}

struct rdo_verify *rdo_verify_create(const struct rdo_verify_opts *o)
{
	struct rdo_verify *v = calloc(1, sizeof(*v));
	if (!v)
		return NULL;
	v->o = *o;
	if (!v->o.silent_ns)
		v->o.silent_ns = 1000000000ull;
	return v;
}

void rdo_verify_destroy(struct rdo_verify **pv)
{
	struct rdo_verify *v = *pv;
	if (!v)
		return;
	free(v->links);
	free(v->cards);
	free(v);
	*pv = NULL;
}

static unsigned report(struct rdo_verify *v, enum rdo_verify_problem p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static unsigned report(struct rdo_verify *v, enum rdo_verify_problem p, const char *fmt, ...)
{
	if (!v->o.report)
		return 1;
	char line[768];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	v->o.report(v->o.arg, p, line);
	return 1;
}

/* The card of a superpage; its first one sets the baseline of the drop count. */
static ssize_t find_card(struct rdo_verify *v, const struct rdo_data_view *sp)
{
	for (size_t i = 0; i < v->ncards; i++)
		if (strcmp(v->cards[i].card, sp->card) == 0)
			return (ssize_t)i;
	struct card_state *cards = realloc(v->cards, (v->ncards + 1) * sizeof(*cards));
	if (!cards)
		return -1;
	v->cards = cards;
	struct card_state *c = &cards[v->ncards];
	memset(c, 0, sizeof(*c));
	rdo_strlcpy(c->card, sp->card, sizeof(c->card));
	c->last_dropped = sp->dropped_before;
	return (ssize_t)v->ncards++;
}

static void count_sink_drops(struct rdo_verify *v, size_t card, uint64_t dropped_before)
{
	struct card_state *c = &v->cards[card];
	/* Lower: the server restarted and counts from 0 again. */
	if (dropped_before > c->last_dropped)
		c->dropped += dropped_before - c->last_dropped;
	c->last_dropped = dropped_before;
}

static struct link_state *find_link(struct rdo_verify *v, const struct rdo_data_view *sp)
{
	const char *card = sp->card;
	unsigned link = sp->link;
	if (v->last < v->n && v->links[v->last].pub.link == link &&
	    strcmp(v->links[v->last].pub.card, card) == 0)
		return &v->links[v->last];
	for (size_t i = 0; i < v->n; i++)
		if (v->links[i].pub.link == link && strcmp(v->links[i].pub.card, card) == 0) {
			v->last = i;
			return &v->links[i];
		}
	ssize_t ci = find_card(v, sp);
	if (ci < 0)
		return NULL;
	if (v->n == v->cap) {
		size_t cap = v->cap ? 2 * v->cap : 16;
		struct link_state *links = realloc(v->links, cap * sizeof(*links));
		if (!links)
			return NULL;
		v->links = links;
		v->cap = cap;
	}
	struct link_state *l = &v->links[v->n];
	memset(l, 0, sizeof(*l));
	l->card = (size_t)ci;
	rdo_strlcpy(l->pub.card, card, sizeof(l->pub.card));
	l->pub.link = link;
	snprintf(l->name, sizeof(l->name), "%s/%02u", card, link);
	v->last = v->n++;
	return l;
}

/* The first superpage of a link, or of a new run on it: nothing to compare with. */
static void start_link(struct link_state *l, const struct rdo_data_view *sp)
{
	l->run = sp->run;
	l->dropped_before = sp->dropped_before;
	/* From sequence 0 every drop of this run is ours to count; else only what follows. */
	l->card_pages_dropped = sp->sequence == 0 ? 0 : sp->card_pages_dropped;
	l->counter_known = false;
}

static unsigned check_sequence(struct rdo_verify *v, struct link_state *l,
			       const struct rdo_data_view *sp)
{
	uint64_t want = l->pub.next_sequence;
	if (sp->sequence < want) {
		l->pub.c.out_of_order++;
		l->counter_known = false;
		return report(v, RDO_VERIFY_ORDER,
			      "%s: sequence %llu came after %llu: out of order or repeated",
			      l->name, (unsigned long long)sp->sequence,
			      (unsigned long long)want - 1);
	}
	if (sp->sequence == want)
		return 0;
	uint64_t gap = sp->sequence - want;
	uint64_t rise =
	    sp->dropped_before > l->dropped_before ? sp->dropped_before - l->dropped_before : 0;
	uint64_t counted = rise < gap ? rise : gap;
	l->pub.c.sequence_gaps += gap;
	l->pub.c.gaps_counted += counted;
	/* The pages of the missing superpages are unknown: the counter starts afresh. */
	l->counter_known = false;
	if (counted == gap)
		return report(v, RDO_VERIFY_SINK_DROP,
			      "%s: %llu superpages missing before sequence %llu, dropped by the "
			      "server's sink (dropped_before %llu -> %llu)",
			      l->name, (unsigned long long)gap, (unsigned long long)sp->sequence,
			      (unsigned long long)l->dropped_before,
			      (unsigned long long)sp->dropped_before);
	return report(v, RDO_VERIFY_GAP,
		      "%s: %llu superpages missing before sequence %llu (expected %llu), %llu of "
		      "them not counted by the server: lost",
		      l->name, (unsigned long long)gap, (unsigned long long)sp->sequence,
		      (unsigned long long)want, (unsigned long long)(gap - counted));
}

/*
 * Follow a link's page counter over the next page, noting jumps. False when
 * the counter went back, which makes the page corrupt.
 */
static bool follow_counter(struct link_state *l, uint64_t counter, struct walk *w)
{
	bool back = l->counter_known && counter < l->next_counter;
	if (l->counter_known && counter > l->next_counter) {
		if (w->missing == 0) {
			w->jump_from = l->next_counter - 1;
			w->jump_to = counter;
		}
		w->missing += counter - l->next_counter;
	}
	if (back && w->corrupt++ == 0)
		snprintf(w->first_corrupt, sizeof(w->first_corrupt),
			 "page counter %llu, expected %llu: went back", (unsigned long long)counter,
			 (unsigned long long)l->next_counter);
	l->next_counter = counter + 1;
	l->counter_known = true;
	return !back;
}

static void note_corrupt(struct walk *w, const unsigned char *page, size_t off, size_t avail,
			 enum rdo_page_verdict vd, size_t bad)
{
	if (w->corrupt++)
		return;
	struct rdo_page_header h = {0};
	memcpy(&h, page, avail < sizeof(h) ? avail : sizeof(h));
	if (avail < sizeof(h))
		snprintf(w->first_corrupt, sizeof(w->first_corrupt),
			 "page at superpage offset %zu: %s (%zu bytes left, less than a page "
			 "header)",
			 off, rdo_page_verdict_name(vd), avail);
	else if (vd == RDO_PAGE_BAD_PAYLOAD)
		snprintf(w->first_corrupt, sizeof(w->first_corrupt),
			 "page counter %llu at superpage offset %zu: %s at byte %zu of the "
			 "superpage (byte %zu of the page)",
			 (unsigned long long)h.counter, off, rdo_page_verdict_name(vd), off + bad,
			 bad);
	else
		snprintf(w->first_corrupt, sizeof(w->first_corrupt),
			 "page at superpage offset %zu: %s (magic 0x%08x, version %u, link %u, "
			 "slot %u, payload %u, %zu bytes left)",
			 off, rdo_page_verdict_name(vd), h.magic, h.version, h.link, h.slot,
			 h.payload, avail);
}

/* Walk every page of a superpage. */
static void walk_pages(const struct rdo_verify *v, struct link_state *l,
		       const struct rdo_data_view *sp, struct walk *w)
{
	const unsigned char *p = sp->data;
	size_t off = 0;
	while (off < sp->size) {
		size_t avail = sp->size - off, bad = 0;
		enum rdo_page_verdict vd =
		    rdo_page_check(p + off, avail, sp->link, v->o.check_payload, &bad);
		if (vd != RDO_PAGE_OK && vd != RDO_PAGE_BAD_PAYLOAD) {
			/* Without a sound header there is no next page to step to. */
			note_corrupt(w, p + off, off, avail, vd, bad);
			w->unchecked = avail;
			l->counter_known = false;
			return;
		}
		struct rdo_page_header h;
		memcpy(&h, p + off, sizeof(h));
		/* A page whose counter went back is counted once, by follow_counter. */
		if (follow_counter(l, h.counter, w) && vd != RDO_PAGE_OK)
			note_corrupt(w, p + off, off, avail, vd, bad);
		w->pages++;
		off += h.slot;
	}
}

/*
 * A header-only superpage: only its first page header was written. Pages all
 * have the slot the first one declares, so the size still tells the count.
 */
static void walk_header_only(struct link_state *l, const struct rdo_data_view *sp, struct walk *w)
{
	if (sp->size == 0)
		return;
	size_t bad = 0;
	enum rdo_page_verdict vd = rdo_page_check(sp->data, sp->size, sp->link, false, &bad);
	if (vd != RDO_PAGE_OK) {
		note_corrupt(w, sp->data, 0, sp->size, vd, bad);
		w->unchecked = sp->size;
		l->counter_known = false;
		return;
	}
	struct rdo_page_header h;
	memcpy(&h, sp->data, sizeof(h));
	follow_counter(l, h.counter, w);
	w->pages = sp->size / h.slot;
	l->next_counter = h.counter + w->pages;
	l->counter_known = sp->size % h.slot == 0;
}

static unsigned report_walk(struct rdo_verify *v, struct link_state *l,
			    const struct rdo_data_view *sp, const struct walk *w,
			    uint64_t card_rise)
{
	unsigned n = 0;
	if (w->corrupt) {
		char rest[128] = "";
		if (w->unchecked)
			snprintf(rest, sizeof(rest), "; the last %zu bytes could not be walked",
				 w->unchecked);
		n += report(v, RDO_VERIFY_CORRUPT, "%s sequence %llu: corrupt %s%s%s", l->name,
			    (unsigned long long)sp->sequence, w->first_corrupt,
			    w->corrupt > 1 ? " (and more in this superpage)" : "", rest);
	}
	if (w->missing || card_rise) {
		char jump[128] = "";
		if (w->missing)
			snprintf(jump, sizeof(jump),
				 "page counter %llu -> %llu (%llu pages missing), ",
				 (unsigned long long)w->jump_from, (unsigned long long)w->jump_to,
				 (unsigned long long)w->missing);
		bool flagged = card_rise || (sp->flags & RDO_SP_DISCONTINUITY);
		n += report(v, RDO_VERIFY_CARD_DROP,
			    "%s sequence %llu: the card dropped pages at the source: %scard count "
			    "+%llu (%llu in total)%s",
			    l->name, (unsigned long long)sp->sequence, jump,
			    (unsigned long long)card_rise,
			    (unsigned long long)sp->card_pages_dropped,
			    flagged ? "" : "; neither counted nor flagged by the card");
	}
	return n;
}

unsigned rdo_verify_superpage(struct rdo_verify *v, const struct rdo_data_view *sp, uint64_t now_ns)
{
	struct link_state *l = find_link(v, sp);
	if (!l)
		return 0;
	count_sink_drops(v, l->card, sp->dropped_before);
	unsigned n = 0;
	bool restart = l->pub.c.superpages &&
		       (sp->run != l->run || (sp->sequence == 0 && l->pub.next_sequence != 0));
	if (l->pub.c.superpages == 0 || restart)
		start_link(l, sp);
	else
		n += check_sequence(v, l, sp);

	uint64_t card_rise = 0;
	if (sp->card_pages_dropped > l->card_pages_dropped)
		card_rise = sp->card_pages_dropped - l->card_pages_dropped;
	struct walk w = {0};
	if (sp->flags & RDO_SP_HEADER_ONLY) {
		walk_header_only(l, sp, &w);
		l->pub.c.unverified++;
	} else {
		walk_pages(v, l, sp, &w);
	}
	n += report_walk(v, l, sp, &w, card_rise);

	struct rdo_verify_counts *c = &l->pub.c;
	c->superpages++;
	c->pages += w.pages;
	c->bytes += sp->size;
	c->card_pages_dropped += card_rise;
	c->pages_missing += w.missing;
	c->corrupt_pages += w.corrupt;
	l->run = sp->run;
	l->dropped_before = sp->dropped_before;
	l->card_pages_dropped = sp->card_pages_dropped;
	l->pub.next_sequence = sp->sequence + 1;
	l->pub.last_seen_ns = now_ns;
	l->pub.silent = false;
	l->pub.down = sp->flags & RDO_SP_LINK_DOWN;
	return n;
}

void rdo_verify_tick(struct rdo_verify *v, uint64_t now_ns)
{
	uint64_t newest = 0;
	for (size_t i = 0; i < v->n; i++)
		if (v->links[i].pub.last_seen_ns > newest)
			newest = v->links[i].pub.last_seen_ns;
	if (now_ns - newest >= v->o.silent_ns)
		return; /* everything is quiet: a stopped run, not a silent link */
	for (size_t i = 0; i < v->n; i++) {
		struct link_state *l = &v->links[i];
		uint64_t quiet = now_ns - l->pub.last_seen_ns;
		if (l->pub.silent || quiet < v->o.silent_ns)
			continue;
		l->pub.silent = true;
		report(v, RDO_VERIFY_SILENT,
		       "%s: silent for %.1f s while other links deliver (last sequence %llu%s)",
		       l->name, (double)quiet / 1e9, (unsigned long long)l->pub.next_sequence - 1,
		       l->pub.down ? ", after the card flagged the link down" : "");
	}
}

void rdo_verify_totals(const struct rdo_verify *v, struct rdo_verify_totals *t)
{
	memset(t, 0, sizeof(*t));
	struct rdo_verify_counts *s = &t->c;
	for (size_t i = 0; i < v->n; i++) {
		const struct rdo_verify_counts *c = &v->links[i].pub.c;
		s->superpages += c->superpages;
		s->pages += c->pages;
		s->bytes += c->bytes;
		s->sequence_gaps += c->sequence_gaps;
		s->gaps_counted += c->gaps_counted;
		s->card_pages_dropped += c->card_pages_dropped;
		s->pages_missing += c->pages_missing;
		s->corrupt_pages += c->corrupt_pages;
		s->out_of_order += c->out_of_order;
		s->unverified += c->unverified;
		t->silent_links += v->links[i].pub.silent;
	}
	for (size_t i = 0; i < v->ncards; i++)
		t->sink_dropped += v->cards[i].dropped;
	t->links = v->n;
}

size_t rdo_verify_nlinks(const struct rdo_verify *v)
{
	return v->n;
}

const struct rdo_verify_link *rdo_verify_link_at(const struct rdo_verify *v, size_t i)
{
	return i < v->n ? &v->links[i].pub : NULL;
}
