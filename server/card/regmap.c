#include "card/regmap.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card/card.h"
#include "common/util.h"

struct rdo_regmap {
	char *name;
	char *source;
	struct rdo_bank **banks;
	size_t nbanks;
	struct rdo_reg **by_name; /* sorted by name, for look-up */
	struct rdo_reg **by_addr; /* sorted by (bar, offset), for listing and overlap checks */
	size_t nregs;
	unsigned nbars;
	uint64_t bar_size[RDO_CARD_MAX_BARS];
	const struct rdo_reg *identity_reg;
	uint64_t identity;
	const struct rdo_reg *firmware_reg;
	uint64_t fw_min, fw_max;
	const struct rdo_reg *serial_reg;
	struct rdo_map_dma dma;
};

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail(char *err, size_t errlen, int rc, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return rc;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

struct rdo_regmap *rdo_regmap_create(const char *name, const char *source)
{
	struct rdo_regmap *map = calloc(1, sizeof(*map));
	if (!map)
		return NULL;
	map->name = dup_or_empty(name);
	map->source = dup_or_empty(source);
	rdo_strlcpy(map->dma.protocol, "superpage", sizeof(map->dma.protocol));
	map->dma.address_bits = 64;
	if (!map->name || !map->source)
		rdo_regmap_destroy(&map);
	return map;
}

static void free_fields(struct rdo_field *fields, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(fields[i].name);
		free(fields[i].description);
		for (size_t v = 0; v < fields[i].nvalues; v++)
			free(fields[i].values[v].name);
		free(fields[i].values);
	}
	free(fields);
}

static void free_reg(struct rdo_reg *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->description);
	free_fields(r->fields, r->nfields);
	free(r);
}

void rdo_regmap_destroy(struct rdo_regmap **pmap)
{
	struct rdo_regmap *map = *pmap;
	if (!map)
		return;
	for (size_t i = 0; i < map->nregs; i++)
		free_reg(map->by_name[i]);
	free(map->by_name);
	free(map->by_addr);
	for (size_t i = 0; i < map->nbanks; i++) {
		free(map->banks[i]->name);
		free(map->banks[i]->description);
		free(map->banks[i]);
	}
	free(map->banks);
	free(map->name);
	free(map->source);
	free(map);
	*pmap = NULL;
}

const char *rdo_regmap_name(const struct rdo_regmap *map)
{
	return map->name;
}

const char *rdo_regmap_source(const struct rdo_regmap *map)
{
	return map->source;
}

bool rdo_regmap_valid_name(const char *s)
{
	if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if (!(isalnum((unsigned char)s[n]) || s[n] == '_'))
			return false;
	return n < RDO_NAME_MAX;
}

const struct rdo_bank *rdo_regmap_bank(const struct rdo_regmap *map, const char *name)
{
	for (size_t i = 0; i < map->nbanks; i++)
		if (strcmp(map->banks[i]->name, name) == 0)
			return map->banks[i];
	return NULL;
}

int rdo_regmap_add_bank(struct rdo_regmap *map, const char *name, unsigned bar, uint64_t base,
			const char *description, char *err, size_t errlen)
{
	if (!rdo_regmap_valid_name(name))
		return fail(err, errlen, -EINVAL,
			    "bank name \"%s\" is not valid: use letters, digits and '_', "
			    "starting with a letter, at most %d characters",
			    name, RDO_NAME_MAX - 1);
	if (rdo_regmap_bank(map, name))
		return fail(err, errlen, -EEXIST, "bank \"%s\" is defined twice", name);
	if (bar >= RDO_CARD_MAX_BARS)
		return fail(err, errlen, -EINVAL, "bank %s: bar %u does not exist (0 to %d)", name,
			    bar, RDO_CARD_MAX_BARS - 1);
	struct rdo_bank **banks = realloc(map->banks, (map->nbanks + 1) * sizeof(*banks));
	if (!banks)
		return fail(err, errlen, -ENOMEM, "out of memory");
	map->banks = banks;
	struct rdo_bank *b = calloc(1, sizeof(*b));
	if (b) {
		b->name = strdup(name);
		b->description = dup_or_empty(description);
	}
	if (!b || !b->name || !b->description) {
		if (b) {
			free(b->name);
			free(b->description);
		}
		free(b);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	b->bar = bar;
	b->base = base;
	map->banks[map->nbanks++] = b;
	return 0;
}

uint64_t rdo_field_mask(const struct rdo_field *f)
{
	return rdo_mask(f->msb - f->lsb + 1) << f->lsb;
}

unsigned rdo_field_width(const struct rdo_field *f)
{
	return f->msb - f->lsb + 1;
}

uint64_t rdo_field_get(const struct rdo_field *f, uint64_t reg)
{
	return (reg & rdo_field_mask(f)) >> f->lsb;
}

const char *rdo_field_symbol(const struct rdo_field *f, uint64_t value)
{
	for (size_t i = 0; i < f->nvalues; i++)
		if (f->values[i].value == value)
			return f->values[i].name;
	return NULL;
}

int rdo_field_lookup_symbol(const struct rdo_field *f, const char *symbol, uint64_t *value)
{
	for (size_t i = 0; i < f->nvalues; i++)
		if (strcmp(f->values[i].name, symbol) == 0) {
			*value = f->values[i].value;
			return 0;
		}
	return -ENOENT;
}

static const char *const access_names[] = {
    [RDO_ACCESS_RW] = "rw",
    [RDO_ACCESS_RO] = "ro",
    [RDO_ACCESS_WO] = "wo",
    [RDO_ACCESS_W1C] = "w1c",
};

const char *rdo_access_name(enum rdo_access a)
{
	return (unsigned)a < RDO_ARRAY_SIZE(access_names) ? access_names[a] : "?";
}

int rdo_access_parse(const char *s, enum rdo_access *a)
{
	for (size_t i = 0; i < RDO_ARRAY_SIZE(access_names); i++)
		if (strcmp(s, access_names[i]) == 0) {
			*a = (enum rdo_access)i;
			return 0;
		}
	return -EINVAL;
}

/* Check a definition's own consistency, before it meets the rest of the map. */
static int check_def(const char *full, const struct rdo_reg_def *def, char *err, size_t errlen)
{
	unsigned w = def->width;
	if (w != 8 && w != 16 && w != 32 && w != 64)
		return fail(err, errlen, -EINVAL, "%s: width %u is not one of 8, 16, 32, 64", full,
			    w);
	if (def->offset % (w / 8))
		return fail(err, errlen, -EINVAL,
			    "%s: offset 0x%llx is not aligned to its width of %u bits", full,
			    (unsigned long long)def->offset, w);
	if ((unsigned)def->access >= RDO_ARRAY_SIZE(access_names))
		return fail(err, errlen, -EINVAL, "%s: access %d is not one of ro, rw, wo, w1c",
			    full, (int)def->access);
	if (def->reset & ~rdo_mask(w))
		return fail(err, errlen, -EINVAL, "%s: reset value 0x%llx does not fit in %u bits",
			    full, (unsigned long long)def->reset, w);
	for (size_t i = 0; i < def->nfields; i++) {
		const struct rdo_field *f = &def->fields[i];
		if (!rdo_regmap_valid_name(f->name))
			return fail(err, errlen, -EINVAL,
				    "%s: field name \"%s\" is not valid: use letters, digits "
				    "and '_', starting with a letter",
				    full, f->name ? f->name : "");
		if (f->lsb > f->msb || f->msb >= w)
			return fail(err, errlen, -EINVAL,
				    "%s.%s: bits %u:%u do not fit a %u-bit register "
				    "(write high:low, high below %u)",
				    full, f->name, f->msb, f->lsb, w, w);
		for (size_t j = 0; j < i; j++) {
			const struct rdo_field *g = &def->fields[j];
			if (strcmp(f->name, g->name) == 0)
				return fail(err, errlen, -EINVAL,
					    "%s: field \"%s\" is defined twice", full, f->name);
			if (rdo_field_mask(f) & rdo_field_mask(g))
				return fail(err, errlen, -EINVAL,
					    "%s: field %s (bits %u:%u) overlaps field %s "
					    "(bits %u:%u)",
					    full, f->name, f->msb, f->lsb, g->name, g->msb, g->lsb);
		}
		for (size_t v = 0; v < f->nvalues; v++) {
			const struct rdo_enum *e = &f->values[v];
			if (!rdo_regmap_valid_name(e->name))
				return fail(err, errlen, -EINVAL,
					    "%s.%s: value name \"%s\" is not valid", full, f->name,
					    e->name ? e->name : "");
			if (e->value & ~rdo_mask(rdo_field_width(f)))
				return fail(err, errlen, -EINVAL,
					    "%s.%s: value %s = %llu does not fit in %u bits", full,
					    f->name, e->name, (unsigned long long)e->value,
					    rdo_field_width(f));
			for (size_t u = 0; u < v; u++)
				if (strcmp(e->name, f->values[u].name) == 0)
					return fail(err, errlen, -EINVAL,
						    "%s.%s: value \"%s\" is defined twice", full,
						    f->name, e->name);
		}
	}
	return 0;
}

static int cmp_name(const void *a, const void *b)
{
	return strcmp((*(struct rdo_reg *const *)a)->name, (*(struct rdo_reg *const *)b)->name);
}

static int cmp_addr(const void *a, const void *b)
{
	const struct rdo_reg *x = *(struct rdo_reg *const *)a, *y = *(struct rdo_reg *const *)b;
	if (x->bar != y->bar)
		return x->bar < y->bar ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

static const struct rdo_reg *find_reg(const struct rdo_regmap *map, const char *full)
{
	struct rdo_reg key = {.name = (char *)full}, *pkey = &key;
	struct rdo_reg **r =
	    map->nregs ? bsearch(&pkey, map->by_name, map->nregs, sizeof(*map->by_name), cmp_name)
		       : NULL;
	return r ? *r : NULL;
}

static int check_bar_bounds(const struct rdo_regmap *map, const struct rdo_reg *r, char *err,
			    size_t errlen)
{
	if (map->nbars == 0)
		return 0;
	uint64_t size = r->bar < RDO_CARD_MAX_BARS ? map->bar_size[r->bar] : 0;
	if (size == 0)
		return fail(err, errlen, -ERANGE, "%s: the card has no BAR %u", r->name, r->bar);
	if (!rdo_range_fits(size, r->offset, r->width / 8))
		return fail(err, errlen, -ERANGE,
			    "%s: offset 0x%llx is outside BAR %u (0x%llx bytes)", r->name,
			    (unsigned long long)r->offset, r->bar, (unsigned long long)size);
	return 0;
}

static struct rdo_field *copy_fields(const struct rdo_field *src, size_t n)
{
	struct rdo_field *dst = calloc(n ? n : 1, sizeof(*dst));
	if (!dst)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		dst[i].lsb = src[i].lsb;
		dst[i].msb = src[i].msb;
		dst[i].name = strdup(src[i].name);
		dst[i].description = dup_or_empty(src[i].description);
		dst[i].values =
		    calloc(src[i].nvalues ? src[i].nvalues : 1, sizeof(struct rdo_enum));
		if (!dst[i].name || !dst[i].description || !dst[i].values) {
			free_fields(dst, i + 1);
			return NULL;
		}
		for (size_t v = 0; v < src[i].nvalues; v++) {
			dst[i].values[v].value = src[i].values[v].value;
			dst[i].values[v].name = strdup(src[i].values[v].name);
			dst[i].nvalues = v + 1;
			if (!dst[i].values[v].name) {
				free_fields(dst, i + 1);
				return NULL;
			}
		}
	}
	return dst;
}

int rdo_regmap_add_reg(struct rdo_regmap *map, const char *bank, const struct rdo_reg_def *def,
		       char *err, size_t errlen)
{
	const struct rdo_bank *b = rdo_regmap_bank(map, bank);
	if (!b)
		return fail(err, errlen, -ENOENT, "no bank \"%s\" in register map %s", bank,
			    map->name);
	if (!rdo_regmap_valid_name(def->name))
		return fail(err, errlen, -EINVAL,
			    "%s: register name \"%s\" is not valid: use letters, digits and '_', "
			    "starting with a letter, at most %d characters",
			    bank, def->name ? def->name : "", RDO_NAME_MAX - 1);
	char full[2 * RDO_NAME_MAX];
	snprintf(full, sizeof(full), "%s.%s", bank, def->name);
	int rc = check_def(full, def, err, errlen);
	if (rc)
		return rc;
	if (find_reg(map, full))
		return fail(err, errlen, -EEXIST, "register %s is defined twice", full);

	struct rdo_reg candidate = {
	    .name = full,
	    .bank = b,
	    .bar = b->bar,
	    .offset = b->base + def->offset,
	    .width = def->width,
	};
	if (candidate.offset < b->base)
		return fail(err, errlen, -ERANGE, "%s: offset overflows", full);
	rc = check_bar_bounds(map, &candidate, err, errlen);
	if (rc)
		return rc;
	/* Inclusive ends: an aligned register ending at 2^64 must not wrap to 0. */
	uint64_t lo = candidate.offset, last = lo + def->width / 8 - 1;
	for (size_t i = 0; i < map->nregs; i++) {
		const struct rdo_reg *o = map->by_addr[i];
		if (o->bar == candidate.bar && o->offset <= last &&
		    lo <= o->offset + o->width / 8 - 1)
			return fail(err, errlen, -EEXIST,
				    "register %s at bar%u:0x%llx overlaps %s at bar%u:0x%llx", full,
				    candidate.bar, (unsigned long long)lo, o->name, o->bar,
				    (unsigned long long)o->offset);
	}

	struct rdo_reg **by_name = realloc(map->by_name, (map->nregs + 1) * sizeof(*by_name));
	if (!by_name)
		return fail(err, errlen, -ENOMEM, "out of memory");
	map->by_name = by_name;
	struct rdo_reg **by_addr = realloc(map->by_addr, (map->nregs + 1) * sizeof(*by_addr));
	if (!by_addr)
		return fail(err, errlen, -ENOMEM, "out of memory");
	map->by_addr = by_addr;
	struct rdo_reg *r = calloc(1, sizeof(*r));
	if (!r)
		return fail(err, errlen, -ENOMEM, "out of memory");
	*r = candidate;
	r->name = strdup(full);
	r->access = def->access;
	r->reset = def->reset;
	r->description = dup_or_empty(def->description);
	r->fields = copy_fields(def->fields, def->nfields);
	r->nfields = def->nfields;
	if (!r->name || !r->description || !r->fields) {
		free_reg(r);
		return fail(err, errlen, -ENOMEM, "out of memory");
	}
	map->by_name[map->nregs] = r;
	map->by_addr[map->nregs] = r;
	map->nregs++;
	qsort(map->by_name, map->nregs, sizeof(*map->by_name), cmp_name);
	qsort(map->by_addr, map->nregs, sizeof(*map->by_addr), cmp_addr);
	return 0;
}

int rdo_regmap_add_bank_reg(struct rdo_regmap *map, const char *bank, unsigned bar, uint64_t base,
			    const char *description, const struct rdo_reg_def *def, char *err,
			    size_t errlen)
{
	int rc = rdo_regmap_add_bank(map, bank, bar, base, description, err, errlen);
	if (rc)
		return rc;
	rc = rdo_regmap_add_reg(map, bank, def, err, errlen);
	if (rc) {
		/* The bank is the last one added and nothing refers to it yet. */
		struct rdo_bank *b = map->banks[--map->nbanks];
		free(b->name);
		free(b->description);
		free(b);
	}
	return rc;
}

int rdo_regmap_bind_bars(struct rdo_regmap *map, unsigned nbars, const uint64_t *bar_size,
			 char *err, size_t errlen)
{
	struct rdo_regmap probe = {.nbars = nbars};
	for (unsigned i = 0; i < nbars && i < RDO_CARD_MAX_BARS; i++)
		probe.bar_size[i] = bar_size[i];
	for (size_t i = 0; i < map->nregs; i++) {
		int rc = check_bar_bounds(&probe, map->by_addr[i], err, errlen);
		if (rc)
			return rc;
	}
	map->nbars = probe.nbars;
	memcpy(map->bar_size, probe.bar_size, sizeof(map->bar_size));
	return 0;
}

/* A register that card info reads: it must exist and be readable. */
static const struct rdo_reg *info_reg(const struct rdo_regmap *map, const char *role,
				      const char *reg, char *err, size_t errlen)
{
	const struct rdo_reg *r = find_reg(map, reg);
	if (!r)
		fail(err, errlen, -ENOENT, "%s register %s is not in the map", role, reg);
	else if (r->access == RDO_ACCESS_WO)
		fail(err, errlen, -EINVAL, "%s register %s is write-only", role, reg);
	return r && r->access != RDO_ACCESS_WO ? r : NULL;
}

int rdo_regmap_set_serial(struct rdo_regmap *map, const char *reg, char *err, size_t errlen)
{
	const struct rdo_reg *r = info_reg(map, "serial", reg, err, errlen);
	if (!r)
		return -EINVAL;
	map->serial_reg = r;
	return 0;
}

const struct rdo_reg *rdo_regmap_serial(const struct rdo_regmap *map)
{
	return map->serial_reg;
}

int rdo_regmap_set_identity(struct rdo_regmap *map, const char *reg, uint64_t value, char *err,
			    size_t errlen)
{
	const struct rdo_reg *r = info_reg(map, "identity", reg, err, errlen);
	if (!r)
		return -EINVAL;
	map->identity_reg = r;
	map->identity = value;
	return 0;
}

int rdo_regmap_set_firmware(struct rdo_regmap *map, const char *reg, uint64_t min, uint64_t max,
			    char *err, size_t errlen)
{
	const struct rdo_reg *r = info_reg(map, "firmware", reg, err, errlen);
	if (!r)
		return -EINVAL;
	if (min > max)
		return fail(err, errlen, -EINVAL, "firmware range 0x%llx..0x%llx is empty",
			    (unsigned long long)min, (unsigned long long)max);
	map->firmware_reg = r;
	map->fw_min = min;
	map->fw_max = max;
	return 0;
}

void rdo_regmap_set_dma(struct rdo_regmap *map, const struct rdo_map_dma *dma)
{
	map->dma = *dma;
}

const struct rdo_map_dma *rdo_regmap_dma(const struct rdo_regmap *map)
{
	return &map->dma;
}

const struct rdo_reg *rdo_regmap_identity(const struct rdo_regmap *map, uint64_t *value)
{
	*value = map->identity;
	return map->identity_reg;
}

const struct rdo_reg *rdo_regmap_firmware(const struct rdo_regmap *map, uint64_t *min,
					  uint64_t *max)
{
	*min = map->fw_min;
	*max = map->fw_max;
	return map->firmware_reg;
}

static int resolve_raw(const char *name, const char *colon, struct rdo_target *t, char *err,
		       size_t errlen)
{
	char bar[16];
	size_t n = (size_t)(colon - name);
	if (n >= sizeof(bar))
		return fail(err, errlen, -EINVAL, "\"%s\": expected barN:OFFSET", name);
	memcpy(bar, name, n);
	bar[n] = '\0';
	const char *digits = strncmp(bar, "bar", 3) == 0 ? bar + 3 : bar;
	uint64_t b, off;
	if (rdo_parse_u64(digits, &b) || b >= RDO_CARD_MAX_BARS)
		return fail(err, errlen, -EINVAL, "\"%s\": BAR \"%s\" is not 0 to %d", name, bar,
			    RDO_CARD_MAX_BARS - 1);
	if (rdo_parse_u64(colon + 1, &off))
		return fail(err, errlen, -EINVAL,
			    "\"%s\": offset \"%s\" is not a number (e.g. bar0:0x10)", name,
			    colon + 1);
	*t = (struct rdo_target){.bar = (unsigned)b, .offset = off, .width = 32};
	return 0;
}

int rdo_regmap_resolve(const struct rdo_regmap *map, const char *name, struct rdo_target *t,
		       char *err, size_t errlen)
{
	const char *colon = strchr(name, ':');
	if (colon)
		return resolve_raw(name, colon, t, err, errlen);
	const char *dot = strchr(name, '.');
	if (!dot)
		return fail(err, errlen, -EINVAL,
			    "\"%s\": expected bank.register, bank.register.field or barN:OFFSET",
			    name);
	const char *dot2 = strchr(dot + 1, '.');
	char full[2 * RDO_NAME_MAX];
	size_t n = dot2 ? (size_t)(dot2 - name) : strlen(name);
	if (n >= sizeof(full))
		return fail(err, errlen, -ENOENT, "no register \"%.*s\" in register map %s", (int)n,
			    name, map->name);
	memcpy(full, name, n);
	full[n] = '\0';
	const struct rdo_reg *r = find_reg(map, full);
	if (!r)
		return fail(err, errlen, -ENOENT, "no register \"%s\" in register map %s", full,
			    map->name);
	*t = (struct rdo_target){.reg = r, .bar = r->bar, .offset = r->offset, .width = r->width};
	if (!dot2)
		return 0;
	for (size_t i = 0; i < r->nfields; i++)
		if (strcmp(r->fields[i].name, dot2 + 1) == 0) {
			t->field = &r->fields[i];
			return 0;
		}
	return fail(err, errlen, -ENOENT, "register %s has no field \"%s\"", full, dot2 + 1);
}

size_t rdo_regmap_count(const struct rdo_regmap *map)
{
	return map->nregs;
}

const struct rdo_reg *rdo_regmap_at(const struct rdo_regmap *map, size_t i)
{
	return i < map->nregs ? map->by_addr[i] : NULL;
}

uint64_t rdo_reg_read(struct rdo_card *card, const struct rdo_reg *r)
{
	uint64_t v = 0;
	if (r)
		rdo_card_read(card, r->bar, r->offset, r->width, &v);
	return v;
}
