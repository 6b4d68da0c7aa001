/*
 * Integration: the data path of a real readoutd on the emulated card. Each
 * test starts its own daemon with a small config (few links, a set rate,
 * small pools), consumes its streams with readout-sub and the rdodata library,
 * drives it with readoutctl and the card's fault-injection registers, and
 * checks exact counters rather than speeds, so that it also passes against
 * the ThreadSanitizer daemon (make tsan), which is 5-10x slower.
 *
 * Every daemon must exit 0 on SIGTERM at the end: that is where ASan and
 * TSan reports inside it surface.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/rdofile.h"
#include "common/util.h"
#include "harness.h"
#include "lib/rdodata.h"
#include "proto/readout.pb-c.h"

#define PAGE 8192u /* the default DMA page slot: every page is full size */

/* The emulated card: `links` links generating `rate` (bytes per second, all links; 0: flat out). */
#define CARD(links, rate)                                                                          \
	"card:\n  name: sim0\n  regmap: @MAP@/rdo-sim.yaml\n  sim: { links: " #links               \
	", rate: " rate " }\n"

/* Most tests' daemon: 2 links at 4 MB/s each, a pool of 16 superpages of 32 pages. */
#define SMALL_CONFIG CARD(2, "8MB/s") "dma: { superpage_size: 256KiB, superpages: 16 }\n"

static struct rdo_output o;
static char st[65536]; /* the last status, as readoutctl --json prints it */

/* make tsan runs these tests with TSAN_OPTIONS set, against the TSan daemon and clients. */
static bool under_tsan(void)
{
	return getenv("TSAN_OPTIONS") != NULL;
}

/*
 * Start a daemon with `config` and the settings `set` (NULL-terminated, may
 * be NULL) over it, with a status line in its log every second for the
 * post-mortem of a failure.
 */
static void start(struct rdo_daemon *d, const char *config, const char *const *set)
{
	const char *all[16] = {"status.log_interval_s=1"};
	for (size_t i = 0; set && set[i] && i < 14; i++)
		all[i + 1] = set[i];
	struct rdo_daemon_opts opts = {.config = config, .set = all};
	cr_assert_eq(rdo_daemon_start_opts(d, &opts), 0, "readoutd did not start:\n%s",
		     rdo_daemon_log(d));
	cr_assert(d->tcp[0] && d->live_tcp[0] && d->lossless_ipc[0] && d->status_tcp[0],
		  "ready line lacks endpoints");
}

/* SIGTERM: a clean exit, without sanitizer reports. */
static void stop(struct rdo_daemon *d)
{
	int status = rdo_daemon_stop(d);
	cr_assert_eq(status, 0, "readoutd exited with %d; log:\n%s", status, rdo_daemon_log(d));
}

/* readoutctl against the daemon's tcp control endpoint; its exit status, output in `o`. */
static int ctl(const struct rdo_daemon *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int ctl(const struct rdo_daemon *d, const char *fmt, ...)
{
	char args[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	return rdo_run(&o, "readoutctl -t 10 -e %s %s", d->tcp, args);
}

/* The text right after "key": in `json`, past the first `scope` if given. */
static const char *jfind(const char *json, const char *scope, const char *key)
{
	const char *p = json;
	if (scope) {
		p = strstr(json, scope);
		cr_assert_not_null(p, "no %s in %s", scope, json);
	}
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *v = strstr(p, k);
	cr_assert_not_null(v, "no \"%s\" after %s in %s", key, scope ? scope : "the start", json);
	return v + strlen(k);
}

static uint64_t jnum(const char *json, const char *scope, const char *key)
{
	return strtoull(jfind(json, scope, key), NULL, 10);
}

static bool jtrue(const char *json, const char *scope, const char *key)
{
	return strncmp(jfind(json, scope, key), "true", 4) == 0;
}

/* Is the string "key" equal to `value`? */
static bool jstr_is(const char *json, const char *scope, const char *key, const char *value)
{
	const char *v = jfind(json, scope, key);
	size_t n = strlen(value);
	return v[0] == '"' && strncmp(v + 1, value, n) == 0 && v[n + 1] == '"';
}

/* Scopes of the status JSON and of readout-sub's: a link, a sink. */
static const char *link_scope(unsigned link)
{
	static char s[8][32];
	static unsigned next;
	char *p = s[next++ % 8];
	snprintf(p, sizeof(s[0]), "\"link\":%u,", link);
	return p;
}

#define LIVE	 "\"name\":\"live\""
#define LOSSLESS "\"name\":\"lossless\""

/* The daemon's status, into `st`. */
static const char *status(const struct rdo_daemon *d)
{
	cr_assert_eq(ctl(d, "--json status"), 0, "status: %s", o.err);
	snprintf(st, sizeof(st), "%s", o.out);
	return st;
}

/* Poll the status until `key` (after `scope`) is at least `min`; its last value. */
static uint64_t wait_num(const struct rdo_daemon *d, const char *scope, const char *key,
			 uint64_t min, int timeout_ms)
{
	uint64_t deadline = rdo_now_ms() + (uint64_t)timeout_ms, v;
	while ((v = jnum(status(d), scope, key)) < min && rdo_now_ms() < deadline)
		rdo_sleep_ms(50);
	return v;
}

/* Poll the status until the boolean `key` (after `scope`) is `want`; whether it got there. */
static bool wait_flag(const struct rdo_daemon *d, const char *scope, const char *key, bool want,
		      int timeout_ms)
{
	uint64_t deadline = rdo_now_ms() + (uint64_t)timeout_ms;
	bool v;
	while ((v = jtrue(status(d), scope, key)) != want && rdo_now_ms() < deadline)
		rdo_sleep_ms(50);
	return v == want;
}

/* readout-sub on the lossless stream in the background, checking every payload byte. */
static void spawn_sub(struct rdo_proc *p, const char *endpoint, const char *args)
{
	cr_assert_eq(
	    rdo_spawn(p, "exec readout-sub -e %s --lossless --check --json -q %s", endpoint, args),
	    0);
}

/* Wait for readout-sub; its summary JSON in `o.out`. */
static int wait_sub(struct rdo_proc *p, int timeout_ms)
{
	int status = rdo_proc_wait(p, &o, timeout_ms);
	cr_assert_neq(status, -1, "readout-sub did not finish in time: %s", o.err);
	cr_assert(strstr(o.out, "\"result\""), "no summary (exit %d): %s", status, o.err);
	return status;
}

/* A consumer of a data stream through the library. */
static struct rdo_data *consumer(enum rdo_data_mode mode, const char *endpoint, unsigned credits)
{
	struct rdo_data_opts opts;
	rdo_data_opts_init(&opts);
	opts.mode = mode;
	opts.endpoint = endpoint;
	opts.credits = credits;
	opts.name = "test_datapath";
	char err[512];
	struct rdo_data *c = rdo_data_open(&opts, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	return c;
}

/* The next superpage within `timeout_ms`; asserts one came. */
static void next_superpage(struct rdo_data *c, struct rdo_data_view *v, int timeout_ms)
{
	int rc = rdo_data_wait(c, v, timeout_ms);
	cr_assert_eq(rc, 0, "no superpage within %d ms: %s (%s)", timeout_ms, strerror(-rc),
		     rdo_data_error(c));
}

/*
 * A SUB socket on the status stream, subscribed to status and events. The
 * context lives as long as the test's process: close the socket, nothing else.
 */
static void *status_socket(const char *endpoint)
{
	static void *ctx;
	if (!ctx)
		ctx = zmq_ctx_new();
	void *s = zmq_socket(ctx, ZMQ_SUB);
	int zero = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_SUBSCRIBE, "status", 6);
	zmq_setsockopt(s, ZMQ_SUBSCRIBE, "event", 5);
	cr_assert_eq(zmq_connect(s, endpoint), 0, "%s: %s", endpoint, zmq_strerror(errno));
	return s;
}

/*
 * The payload of the next message of `topic` within `timeout_ms` (others are
 * skipped), into `buf`: its length, or -1 when none came.
 */
static int next_message(void *s, const char *topic, uint8_t *buf, size_t cap, int timeout_ms)
{
	uint64_t deadline = rdo_now_ms() + (uint64_t)timeout_ms;
	for (uint64_t now; (now = rdo_now_ms()) < deadline;) {
		zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
		if (zmq_poll(&item, 1, (long)(deadline - now)) <= 0)
			continue;
		char t[32];
		int tn = zmq_recv(s, t, sizeof(t), 0);
		int more = 0;
		size_t ml = sizeof(more);
		zmq_getsockopt(s, ZMQ_RCVMORE, &more, &ml);
		cr_assert(tn > 0 && (size_t)tn <= sizeof(t) && more,
			  "a status stream message without topic and body");
		int n = zmq_recv(s, buf, cap, 0);
		cr_assert_geq(n, 0);
		cr_assert_leq((size_t)n, cap, "a %d-byte %.*s message", n, tn, t);
		if ((size_t)tn == strlen(topic) && memcmp(t, topic, (size_t)tn) == 0)
			return n;
	}
	return -1;
}

/* The next event whose message contains `text`, within `timeout_ms`; NULL if none. */
static Rdo__Event *wait_event(void *s, const char *text, int timeout_ms)
{
	uint64_t deadline = rdo_now_ms() + (uint64_t)timeout_ms, now;
	uint8_t buf[4096];
	int n;
	while ((now = rdo_now_ms()) < deadline &&
	       (n = next_message(s, "event/sim0", buf, sizeof(buf), (int)(deadline - now))) >= 0) {
		Rdo__Event *e = rdo__event__unpack(NULL, (size_t)n, buf);
		cr_assert_not_null(e, "an event that is not an Event protobuf");
		if (strstr(e->message, text))
			return e;
		rdo__event__free_unpacked(e, NULL);
	}
	return NULL;
}

TestSuite(datapath, .fini = rdo_harness_cleanup, .timeout = 240);

/*
 * Several GB through the lossless stream, the card as fast as the consumer
 * takes it: every superpage arrives, in sequence, every payload byte right.
 * RDO_TEST_LOSSLESS_GB overrides the amount (3 GB; 0.5 GB under TSan).
 */
Test(datapath, lossless_several_gb_zero_loss)
{
	enum { LINKS = 4, SUPERPAGE = 1 << 20 };
	const char *env = getenv("RDO_TEST_LOSSLESS_GB");
	double gb = env && atof(env) > 0 ? atof(env) : under_tsan() ? 0.5 : 3;
	uint64_t target = (uint64_t)(gb * 1e9);
	uint64_t count = (target + SUPERPAGE - 1) / SUPERPAGE;
	struct rdo_daemon d;
	start(&d, CARD(4, "0") "dma: { superpage_size: 1MiB, superpages: 64 }\n", NULL);

	struct rdo_proc sub;
	char args[64];
	snprintf(args, sizeof(args), "--count %" PRIu64 " --timeout 10", count);
	spawn_sub(&sub, d.lossless_ipc, args);
	int rc = wait_sub(&sub, 200000);
	cr_assert_eq(rc, 0, "readout-sub exit %d: %s\n%s", rc, o.err, o.out);
	const char *j = o.out;
	cr_assert(jstr_is(j, NULL, "result", "clean"), "%s", j);
	cr_assert(jstr_is(j, NULL, "ended_by", "count"), "%s", j);
	cr_assert_eq(jnum(j, NULL, "superpages"), count, "%s", j);
	cr_assert_geq(jnum(j, NULL, "bytes"), target, "%s", j);
	cr_assert_eq(jnum(j, NULL, "pages"), jnum(j, NULL, "bytes") / PAGE, "%s", j);
	cr_assert_eq(jnum(j, NULL, "sequence_gaps"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "unexplained_gaps"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "corrupt_pages"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "card_pages_dropped"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "pages_missing"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "out_of_order"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "malformed"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "links_seen"), LINKS, "%s", j);
	for (unsigned i = 0; i < LINKS; i++)
		cr_assert_geq(jnum(j, link_scope(i), "superpages"), count / (4 * LINKS),
			      "link %u starved: %s", i, j);
	status(&d);
	cr_assert_eq(jnum(st, NULL, "pages_dropped"), 0, "the card dropped: %s", st);
	cr_assert_eq(jnum(st, NULL, "errors"), 0, "%s", st);
	stop(&d);
}

/*
 * A live subscriber that stops reading costs the live stream only: the live
 * sink drops (and counts) for it, while a lossless consumer beside it gets
 * every superpage and the card never has to drop.
 */
Test(datapath, live_paused_subscriber_lossless_keeps_everything)
{
	enum { LINKS = 4 };
	struct rdo_daemon d;
	start(&d,
	      CARD(4, "40MB/s") "dma: { superpage_size: 256KiB, superpages: 128 }\n"
				"live: { hwm: 4 }\n",
	      NULL);
	struct rdo_data *live = consumer(RDO_DATA_LIVE, d.live_tcp, 2);
	struct rdo_data_view first;
	next_superpage(live, &first, 5000);
	/* From here on the subscriber holds its view and never reads again. */
	uint64_t dropped_before = jnum(status(&d), LIVE, "dropped");

	struct rdo_proc sub;
	spawn_sub(&sub, d.lossless_ipc, "--seconds 4 --timeout 10");
	uint64_t dropped = wait_num(&d, LIVE, "dropped", dropped_before + 1, 10000);
	cr_assert_gt(dropped, dropped_before, "no drop for the paused subscriber: %s", st);
	int rc = wait_sub(&sub, 60000);
	cr_assert_eq(rc, 0, "readout-sub exit %d: %s\n%s", rc, o.err, o.out);
	const char *j = o.out;
	cr_assert(jstr_is(j, NULL, "result", "clean"), "%s", j);
	cr_assert_gt(jnum(j, NULL, "superpages"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "links_seen"), LINKS, "%s", j);
	cr_assert_eq(jnum(j, NULL, "sequence_gaps"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "card_pages_dropped"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "pages_missing"), 0, "%s", j);

	status(&d);
	cr_assert_eq(jnum(st, NULL, "pages_dropped"), 0, "the live sink stalled the card: %s", st);
	for (unsigned i = 0; i < LINKS; i++)
		cr_assert_eq(jnum(st, link_scope(i), "pages_dropped"), 0, "%s", st);
	cr_assert_eq(jnum(st, LIVE, "consumers"), 1, "the paused subscriber is gone: %s", st);
	cr_assert_gt(jnum(st, LIVE, "dropped"), dropped_before, "%s", st);
	/* Only what was in flight when readout-sub left: its 8 credits. */
	cr_assert_leq(jnum(st, LOSSLESS, "dropped"), 8, "%s", st);
	rdo_data_close(&live);
	stop(&d);
}

/*
 * The card's accounting is exact: a lossless consumer takes a few superpages
 * and stops acknowledging, the pool fills up, the card drops at the source;
 * then per link, the pages the card generated are the pages the channel
 * delivered plus the pages the card dropped - while the card is paused, and
 * in the status after the acquisition is stopped.
 */
Test(datapath, card_drops_add_up_when_lossless_consumer_stops)
{
	enum { LINKS = 2, CREDITS = 4 };
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", "lossless.timeout_ms=60000", NULL};
	start(&d, CARD(2, "20MB/s") "dma: { superpage_size: 256KiB, superpages: 16 }\n", set);
	struct rdo_data *c = consumer(RDO_DATA_LOSSLESS, d.lossless_tcp, CREDITS);
	/* Attached before the start, so that it gets every superpage from the first. */
	struct rdo_data_view v[CREDITS];
	cr_assert_eq(rdo_data_wait(c, &v[0], 300), -ETIMEDOUT);
	cr_assert_eq(wait_num(&d, LOSSLESS, "consumers", 1, 5000), 1, "not attached: %s", st);
	cr_assert_eq(ctl(&d, "start"), 0, "%s", o.err);
	for (unsigned i = 0; i < CREDITS; i++) {
		next_superpage(c, &v[i], 5000);
		cr_assert_eq(v[i].run, 0);
		cr_assert_eq(v[i].card_pages_dropped, 0);
	}
	/* Never acknowledged: the pool fills up and the card drops on every link. */
	for (unsigned i = 0; i < LINKS; i++)
		cr_assert_gt(wait_num(&d, link_scope(i), "pages_dropped", 1000, 10000), 0,
			     "link %u does not drop: %s", i, st);

	/* Pause the card, behind the channel's back: it flushes and its counters stand still. */
	cr_assert_eq(ctl(&d, "reg write dma.control.enable 0"), 0, "%s", o.err);
	uint64_t deadline = rdo_now_ms() + 5000;
	while (ctl(&d, "--json reg read dma.status.running") == 0 &&
	       !strstr(o.out, "\"value\":0") && rdo_now_ms() < deadline)
		rdo_sleep_ms(20);
	cr_assert(strstr(o.out, "\"value\":0"), "the card does not stop: %s", o.out);
	rdo_sleep_ms(500); /* the channel collects what was flushed; the status reads the card */
	uint64_t pages[LINKS], dropped[LINKS], total_dropped = 0;
	status(&d);
	for (unsigned i = 0; i < LINKS; i++) {
		const char *l = link_scope(i);
		cr_assert_eq(ctl(&d, "--json reg read dma_link%u.pages dma_link%u.dropped", i, i),
			     0, "%s", o.err);
		char *dr = strstr(o.out, "dropped");
		cr_assert_not_null(dr, "%s", o.out);
		pages[i] = jnum(o.out, NULL, "value");
		dropped[i] = jnum(dr, NULL, "value");
		uint64_t delivered = jnum(st, l, "bytes") / PAGE;
		cr_assert_eq(jnum(st, l, "bytes") % PAGE, 0, "%s", st);
		cr_assert_gt(dropped[i], 0, "%s", o.out);
		cr_assert_eq(jnum(st, l, "pages"), pages[i], "status and card disagree: %s", st);
		cr_assert_eq(jnum(st, l, "pages_dropped"), dropped[i], "%s", st);
		cr_assert_eq(pages[i], delivered + dropped[i],
			     "link %u: the card generated %" PRIu64 " pages, the channel delivered "
			     "%" PRIu64 " and the card dropped %" PRIu64 ": %s",
			     i, pages[i], delivered, dropped[i], st);
		total_dropped += dropped[i];
	}
	cr_assert_eq(jnum(st, NULL, "pages_dropped"), total_dropped, "%s", st);
	cr_assert_eq(jnum(st, NULL, "bytes_dropped"), total_dropped * PAGE, "%s", st);

	/*
	 * Stopped, the run's counters must still add up in the status the
	 * operator reads, and not only for a moment: the stop resets the card's
	 * DMA, which zeroes its counters, and the channel reads them every 0.1 s.
	 */
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	rdo_sleep_ms(500);
	status(&d);
	cr_assert(jstr_is(st, NULL, "state", "idle"), "%s", st);
	for (unsigned i = 0; i < LINKS; i++) {
		const char *l = link_scope(i);
		uint64_t delivered = jnum(st, l, "bytes") / PAGE;
		cr_assert_eq(jnum(st, l, "pages"), delivered + jnum(st, l, "pages_dropped"),
			     "link %u after stop: %" PRIu64 " pages generated, %" PRIu64
			     " delivered, %" PRIu64
			     " dropped: stop forgot the run's card counters: %s",
			     i, jnum(st, l, "pages"), delivered, jnum(st, l, "pages_dropped"), st);
		cr_assert_eq(jnum(st, l, "pages_dropped"), dropped[i], "%s", st);
	}
	cr_assert_eq(jnum(st, NULL, "pages_dropped"), total_dropped, "%s", st);
	rdo_data_close(&c);
	stop(&d);
}

/*
 * The library's contract: a lossless consumer that calls wait (or ack) at
 * least once a second stays attached, also while it holds every credit.
 */
Test(datapath, lossless_consumer_holding_every_credit_stays_attached)
{
	enum { CREDITS = 2 };
	struct rdo_daemon d;
	const char *const set[] = {"lossless.timeout_ms=1000", NULL};
	start(&d, SMALL_CONFIG, set);
	struct rdo_data *c = consumer(RDO_DATA_LOSSLESS, d.lossless_ipc, CREDITS);
	struct rdo_data_view v[CREDITS], extra;
	for (unsigned i = 0; i < CREDITS; i++)
		next_superpage(c, &v[i], 5000);
	for (int i = 0; i < 10; i++) { /* 3 s: three times the server's timeout */
		cr_assert_eq(rdo_data_wait(c, &extra, 100), -ENOBUFS);
		rdo_sleep_ms(300);
	}
	status(&d);
	cr_assert_eq(jnum(st, LOSSLESS, "consumers"), 1,
		     "detached although it called wait every 0.3 s holding its %d credits: %s",
		     CREDITS, st);
	for (unsigned i = 0; i < CREDITS; i++)
		cr_assert_eq(rdo_data_ack(c, &v[i]), 0);
	next_superpage(c, &extra, 5000);
	rdo_data_ack(c, &extra);
	rdo_data_close(&c);
	stop(&d);
}

/* A fault test's daemon: 2 links at a modest rate... */
#define FAULT_CONFIG CARD(2, "16MB/s") "dma: { superpage_size: 256KiB, superpages: 32 }\n"

/* ...with readout-sub attached to its lossless stream. */
static void start_with_sub(struct rdo_daemon *d, const char *config, struct rdo_proc *sub)
{
	start(d, config, NULL);
	spawn_sub(sub, d->lossless_ipc, "--seconds 120 --timeout 10");
	cr_assert_eq(wait_num(d, LOSSLESS, "consumers", 1, 10000), 1, "readout-sub not attached");
	cr_assert_gt(wait_num(d, LOSSLESS, "superpages", 4, 10000), 3, "no data");
}

/* Let `n` more superpages reach readout-sub, then end it with SIGINT; its exit status. */
static int finish_sub(struct rdo_daemon *d, struct rdo_proc *sub, uint64_t n)
{
	uint64_t sent = jnum(status(d), LOSSLESS, "superpages");
	cr_assert_geq(wait_num(d, LOSSLESS, "superpages", sent + n, 20000), sent + n, "%s", st);
	rdo_proc_signal(sub, SIGINT);
	int rc = wait_sub(sub, 20000);
	cr_assert(jstr_is(o.out, NULL, "ended_by", "signal"), "%s", o.out);
	return rc;
}

/* fault.corrupt N: the next N pages carry a wrong payload byte; readout-sub --check finds each. */
Test(datapath, fault_corrupt_shows_in_readout_sub)
{
	struct rdo_daemon d;
	struct rdo_proc sub;
	start_with_sub(&d, FAULT_CONFIG, &sub);
	cr_assert_eq(ctl(&d, "reg write fault.corrupt 3"), 0, "%s", o.err);
	int rc = finish_sub(&d, &sub, 16);
	const char *j = o.out;
	cr_assert_eq(rc, 1, "readout-sub --check exit %d with corrupt pages: %s", rc, j);
	cr_assert(jstr_is(j, NULL, "result", "corrupt"), "%s", j);
	cr_assert_eq(jnum(j, NULL, "corrupt_pages"), 3, "%s", j);
	cr_assert_eq(jnum(j, NULL, "sequence_gaps"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "card_pages_dropped"), 0, "%s", j);
	cr_assert(strstr(o.err, "corrupt page"), "%s", o.err);
	/* Corruption is not loss: the card and the channel saw nothing wrong. */
	status(&d);
	cr_assert_eq(jnum(st, NULL, "pages_dropped"), 0, "%s", st);
	cr_assert_eq(jnum(st, NULL, "errors"), 0, "%s", st);
	stop(&d);
}

/*
 * fault.overflow N: every enabled link loses N pages at the source. The
 * status counts the overflow and the drops per link; readout-sub sees the
 * page counters jump and the headers' card drop counts rise, by exactly N.
 */
Test(datapath, fault_overflow_shows_in_status_and_readout_sub)
{
	enum { LINKS = 2, LOST = 5 };
	struct rdo_daemon d;
	struct rdo_proc sub;
	start_with_sub(&d, FAULT_CONFIG, &sub);
	cr_assert_eq(ctl(&d, "reg write fault.overflow %d", LOST), 0, "%s", o.err);
	cr_assert_eq(wait_num(&d, NULL, "pages_dropped", LINKS * LOST, 5000), LINKS * LOST, "%s",
		     st);
	cr_assert_eq(wait_num(&d, NULL, "fifo_overflows", 1, 5000), 1, "%s", st);
	cr_assert(jstr_is(st, NULL, "state", "running"), "%s", st);
	cr_assert_geq(jnum(st, NULL, "errors"), 1, "%s", st);
	cr_assert(strstr(jfind(st, NULL, "last_error"), "overflow"), "%s", st);
	for (unsigned i = 0; i < LINKS; i++) {
		cr_assert_eq(jnum(st, link_scope(i), "pages_dropped"), LOST, "%s", st);
		cr_assert_eq(jnum(st, link_scope(i), "bytes_dropped"), LOST * PAGE, "%s", st);
	}
	int rc = finish_sub(&d, &sub, 16);
	const char *j = o.out;
	cr_assert_eq(rc, 1, "readout-sub --check exit %d with card drops: %s", rc, j);
	cr_assert(jstr_is(j, NULL, "result", "loss"), "%s", j);
	cr_assert_eq(jnum(j, NULL, "card_pages_dropped"), LINKS * LOST, "%s", j);
	cr_assert_eq(jnum(j, NULL, "pages_missing"), LINKS * LOST, "%s", j);
	cr_assert_eq(jnum(j, NULL, "sequence_gaps"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "corrupt_pages"), 0, "%s", j);
	for (unsigned i = 0; i < LINKS; i++)
		cr_assert_eq(jnum(j, link_scope(i), "card_pages_dropped"), LOST, "%s", j);
	cr_assert(strstr(o.err, "dropped pages at the source"), "%s", o.err);
	stop(&d);
}

/*
 * fault.link_down: the link's superpage in progress comes flushed and
 * flagged, then the link generates nothing while the other goes on; the
 * status says it is down (and not stalled) and an event says so. Back up, it
 * goes on where it was. Superpages take 16 s to fill here: one is always in
 * progress, and only a flush completes it.
 */
Test(datapath, fault_link_down_shows_in_status_and_stream)
{
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d, CARD(2, "128KB/s") "dma: { superpage_size: 1MiB, superpages: 8 }\n", set);
	void *events = status_socket(d.status_tcp);
	struct rdo_data *c = consumer(RDO_DATA_LOSSLESS, d.lossless_ipc, 8);
	struct rdo_data_view v;
	cr_assert_eq(rdo_data_wait(c, &v, 300), -ETIMEDOUT);
	cr_assert_eq(wait_num(&d, LOSSLESS, "consumers", 1, 5000), 1, "not attached: %s", st);
	cr_assert_eq(ctl(&d, "start"), 0, "%s", o.err);
	cr_assert_geq(wait_num(&d, link_scope(0), "pages", 4, 5000), 4, "%s", st);

	cr_assert_eq(ctl(&d, "reg write fault.link_down 1"), 0, "%s", o.err);
	next_superpage(c, &v, 5000);
	cr_assert_eq(v.link, 0, "link %u came first", v.link);
	cr_assert_eq(v.sequence, 0);
	cr_assert_geq(v.size, 4 * PAGE);
	cr_assert_eq(v.flags, RDO_SP_LINK_DOWN | RDO_SP_PARTIAL, "flags 0x%x", v.flags);
	rdo_data_ack(c, &v);
	Rdo__Event *e = wait_event(events, "link 0 is down", 5000);
	cr_assert_not_null(e, "no event for the link going down");
	cr_assert_eq(e->severity, RDO__SEVERITY__SEV_WARNING);
	cr_assert_str_eq(e->kind, "fault");
	rdo__event__free_unpacked(e, NULL);
	cr_assert(wait_flag(&d, link_scope(0), "up", false, 2000), "%s", st);
	cr_assert(jtrue(st, link_scope(1), "up"), "%s", st);
	cr_assert(jstr_is(st, NULL, "state", "running"), "%s", st);
	cr_assert_eq(ctl(&d, "--json reg read ctrl.errors.link_down"), 0, "%s", o.err);
	cr_assert(strstr(o.out, "\"value\":1"), "%s", o.out);

	/* Longer than the 2 s that make a link that is up stalled. */
	uint64_t pages0 = jnum(status(&d), link_scope(0), "pages");
	uint64_t pages1 = jnum(st, link_scope(1), "pages");
	rdo_sleep_ms(2500);
	status(&d);
	cr_assert_eq(jnum(st, link_scope(0), "pages"), pages0, "link 0 generates while down: %s",
		     st);
	cr_assert_gt(jnum(st, link_scope(1), "pages"), pages1, "link 1 stopped too: %s", st);
	cr_assert(!jtrue(st, link_scope(0), "up"), "%s", st);
	cr_assert(!jtrue(st, link_scope(0), "stalled"), "a link that is down is not stalled: %s",
		  st);
	cr_assert_eq(rdo_data_wait(c, &v, 0), -ETIMEDOUT, "link %u delivered", v.link);

	cr_assert_eq(ctl(&d, "reg write fault.link_down 0"), 0, "%s", o.err);
	e = wait_event(events, "link 0 is up", 5000);
	cr_assert_not_null(e, "no event for the link coming back");
	rdo__event__free_unpacked(e, NULL);
	cr_assert(wait_flag(&d, link_scope(0), "up", true, 2000), "%s", st);
	cr_assert_gt(wait_num(&d, link_scope(0), "pages", pages0 + 2, 5000), pages0 + 1,
		     "link 0 does not come back: %s", st);
	/* The stop flushes both links: link 0 goes on at sequence 1. */
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	bool seen[2] = {false, false};
	for (int i = 0; i < 2; i++) {
		next_superpage(c, &v, 5000);
		cr_assert_lt(v.link, 2);
		cr_assert_not(seen[v.link], "link %u twice", v.link);
		seen[v.link] = true;
		cr_assert_eq(v.sequence, v.link ? 0 : 1, "link %u sequence %" PRIu64, v.link,
			     v.sequence);
		cr_assert_eq(v.flags, RDO_SP_PARTIAL, "link %u flags 0x%x", v.link, v.flags);
		rdo_data_ack(c, &v);
	}
	rdo_data_close(&c);
	zmq_close(events);
	stop(&d);
}

/*
 * fault.stall: the link is up but its source gives nothing; after 2 s the
 * status calls it stalled and an event says so, and readout-sub reports it
 * silent while the other link delivers. Released, it flows again.
 */
Test(datapath, fault_stall_shows_in_status_and_readout_sub)
{
	struct rdo_daemon d;
	struct rdo_proc sub;
	/* A pool the stalled link cannot swallow in a few seconds (see the starvation tests). */
	start_with_sub(&d, CARD(2, "4MB/s") "dma: { superpage_size: 256KiB, superpages: 64 }\n",
		       &sub);
	void *events = status_socket(d.status_tcp);
	rdo_sleep_ms(200); /* the subscription reaches the publisher */
	uint64_t t0 = rdo_now_ms();
	cr_assert_eq(ctl(&d, "reg write fault.stall 1"), 0, "%s", o.err);
	cr_assert(wait_flag(&d, link_scope(0), "stalled", true, 6000), "never stalled: %s", st);
	uint64_t took = rdo_now_ms() - t0;
	cr_assert_geq(took, 1500, "stalled after %" PRIu64 " ms, before 2 s without data", took);
	cr_assert(jtrue(st, link_scope(0), "up"), "%s", st);
	cr_assert(!jtrue(st, link_scope(1), "stalled"), "%s", st);
	Rdo__Event *e = wait_event(events, "link 0 stalled", 2000);
	cr_assert_not_null(e, "no event for the stall");
	cr_assert_eq(e->severity, RDO__SEVERITY__SEV_WARNING);
	rdo__event__free_unpacked(e, NULL);

	cr_assert_eq(ctl(&d, "reg write fault.stall 0"), 0, "%s", o.err);
	cr_assert(wait_flag(&d, link_scope(0), "stalled", false, 3000), "still stalled: %s", st);
	e = wait_event(events, "link 0 flows again", 2000);
	cr_assert_not_null(e, "no event for the link flowing again");
	rdo__event__free_unpacked(e, NULL);
	int rc = finish_sub(&d, &sub, 8);
	const char *j = o.out;
	cr_assert_eq(rc, 0, "a stall is not loss: exit %d: %s", rc, j);
	cr_assert(strstr(o.err, "silent"), "readout-sub did not report link 0 silent: %s", o.err);
	cr_assert_eq(jnum(j, NULL, "sequence_gaps"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "card_pages_dropped"), 0, "%s", j);
	zmq_close(events);
	stop(&d);
}

/*
 * A link that gives nothing, down or stalled, must not take the pool with it:
 * superpages posted to it do not come back while it is silent, and the other
 * links must not be left without any, dropping at the source.
 */
static void expect_no_starvation(const char *fault)
{
	struct rdo_daemon d;
	struct rdo_proc sub;
	start_with_sub(&d, FAULT_CONFIG, &sub);
	cr_assert_eq(ctl(&d, "reg write %s 1", fault), 0, "%s", o.err);
	rdo_sleep_ms(3000);
	status(&d);
	uint64_t held = jnum(st, link_scope(0), "in_card"), pool = jnum(st, "\"pool\"", "total");
	uint64_t dropped = jnum(st, link_scope(1), "pages_dropped");
	cr_assert_eq(ctl(&d, "reg write %s 0", fault), 0, "%s", o.err);
	int rc = finish_sub(&d, &sub, 8);
	cr_assert_eq(dropped, 0,
		     "link 1 dropped %" PRIu64
		     " pages at the source while link 0 (%s) held %" PRIu64
		     " of the pool's %" PRIu64 " superpages",
		     dropped, fault, held, pool);
	cr_assert_eq(jnum(o.out, link_scope(1), "card_pages_dropped"), 0, "%s", o.out);
	cr_assert_eq(rc, 0, "readout-sub exit %d: %s", rc, o.out);
	stop(&d);
}

Test(datapath, a_link_down_does_not_starve_the_others)
{
	expect_no_starvation("fault.link_down");
}

Test(datapath, a_stalled_link_does_not_starve_the_others)
{
	expect_no_starvation("fault.stall");
}

/* Every superpage back in the pool, once the sinks have let go of what they held. */
static void expect_pool_home(const struct rdo_daemon *d)
{
	uint64_t total = jnum(status(d), "\"pool\"", "total");
	cr_assert_eq(wait_num(d, "\"pool\"", "free", total, 2000), total,
		     "superpages missing from the idle pool: %s", st);
}

/* Take superpages until each of `links` links gave `per_link`, checking run and sequence. */
static void take_per_link(struct rdo_data *c, unsigned links, unsigned per_link, uint64_t run,
			  bool from_zero)
{
	uint64_t next[8] = {0};
	unsigned got[8] = {0}, done = 0;
	while (done < links) {
		struct rdo_data_view v;
		next_superpage(c, &v, 5000);
		cr_assert_lt(v.link, links);
		cr_assert_eq(v.run, run, "link %u sequence %" PRIu64 ": run %" PRIu64, v.link,
			     v.sequence, v.run);
		if (got[v.link] == 0 && from_zero)
			cr_assert_eq(v.sequence, 0, "link %u restarted at %" PRIu64, v.link,
				     v.sequence);
		else if (got[v.link])
			cr_assert_eq(v.sequence, next[v.link], "link %u", v.link);
		next[v.link] = v.sequence + 1;
		if (++got[v.link] == per_link)
			done++;
		rdo_data_ack(c, &v);
	}
}

/*
 * stop, then start with a run number: the state follows, data flows again
 * with sequence numbers from 0 and the run in status and headers. start
 * while running and stop while idle are refused (ERR_STATE, exit 1).
 */
Test(datapath, stop_and_restart)
{
	enum { LINKS = 2 };
	struct rdo_daemon d;
	start(&d, SMALL_CONFIG, NULL);
	struct rdo_data_opts opts;
	rdo_data_opts_init(&opts);
	opts.mode = RDO_DATA_LOSSLESS;
	opts.endpoint = d.lossless_tcp;
	opts.run_ends = true;
	char err[512];
	struct rdo_data *c = rdo_data_open(&opts, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	take_per_link(c, LINKS, 3, 0, false);

	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	cr_assert(strstr(o.out, "idle"), "%s", o.out);
	status(&d);
	cr_assert(jstr_is(st, NULL, "state", "idle"), "%s", st);
	cr_assert_eq(jnum(st, NULL, "uptime_s"), 0, "%s", st);
	struct rdo_data_view v;
	int rc;
	while ((rc = rdo_data_wait(c, &v, 2000)) == 0) /* what the card flushed at the stop */
		rdo_data_ack(c, &v);
	cr_assert_eq(rc, RDO_DATA_RUN_END, "the run's end after its last superpage: %d %s", rc,
		     rdo_data_error(c));
	cr_assert_eq(rdo_data_wait(c, &v, 300), -ETIMEDOUT, "%s", rdo_data_error(c));
	expect_pool_home(&d);
	cr_assert_eq(ctl(&d, "stop"), 1, "stop while idle: %s", o.out);
	cr_assert(strstr(o.err, "not running"), "%s", o.err);
	cr_assert_eq(ctl(&d, "reset"), 0, "%s", o.err);
	cr_assert_eq(rdo_data_wait(c, &v, 300), -ETIMEDOUT, "data or a run's end while idle");

	cr_assert_eq(ctl(&d, "start --run 7"), 0, "%s", o.err);
	cr_assert(strstr(o.out, "running, run 7"), "%s", o.out);
	take_per_link(c, LINKS, 3, 7, true);
	status(&d);
	cr_assert(jstr_is(st, NULL, "state", "running"), "%s", st);
	cr_assert_eq(jnum(st, NULL, "run"), 7, "%s", st);
	cr_assert_eq(ctl(&d, "start"), 1, "start while running: %s", o.out);
	cr_assert(strstr(o.err, "stop it first"), "%s", o.err);
	ctl(&d, "--json start --run 8");
	cr_assert_eq(o.status, 1);
	cr_assert(strstr(o.out, "\"code\":12"), "not ERR_STATE: %s", o.out);
	cr_assert_eq(jnum(status(&d), NULL, "run"), 7, "a refused start changed the run: %s", st);
	rdo_data_close(&c);
	stop(&d);
}

/* A card has one owner: a second readoutd for it refuses at once, naming the first. */
Test(datapath, second_readoutd_same_card_refused)
{
	char config[1024];
	snprintf(config, sizeof(config),
		 "card: { regmap: @MAP@/rdo-sim.yaml, address: \"rdo-test-same-%d\" }\n"
		 "dma: { autostart: false, superpages: 4 }\n",
		 (int)getpid());
	struct rdo_daemon first, second;
	start(&first, config, NULL);
	uint64_t t0 = rdo_now_ms();
	struct rdo_daemon_opts opts = {.config = config};
	cr_assert_eq(rdo_daemon_start_opts(&second, &opts), -1, "a second readoutd took the card");
	uint64_t took = rdo_now_ms() - t0;
	cr_assert_eq(second.exit_status, 1);
	cr_assert_lt(took, 5000, "refused only after %" PRIu64 " ms", took);
	char *log = rdo_daemon_log(&second);
	char owner[64];
	snprintf(owner, sizeof(owner), "owned by readoutd pid %d", (int)first.pid);
	cr_assert(strstr(log, owner), "log lacks \"%s\":\n%s", owner, log);
	free(log);
	rdo_daemon_cleanup(&second);
	cr_assert_eq(ctl(&first, "info"), 0, "the first server suffered: %s", o.err);
	stop(&first);
}

/* The status stream: a Status every interval on tcp and ipc, an Event when the state changes. */
Test(datapath, status_stream)
{
	enum { LINKS = 2 };
	struct rdo_daemon d;
	start(&d, SMALL_CONFIG, NULL);
	void *tcp = status_socket(d.status_tcp), *ipc = status_socket(d.status_ipc);
	uint8_t buf[16384];
	int n = next_message(tcp, "status/sim0", buf, sizeof(buf), 2500);
	cr_assert_gt(n, 0, "no status message within 2.5 s (interval 1 s)");
	Rdo__Status *s = rdo__status__unpack(NULL, (size_t)n, buf);
	cr_assert_not_null(s, "not a Status protobuf");
	cr_assert_str_eq(s->card, "sim0");
	cr_assert_eq(s->state, RDO__STATE__STATE_RUNNING);
	cr_assert_eq(s->n_links, LINKS);
	cr_assert_eq(s->pool_total, 16);
	cr_assert_eq(s->superpage_size, 256 * 1024);
	cr_assert_eq(s->n_sinks, 2);
	cr_assert_gt(s->time_ns, 0);
	rdo__status__free_unpacked(s, NULL);
	cr_assert_gt(next_message(ipc, "status/sim0", buf, sizeof(buf), 2500), 0,
		     "nothing over ipc");

	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	Rdo__Event *e = wait_event(tcp, "acquisition idle", 2000);
	cr_assert_not_null(e, "no event for the stop");
	cr_assert_str_eq(e->kind, "state");
	cr_assert_eq(e->state, RDO__STATE__STATE_IDLE);
	cr_assert_str_eq(e->card, "sim0");
	rdo__event__free_unpacked(e, NULL);
	n = next_message(tcp, "status/sim0", buf, sizeof(buf), 2500);
	cr_assert_gt(n, 0, "no status after the stop");
	s = rdo__status__unpack(NULL, (size_t)n, buf);
	cr_assert_not_null(s);
	cr_assert_eq(s->state, RDO__STATE__STATE_IDLE);
	rdo__status__free_unpacked(s, NULL);
	zmq_close(tcp);
	zmq_close(ipc);
	stop(&d);
}

/*
 * Is `st` the status of an idle channel with nothing counted against it?
 * `when` says which status, for the message.
 */
static void expect_clean_idle(const char *when, unsigned links)
{
	cr_assert(jstr_is(st, NULL, "state", "idle"), "%s: %s", when, st);
	cr_assert_eq(jnum(st, NULL, "errors"), 0, "%s: %s", when, st);
	cr_assert(jstr_is(st, NULL, "last_error", ""), "%s: %s", when, st);
	cr_assert_eq(jnum(st, NULL, "pages_dropped"), 0, "%s: %s", when, st);
	cr_assert_eq(jnum(st, NULL, "fifo_overflows"), 0, "%s: %s", when, st);
	for (unsigned i = 0; i < links; i++)
		cr_assert_eq(jnum(st, link_scope(i), "pages_dropped"), 0, "%s: %s", when, st);
}

/* Reset: the reply, and the status a moment later, show a clean idle channel. */
static void expect_reset(const struct rdo_daemon *d, unsigned links)
{
	cr_assert_eq(ctl(d, "--json reset"), 0, "%s", o.err);
	snprintf(st, sizeof(st), "%s", o.out);
	expect_clean_idle("the reply to reset", links);
	rdo_sleep_ms(500);
	status(d);
	expect_clean_idle("the status after reset", links);
	expect_pool_home(d);
}

/* After a reset a new run reads out clean. */
static void expect_clean_restart(const struct rdo_daemon *d)
{
	cr_assert_eq(ctl(d, "start --run 2"), 0, "%s", o.err);
	cr_assert_eq(rdo_run(&o, "readout-sub -e %s --lossless --check --json -q --count 16",
			     d->lossless_ipc),
		     0, "%s\n%s", o.err, o.out);
	cr_assert_eq(jnum(status(d), NULL, "errors"), 0, "%s", st);
}

/*
 * A fault that leaves the protocol intact (an overflow) is counted as an
 * error while the run goes on; reset returns to idle and clears the errors
 * and the card's drop counters.
 */
Test(datapath, reset_clears_a_fault)
{
	enum { LINKS = 2 };
	struct rdo_daemon d;
	start(&d, SMALL_CONFIG, NULL);
	cr_assert_gt(wait_num(&d, NULL, "superpages", 2, 5000), 1, "%s", st);
	cr_assert_eq(ctl(&d, "reg write fault.overflow 5"), 0, "%s", o.err);
	cr_assert_eq(wait_num(&d, NULL, "errors", 1, 5000), 1, "%s", st);
	cr_assert_eq(wait_num(&d, NULL, "pages_dropped", 10, 5000), 10, "%s", st);
	cr_assert(jstr_is(st, NULL, "state", "running"), "%s", st);
	expect_reset(&d, LINKS);
	expect_clean_restart(&d);
	stop(&d);
}

/*
 * A protocol error (a superpage the channel did not post, pushed into the
 * card's free FIFO behind its back) halts acquisition in the error state,
 * where start and stop are refused; reset recovers.
 */
Test(datapath, reset_recovers_from_a_protocol_error)
{
	enum { LINKS = 2 };
	struct rdo_daemon d;
	start(&d, SMALL_CONFIG, NULL);
	void *events = status_socket(d.status_tcp);
	cr_assert_gt(wait_num(&d, NULL, "superpages", 2, 5000), 1, "%s", st);
	/* The first superpage of the pool, where the emulator maps DMA memory. */
	cr_assert_eq(ctl(&d, "reg write dma_link0.free_addr 0x100000000000"), 0, "%s", o.err);
	cr_assert_eq(ctl(&d, "reg write dma_link0.free_push 262144"), 0, "%s", o.err);
	uint64_t deadline = rdo_now_ms() + 10000;
	while (!jstr_is(status(&d), NULL, "state", "error") && rdo_now_ms() < deadline)
		rdo_sleep_ms(50);
	cr_assert(jstr_is(st, NULL, "state", "error"), "no protocol error: %s", st);
	cr_assert_geq(jnum(st, NULL, "errors"), 1, "%s", st);
	cr_assert(strstr(jfind(st, NULL, "last_error"), "protocol error"), "%s", st);
	Rdo__Event *e = wait_event(events, "protocol error", 2000);
	cr_assert_not_null(e, "no event for the protocol error");
	cr_assert_eq(e->severity, RDO__SEVERITY__SEV_ERROR);
	rdo__event__free_unpacked(e, NULL);
	cr_assert_eq(ctl(&d, "stop"), 1, "stop in the error state: %s", o.out);
	cr_assert(strstr(o.err, "reset it"), "%s", o.err);
	cr_assert_eq(ctl(&d, "start"), 1, "start in the error state: %s", o.out);
	cr_assert(strstr(o.err, "reset it first"), "%s", o.err);
	expect_reset(&d, LINKS);
	e = wait_event(events, "protocol error", 100);
	cr_assert_null(e, "the reset raised the protocol error again: %s", e ? e->message : "");
	expect_clean_restart(&d);
	zmq_close(events);
	stop(&d);
}

/*
 * The disk writer inside readoutd. The files are checked with what an
 * operator has, `readoutctl file verify --pages` (every record, CRC and DMA
 * page against the emulator's pattern), and with their trailers read here.
 */
#define WRITER "\"name\":\"writer\""

/* The .rdo files in `dir`, sorted by name, into `names` (at most `max`): how many. */
static unsigned rdo_files(const char *dir, char names[][PATH_MAX], unsigned max)
{
	struct dirent **list;
	int n = scandir(dir, &list, NULL, alphasort);
	cr_assert_geq(n, 0, "scandir %s", dir);
	unsigned k = 0;
	for (int i = 0; i < n; i++) {
		size_t len = strlen(list[i]->d_name);
		if (k < max && len > 4 && strcmp(list[i]->d_name + len - 4, ".rdo") == 0)
			snprintf(names[k++], PATH_MAX, "%s/%s", dir, list[i]->d_name);
		free(list[i]);
	}
	free(list);
	return k;
}

static struct rdo_file_trailer read_trailer(const char *path)
{
	struct rdo_file_trailer t;
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "%s", path);
	off_t end = lseek(fd, 0, SEEK_END);
	cr_assert_eq(pread(fd, &t, sizeof(t), end - RDO_FILE_ALIGN), (ssize_t)sizeof(t));
	close(fd);
	char err[256];
	cr_assert_eq(rdo_file_trailer_check(&t, err, sizeof(err)), 0, "%s: %s", path, err);
	return t;
}

/* Wait until the writer has written everything and closed its file. */
static void wait_writer_idle(const struct rdo_daemon *d, int timeout_ms)
{
	uint64_t deadline = rdo_now_ms() + (uint64_t)timeout_ms;
	while (!(jstr_is(status(d), WRITER, "state", "idle") && jnum(st, WRITER, "queued") == 0) &&
	       rdo_now_ms() < deadline)
		rdo_sleep_ms(50);
	cr_assert(jstr_is(st, WRITER, "state", "idle"), "the writer did not finish: %s", st);
}

/*
 * The files of run `run` in `dir`, named run{run}_sim0_{seq} from 0 on:
 * each passes `verify --pages`, and per link (of `links`) the sequences go on
 * from file to file with none missing. Their record count; `*nfiles` files.
 */
static uint64_t verify_run_files(const char *dir, unsigned run, unsigned links, unsigned *nfiles)
{
	enum { MAXF = 64 };
	static char files[MAXF][PATH_MAX];
	unsigned n = rdo_files(dir, files, MAXF);
	uint64_t records = 0, next_seq[RDO_FILE_MAX_LINKS] = {0};
	for (unsigned f = 0; f < n; f++) {
		char want[64];
		snprintf(want, sizeof(want), "run%06u_sim0_%04u.rdo", run, f);
		cr_assert(strstr(files[f], want), "%s is not %s", files[f], want);
		cr_assert_eq(rdo_run(&o, "readoutctl file verify --pages %s", files[f]), 0,
			     "%s: %s%s", files[f], o.out, o.err);
		struct rdo_file_trailer t = read_trailer(files[f]);
		records += t.records;
		for (unsigned i = 0; i < links; i++) {
			cr_assert_eq(t.link[i].missing, 0u, "%s link %u", files[f], i);
			if (!t.link[i].records)
				continue;
			cr_assert_eq(t.link[i].first_sequence, next_seq[i],
				     "%s: link %u goes on where the file before ended", files[f],
				     i);
			next_seq[i] = t.link[i].last_sequence + 1;
		}
	}
	*nfiles = n;
	return records;
}

/* A 24 MiB tmpfs on a new folder named from the mkdtemp template `dir`; skips without root. */
static void mount_small_disk(char *dir)
{
	cr_assert_not_null(mkdtemp(dir));
	if (mount("tmpfs", dir, "tmpfs", 0, "size=24m") != 0) {
		int e = errno;
		rmdir(dir);
		cr_log_warn("skipped: mounting a 24 MiB tmpfs needs root: %s", strerror(e));
		cr_skip_test("mounting a 24 MiB tmpfs needs root: %s", strerror(e));
	}
}

/* What a full disk keeps: one file, closed, that verifies to its pages. */
static void the_full_disk_holds_one_good_file(const char *dir)
{
	static char files[4][PATH_MAX];
	cr_assert_eq(rdo_files(dir, files, 4), 1u);
	cr_assert_eq(rdo_run(&o, "readoutctl file verify --pages %s", files[0]), 0, "%s%s", o.out,
		     o.err);
	cr_assert_gt(read_trailer(files[0]).records, 10u);
}

TestSuite(writer, .fini = rdo_harness_cleanup, .timeout = 300);

Test(writer, several_gb_verified_record_by_record_across_rotations)
{
	enum { LINKS = 4 };
	uint64_t target = under_tsan() ? 96u << 20 : 2500u << 20;
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d,
	      CARD(4, "0") "dma: { superpage_size: 1MiB, superpages: 64 }\n"
			   "writer: { enabled: true, directory: @DIR@, rotate_size: 600MiB }\n",
	      set);
	cr_assert_eq(ctl(&d, "start --run 4242"), 0, "%s", o.err);
	uint64_t written = wait_num(&d, WRITER, "bytes", target, 120000);
	cr_assert_geq(written, target, "the writer is stuck: %s", st);
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	wait_writer_idle(&d, 30000);
	status(&d);
	uint64_t superpages = jnum(st, WRITER, "superpages");
	cr_assert_eq(jnum(st, WRITER, "dropped"), 0, "%s", st);
	cr_assert_eq(jnum(st, WRITER, "errors"), 0, "%s", st);
	cr_assert_eq(jnum(st, NULL, "superpages"), superpages,
		     "every superpage read out is in a file: %s", st);
	for (unsigned i = 0; i < LINKS; i++) {
		const char *l = link_scope(i);
		cr_assert_eq(jnum(st, l, "pages"),
			     jnum(st, l, "bytes") / PAGE + jnum(st, l, "pages_dropped"),
			     "link %u: generated = written + dropped at the card: %s", i, st);
	}

	unsigned n;
	uint64_t records = verify_run_files(d.dir, 4242, LINKS, &n);
	cr_assert_geq(n, under_tsan() ? 1u : 4u, "rotated into several files");
	cr_assert_eq(records, superpages, "the files hold every superpage the writer took");
	stop(&d);
}

Test(writer, recover_after_kill_9_keeps_every_complete_record)
{
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d,
	      CARD(2, "100MB/s") "dma: { superpage_size: 256KiB, superpages: 32 }\n"
				 "writer: { enabled: true, directory: @DIR@ }\n",
	      set);
	cr_assert_eq(ctl(&d, "start --run 7"), 0, "%s", o.err);
	cr_assert_geq(wait_num(&d, WRITER, "superpages", 100, 30000), 100, "%s", st);
	kill(d.pid, SIGKILL);
	int ws;
	waitpid(d.pid, &ws, 0);
	d.pid = -1;
	static char files[4][PATH_MAX];
	cr_assert_eq(rdo_files(d.dir, files, 4), 1u);
	cr_assert_neq(rdo_run(&o, "readoutctl file verify %s", files[0]), 0,
		      "a file without its footer does not pass: %s", o.out);
	cr_assert(strstr(o.out, "recover") || strstr(o.err, "recover"), "%s%s", o.out, o.err);
	cr_assert_eq(rdo_run(&o, "readoutctl file recover %s", files[0]), 0, "%s%s", o.out, o.err);
	cr_assert_eq(rdo_run(&o, "readoutctl file verify --pages %s", files[0]), 0, "%s%s", o.out,
		     o.err);
	struct rdo_file_trailer t = read_trailer(files[0]);
	cr_assert_geq(t.records, 100u, "what the writer had completed is kept");
	cr_assert(t.flags & RDO_TRAILER_RECOVERED);
	rdo_daemon_cleanup(&d);
}

Test(writer, disk_full_closes_the_file_and_the_card_drops)
{
	char full[] = "/tmp/readoutd-full.XXXXXX";
	mount_small_disk(full);
	char config[1024];
	snprintf(config, sizeof(config),
		 CARD(2, "50MB/s") "dma: { superpage_size: 256KiB, superpages: 16 }\n"
				   "writer: { enabled: true, directory: %s, prealloc: 4MiB }\n",
		 full);
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d, config, set);
	cr_assert_eq(ctl(&d, "start --run 9"), 0, "%s", o.err);
	uint64_t deadline = rdo_now_ms() + 30000;
	while (!jstr_is(status(&d), WRITER, "state", "disk_full") && rdo_now_ms() < deadline)
		rdo_sleep_ms(100);
	cr_assert(jstr_is(st, WRITER, "state", "disk_full"), "%s", st);
	cr_assert(strstr(jfind(st, WRITER, "last_error"), "disk full"), "%s", st);
	cr_assert_eq(jnum(st, WRITER, "files"), 1, "the full file was closed: %s", st);
	char *log = rdo_daemon_log(&d);
	cr_assert(strstr(log, "disk full"), "the log says so: %s", log);
	free(log);
	/* The rest keeps serving, and the loss shows where it happens: at the card. */
	uint64_t dropped = jnum(st, NULL, "pages_dropped");
	cr_assert_gt(wait_num(&d, NULL, "pages_dropped", dropped + 100, 10000), dropped, "%s", st);
	cr_assert_eq(ctl(&d, "reg read dma.status.running"), 0, "%s", o.err);
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	the_full_disk_holds_one_good_file(full);
	stop(&d);
	umount(full);
	rmdir(full);
}

/*
 * A page the card corrupted reaches the file as the card wrote it, so its
 * record's CRC checks: only the page check (--pages) can tell.
 */
Test(writer, verify_pages_finds_a_page_the_card_corrupted)
{
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d,
	      CARD(2, "20MB/s") "dma: { superpage_size: 256KiB, superpages: 16 }\n"
				"writer: { enabled: true, directory: @DIR@ }\n",
	      set);
	cr_assert_eq(ctl(&d, "start --run 3"), 0, "%s", o.err);
	cr_assert_geq(wait_num(&d, WRITER, "superpages", 4, 10000), 4, "%s", st);
	cr_assert_eq(ctl(&d, "reg write fault.corrupt 2"), 0, "%s", o.err);
	uint64_t now = jnum(status(&d), WRITER, "superpages");
	cr_assert_geq(wait_num(&d, WRITER, "superpages", now + 8, 10000), now + 8, "%s", st);
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	wait_writer_idle(&d, 10000);
	static char files[4][PATH_MAX];
	cr_assert_eq(rdo_files(d.dir, files, 4), 1u);
	cr_assert_eq(rdo_run(&o, "readoutctl file verify %s", files[0]), 0, "%s%s", o.out, o.err);
	cr_assert_eq(rdo_run(&o, "readoutctl file verify --pages %s", files[0]), 1,
		     "corrupt pages pass: %s%s", o.out, o.err);
	cr_assert(strstr(o.out, "2 corrupt"), "%s", o.out);
	cr_assert(strstr(o.err, "corrupt page"), "%s", o.err);
	stop(&d);
}

Test(writer, a_missing_directory_stops_the_start_with_the_fix)
{
	struct rdo_daemon d;
	struct rdo_daemon_opts opts = {
	    .config = CARD(2, "8MB/s") "writer: { enabled: true, directory: /nonexistent/data }\n"};
	cr_assert_neq(rdo_daemon_start_opts(&d, &opts), 0, "readoutd started");
	cr_assert_eq(d.exit_status, 1);
	char *log = rdo_daemon_log(&d);
	cr_assert(strstr(log, "writer.directory /nonexistent/data") && strstr(log, "create it"),
		  "%s", log);
	free(log);
	rdo_daemon_cleanup(&d);
}

/*
 * readout-writer: the same files from another process, over the lossless
 * stream. The daemon has no writer of its own here; what readout-writer
 * wrote is checked against what readoutd sent, and what it lost by dying
 * against what readoutd counted as dropped.
 */
TestSuite(remote_writer, .fini = rdo_harness_cleanup, .timeout = 300);

/* readout-writer with a config file in the daemon's folder; files go to DIR/files. */
static void spawn_writer(struct rdo_proc *p, const struct rdo_daemon *d, const char *writer_keys,
			 const char *args)
{
	char cfg[PATH_MAX], files[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "%s/readout-writer.yaml", d->dir);
	snprintf(files, sizeof(files), "%s/files", d->dir);
	mkdir(files, 0755);
	FILE *f = fopen(cfg, "w");
	cr_assert_not_null(f, "%s", cfg);
	fprintf(f,
		"source:\n  control: %s\n  lossless: %s\n  name: test-writer\n  buffers: 32\n"
		"writer: { directory: %s%s%s }\nstatus_interval_s: 1\n",
		d->tcp, d->lossless_tcp, files, writer_keys[0] ? ", " : "", writer_keys);
	fclose(f);
	cr_assert_eq(rdo_spawn(p, "exec readout-writer -c %s --json %s", cfg, args), 0);
	cr_assert_eq(wait_num(d, LOSSLESS, "consumers", 1, 10000), 1,
		     "readout-writer did not attach: %s", st);
}

/* SIGTERM, then its JSON summary in `o.out`; returns its exit status. */
static int stop_writer(struct rdo_proc *p)
{
	rdo_proc_signal(p, SIGTERM);
	int rc = rdo_proc_wait(p, &o, 30000);
	cr_assert_neq(rc, -1, "readout-writer did not stop: %s", o.err);
	return rc;
}

Test(remote_writer, a_run_over_tcp_verified_record_by_record)
{
	enum { LINKS = 4 };
	uint64_t target = under_tsan() ? 64u << 20 : 1500u << 20;
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d, CARD(4, "600MB/s") "dma: { superpage_size: 1MiB, superpages: 128 }\n", set);
	struct rdo_proc w;
	spawn_writer(&w, &d, "rotate_size: 400MiB", "");
	cr_assert_eq(ctl(&d, "start --run 77"), 0, "%s", o.err);
	uint64_t sent = wait_num(&d, LOSSLESS, "bytes", target, 120000);
	cr_assert_geq(sent, target, "the stream is stuck: %s", st);
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	uint64_t deadline = rdo_now_ms() + 20000;
	while (jnum(status(&d), LOSSLESS, "queued") && rdo_now_ms() < deadline)
		rdo_sleep_ms(50);
	rdo_sleep_ms(500); /* the run's end reaches readout-writer after its last superpage */
	cr_assert_eq(stop_writer(&w), 0, "%s", o.err);
	static char j[sizeof(o.out)]; /* its summary: `o` is reused by what follows */
	snprintf(j, sizeof(j), "%s", o.out);
	status(&d);
	uint64_t superpages = jnum(st, LOSSLESS, "superpages");
	cr_assert_eq(jnum(st, NULL, "superpages"), superpages,
		     "every superpage read out went to readout-writer: %s", st);
	cr_assert_eq(jnum(st, LOSSLESS, "dropped"), 0, "%s", st);
	cr_assert_eq(jnum(j, NULL, "superpages"), superpages, "%s", j);
	cr_assert_eq(jnum(j, NULL, "records"), superpages, "%s", j);
	cr_assert_eq(jnum(j, NULL, "lost"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "errors"), 0, "%s", j);
	cr_assert_eq(jnum(j, NULL, "run_ends"), 1, "%s", j);
	cr_assert_eq(jnum(j, NULL, "sessions"), 1, "%s", j);
	for (unsigned i = 0; i < LINKS; i++) {
		const char *l = link_scope(i);
		cr_assert_eq(jnum(st, l, "pages"),
			     jnum(st, l, "bytes") / PAGE + jnum(st, l, "pages_dropped"),
			     "link %u: generated = written + dropped at the card: %s", i, st);
	}

	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/files", d.dir);
	unsigned n;
	uint64_t records = verify_run_files(dir, 77, LINKS, &n);
	cr_assert_geq(n, under_tsan() ? 1u : 3u, "rotated into several files");
	cr_assert_eq(jnum(j, NULL, "files"), n, "every file closed with its footer: %s", j);
	cr_assert_eq(records, superpages, "the files hold every superpage readoutd sent");
	char first[PATH_MAX + 32];
	snprintf(first, sizeof(first), "%s/run000077_sim0_0000.rdo", dir);
	cr_assert_eq(rdo_run(&o, "readoutctl file info --json %s", first), 0, "%s", o.err);
	cr_assert(jstr_is(o.out, NULL, "card", "sim0"), "%s", o.out);
	cr_assert(strstr(jfind(o.out, NULL, "writer"), "readout-writer"), "%s", o.out);
	char want_sha[80];
	cr_assert_eq(rdo_run(&o, "sha256sum %s/config/regmaps/rdo-sim.yaml", rdo_source_dir()), 0);
	snprintf(want_sha, sizeof(want_sha), "%.64s", o.out);
	cr_assert_eq(rdo_run(&o, "readoutctl file info --json %s", first), 0, "%s", o.err);
	cr_assert(jstr_is(o.out, NULL, "map_sha256", want_sha),
		  "the map's digest, from readoutd's info: %s", o.out);
	stop(&d);
}

/*
 * kill -9 of readout-writer mid-file: recover keeps every complete record,
 * and whatever it had received and not written is counted as dropped at
 * readoutd: records in the file + dropped cover every superpage sent.
 */
Test(remote_writer, kill_9_then_recover_and_the_loss_is_counted)
{
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d, CARD(2, "100MB/s") "dma: { superpage_size: 256KiB, superpages: 64 }\n", set);
	struct rdo_proc w;
	spawn_writer(&w, &d, "", "");
	cr_assert_eq(ctl(&d, "start --run 8"), 0, "%s", o.err);
	cr_assert_geq(wait_num(&d, LOSSLESS, "superpages", 150, 30000), 150, "%s", st);
	rdo_proc_signal(&w, SIGKILL);
	rdo_proc_wait(&w, &o, 10000);
	uint64_t deadline = rdo_now_ms() + 15000;
	while (jnum(status(&d), LOSSLESS, "consumers") && rdo_now_ms() < deadline)
		rdo_sleep_ms(100);
	cr_assert_eq(jnum(st, LOSSLESS, "consumers"), 0, "readoutd did not notice: %s", st);
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	status(&d);
	uint64_t sent = jnum(st, LOSSLESS, "superpages"), dropped = jnum(st, LOSSLESS, "dropped");

	static char files[4][PATH_MAX];
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/files", d.dir);
	cr_assert_eq(rdo_files(dir, files, 4), 1u);
	cr_assert_neq(rdo_run(&o, "readoutctl file verify %s", files[0]), 0,
		      "a file without its footer does not pass: %s", o.out);
	cr_assert_eq(rdo_run(&o, "readoutctl file recover %s", files[0]), 0, "%s%s", o.out, o.err);
	cr_assert_eq(rdo_run(&o, "readoutctl file verify --pages %s", files[0]), 0, "%s%s", o.out,
		     o.err);
	struct rdo_file_trailer t = read_trailer(files[0]);
	cr_assert(t.flags & RDO_TRAILER_RECOVERED);
	cr_assert_gt(t.records, 0u);
	cr_assert_leq(t.records, sent, "more records than superpages sent");
	cr_assert_geq(t.records + dropped, sent,
		      "%" PRIu64 " sent, %" PRIu64 " in the file, %" PRIu64
		      " counted as dropped: some went missing uncounted",
		      sent, (uint64_t)t.records, dropped);
	stop(&d);
}

/*
 * readout-writer started before readoutd waits for it, attaches when it
 * comes, closes its file at each run's end, and attaches again when
 * readoutd restarts: after kill -9 (the new readoutd does not know it), and
 * after a clean stop.
 */
Test(remote_writer, waits_for_readoutd_and_attaches_again_after_a_restart)
{
	char base[] = "/tmp/rdo-rw.XXXXXX";
	cr_assert_not_null(mkdtemp(base));
	char config[2048];
	snprintf(config, sizeof(config),
		 CARD(2, "40MB/s") "dma: { superpage_size: 256KiB, superpages: 32 }\n"
				   "control: { bind: [ ipc://%s/ctl, tcp://127.0.0.1:* ] }\n"
				   "lossless: { bind: [ ipc://%s/ll, tcp://127.0.0.1:* ] }\n",
		 base, base);
	const char *const set[] = {"dma.autostart=false", NULL};
	struct rdo_proc w;
	cr_assert_eq(rdo_spawn(&w,
			       "exec readout-writer --control ipc://%s/ctl -e ipc://%s/ll -d %s "
			       "--buffers 16 --json",
			       base, base, base),
		     0);
	rdo_sleep_ms(1500);
	for (int run = 1; run <= 2; run++) {
		struct rdo_daemon d;
		start(&d, config, set);
		cr_assert_eq(wait_num(&d, LOSSLESS, "consumers", 1, 10000), 1,
			     "readout-writer did not attach: %s", st);
		cr_assert_eq(ctl(&d, "start --run %d", run), 0, "%s", o.err);
		cr_assert_geq(wait_num(&d, LOSSLESS, "superpages", 40, 10000), 40, "%s", st);
		cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
		rdo_sleep_ms(500);
		cr_assert_eq(jnum(status(&d), LOSSLESS, "dropped"), 0, "%s", st);
		if (run == 2) {
			stop(&d);
			continue;
		}
		kill(d.pid, SIGKILL);
		waitpid(d.pid, NULL, 0);
		d.pid = -1;
		rdo_daemon_cleanup(&d);
	}
	cr_assert_eq(stop_writer(&w), 0, "%s", o.err);
	const char *j = o.out;
	cr_assert_eq(jnum(j, NULL, "sessions"), 2, "%s", j);
	cr_assert_eq(jnum(j, NULL, "run_ends"), 2, "%s", j);
	cr_assert_eq(jnum(j, NULL, "files"), 2, "%s", j);
	cr_assert_eq(jnum(j, NULL, "lost"), 0, "%s", j);
	cr_assert(strstr(o.err, "waiting for readoutd"), "%s", o.err);
	cr_assert(strstr(o.err, "readoutd is stopping"), "%s", o.err);
	static char files[4][PATH_MAX];
	cr_assert_eq(rdo_files(base, files, 4), 2u);
	for (int f = 0; f < 2; f++) {
		char want[64];
		snprintf(want, sizeof(want), "run%06d_sim0_0000.rdo", f + 1);
		cr_assert(strstr(files[f], want), "%s is not %s", files[f], want);
		cr_assert_eq(rdo_run(&o, "readoutctl file verify --pages %s", files[f]), 0, "%s%s",
			     o.out, o.err);
	}
	rdo_run(&o, "rm -rf %s", base);
}

/*
 * A full disk holds readout-writer's buffers: it stops taking superpages,
 * readoutd's pool fills and its card drops, counted there, while the closed
 * file stays verifiable. What it still held at the stop is reported lost.
 */
Test(remote_writer, disk_full_makes_the_card_drop_and_the_file_stays_good)
{
	char full[] = "/tmp/readout-writer-full.XXXXXX";
	mount_small_disk(full);
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d, CARD(2, "50MB/s") "dma: { superpage_size: 256KiB, superpages: 16 }\n", set);
	struct rdo_proc w;
	cr_assert_eq(rdo_spawn(&w,
			       "exec readout-writer --control %s -e %s -d %s --buffers 8 --json",
			       d.tcp, d.lossless_tcp, full),
		     0);
	cr_assert_eq(wait_num(&d, LOSSLESS, "consumers", 1, 10000), 1, "not attached: %s", st);
	cr_assert_eq(ctl(&d, "start --run 9"), 0, "%s", o.err);
	cr_assert_gt(wait_num(&d, NULL, "pages_dropped", 100, 30000), 99,
		     "the card does not drop: %s", st);
	cr_assert_eq(ctl(&d, "reg read dma.status.running"), 0, "readoutd stopped serving: %s",
		     o.err);
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	int rc = stop_writer(&w);
	cr_assert_eq(rc, 1, "exit %d: lost superpages must show: %s", rc, o.err);
	cr_assert(strstr(o.err, "disk full"), "the log says so: %s", o.err);
	cr_assert_geq(jnum(o.out, NULL, "lost"), 1, "%s", o.out);
	cr_assert_eq(jnum(o.out, NULL, "files"), 1, "the full file was closed: %s", o.out);
	cr_assert_geq(wait_num(&d, LOSSLESS, "dropped", 1, 5000), 1,
		      "what was on its way to readout-writer is counted at readoutd: %s", st);
	the_full_disk_holds_one_good_file(full);
	stop(&d);
	umount(full);
	rmdir(full);
}

/* SIGHUP closes the file and the next superpage opens a new one; SIGUSR1 prints the status now. */
Test(remote_writer, sighup_starts_a_new_file_and_sigusr1_prints_the_status)
{
	struct rdo_daemon d;
	const char *const set[] = {"dma.autostart=false", NULL};
	start(&d, CARD(2, "40MB/s") "dma: { superpage_size: 256KiB, superpages: 32 }\n", set);
	char dir[PATH_MAX];
	snprintf(dir, sizeof(dir), "%s/files", d.dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	struct rdo_proc w;
	cr_assert_eq(rdo_spawn(&w,
			       "exec readout-writer --control %s -e %s -d %s --buffers 32 --json",
			       d.tcp, d.lossless_tcp, dir),
		     0);
	cr_assert_eq(wait_num(&d, LOSSLESS, "consumers", 1, 10000), 1, "not attached: %s", st);
	cr_assert_eq(ctl(&d, "start --run 5"), 0, "%s", o.err);
	cr_assert_geq(wait_num(&d, LOSSLESS, "superpages", 40, 10000), 40, "%s", st);
	rdo_proc_signal(&w, SIGHUP);
	uint64_t now = jnum(status(&d), LOSSLESS, "superpages");
	cr_assert_geq(wait_num(&d, LOSSLESS, "superpages", now + 40, 10000), now + 40, "%s", st);
	rdo_proc_signal(&w, SIGUSR1);
	rdo_sleep_ms(300);
	cr_assert_eq(ctl(&d, "stop"), 0, "%s", o.err);
	rdo_sleep_ms(500);
	cr_assert_eq(stop_writer(&w), 0, "%s", o.err);
	cr_assert(strstr(o.err, "SIGHUP: file closed"), "%s", o.err);
	cr_assert(strstr(o.err, "status: writing"), "no status line at SIGUSR1: %s", o.err);
	cr_assert_eq(jnum(o.out, NULL, "files"), 2, "%s", o.out);
	unsigned n;
	cr_assert_gt(verify_run_files(dir, 5, 2, &n), 80u);
	cr_assert_eq(n, 2u, "the run's files: its first, and the one after SIGHUP");
	stop(&d);
}

/* A bad config or directory stops readout-writer at once, saying where and how to fix it. */
Test(remote_writer, bad_config_and_directory_refused_at_start)
{
	char dir[] = "/tmp/rdo-rwcfg.XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char cfg[PATH_MAX];
	snprintf(cfg, sizeof(cfg), "%s/w.yaml", dir);
	const struct {
		const char *text, *want;
	} cases[] = {
	    {"source: { buffers: 1 }\n", "w.yaml:1:20: source.buffers: 1 is too small"},
	    {"source: { lossless: localhost:5572 }\n", "expected tcp://HOST:PORT or ipc://PATH"},
	    {"writer: { enabled: true }\n", "writer.enabled: unknown key"},
	    {"writer: { name: run.rdo }\n", "has no {seq}"},
	    {"sink: {}\n", "unknown key (expected one of: source, writer"},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(cases); i++) {
		FILE *f = fopen(cfg, "w");
		fputs(cases[i].text, f);
		fclose(f);
		int rc = rdo_run(&o, "readout-writer -c %s -d %s", cfg, dir);
		cr_assert_neq(rc, 0, "%s accepted", cases[i].text);
		cr_assert(strstr(o.err, cases[i].want), "%s: %s", cases[i].text, o.err);
	}
	cr_assert_eq(rdo_run(&o, "readout-writer -d %s/missing", dir), 3);
	cr_assert(strstr(o.err, "create it"), "%s", o.err);
	cr_assert_eq(rdo_run(&o, "readout-writer --buffers 0"), 2);
	cr_assert(strstr(o.err, "--buffers"), "%s", o.err);
	rdo_run(&o, "rm -rf %s", dir);
}
