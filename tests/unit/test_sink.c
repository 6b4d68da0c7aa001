#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "card/card.h"
#include "common/log.h"
#include "core/pool.h"
#include "proto/readout.pb-c.h"
#include "core/sink.h"
#include "common/util.h"

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
