#include "control.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "dma.h"
#include "log.h"
#include "readout.pb-c.h"
#include "status.h"
#include "util.h"
#include "zsock.h"

#define ARENA_CHUNK (256u * 1024u)
#define MAX_FRAMES  9  /* routing envelope and payload of one request */
#define MAX_CHANGES 64 /* changes in one modify */

/*
 * Per-request memory: the unpacked request and the reply are built here and
 * dropped together when the next request starts, so serving a request costs
 * no malloc once the first chunk exists.
 */
struct arena_chunk {
	struct arena_chunk *next;
	size_t cap, used;
	max_align_t data[];
};

struct arena {
	struct arena_chunk *head;
};

static void *arena_alloc(struct arena *a, size_t n)
{
	n = (n + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);
	struct arena_chunk *c = a->head;
	if (!c || c->cap - c->used < n) {
		size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = a->head;
		a->head = c;
	}
	void *p = (char *)c->data + c->used;
	c->used += n;
	return p;
}

/* Keep the oldest chunk, the one every request fits in, and free the rest. */
static void arena_reset(struct arena *a)
{
	while (a->head && a->head->next) {
		struct arena_chunk *c = a->head;
		a->head = c->next;
		free(c);
	}
	if (a->head)
		a->head->used = 0;
}

static void arena_fini(struct arena *a)
{
	arena_reset(a);
	free(a->head);
	a->head = NULL;
}

static void *pb_alloc(void *data, size_t size)
{
	return arena_alloc(data, size);
}

static void pb_free(void *data, void *p)
{
	(void)data;
	(void)p; /* freed with the arena */
}

struct rdo_control {
	void *router;
	struct rdo_card *card;
	struct rdo_regmap *map;
	struct rdo_control_info info;
	struct arena arena;
	ProtobufCAllocator pba;
	uint8_t *out;
	size_t out_cap;
	uint64_t served, refused;
};

/* One request being served. */
struct call {
	struct rdo_control *ctl;
	Rdo__Reply *rep;
};

static char *afmt(struct call *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static char *afmt(struct call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	char *s = arena_alloc(&c->ctl->arena, (size_t)n + 1);
	if (!s)
		return "out of memory";
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static int refuse(struct call *c, Rdo__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(struct call *c, Rdo__ErrorCode code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->rep->error = code;
	c->rep->message = afmt(c, "%s", msg);
	return -1;
}

static void *anew(struct call *c, size_t size)
{
	void *p = arena_alloc(&c->ctl->arena, size);
	if (p)
		memset(p, 0, size);
	return p;
}

static int resolve(struct call *c, const char *name, struct rdo_target *t)
{
	char why[256];
	int rc = rdo_regmap_resolve(c->ctl->map, name, t, why, sizeof(why));
	if (rc == -ENOENT)
		return refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, "%s", why);
	if (rc)
		return refuse(c, RDO__ERROR_CODE__ERR_INVALID, "%s", why);
	rc = rdo_card_check(c->ctl->card, t->bar, t->offset, t->width);
	if (rc == -ENODEV)
		return refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, "%s: card %s has no BAR %u",
			      name, c->ctl->card->name, t->bar);
	if (rc == -ERANGE)
		return refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS,
			      "%s: offset 0x%llx is outside BAR %u of card %s (0x%llx bytes)", name,
			      (unsigned long long)t->offset, t->bar, c->ctl->card->name,
			      (unsigned long long)c->ctl->card->bar_size[t->bar]);
	if (rc)
		return refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS,
			      "%s: offset 0x%llx is not aligned to %u bits", name,
			      (unsigned long long)t->offset, t->width);
	return 0;
}

static bool readable(const struct rdo_target *t)
{
	return !t->reg || t->reg->access != RDO_ACCESS_WO;
}

static int check_readable(struct call *c, const char *name, const struct rdo_target *t)
{
	if (readable(t))
		return 0;
	return refuse(c, RDO__ERROR_CODE__ERR_WRITE_ONLY,
		      "%s is write-only: the card returns nothing meaningful for it", name);
}

static int check_writable(struct call *c, const char *name, const struct rdo_target *t)
{
	if (!t->reg || t->reg->access != RDO_ACCESS_RO)
		return 0;
	return refuse(c, RDO__ERROR_CODE__ERR_READ_ONLY, "%s is read-only", name);
}

static uint64_t card_read(struct call *c, const struct rdo_target *t)
{
	uint64_t v = 0;
	rdo_card_read(c->ctl->card, t->bar, t->offset, t->width, &v); /* checked by resolve */
	return v;
}

/* A whole register the map declares for card info; 0 when it declares none. */
static uint64_t read_reg(struct call *c, const struct rdo_reg *r)
{
	if (!r)
		return 0;
	struct rdo_target t = {.reg = r, .bar = r->bar, .offset = r->offset, .width = r->width};
	return card_read(c, &t);
}

static Rdo__RegValue *new_value(struct call *c, const char *name, const struct rdo_target *t)
{
	Rdo__RegValue *v = anew(c, sizeof(*v));
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
	return v;
}

/* The field list of `v` without values, for registers that are not read. */
static int name_fields(struct call *c, Rdo__RegValue *v, const struct rdo_reg *r)
{
	v->fields = anew(c, (r->nfields ? r->nfields : 1) * sizeof(*v->fields));
	if (!v->fields)
		return -1;
	for (size_t i = 0; i < r->nfields; i++) {
		Rdo__FieldValue *fv = anew(c, sizeof(*fv));
		if (!fv)
			return -1;
		rdo__field_value__init(fv);
		fv->name = r->fields[i].name;
		v->fields[v->n_fields++] = fv;
	}
	return 0;
}

/* Fill in the value of `v` from the register's content `reg`, field by field. */
static int set_value(struct call *c, Rdo__RegValue *v, const struct rdo_target *t, uint64_t reg)
{
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

static Rdo__RegValues *new_values(struct call *c, size_t n)
{
	Rdo__RegValues *vals = anew(c, sizeof(*vals));
	if (!vals)
		return NULL;
	rdo__reg_values__init(vals);
	vals->regs = anew(c, (n ? n : 1) * sizeof(*vals->regs));
	if (!vals->regs)
		return NULL;
	c->rep->body_case = RDO__REPLY__BODY_VALUES;
	c->rep->values = vals;
	return vals;
}

static int oom(struct call *c)
{
	return refuse(c, RDO__ERROR_CODE__ERR_CARD, "server out of memory for this request");
}

static int do_info(struct call *c)
{
	struct rdo_control *ctl = c->ctl;
	Rdo__InfoReply *info = anew(c, sizeof(*info));
	if (!info)
		return oom(c);
	rdo__info_reply__init(info);
	info->card = ctl->card->name;
	info->backend = (char *)ctl->info.backend;
	info->address = ctl->card->address;
	info->links = ctl->card->links;
	info->map_name = (char *)rdo_regmap_name(ctl->map);
	info->map_file = (char *)rdo_regmap_source(ctl->map);
	info->map_registers = (uint32_t)rdo_regmap_count(ctl->map);
	info->forced = ctl->info.forced;
	if (ctl->info.map_sha256) {
		info->map_sha256.data = (uint8_t *)ctl->info.map_sha256;
		info->map_sha256.len = 32;
	}
	info->server_version = RDO_VERSION;
	uint64_t a, b;
	info->identity = (uint32_t)read_reg(c, rdo_regmap_identity(ctl->map, &a));
	info->firmware = (uint32_t)read_reg(c, rdo_regmap_firmware(ctl->map, &a, &b));
	info->serial = read_reg(c, rdo_regmap_serial(ctl->map));
	info->bars = anew(c, RDO_CARD_MAX_BARS * sizeof(*info->bars));
	if (!info->bars)
		return oom(c);
	for (unsigned i = 0; i < RDO_CARD_MAX_BARS; i++) {
		if (!ctl->card->bar_size[i])
			continue;
		Rdo__Bar *bar = anew(c, sizeof(*bar));
		if (!bar)
			return oom(c);
		rdo__bar__init(bar);
		bar->index = i;
		bar->size = ctl->card->bar_size[i];
		info->bars[info->n_bars++] = bar;
	}
	c->rep->body_case = RDO__REPLY__BODY_INFO;
	c->rep->info = info;
	return 0;
}

static int do_read(struct call *c, const Rdo__RegReadRequest *rq)
{
	if (rq->n_names == 0)
		return refuse(c, RDO__ERROR_CODE__ERR_INVALID, "reg_read: no register named");
	struct rdo_target *t = anew(c, rq->n_names * sizeof(*t));
	Rdo__RegValues *vals = new_values(c, rq->n_names);
	if (!t || !vals)
		return oom(c);
	for (size_t i = 0; i < rq->n_names; i++)
		if (resolve(c, rq->names[i], &t[i]) || check_readable(c, rq->names[i], &t[i]))
			return -1;
	for (size_t i = 0; i < rq->n_names; i++) {
		Rdo__RegValue *v = new_value(c, rq->names[i], &t[i]);
		if (!v || set_value(c, v, &t[i], card_read(c, &t[i])))
			return oom(c);
		vals->regs[vals->n_regs++] = v;
	}
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
static int plan_change(struct call *c, const char *name, uint64_t value, const char *symbol,
		       uint64_t mask, struct plan *p)
{
	struct rdo_target t;
	if (resolve(c, name, &t) || check_writable(c, name, &t))
		return -1;
	unsigned width = t.field ? rdo_field_width(t.field) : t.width;
	if (symbol && symbol[0]) {
		if (!t.field || t.field->nvalues == 0)
			return refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "%s has no named values: give a number instead of \"%s\"",
				      name, symbol);
		if (rdo_field_lookup_symbol(t.field, symbol, &value)) {
			char list[256] = "";
			for (size_t i = 0; i < t.field->nvalues; i++)
				snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
					 i ? ", " : "", t.field->values[i].name);
			return refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "%s has no value \"%s\" (one of: %s)", name, symbol, list);
		}
	}
	if (value & ~rdo_mask(width))
		return refuse(c, RDO__ERROR_CODE__ERR_VALUE_RANGE,
			      "%s: value 0x%llx does not fit in %u bits (at most 0x%llx)", name,
			      (unsigned long long)value, width,
			      (unsigned long long)rdo_mask(width));
	if (mask & ~rdo_mask(width))
		return refuse(c, RDO__ERROR_CODE__ERR_VALUE_RANGE,
			      "%s: mask 0x%llx does not fit in %u bits", name,
			      (unsigned long long)mask, width);
	if (mask && (value & ~mask))
		return refuse(c, RDO__ERROR_CODE__ERR_INVALID,
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
static int apply(struct call *c, const struct plan *p, Rdo__RegValue *v)
{
	bool rmw = !p->t.reg || p->t.reg->access == RDO_ACCESS_RW;
	uint64_t old = readable(&p->t) ? card_read(c, &p->t) : 0;
	uint64_t val = rmw ? (old & ~p->mask) | p->bits : p->bits;
	rdo_card_write(c->ctl->card, p->t.bar, p->t.offset, p->t.width, val);
	if (readable(&p->t)) {
		v->has_old = true;
		v->old = old;
		if (set_value(c, v, &p->t, card_read(c, &p->t)))
			return -1;
	}
	if (v->has_old)
		rdo_notice("card %s: wrote 0x%llx to %s (bar%u:0x%llx), was 0x%llx, reads 0x%llx",
			   c->ctl->card->name, (unsigned long long)val, p->name, p->t.bar,
			   (unsigned long long)p->t.offset, (unsigned long long)old,
			   (unsigned long long)v->value);
	else
		rdo_notice("card %s: wrote 0x%llx to %s (bar%u:0x%llx)", c->ctl->card->name,
			   (unsigned long long)val, p->name, p->t.bar,
			   (unsigned long long)p->t.offset);
	return 0;
}

static int apply_all(struct call *c, const struct plan *plans, size_t n)
{
	Rdo__RegValues *vals = new_values(c, n);
	if (!vals)
		return oom(c);
	for (size_t i = 0; i < n; i++) {
		Rdo__RegValue *v = new_value(c, plans[i].name, &plans[i].t);
		if (!v || apply(c, &plans[i], v))
			return oom(c);
		vals->regs[vals->n_regs++] = v;
	}
	return 0;
}

static int do_write(struct call *c, const Rdo__RegWriteRequest *rq)
{
	struct plan p;
	if (plan_change(c, rq->name, rq->value, rq->symbol, 0, &p))
		return -1;
	return apply_all(c, &p, 1);
}

static int do_modify(struct call *c, const Rdo__RegModifyRequest *rq)
{
	if (rq->n_changes == 0 || rq->n_changes > MAX_CHANGES)
		return refuse(c, RDO__ERROR_CODE__ERR_INVALID,
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
			return refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "%s: changes of one register must have one width", ch->name);
		if (plans[j].mask & p.mask)
			return refuse(c, RDO__ERROR_CODE__ERR_INVALID,
				      "%s: two changes of this request set the same bits of %s",
				      ch->name, plans[j].name);
		plans[j].mask |= p.mask;
		plans[j].bits |= p.bits;
	}
	return apply_all(c, plans, n);
}

static int do_list(struct call *c, const Rdo__RegListRequest *rq)
{
	const struct rdo_regmap *map = c->ctl->map;
	size_t count = rdo_regmap_count(map);
	Rdo__RegValues *vals = new_values(c, count);
	if (!vals)
		return oom(c);
	const char *pattern = rq->pattern && rq->pattern[0] ? rq->pattern : NULL;
	for (size_t i = 0; i < count; i++) {
		const struct rdo_reg *r = rdo_regmap_at(map, i);
		if (pattern && fnmatch(pattern, r->name, 0) != 0)
			continue;
		struct rdo_target t = {
		    .reg = r, .bar = r->bar, .offset = r->offset, .width = r->width};
		Rdo__RegValue *v = new_value(c, r->name, &t);
		if (!v)
			return oom(c);
		v->access = (Rdo__Access)r->access;
		int rc = !rq->no_values && readable(&t) ? set_value(c, v, &t, card_read(c, &t))
							: name_fields(c, v, r);
		if (rc)
			return oom(c);
		vals->regs[vals->n_regs++] = v;
	}
	if (vals->n_regs == 0 && pattern)
		return refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER,
			      "no register of map %s matches \"%s\"", rdo_regmap_name(map),
			      pattern);
	return 0;
}

static int do_define(struct call *c, const Rdo__RegDefineRequest *rq)
{
	struct rdo_regmap *map = c->ctl->map;
	if ((unsigned)rq->access > RDO_ACCESS_W1C)
		return refuse(c, RDO__ERROR_CODE__ERR_INVALID, "reg_define: unknown access %d",
			      (int)rq->access);
	struct rdo_field *fields = anew(c, (rq->n_fields ? rq->n_fields : 1) * sizeof(*fields));
	if (!fields)
		return oom(c);
	for (size_t i = 0; i < rq->n_fields; i++) {
		const Rdo__FieldDef *fd = rq->fields[i];
		fields[i] = (struct rdo_field){.name = fd->name,
					       .lsb = fd->lsb,
					       .msb = fd->msb,
					       .description = fd->description};
		fields[i].values =
		    anew(c, (fd->n_values ? fd->n_values : 1) * sizeof(struct rdo_enum));
		if (!fields[i].values)
			return oom(c);
		for (size_t v = 0; v < fd->n_values; v++)
			fields[i].values[v] =
			    (struct rdo_enum){fd->values[v]->name, fd->values[v]->value};
		fields[i].nvalues = fd->n_values;
	}
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
		return refuse(
		    c, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER,
		    "no bank \"%s\" in register map %s: give its BAR and base to create it",
		    rq->bank, rdo_regmap_name(map));
	else
		rc = rdo_regmap_add_reg(map, rq->bank, &def, why, sizeof(why));
	if (rc == -EEXIST)
		return refuse(c, RDO__ERROR_CODE__ERR_EXISTS, "%s", why);
	if (rc == -ERANGE)
		return refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, "%s", why);
	if (rc)
		return refuse(c, RDO__ERROR_CODE__ERR_INVALID, "%s", why);
	char *full = afmt(c, "%s.%s", rq->bank, rq->name);
	struct rdo_target t;
	if (resolve(c, full, &t))
		return -1;
	rdo_notice("register map %s: defined %s at bar%u:0x%llx, %u bits, %s", rdo_regmap_name(map),
		   full, t.bar, (unsigned long long)t.offset, t.width,
		   rdo_access_name(t.reg->access));
	Rdo__RegValues *vals = new_values(c, 1);
	Rdo__RegValue *v = vals ? new_value(c, t.reg->name, &t) : NULL;
	if (!v || (readable(&t) && set_value(c, v, &t, card_read(c, &t))))
		return oom(c);
	vals->regs[vals->n_regs++] = v;
	return 0;
}

/* Answer with the acquisition status, as the status stream publishes it. */
static int reply_status(struct call *c)
{
	struct rdo_status_msg *m = anew(c, sizeof(*m));
	if (!m)
		return oom(c);
	rdo_status_fill(c->ctl->info.status, m);
	c->rep->body_case = RDO__REPLY__BODY_STATUS;
	c->rep->status = &m->st;
	return 0;
}

/* start, stop, reset: the DMA channel acts, then the status answers. */
static int do_acquisition(struct call *c, Rdo__Request__CmdCase cmd, uint64_t run)
{
	struct rdo_dma *dma = c->ctl->info.dma;
	if (!dma)
		return refuse(c, RDO__ERROR_CODE__ERR_STATE,
			      "this server runs without a DMA channel: no acquisition to control");
	char err[256] = "";
	int rc = cmd == RDO__REQUEST__CMD_START	 ? rdo_dma_start(dma, run, err, sizeof(err))
		 : cmd == RDO__REQUEST__CMD_STOP ? rdo_dma_stop(dma, err, sizeof(err))
						 : rdo_dma_reset(dma, err, sizeof(err));
	if (rc == -EBUSY)
		return refuse(c, RDO__ERROR_CODE__ERR_STATE, "%s", err);
	if (rc)
		return refuse(c, RDO__ERROR_CODE__ERR_CARD, "%s", err);
	return reply_status(c);
}

static int dispatch(struct call *c, const Rdo__Request *rq)
{
	switch (rq->cmd_case) {
	case RDO__REQUEST__CMD_INFO:
		return do_info(c);
	case RDO__REQUEST__CMD_REG_READ:
		return do_read(c, rq->reg_read);
	case RDO__REQUEST__CMD_REG_WRITE:
		return do_write(c, rq->reg_write);
	case RDO__REQUEST__CMD_REG_MODIFY:
		return do_modify(c, rq->reg_modify);
	case RDO__REQUEST__CMD_REG_LIST:
		return do_list(c, rq->reg_list);
	case RDO__REQUEST__CMD_REG_DEFINE:
		return do_define(c, rq->reg_define);
	case RDO__REQUEST__CMD_START:
		return do_acquisition(c, rq->cmd_case, rq->start->run);
	case RDO__REQUEST__CMD_STOP:
	case RDO__REQUEST__CMD_RESET:
		return do_acquisition(c, rq->cmd_case, 0);
	case RDO__REQUEST__CMD_STATUS:
		if (!c->ctl->info.status)
			return refuse(c, RDO__ERROR_CODE__ERR_STATE,
				      "this server runs without a DMA channel: no status");
		return reply_status(c);
	default:
		return refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND,
			      "the request carries no command this server knows (protocol %d: "
			      "info, reg_read, reg_write, reg_modify, reg_list, reg_define, start, "
			      "stop, reset, status)",
			      RDO_PROTOCOL_VERSION);
	}
}

size_t rdo_control_handle(struct rdo_control *ctl, const void *req, size_t len, const void **reply)
{
	arena_reset(&ctl->arena);
	Rdo__Reply rep;
	rdo__reply__init(&rep);
	rep.version = RDO_PROTOCOL_VERSION;
	rep.message = "";
	struct call c = {.ctl = ctl, .rep = &rep};
	Rdo__Request *rq = rdo__request__unpack(&ctl->pba, len, req);
	if (rq)
		rep.id = rq->id;
	int rc;
	if (!rq)
		rc = refuse(&c, RDO__ERROR_CODE__ERR_MALFORMED,
			    "the message (%zu bytes) is not a readoutd Request protobuf: "
			    "malformed or truncated",
			    len);
	else if (rq->version != RDO_PROTOCOL_VERSION)
		rc = refuse(&c, RDO__ERROR_CODE__ERR_VERSION,
			    "protocol version %u is not spoken here: this server speaks version %d",
			    rq->version, RDO_PROTOCOL_VERSION);
	else
		rc = dispatch(&c, rq);
	if (rc) {
		/* A refused request returns no partial body. */
		rep.body_case = RDO__REPLY__BODY__NOT_SET;
		ctl->refused++;
		rdo_info("card %s: refused request %llu: %s", ctl->card->name,
			 (unsigned long long)rep.id, rep.message);
	} else {
		rep.message = "ok";
		ctl->served++;
	}
	size_t n = rdo__reply__get_packed_size(&rep);
	if (n > ctl->out_cap) {
		uint8_t *out = realloc(ctl->out, n);
		if (!out) {
			rdo_err("control: out of memory for a %zu-byte reply", n);
			*reply = NULL;
			return 0;
		}
		ctl->out = out;
		ctl->out_cap = n;
	}
	*reply = ctl->out;
	return rdo__reply__pack(&rep, ctl->out);
}

struct rdo_control *rdo_control_create(void *zctx, struct rdo_card *card, struct rdo_regmap *map,
				       const struct rdo_control_info *info)
{
	struct rdo_control *ctl = calloc(1, sizeof(*ctl));
	if (!ctl) {
		rdo_err("control: out of memory");
		return NULL;
	}
	ctl->card = card;
	ctl->map = map;
	ctl->info = *info;
	ctl->pba =
	    (ProtobufCAllocator){.alloc = pb_alloc, .free = pb_free, .allocator_data = &ctl->arena};
	ctl->router = zmq_socket(zctx, ZMQ_ROUTER);
	if (!ctl->router) {
		rdo_err("control: cannot create the ROUTER socket: %s", zmq_strerror(errno));
		free(ctl);
		return NULL;
	}
	int zero = 0;
	zmq_setsockopt(ctl->router, ZMQ_LINGER, &zero, sizeof(zero));
	return ctl;
}

void rdo_control_destroy(struct rdo_control **pctl)
{
	struct rdo_control *ctl = *pctl;
	if (!ctl)
		return;
	zmq_close(ctl->router);
	arena_fini(&ctl->arena);
	free(ctl->out);
	free(ctl);
	*pctl = NULL;
}

/*
 * libzmq unlinks an existing ipc path before binding it, which would silently
 * take the endpoint from a server still running there. Knock first.
 */
int rdo_control_bind(struct rdo_control *ctl, const struct rdo_endpoints *in,
		     struct rdo_endpoints *bound)
{
	return rdo_zsock_bind_all(ctl->router, "control", in, bound);
}

/*
 * Receive one message, answer it. Envelope frames go back in front of the
 * reply. False when no message was waiting.
 */
static bool serve_one(struct rdo_control *ctl)
{
	zmq_msg_t frames[MAX_FRAMES];
	size_t n = 0;
	bool oversized = false;
	for (;;) {
		zmq_msg_t scratch, *m = n < MAX_FRAMES ? &frames[n] : &scratch;
		zmq_msg_init(m);
		if (zmq_msg_recv(m, ctl->router, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(m);
			if (n == 0)
				return false;
			break;
		}
		bool more = zmq_msg_more(m);
		if (m == &scratch) {
			zmq_msg_close(m);
			oversized = true;
		} else {
			n++;
		}
		if (!more)
			break;
	}
	if (n < 2 || oversized) {
		/* No routing envelope, or more frames than any client sends: drop, count. */
		ctl->refused++;
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
		return true;
	}
	zmq_msg_t *payload = &frames[n - 1];
	const void *reply;
	size_t len = rdo_control_handle(ctl, zmq_msg_data(payload), zmq_msg_size(payload), &reply);
	for (size_t i = 0; i + 1 < n; i++)
		zmq_msg_send(&frames[i], ctl->router, ZMQ_SNDMORE);
	zmq_send(ctl->router, reply, len, 0);
	zmq_msg_close(payload);
	return true;
}

int rdo_control_run(struct rdo_control *ctl, int stop_fd)
{
	zmq_pollitem_t items[] = {
	    {.socket = ctl->router, .events = ZMQ_POLLIN},
	    {.fd = stop_fd, .events = ZMQ_POLLIN},
	};
	for (;;) {
		if (zmq_poll(items, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			rdo_err("control: poll failed: %s", zmq_strerror(errno));
			return -errno;
		}
		/* Answer what has arrived before stopping: a request never goes unanswered. */
		if (items[0].revents & ZMQ_POLLIN)
			while (serve_one(ctl))
				;
		if (items[1].revents & ZMQ_POLLIN)
			return 0;
	}
}

void rdo_control_counters(const struct rdo_control *ctl, uint64_t *served, uint64_t *refused)
{
	*served = ctl->served;
	*refused = ctl->refused;
}
