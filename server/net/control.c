/*
 * The control's core: a request from its frame to its reply, the table of
 * commands that dispatch goes by, and the commands not about registers
 * (info, list_cards, status, start, stop, reset).
 */
#include "net/control.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "dma/dma.h"
#include "net/control_internal.h"
#include "net/status.h"

#define RDO_MAX_CARDS_LISTED 512 /* bytes of card names in a message */

const struct rdo_peer control_local_operator = {.role = RDO_ROLE_OPERATOR, .id = "local"};

char *control_printf(struct control_call *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *s = rdo_arena_vprintf(&c->ctl->arena, fmt, ap);
	va_end(ap);
	return s ? s : "out of memory";
}

int control_refuse(struct control_call *c, Rdo__ErrorCode code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->rep->error = code;
	c->rep->message = control_printf(c, "%s", msg);
	return -1;
}

int control_oom(struct control_call *c)
{
	return control_refuse(c, RDO__ERROR_CODE__ERR_CARD,
			      "server out of memory for this request");
}

void control_audit(struct control_call *c, const char *fmt, ...)
{
	if (rdo_log_get_level() < LOG_NOTICE)
		return;
	char what[2048]; /* a log line's most */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	rdo_notice("audit: %s as %s %s", c->peer->id, rdo_role_name(c->peer->role), what);
}

void control_join(char *list, size_t size, size_t i, const char *item)
{
	size_t len = strlen(list);
	snprintf(list + len, size - len, "%s%s", i ? ", " : "", item);
}

/* A card's info, as info and list_cards answer. */
static Rdo__InfoReply *card_info(struct control_call *c, const struct rdo_control_card *cc)
{
	Rdo__InfoReply *info = control_new(c, 1, sizeof(*info));
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
	info->firmware = (uint32_t)rdo_reg_read(cc->card, rdo_regmap_firmware(cc->map, &a, &b));
	info->serial = rdo_reg_read(cc->card, rdo_regmap_serial(cc->map));
	info->bars = control_new(c, RDO_CARD_MAX_BARS, sizeof(*info->bars));
	if (!info->bars)
		return NULL;
	for (unsigned i = 0; i < RDO_CARD_MAX_BARS; i++) {
		if (!cc->card->bar_size[i])
			continue;
		Rdo__Bar *bar = control_new(c, 1, sizeof(*bar));
		if (!bar)
			return NULL;
		rdo__bar__init(bar);
		bar->index = i;
		bar->size = cc->card->bar_size[i];
		info->bars[info->n_bars++] = bar;
	}
	return info;
}

static int do_info(struct control_call *c, const Rdo__Request *rq)
{
	(void)rq;
	Rdo__InfoReply *info = card_info(c, c->cc);
	if (!info)
		return control_oom(c);
	c->rep->body_case = RDO__REPLY__BODY_INFO;
	c->rep->info = info;
	return 0;
}

static int do_list_cards(struct control_call *c, const Rdo__Request *rq)
{
	(void)rq;
	struct rdo_control *ctl = c->ctl;
	Rdo__CardList *list = control_new(c, 1, sizeof(*list));
	Rdo__InfoReply **cards = control_new(c, ctl->ncards, sizeof(*cards));
	if (!list || !cards)
		return control_oom(c);
	rdo__card_list__init(list);
	list->cards = cards;
	for (unsigned i = 0; i < ctl->ncards; i++)
		if (!(cards[list->n_cards++] = card_info(c, &ctl->cards[i])))
			return control_oom(c);
	c->rep->body_case = RDO__REPLY__BODY_CARDS;
	c->rep->cards = list;
	return 0;
}

/* Answer with the acquisition status, as the status stream publishes it. */
static int reply_status(struct control_call *c)
{
	struct rdo_status_msg *m = control_new(c, 1, sizeof(*m));
	if (!m)
		return control_oom(c);
	rdo_status_fill(c->ctl->status, c->card_index, m);
	c->rep->body_case = RDO__REPLY__BODY_STATUS;
	c->rep->status = &m->st;
	return 0;
}

static int do_status(struct control_call *c, const Rdo__Request *rq)
{
	(void)rq;
	if (!c->ctl->status)
		return control_refuse(c, RDO__ERROR_CODE__ERR_STATE,
				      "this server runs without a DMA channel: no status");
	return reply_status(c);
}

/* start, stop, reset: the DMA channel acts, then the status answers. */
static int do_acquisition(struct control_call *c, const Rdo__Request *rq)
{
	struct rdo_dma *dma = c->cc->dma;
	if (!dma || !c->ctl->status)
		return control_refuse(
		    c, RDO__ERROR_CODE__ERR_STATE,
		    "this server runs without a DMA channel: no acquisition to control");
	char err[256] = "", run[32] = "";
	const char *did;
	int rc;
	switch (rq->cmd_case) {
	case RDO__REQUEST__CMD_START:
		rc = rdo_dma_start(dma, rq->start->run, err, sizeof(err));
		did = "started acquisition on";
		snprintf(run, sizeof(run), ", run %llu", (unsigned long long)rq->start->run);
		break;
	case RDO__REQUEST__CMD_STOP:
		rc = rdo_dma_stop(dma, err, sizeof(err));
		did = "stopped acquisition on";
		break;
	default:
		rc = rdo_dma_reset(dma, err, sizeof(err));
		did = "reset the DMA channel of";
	}
	if (rc == -EBUSY)
		return control_refuse(c, RDO__ERROR_CODE__ERR_STATE, "%s", err);
	if (rc)
		return control_refuse(c, RDO__ERROR_CODE__ERR_CARD, "%s", err);
	control_audit(c, "%s card %s%s", did, c->cc->card->name, run);
	return reply_status(c);
}

/* A request kind: what messages call it, the least role that may send it, what serves it. */
static const struct command {
	const char *name;
	enum rdo_role role;
	control_handler *handle;
	bool no_card; /* needs no card named */
} commands[] = {
    [RDO__REQUEST__CMD_INFO] = {"info", RDO_ROLE_MONITOR, do_info},
    [RDO__REQUEST__CMD_REG_READ] = {"reg_read", RDO_ROLE_MONITOR, control_reg_read},
    [RDO__REQUEST__CMD_REG_WRITE] = {"reg_write", RDO_ROLE_OPERATOR, control_reg_write},
    [RDO__REQUEST__CMD_REG_MODIFY] = {"reg_modify", RDO_ROLE_OPERATOR, control_reg_modify},
    [RDO__REQUEST__CMD_REG_LIST] = {"reg_list", RDO_ROLE_MONITOR, control_reg_list},
    [RDO__REQUEST__CMD_REG_DEFINE] = {"reg_define", RDO_ROLE_OPERATOR, control_reg_define},
    [RDO__REQUEST__CMD_START] = {"start", RDO_ROLE_OPERATOR, do_acquisition},
    [RDO__REQUEST__CMD_STOP] = {"stop", RDO_ROLE_OPERATOR, do_acquisition},
    [RDO__REQUEST__CMD_RESET] = {"reset", RDO_ROLE_OPERATOR, do_acquisition},
    [RDO__REQUEST__CMD_STATUS] = {"status", RDO_ROLE_MONITOR, do_status},
    [RDO__REQUEST__CMD_LIST_CARDS] = {"list_cards", RDO_ROLE_MONITOR, do_list_cards, true},
};

/* The card a request names: by name, or the only one. */
static int select_card(struct control_call *c, const char *name, const char *cmd)
{
	struct rdo_control *ctl = c->ctl;
	char names[RDO_MAX_CARDS_LISTED] = "";
	for (unsigned i = 0; i < ctl->ncards; i++) {
		if (name[0] ? strcmp(ctl->cards[i].card->name, name) == 0 : ctl->ncards == 1) {
			c->cc = &ctl->cards[i];
			c->card_index = i;
			return 0;
		}
		control_join(names, sizeof(names), i, ctl->cards[i].card->name);
	}
	if (name[0])
		return control_refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_CARD,
				      "%s: no card \"%s\" here; this server reads out %s", cmd,
				      name, names);
	return control_refuse(
	    c, RDO__ERROR_CODE__ERR_UNKNOWN_CARD,
	    "%s: this server reads out %u cards (%s): name one (readoutctl --card NAME)", cmd,
	    ctl->ncards, names);
}

/* The request's command, if its sender's role allows it, on the card it names. */
static int dispatch(struct control_call *c, const Rdo__Request *rq)
{
	unsigned cmd = (unsigned)rq->cmd_case;
	if (cmd >= RDO_ARRAY_SIZE(commands) || !commands[cmd].name) {
		char known[256] = "";
		for (size_t i = 0, n = 0; i < RDO_ARRAY_SIZE(commands); i++)
			if (commands[i].name)
				control_join(known, sizeof(known), n++, commands[i].name);
		return control_refuse(c, RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND,
				      "the request carries no command this server knows "
				      "(protocol %d: %s)",
				      RDO_PROTOCOL_VERSION, known);
	}
	const struct command *k = &commands[cmd];
	if (c->peer->role < k->role) {
		rdo_warn("audit: refused %s as %s: %s%s%s needs the %s role", c->peer->id,
			 rdo_role_name(c->peer->role), k->name, rq->card[0] ? " on card " : "",
			 rq->card, rdo_role_name(k->role));
		return control_refuse(c, RDO__ERROR_CODE__ERR_DENIED,
				      "%s needs the %s role, and your key %s has %s: ask the "
				      "server's operator to list it as %s in its authorized_keys",
				      k->name, rdo_role_name(k->role), c->peer->id,
				      rdo_role_name(c->peer->role), rdo_role_name(k->role));
	}
	if (!k->no_card && select_card(c, rq->card, k->name))
		return -1;
	return k->handle(c, rq);
}

size_t rdo_control_handle(struct rdo_control *ctl, const void *req, size_t len, const void **reply)
{
	return rdo_control_handle_as(ctl, &control_local_operator, req, len, reply);
}

size_t rdo_control_handle_as(struct rdo_control *ctl, const struct rdo_peer *peer, const void *req,
			     size_t len, const void **reply)
{
	rdo_arena_reset(&ctl->arena);
	Rdo__Reply rep;
	rdo__reply__init(&rep);
	rep.version = RDO_PROTOCOL_VERSION;
	rep.message = "";
	struct control_call c = {.ctl = ctl, .peer = peer, .rep = &rep};
	Rdo__Request *rq = rdo__request__unpack(rdo_arena_protobuf(&ctl->arena), len, req);
	if (rq)
		rep.id = rq->id;
	int rc;
	if (!rq)
		rc = control_refuse(&c, RDO__ERROR_CODE__ERR_MALFORMED,
				    "the message (%zu bytes) is not a readoutd Request protobuf: "
				    "malformed or truncated",
				    len);
	else if (rq->version != RDO_PROTOCOL_VERSION)
		rc = control_refuse(
		    &c, RDO__ERROR_CODE__ERR_VERSION,
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

void rdo_control_counters(const struct rdo_control *ctl, uint64_t *served, uint64_t *refused)
{
	*served = atomic_load_explicit(&ctl->served, memory_order_relaxed);   /* a counter */
	*refused = atomic_load_explicit(&ctl->refused, memory_order_relaxed); /* a counter */
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
	rdo_arena_init(&ctl->arena, RDO_ARENA_CHUNK);
	if (control_sock_open(ctl, zctx)) {
		free(ctl); /* the arena has nothing yet */
		return NULL;
	}
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
	control_sock_close(ctl);
	rdo_arena_fini(&ctl->arena);
	free(ctl->out);
	free(ctl);
	*pctl = NULL;
}
