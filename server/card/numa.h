/*
 * NUMA placement from sysfs (/sys/devices/system/node), without libnuma:
 * how many nodes the machine has, which CPUs a node has, and pinning the
 * calling thread to a node for a while. A card's DMA channel is set up
 * pinned to the card's node, so that its thread (which inherits the
 * affinity) runs there and its pool, touched as it is allocated, lies in the
 * node's memory.
 *
 * Thread-safety: every function acts on the calling thread only.
 */
#ifndef RDO_NUMA_H
#define RDO_NUMA_H

#include <sched.h>

/* Nodes with memory or CPUs online; 1 when sysfs does not say. */
int rdo_numa_nodes(void);

/* "0-3,8-11,16" (a sysfs cpulist) into `set`: 0, or -EINVAL for anything else. */
int rdo_numa_parse_cpulist(const char *list, cpu_set_t *set);

/* The CPUs of node `node`: 0, or -errno (-ENOENT: no such node). */
int rdo_numa_cpus(int node, cpu_set_t *set);

/* Pin the calling thread to node `node`, keeping its affinity in `saved`: 0 or -errno. */
int rdo_numa_enter(int node, cpu_set_t *saved);

/* Give the calling thread back the affinity rdo_numa_enter() saved. */
void rdo_numa_leave(const cpu_set_t *saved);

#endif
