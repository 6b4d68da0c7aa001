#include "card/regmap_load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card/card.h"
#include "common/util.h"
#include "common/yaml.h"

#define RDO_BANK_MAX_COUNT 64 /* banks in one bank array */

struct field_ctx {
	struct rdo_field *f;
	bool has_bits;
};

static int parse_bits(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path,
		      struct rdo_field *f)
{
	const char *s = rdo_yaml_scalar(v);
	if (!s)
		return rdo_yaml_fail(y, v, "%s: expected a bit or a range \"high:low\", got %s",
				     path, rdo_yaml_kind_name(v));
	char text[32];
	rdo_strlcpy(text, s, sizeof(text));
	char *colon = strchr(text, ':');
	uint64_t hi, lo;
	if (colon)
		*colon = '\0';
	if (rdo_parse_u64(text, &hi) || (colon && rdo_parse_u64(colon + 1, &lo)) || hi > 63)
		return rdo_yaml_fail(
		    y, v, "%s: expected a bit (0-63) or a range \"high:low\", got \"%s\"", path, s);
	if (!colon)
		lo = hi;
	if (lo > hi)
		return rdo_yaml_fail(y, v, "%s: \"%s\": write the high bit first (\"%llu:%llu\")",
				     path, s, (unsigned long long)lo, (unsigned long long)hi);
	f->msb = (unsigned)hi;
	f->lsb = (unsigned)lo;
	return 0;
}

static int parse_values(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path,
			struct rdo_field *f)
{
	int rc = rdo_yaml_expect(y, v, RDO_YMAP, path);
	if (rc)
		return rc;
	size_t n = rdo_yaml_count(v);
	f->values = calloc(n ? n : 1, sizeof(*f->values));
	if (!f->values)
		return rdo_yaml_fail(y, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct rdo_ynode *k, *val;
		rdo_yaml_pair(y, v, i, &k, &val);
		const char *name = rdo_yaml_scalar(k);
		if (!name)
			return rdo_yaml_fail(y, k, "%s: expected value names as keys", path);
		f->values[i].name = (char *)name;
		f->nvalues = i + 1;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s.%s", path, name);
		rc = rdo_yaml_get_u64(y, val, sub, &f->values[i].value);
		if (rc)
			return rc;
	}
	return 0;
}

static const char *const field_keys[] = {"name", "bits", "description", "values", NULL};

static int visit_field(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		       const char *path)
{
	struct field_ctx *fc = ctx;
	const char *text = NULL;
	int rc;
	switch (key) {
	case 0:
		rc = rdo_yaml_get_text(y, v, path, &text);
		fc->f->name = (char *)text;
		return rc;
	case 1:
		fc->has_bits = true;
		return parse_bits(y, v, path, fc->f);
	case 2:
		rc = rdo_yaml_get_text(y, v, path, &text);
		fc->f->description = (char *)text;
		return rc;
	default:
		return parse_values(y, v, path, fc->f);
	}
}

/* A register definition being read; strings point into the YAML document. */
struct reg_ctx {
	struct rdo_reg_def def;
	struct rdo_field *fields;
	const struct rdo_ynode *node;
	bool has_offset;
};

static int parse_fields(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path,
			struct reg_ctx *r)
{
	int rc = rdo_yaml_expect(y, v, RDO_YLIST, path);
	if (rc)
		return rc;
	size_t n = rdo_yaml_count(v);
	r->fields = calloc(n ? n : 1, sizeof(*r->fields));
	if (!r->fields)
		return rdo_yaml_fail(y, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		const struct rdo_ynode *fn = rdo_yaml_item(y, v, i);
		struct field_ctx fc = {.f = &r->fields[i]};
		r->def.nfields = i + 1;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		rc = rdo_yaml_walk_map(y, fn, sub, field_keys, visit_field, &fc);
		if (rc)
			return rc;
		if (!fc.f->name || !fc.has_bits)
			return rdo_yaml_fail(y, fn, "%s: a field needs a name and bits", sub);
	}
	return 0;
}

static const char *const reg_keys[] = {"name",	"offset",      "width",	 "access",
				       "reset", "description", "fields", NULL};

static int visit_reg(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		     const char *path)
{
	struct reg_ctx *r = ctx;
	const char *s = rdo_yaml_scalar(v);
	switch (key) {
	case 0:
		return rdo_yaml_get_text(y, v, path, &r->def.name);
	case 1:
		r->has_offset = true;
		return rdo_yaml_get_u64(y, v, path, &r->def.offset);
	case 2:
		return rdo_yaml_get_uint(y, v, path, 0, 64, &r->def.width);
	case 3:
		if (!s || rdo_access_parse(s, &r->def.access))
			return rdo_yaml_fail(y, v, "%s: expected ro, rw, wo or w1c, got %s%s%s",
					     path, s ? "\"" : "", s ? s : rdo_yaml_kind_name(v),
					     s ? "\"" : "");
		return 0;
	case 4:
		return rdo_yaml_get_u64(y, v, path, &r->def.reset);
	case 5:
		return rdo_yaml_get_text(y, v, path, &r->def.description);
	default:
		return parse_fields(y, v, path, r);
	}
}

static void free_parsed_fields(struct reg_ctx *r)
{
	for (size_t i = 0; i < r->def.nfields; i++)
		free(r->fields[i].values);
	free(r->fields);
}

struct bank_ctx {
	struct rdo_regmap *map;
	const char *name;
	unsigned bar;
	uint64_t base;
	const char *description;
	const struct rdo_ynode *registers;
	const struct rdo_ynode *count_node, *stride_node; /* a bank array */
	unsigned count;
	uint64_t stride;
	bool has_bar, has_base;
};

static const char *const bank_keys[] = {"name",	     "bar",   "base",	"description",
					"registers", "count", "stride", NULL};

static int visit_bank(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		      const char *path)
{
	struct bank_ctx *b = ctx;
	switch (key) {
	case 0:
		return rdo_yaml_get_text(y, v, path, &b->name);
	case 1:
		b->has_bar = true;
		return rdo_yaml_get_uint(y, v, path, 0, RDO_CARD_MAX_BARS - 1, &b->bar);
	case 2:
		b->has_base = true;
		return rdo_yaml_get_u64(y, v, path, &b->base);
	case 3:
		return rdo_yaml_get_text(y, v, path, &b->description);
	case 4:
		b->registers = v;
		return rdo_yaml_expect(y, v, RDO_YLIST, path);
	case 5:
		b->count_node = v;
		return rdo_yaml_get_uint(y, v, path, 1, RDO_BANK_MAX_COUNT, &b->count);
	default:
		b->stride_node = v;
		return rdo_yaml_get_u64(y, v, path, &b->stride);
	}
}

/* Read every register of a bank, before any is added, so that an array knows its extent. */
static int parse_regs(struct rdo_ydoc *y, const struct bank_ctx *b, struct reg_ctx *regs)
{
	for (size_t i = 0; i < rdo_yaml_count(b->registers); i++) {
		struct reg_ctx *r = &regs[i];
		r->node = rdo_yaml_item(y, b->registers, i);
		r->def.width = 32;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s.registers[%zu]", b->name, i);
		int rc = rdo_yaml_walk_map(y, r->node, sub, reg_keys, visit_reg, r);
		r->def.fields = r->fields;
		if (rc)
			return rc;
		if (!r->def.name || !r->has_offset)
			return rdo_yaml_fail(y, r->node,
					     "%s: a register needs a name and an offset", sub);
	}
	return 0;
}

/*
 * A bank array (count: N, stride: S) is N banks NAME0..NAME{N-1}, S bytes
 * apart, each with all the registers: the stride must clear the registers'
 * extent, or bank i would overlap bank i+1.
 */
static int check_array(struct rdo_ydoc *y, const struct bank_ctx *b, const char *path,
		       const struct reg_ctx *regs, size_t nregs)
{
	if (!b->count_node) {
		if (b->stride_node)
			return rdo_yaml_fail(y, b->stride_node,
					     "%s.stride: a stride needs a count (count: N makes "
					     "banks %s0 to %sN-1)",
					     path, b->name, b->name);
		return 0;
	}
	if (!b->stride_node) {
		if (b->count > 1)
			return rdo_yaml_fail(y, b->count_node,
					     "%s.count: a bank array needs a stride (stride: the "
					     "bytes from %s0 to %s1)",
					     path, b->name, b->name);
		return 0;
	}
	uint64_t extent = 0;
	for (size_t i = 0; i < nregs; i++) {
		uint64_t bytes = (regs[i].def.width + 7) / 8;
		uint64_t end = regs[i].def.offset > UINT64_MAX - bytes ? UINT64_MAX
								       : regs[i].def.offset + bytes;
		if (end > extent)
			extent = end;
	}
	if (b->stride == 0 || b->stride < extent)
		return rdo_yaml_fail(
		    y, b->stride_node,
		    "%s.stride: 0x%llx is smaller than the registers of %s (0x%llx "
		    "bytes): make the stride at least 0x%llx",
		    path, (unsigned long long)b->stride, b->name, (unsigned long long)extent,
		    (unsigned long long)(extent ? extent : 1));
	if (b->count > 1 && b->stride > (UINT64_MAX - b->base) / (b->count - 1))
		return rdo_yaml_fail(y, b->stride_node,
				     "%s.stride: %s%u would lie beyond 64-bit offsets", path,
				     b->name, b->count - 1);
	return 0;
}

static int add_banks(struct rdo_ydoc *y, struct rdo_regmap *map, const struct bank_ctx *b,
		     const struct rdo_ynode *bn, const struct reg_ctx *regs, size_t nregs)
{
	char why[256];
	for (unsigned i = 0; i < (b->count_node ? b->count : 1); i++) {
		char name[RDO_NAME_MAX + 16];
		if (b->count_node)
			snprintf(name, sizeof(name), "%s%u", b->name, i);
		else
			rdo_strlcpy(name, b->name, sizeof(name));
		if (rdo_regmap_add_bank(map, name, b->bar, b->base + i * b->stride, b->description,
					why, sizeof(why)))
			return rdo_yaml_fail(y, bn, "%s", why);
		for (size_t r = 0; r < nregs; r++)
			if (rdo_regmap_add_reg(map, name, &regs[r].def, why, sizeof(why)))
				return rdo_yaml_fail(y, regs[r].node, "%s", why);
	}
	return 0;
}

static int load_bank(struct rdo_ydoc *y, struct rdo_regmap *map, const struct rdo_ynode *bn,
		     const char *path)
{
	struct bank_ctx b = {.map = map};
	int rc = rdo_yaml_walk_map(y, bn, path, bank_keys, visit_bank, &b);
	if (rc)
		return rc;
	if (!b.name || !b.has_bar || !b.has_base || !b.registers)
		return rdo_yaml_fail(y, bn, "%s: a bank needs name, bar, base and registers", path);
	size_t nregs = rdo_yaml_count(b.registers);
	struct reg_ctx *regs = calloc(nregs ? nregs : 1, sizeof(*regs));
	if (!regs)
		return rdo_yaml_fail(y, bn, "out of memory");
	rc = parse_regs(y, &b, regs);
	if (rc == 0)
		rc = check_array(y, &b, path, regs, nregs);
	if (rc == 0)
		rc = add_banks(y, map, &b, bn, regs, nregs);
	for (size_t i = 0; i < nregs; i++)
		free_parsed_fields(&regs[i]);
	free(regs);
	return rc;
}

struct map_ctx {
	struct rdo_regmap *map;
	const struct rdo_ynode *identity, *firmware, *serial, *banks, *dma;
	const char *name;
};

static const char *const map_keys[] = {"map",	 "description", "identity", "firmware",
				       "serial", "banks",	"dma",	    NULL};

static const struct rdo_yopt map_dma_opts[] = {
    RDO_YOPT(struct rdo_map_dma, "protocol", protocol, RDO_YOPT_STRING),
    RDO_YOPT(struct rdo_map_dma, "links", links, RDO_YOPT_UINT, .min = 1, .max = 32),
    RDO_YOPT(struct rdo_map_dma, "address_bits", address_bits, RDO_YOPT_UINT, .min = 24, .max = 64),
    {NULL},
};

/* dma: {protocol, links, address_bits}: what the card's DMA engine speaks. */
static int load_map_dma(struct rdo_ydoc *y, struct map_ctx *m)
{
	struct rdo_map_dma dma = *rdo_regmap_dma(m->map);
	const struct rdo_ynode *nodes[RDO_YOPT_MAX] = {NULL};
	int rc = rdo_yaml_walk_opts(y, m->dma, "dma", map_dma_opts, &dma, nodes);
	if (rc)
		return rc;
	if (strcmp(dma.protocol, "superpage") != 0 && strcmp(dma.protocol, "edu") != 0)
		return rdo_yaml_fail(y, nodes[0],
				     "dma.protocol: expected superpage (readout cards) or edu "
				     "(QEMU's edu device), got \"%s\"",
				     dma.protocol);
	rdo_regmap_set_dma(m->map, &dma);
	return 0;
}

static int visit_map(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		     const char *path)
{
	struct map_ctx *m = ctx;
	switch (key) {
	case 0:
		return rdo_yaml_get_text(y, v, path, &m->name);
	case 1:
		return rdo_yaml_expect(y, v, RDO_YSCALAR, path);
	case 2:
		m->identity = v;
		return rdo_yaml_expect(y, v, RDO_YMAP, path);
	case 3:
		m->firmware = v;
		return rdo_yaml_expect(y, v, RDO_YMAP, path);
	case 4:
		m->serial = v;
		return rdo_yaml_expect(y, v, RDO_YMAP, path);
	case 5:
		m->banks = v;
		return rdo_yaml_expect(y, v, RDO_YLIST, path);
	default:
		m->dma = v;
		return rdo_yaml_expect(y, v, RDO_YMAP, path);
	}
}

/* identity: {register, value} and firmware: {register, min, max} */
struct check_ctx {
	const struct rdo_ynode *reg;
	uint64_t value[2];
	bool has[2];
};

static const char *const identity_keys[] = {"register", "value", NULL};
static const char *const firmware_keys[] = {"register", "min", "max", NULL};
static const char *const serial_keys[] = {"register", NULL};

static int visit_check(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		       const char *path)
{
	struct check_ctx *c = ctx;
	if (key == 0) {
		c->reg = v;
		return rdo_yaml_expect(y, v, RDO_YSCALAR, path);
	}
	c->has[key - 1] = true;
	return rdo_yaml_get_u64(y, v, path, &c->value[key - 1]);
}

static int load_checks(struct rdo_ydoc *y, struct map_ctx *m)
{
	char why[256];
	struct check_ctx c = {0};
	int rc;
	if (m->identity) {
		rc = rdo_yaml_walk_map(y, m->identity, "identity", identity_keys, visit_check, &c);
		if (rc)
			return rc;
		if (!c.reg || !c.has[0])
			return rdo_yaml_fail(y, m->identity,
					     "identity: expected {register: NAME, value: N}");
		if (rdo_regmap_set_identity(m->map, rdo_yaml_scalar(c.reg), c.value[0], why,
					    sizeof(why)))
			return rdo_yaml_fail(y, c.reg, "%s", why);
	}
	if (m->firmware) {
		c = (struct check_ctx){0};
		rc = rdo_yaml_walk_map(y, m->firmware, "firmware", firmware_keys, visit_check, &c);
		if (rc)
			return rc;
		if (!c.reg || !c.has[0] || !c.has[1])
			return rdo_yaml_fail(y, m->firmware,
					     "firmware: expected {register: NAME, min: N, max: N}");
		if (rdo_regmap_set_firmware(m->map, rdo_yaml_scalar(c.reg), c.value[0], c.value[1],
					    why, sizeof(why)))
			return rdo_yaml_fail(y, c.reg, "%s", why);
	}
	if (m->serial) {
		c = (struct check_ctx){0};
		rc = rdo_yaml_walk_map(y, m->serial, "serial", serial_keys, visit_check, &c);
		if (rc)
			return rc;
		if (!c.reg)
			return rdo_yaml_fail(y, m->serial, "serial: expected {register: NAME}");
		if (rdo_regmap_set_serial(m->map, rdo_yaml_scalar(c.reg), why, sizeof(why)))
			return rdo_yaml_fail(y, c.reg, "%s", why);
	}
	return 0;
}

struct rdo_regmap *rdo_regmap_load(const char *file, char *err, size_t errlen)
{
	struct rdo_ydoc *y;
	if (rdo_yaml_load(file, &y, err, errlen))
		return NULL;
	const struct rdo_ynode *root = rdo_yaml_root(y);
	struct map_ctx m = {0};
	int rc = rdo_yaml_walk_map(y, root, "", map_keys, visit_map, &m);
	if (rc == 0 && (!m.name || !m.banks))
		rc = rdo_yaml_fail(y, root, "a register map needs \"map: NAME\" and \"banks:\"");
	if (rc == 0) {
		m.map = rdo_regmap_create(m.name, file);
		if (!m.map)
			rc = rdo_yaml_fail(y, root, "out of memory");
	}
	for (size_t i = 0; rc == 0 && i < rdo_yaml_count(m.banks); i++) {
		char path[64];
		snprintf(path, sizeof(path), "banks[%zu]", i);
		rc = load_bank(y, m.map, rdo_yaml_item(y, m.banks, i), path);
	}
	if (rc == 0)
		rc = load_checks(y, &m);
	if (rc == 0 && m.dma)
		rc = load_map_dma(y, &m);
	rdo_yaml_destroy(&y);
	if (rc)
		rdo_regmap_destroy(&m.map);
	return m.map;
}
