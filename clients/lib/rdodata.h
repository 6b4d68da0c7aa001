/*
 * The data consumer library: receive superpages from a readoutd data stream,
 * zero-copy, and hand them back when done. readout-sub, the disk writer and
 * the event builder share it.
 *
 *   struct rdo_data_opts o;
 *   rdo_data_opts_init(&o);
 *   o.mode = RDO_DATA_LOSSLESS;
 *   struct rdo_data *d = rdo_data_open(&o, err, sizeof(err));
 *   struct rdo_data_view v;
 *   while (rdo_data_wait(d, &v, 1000) == 0) {
 *           use(v.data, v.size);
 *           rdo_data_ack(d, &v);
 *   }
 *   rdo_data_close(&d);
 *
 * Two streams:
 * - live (RDO_DATA_LIVE): a SUB socket on the server's XPUB. Every superpage
 *   of the subscribed topic, but the server drops for everyone when a
 *   subscriber lags; a view's dropped_before says how many it dropped so far.
 * - lossless (RDO_DATA_LOSSLESS): a DEALER on the server's ROUTER with credit
 *   flow control. The library says hello with `credits`, returns one credit
 *   per ack, and keeps the server's consumer timeout from firing by sending a
 *   heartbeat from wait and ack. Nothing is dropped between the server and
 *   this consumer; a stalled consumer makes the card drop at the source.
 *
 * Ownership: a view's data points into the received ZeroMQ message, no copy.
 * It stays valid until rdo_data_ack(), rdo_data_release() or rdo_data_close(). Up to `credits`
 * views may be held at once and acked in any order.
 *
 * A consumer that copies superpages out and keeps them safe later (a disk
 * writer) releases each view once copied, with rdo_data_release(), and
 * returns its credit with rdo_data_credit() once the copy is safe. The server
 * counts every superpage it sent and did not get a credit back for as
 * dropped when the consumer leaves or dies, so nothing such a consumer loses
 * goes uncounted.
 *
 * Thread-safety: a handle belongs to one thread at a time (it owns a ZeroMQ
 * socket). In lossless mode that thread must call wait, ack or credit at
 * least once a second, or the server detaches the consumer after its timeout
 * (5 s).
 */
#ifndef RDO_DATA_H
#define RDO_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDO_DATA_CARD_MAX    64
#define RDO_DATA_MAX_CREDITS 4096
#define RDO_DATA_RUN_END     1 /* rdo_data_wait(): the run stopped */

/* SuperpageHeader.flags, as the card reports them (spelt as server/card/card.h spells them). */
#define RDO_SP_PARTIAL	     0x1u /* flushed before it was full (stop, link down) */
#define RDO_SP_DISCONTINUITY 0x2u /* the card dropped pages on this link before it */
#define RDO_SP_HEADER_ONLY   0x4u /* payload not written: only the first page header */
#define RDO_SP_LINK_DOWN     0x8u /* the link went down after this superpage */

enum rdo_data_mode { RDO_DATA_LIVE, RDO_DATA_LOSSLESS };

struct rdo_client_keys; /* keys.h */

/* What the consumer asks for. Plain value; rdo_data_opts_init() fills the defaults. */
struct rdo_data_opts {
	enum rdo_data_mode mode; /* default live */
	const char *endpoint;	 /* NULL: RDO_DATA_LIVE_ENDPOINT or RDO_DATA_LOSSLESS_ENDPOINT */
	const char *topic;	 /* live: "" all, "CARD/" one card, "CARD/LL" one link */
	unsigned credits;	 /* views held at once (1..4096); lossless: superpages in
				    flight; live: also the receive high-water mark. Default 8 */
	const char *name; /* lossless: shown in the server log (63 characters); default "rdodata" */
	unsigned silence_ms; /* lossless: a server silent this long has gone; default 5000 */
	bool run_ends;	     /* lossless: wait returns RDO_DATA_RUN_END when a run stops */
	/* CURVE keys (keys.h), set on the socket at open and not kept; NULL (default) or
	 * disabled: plain. A server that refuses them shows as silence, as an absent one. */
	const struct rdo_client_keys *keys;
};

void rdo_data_opts_init(struct rdo_data_opts *o);

/* One received superpage. Plain value, filled by rdo_data_wait(). */
struct rdo_data_view {
	const void *data; /* whole DMA pages (page.h); valid until acked */
	size_t size;
	char card[RDO_DATA_CARD_MAX];
	unsigned link;
	uint64_t sequence;	     /* per link, from 0 at acquisition start */
	uint64_t timestamp_ns;	     /* CLOCK_REALTIME when the server collected it */
	uint32_t flags;		     /* RDO_SP_* */
	uint64_t dropped_before;     /* superpages the sink dropped before this one, in total */
	uint64_t run;		     /* run number given at start (0: none) */
	uint64_t card_pages_dropped; /* pages the card dropped on this link so far */
	unsigned handle;	     /* the library's; ack needs it unchanged */
};

/* Counters of a handle. Plain value. */
struct rdo_data_stats {
	uint64_t superpages; /* views handed out by wait */
	uint64_t bytes;
	uint64_t malformed;  /* messages skipped: wrong frame count, bad header, size mismatch */
	uint64_t pings;	     /* lossless: the server's keep-alives */
	uint64_t run_ends;   /* lossless: runs the server said stopped */
	unsigned held;	     /* views not yet acked or released */
	unsigned uncredited; /* views released and not yet credited */
	bool welcomed;	     /* lossless: the server accepted the hello */
	bool ended;	     /* lossless: the server sent END */
	bool silent;	     /* lossless: the server was silent for silence_ms */
	char card[RDO_DATA_CARD_MAX]; /* lossless: from the welcome */
	uint64_t superpage_size;      /* lossless: from the welcome */
};

/*
 * Connect to the stream `o` describes. Does not wait for the server: an
 * absent server shows as wait timing out (and, lossless, stats.welcomed
 * staying false). NULL with the reason in `err`. Caller owns the result.
 */
struct rdo_data *rdo_data_open(const struct rdo_data_opts *o, char *err, size_t errlen);

/*
 * Wait up to `timeout_ms` (-1: no limit, 0: do not block) for the next
 * superpage. Returns
 *   0              `*v` filled; hold it until rdo_data_ack()
 *   RDO_DATA_RUN_END lossless with opts.run_ends: the run stopped (or was
 *                  reset), and every superpage of it the server sent to
 *                  this consumer came before; `v->card` is set, nothing to
 *                  ack
 *   -ETIMEDOUT     nothing came in time
 *   -EPROTO        a malformed message came: counted and dropped; the next
 *                  call goes on with the one after (rdo_data_error() says what)
 *   -EPIPE         lossless: the server sent END or was silent for silence_ms;
 *                  every later call returns it too
 *   -ECONNREFUSED  lossless: the server refused the hello (rdo_data_error())
 *   -ENOBUFS       `credits` views are held or uncredited: ack or credit one
 *                  first
 *   -EINTR         a signal interrupted the wait
 *   another -errno from ZeroMQ.
 */
int rdo_data_wait(struct rdo_data *d, struct rdo_data_view *v, int timeout_ms);

/*
 * Release a view from wait: its data is gone after this, and `*v` is
 * cleared. Lossless: returns its credit to the server. 0, or -EINVAL when
 * `v` is not a held view of `d` (acked twice, or changed).
 */
int rdo_data_ack(struct rdo_data *d, struct rdo_data_view *v);

/*
 * Lossless: free a view's data but keep its credit, so the server still
 * counts the superpage as in flight to this consumer until rdo_data_credit().
 * 0, or -EINVAL as ack. In live mode the same as ack.
 */
int rdo_data_release(struct rdo_data *d, struct rdo_data_view *v);

/*
 * Lossless: return `n` credits of released views (at most those released):
 * that many more superpages may come. With n = 0 it only keeps the
 * connection alive; call it at least once a second while not calling wait
 * (the consumer's own buffers are full). Returns 0, -EINVAL when `n` is more
 * than the released views, or what wait returns once the stream is over
 * (-EPIPE, -ECONNREFUSED).
 */
int rdo_data_credit(struct rdo_data *d, unsigned n);

/*
 * Release every held view, return the credits owed, say bye (lossless) and
 * disconnect. Views still held, and views released and not credited, count
 * as dropped at the server, with what was on its way. Accepts NULL.
 */
void rdo_data_close(struct rdo_data **d);

void rdo_data_stats(const struct rdo_data *d, struct rdo_data_stats *s);

/* The endpoint of the stream. */
const char *rdo_data_endpoint(const struct rdo_data *d);

/* Why the last -EPROTO, -ECONNREFUSED or -EPIPE happened, or "". */
const char *rdo_data_error(const struct rdo_data *d);

/* "live" or "lossless". */
const char *rdo_data_mode_name(enum rdo_data_mode m);

/* A byte count (or rate) for people, in powers of 1000: "2.34 GB". Returns `buf`. */
const char *rdo_data_format_bytes(char *buf, size_t len, double bytes);

#endif
