#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "common/page.h"
#include "common/util.h"

#define SLOT 1024u
#define FULL (SLOT - 32u)

static unsigned char page[RDO_PAGE_MAX];

static enum rdo_page_verdict check(size_t avail, unsigned link, size_t *bad)
{
	*bad = SIZE_MAX;
	return rdo_page_check(page, avail, link, true, bad);
}

Test(page, round_trip)
{
	size_t bad;
	rdo_page_write(page, 3, 77, SLOT, FULL, 123456789);
	cr_assert_eq(check(SLOT, 3, &bad), RDO_PAGE_OK);
	struct rdo_page_header h;
	memcpy(&h, page, sizeof(h));
	cr_assert_eq(h.magic, RDO_PAGE_MAGIC);
	cr_assert_eq(h.version, RDO_PAGE_VERSION);
	cr_assert_eq(h.link, 3);
	cr_assert_eq(h.slot, SLOT);
	cr_assert_eq(h.payload, FULL);
	cr_assert_eq(h.counter, 77);
	cr_assert_eq(h.timestamp_ns, 123456789);
}

Test(page, patterns_differ_between_pages_and_links)
{
	unsigned char other[SLOT];
	rdo_page_write(page, 0, 1, SLOT, FULL, 0);
	rdo_page_write(other, 0, 2, SLOT, FULL, 0);
	cr_assert_neq(memcmp(page + 32, other + 32, FULL), 0, "page counter feeds the pattern");
	rdo_page_write(other, 1, 1, SLOT, FULL, 0);
	cr_assert_neq(memcmp(page + 32, other + 32, FULL), 0, "link feeds the pattern");
}

Test(page, every_payload_byte_is_checked)
{
	size_t bad;
	for (size_t off = 32; off < SLOT; off += 37) {
		rdo_page_write(page, 1, 5, SLOT, FULL, 0);
		page[off] ^= 0x40;
		cr_assert_eq(check(SLOT, 1, &bad), RDO_PAGE_BAD_PAYLOAD, "flip at %zu", off);
		cr_assert_eq(bad, off, "the first bad byte is at %zu, not %zu", off, bad);
	}
}

Test(page, payload_skipped_without_check)
{
	size_t bad = SIZE_MAX;
	rdo_page_write(page, 1, 5, SLOT, FULL, 0);
	page[100] ^= 1;
	cr_assert_eq(rdo_page_check(page, SLOT, 1, false, &bad), RDO_PAGE_OK);
	cr_assert_eq(bad, SIZE_MAX);
}

Test(page, padding_is_not_checked)
{
	size_t bad;
	rdo_page_write(page, 2, 9, SLOT, 100, 0);
	memset(page + 32 + 100, 0xa5, SLOT - 132);
	cr_assert_eq(check(SLOT, 2, &bad), RDO_PAGE_OK);
}

Test(page, tail_bytes_not_a_multiple_of_8)
{
	size_t bad;
	for (uint32_t payload = 1; payload <= 24; payload++) {
		memset(page, 0, SLOT);
		rdo_page_write(page, 4, payload, SLOT, payload, 0);
		cr_assert_eq(check(SLOT, 4, &bad), RDO_PAGE_OK, "payload %u", payload);
		page[32 + payload - 1] ^= 0x80;
		cr_assert_eq(check(SLOT, 4, &bad), RDO_PAGE_BAD_PAYLOAD, "payload %u", payload);
		cr_assert_eq(bad, 32 + payload - 1);
		cr_assert_eq(page[32 + payload], 0, "payload %u: wrote past its end", payload);
	}
}

Test(page, header_only_leaves_payload_alone)
{
	size_t bad;
	memset(page, 0xee, SLOT);
	rdo_page_write_header(page, 6, 1, SLOT, FULL, 0);
	cr_assert_eq(page[32], 0xee);
	cr_assert_eq(rdo_page_check(page, SLOT, 6, false, &bad), RDO_PAGE_OK);
	cr_assert_eq(check(SLOT, 6, &bad), RDO_PAGE_BAD_PAYLOAD);
	cr_assert_eq(bad, 32);
}

Test(page, verdicts)
{
	size_t bad;
	rdo_page_write(page, 1, 0, SLOT, FULL, 0);
	cr_assert_eq(check(31, 1, &bad), RDO_PAGE_TRUNCATED, "less than a header");
	cr_assert_eq(check(SLOT - 1, 1, &bad), RDO_PAGE_TRUNCATED, "less than its slot");
	cr_assert_eq(check(SLOT, 2, &bad), RDO_PAGE_BAD_LINK);

	struct rdo_page_header h;
	memcpy(&h, page, sizeof(h));
	struct rdo_page_header bent = h;
	bent.magic ^= 1;
	memcpy(page, &bent, sizeof(bent));
	cr_assert_eq(check(SLOT, 1, &bad), RDO_PAGE_BAD_MAGIC);
	bent = h;
	bent.version = 2;
	memcpy(page, &bent, sizeof(bent));
	cr_assert_eq(check(SLOT, 1, &bad), RDO_PAGE_BAD_VERSION);
	bent = h;
	bent.slot = RDO_PAGE_MIN - 1;
	memcpy(page, &bent, sizeof(bent));
	cr_assert_eq(check(SLOT, 1, &bad), RDO_PAGE_BAD_SIZE, "slot below the minimum");
	bent.slot = RDO_PAGE_MAX + 8;
	memcpy(page, &bent, sizeof(bent));
	cr_assert_eq(check(RDO_PAGE_MAX, 1, &bad), RDO_PAGE_BAD_SIZE, "slot above the maximum");
	bent = h;
	bent.payload = SLOT - 31;
	memcpy(page, &bent, sizeof(bent));
	cr_assert_eq(check(SLOT, 1, &bad), RDO_PAGE_BAD_SIZE, "payload past the slot");
}

Test(page, verdict_names)
{
	for (int v = RDO_PAGE_OK; v <= RDO_PAGE_BAD_PAYLOAD; v++)
		cr_assert_str_neq(rdo_page_verdict_name((enum rdo_page_verdict)v),
				  "unknown verdict");
	cr_assert_str_eq(rdo_page_verdict_name((enum rdo_page_verdict)99), "unknown verdict");
	cr_assert_str_eq(rdo_page_verdict_name(RDO_PAGE_BAD_MAGIC), "bad magic");
}

Test(page, variable_sizes_stay_in_range)
{
	static const uint32_t slots[] = {RDO_PAGE_MIN, 256, 4096, RDO_PAGE_MAX};
	size_t bad;
	for (size_t s = 0; s < RDO_ARRAY_SIZE(slots); s++) {
		uint32_t lo = UINT32_MAX, hi = 0;
		for (uint64_t c = 0; c < 2000; c++) {
			uint32_t p = rdo_page_variable_payload(c, slots[s]);
			cr_assert(p >= 8 && p <= slots[s] - 32, "slot %u counter %llu: payload %u",
				  slots[s], (unsigned long long)c, p);
			cr_assert_eq(p, rdo_page_variable_payload(c, slots[s]), "deterministic");
			lo = p < lo ? p : lo;
			hi = p > hi ? p : hi;
			if (c < 50) {
				rdo_page_write(page, 0, c, slots[s], p, c);
				cr_assert_eq(check(slots[s], 0, &bad), RDO_PAGE_OK);
			}
		}
		cr_assert_lt(lo, hi, "slot %u: sizes vary", slots[s]);
	}
}
