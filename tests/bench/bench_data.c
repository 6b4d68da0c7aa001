/*
 * The data path of readoutd on the emulated card, next to baselines measured
 * in the same run: how fast superpages go around the pool, and how fast the
 * live and lossless streams carry them over tcp loopback.
 *
 * 1. Drain: no sinks, the card as fast as the host takes superpages
 *    (card.sim.rate 0) and writing only one page header per superpage
 *    (header_only), so what is left is the DMA channel's own loop: post free
 *    superpages, learn filled ones, return them to the pool. Superpages per
 *    second come from the server's own counters (readoutctl status --json,
 *    over the server's clock); CPU per GB from /proc of the server's threads.
 * 2. Live stream: one to four raw SUB sockets receive and discard, counting
 *    payload bytes, while the card runs at 12 GB/s; the baseline is a plain
 *    libzmq XPUB in this process that sends the same frames (topic and
 *    SuperpageHeader copied from readoutd's own, the payload zero-copy from
 *    as much memory as the pool) to SUB sockets drained by the same threads.
 * 3. Lossless stream: readout-sub --lossless --check, which verifies every
 *    byte, against a plain PUSH/PULL pair of the same message size.
 *
 * A shared 2-core machine is noisy, so each figure alternates short blocks
 * of readoutd and of its baseline and pools each side over its blocks; the
 * acquisition is stopped during the baseline blocks, so that the emulator
 * does not compete with the baseline for the cores.
 *
 * Prints, per figure: "bench <name> <value> <unit> baseline <value> ratio <value>".
 * Exits 1 when a daemon fails or the lossless stream loses anything.
 * RDO_BENCH_ONLY=drain, live or lossless runs one part.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bench/benchlib.h"
#include "common/util.h"

#define KIB 1024u
#define MIB (1024u * 1024u)

#define DRAIN_TARGET  500000.0 /* superpages/s: the target of the issue, not a measurement */
#define DRAIN_WARM_MS 500
#define DRAIN_MS      3000

#define LIVE_HWM 32 /* readoutd's live.hwm default, used on both sides */
/* The card's rate for the live stream: 12 GB/s, the line rate of IPE's gen3 x16 card. */
#define LIVE_CARD_RATE 12000000000ull
#define LIVE_ROUNDS    5
#define LIVE_WARM_MS   300
#define LIVE_MS	       1000
#define MAX_SUBS       4

#define LL_ROUNDS     3
#define LL_SECONDS    "2.5"
#define LL_MS	      2500
#define LL_WARM_MS    300
#define LL_HWM	      4	 /* a side: with both, about readout-sub's 8 credits in flight */
#define LL_HEADER_LEN 48 /* about a packed SuperpageHeader */

#define FRAME_MAX 256 /* topic and header frames */

/* The server's counters and its threads' CPU at one moment. */
struct drain_sample {
	double superpages, bytes, time_ns;
	struct bench_cpu cpu;
};

static int drain_sample(struct rdo_daemon *d, struct drain_sample *s)
{
	const char *st = bench_daemon_status(d);
	if (!st)
		return -1;
	if (bench_json_number(st, "superpages", &s->superpages) ||
	    bench_json_number(st, "bytes", &s->bytes) ||
	    bench_json_number(st, "time_ns", &s->time_ns) || bench_thread_cpu(d->pid, &s->cpu)) {
		fprintf(stderr, "bench_data: unexpected status: %s\n", st);
		return -1;
	}
	return 0;
}

/*
 * Superpages a second through the pool with no sinks, and the CPU the
 * server spends per GB of it. There is no honest plain-C baseline for the
 * CPU: a loop popping and pushing indices through server/core/ring.h costs tens
 * of nanoseconds and says nothing about the register protocol the DMA thread
 * runs per superpage. So the baseline is the same figure with the emulator
 * thread included, and the ratio is the server's share of the CPU the
 * whole process spends (lower is better); the emulator's own cost is that of
 * a card we do not ship.
 */
static int bench_drain(size_t sp_size, unsigned nlinks)
{
	struct bench_daemon_cfg c = {
	    .superpage_size = sp_size,
	    .superpages = 256,
	    .links = nlinks == 1 ? "[0]" : "all",
	    .header_only = true,
	    .autostart = true,
	};
	struct rdo_daemon d;
	if (bench_daemon_start(&d, &c))
		return -1;
	struct drain_sample s0, s1;
	bench_sleep_ms(DRAIN_WARM_MS);
	int rc = drain_sample(&d, &s0);
	if (rc == 0) {
		bench_sleep_ms(DRAIN_MS);
		rc = drain_sample(&d, &s1);
	}
	if (bench_daemon_stop(&d) || rc)
		return -1;

	double sps = (s1.superpages - s0.superpages) * 1e9 / (s1.time_ns - s0.time_ns);
	double gb = (s1.bytes - s0.bytes) / 1e9;
	double server = s1.cpu.server_s - s0.cpu.server_s;
	double all = server + s1.cpu.sim_s - s0.cpu.sim_s;
	if (gb <= 0 || all <= 0) {
		fprintf(stderr, "bench_data: drain: no superpages went through the pool\n");
		return -1;
	}
	char sz[32], name[128];
	bench_size_name(sz, sizeof(sz), sp_size);
	snprintf(name, sizeof(name), "drain_%s_%ulink_superpages_per_s", sz, nlinks);
	bench_print_figure(name, sps, "sp/s", DRAIN_TARGET, 0);
	snprintf(name, sizeof(name), "drain_%s_%ulink_server_cpu_s_per_GB", sz, nlinks);
	bench_print_figure(name, server / gb, "s/GB", all / gb, 6);
	return 0;
}

enum side { RDO, BASE };

/*
 * A sender of the baseline, in its own thread: while `go` is set, sends the
 * small frames copied and then `payload` zero-copy, again and again, never
 * dropping (it waits while a receiver is at its high-water mark).
 */
struct sender {
	void *ctx;  /* its own, with its own I/O thread, as readoutd has */
	void *sock; /* the thread's, once started */
	int type;   /* ZMQ_XPUB or ZMQ_PUSH */
	pthread_t thread;
	const char *payload; /* `count` buffers of `size`, sent in turn */
	size_t size;
	unsigned count, next;
	char frame[2][FRAME_MAX];
	size_t frame_len[2];
	unsigned nframes;
	_Atomic bool go, quit;
};

/*
 * The baseline's payloads: as many buffers as readoutd's pool has
 * superpages, so that both sides send from the same amount of memory (one
 * buffer sent again and again would stay in the cache, which superpages
 * arriving by DMA across the whole pool do not). Touched, as the pool is.
 */
static char *baseline_buffers(size_t size, unsigned count)
{
	char *p = malloc(size * count);
	if (!p) {
		fprintf(stderr, "bench_data: out of memory for %u baseline buffers of %zu bytes\n",
			count, size);
		return NULL;
	}
	memset(p, 0xa5, size * count);
	return p;
}

/* The payload is the sender's, for the whole run: nothing to free. */
static void no_free(void *data, void *hint)
{
	(void)data;
	(void)hint;
}

/*
 * Send frame 0, waiting in libzmq (ZMQ_SNDTIMEO) while a receiver is at its
 * high-water mark; false when told to pause or quit.
 */
static bool send_first(struct sender *s)
{
	for (;;) {
		if (zmq_send(s->sock, s->frame[0], s->frame_len[0], ZMQ_SNDMORE) >= 0)
			return true;
		/* relaxed: flags */
		if ((errno != EAGAIN && errno != EINTR) ||
		    !atomic_load_explicit(&s->go, memory_order_relaxed) ||
		    atomic_load_explicit(&s->quit, memory_order_relaxed))
			return false;
	}
}

static void *sender_thread(void *arg)
{
	struct sender *s = arg;
	char subs[FRAME_MAX];
	/* relaxed: a flag */
	while (!atomic_load_explicit(&s->quit, memory_order_relaxed)) {
		while (s->type == ZMQ_XPUB &&
		       zmq_recv(s->sock, subs, sizeof(subs), ZMQ_DONTWAIT) >= 0)
			; /* subscriptions, read as readoutd reads them */
		/* acquire: the frames, set before the first go */
		if (!atomic_load_explicit(&s->go, memory_order_acquire)) {
			bench_sleep_ms(1);
			continue;
		}
		if (!send_first(s))
			continue;
		if (s->nframes > 1)
			zmq_send(s->sock, s->frame[1], s->frame_len[1], ZMQ_SNDMORE);
		zmq_msg_t m;
		zmq_msg_init_data(&m, (void *)(s->payload + (size_t)s->next * s->size), s->size,
				  no_free, NULL);
		s->next = (s->next + 1) % s->count;
		if (zmq_msg_send(&m, s->sock, 0) < 0)
			zmq_msg_close(&m);
	}
	return NULL;
}

/*
 * Bind a socket of `type` on a free loopback port and start the sender on
 * it, paused. Frames are set by the caller before sender_go.
 */
static int sender_start(struct sender *s, int type, int hwm, char *ep, size_t eplen)
{
	s->type = type;
	s->ctx = zmq_ctx_new();
	s->sock = s->ctx ? zmq_socket(s->ctx, type) : NULL;
	int one = 1, zero = 0, timeout = 100;
	if (!s->sock ||
	    (type == ZMQ_XPUB && zmq_setsockopt(s->sock, ZMQ_XPUB_NODROP, &one, sizeof(one))) ||
	    zmq_setsockopt(s->sock, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s->sock, ZMQ_SNDTIMEO, &timeout, sizeof(timeout)) ||
	    zmq_setsockopt(s->sock, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_bind(s->sock, "tcp://127.0.0.1:*") != 0) {
		fprintf(stderr, "bench_data: baseline sender: %s\n", zmq_strerror(errno));
		goto fail;
	}
	zmq_getsockopt(s->sock, ZMQ_LAST_ENDPOINT, ep, &eplen);
	if (pthread_create(&s->thread, NULL, sender_thread, s) != 0) {
		fprintf(stderr, "bench_data: cannot start the baseline sender\n");
		goto fail;
	}
	return 0;
fail:
	if (s->sock)
		zmq_close(s->sock);
	if (s->ctx)
		zmq_ctx_term(s->ctx);
	s->sock = s->ctx = NULL;
	return -1;
}

static void sender_stop(struct sender *s)
{
	if (!s->sock)
		return;
	atomic_store_explicit(&s->quit, true, memory_order_relaxed); /* a flag */
	pthread_join(s->thread, NULL);
	zmq_close(s->sock);
	zmq_ctx_term(s->ctx);
	s->sock = s->ctx = NULL;
}

static void sender_go(struct sender *s, bool go)
{
	atomic_store_explicit(&s->go, go, memory_order_release); /* the frames before go */
}

/*
 * A receiver in its own thread: drains a socket of each side, counting the
 * bytes of every message's last frame (the payload). The first readoutd
 * message's other frames are kept, for the baseline to send the same.
 */
struct receiver {
	void *sock[2]; /* [RDO], [BASE]; either may be NULL */
	pthread_t thread;
	_Atomic uint64_t bytes[2];
	_Atomic bool quit;
	bool keep_frames;
	char frame[2][FRAME_MAX];
	size_t frame_len[2];
	unsigned nframes;
	_Atomic bool have_frames;
};

/* Receive what is waiting on side `sd`; -1 on a socket error. */
static int drain_side(struct receiver *r, enum side sd)
{
	for (;;) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, r->sock[sd], ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return errno == EAGAIN || errno == EINTR ? 0 : -1;
		}
		unsigned frames = 0;
		char frame[2][FRAME_MAX];
		size_t len[2] = {0, 0};
		while (zmq_msg_more(&m)) {
			if (frames < 2 && zmq_msg_size(&m) <= FRAME_MAX) {
				len[frames] = zmq_msg_size(&m);
				memcpy(frame[frames], zmq_msg_data(&m), len[frames]);
			}
			frames++;
			zmq_msg_close(&m);
			zmq_msg_init(&m);
			zmq_msg_recv(&m, r->sock[sd], 0);
		}
		/* relaxed: a counter */
		atomic_fetch_add_explicit(&r->bytes[sd], zmq_msg_size(&m), memory_order_relaxed);
		zmq_msg_close(&m);
		if (sd == RDO && r->keep_frames && frames <= 2 &&
		    !atomic_load_explicit(&r->have_frames, memory_order_relaxed)) { /* ours */
			for (unsigned i = 0; i < frames; i++) {
				memcpy(r->frame[i], frame[i], len[i]);
				r->frame_len[i] = len[i];
			}
			r->nframes = frames;
			/* release: the frames before the flag */
			atomic_store_explicit(&r->have_frames, true, memory_order_release);
		}
	}
}

static void *receiver_thread(void *arg)
{
	struct receiver *r = arg;
	zmq_pollitem_t items[2];
	int n = 0;
	enum side sides[2];
	for (int sd = RDO; sd <= BASE; sd++)
		if (r->sock[sd]) {
			items[n] = (zmq_pollitem_t){r->sock[sd], 0, ZMQ_POLLIN, 0};
			sides[n++] = (enum side)sd;
		}
	/* relaxed: a flag */
	while (!atomic_load_explicit(&r->quit, memory_order_relaxed)) {
		if (zmq_poll(items, n, 100) < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++)
			if (items[i].revents & ZMQ_POLLIN)
				drain_side(r, sides[i]);
	}
	return NULL;
}

/* Connect a socket of `type` for side `sd` to `ep` (NULL: none). */
static int receiver_connect(struct receiver *r, void *ctx, enum side sd, int type, int hwm,
			    const char *ep)
{
	if (!ep)
		return 0;
	void *s = zmq_socket(ctx, type);
	int zero = 0;
	if (!s || zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    (type == ZMQ_SUB && zmq_setsockopt(s, ZMQ_SUBSCRIBE, "", 0)) ||
	    zmq_connect(s, ep) != 0) {
		fprintf(stderr, "bench_data: cannot connect to %s: %s\n", ep, zmq_strerror(errno));
		if (s)
			zmq_close(s);
		return -1;
	}
	r->sock[sd] = s;
	return 0;
}

static int receiver_start(struct receiver *r)
{
	if (pthread_create(&r->thread, NULL, receiver_thread, r) != 0) {
		fprintf(stderr, "bench_data: cannot start a receiver thread\n");
		return -1;
	}
	return 0;
}

/* Stop the thread, if started, and close the sockets. */
static void receiver_stop(struct receiver *r, bool started)
{
	if (started) {
		atomic_store_explicit(&r->quit, true, memory_order_relaxed); /* a flag */
		pthread_join(r->thread, NULL);
	}
	for (int sd = RDO; sd <= BASE; sd++)
		if (r->sock[sd])
			zmq_close(r->sock[sd]);
}

static uint64_t received(struct receiver *r, unsigned n, enum side sd)
{
	uint64_t sum = 0;
	for (unsigned i = 0; i < n; i++)
		sum += atomic_load_explicit(&r[i].bytes[sd], memory_order_relaxed); /* counters */
	return sum;
}

/* Bytes the receivers count over a timed block, after a warm-up. */
struct tally {
	double bytes, seconds;
};

static void timed_block(struct tally *t, struct receiver *r, unsigned n, enum side sd, long warm_ms,
			long ms)
{
	bench_sleep_ms(warm_ms);
	uint64_t b0 = received(r, n, sd), t0 = rdo_now_ns();
	bench_sleep_ms(ms);
	t->bytes += (double)(received(r, n, sd) - b0);
	t->seconds += bench_seconds_since(t0);
}

/*
 * The live stream to `nsubs` subscribers in GB/s (payload bytes received,
 * summed over the subscribers), next to the baseline XPUB. The card writes
 * headers only (header_only): writing every payload byte would take a core
 * of the two from the stream being measured, and the stream's cost does not
 * depend on the bytes' values. It runs at a real card's line rate
 * (LIVE_CARD_RATE), above what loopback carries, so the live sink drops the
 * rest as it would on hardware; the DMA thread's work for those superpages
 * stays in. Unbounded (rate 0), the emulator would spin a whole core of the
 * two turning dropped superpages around, a cost no card puts on the host.
 *
 * The baseline sends from as much memory as readoutd's pool holds
 * (baseline_buffers).
 */
static int bench_live(struct rdo_daemon *d, void *ctx, size_t sp_size, unsigned nsubs,
		      const char *payload, unsigned count)
{
	struct receiver r[MAX_SUBS] = {0};
	struct sender s = {.payload = payload, .size = sp_size, .count = count};
	struct tally t[2] = {0};
	unsigned started = 0;
	int rc = -1;
	char ep[256];
	if (sender_start(&s, ZMQ_XPUB, LIVE_HWM, ep, sizeof(ep)))
		return -1;
	for (unsigned i = 0; i < nsubs; i++) {
		r[i].keep_frames = i == 0;
		if (receiver_connect(&r[i], ctx, RDO, ZMQ_SUB, LIVE_HWM, d->live_tcp) ||
		    receiver_connect(&r[i], ctx, BASE, ZMQ_SUB, LIVE_HWM, ep) ||
		    receiver_start(&r[i]))
			goto out;
		started++;
	}
	bench_sleep_ms(200); /* the subscriptions reach both publishers */

	for (int round = 0; round < LIVE_ROUNDS; round++) {
		/* readoutd goes first in the first round: the baseline sends its frames. */
		for (int k = 0; k < 2; k++) {
			enum side sd = (round + k) % 2 ? BASE : RDO;
			if (sd == RDO) {
				if (bench_daemon_ctl(d, "start"))
					goto out;
				timed_block(&t[RDO], r, nsubs, RDO, LIVE_WARM_MS, LIVE_MS);
				if (bench_daemon_ctl(d, "stop"))
					goto out;
				continue;
			}
			/* acquire: the frames the receiver kept before the flag */
			if (!atomic_load_explicit(&r[0].have_frames, memory_order_acquire)) {
				fprintf(stderr,
					"bench_data: live: no superpage came from readoutd\n");
				goto out;
			}
			if (s.nframes == 0) {
				memcpy(s.frame, r[0].frame, sizeof(s.frame));
				memcpy(s.frame_len, r[0].frame_len, sizeof(s.frame_len));
				s.nframes = r[0].nframes;
			}
			sender_go(&s, true);
			timed_block(&t[BASE], r, nsubs, BASE, LIVE_WARM_MS, LIVE_MS);
			sender_go(&s, false);
		}
	}
	if (t[RDO].bytes == 0 || t[BASE].bytes == 0) {
		fprintf(stderr, "bench_data: live: nothing received from %s\n",
			t[RDO].bytes == 0 ? "readoutd" : "the baseline");
		goto out;
	}
	char sz[32], name[128];
	snprintf(name, sizeof(name), "live_%s_%usub_GBps", bench_size_name(sz, sizeof(sz), sp_size),
		 nsubs);
	bench_print_figure(name, t[RDO].bytes / t[RDO].seconds / 1e9, "GB/s",
			   t[BASE].bytes / t[BASE].seconds / 1e9, 3);
	rc = 0;
out:
	sender_stop(&s);
	for (unsigned i = 0; i < nsubs; i++)
		receiver_stop(&r[i], i < started);
	return rc;
}

/* One readoutd with its live stream, and the subscriber counts to run on it. */
static int bench_live_size(void *ctx, size_t sp_size, unsigned superpages, const unsigned *subs,
			   unsigned nsubs_cases)
{
	struct bench_daemon_cfg c = {
	    .superpage_size = sp_size,
	    .superpages = superpages,
	    .links = "all",
	    .rate = LIVE_CARD_RATE,
	    .header_only = true,
	    .live = true,
	    .live_hwm = LIVE_HWM,
	};
	char *payload = baseline_buffers(sp_size, superpages);
	if (!payload)
		return -1;
	struct rdo_daemon d;
	int rc = bench_daemon_start(&d, &c);
	bool started = rc == 0;
	for (unsigned i = 0; rc == 0 && i < nsubs_cases; i++)
		rc = bench_live(&d, ctx, sp_size, subs[i], payload, superpages);
	if (started && bench_daemon_stop(&d))
		rc = -1;
	free(payload);
	return rc;
}

/* What the lossless runs of readout-sub add up to. */
struct ll_totals {
	double bytes, seconds, superpages;
	double lost; /* sequence gaps, missing pages, card drops */
	double bad;  /* corrupt pages, out-of-order or malformed messages */
};

/* One readout-sub --lossless --check run on a running acquisition. */
static int ll_run(struct rdo_daemon *d, struct ll_totals *tot)
{
	static struct rdo_output o;
	int st =
	    rdo_run(&o, "readout-sub -e %s --lossless --check --json --quiet --seconds " LL_SECONDS,
		    d->lossless_tcp);
	static const char *const lost_keys[] = {"sequence_gaps", "pages_missing",
						"card_pages_dropped"};
	static const char *const bad_keys[] = {"corrupt_pages", "out_of_order", "malformed"};
	double v, bytes, seconds, superpages;
	if (bench_json_number(o.out, "bytes", &bytes) ||
	    bench_json_number(o.out, "seconds", &seconds) ||
	    bench_json_number(o.out, "superpages", &superpages)) {
		fprintf(stderr, "bench_data: readout-sub failed (%d): %s%s", st, o.out, o.err);
		return -1;
	}
	tot->bytes += bytes;
	tot->seconds += seconds;
	tot->superpages += superpages;
	for (size_t i = 0; i < sizeof(lost_keys) / sizeof(lost_keys[0]); i++)
		if (bench_json_number(o.out, lost_keys[i], &v) == 0)
			tot->lost += v;
	for (size_t i = 0; i < sizeof(bad_keys) / sizeof(bad_keys[0]); i++)
		if (bench_json_number(o.out, bad_keys[i], &v) == 0)
			tot->bad += v;
	if (st != 0) {
		fprintf(stderr, "bench_data: readout-sub --lossless --check exited %d: %s%s", st,
			o.out, o.err);
		return -1;
	}
	return 0;
}

/*
 * The lossless stream in GB/s, as a consumer that must see everything gets
 * it: the card writes every payload byte (header_only false, rate 0) and
 * readout-sub checks every byte, with its 8 credits. The baseline is a plain
 * PUSH/PULL pair in this process moving messages of the same size (a
 * header frame and the payload zero-copy) and only counting them: it writes
 * and checks nothing and needs no credits, so the ratio holds the emulator's
 * writes and readout-sub's check as well as the stream itself.
 */
static int bench_lossless(void *ctx, size_t sp_size)
{
	struct bench_daemon_cfg c = {
	    .superpage_size = sp_size,
	    .superpages = 256,
	    .links = "all",
	    .lossless = true,
	};
	/* A header frame of zeros, about as long as readoutd's, then the payload. */
	struct sender s = {
	    .size = sp_size, .count = c.superpages, .nframes = 1, .frame_len = {LL_HEADER_LEN}};
	struct receiver r = {0};
	struct ll_totals tot = {0};
	struct tally base = {0};
	struct rdo_daemon d;
	bool daemon = false, started = false;
	int rc = -1;
	char ep[256];
	char *payload = baseline_buffers(sp_size, c.superpages);
	if (!payload)
		return -1;
	s.payload = payload;
	if (bench_daemon_start(&d, &c))
		goto out;
	daemon = true;
	if (sender_start(&s, ZMQ_PUSH, LL_HWM, ep, sizeof(ep)) ||
	    receiver_connect(&r, ctx, BASE, ZMQ_PULL, LL_HWM, ep) || receiver_start(&r))
		goto out;
	started = true;

	for (int round = 0; round < LL_ROUNDS; round++) {
		for (int k = 0; k < 2; k++) {
			if ((round + k) % 2) {
				sender_go(&s, true);
				timed_block(&base, &r, 1, BASE, LL_WARM_MS, LL_MS);
				sender_go(&s, false);
				continue;
			}
			if (bench_daemon_ctl(&d, "start"))
				goto out;
			int run = ll_run(&d, &tot);
			if (bench_daemon_ctl(&d, "stop") || run)
				goto out;
		}
	}
	fprintf(stderr,
		"bench_data: lossless: %.0f superpages (%.2f GB) checked in %d runs: %.0f lost, "
		"%.0f corrupt or out of order\n",
		tot.superpages, tot.bytes / 1e9, LL_ROUNDS, tot.lost, tot.bad);
	if (tot.lost || tot.bad || tot.superpages == 0 || base.bytes == 0) {
		fprintf(stderr, "bench_data: lossless: %s\n",
			tot.lost || tot.bad ? "the stream lost or corrupted data" : "no data");
		goto out;
	}
	char sz[32], name[128];
	snprintf(name, sizeof(name), "lossless_%s_GBps", bench_size_name(sz, sizeof(sz), sp_size));
	bench_print_figure(name, tot.bytes / tot.seconds / 1e9, "GB/s",
			   base.bytes / base.seconds / 1e9, 3);
	rc = 0;
out:
	sender_stop(&s);
	receiver_stop(&r, started);
	if (daemon && bench_daemon_stop(&d))
		rc = -1;
	free(payload);
	return rc;
}

/* Is `part` (drain, live, lossless) to run? $RDO_BENCH_ONLY names one; unset: all. */
static bool runs(const char *part)
{
	const char *only = getenv("RDO_BENCH_ONLY");
	return !only || !only[0] || strcmp(only, part) == 0;
}

int main(void)
{
	int rc = 0;
	static const size_t drain_sizes[] = {64 * KIB, MIB};
	for (size_t i = 0; rc == 0 && runs("drain") && i < 2; i++) {
		rc = bench_drain(drain_sizes[i], 1);
		if (rc == 0)
			rc = bench_drain(drain_sizes[i], 12);
	}

	void *ctx = zmq_ctx_new();
	if (!ctx) {
		fprintf(stderr, "bench_data: no zmq context: %s\n", zmq_strerror(errno));
		return 1;
	}
	static const unsigned one_sub[] = {1}, subs[] = {1, 2, 4};
	if (rc == 0 && runs("live"))
		rc = bench_live_size(ctx, 64 * KIB, 256, one_sub, 1);
	if (rc == 0 && runs("live"))
		rc = bench_live_size(ctx, MIB, 256, subs, 3);
	if (rc == 0 && runs("live"))
		rc = bench_live_size(ctx, 8 * MIB, 64, one_sub, 1);
	if (rc == 0 && runs("lossless"))
		rc = bench_lossless(ctx, MIB);
	zmq_ctx_term(ctx);
	return rc == 0 ? 0 : 1;
}
