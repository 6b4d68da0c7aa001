/*
 * The DMA page format of the emulated card, shared by its generator
 * (card_sim.c) and by every consumer that verifies data (readout-sub).
 *
 * A superpage holds whole DMA pages. Each page occupies `slot` bytes (the
 * card's page size register, at most 8 KiB): a 32-byte header, then
 * `payload` bytes, then padding to the end of the slot. The payload is a
 * pattern a consumer can recompute from the header alone, so every byte can be
 * checked. All fields are little-endian, as the card writes them.
 *
 * Thread-safety: pure functions over caller memory.
 */
#ifndef RDO_PAGE_H
#define RDO_PAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDO_PAGE_MAGIC	 0x50444452u /* "RDDP" in memory */
#define RDO_PAGE_VERSION 1u
#define RDO_PAGE_MAX	 8192u
#define RDO_PAGE_MIN	 64u

struct rdo_page_header {
	uint32_t magic;
	uint16_t version;
	uint16_t link;
	uint32_t slot;	  /* bytes this page occupies, header included */
	uint32_t payload; /* payload bytes after the header */
	uint64_t counter; /* page number on this link since the DMA reset */
	uint64_t timestamp_ns;
};

_Static_assert(sizeof(struct rdo_page_header) == 32, "the page header is 32 bytes");

/* The payload size of page `counter` in variable-size mode: 8..slot-32, deterministic. */
uint32_t rdo_page_variable_payload(uint64_t counter, uint32_t slot);

/* Write a page (header and pattern payload) at `dst`; `payload` <= slot - 32. */
void rdo_page_write(void *dst, unsigned link, uint64_t counter, uint32_t slot, uint32_t payload,
		    uint64_t timestamp_ns);

/* Write the header only (the emulator's header-only mode). */
void rdo_page_write_header(void *dst, unsigned link, uint64_t counter, uint32_t slot,
			   uint32_t payload, uint64_t timestamp_ns);

enum rdo_page_verdict {
	RDO_PAGE_OK,
	RDO_PAGE_TRUNCATED, /* fewer bytes left than a header or than its slot */
	RDO_PAGE_BAD_MAGIC,
	RDO_PAGE_BAD_VERSION,
	RDO_PAGE_BAD_LINK,    /* header's link is not the link it came on */
	RDO_PAGE_BAD_SIZE,    /* slot or payload out of range */
	RDO_PAGE_BAD_PAYLOAD, /* a payload byte differs from the pattern */
};

/*
 * Check the page at `p` with `avail` bytes left in the superpage, that came
 * on `link`. `check_payload` false skips the pattern. On RDO_PAGE_BAD_PAYLOAD
 * `*bad_offset` is the offset of the first wrong byte from `p`.
 */
enum rdo_page_verdict rdo_page_check(const void *p, size_t avail, unsigned link, bool check_payload,
				     size_t *bad_offset);

/* A short name of a verdict: "bad magic". */
const char *rdo_page_verdict_name(enum rdo_page_verdict v);

#endif
