#include "core/ring.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

int rdo_ring_init(struct rdo_ring *r, size_t capacity)
{
	if (capacity > SIZE_MAX / 2 + 1)
		return -ENOMEM; /* beyond the largest power of two: doubling would wrap to 0 */
	size_t n = 2;
	while (n < capacity)
		n <<= 1;
	r->slots = calloc(n, sizeof(*r->slots));
	if (!r->slots)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++)
		atomic_init(&r->slots[i].seq, i);
	r->mask = n - 1;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return 0;
}

void rdo_ring_fini(struct rdo_ring *r)
{
	free(r->slots);
	r->slots = NULL;
}

/*
 * A slot whose seq equals the position is free for the producer of that
 * position; seq == position + 1 means it holds a value for the consumer of
 * that position; the consumer then sets it to position + capacity, freeing it
 * for the producer one lap later.
 */
bool rdo_ring_push(struct rdo_ring *r, uint32_t value)
{
	size_t pos = atomic_load_explicit(&r->head, memory_order_relaxed); /* a claim hint only */
	for (;;) {
		struct rdo_ring_slot *s = &r->slots[pos & r->mask];
		/* acquire: the consumer's read of the value happened before it freed the slot */
		size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		intptr_t diff = (intptr_t)seq - (intptr_t)pos;
		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(
				&r->head, &pos, pos + 1, memory_order_relaxed,
				memory_order_relaxed)) { /* the slot's seq orders the value */
				s->value = value;
				/* release: the value before the slot is marked full */
				atomic_store_explicit(&s->seq, pos + 1, memory_order_release);
				return true;
			}
		} else if (diff < 0) {
			return false; /* a lap behind: full */
		} else {
			pos = atomic_load_explicit(&r->head, memory_order_relaxed); /* hint only */
		}
	}
}

bool rdo_ring_pop(struct rdo_ring *r, uint32_t *value)
{
	size_t pos = atomic_load_explicit(&r->tail, memory_order_relaxed); /* a claim hint only */
	for (;;) {
		struct rdo_ring_slot *s = &r->slots[pos & r->mask];
		/* acquire: the producer's write of the value happened before it marked the slot */
		size_t seq = atomic_load_explicit(&s->seq, memory_order_acquire);
		intptr_t diff = (intptr_t)seq - (intptr_t)(pos + 1);
		if (diff == 0) {
			if (atomic_compare_exchange_weak_explicit(
				&r->tail, &pos, pos + 1, memory_order_relaxed,
				memory_order_relaxed)) { /* the slot's seq orders the value */
				*value = s->value;
				/* release: our read of the value before the slot is handed back */
				atomic_store_explicit(&s->seq, pos + r->mask + 1,
						      memory_order_release);
				return true;
			}
		} else if (diff < 0) {
			return false; /* nothing pushed here yet: empty */
		} else {
			pos = atomic_load_explicit(&r->tail, memory_order_relaxed); /* hint only */
		}
	}
}

size_t rdo_ring_count(const struct rdo_ring *r)
{
	/* relaxed: a statistic, exact only when the ring is quiet */
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	return head >= tail ? head - tail : 0;
}

size_t rdo_ring_capacity(const struct rdo_ring *r)
{
	return r->mask + 1;
}
