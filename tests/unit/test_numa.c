/* NUMA placement from sysfs: cpulists, and pinning the calling thread to a node. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>

#include "card/numa.h"

Test(numa, parses_cpulists)
{
	cpu_set_t s;
	cr_assert_eq(rdo_numa_parse_cpulist("0-3,8-9,16\n", &s), 0);
	cr_assert_eq(CPU_COUNT(&s), 7);
	cr_assert(CPU_ISSET(0, &s) && CPU_ISSET(3, &s) && CPU_ISSET(9, &s) && CPU_ISSET(16, &s));
	cr_assert_not(CPU_ISSET(4, &s));
	cr_assert_eq(rdo_numa_parse_cpulist("5", &s), 0);
	cr_assert_eq(CPU_COUNT(&s), 1);
	static const char *const bad[] = {"", "\n", "a", "3-1", "1-", "1,,2", "0-99999", "1;2"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(rdo_numa_parse_cpulist(bad[i], &s), -EINVAL, "\"%s\" taken", bad[i]);
}

/* Node 0 exists on every Linux machine with sysfs; a node past the last does not. */
Test(numa, enter_pins_to_the_node_and_leave_restores)
{
	cr_assert_geq(rdo_numa_nodes(), 1);
	cpu_set_t node0, before, saved, now;
	if (rdo_numa_cpus(0, &node0) != 0) {
		cr_log_warn("skipped: no /sys/devices/system/node/node0/cpulist on this machine");
		cr_skip_test("no /sys/devices/system/node/node0/cpulist on this machine");
	}
	pthread_getaffinity_np(pthread_self(), sizeof(before), &before);
	cr_assert_eq(rdo_numa_enter(0, &saved), 0);
	pthread_getaffinity_np(pthread_self(), sizeof(now), &now);
	cr_assert(CPU_EQUAL(&now, &node0), "pinned to node 0's CPUs");
	cr_assert(CPU_EQUAL(&saved, &before));
	rdo_numa_leave(&saved);
	pthread_getaffinity_np(pthread_self(), sizeof(now), &now);
	cr_assert(CPU_EQUAL(&now, &before), "affinity restored");
	cr_assert_eq(rdo_numa_enter(4095, &saved), -ENOENT);
}
