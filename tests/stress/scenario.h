/*
 * Concurrent scenarios for the ring and the buffer pool, shared by the unit
 * tests (small runs under criterion) and the stress programs (long runs, also
 * built with ThreadSanitizer, where criterion cannot run).
 *
 * Each scenario starts its threads, runs them to completion and checks the
 * outcome. It returns 0, or -1 with `why` (`len` bytes, caller's) naming the
 * first check that failed; the other threads then stop early. Each call owns
 * its threads and memory, so calls may run concurrently.
 */
#ifndef RDO_TEST_SCENARIO_H
#define RDO_TEST_SCENARIO_H

#include <stddef.h>
#include <stdint.h>

#define SCENARIO_MAX_THREADS 8

/* ThreadSanitizer runs these some 30 times slower: stress programs do less under it. */
#ifdef __SANITIZE_THREAD__
#define SCENARIO_STRESS_DIVISOR 4
#else
#define SCENARIO_STRESS_DIVISOR 1
#endif

/*
 * Producers push the values 0 .. producers * per_producer - 1 (producer p the
 * ones with value % producers == p, in increasing order) into one ring of
 * `capacity`; consumers pop until all are popped. Checks every value is
 * popped exactly once, each producer's values reach each consumer in order,
 * and the count and sum of what was popped.
 */
struct scenario_ring_opts {
	unsigned producers;
	unsigned consumers;
	uint32_t per_producer;
	size_t capacity;
};
int scenario_ring_mpmc(const struct scenario_ring_opts *o, char *why, size_t len);

/*
 * A DMA thread gets superpages from a pool over rdo_hostmem_alloc memory,
 * stamps each with a sequence number (in its data and metadata), takes one
 * reference per sink and hands it to every sink through that sink's ring,
 * then drops its own reference. Each sink holds up to `hold_max` superpages
 * and puts them back in random order at random times. Checks that a
 * superpage's stamp never changes while a sink holds it (so it was not handed
 * out again while referenced), that sinks see increasing sequences, and that
 * every superpage is free with no reference at the end.
 */
struct scenario_pool_opts {
	unsigned sinks;
	unsigned superpages;
	size_t superpage_size;
	uint64_t handoffs;
	unsigned hold_max;
};
int scenario_pool_sinks(const struct scenario_pool_opts *o, char *why, size_t len);

/* For the stress programs: seconds on the monotonic clock. */
double scenario_now(void);

/* For the stress programs: unless `rc` is 0, print "`name`: `why`" and abort. */
void scenario_assert(int rc, const char *name, const char *why);

#endif
