/*
 * The card interface: one ops table per backend (sim, shim), one struct
 * rdo_card per open card. The same code above this interface drives the
 * emulator and real hardware, because it talks to the card only through BAR
 * registers (and, from the data-path issue on, DMA memory).
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
	char backend[16];	      /* "sim" */
	char address[128];	      /* backend address; the sim ignores it */
	unsigned links;		      /* sim: number of links, 1..32 */
	uint64_t serial;	      /* sim: serial number register */
	uint32_t fw_version;	      /* sim: firmware version register */
	uint32_t identity;	      /* sim: identity register */
};

void rdo_card_opts_init(struct rdo_card_opts *o);

struct rdo_card;

struct rdo_card_ops {
	const char *name;
	/* Open the card; log why and return NULL on failure. */
	struct rdo_card *(*open)(const struct rdo_card_opts *o);
	void (*close)(struct rdo_card *card);
	/* `bar`, `off` and `width` are already checked: a backend just accesses. */
	uint64_t (*read)(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width);
	void (*write)(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		      uint64_t val);
};

/* The base every backend embeds; reached back with container_of. */
struct rdo_card {
	const struct rdo_card_ops *ops;
	char name[RDO_CARD_NAME_MAX];
	char address[128];
	unsigned links;
	unsigned nbars;
	uint64_t bar_size[RDO_CARD_MAX_BARS]; /* 0: BAR not present */
};

extern const struct rdo_card_ops rdo_card_sim_ops;

/* Open through the backend named in `o`. Logs why and returns NULL on failure. */
struct rdo_card *rdo_card_open(const struct rdo_card_opts *o);
void rdo_card_close(struct rdo_card **card);

/*
 * Check an access of `width` bits (8, 16, 32 or 64) at `off` of `bar`:
 * 0, -ENODEV (no such BAR), -ERANGE (outside the BAR), -EINVAL (bad width or
 * not naturally aligned).
 */
int rdo_card_check(const struct rdo_card *card, unsigned bar, uint64_t off, unsigned width);

/* Checked register access; 0 or the -errno of rdo_card_check(). */
int rdo_card_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		  uint64_t *val);
int rdo_card_write(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		   uint64_t val);

#ifndef container_of
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))
#endif

#endif
