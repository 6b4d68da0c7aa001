#include "common/crc32c.h"

#include <pthread.h>
#include <string.h>

#ifdef __x86_64__
#include <nmmintrin.h>
#endif

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the slicing-by-8 loop takes a word's first byte from its low bits"
#endif

#define POLY 0x82f63b78u /* 0x1edc6f41, bit-reversed: the CRC shifts right */

typedef uint32_t crc_fn(uint32_t crc, void *dst, const void *src, size_t len);

/*
 * table[0][b]: the CRC step of byte b; table[k][b]: the same followed by k
 * zero bytes, so that eight lookups advance the CRC by a whole word.
 */
static uint32_t table[8][256];
static crc_fn *chosen;
/* Orders the table and `chosen` before every use. */
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void init(void)
{
	for (uint32_t b = 0; b < 256; b++) {
		uint32_t c = b;
		for (int i = 0; i < 8; i++)
			c = c & 1 ? (c >> 1) ^ POLY : c >> 1;
		table[0][b] = c;
	}
	for (int k = 1; k < 8; k++)
		for (int b = 0; b < 256; b++)
			table[k][b] = (table[k - 1][b] >> 8) ^ table[0][table[k - 1][b] & 0xff];
	chosen = rdo_crc32c_hw_available() ? rdo_crc32c_hw : rdo_crc32c_sw;
}

uint32_t rdo_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&once, init);
	return chosen(crc, NULL, buf, len);
}

uint32_t rdo_crc32c_copy(uint32_t crc, void *dst, const void *src, size_t len)
{
	pthread_once(&once, init);
	return chosen(crc, dst, src, len);
}

/*
 * The word at `s`, also stored at `*d` (which then moves on) when copying:
 * through memcpy, so no load is misaligned, and one load serves both.
 */
static inline uint64_t take_word(unsigned char **d, const unsigned char *s)
{
	uint64_t w;
	memcpy(&w, s, 8);
	if (*d) {
		memcpy(*d, &w, 8);
		*d += 8;
	}
	return w;
}

static inline unsigned char take_byte(unsigned char **d, const unsigned char *s)
{
	if (*d)
		*(*d)++ = *s;
	return *s;
}

uint32_t rdo_crc32c_sw(uint32_t crc, void *dst, const void *src, size_t len)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	pthread_once(&once, init);
	crc = ~crc;
	for (; len >= 8; len -= 8, s += 8) {
		uint64_t w = take_word(&d, s) ^ crc;
		crc = table[7][w & 0xff] ^ table[6][(w >> 8) & 0xff] ^ table[5][(w >> 16) & 0xff] ^
		      table[4][(w >> 24) & 0xff] ^ table[3][(w >> 32) & 0xff] ^
		      table[2][(w >> 40) & 0xff] ^ table[1][(w >> 48) & 0xff] ^ table[0][w >> 56];
	}
	for (; len; len--, s++)
		crc = table[0][(crc ^ take_byte(&d, s)) & 0xff] ^ (crc >> 8);
	return ~crc;
}

#ifdef __x86_64__
bool rdo_crc32c_hw_available(void)
{
	/* Needed when the first CRC is taken from another constructor. */
	__builtin_cpu_init();
	return __builtin_cpu_supports("sse4.2");
}

__attribute__((target("sse4.2"))) uint32_t rdo_crc32c_hw(uint32_t crc, void *dst, const void *src,
							 size_t len)
{
	unsigned char *d = dst;
	const unsigned char *s = src;
	uint64_t c = ~crc;
	for (; len >= 8; len -= 8, s += 8)
		c = _mm_crc32_u64(c, take_word(&d, s));
	uint32_t c32 = (uint32_t)c;
	for (; len; len--, s++)
		c32 = _mm_crc32_u8(c32, take_byte(&d, s));
	return ~c32;
}
#else
bool rdo_crc32c_hw_available(void)
{
	return false;
}

uint32_t rdo_crc32c_hw(uint32_t crc, void *dst, const void *src, size_t len)
{
	return rdo_crc32c_sw(crc, dst, src, len);
}
#endif
