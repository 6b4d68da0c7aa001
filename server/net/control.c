#include "net/control.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "dma/dma.h"
#include "common/log.h"
#include "proto/readout.pb-c.h"
#include "net/status.h"
#include "common/util.h"
#include "core/zsock.h"

#define ARENA_CHUNK	     (256u * 1024u)
#define MAX_FRAMES	     9	 /* routing envelope and payload of one request */
#define MAX_CHANGES	     64	 /* changes in one modify */
#define RDO_MAX_CARDS_LISTED 512 /* bytes of card names in a message */

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
	void *monitor; /* the router's handshake failures (a PAIR on its monitor) */
	struct rdo_status *status;
	struct rdo_auth *auth; /* NULL: every client is local */
	struct arena arena;
	ProtobufCAllocator pba;
	uint8_t *out;
	size_t out_cap;
	_Atomic uint64_t served, refused; /* written by the control thread, read by metrics */
	unsigned ncards;
	struct rdo_control_card cards[];
};

/* One request being served: by whom, for which card. */
struct call {
	struct rdo_control *ctl;
	const struct rdo_peer *peer;
	struct rdo_control_card
	    *cc; /* NULL until the request names a card (list_cards needs none) */
	unsigned card_index;
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
	int rc = rdo_regmap_resolve(c->cc->map, name, t, why, sizeof(why));
	if (rc == -ENOENT)
		return refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, "%s", why);
	if (rc)
		return refuse(c, RDO__ERROR_CODE__ERR_INVALID, "%s", why);
	rc = rdo_card_check(c->cc->card, t->bar, t->offset, t->width);
	if (rc == -ENODEV)
		return refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, "%s: card %s has no BAR %u",
			      name, c->cc->card->name, t->bar);
	if (rc == -ERANGE)
		return refuse(c, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS,
			      "%s: offset 0x%llx is outside BAR %u of card %s (0x%llx bytes)", name,
			      (unsigned long long)t->offset, t->bar, c->cc->card->name,
			      (unsigned long long)c->cc->card->bar_size[t->bar]);
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
	rdo_card_read(c->cc->card, t->bar, t->offset, t->width, &v); /* checked by resolve */
	return v;
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

/* A card's info, as info and list_cards answer. */
static Rdo__InfoReply *card_info(struct call *c, const struct rdo_control_card *cc)
{
	Rdo__InfoReply *info = anew(c, sizeof(*info));
	if (!info)
		return NULL;
	rdo__info_reply__init(info);
	info->card = (char *)cc->card->name;
	info->backend = (char *)cc->backend;
	info->address = (char *)cc->card->address;
	info->links = cc->card->links;
	info->map_name = (char *)rdo_regmap_name(cc->map);
	info->map_file = (char *)rdo_regmap_source(cc->map);
	info->map_registers = (uint32_t)rdo_regmap_count(cc->map);
	info->forced = cc->forced;
	info->numa_node = cc->numa_node;
	if (cc->map_sha256) {
		info->map_sha256.data = (uint8_t *)cc->map_sha256;
		info->map_sha256.len = 32;
	}
	info->server_version = RDO_VERSION;
	if (cc->dma) {
		struct rdo_dma_stats st;
		rdo_dma_stats(cc->dma, &st);
		info->state = (Rdo__State)st.state;
	}
	uint64_t a, b;
	info->identity = (uint32_t)rdo_reg_read(cc->card, rdo_regmap_identity(cc->map, &a));
	info->firmware =
	    (uint32_t)rdo_reg_read(cc->card, rdo_regmap_firmware(cc->map, &a, &b));
	info->serial = rdo_reg_read(cc->card, rdo_regmap_serial(cc->map));
	info->bars = anew(c, RDO_CARD_MAX_BARS * sizeof(*info->bars));
	if (!info->bars)
		return NULL;
	for (unsigned i = 0; i < RDO_CARD_MAX_BARS; i++) {
		if (!cc->card->bar_size[i])
			continue;
		Rdo__Bar *bar = anew(c, sizeof(*bar));
		if (!bar)
			return NULL;
		rdo__bar__init(bar);
		bar->index = i;
		bar->size = cc->card->bar_size[i];
		info->bars[info->n_bars++] = bar;
	}
	return info;
}

static int do_info(struct call *c)
{
	Rdo__InfoReply *info = card_info(c, c->cc);
	if (!info)
		return oom(c);
	c->rep->body_case = RDO__REPLY__BODY_INFO;
	c->rep->info = info;
	return 0;
}

static int do_list_cards(struct call *c)
{
	struct rdo_control *ctl = c->ctl;
	Rdo__CardList *list = anew(c, sizeof(*list));
	Rdo__InfoReply **cards = anew(c, ctl->ncards * sizeof(*cards));
	if (!list || !cards)
		return oom(c);
	rdo__card_list__init(list);
	list->cards = cards;
	for (unsigned i = 0; i < ctl->ncards; i++)
		if (!(cards[list->n_cards++] = card_info(c, &ctl->cards[i])))
			return oom(c);
	c->rep->body_case = RDO__REPLY__BODY_CARDS;
	c->rep->cards = list;
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
	rdo_card_write(c->cc->card, p->t.bar, p->t.offset, p->t.width, val);
	if (readable(&p->t)) {
		v->has_old = true;
		v->old = old;
		if (set_value(c, v, &p->t, card_read(c, &p->t)))
			return -1;
	}
	if (v->has_old)
		rdo_notice("audit: %s as %s wrote 0x%llx to card %s %s (bar%u:0x%llx), was 0x%llx, "
			   "reads 0x%llx",
			   c->peer->id, rdo_role_name(c->peer->role), (unsigned long long)val,
			   c->cc->card->name, p->name, p->t.bar, (unsigned long long)p->t.offset,
			   (unsigned long long)old, (unsigned long long)v->value);
	else
		rdo_notice("audit: %s as %s wrote 0x%llx to card %s %s (bar%u:0x%llx), write-only",
			   c->peer->id, rdo_role_name(c->peer->role), (unsigned long long)val,
			   c->cc->card->name, p->name, p->t.bar, (unsigned long long)p->t.offset);
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
	const struct rdo_regmap *map = c->cc->map;
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
	struct rdo_regmap *map = c->cc->map;
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
	rdo_notice(
	    "audit: %s as %s defined in card %s's register map %s: %s at bar%u:0x%llx, %u bits, %s",
	    c->peer->id, rdo_role_name(c->peer->role), c->cc->card->name, rdo_regmap_name(map),
	    full, t.bar, (unsigned long long)t.offset, t.width, rdo_access_name(t.reg->access));
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
	rdo_status_fill(c->ctl->status, c->card_index, m);
	c->rep->body_case = RDO__REPLY__BODY_STATUS;
	c->rep->status = &m->st;
	return 0;
}

/* start, stop, reset: the DMA channel acts, then the status answers. */
static int do_acquisition(struct call *c, Rdo__Request__CmdCase cmd, uint64_t run)
{
	struct rdo_dma *dma = c->cc->dma;
	if (!dma || !c->ctl->status)
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
	rdo_notice("audit: %s as %s %s card %s%s", c->peer->id, rdo_role_name(c->peer->role),
		   cmd == RDO__REQUEST__CMD_START  ? "started acquisition on"
		   : cmd == RDO__REQUEST__CMD_STOP ? "stopped acquisition on"
						   : "reset the DMA channel of",
		   c->cc->card->name,
		   cmd == RDO__REQUEST__CMD_START ? afmt(c, ", run %llu", (unsigned long long)run)
						  : "");
	return reply_status(c);
}

/* What each command is called in messages, and the least role that may send it. */
static const struct {
	const char *name;
	enum rdo_role role;
	bool no_card; /* needs no card named */
} commands[] = {
    [RDO__REQUEST__CMD_INFO] = {"info", RDO_ROLE_MONITOR},
    [RDO__REQUEST__CMD_REG_READ] = {"reg_read", RDO_ROLE_MONITOR},
    [RDO__REQUEST__CMD_REG_WRITE] = {"reg_write", RDO_ROLE_OPERATOR},
    [RDO__REQUEST__CMD_REG_MODIFY] = {"reg_modify", RDO_ROLE_OPERATOR},
    [RDO__REQUEST__CMD_REG_LIST] = {"reg_list", RDO_ROLE_MONITOR},
    [RDO__REQUEST__CMD_REG_DEFINE] = {"reg_define", RDO_ROLE_OPERATOR},
    [RDO__REQUEST__CMD_START] = {"start", RDO_ROLE_OPERATOR},
    [RDO__REQUEST__CMD_STOP] = {"stop", RDO_ROLE_OPERATOR},
    [RDO__REQUEST__CMD_RESET] = {"reset", RDO_ROLE_OPERATOR},
    [RDO__REQUEST__CMD_STATUS] = {"status", RDO_ROLE_MONITOR},
    [RDO__REQUEST__CMD_LIST_CARDS] = {"list_cards", RDO_ROLE_MONITOR, true},
};

/* The card a request names: by name, or the only one. */
static int select_card(struct call *c, const char *name, const char *cmd)
{
	struct rdo_control *ctl = c->ctl;
	char names[RDO_MAX_CARDS_LISTED];
	size_t len = 0;
	for (unsigned i = 0; i < ctl->ncards; i++) {
		if (name[0] ? strcmp(ctl->cards[i].card->name, name) == 0 : ctl->ncards == 1) {
			c->cc = &ctl->cards[i];
			c->card_index = i;
			return 0;
		}
		len += (size_t)snprintf(names + len, len < sizeof(names) ? sizeof(names) - len : 0,
					"%s%s", i ? ", " : "", ctl->cards[i].card->name);
	}
	if (name[0])
		return refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_CARD,
			      "%s: no card \"%s\" here; this server reads out %s", cmd, name,
			      names);
	return refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_CARD,
		      "%s: this server reads out %u cards (%s): name one (readoutctl --card NAME)",
		      cmd, ctl->ncards, names);
}

static int dispatch(struct call *c, const Rdo__Request *rq)
{
	unsigned cmd = (unsigned)rq->cmd_case;
	if (cmd >= RDO_ARRAY_SIZE(commands) || !commands[cmd].name)
		return refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND,
			      "the request carries no command this server knows (protocol %d: "
			      "info, reg_read, reg_write, reg_modify, reg_list, reg_define, start, "
			      "stop, reset, status, list_cards)",
			      RDO_PROTOCOL_VERSION);
	if (c->peer->role < commands[cmd].role) {
		rdo_warn("audit: refused %s as %s: %s%s%s needs the %s role", c->peer->id,
			 rdo_role_name(c->peer->role), commands[cmd].name,
			 rq->card[0] ? " on card " : "", rq->card,
			 rdo_role_name(commands[cmd].role));
		return refuse(c, RDO__ERROR_CODE__ERR_DENIED,
			      "%s needs the %s role, and your key %s has %s: ask the server's "
			      "operator to list it as %s in its authorized_keys",
			      commands[cmd].name, rdo_role_name(commands[cmd].role), c->peer->id,
			      rdo_role_name(c->peer->role), rdo_role_name(commands[cmd].role));
	}
	if (!commands[cmd].no_card && select_card(c, rq->card, commands[cmd].name))
		return -1;
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
		if (!c->ctl->status)
			return refuse(c, RDO__ERROR_CODE__ERR_STATE,
				      "this server runs without a DMA channel: no status");
		return reply_status(c);
	default:
		return do_list_cards(c);
	}
}

/* Plain clients of a control made without auth: local, trusted as operators. */
static const struct rdo_peer local_operator = {.role = RDO_ROLE_OPERATOR, .id = "local"};

size_t rdo_control_handle(struct rdo_control *ctl, const void *req, size_t len, const void **reply)
{
	return rdo_control_handle_as(ctl, &local_operator, req, len, reply);
}

size_t rdo_control_handle_as(struct rdo_control *ctl, const struct rdo_peer *peer, const void *req,
			     size_t len, const void **reply)
{
	arena_reset(&ctl->arena);
	Rdo__Reply rep;
	rdo__reply__init(&rep);
	rep.version = RDO_PROTOCOL_VERSION;
	rep.message = "";
	struct call c = {.ctl = ctl, .peer = peer, .rep = &rep};
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
		atomic_fetch_add_explicit(&ctl->refused, 1, memory_order_relaxed); /* a counter */
		rdo_info("%s%s: refused request %llu from %s: %s", c.cc ? "card " : "control",
			 c.cc ? c.cc->card->name : "", (unsigned long long)rep.id, peer->id,
			 rep.message);
	} else {
		rep.message = "ok";
		atomic_fetch_add_explicit(&ctl->served, 1, memory_order_relaxed); /* a counter */
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

struct rdo_control *rdo_control_create(void *zctx, const struct rdo_control_card *cards, unsigned n,
				       struct rdo_status *status, struct rdo_auth *auth)
{
	struct rdo_control *ctl = calloc(1, sizeof(*ctl) + n * sizeof(ctl->cards[0]));
	if (!ctl) {
		rdo_err("control: out of memory");
		return NULL;
	}
	memcpy(ctl->cards, cards, n * sizeof(cards[0]));
	ctl->ncards = n;
	ctl->status = status;
	ctl->auth = auth;
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
	/*
	 * A client that fails the handshake (no CURVE on a CURVE endpoint, the
	 * wrong server key) never reaches the ZAP handler; the socket monitor is
	 * where it shows, for the audit log.
	 */
	char ep[64];
	snprintf(ep, sizeof(ep), "inproc://rdo-control-monitor-%p", (void *)ctl);
	if (zmq_socket_monitor(ctl->router, ep,
			       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) == 0 &&
	    (ctl->monitor = zmq_socket(zctx, ZMQ_PAIR)) != NULL) {
		zmq_setsockopt(ctl->monitor, ZMQ_LINGER, &zero, sizeof(zero));
		if (zmq_connect(ctl->monitor, ep) != 0) {
			zmq_close(ctl->monitor);
			ctl->monitor = NULL;
		}
	}
	if (!ctl->monitor)
		rdo_warn("control: no socket monitor (%s): failed handshakes will not be logged",
			 zmq_strerror(errno));
	return ctl;
}

struct rdo_regmap *rdo_control_swap_map(struct rdo_control *ctl, unsigned card,
					struct rdo_regmap *map, const uint8_t *sha256)
{
	struct rdo_regmap *old = ctl->cards[card].map;
	ctl->cards[card].map = map;
	ctl->cards[card].map_sha256 = sha256;
	return old;
}

void rdo_control_destroy(struct rdo_control **pctl)
{
	struct rdo_control *ctl = *pctl;
	if (!ctl)
		return;
	if (ctl->monitor) {
		zmq_socket_monitor(ctl->router, NULL, 0);
		zmq_close(ctl->monitor);
	}
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
	return rdo_zsock_bind_all(ctl->router, rdo_auth_policy(ctl->auth), "control", in, bound);
}

/*
 * Receive one message, answer it. Envelope frames go back in front of the
 * reply. False when no message was waiting.
 */
static bool serve_one(struct rdo_control *ctl)
{
	zmq_msg_t frames[MAX_FRAMES];
	bool oversized;
	size_t n = rdo_zsock_recv_frames(ctl->router, frames, MAX_FRAMES, &oversized);
	if (n == 0)
		return false;
	if (n < 2 || oversized) {
		/* No routing envelope, or more frames than any client sends: drop, count. */
		atomic_fetch_add_explicit(&ctl->refused, 1, memory_order_relaxed); /* a counter */
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
		return true;
	}
	zmq_msg_t *payload = &frames[n - 1];
	struct rdo_peer peer = local_operator;
	if (ctl->auth)
		rdo_auth_peer(ctl->auth, payload, &peer);
	const void *reply;
	size_t len =
	    rdo_control_handle_as(ctl, &peer, zmq_msg_data(payload), zmq_msg_size(payload), &reply);
	for (size_t i = 0; i + 1 < n; i++)
		zmq_msg_send(&frames[i], ctl->router, ZMQ_SNDMORE);
	zmq_send(ctl->router, reply, len, 0);
	zmq_msg_close(payload);
	return true;
}

void *rdo_control_socket(struct rdo_control *ctl)
{
	return ctl->router;
}

void *rdo_control_monitor(struct rdo_control *ctl)
{
	return ctl->monitor;
}

/* A monitor event: [u16 event, u32 value][endpoint]. False when none was waiting. */
static bool audit_one(struct rdo_control *ctl)
{
	uint8_t ev[6];
	char ep[RDO_ENDPOINT_MAX] = "";
	if (!ctl->monitor || zmq_recv(ctl->monitor, ev, sizeof(ev), ZMQ_DONTWAIT) < 0)
		return false;
	int more = 0;
	size_t ml = sizeof(more);
	zmq_getsockopt(ctl->monitor, ZMQ_RCVMORE, &more, &ml);
	int n = more ? zmq_recv(ctl->monitor, ep, sizeof(ep) - 1, 0) : 0;
	ep[n > 0 && (size_t)n < sizeof(ep) ? n : 0] = '\0';
	uint16_t event;
	memcpy(&event, ev, sizeof(event));
	rdo_warn(
	    "audit: refused a connection to control at %s: the handshake failed (%s)", ep,
	    event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
		? "a protocol error: a client without CURVE on a CURVE endpoint, or the reverse"
		: "the client hung up: a client without CURVE, or with a wrong server key");
	return true;
}

void rdo_control_serve(struct rdo_control *ctl)
{
	while (serve_one(ctl))
		;
	while (audit_one(ctl))
		;
}

void rdo_control_counters(const struct rdo_control *ctl, uint64_t *served, uint64_t *refused)
{
	*served = atomic_load_explicit(&ctl->served, memory_order_relaxed);   /* a counter */
	*refused = atomic_load_explicit(&ctl->refused, memory_order_relaxed); /* a counter */
}
