/*
 * The per-request arena: alignment, chunks and their reuse, and protobuf-c
 * unpacking through its allocator.
 */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "net/arena.h"
#include "proto/readout.pb-c.h"

#define SMALL_CHUNK 1024

static struct rdo_arena arena;

static void setup(void)
{
	rdo_arena_init(&arena, SMALL_CHUNK);
}

static void teardown(void)
{
	rdo_arena_fini(&arena);
}

TestSuite(arena, .init = setup, .fini = teardown);

static bool aligned(const void *p)
{
	return (uintptr_t)p % alignof(max_align_t) == 0;
}

Test(arena, init_allocates_nothing)
{
	struct rdo_arena a;
	rdo_arena_init(&a, 0);
	cr_assert_null(a.head);
	cr_assert_eq(a.chunk, RDO_ARENA_CHUNK);
	rdo_arena_fini(&a);
	cr_assert_null(a.head);
}

Test(arena, allocations_are_aligned_and_apart)
{
	static const size_t sizes[] = {1, 3, 8, 15, 16, 17, 31, 33, 100, 0, 7};
	unsigned char *p[RDO_ARRAY_SIZE(sizes)];
	for (size_t i = 0; i < RDO_ARRAY_SIZE(sizes); i++) {
		p[i] = rdo_arena_alloc(&arena, sizes[i]);
		cr_assert_not_null(p[i]);
		cr_assert(aligned(p[i]), "allocation %zu (%zu bytes) at %p", i, sizes[i],
			  (void *)p[i]);
		memset(p[i], (int)i + 1, sizes[i]);
	}
	for (size_t i = 0; i < RDO_ARRAY_SIZE(sizes); i++)
		for (size_t j = 0; j < sizes[i]; j++)
			cr_assert_eq(p[i][j], i + 1, "allocation %zu byte %zu was overwritten", i,
				     j);
}

Test(arena, grows_past_a_chunk)
{
	enum { N = 40, SIZE = 100 }; /* 40 x 112 bytes: several 1 KiB chunks */
	unsigned char *p[N];
	for (int i = 0; i < N; i++) {
		p[i] = rdo_arena_alloc(&arena, SIZE);
		cr_assert_not_null(p[i]);
		cr_assert(aligned(p[i]));
		memset(p[i], i, SIZE);
	}
	for (int i = 0; i < N; i++)
		for (int j = 0; j < SIZE; j++)
			cr_assert_eq(p[i][j], i, "allocation %d changed when the arena grew", i);
}

Test(arena, allocation_larger_than_a_chunk)
{
	unsigned char *small = rdo_arena_alloc(&arena, 16);
	unsigned char *big = rdo_arena_alloc(&arena, 5 * SMALL_CHUNK);
	cr_assert_not_null(small);
	cr_assert_not_null(big);
	cr_assert(aligned(big));
	memset(big, 0xa5, 5 * SMALL_CHUNK);
	memset(small, 0x5a, 16);
	cr_assert_eq(big[0], 0xa5);
	cr_assert_eq(big[5 * SMALL_CHUNK - 1], 0xa5);
	cr_assert_not_null(rdo_arena_alloc(&arena, 16), "a chunk follows the large one");
}

Test(arena, reset_keeps_the_first_chunk)
{
	void *first = rdo_arena_alloc(&arena, 64);
	cr_assert_not_null(first);
	for (int i = 0; i < 50; i++)
		cr_assert_not_null(rdo_arena_alloc(&arena, 200));
	rdo_arena_reset(&arena);
	cr_assert_not_null(arena.head, "the first chunk stays");
	cr_assert_eq(rdo_arena_alloc(&arena, 64), first, "the next request starts in it again");
	rdo_arena_reset(&arena);
	rdo_arena_reset(&arena);
	cr_assert_eq(rdo_arena_alloc(&arena, 8), first);
}

Test(arena, reset_of_an_empty_arena)
{
	rdo_arena_reset(&arena);
	cr_assert_null(arena.head);
	cr_assert_not_null(rdo_arena_alloc(&arena, 1));
}

Test(arena, calloc_zeroes_and_checks_overflow)
{
	unsigned char *dirty = rdo_arena_alloc(&arena, 256);
	memset(dirty, 0xff, 256);
	rdo_arena_reset(&arena);
	uint32_t *v = rdo_arena_calloc(&arena, 64, sizeof(*v));
	cr_assert_eq((void *)v, (void *)dirty, "reused memory");
	for (int i = 0; i < 64; i++)
		cr_assert_eq(v[i], 0);
	cr_assert_null(rdo_arena_calloc(&arena, SIZE_MAX / 2, 4));
	cr_assert_null(rdo_arena_alloc(&arena, SIZE_MAX));
	cr_assert_null(rdo_arena_alloc(&arena, SIZE_MAX - 8));
	void *none = rdo_arena_calloc(&arena, 0, sizeof(*v));
	void *none2 = rdo_arena_calloc(&arena, 0, sizeof(*v));
	cr_assert_not_null(none, "zero items still give a pointer");
	cr_assert_neq(none, none2);
}

Test(arena, printf)
{
	char *s = rdo_arena_printf(&arena, "%s.%s = 0x%x", "id", "scratch", 0x1234);
	cr_assert_str_eq(s, "id.scratch = 0x1234");
	char big[3 * SMALL_CHUNK];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	char *t = rdo_arena_printf(&arena, "<%s>", big);
	cr_assert_not_null(t);
	cr_assert_eq(strlen(t), sizeof(big) + 1);
	cr_assert_eq(t[0], '<');
	cr_assert_eq(t[sizeof(big)], '>');
	cr_assert_str_eq(s, "id.scratch = 0x1234", "the first string is intact");
}

/* A request packed with the default allocator, unpacked into the arena. */
static size_t pack_read(uint8_t *buf, size_t cap, char **names, size_t n, uint64_t id)
{
	Rdo__RegReadRequest rr = RDO__REG_READ_REQUEST__INIT;
	rr.names = names;
	rr.n_names = n;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.version = 1;
	rq.id = id;
	rq.card = "sim0";
	rq.cmd_case = RDO__REQUEST__CMD_REG_READ;
	rq.reg_read = &rr;
	size_t len = rdo__request__get_packed_size(&rq);
	cr_assert_leq(len, cap);
	return rdo__request__pack(&rq, buf);
}

Test(arena, protobuf_unpacks_into_the_arena)
{
	char *names[] = {"id.identity", "id.scratch", "ctrl.config.led"};
	uint8_t buf[256];
	size_t len = pack_read(buf, sizeof(buf), names, 3, 42);
	ProtobufCAllocator *pba = rdo_arena_protobuf(&arena);
	cr_assert_not_null(pba);
	cr_assert_null(arena.head);
	for (int round = 0; round < 3; round++) {
		rdo_arena_reset(&arena);
		Rdo__Request *rq = rdo__request__unpack(pba, len, buf);
		cr_assert_not_null(rq);
		cr_assert_not_null(arena.head, "the message is in the arena");
		cr_assert_eq(rq->id, 42);
		cr_assert_str_eq(rq->card, "sim0");
		cr_assert_eq(rq->cmd_case, RDO__REQUEST__CMD_REG_READ);
		cr_assert_eq(rq->reg_read->n_names, 3);
		for (size_t i = 0; i < 3; i++)
			cr_assert_str_eq(rq->reg_read->names[i], names[i]);
		rdo__request__free_unpacked(rq, pba); /* frees nothing: the arena does */
	}
}

Test(arena, protobuf_message_larger_than_a_chunk)
{
	enum { N = 200 };
	char *names[N];
	char storage[N][16];
	for (int i = 0; i < N; i++) {
		snprintf(storage[i], sizeof(storage[i]), "bank.reg%d", i);
		names[i] = storage[i];
	}
	static uint8_t buf[8192];
	size_t len = pack_read(buf, sizeof(buf), names, N, 7);
	Rdo__Request *rq = rdo__request__unpack(rdo_arena_protobuf(&arena), len, buf);
	cr_assert_not_null(rq);
	cr_assert_eq(rq->reg_read->n_names, N);
	for (int i = 0; i < N; i++)
		cr_assert_str_eq(rq->reg_read->names[i], storage[i]);
}

Test(arena, protobuf_refuses_garbage)
{
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x01, 0x02};
	cr_assert_null(rdo__request__unpack(rdo_arena_protobuf(&arena), sizeof(garbage), garbage));
	rdo_arena_reset(&arena);
	cr_assert_not_null(rdo_arena_alloc(&arena, 1), "the arena serves the next request");
}
