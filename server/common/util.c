#include "common/util.h"

#include <errno.h>
#include <string.h>
#include <time.h>

bool rdo_endpoint_valid(const char *ep)
{
	return (strncmp(ep, "tcp://", 6) == 0 || strncmp(ep, "ipc://", 6) == 0) && ep[6];
}

int rdo_endpoints_add(struct rdo_endpoints *e, const char *ep)
{
	if (e->n >= RDO_MAX_ENDPOINTS)
		return -ENOSPC;
	rdo_strlcpy(e->ep[e->n++], ep, RDO_ENDPOINT_MAX);
	return 0;
}

/* rdo_parse_u64 of the first `len` characters of `s`, so that a size can leave its unit out. */
static int parse_u64n(const char *s, size_t len, uint64_t *out)
{
	const char *end = s + len;
	unsigned base = 10;
	if (len >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	} else if (len >= 2 && s[0] == '0' && (s[1] == 'b' || s[1] == 'B')) {
		base = 2;
		s += 2;
	}
	uint64_t v = 0;
	bool digits = false;
	for (; s < end; s++) {
		if (*s == '_' && digits && s + 1 < end && s[1] != '_')
			continue;
		unsigned d;
		if (*s >= '0' && *s <= '9')
			d = (unsigned)(*s - '0');
		else if (*s >= 'a' && *s <= 'f')
			d = (unsigned)(*s - 'a' + 10);
		else if (*s >= 'A' && *s <= 'F')
			d = (unsigned)(*s - 'A' + 10);
		else
			return -EINVAL;
		if (d >= base)
			return -EINVAL;
		if (v > (UINT64_MAX - d) / base)
			return -ERANGE;
		v = v * base + d;
		digits = true;
	}
	if (!digits)
		return -EINVAL;
	*out = v;
	return 0;
}

int rdo_parse_u64(const char *s, uint64_t *out)
{
	return parse_u64n(s, strlen(s), out);
}

static bool ends_with(const char *s, size_t len, const char *suffix)
{
	size_t n = strlen(suffix);
	return len > n && memcmp(s + len - n, suffix, n) == 0;
}

int rdo_parse_size(const char *s, uint64_t *out)
{
	/* Longest first, so that "MiB" is not read as a number ending in "M" plus "iB". */
	static const struct {
		const char *suffix;
		uint64_t scale;
	} units[] = {
	    {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30},
	    {"KB", 1000},	 {"MB", 1000000},     {"GB", 1000000000},
	    {"K", 1000},	 {"M", 1000000},      {"G", 1000000000},
	};
	size_t len = strlen(s);
	if (ends_with(s, len, "/s"))
		len -= 2;
	uint64_t scale = 1;
	for (size_t i = 0; i < RDO_ARRAY_SIZE(units); i++)
		if (ends_with(s, len, units[i].suffix)) {
			len -= strlen(units[i].suffix);
			scale = units[i].scale;
			break;
		}
	uint64_t v;
	int rc = parse_u64n(s, len, &v);
	if (rc)
		return rc;
	if (v > UINT64_MAX / scale)
		return -ERANGE;
	*out = v * scale;
	return 0;
}

uint64_t rdo_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void rdo_strlcpy(char *dst, const char *src, size_t size)
{
	if (size == 0)
		return;
	size_t n = strnlen(src, size - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}
