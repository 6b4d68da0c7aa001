#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "common/util.h"
#include "core/ring.h"
#include "stress/scenario.h"

static struct rdo_ring ring_of(size_t capacity)
{
	struct rdo_ring r;
	cr_assert_eq(rdo_ring_init(&r, capacity), 0, "init(%zu)", capacity);
	return r;
}

static void push_ok(struct rdo_ring *r, uint32_t v)
{
	cr_assert(rdo_ring_push(r, v), "push %u with %zu of %zu in the ring", v, rdo_ring_count(r),
		  rdo_ring_capacity(r));
}

static void pop_expect(struct rdo_ring *r, uint32_t want)
{
	uint32_t v = 0xdeadbeef;
	cr_assert(rdo_ring_pop(r, &v), "pop with %zu in the ring, expecting %u", rdo_ring_count(r),
		  want);
	cr_assert_eq(v, want, "popped %u, expected %u", v, want);
}

Test(ring, init_rounds_up_to_power_of_two)
{
	static const size_t cases[][2] = {
	    {0, 2}, {1, 2}, {2, 2}, {3, 4}, {5, 8}, {8, 8}, {1000, 1024}, {1024, 1024},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(cases); i++) {
		struct rdo_ring r = ring_of(cases[i][0]);
		cr_assert_eq(rdo_ring_capacity(&r), cases[i][1],
			     "init(%zu): capacity %zu, expected %zu", cases[i][0],
			     rdo_ring_capacity(&r), cases[i][1]);
		cr_assert_eq(rdo_ring_count(&r), 0);
		rdo_ring_fini(&r);
	}
}

Test(ring, init_refuses_impossible_capacity)
{
	struct rdo_ring r;
	cr_assert_eq(rdo_ring_init(&r, SIZE_MAX), -ENOMEM);
	cr_assert_eq(rdo_ring_init(&r, SIZE_MAX / 2 + 2), -ENOMEM);
}

Test(ring, fini_clears_slots)
{
	struct rdo_ring r = ring_of(4);
	rdo_ring_fini(&r);
	cr_assert_null(r.slots);
}

Test(ring, push_until_full)
{
	struct rdo_ring r = ring_of(8);
	for (uint32_t i = 0; i < 8; i++) {
		push_ok(&r, i);
		cr_assert_eq(rdo_ring_count(&r), i + 1);
	}
	cr_assert_not(rdo_ring_push(&r, 8), "push into a full ring");
	cr_assert_eq(rdo_ring_count(&r), 8, "a failed push must not count");
	rdo_ring_fini(&r);
}

Test(ring, pop_until_empty)
{
	struct rdo_ring r = ring_of(8);
	uint32_t v = 0xdeadbeef;
	cr_assert_not(rdo_ring_pop(&r, &v), "pop from a new ring");
	cr_assert_eq(v, 0xdeadbeef, "a failed pop must not write the value");
	for (uint32_t i = 0; i < 8; i++)
		push_ok(&r, 100 + i);
	for (uint32_t i = 0; i < 8; i++) {
		pop_expect(&r, 100 + i);
		cr_assert_eq(rdo_ring_count(&r), 7 - i);
	}
	cr_assert_not(rdo_ring_pop(&r, &v), "pop from an emptied ring");
	cr_assert_eq(v, 0xdeadbeef);
	cr_assert_eq(rdo_ring_count(&r), 0);
	rdo_ring_fini(&r);
}

Test(ring, fifo_order_interleaved)
{
	struct rdo_ring r = ring_of(16);
	uint32_t next_in = 0, next_out = 0;
	/* Bursts of 1..5 pushes then 1..3 pops keep a changing backlog. */
	for (unsigned round = 0; round < 200; round++) {
		for (unsigned i = 0; i < 1 + round % 5 && rdo_ring_count(&r) < 16; i++)
			push_ok(&r, next_in++);
		for (unsigned i = 0; i < 1 + round % 3 && next_out < next_in; i++)
			pop_expect(&r, next_out++);
		cr_assert_eq(rdo_ring_count(&r), next_in - next_out);
	}
	while (next_out < next_in)
		pop_expect(&r, next_out++);
	rdo_ring_fini(&r);
}

Test(ring, wraparound_many_laps)
{
	struct rdo_ring r = ring_of(4);
	uint32_t v = 0;
	/* Filling to the brim every lap puts full and empty at every slot position. */
	for (unsigned lap = 0; lap < 1000; lap++) {
		unsigned fill = 1 + lap % 4;
		for (unsigned i = 0; i < fill; i++)
			push_ok(&r, v + i);
		if (fill == 4)
			cr_assert_not(rdo_ring_push(&r, 0), "lap %u: push into a full ring", lap);
		cr_assert_eq(rdo_ring_count(&r), fill);
		for (unsigned i = 0; i < fill; i++)
			pop_expect(&r, v + i);
		uint32_t dummy;
		cr_assert_not(rdo_ring_pop(&r, &dummy), "lap %u: pop from an empty ring", lap);
		v += fill;
	}
	rdo_ring_fini(&r);
}

Test(ring, count_tracks_push_and_pop)
{
	struct rdo_ring r = ring_of(32);
	uint32_t v;
	for (uint32_t i = 0; i < 20; i++)
		push_ok(&r, i);
	for (uint32_t i = 0; i < 5; i++)
		cr_assert(rdo_ring_pop(&r, &v));
	cr_assert_eq(rdo_ring_count(&r), 15);
	for (uint32_t i = 0; i < 17; i++)
		push_ok(&r, i);
	cr_assert_eq(rdo_ring_count(&r), 32);
	rdo_ring_fini(&r);
}

Test(ring, mpmc_each_value_once)
{
	static const struct scenario_ring_opts runs[] = {
	    {.producers = 2, .consumers = 2, .per_producer = 100000, .capacity = 16},
	    {.producers = 5, .consumers = 1, .per_producer = 20000, .capacity = 8},
	    {.producers = 1, .consumers = 3, .per_producer = 50000, .capacity = 2},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(runs); i++) {
		char why[256] = "";
		cr_assert_eq(scenario_ring_mpmc(&runs[i], why, sizeof(why)), 0,
			     "%u producers, %u consumers: %s", runs[i].producers, runs[i].consumers,
			     why);
	}
}
