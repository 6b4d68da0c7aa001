#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "card/card.h"
#include "common/log.h"
#include "common/util.h"
#include "core/pool.h"
#include "core/sink.h"
#include "proto/readout.pb-c.h"
#include "unit/sink_fixture.h"

static void quiet(void)
{
	rdo_log_set_level(LOG_WARNING);
}

TestSuite(sink, .init = quiet);

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);
	cr_assert_geq(n, 0, "poll: %s", strerror(errno));
	return n == 1 && (p.revents & POLLIN);
}

Test(sink, squeue_fifo_order_and_count)
{
	struct rdo_squeue q;
	cr_assert_eq(rdo_squeue_init(&q, 8), 0);
	cr_assert_geq(rdo_squeue_fd(&q), 0);
	cr_assert_eq(rdo_squeue_count(&q), 0);
	uint32_t v = 0xdead;
	cr_assert(!rdo_squeue_pop(&q, &v), "pop from an empty queue");
	cr_assert_eq(v, 0xdead, "a failed pop wrote its output");
	for (uint32_t i = 0; i < 8; i++)
		cr_assert(rdo_squeue_push(&q, 100 + i), "push %u of 8", i);
	cr_assert_eq(rdo_squeue_count(&q), 8);
	cr_assert(!rdo_squeue_push(&q, 999), "push to a full queue");
	cr_assert_eq(rdo_squeue_count(&q), 8);
	for (uint32_t i = 0; i < 8; i++) {
		cr_assert(rdo_squeue_pop(&q, &v));
		cr_assert_eq(v, 100 + i, "pop %u gave %u", i, v);
	}
	cr_assert(!rdo_squeue_pop(&q, &v));
	cr_assert_eq(rdo_squeue_count(&q), 0);
	rdo_squeue_fini(&q);
	cr_assert_eq(rdo_squeue_fd(&q), -1, "fini closes the fd");
	rdo_squeue_fini(&q); /* twice is harmless */
}

Test(sink, squeue_capacity_rounds_up)
{
	struct rdo_squeue q;
	cr_assert_eq(rdo_squeue_init(&q, 5), 0);
	unsigned n = 0;
	while (n < 100 && rdo_squeue_push(&q, n))
		n++;
	cr_assert_eq(n, 8, "a queue for 5 holds %u", n);
	rdo_squeue_fini(&q);
}

Test(sink, squeue_push_without_sleeper_does_not_signal)
{
	struct rdo_squeue q;
	cr_assert_eq(rdo_squeue_init(&q, 4), 0);
	cr_assert(rdo_squeue_push(&q, 1));
	cr_assert(!readable(rdo_squeue_fd(&q), 0), "a push to an awake consumer wrote the fd");
	rdo_squeue_fini(&q);
}

Test(sink, squeue_sleep_refused_when_something_is_queued)
{
	struct rdo_squeue q;
	cr_assert_eq(rdo_squeue_init(&q, 4), 0);
	cr_assert(rdo_squeue_push(&q, 7));
	cr_assert(!rdo_squeue_sleep(&q), "sleep with a value queued");
	cr_assert(rdo_squeue_push(&q, 8));
	cr_assert(!readable(rdo_squeue_fd(&q), 0), "a refused sleep still counts as sleeping");
	uint32_t v;
	cr_assert(rdo_squeue_pop(&q, &v) && v == 7);
	cr_assert(rdo_squeue_pop(&q, &v) && v == 8);
	rdo_squeue_fini(&q);
}

Test(sink, squeue_push_wakes_a_sleeper_once)
{
	struct rdo_squeue q;
	cr_assert_eq(rdo_squeue_init(&q, 4), 0);
	int fd = rdo_squeue_fd(&q);
	cr_assert(rdo_squeue_sleep(&q), "sleep on an empty queue");
	cr_assert(!readable(fd, 0), "readable before any push");
	cr_assert(rdo_squeue_push(&q, 3));
	cr_assert(readable(fd, 0), "a push to a sleeping queue did not wake it");
	cr_assert(rdo_squeue_push(&q, 4));
	rdo_squeue_woken(&q);
	cr_assert(!readable(fd, 0), "woken did not clear the wake-up");
	cr_assert(rdo_squeue_push(&q, 5));
	cr_assert(!readable(fd, 0), "a push after woken signalled");
	uint32_t v;
	for (uint32_t want = 3; want <= 5; want++) {
		cr_assert(rdo_squeue_pop(&q, &v));
		cr_assert_eq(v, want);
	}
	/* Sleeping again works the same way. */
	cr_assert(rdo_squeue_sleep(&q));
	cr_assert(rdo_squeue_push(&q, 6));
	cr_assert(readable(fd, 0));
	rdo_squeue_woken(&q);
	rdo_squeue_woken(&q); /* a woken without a wake-up pending is harmless */
	cr_assert(!readable(fd, 0));
	rdo_squeue_fini(&q);
}

#define HANDOFF_N 200000u

struct handoff {
	struct rdo_squeue q;
	unsigned full_spins;
};

static void *producer(void *arg)
{
	struct handoff *h = arg;
	for (uint32_t i = 0; i < HANDOFF_N; i++) {
		while (!rdo_squeue_push(&h->q, i))
			h->full_spins++;
		if (i % 1024 == 0) {
			struct timespec ts = {0, 50000};
			nanosleep(&ts, NULL); /* let the consumer fall asleep now and then */
		}
	}
	return NULL;
}

Test(sink, squeue_consumer_never_misses_a_wakeup)
{
	struct handoff h = {0};
	cr_assert_eq(rdo_squeue_init(&h.q, 64), 0);
	pthread_t t;
	cr_assert_eq(pthread_create(&t, NULL, producer, &h), 0);
	uint32_t next = 0;
	unsigned sleeps = 0;
	while (next < HANDOFF_N) {
		uint32_t v;
		if (rdo_squeue_pop(&h.q, &v)) {
			cr_assert_eq(v, next, "popped %u, expected %u", v, next);
			next++;
			continue;
		}
		if (!rdo_squeue_sleep(&h.q))
			continue;
		sleeps++;
		/* A lost wake-up shows as a poll that times out with values queued. */
		bool woke = readable(rdo_squeue_fd(&h.q), 2000);
		cr_assert(woke, "slept 2 s with %zu queued after %u of %u", rdo_squeue_count(&h.q),
			  next, HANDOFF_N);
		rdo_squeue_woken(&h.q);
	}
	pthread_join(t, NULL);
	cr_assert_gt(sleeps, 0, "the consumer never slept: the test proves nothing");
	cr_assert_eq(rdo_squeue_count(&h.q), 0);
	rdo_squeue_fini(&h.q);
}

Test(sink, pack_header_round_trip)
{
	struct rdo_superpage sp = {
	    .size = 16384,
	    .link = 11,
	    .flags = RDO_SP_PARTIAL | RDO_SP_DISCONTINUITY,
	    .sequence = 0x123456789aull,
	    .timestamp_ns = 1700000000123456789ull,
	    .card_pages_dropped = 77,
	    .run = 42,
	};
	uint8_t buf[256];
	size_t len = rdo_sink_pack_header("sim3", &sp, 5, buf, sizeof(buf));
	cr_assert_gt(len, 0);
	Rdo__SuperpageHeader *h = rdo__superpage_header__unpack(NULL, len, buf);
	cr_assert_not_null(h, "the packed header does not unpack");
	cr_assert_eq(h->version, RDO_PROTOCOL_VERSION);
	cr_assert_str_eq(h->card, "sim3");
	cr_assert_eq(h->link, 11);
	cr_assert_eq(h->sequence, 0x123456789aull);
	cr_assert_eq(h->size, 16384);
	cr_assert_eq(h->timestamp_ns, 1700000000123456789ull);
	cr_assert_eq(h->flags,
		     RDO__SUPERPAGE_FLAG__SP_PARTIAL | RDO__SUPERPAGE_FLAG__SP_DISCONTINUITY);
	cr_assert_eq(h->dropped_before, 5);
	cr_assert_eq(h->run, 42);
	cr_assert_eq(h->card_pages_dropped, 77);
	rdo__superpage_header__free_unpacked(h, NULL);

	cr_assert_eq(rdo_sink_pack_header("sim3", &sp, 5, buf, len), len, "exactly enough room");
	cr_assert_eq(rdo_sink_pack_header("sim3", &sp, 5, buf, len - 1), 0, "one byte short");
	cr_assert_eq(rdo_sink_pack_header("sim3", &sp, 5, buf, 0), 0);
}

Test(sink, pack_header_flag_bits_match_the_proto)
{
	cr_assert_eq(RDO_SP_PARTIAL, RDO__SUPERPAGE_FLAG__SP_PARTIAL);
	cr_assert_eq(RDO_SP_DISCONTINUITY, RDO__SUPERPAGE_FLAG__SP_DISCONTINUITY);
	cr_assert_eq(RDO_SP_HEADER_ONLY, RDO__SUPERPAGE_FLAG__SP_HEADER_ONLY);
	cr_assert_eq(RDO_SP_LINK_DOWN, RDO__SUPERPAGE_FLAG__SP_LINK_DOWN);
}

Test(sink, pack_header_zero_values)
{
	struct rdo_superpage sp = {0};
	uint8_t buf[64];
	size_t len = rdo_sink_pack_header("", &sp, 0, buf, sizeof(buf));
	cr_assert_gt(len, 0, "the version field is always there");
	Rdo__SuperpageHeader *h = rdo__superpage_header__unpack(NULL, len, buf);
	cr_assert_not_null(h);
	cr_assert_eq(h->version, RDO_PROTOCOL_VERSION);
	cr_assert_str_eq(h->card, "");
	cr_assert_eq(h->sequence, 0);
	cr_assert_eq(h->flags, 0);
	rdo__superpage_header__free_unpacked(h, NULL);
}

struct counted_sink {
	struct rdo_sink base;
	int destroyed;
};

static void counted_destroy(struct rdo_sink *sink)
{
	container_of(sink, struct counted_sink, base)->destroyed++;
}

static const struct rdo_sink_ops counted_ops = {
    .name = "counted",
    .destroy = counted_destroy,
};

Test(sink, destroy_calls_the_backend_and_clears_the_pointer)
{
	struct counted_sink c = {.base.ops = &counted_ops};
	struct rdo_sink *s = &c.base;
	rdo_sink_destroy(&s);
	cr_assert_null(s);
	cr_assert_eq(c.destroyed, 1);
	rdo_sink_destroy(&s);
	cr_assert_eq(c.destroyed, 1, "destroying NULL reached the backend");
}

/* What a sink still holds at shutdown goes back to the pool, and is counted; run-end marks are not.
 */
Test(sink, squeue_release_all_returns_every_superpage)
{
	static char mem[4 * 4096] __attribute__((aligned(4096)));
	struct rdo_dma_seg seg = {.off = 0, .len = sizeof(mem), .bus = 0x1000};
	struct rdo_dma_buf buf = {.va = mem, .len = sizeof(mem), .nsegs = 1, .seg = &seg};
	struct rdo_pool *pool = rdo_pool_create(&buf, 4096, 4);
	cr_assert_not_null(pool);
	struct rdo_squeue q;
	cr_assert_eq(rdo_squeue_init(&q, 8), 0);
	for (int i = 0; i < 3; i++) {
		struct rdo_superpage *sp = rdo_pool_get(pool);
		cr_assert_not_null(sp);
		cr_assert(rdo_squeue_push(&q, sp->index));
		cr_assert(rdo_squeue_push(&q, RDO_SQUEUE_RUN_END));
	}
	cr_assert_eq(rdo_pool_free(pool), 1);
	cr_assert_eq(rdo_squeue_release_all(&q, pool), 3);
	cr_assert_eq(rdo_pool_free(pool), 4, "every superpage is back");
	cr_assert_eq(rdo_squeue_count(&q), 0);
	cr_assert_eq(rdo_squeue_release_all(&q, pool), 0, "nothing twice");
	rdo_squeue_fini(&q);
	rdo_pool_destroy(&pool);
}

/* A sink thread whose ops note what they are handed, in order. */
struct recorder {
	struct rdo_sink_thread t;
	pthread_mutex_t lock;
	uint32_t seen[64]; /* superpage indices, RDO_SQUEUE_RUN_END for a mark; retries too */
	pthread_t on[64];  /* the thread each came on */
	unsigned n;
	_Atomic bool refuse; /* hold every superpage while set */
	_Atomic unsigned turns;
};

static void note(struct recorder *r, uint32_t what)
{
	pthread_mutex_lock(&r->lock);
	if (r->n < RDO_ARRAY_SIZE(r->seen)) {
		r->on[r->n] = pthread_self();
		r->seen[r->n++] = what;
	}
	pthread_mutex_unlock(&r->lock);
}

static bool rec_superpage(struct rdo_sink_thread *t, struct rdo_superpage *sp)
{
	struct recorder *r = container_of(t, struct recorder, t);
	note(r, sp->index);
	if (atomic_load(&r->refuse))
		return false;
	rdo_sink_thread_count_delivered(t, sp->size);
	rdo_pool_put(t->pool, sp);
	return true;
}

static void rec_run_end(struct rdo_sink_thread *t)
{
	note(container_of(t, struct recorder, t), RDO_SQUEUE_RUN_END);
}

static void rec_turn(struct rdo_sink_thread *t)
{
	atomic_fetch_add(&container_of(t, struct recorder, t)->turns, 1);
}

static const struct rdo_sink_thread_ops rec_ops = {
    .superpage = rec_superpage,
    .run_end = rec_run_end,
    .before_queue = rec_turn,
};

static unsigned noted(struct recorder *r)
{
	pthread_mutex_lock(&r->lock);
	unsigned n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

static void wait_noted(struct recorder *r, unsigned n)
{
	for (int i = 0; i < 300 && noted(r) < n; i++)
		fixture_sleep_ms(10);
	cr_assert_geq(noted(r), n, "the thread was handed %u of %u", noted(r), n);
}

static void recorder_init(struct recorder *r, struct fixture_pool *fp, size_t capacity)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	fixture_pool_create(fp, 4096, 8);
	cr_assert_eq(rdo_sink_thread_init(&r->t, "test sink", &rec_ops, fp->pool, capacity), 0);
}

static void recorder_fini(struct recorder *r, struct fixture_pool *fp)
{
	rdo_sink_thread_stop(&r->t);
	rdo_sink_thread_fini(&r->t);
	cr_assert_eq(rdo_pool_free(fp->pool), 8, "a superpage not returned");
	fixture_pool_destroy(fp);
	pthread_mutex_destroy(&r->lock);
}

/* A recorder on its thread, holding every superpage back while `refuse`. */
static void recorder_start(struct recorder *r, struct fixture_pool *fp, bool refuse)
{
	recorder_init(r, fp, 8 + RDO_SQUEUE_MARKS);
	atomic_store(&r->refuse, refuse);
	cr_assert_eq(rdo_sink_thread_start(&r->t, "rdo-test", NULL, -1), 0);
}

/* Queue superpage `seq` as the DMA channel offers it: its index. */
static uint32_t offer_one(struct rdo_sink_thread *t, struct rdo_pool *pool, uint64_t seq)
{
	struct rdo_superpage *sp = fixture_fill(pool, 0, seq, 1, 100);
	uint32_t idx = sp->index;
	cr_assert(rdo_sink_thread_offer(t, sp));
	rdo_pool_put(pool, sp);
	return idx;
}

Test(sink, thread_hands_superpages_and_marks_over_in_order)
{
	struct recorder r;
	struct fixture_pool fp;
	recorder_start(&r, &fp, false);
	uint32_t want[6];
	for (int i = 0; i < 3; i++)
		want[i] = offer_one(&r.t, fp.pool, (uint64_t)i);
	cr_assert(rdo_sink_thread_run_end(&r.t));
	want[3] = RDO_SQUEUE_RUN_END;
	for (int i = 4; i < 6; i++)
		want[i] = offer_one(&r.t, fp.pool, (uint64_t)i);
	wait_noted(&r, 6);
	fixture_sleep_ms(50);
	cr_assert_eq(noted(&r), 6, "handed over more than was queued");
	for (int i = 0; i < 6; i++) {
		cr_assert_eq(r.seen[i], want[i], "#%d: %u, not %u", i, r.seen[i], want[i]);
		cr_assert(!pthread_equal(r.on[i], pthread_self()), "not on the sink's thread");
	}
	cr_assert_gt(atomic_load(&r.turns), 0, "before_queue never ran");
	struct rdo_sink_stats st = {0};
	rdo_sink_thread_stats(&r.t, &st);
	cr_assert_eq(st.superpages, 5);
	cr_assert_eq(st.bytes, 500);
	cr_assert_eq(st.dropped + st.queued, 0);
	recorder_fini(&r, &fp);
}

/* A superpage the sink holds back comes again first: nothing overtakes it, no mark either. */
Test(sink, thread_retries_a_held_superpage_before_anything_else)
{
	struct recorder r;
	struct fixture_pool fp;
	recorder_start(&r, &fp, true);
	uint32_t first = offer_one(&r.t, fp.pool, 0), second = offer_one(&r.t, fp.pool, 1);
	cr_assert(rdo_sink_thread_run_end(&r.t));
	wait_noted(&r, 3); /* a retry a tick */
	unsigned retries = noted(&r);
	for (unsigned i = 0; i < retries; i++)
		cr_assert_eq(r.seen[i], first, "#%u overtook the held superpage", i);
	struct rdo_sink_stats st = {0};
	rdo_sink_thread_stats(&r.t, &st);
	cr_assert_eq(st.queued, 2, "a superpage and a mark wait behind it");
	cr_assert_eq(st.dropped, 0);

	atomic_store(&r.refuse, false);
	wait_noted(&r, retries + 3);
	pthread_mutex_lock(&r.lock);
	unsigned k = r.n - 3;
	cr_assert_eq(r.seen[k], first);
	cr_assert_eq(r.seen[k + 1], second);
	cr_assert_eq(r.seen[k + 2], RDO_SQUEUE_RUN_END);
	pthread_mutex_unlock(&r.lock);
	recorder_fini(&r, &fp);
}

Test(sink, thread_offer_to_a_full_queue_is_refused_and_counted)
{
	struct recorder r;
	struct fixture_pool fp;
	recorder_init(&r, &fp, 2);
	offer_one(&r.t, fp.pool, 0);
	offer_one(&r.t, fp.pool, 1);
	struct rdo_superpage *sp = fixture_fill(fp.pool, 0, 2, 1, 100);
	cr_assert(!rdo_sink_thread_offer(&r.t, sp), "a full queue took it");
	cr_assert_eq(atomic_load(&sp->refs), 1, "a refused offer kept its reference");
	rdo_pool_put(fp.pool, sp);
	cr_assert(!rdo_sink_thread_run_end(&r.t), "a full queue took a mark");
	cr_assert_eq(rdo_sink_thread_drops(&r.t), 1);
	cr_assert_eq(rdo_pool_free(fp.pool), 6);
	/* never started: fini returns the queued two, counted as dropped */
	rdo_sink_thread_stop(&r.t);
	cr_assert_eq(rdo_sink_thread_release_all(&r.t), 2);
	cr_assert_eq(rdo_sink_thread_drops(&r.t), 3);
	cr_assert_eq(rdo_sink_thread_release_all(&r.t), 0, "nothing twice");
	recorder_fini(&r, &fp);
}

/* After stop the caller is the consumer: drain hands the queue over on its thread. */
Test(sink, thread_drain_after_stop_runs_on_the_caller)
{
	struct recorder r;
	struct fixture_pool fp;
	recorder_start(&r, &fp, false);
	rdo_sink_thread_stop(&r.t);
	rdo_sink_thread_stop(&r.t); /* twice is harmless */
	uint32_t a = offer_one(&r.t, fp.pool, 0);
	cr_assert(rdo_sink_thread_run_end(&r.t));
	fixture_sleep_ms(20);
	cr_assert_eq(noted(&r), 0, "a stopped thread still pops");
	rdo_sink_thread_drain(&r.t);
	cr_assert_eq(noted(&r), 2);
	cr_assert_eq(r.seen[0], a);
	cr_assert_eq(r.seen[1], RDO_SQUEUE_RUN_END);
	cr_assert(pthread_equal(r.on[0], pthread_self()));
	recorder_fini(&r, &fp);
}

/* What the thread holds and what is queued at stop go back to the pool, counted as dropped. */
Test(sink, thread_release_all_returns_the_held_and_the_queued)
{
	struct recorder r;
	struct fixture_pool fp;
	recorder_start(&r, &fp, true);
	for (int i = 0; i < 3; i++)
		offer_one(&r.t, fp.pool, (uint64_t)i);
	cr_assert(rdo_sink_thread_run_end(&r.t));
	wait_noted(&r, 1);
	rdo_sink_thread_stop(&r.t);
	cr_assert_eq(rdo_pool_free(fp.pool), 5);
	cr_assert_eq(rdo_sink_thread_release_all(&r.t), 3,
		     "one held, two queued; marks not counted");
	cr_assert_eq(rdo_sink_thread_drops(&r.t), 3);
	recorder_fini(&r, &fp);
}

/* The thread sleeps on the sink's own fd too: what arrives there starts a turn at once. */
Test(sink, thread_wakes_for_the_sinks_own_fd)
{
	struct recorder r;
	struct fixture_pool fp;
	recorder_init(&r, &fp, 8);
	int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert_geq(fd, 0);
	cr_assert_eq(rdo_sink_thread_start(&r.t, "rdo-test", NULL, fd), 0);
	fixture_sleep_ms(30);
	unsigned turns = atomic_load(&r.turns);
	uint64_t one = 1;
	cr_assert_eq(write(fd, &one, sizeof(one)), (ssize_t)sizeof(one));
	/* a readable fd that nobody reads wakes every turn: many turns where a tick gives one */
	fixture_sleep_ms(50);
	cr_assert_gt(atomic_load(&r.turns), turns + 5, "the fd did not wake the thread");
	recorder_fini(&r, &fp);
	close(fd);
}
