/*
 * Stress the buffer pool: one DMA thread hands 2 million superpages (500000
 * under ThreadSanitizer) from a pool of 16 to 3 sinks, which each hold up to
 * 4 and put them back in random order, as readoutd's DMA channel and sinks
 * do. Plain C rather than criterion so that it also runs under
 * ThreadSanitizer (make tsan). Exits 0, or aborts naming the failed check.
 */
#include <stdio.h>

#include "common/log.h"
#include "stress/scenario.h"

int main(void)
{
	struct scenario_pool_opts o = {.sinks = 3, .superpages = 16, .superpage_size = 4096};
	o.handoffs = 2000000 / SCENARIO_STRESS_DIVISOR;
	o.hold_max = 4;
	rdo_log_set_level(LOG_ERR); /* no warning about unlocked memory */
	char why[256];
	double start = scenario_now();
	scenario_assert(scenario_pool_sinks(&o, why, sizeof(why)), "stress_pool", why);
	printf("stress_pool: %llu superpages through %u sinks in %.2f s\n",
	       (unsigned long long)o.handoffs, o.sinks, scenario_now() - start);
	return 0;
}
