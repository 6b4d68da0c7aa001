/*
 * The card interface: one ops table per backend (sim, shim), one struct
 * rdo_card per open card. The same code above this interface drives the
 * emulator and real hardware, because it talks to the card only through BAR
 * registers and DMA memory.
 *
 * Register access is bounds- and alignment-checked here, once, for every
 * backend. A card is safe to access from several threads: a register access is
 * one MMIO transaction on hardware and one atomic on the emulator.
 */
#ifndef RDO_CARD_H
#define RDO_CARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDO_CARD_MAX_BARS 6
#define RDO_CARD_NAME_MAX 64

/* What to open. Plain value; rdo_card_opts_init() fills the defaults. */
struct rdo_card_opts {
	char name[RDO_CARD_NAME_MAX]; /* the operator's name for the card: "sim0" */
	char backend[16];	      /* "sim" or "shim" */
	char address[128];	      /* shim: PCI address DDDD:BB:DD.F; the sim ignores it */
	unsigned links;		      /* number of links, 1..32: sim option, else the map's */
	uint64_t serial;	      /* sim: serial number register */
	uint32_t fw_version;	      /* sim: firmware version register */
	uint32_t identity;	      /* sim: identity register */
	/* sim data generator: reset values of its dma registers */
	uint64_t sim_rate; /* bytes per second over all links; 0: as fast as taken */
	bool sim_pulsed;   /* bursts of sim_pulse_bytes per link at sim_pulse_hz */
	unsigned sim_pulse_hz;
	unsigned sim_pulse_bytes;
	bool sim_variable_size; /* payload sizes vary page to page */
	bool sim_header_only;	/* write page headers only (benchmarks) */
};

void rdo_card_opts_init(struct rdo_card_opts *o);

struct rdo_card;

/* A stretch of a DMA buffer that is contiguous in bus space. */
struct rdo_dma_seg {
	size_t off, len; /* in the buffer */
	uint64_t bus;
};

/*
 * Memory the card can write into: `len` bytes at `va` (contiguous in virtual
 * memory), which the card sees as `nsegs` segments, each contiguous in bus
 * space and holding whole granules (see dma_alloc). Plain value filled by the
 * backend's dma_alloc; `seg` and `priv` are the backend's.
 */
struct rdo_dma_buf {
	void *va;
	size_t len;
	unsigned nsegs;
	const struct rdo_dma_seg *seg;
	const char *memory; /* "hugepages", "locked", "unlocked" or "coherent" */
	void *priv;
};

/*
 * The bus address of `len` bytes at `off` in `buf`: 0, or -ERANGE when they
 * are not all in one segment.
 */
int rdo_dma_buf_bus(const struct rdo_dma_buf *buf, size_t off, size_t len, uint64_t *bus);

/* How a superpage came back from the card: the same bits as SuperpageFlag in proto/. */
#define RDO_SP_PARTIAL	     0x1u /* flushed before it was full: stop or link down */
#define RDO_SP_DISCONTINUITY 0x2u /* the card dropped pages on this link before it */
#define RDO_SP_HEADER_ONLY   0x4u /* emulator header-only mode: payload not written */
#define RDO_SP_LINK_DOWN     0x8u /* the link went down after it */

struct rdo_card_ops {
	const char *name;
	/* Open the card; log why and return NULL on failure. */
	struct rdo_card *(*open)(const struct rdo_card_opts *o);
	void (*close)(struct rdo_card *card);
	/* `bar`, `off` and `width` are already checked: a backend just accesses. */
	uint64_t (*read)(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width);
	void (*write)(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		      uint64_t val);
	/*
	 * Allocate `len` bytes of DMA memory, pinned and pre-touched, in segments
	 * that each hold whole `granule`s (`len` is a multiple of it), at bus
	 * addresses below 2^address_bits: 0 or -errno (logged).
	 */
	int (*dma_alloc)(struct rdo_card *card, size_t len, size_t granule, unsigned address_bits,
			 struct rdo_dma_buf *buf);
	void (*dma_free)(struct rdo_card *card, struct rdo_dma_buf *buf);
	/* The eventfd the card's DMA interrupt signals (-1: none, poll); owned by the card. */
	int (*irq_fd)(struct rdo_card *card);
	/* Optional: the interrupt is handled and acknowledged in the card; let the next through. */
	void (*irq_done)(struct rdo_card *card);
};

/* The base every backend embeds; reached back with container_of. */
struct rdo_card {
	const struct rdo_card_ops *ops;
	char name[RDO_CARD_NAME_MAX];
	char address[128];
	unsigned links;
	unsigned nbars;
	uint64_t bar_size[RDO_CARD_MAX_BARS]; /* 0: BAR not present */
	int numa_node;			      /* the device's, as the backend tells; -1: none */
	int lock_fd;			      /* rdo_card_lock()'s socket, or -1 */
};

extern const struct rdo_card_ops rdo_card_sim_ops;
extern const struct rdo_card_ops rdo_card_shim_ops;

/* Open through the backend named in `o`. Logs why and returns NULL on failure. */
struct rdo_card *rdo_card_open(const struct rdo_card_opts *o);
void rdo_card_close(struct rdo_card **card);

/*
 * Check an access of `width` bits (8, 16, 32 or 64) at `off` of `bar`:
 * 0, -ENODEV (no such BAR), -ERANGE (outside the BAR), -EINVAL (bad width or
 * not naturally aligned).
 */
int rdo_card_check(const struct rdo_card *card, unsigned bar, uint64_t off, unsigned width);

/*
 * Take the card for this process: 0, or -EBUSY when another process holds it
 * (logged with that process's pid and the fix). The lock is an abstract unix
 * socket named after the backend and address, so the kernel releases it when
 * the owner exits or crashes; rdo_card_close() releases it too.
 */
int rdo_card_lock(struct rdo_card *card);

/* DMA memory through the backend; 0 or -errno, logged. rdo_card_dma_free accepts a zeroed buf. */
int rdo_card_dma_alloc(struct rdo_card *card, size_t len, size_t granule, unsigned address_bits,
		       struct rdo_dma_buf *buf);
void rdo_card_dma_free(struct rdo_card *card, struct rdo_dma_buf *buf);

/* Checked register access; 0 or the -errno of rdo_card_check(). */
int rdo_card_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width, uint64_t *val);
int rdo_card_write(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width, uint64_t val);

#endif
