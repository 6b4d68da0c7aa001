/*
 * The register commands. A register, a field or a raw barN:OFFSET is a
 * target (card/regmap.h); every target of a request is resolved and checked
 * before the first write, so a refused request leaves the card as it was.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "net/control_internal.h"

#define MAX_CHANGES 64 /* changes in one modify */

/* What a request does with a target: resolve() refuses the targets it cannot. */
enum use { USE_ANY, USE_READ, USE_WRITE };

static bool readable(const struct rdo_target *t)
{
	return !t->reg || t->reg->access != RDO_ACCESS_WO;
}

/* `name` in the card's map, within a BAR of the card, fit for `use`. */
static int resolve(struct control_call *c, const char *name, enum use use, struct rdo_target *t)
{
	char why[256];
	int rc = rdo_regmap_resolve(c->cc->map, name, t, why, sizeof(why));
	if (rc == -ENOENT)
		return control_refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, "%s", why);
	if (rc)
		return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID, "%s", why);
	rc = rdo_card_check(c->cc->card, t->bar, t->offset, t->width);
	if (rc == -ENODEV)
		return control_refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS,
				      "%s: card %s has no BAR %u", name, c->cc->card->name, t->bar);
	if (rc == -ERANGE)
		return control_refuse(
		    c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS,
		    "%s: offset 0x%llx is outside BAR %u of card %s (0x%llx bytes)", name,
		    (unsigned long long)t->offset, t->bar, c->cc->card->name,
		    (unsigned long long)c->cc->card->bar_size[t->bar]);
	if (rc)
		return control_refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS,
				      "%s: offset 0x%llx is not aligned to %u bits", name,
				      (unsigned long long)t->offset, t->width);
	if (use == USE_READ && !readable(t))
		return control_refuse(
		    c, RDO__ERROR_CODE__ERR_WRITE_ONLY,
		    "%s is write-only: the card returns nothing meaningful for it", name);
	if (use == USE_WRITE && t->reg && t->reg->access == RDO_ACCESS_RO)
		return control_refuse(c, RDO__ERROR_CODE__ERR_READ_ONLY, "%s is read-only", name);
	return 0;
}

static uint64_t card_read(struct control_call *c, const struct rdo_target *t)
{
	uint64_t v = 0;
	rdo_card_read(c->cc->card, t->bar, t->offset, t->width, &v); /* checked by resolve */
	return v;
}

/* The field list of `v` without values, for registers that are not read. */
static int name_fields(struct control_call *c, Rdo__RegValue *v, const struct rdo_reg *r)
{
	v->fields = control_new(c, r->nfields, sizeof(*v->fields));
	if (!v->fields)
		return -1;
	for (size_t i = 0; i < r->nfields; i++) {
		Rdo__FieldValue *fv = control_new(c, 1, sizeof(*fv));
		if (!fv)
			return -1;
		rdo__field_value__init(fv);
		fv->name = r->fields[i].name;
		v->fields[v->n_fields++] = fv;
	}
	return 0;
}

/* Read the target into `v`: the field's value, or the register's and each of its fields'. */
static int read_value(struct control_call *c, Rdo__RegValue *v, const struct rdo_target *t)
{
	uint64_t reg = card_read(c, t);
	v->has_value = true;
	if (t->field) {
		v->value = rdo_field_get(t->field, reg);
		v->symbol = (char *)rdo_field_symbol(t->field, v->value);
		if (!v->symbol)
			v->symbol = "";
		return 0;
	}
	v->value = reg;
	if (!t->reg || name_fields(c, v, t->reg))
		return t->reg ? -1 : 0;
	for (size_t i = 0; i < v->n_fields; i++) {
		const struct rdo_field *f = &t->reg->fields[i];
		Rdo__FieldValue *fv = v->fields[i];
		fv->value = rdo_field_get(f, reg);
		const char *sym = rdo_field_symbol(f, fv->value);
		fv->symbol = (char *)(sym ? sym : "");
	}
	return 0;
}

/* The reply's list of values, room for `n`. */
static Rdo__RegValues *new_values(struct control_call *c, size_t n)
{
	Rdo__RegValues *vals = control_new(c, 1, sizeof(*vals));
	if (!vals)
		return NULL;
	rdo__reg_values__init(vals);
	vals->regs = control_new(c, n, sizeof(*vals->regs));
	if (!vals->regs)
		return NULL;
	c->rep->body_case = RDO__REPLY__BODY_VALUES;
	c->rep->values = vals;
	return vals;
}

/*
 * Append the entry of `t` to `vals`, under `name`: where it is and what it
 * is, and when `read` and the target can be read, its value read now. NULL
 * when out of memory.
 */
static Rdo__RegValue *add_entry(struct control_call *c, Rdo__RegValues *vals, const char *name,
				const struct rdo_target *t, bool read)
{
	Rdo__RegValue *v = control_new(c, 1, sizeof(*v));
	if (!v)
		return NULL;
	rdo__reg_value__init(v);
	v->name = (char *)name;
	v->bar = t->bar;
	v->offset = t->offset;
	v->width = t->field ? rdo_field_width(t->field) : t->width;
	if (t->reg) {
		v->access = (Rdo__Access)t->reg->access;
		v->description = t->field ? t->field->description : t->reg->description;
	}
	if (t->field) {
		v->lsb = t->field->lsb;
		v->msb = t->field->msb;
	}
	if (read && readable(t) && read_value(c, v, t))
		return NULL;
	vals->regs[vals->n_regs++] = v;
	return v;
}

int control_reg_read(struct control_call *c, const Rdo__Request *req)
{
	const Rdo__RegReadRequest *rq = req->reg_read;
	if (rq->n_names == 0)
		return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "reg_read: no register named");
	struct rdo_target *t = control_new(c, rq->n_names, sizeof(*t));
	Rdo__RegValues *vals = new_values(c, rq->n_names);
	if (!t || !vals)
		return control_oom(c);
	for (size_t i = 0; i < rq->n_names; i++)
		if (resolve(c, rq->names[i], USE_READ, &t[i]))
			return -1;
	for (size_t i = 0; i < rq->n_names; i++)
		if (!add_entry(c, vals, rq->names[i], &t[i], true))
			return control_oom(c);
	return 0;
}

/*
 * A write planned against one register: the bits of `mask` take the bits of
 * `bits`. Planned writes are checked in full before any is applied.
 */
struct plan {
	const char *name;
	struct rdo_target t; /* the whole register: field is NULL */
	uint64_t mask, bits;
};

/*
 * Turn "name = value" (or symbol, under an optional mask) into a plan. A mask
 * is relative to the field when the name is one.
 */
static int plan_change(struct control_call *c, const char *name, uint64_t value, const char *symbol,
		       uint64_t mask, struct plan *p)
{
	struct rdo_target t;
	if (resolve(c, name, USE_WRITE, &t))
		return -1;
	unsigned width = t.field ? rdo_field_width(t.field) : t.width;
	if (symbol && symbol[0]) {
		if (!t.field || t.field->nvalues == 0)
			return control_refuse(
			    c, RDO__ERROR_CODE__ERR_INVALID,
			    "%s has no named values: give a number instead of \"%s\"", name,
			    symbol);
		if (rdo_field_lookup_symbol(t.field, symbol, &value)) {
			char list[256] = "";
			for (size_t i = 0; i < t.field->nvalues; i++)
				control_join(list, sizeof(list), i, t.field->values[i].name);
			return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID,
					      "%s has no value \"%s\" (one of: %s)", name, symbol,
					      list);
		}
	}
	if (value & ~rdo_mask(width))
		return control_refuse(c, RDO__ERROR_CODE__ERR_VALUE_RANGE,
				      "%s: value 0x%llx does not fit in %u bits (at most 0x%llx)",
				      name, (unsigned long long)value, width,
				      (unsigned long long)rdo_mask(width));
	if (mask & ~rdo_mask(width))
		return control_refuse(c, RDO__ERROR_CODE__ERR_VALUE_RANGE,
				      "%s: mask 0x%llx does not fit in %u bits", name,
				      (unsigned long long)mask, width);
	if (mask && (value & ~mask))
		return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "%s: value 0x%llx has bits outside the mask 0x%llx", name,
				      (unsigned long long)value, (unsigned long long)mask);
	if (!mask)
		mask = rdo_mask(width);
	unsigned shift = t.field ? t.field->lsb : 0;
	*p = (struct plan){
	    .name = t.reg ? t.reg->name : name,
	    .t = t,
	    .mask = mask << shift,
	    .bits = value << shift,
	};
	p->t.field = NULL;
	return 0;
}

/*
 * Apply a plan. A read-write register (or a raw offset) is read, modified
 * and written; write-only and write-1-to-clear registers cannot be
 * read-modify-written, so they get the planned bits and zeros elsewhere.
 */
static int apply(struct control_call *c, const struct plan *p, Rdo__RegValue *v)
{
	bool rmw = !p->t.reg || p->t.reg->access == RDO_ACCESS_RW;
	uint64_t old = readable(&p->t) ? card_read(c, &p->t) : 0;
	uint64_t val = rmw ? (old & ~p->mask) | p->bits : p->bits;
	rdo_card_write(c->cc->card, p->t.bar, p->t.offset, p->t.width, val);
	char after[64] = "write-only";
	if (readable(&p->t)) {
		v->has_old = true;
		v->old = old;
		if (read_value(c, v, &p->t))
			return -1;
		snprintf(after, sizeof(after), "was 0x%llx, reads 0x%llx", (unsigned long long)old,
			 (unsigned long long)v->value);
	}
	control_audit(c, "wrote 0x%llx to card %s %s (bar%u:0x%llx), %s", (unsigned long long)val,
		      c->cc->card->name, p->name, p->t.bar, (unsigned long long)p->t.offset, after);
	return 0;
}

static int apply_all(struct control_call *c, const struct plan *plans, size_t n)
{
	Rdo__RegValues *vals = new_values(c, n);
	if (!vals)
		return control_oom(c);
	for (size_t i = 0; i < n; i++) {
		Rdo__RegValue *v = add_entry(c, vals, plans[i].name, &plans[i].t, false);
		if (!v || apply(c, &plans[i], v))
			return control_oom(c);
	}
	return 0;
}

int control_reg_write(struct control_call *c, const Rdo__Request *req)
{
	const Rdo__RegWriteRequest *rq = req->reg_write;
	struct plan p;
	if (plan_change(c, rq->name, rq->value, rq->symbol, 0, &p))
		return -1;
	return apply_all(c, &p, 1);
}

/* Changes of one register are merged into one plan, so each register is written once. */
int control_reg_modify(struct control_call *c, const Rdo__Request *req)
{
	const Rdo__RegModifyRequest *rq = req->reg_modify;
	if (rq->n_changes == 0 || rq->n_changes > MAX_CHANGES)
		return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "reg_modify: expected 1 to %d changes, got %zu", MAX_CHANGES,
				      rq->n_changes);
	struct plan plans[MAX_CHANGES];
	size_t n = 0;
	for (size_t i = 0; i < rq->n_changes; i++) {
		const Rdo__RegChange *ch = rq->changes[i];
		struct plan p;
		if (plan_change(c, ch->name, ch->value, ch->symbol, ch->mask, &p))
			return -1;
		size_t j = 0;
		while (j < n && !(plans[j].t.bar == p.t.bar && plans[j].t.offset == p.t.offset))
			j++;
		if (j == n) {
			plans[n++] = p;
			continue;
		}
		if (plans[j].t.width != p.t.width)
			return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID,
					      "%s: changes of one register must have one width",
					      ch->name);
		if (plans[j].mask & p.mask)
			return control_refuse(
			    c, RDO__ERROR_CODE__ERR_INVALID,
			    "%s: two changes of this request set the same bits of %s", ch->name,
			    plans[j].name);
		plans[j].mask |= p.mask;
		plans[j].bits |= p.bits;
	}
	return apply_all(c, plans, n);
}

int control_reg_list(struct control_call *c, const Rdo__Request *req)
{
	const Rdo__RegListRequest *rq = req->reg_list;
	const struct rdo_regmap *map = c->cc->map;
	size_t count = rdo_regmap_count(map);
	Rdo__RegValues *vals = new_values(c, count);
	if (!vals)
		return control_oom(c);
	const char *pattern = rq->pattern && rq->pattern[0] ? rq->pattern : NULL;
	for (size_t i = 0; i < count; i++) {
		const struct rdo_reg *r = rdo_regmap_at(map, i);
		if (pattern && fnmatch(pattern, r->name, 0) != 0)
			continue;
		struct rdo_target t = {
		    .reg = r, .bar = r->bar, .offset = r->offset, .width = r->width};
		Rdo__RegValue *v = add_entry(c, vals, r->name, &t, !rq->no_values);
		if (!v || ((rq->no_values || !readable(&t)) && name_fields(c, v, r)))
			return control_oom(c);
	}
	if (vals->n_regs == 0 && pattern)
		return control_refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER,
				      "no register of map %s matches \"%s\"", rdo_regmap_name(map),
				      pattern);
	return 0;
}

/* The request's fields, in the arena, as the map takes them. NULL when out of memory. */
static struct rdo_field *define_fields(struct control_call *c, const Rdo__RegDefineRequest *rq)
{
	struct rdo_field *fields = control_new(c, rq->n_fields, sizeof(*fields));
	if (!fields)
		return NULL;
	for (size_t i = 0; i < rq->n_fields; i++) {
		const Rdo__FieldDef *fd = rq->fields[i];
		fields[i] = (struct rdo_field){.name = fd->name,
					       .lsb = fd->lsb,
					       .msb = fd->msb,
					       .description = fd->description};
		fields[i].values = control_new(c, fd->n_values, sizeof(struct rdo_enum));
		if (!fields[i].values)
			return NULL;
		for (size_t v = 0; v < fd->n_values; v++)
			fields[i].values[v] =
			    (struct rdo_enum){fd->values[v]->name, fd->values[v]->value};
		fields[i].nvalues = fd->n_values;
	}
	return fields;
}

int control_reg_define(struct control_call *c, const Rdo__Request *req)
{
	const Rdo__RegDefineRequest *rq = req->reg_define;
	struct rdo_regmap *map = c->cc->map;
	if ((unsigned)rq->access > RDO_ACCESS_W1C)
		return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "reg_define: unknown access %d", (int)rq->access);
	struct rdo_field *fields = define_fields(c, rq);
	if (!fields)
		return control_oom(c);
	struct rdo_reg_def def = {
	    .name = rq->name,
	    .offset = rq->offset,
	    .width = rq->width ? rq->width : 32,
	    .access = (enum rdo_access)rq->access,
	    .reset = rq->reset,
	    .description = rq->description,
	    .fields = fields,
	    .nfields = rq->n_fields,
	};
	char why[256];
	int rc;
	if (rq->new_bank)
		rc = rdo_regmap_add_bank_reg(map, rq->bank, rq->bank_bar, rq->bank_base, "", &def,
					     why, sizeof(why));
	else if (!rdo_regmap_bank(map, rq->bank))
		return control_refuse(
		    c, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER,
		    "no bank \"%s\" in register map %s: give its BAR and base to create it",
		    rq->bank, rdo_regmap_name(map));
	else
		rc = rdo_regmap_add_reg(map, rq->bank, &def, why, sizeof(why));
	if (rc == -EEXIST)
		return control_refuse(c, RDO__ERROR_CODE__ERR_EXISTS, "%s", why);
	if (rc == -ERANGE)
		return control_refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, "%s", why);
	if (rc)
		return control_refuse(c, RDO__ERROR_CODE__ERR_INVALID, "%s", why);
	char *full = control_printf(c, "%s.%s", rq->bank, rq->name);
	struct rdo_target t;
	if (resolve(c, full, USE_ANY, &t))
		return -1;
	control_audit(c, "defined in card %s's register map %s: %s at bar%u:0x%llx, %u bits, %s",
		      c->cc->card->name, rdo_regmap_name(map), full, t.bar,
		      (unsigned long long)t.offset, t.width, rdo_access_name(t.reg->access));
	Rdo__RegValues *vals = new_values(c, 1);
	if (!vals || !add_entry(c, vals, t.reg->name, &t, true))
		return control_oom(c);
	return 0;
}
