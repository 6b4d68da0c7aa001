#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>

#include "util.h"

/* Parse `s`; `*out` is preset so that a test sees whether a failed parse wrote it. */
static int parse(const char *s, uint64_t *out)
{
	*out = 0xdeadbeefull;
	return rdo_parse_u64(s, out);
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
	cr_assert_eq(parse("0b1" "0000000000000000000000000000000000000000000000000000000000000000",
			   &v),
		     -ERANGE);
	cr_assert_eq(v, 0xdeadbeefull);
}

Test(util, parse_garbage)
{
	static const char *const bad[] = { "",	   "0x",   "0b",  "x10", "12a",	 "0x1g", " 1",
					   "1 ",   "-1",   "+1",  "1.5", "0o17", "0x-1", "ten" };
	for (size_t i = 0; i < RDO_ARRAY_SIZE(bad); i++) {
		uint64_t v;
		cr_assert_eq(parse(bad[i], &v), -EINVAL, "\"%s\" must be refused", bad[i]);
		cr_assert_eq(v, 0xdeadbeefull, "\"%s\" wrote a result", bad[i]);
	}
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
