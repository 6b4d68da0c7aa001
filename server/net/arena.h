/*
 * A per-request arena: memory that is handed out piece by piece and given
 * back all at once. A request's unpacked protobuf, its reply and the strings
 * in them are allocated here and dropped together when the next request
 * starts, so serving a request costs no malloc once the first chunk exists.
 *
 * The arena lives in caller-provided memory: rdo_arena_init() sets it up
 * without allocating, the first allocation mallocs a chunk, rdo_arena_fini()
 * frees every chunk. The arena must not move between init and fini (its
 * protobuf allocator points at it). Every pointer it hands out is valid
 * until the next rdo_arena_reset() or rdo_arena_fini(), and is never freed
 * on its own. Not thread-safe: one thread uses an arena at a time.
 */
#ifndef RDO_ARENA_H
#define RDO_ARENA_H

#include <protobuf-c/protobuf-c.h>
#include <stdarg.h>
#include <stddef.h>

/* The bytes of a chunk unless one allocation needs more: room for any ordinary request. */
#define RDO_ARENA_CHUNK (256u * 1024u)

struct rdo_arena_chunk;

struct rdo_arena {
	struct rdo_arena_chunk *head; /* newest first: allocations come from it */
	size_t chunk;		      /* bytes of a new chunk */
	ProtobufCAllocator pb;	      /* rdo_arena_protobuf() */
};

/* An empty arena whose chunks hold `chunk` bytes (0: RDO_ARENA_CHUNK). Allocates nothing. */
void rdo_arena_init(struct rdo_arena *a, size_t chunk);
void rdo_arena_fini(struct rdo_arena *a);

/*
 * `n` bytes, aligned for any type (max_align_t); NULL when out of memory. An
 * allocation larger than a chunk gets a chunk of its own size.
 */
void *rdo_arena_alloc(struct rdo_arena *a, size_t n);

/*
 * `n` zeroed items of `size` bytes; NULL when out of memory or when the size
 * overflows. `n` == 0 still gives a valid pointer, to nothing.
 */
void *rdo_arena_calloc(struct rdo_arena *a, size_t n, size_t size);

/* A string formatted as printf() does; NULL when out of memory. */
char *rdo_arena_printf(struct rdo_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *rdo_arena_vprintf(struct rdo_arena *a, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Give back everything allocated. The oldest chunk, the one every ordinary
 * request fits in, is kept for the next request; the others are freed.
 */
void rdo_arena_reset(struct rdo_arena *a);

/*
 * A protobuf-c allocator over `a`, for rdo__*__unpack(): what it allocates
 * is given back with the arena; its free does nothing, so the unpacked
 * message must not be passed to free_unpacked with another allocator.
 * Valid while the arena is.
 */
ProtobufCAllocator *rdo_arena_protobuf(struct rdo_arena *a);

#endif
