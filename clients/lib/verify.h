/*
 * The superpage verifier: checks what a consumer received, superpage by
 * superpage, against what the server and the card promise, and counts and
 * describes every deviation.
 *
 * Per link (card and link number) it keeps the next expected sequence number
 * and page counter, and for each superpage:
 * - sequence: a jump forward is a gap of that many superpages; the part
 *   matched by a rise of dropped_before since the link's previous superpage
 *   is counted by the server (a live sink drop), the rest is unexplained. A
 *   step back is reported as out of order, unless it is a restart (sequence 0
 *   or another run), which starts the link afresh. The first superpage of a
 *   link sets the baseline: joining a running stream is not a gap.
 *   dropped_before counts the sink's drops of every link, so its rise per
 *   card is also kept: it shows drops of links that never got through.
 * - pages: walks every DMA page with rdo_page_check() (its payload too when
 *   check_payload is set); a failing page is corrupt; a page counter jump
 *   inside a contiguous sequence is pages the card dropped at the source; a
 *   rise of the header's card_pages_dropped is counted as the card's drops.
 * - header-only superpages (RDO_SP_HEADER_ONLY): only the first page header
 *   is checked; the superpage counts as unverified.
 * rdo_verify_tick() reports a link that has been silent for silent_ns while
 * others deliver.
 *
 * Every problem goes to the report callback as one line, from the thread
 * that calls in; rate limiting is the caller's business.
 *
 * Thread-safety: a verifier belongs to one thread at a time.
 */
#ifndef RDO_VERIFY_H
#define RDO_VERIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/rdodata.h"

enum rdo_verify_problem {
	RDO_VERIFY_GAP,	      /* superpages missing and not counted by the server: lost */
	RDO_VERIFY_SINK_DROP, /* superpages missing, counted by the server (dropped_before) */
	RDO_VERIFY_CARD_DROP, /* pages the card dropped at the source */
	RDO_VERIFY_CORRUPT,   /* pages that fail their check */
	RDO_VERIFY_ORDER,     /* a sequence number went back without a restart */
	RDO_VERIFY_SILENT,    /* a link silent while others deliver */
	RDO_VERIFY_NPROBLEMS
};

/* "lost superpages", "corrupt page"... */
const char *rdo_verify_problem_name(enum rdo_verify_problem p);

/* `line` is one line without a newline, valid during the call. */
typedef void rdo_verify_report_fn(void *arg, enum rdo_verify_problem p, const char *line);

/* Plain value; rdo_verify_opts_init() fills the defaults. */
struct rdo_verify_opts {
	bool check_payload;	      /* every payload byte against the pattern; default false */
	uint64_t silent_ns;	      /* a link silent this long is reported; default 1 s */
	rdo_verify_report_fn *report; /* NULL: count only */
	void *arg;
};

void rdo_verify_opts_init(struct rdo_verify_opts *o);

/* Counters of a link, or summed over links. Plain value. */
struct rdo_verify_counts {
	uint64_t superpages;
	uint64_t pages;		     /* pages walked (header-only: the pages the size holds) */
	uint64_t bytes;		     /* payload bytes of the superpages */
	uint64_t sequence_gaps;	     /* superpages missing from the sequence, in total */
	uint64_t gaps_counted;	     /* of those, matched by a rise of dropped_before */
	uint64_t card_pages_dropped; /* rises of the header's card_pages_dropped */
	uint64_t pages_missing;	     /* page counter jumps inside a contiguous sequence */
	uint64_t corrupt_pages;
	uint64_t out_of_order; /* superpages whose sequence went back */
	uint64_t unverified;   /* header-only superpages */
};

/* One link. Plain value. */
struct rdo_verify_link {
	char card[RDO_DATA_CARD_MAX];
	unsigned link;
	struct rdo_verify_counts c;
	uint64_t next_sequence; /* expected */
	uint64_t last_seen_ns;	/* `now_ns` of its last superpage */
	bool silent;		/* reported silent, nothing since */
	bool down;		/* its last superpage had RDO_SP_LINK_DOWN */
};

struct rdo_verify;

/* NULL when out of memory. Caller owns the result. */
struct rdo_verify *rdo_verify_create(const struct rdo_verify_opts *o);
void rdo_verify_destroy(struct rdo_verify **v);

/*
 * Check one superpage received at `now_ns` (any monotonic clock, the same
 * for every call). Returns the number of problems reported for it.
 */
unsigned rdo_verify_superpage(struct rdo_verify *v, const struct rdo_data_view *sp,
			      uint64_t now_ns);

/* Report links newly silent at `now_ns`. Call it about once a second. */
void rdo_verify_tick(struct rdo_verify *v, uint64_t now_ns);

/* The counters summed over every link, and what only the whole stream shows. Plain value. */
struct rdo_verify_totals {
	struct rdo_verify_counts c;
	uint64_t sink_dropped; /* rise of dropped_before per card, summed: superpages of any
				  link the server's sink dropped while this verifier listened */
	size_t links;
	size_t silent_links;
};

void rdo_verify_totals(const struct rdo_verify *v, struct rdo_verify_totals *t);

/* The number of links seen, and link `i` of them in the order they were first seen. */
size_t rdo_verify_nlinks(const struct rdo_verify *v);
const struct rdo_verify_link *rdo_verify_link_at(const struct rdo_verify *v, size_t i);

#endif
