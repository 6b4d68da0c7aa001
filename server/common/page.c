#include "common/page.h"

#include <string.h>

/* Page `counter` of `link` starts its pattern here; word i is base + i. */
static uint64_t pattern_base(unsigned link, uint64_t counter)
{
	return counter * 0x9e3779b97f4a7c15ull + ((uint64_t)link << 56);
}

uint32_t rdo_page_variable_payload(uint64_t counter, uint32_t slot)
{
	uint64_t h = (counter + 1) * 0xbf58476d1ce4e5b9ull;
	h ^= h >> 31;
	uint32_t max = slot - (uint32_t)sizeof(struct rdo_page_header);
	return 8 + (uint32_t)(h % (max - 7));
}

void rdo_page_write_header(void *dst, unsigned link, uint64_t counter, uint32_t slot,
			   uint32_t payload, uint64_t timestamp_ns)
{
	struct rdo_page_header h = {
	    .magic = RDO_PAGE_MAGIC,
	    .version = RDO_PAGE_VERSION,
	    .link = (uint16_t)link,
	    .slot = slot,
	    .payload = payload,
	    .counter = counter,
	    .timestamp_ns = timestamp_ns,
	};
	memcpy(dst, &h, sizeof(h));
}

void rdo_page_write(void *dst, unsigned link, uint64_t counter, uint32_t slot, uint32_t payload,
		    uint64_t timestamp_ns)
{
	rdo_page_write_header(dst, link, counter, slot, payload, timestamp_ns);
	unsigned char *out = (unsigned char *)dst + sizeof(struct rdo_page_header);
	uint64_t base = pattern_base(link, counter);
	size_t words = payload / 8;
	for (size_t i = 0; i < words; i++) {
		uint64_t w = base + i;
		memcpy(out + 8 * i, &w, 8);
	}
	uint64_t tail = base + words;
	memcpy(out + 8 * words, &tail, payload % 8);
}

enum rdo_page_verdict rdo_page_check(const void *p, size_t avail, unsigned link, bool check_payload,
				     size_t *bad_offset)
{
	struct rdo_page_header h;
	if (avail < sizeof(h))
		return RDO_PAGE_TRUNCATED;
	memcpy(&h, p, sizeof(h));
	if (h.magic != RDO_PAGE_MAGIC)
		return RDO_PAGE_BAD_MAGIC;
	if (h.version != RDO_PAGE_VERSION)
		return RDO_PAGE_BAD_VERSION;
	if (h.link != link)
		return RDO_PAGE_BAD_LINK;
	if (h.slot < RDO_PAGE_MIN || h.slot > RDO_PAGE_MAX || h.payload > h.slot - sizeof(h))
		return RDO_PAGE_BAD_SIZE;
	if (h.slot > avail)
		return RDO_PAGE_TRUNCATED;
	if (!check_payload)
		return RDO_PAGE_OK;
	const unsigned char *in = (const unsigned char *)p + sizeof(h);
	uint64_t base = pattern_base(link, h.counter);
	size_t words = h.payload / 8;
	for (size_t i = 0; i < words; i++) {
		uint64_t w;
		memcpy(&w, in + 8 * i, 8);
		if (w != base + i) {
			uint64_t want = base + i;
			size_t b = 0;
			while (((const unsigned char *)&w)[b] == ((const unsigned char *)&want)[b])
				b++;
			*bad_offset = sizeof(h) + 8 * i + b;
			return RDO_PAGE_BAD_PAYLOAD;
		}
	}
	uint64_t tail = base + words;
	for (size_t b = 0; b < h.payload % 8; b++)
		if (in[8 * words + b] != ((const unsigned char *)&tail)[b]) {
			*bad_offset = sizeof(h) + 8 * words + b;
			return RDO_PAGE_BAD_PAYLOAD;
		}
	return RDO_PAGE_OK;
}

const char *rdo_page_verdict_name(enum rdo_page_verdict v)
{
	static const char *const names[] = {
	    [RDO_PAGE_OK] = "ok",
	    [RDO_PAGE_TRUNCATED] = "truncated page",
	    [RDO_PAGE_BAD_MAGIC] = "bad magic",
	    [RDO_PAGE_BAD_VERSION] = "unknown page version",
	    [RDO_PAGE_BAD_LINK] = "wrong link id",
	    [RDO_PAGE_BAD_SIZE] = "bad page size",
	    [RDO_PAGE_BAD_PAYLOAD] = "payload differs from the pattern",
	};
	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "unknown verdict";
}
