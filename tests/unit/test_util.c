#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/util.h"

/* Parse `s`; `*out` is preset so that a test sees whether a failed parse wrote it. */
static int parse(const char *s, uint64_t *out)
{
	*out = 0xdeadbeefull;
	return rdo_parse_u64(s, out);
}

static int size(const char *s, uint64_t *out)
{
	*out = 0xdeadbeefull;
	return rdo_parse_size(s, out);
}

struct parsed {
	const char *s;
	uint64_t v;
};

static void expect_sizes(const struct parsed *good, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		cr_assert_eq(size(good[i].s, &v), 0, "\"%s\" must parse", good[i].s);
		cr_assert_eq(v, good[i].v, "\"%s\" gave %llu", good[i].s, (unsigned long long)v);
	}
}

/* Each of `bad` must fail with `rc` and leave the result alone. */
static void expect_refused(int (*fn)(const char *, uint64_t *), const char *const *bad, size_t n,
			   int rc)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;
		cr_assert_eq(fn(bad[i], &v), rc, "\"%s\" must be refused", bad[i]);
		cr_assert_eq(v, 0xdeadbeefull, "\"%s\" wrote a result", bad[i]);
	}
}

Test(util, parse_decimal)
{
	uint64_t v;
	cr_assert_eq(parse("0", &v), 0);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse("42", &v), 0);
	cr_assert_eq(v, 42);
	cr_assert_eq(parse("18446744073709551615", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
}

Test(util, parse_hex)
{
	uint64_t v;
	cr_assert_eq(parse("0x10", &v), 0);
	cr_assert_eq(v, 0x10);
	cr_assert_eq(parse("0XaBcD", &v), 0);
	cr_assert_eq(v, 0xabcd);
	cr_assert_eq(parse("0xffffffffffffffff", &v), 0);
	cr_assert_eq(v, UINT64_MAX);
}

Test(util, parse_binary)
{
	uint64_t v;
	cr_assert_eq(parse("0b101", &v), 0);
	cr_assert_eq(v, 5);
	cr_assert_eq(parse("0B1", &v), 0);
	cr_assert_eq(v, 1);
	cr_assert_eq(parse("0b102", &v), -EINVAL);
	cr_assert_eq(v, 0xdeadbeefull, "a failed parse must not write the result");
}

Test(util, parse_underscores)
{
	uint64_t v;
	cr_assert_eq(parse("0x5244_0000_0000_0001", &v), 0);
	cr_assert_eq(v, 0x5244000000000001ull);
	cr_assert_eq(parse("1_000_000", &v), 0);
	cr_assert_eq(v, 1000000);
	cr_assert_eq(parse("0b1111_0000", &v), 0);
	cr_assert_eq(v, 0xf0);
	cr_assert_eq(parse("_1", &v), -EINVAL, "a separator needs a digit before it");
	cr_assert_eq(parse("0x_1", &v), -EINVAL, "a separator needs a digit before it");
	cr_assert_eq(parse("_", &v), -EINVAL);
	cr_assert_eq(parse("1_", &v), -EINVAL, "a separator needs a digit after it");
	cr_assert_eq(parse("1__2", &v), -EINVAL, "one separator at a time");
}

Test(util, parse_overflow)
{
	uint64_t v;
	cr_assert_eq(parse("18446744073709551616", &v), -ERANGE);
	cr_assert_eq(parse("99999999999999999999999", &v), -ERANGE);
	cr_assert_eq(parse("0x1_0000_0000_0000_0000", &v), -ERANGE);
	cr_assert_eq(parse("0b1"
			   "0000000000000000000000000000000000000000000000000000000000000000",
			   &v),
		     -ERANGE);
	cr_assert_eq(v, 0xdeadbeefull);
}

Test(util, parse_garbage)
{
	static const char *const bad[] = {"",	"0x", "0b", "x10", "12a",  "0x1g", " 1",
					  "1 ", "-1", "+1", "1.5", "0o17", "0x-1", "ten"};
	expect_refused(parse, bad, RDO_ARRAY_SIZE(bad), -EINVAL);
}

Test(util, mask)
{
	cr_assert_eq(rdo_mask(0), 0);
	cr_assert_eq(rdo_mask(1), 1);
	cr_assert_eq(rdo_mask(8), 0xff);
	cr_assert_eq(rdo_mask(32), 0xffffffffull);
	cr_assert_eq(rdo_mask(63), 0x7fffffffffffffffull);
	cr_assert_eq(rdo_mask(64), UINT64_MAX);
	cr_assert_eq(rdo_mask(100), UINT64_MAX);
}

Test(util, strlcpy_truncates)
{
	char buf[4];
	rdo_strlcpy(buf, "abcdef", sizeof(buf));
	cr_assert_str_eq(buf, "abc");
	rdo_strlcpy(buf, "xy", sizeof(buf));
	cr_assert_str_eq(buf, "xy");
}

Test(util, now_is_monotonic)
{
	uint64_t a = rdo_now_ns(), b = rdo_now_ns();
	cr_assert_geq(b, a);
	cr_assert_gt(a, 0);
}

Test(util, size_plain_numbers)
{
	static const struct parsed good[] = {
	    {"0", 0},
	    {"4096", 4096},
	    {"0x1000", 0x1000},
	    {"1_000_000", 1000000},
	    {"0x10B", 0x10b}, /* a lone B is a hex digit, not a unit */
	    {"18446744073709551615", UINT64_MAX},
	};
	expect_sizes(good, RDO_ARRAY_SIZE(good));
}

Test(util, size_units)
{
	static const struct parsed good[] = {
	    {"1K", 1000},
	    {"1KB", 1000},
	    {"2M", 2000000},
	    {"100MB", 100000000},
	    {"3G", 3000000000ull},
	    {"3GB", 3000000000ull},
	    {"1KiB", 1024},
	    {"4KiB", 4096},
	    {"1MiB", 1048576},
	    {"256MiB", 256ull << 20},
	    {"2GiB", 2ull << 30},
	    {"0x10KiB", 16384},
	    {"1_024KiB", 1048576},
	    {"0M", 0},
	    {"17179869183GiB", 17179869183ull << 30},
	};
	expect_sizes(good, RDO_ARRAY_SIZE(good));
}

Test(util, size_rates)
{
	static const struct parsed good[] = {
	    {"100MB/s", 100000000}, {"1MiB/s", 1048576}, {"5G/s", 5000000000ull},
	    {"250/s", 250},	    {"0/s", 0},
	};
	expect_sizes(good, RDO_ARRAY_SIZE(good));
}

Test(util, size_overflow)
{
	static const char *const big[] = {
	    "18446744073709551616",
	    "17179869184GiB", /* 2^34 GiB is 2^64 bytes */
	    "18446744073709552K",
	    "0x1_0000_0000_0000_0000/s",
	};
	expect_refused(size, big, RDO_ARRAY_SIZE(big), -ERANGE);
}

Test(util, size_garbage)
{
	static const char *const bad[] = {
	    "",	    "K",   "MiB",   "/s",   "K/s",   "1k",  "1kb", "1Ki",  "1KiB/",
	    "1 K",  " 1K", "1K ",   "1KK",  "1/s/s", "1s",  "1/S", "1B",   "1T",
	    "1.5G", "-1K", "1MiBs", "1Mib", "1_K",   "0xK", "1iB", "MB/s", "1 MB/s",
	};
	expect_refused(size, bad, RDO_ARRAY_SIZE(bad), -EINVAL);
}

Test(util, endpoints_add)
{
	struct rdo_endpoints e = {.n = 0};
	for (int i = 0; i < RDO_MAX_ENDPOINTS; i++) {
		char ep[32];
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", 6000 + i);
		cr_assert_eq(rdo_endpoints_add(&e, ep), 0);
		cr_assert_eq(e.n, (size_t)i + 1);
		cr_assert_str_eq(e.ep[i], ep);
	}
	cr_assert_eq(rdo_endpoints_add(&e, "ipc:///tmp/one-too-many"), -ENOSPC);
	cr_assert_eq(e.n, RDO_MAX_ENDPOINTS, "a full list stays as it was");
	cr_assert_str_eq(e.ep[RDO_MAX_ENDPOINTS - 1], "tcp://127.0.0.1:6007");
}

Test(util, endpoints_add_truncates)
{
	struct rdo_endpoints e = {.n = 0};
	char long_ep[RDO_ENDPOINT_MAX + 50];
	memset(long_ep, 'a', sizeof(long_ep) - 1);
	long_ep[sizeof(long_ep) - 1] = '\0';
	memcpy(long_ep, "ipc://", 6);
	cr_assert_eq(rdo_endpoints_add(&e, long_ep), 0);
	cr_assert_eq(strlen(e.ep[0]), RDO_ENDPOINT_MAX - 1);
	cr_assert_eq(strncmp(e.ep[0], long_ep, RDO_ENDPOINT_MAX - 1), 0);
}

Test(util, endpoint_valid)
{
	cr_assert(rdo_endpoint_valid("tcp://127.0.0.1:5570"));
	cr_assert(rdo_endpoint_valid("ipc:///run/readoutd/ctl"));
	cr_assert_not(rdo_endpoint_valid("tcp://"), "no address");
	cr_assert_not(rdo_endpoint_valid("localhost:5570"), "no scheme");
	cr_assert_not(rdo_endpoint_valid("udp://127.0.0.1:5570"));
	cr_assert_not(rdo_endpoint_valid(""));
}
