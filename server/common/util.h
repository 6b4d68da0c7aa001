/*
 * Small helpers shared by the server and the clients. Thread-safe.
 */
#ifndef RDO_UTIL_H
#define RDO_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDO_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* The struct of `type` whose `member` is at `ptr`: a backend's state from its embedded base. */
#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif
#define RDO_VERSION	     "0.1.0"
#define RDO_PROTOCOL_VERSION 1

#define RDO_MAX_ENDPOINTS 8
#define RDO_ENDPOINT_MAX  256

/*
 * Each surface's well-known endpoint on this host: where readoutd binds by
 * default and where its clients connect when not told otherwise.
 */
#define RDO_DEFAULT_CONTROL_TCP	 "tcp://127.0.0.1:5570"
#define RDO_DEFAULT_LIVE_TCP	 "tcp://127.0.0.1:5571"
#define RDO_DEFAULT_LOSSLESS_TCP "tcp://127.0.0.1:5572"
#define RDO_DEFAULT_STATUS_TCP	 "tcp://127.0.0.1:5573"

/* The endpoints a socket binds: tcp://HOST:PORT or ipc://PATH. Plain value. */
struct rdo_endpoints {
	char ep[RDO_MAX_ENDPOINTS][RDO_ENDPOINT_MAX];
	size_t n;
};

/* Is `ep` an endpoint of the forms readoutd speaks: tcp://HOST:PORT or ipc://PATH? */
bool rdo_endpoint_valid(const char *ep);

/* Append `ep` (truncated to fit): 0, or -ENOSPC when the list is full. */
int rdo_endpoints_add(struct rdo_endpoints *e, const char *ep);

/*
 * Parse an unsigned integer: decimal, 0x hex or 0b binary, with optional '_'
 * digit separators ("0x1234_5678"). The whole string must be the number.
 * 0, or -EINVAL (not a number) / -ERANGE (more than 64 bits).
 */
int rdo_parse_u64(const char *s, uint64_t *out);

/* Mask of the `width` low bits; width 64 gives all ones. */
static inline uint64_t rdo_mask(unsigned width)
{
	return width >= 64 ? UINT64_MAX : ((uint64_t)1 << width) - 1;
}

/* Do `len` bytes at `off` lie inside a region of `size` bytes? Never overflows. */
static inline bool rdo_range_fits(uint64_t size, uint64_t off, uint64_t len)
{
	return off < size && size - off >= len;
}

/*
 * Parse a size: an integer as rdo_parse_u64, optionally followed by a unit:
 * K, M, G (powers of 1000) or KiB, MiB, GiB (powers of 1024), and for rates
 * a trailing "/s" ("100MB/s" = 100000000, "1MiB" = 1048576). 0, or -EINVAL /
 * -ERANGE.
 */
int rdo_parse_size(const char *s, uint64_t *out);

/* Monotonic time in nanoseconds. */
uint64_t rdo_now_ns(void);

/* Copy a string into `dst` of `size` bytes: truncates, always terminates. */
void rdo_strlcpy(char *dst, const char *src, size_t size);

#endif
