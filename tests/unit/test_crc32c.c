#include <criterion/criterion.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/crc32c.h"

typedef uint32_t crc_fn(uint32_t crc, void *dst, const void *src, size_t len);

static uint32_t crc_of(crc_fn *f, const void *buf, size_t len)
{
	return f(0, NULL, buf, len);
}

/* The implementations there are on this CPU, and the dispatcher as a crc_fn. */
static uint32_t chosen(uint32_t crc, void *dst, const void *src, size_t len)
{
	return dst ? rdo_crc32c_copy(crc, dst, src, len) : rdo_crc32c(crc, src, len);
}

static size_t impls(crc_fn **f)
{
	size_t n = 0;
	f[n++] = chosen;
	f[n++] = rdo_crc32c_sw;
	if (rdo_crc32c_hw_available())
		f[n++] = rdo_crc32c_hw;
	return n;
}

/* Random bytes from a fixed seed: failures repeat. */
static void fill_random(unsigned char *p, size_t len, unsigned seed)
{
	srand(seed);
	for (size_t i = 0; i < len; i++)
		p[i] = (unsigned char)rand();
}

Test(crc32c, check_value)
{
	crc_fn *f[3];
	for (size_t i = 0, n = impls(f); i < n; i++)
		cr_expect_eq(crc_of(f[i], "123456789", 9), 0xe3069283u, "implementation %zu", i);
}

/* RFC 3720, appendix B.4. */
Test(crc32c, rfc3720_vectors)
{
	unsigned char zeros[32] = {0}, ones[32], up[32], down[32];
	memset(ones, 0xff, sizeof(ones));
	for (int i = 0; i < 32; i++) {
		up[i] = (unsigned char)i;
		down[i] = (unsigned char)(31 - i);
	}
	crc_fn *f[3];
	for (size_t i = 0, n = impls(f); i < n; i++) {
		cr_expect_eq(crc_of(f[i], zeros, 32), 0x8a9136aau, "implementation %zu", i);
		cr_expect_eq(crc_of(f[i], ones, 32), 0x62a8ab43u, "implementation %zu", i);
		cr_expect_eq(crc_of(f[i], up, 32), 0x46dd794eu, "implementation %zu", i);
		cr_expect_eq(crc_of(f[i], down, 32), 0x113fdb5cu, "implementation %zu", i);
	}
}

Test(crc32c, empty_input_keeps_the_crc)
{
	cr_expect_eq(rdo_crc32c(0, "", 0), 0);
	cr_expect_eq(rdo_crc32c(0x12345678, "x", 0), 0x12345678);
	cr_expect_eq(rdo_crc32c_sw(0xdeadbeef, NULL, "x", 0), 0xdeadbeef);
}

Test(crc32c, hardware_matches_table_at_any_length_and_alignment)
{
	if (!rdo_crc32c_hw_available())
		cr_skip_test("this CPU has no SSE4.2: only the table implementation runs");
	static unsigned char buf[9000];
	fill_random(buf, sizeof(buf), 1);
	srand(2);
	for (int i = 0; i < 2000; i++) {
		size_t align = (size_t)rand() % 16;
		size_t len = i < 64 ? (size_t)i : (size_t)rand() % (sizeof(buf) - 16);
		uint32_t seed = (uint32_t)rand();
		cr_assert_eq(rdo_crc32c_hw(seed, NULL, buf + align, len),
			     rdo_crc32c_sw(seed, NULL, buf + align, len),
			     "length %zu, alignment %zu", len, align);
	}
}

Test(crc32c, chains_at_every_split)
{
	unsigned char buf[100];
	fill_random(buf, sizeof(buf), 3);
	crc_fn *f[3];
	for (size_t i = 0, n = impls(f); i < n; i++) {
		uint32_t whole = crc_of(f[i], buf, sizeof(buf));
		for (size_t cut = 0; cut <= sizeof(buf); cut++)
			cr_assert_eq(
			    f[i](f[i](0, NULL, buf, cut), NULL, buf + cut, sizeof(buf) - cut),
			    whole, "implementation %zu, split at %zu", i, cut);
	}
}

Test(crc32c, copy_copies_exactly_and_crcs_what_it_copied)
{
	static unsigned char src[5000], dst[5016];
	fill_random(src, sizeof(src), 4);
	crc_fn *f[3];
	for (size_t i = 0, n = impls(f); i < n; i++) {
		for (size_t len = 0; len < 40; len++) {
			for (size_t a = 0; a < 8; a++) {
				memset(dst, 0xa5, sizeof(dst));
				uint32_t crc = f[i](7, dst + a, src + (len % 8), len);
				cr_assert_eq(crc, rdo_crc32c_sw(7, NULL, src + (len % 8), len));
				cr_assert_eq(memcmp(dst + a, src + (len % 8), len), 0);
				cr_assert_eq(dst[a + len], 0xa5, "wrote past the end (length %zu)",
					     len);
				cr_assert(a == 0 || dst[a - 1] == 0xa5, "wrote before the start");
			}
		}
		memset(dst, 0, sizeof(dst));
		cr_assert_eq(f[i](0, dst + 3, src, sizeof(src)), crc_of(f[i], src, sizeof(src)));
		cr_assert_eq(memcmp(dst + 3, src, sizeof(src)), 0);
	}
}

Test(crc32c, copy_chains_with_the_plain_crc)
{
	unsigned char src[300], dst[300];
	fill_random(src, sizeof(src), 5);
	uint32_t crc = rdo_crc32c(0, src, 100);
	crc = rdo_crc32c_copy(crc, dst + 100, src + 100, 200);
	cr_assert_eq(crc, rdo_crc32c(0, src, sizeof(src)));
	cr_assert_eq(memcmp(dst + 100, src + 100, 200), 0);
}
