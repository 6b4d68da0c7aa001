/*
 * Stress the ring: 2 producers and 2 consumers move 8 million values (2
 * million under ThreadSanitizer) through 64 slots, so the ring is full, empty
 * and wrapping around all the time. Plain C rather than criterion so that it
 * also runs under ThreadSanitizer (make tsan). Exits 0, or aborts naming the
 * failed check.
 */
#include <stdio.h>

#include "stress/scenario.h"

int main(void)
{
	const struct scenario_ring_opts o = {
	    .producers = 2,
	    .consumers = 2,
	    .per_producer = 4000000 / SCENARIO_STRESS_DIVISOR,
	    .capacity = 64,
	};
	char why[256];
	double start = scenario_now();
	scenario_assert(scenario_ring_mpmc(&o, why, sizeof(why)), "stress_ring", why);
	printf("stress_ring: %u values through %u producers and %u consumers in %.2f s\n",
	       o.producers * o.per_producer, o.producers, o.consumers, scenario_now() - start);
	return 0;
}
