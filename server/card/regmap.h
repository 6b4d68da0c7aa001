/*
 * The register model: named banks, registers and bit fields of a card, loaded
 * from a YAML register map (regmap_load.c fills it) and extendable at run time.
 *
 * Names: "bank.register", "bank.register.field", or a raw "barN:OFFSET" (also
 * "N:OFFSET"), which is 32 bits wide. Every definition is validated when it is
 * added: a bad one is refused with a message and leaves the map unchanged.
 *
 * The structs below are plain values owned by the map; pointers to them stay
 * valid until the map is destroyed. A map is not thread-safe: one thread (the
 * control thread) owns it.
 */
#ifndef RDO_REGMAP_H
#define RDO_REGMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RDO_NAME_MAX 48 /* one name component: bank, register or field */

enum rdo_access { RDO_ACCESS_RW, RDO_ACCESS_RO, RDO_ACCESS_WO, RDO_ACCESS_W1C };

struct rdo_enum {
	char *name;
	uint64_t value;
};

struct rdo_field {
	char *name;
	unsigned lsb, msb;
	char *description;
	struct rdo_enum *values;
	size_t nvalues;
};

struct rdo_bank {
	char *name;
	unsigned bar;
	uint64_t base;
	char *description;
};

struct rdo_reg {
	char *name; /* "bank.register" */
	const struct rdo_bank *bank;
	unsigned bar;
	uint64_t offset; /* absolute, in the BAR */
	unsigned width;	 /* bits */
	enum rdo_access access;
	uint64_t reset;
	char *description;
	struct rdo_field *fields;
	size_t nfields;
};

/* A register to add; the map copies everything. `offset` is relative to the bank. */
struct rdo_reg_def {
	const char *name;
	uint64_t offset;
	unsigned width;
	enum rdo_access access;
	uint64_t reset;
	const char *description;
	const struct rdo_field *fields;
	size_t nfields;
};

/* What a name resolves to. `reg` is NULL for a raw access, `field` NULL for a whole register. */
struct rdo_target {
	const struct rdo_reg *reg;
	const struct rdo_field *field;
	unsigned bar;
	uint64_t offset;
	unsigned width;
};

struct rdo_regmap;

/* An empty map. `source` names where it came from (a file) for messages. */
struct rdo_regmap *rdo_regmap_create(const char *name, const char *source);
void rdo_regmap_destroy(struct rdo_regmap **map);

const char *rdo_regmap_name(const struct rdo_regmap *map);
const char *rdo_regmap_source(const struct rdo_regmap *map);

/* 0, or -EINVAL / -EEXIST with the reason in `err`. */
int rdo_regmap_add_bank(struct rdo_regmap *map, const char *name, unsigned bar, uint64_t base,
			const char *description, char *err, size_t errlen);
const struct rdo_bank *rdo_regmap_bank(const struct rdo_regmap *map, const char *name);

/*
 * Add a register to `bank`: 0, or -ENOENT (no such bank), -EEXIST (name taken,
 * or it overlaps another register), -EINVAL (bad name, width, alignment,
 * fields, reset or enum value), -ERANGE (outside the BAR) with the reason in
 * `err`.
 */
int rdo_regmap_add_reg(struct rdo_regmap *map, const char *bank, const struct rdo_reg_def *def,
		       char *err, size_t errlen);

/* Add bank `bank` and its first register, or neither: the same checks as both calls. */
int rdo_regmap_add_bank_reg(struct rdo_regmap *map, const char *bank, unsigned bar, uint64_t base,
			    const char *description, const struct rdo_reg_def *def, char *err,
			    size_t errlen);

/*
 * Bind the map to a card's BAR sizes: every register must lie inside its BAR
 * (-ERANGE with the first offender in `err`); later additions are checked too.
 */
int rdo_regmap_bind_bars(struct rdo_regmap *map, unsigned nbars, const uint64_t *bar_size,
			 char *err, size_t errlen);

/*
 * The card identity the map is for: the register holding the identity, and
 * the firmware register with the inclusive range of supported versions.
 */
int rdo_regmap_set_identity(struct rdo_regmap *map, const char *reg, uint64_t value, char *err,
			    size_t errlen);
int rdo_regmap_set_firmware(struct rdo_regmap *map, const char *reg, uint64_t min, uint64_t max,
			    char *err, size_t errlen);
/*
 * The DMA side of the card the map describes: the protocol its firmware
 * speaks, its links, and how many address bits its DMA engine drives.
 * Plain value; rdo_regmap_create() sets the defaults.
 */
struct rdo_map_dma {
	char protocol[16];     /* "superpage" (default) or "edu" */
	unsigned links;	       /* 1..32; 0: not said (the emulator's `links` option says) */
	unsigned address_bits; /* 24..64, default 64 */
};

void rdo_regmap_set_dma(struct rdo_regmap *map, const struct rdo_map_dma *dma);
const struct rdo_map_dma *rdo_regmap_dma(const struct rdo_regmap *map);

/* The register holding the board serial number, for card info. */
int rdo_regmap_set_serial(struct rdo_regmap *map, const char *reg, char *err, size_t errlen);
/* NULL when the map declares none. */
const struct rdo_reg *rdo_regmap_identity(const struct rdo_regmap *map, uint64_t *value);
const struct rdo_reg *rdo_regmap_firmware(const struct rdo_regmap *map, uint64_t *min,
					  uint64_t *max);
const struct rdo_reg *rdo_regmap_serial(const struct rdo_regmap *map);

struct rdo_card;

/*
 * Register `r` whole (its BAR, offset and width) from `card`, checked like
 * rdo_card_read; 0 when `r` is NULL or out of the card's BARs: the identity,
 * firmware and serial that card info and file headers report.
 */
uint64_t rdo_reg_read(struct rdo_card *card, const struct rdo_reg *r);

/*
 * Resolve a name: 0, or -ENOENT (no such register or field), -EINVAL
 * (malformed), with the reason in `err`. Raw offsets are not checked against
 * the BAR here; the card does that on access.
 */
int rdo_regmap_resolve(const struct rdo_regmap *map, const char *name, struct rdo_target *t,
		       char *err, size_t errlen);

/* Registers in (bar, offset) order, for listing. */
size_t rdo_regmap_count(const struct rdo_regmap *map);
const struct rdo_reg *rdo_regmap_at(const struct rdo_regmap *map, size_t i);

/* Field helpers. */
uint64_t rdo_field_mask(const struct rdo_field *f); /* in register position */
uint64_t rdo_field_get(const struct rdo_field *f, uint64_t reg);
unsigned rdo_field_width(const struct rdo_field *f);
const char *rdo_field_symbol(const struct rdo_field *f, uint64_t value); /* NULL: none */
int rdo_field_lookup_symbol(const struct rdo_field *f, const char *symbol, uint64_t *value);

const char *rdo_access_name(enum rdo_access a);
int rdo_access_parse(const char *s, enum rdo_access *a);

/* A valid bank, register or field name: [A-Za-z_][A-Za-z0-9_]*, shorter than RDO_NAME_MAX. */
bool rdo_regmap_valid_name(const char *s);

#endif
