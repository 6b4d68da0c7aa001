/*
 * A bounded lock-free queue of 32-bit values (superpage indices), safe for
 * any number of producer and consumer threads (Vyukov's bounded MPMC queue:
 * each slot carries a sequence number that says whose turn it is).
 *
 * The ring lives in caller-provided struct memory: rdo_ring_init() allocates
 * its slots, rdo_ring_fini() frees them. Push and pop never block and never
 * allocate; they fail when the ring is full or empty.
 */
#ifndef RDO_RING_H
#define RDO_RING_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct rdo_ring_slot {
	_Atomic size_t seq;
	uint32_t value;
};

struct rdo_ring {
	struct rdo_ring_slot *slots;
	size_t mask;
	alignas(64) _Atomic size_t head; /* next slot to push */
	alignas(64) _Atomic size_t tail; /* next slot to pop */
};

/* Room for at least `capacity` values (a power of two, at least 2): 0 or -ENOMEM. */
int rdo_ring_init(struct rdo_ring *r, size_t capacity);
void rdo_ring_fini(struct rdo_ring *r);

bool rdo_ring_push(struct rdo_ring *r, uint32_t value);
bool rdo_ring_pop(struct rdo_ring *r, uint32_t *value);

/* Values in the ring; exact when no thread is pushing or popping. */
size_t rdo_ring_count(const struct rdo_ring *r);
size_t rdo_ring_capacity(const struct rdo_ring *r);

#endif
