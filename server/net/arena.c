#include "net/arena.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct rdo_arena_chunk {
	struct rdo_arena_chunk *next; /* older */
	size_t cap, used;
	max_align_t data[];
};

#define ALIGN sizeof(max_align_t)

static void *pb_alloc(void *data, size_t size)
{
	return rdo_arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
	(void)data;
	(void)p; /* given back with the arena */
}

void rdo_arena_init(struct rdo_arena *a, size_t chunk)
{
	*a = (struct rdo_arena){
	    .chunk = chunk ? chunk : RDO_ARENA_CHUNK,
	    .pb = {.alloc = pb_alloc, .free = pb_free, .allocator_data = a},
	};
}

void rdo_arena_fini(struct rdo_arena *a)
{
	rdo_arena_reset(a);
	free(a->head);
	a->head = NULL;
}

/*
 * A chunk that cannot take `n` is left with its tail unused: requests are
 * small against a chunk, and a new chunk is rare once the first exists.
 */
void *rdo_arena_alloc(struct rdo_arena *a, size_t n)
{
	if (n > SIZE_MAX - sizeof(struct rdo_arena_chunk) - ALIGN)
		return NULL;
	n = (n + ALIGN - 1) & ~(ALIGN - 1);
	struct rdo_arena_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > a->chunk ? n : a->chunk;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

void *rdo_arena_calloc(struct rdo_arena *a, size_t n, size_t size)
{
	if (size && n > SIZE_MAX / size)
		return NULL;
	size_t bytes = n * size;
	void *p = rdo_arena_alloc(a, bytes ? bytes : 1);
	if (p)
		memset(p, 0, bytes);
	return p;
}

char *rdo_arena_vprintf(struct rdo_arena *a, const char *fmt, va_list ap)
{
	va_list again;
	va_copy(again, ap);
	int n = vsnprintf(NULL, 0, fmt, ap);
	char *s = n < 0 ? NULL : rdo_arena_alloc(a, (size_t)n + 1);
	if (s)
		vsnprintf(s, (size_t)n + 1, fmt, again);
	va_end(again);
	return s;
}

char *rdo_arena_printf(struct rdo_arena *a, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = rdo_arena_vprintf(a, fmt, ap);
	va_end(ap);
	return s;
}

void rdo_arena_reset(struct rdo_arena *a)
{
	while (a->head && a->head->next) {
		struct rdo_arena_chunk *c = a->head;
		a->head = c->next;
		free(c);
	}
	if (a->head)
		a->head->used = 0;
}

ProtobufCAllocator *rdo_arena_protobuf(struct rdo_arena *a)
{
	return &a->pb;
}
