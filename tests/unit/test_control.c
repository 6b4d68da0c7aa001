/*
 * The control surface without sockets: requests are packed here, handed to
 * rdo_control_handle() and the replies unpacked, against the emulated card
 * and the shipped register map.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "card/card.h"
#include "card/card_sim.h"
#include "card/regmap.h"
#include "card/regmap_load.h"
#include "common/log.h"
#include "common/util.h"
#include "net/control.h"
#include "proto/readout.pb-c.h"

#define REGMAP_FILE   RDO_SOURCE_DIR "/config/regmaps/rdo-sim.yaml"
#define MAP_REGISTERS 126

static void *zctx;
static struct rdo_card *card;
static struct rdo_regmap *map;
static struct rdo_control *ctl;
static Rdo__Reply *last;	      /* the latest reply; freed by the next call and at teardown */
static const struct rdo_peer *sender; /* who sends the requests; NULL: a local operator */
static uint64_t next_id = 0x100000000ull;

static void setup(void)
{
	rdo_log_set_level(LOG_WARNING);
	zctx = zmq_ctx_new();
	cr_assert_not_null(zctx);
	struct rdo_card_opts o;
	rdo_card_opts_init(&o);
	card = rdo_card_open(&o);
	cr_assert_not_null(card);
	char err[512] = "";
	map = rdo_regmap_load(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	cr_assert_eq(rdo_regmap_bind_bars(map, card->nbars, card->bar_size, err, sizeof(err)), 0,
		     "%s", err);
	struct rdo_control_card cc = {
	    .card = card, .map = map, .backend = "sim", .forced = false, .numa_node = -1};
	ctl = rdo_control_create(zctx, &cc, 1, NULL, NULL);
	cr_assert_not_null(ctl);
}

static void teardown(void)
{
	if (last)
		rdo__reply__free_unpacked(last, NULL);
	last = NULL;
	rdo_control_destroy(&ctl);
	rdo_regmap_destroy(&map);
	rdo_card_close(&card);
	if (zctx)
		zmq_ctx_term(zctx);
	zctx = NULL;
}

TestSuite(control, .init = setup, .fini = teardown);

/* Hand a frame to the control; the reply must carry version 1 and `want_id`. */
static Rdo__Reply *send_frame(const void *frame, size_t len, uint64_t want_id)
{
	if (last)
		rdo__reply__free_unpacked(last, NULL);
	const void *out = NULL;
	size_t n = sender ? rdo_control_handle_as(ctl, sender, frame, len, &out)
			  : rdo_control_handle(ctl, frame, len, &out);
	cr_assert_not_null(out);
	cr_assert_gt(n, 0);
	last = rdo__reply__unpack(NULL, n, out);
	cr_assert_not_null(last, "the reply does not unpack");
	cr_assert_eq(last->version, 1);
	cr_assert_eq(last->id, want_id, "reply id %llu, request id %llu",
		     (unsigned long long)last->id, (unsigned long long)want_id);
	cr_assert_not_null(last->message);
	return last;
}

/* Pack `rq` (version 1 unless set, a fresh id) and send it. */
static Rdo__Reply *call(Rdo__Request *rq)
{
	if (rq->version == 0)
		rq->version = 1;
	rq->id = next_id++;
	size_t len = rdo__request__get_packed_size(rq);
	uint8_t *buf = malloc(len ? len : 1);
	cr_assert_not_null(buf);
	cr_assert_eq(rdo__request__pack(rq, buf), len);
	Rdo__Reply *rep = send_frame(buf, len, rq->id);
	free(buf);
	return rep;
}

static Rdo__Reply *info(void)
{
	Rdo__InfoRequest ir = RDO__INFO_REQUEST__INIT;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.cmd_case = RDO__REQUEST__CMD_INFO;
	rq.info = &ir;
	return call(&rq);
}

static Rdo__Reply *reg_read_n(const char *const *names, size_t n)
{
	Rdo__RegReadRequest rr = RDO__REG_READ_REQUEST__INIT;
	rr.names = (char **)names;
	rr.n_names = n;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.cmd_case = RDO__REQUEST__CMD_REG_READ;
	rq.reg_read = &rr;
	return call(&rq);
}

static Rdo__Reply *reg_read(const char *name)
{
	return reg_read_n(&name, 1);
}

static Rdo__Reply *reg_write(const char *name, uint64_t value, const char *symbol)
{
	Rdo__RegWriteRequest wr = RDO__REG_WRITE_REQUEST__INIT;
	wr.name = (char *)name;
	wr.value = value;
	if (symbol)
		wr.symbol = (char *)symbol;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.cmd_case = RDO__REQUEST__CMD_REG_WRITE;
	rq.reg_write = &wr;
	return call(&rq);
}

static Rdo__RegChange change(const char *name, uint64_t value, uint64_t mask, const char *symbol)
{
	Rdo__RegChange ch = RDO__REG_CHANGE__INIT;
	ch.name = (char *)name;
	ch.value = value;
	ch.mask = mask;
	if (symbol)
		ch.symbol = (char *)symbol;
	return ch;
}

static Rdo__Reply *reg_modify(Rdo__RegChange *changes, size_t n)
{
	Rdo__RegChange *ptrs[8];
	cr_assert_leq(n, RDO_ARRAY_SIZE(ptrs));
	for (size_t i = 0; i < n; i++)
		ptrs[i] = &changes[i];
	Rdo__RegModifyRequest mr = RDO__REG_MODIFY_REQUEST__INIT;
	mr.changes = ptrs;
	mr.n_changes = n;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.cmd_case = RDO__REQUEST__CMD_REG_MODIFY;
	rq.reg_modify = &mr;
	return call(&rq);
}

static Rdo__Reply *reg_list(const char *pattern, bool no_values)
{
	Rdo__RegListRequest lr = RDO__REG_LIST_REQUEST__INIT;
	if (pattern)
		lr.pattern = (char *)pattern;
	lr.no_values = no_values;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.cmd_case = RDO__REQUEST__CMD_REG_LIST;
	rq.reg_list = &lr;
	return call(&rq);
}

static Rdo__Reply *reg_define(Rdo__RegDefineRequest *dr)
{
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.cmd_case = RDO__REQUEST__CMD_REG_DEFINE;
	rq.reg_define = dr;
	return call(&rq);
}

static Rdo__RegDefineRequest define_req(const char *bank, const char *name, uint64_t offset)
{
	Rdo__RegDefineRequest dr = RDO__REG_DEFINE_REQUEST__INIT;
	dr.bank = (char *)bank;
	dr.name = (char *)name;
	dr.offset = offset;
	return dr;
}

static uint64_t card_rd(uint64_t off)
{
	uint64_t v = 0;
	cr_assert_eq(rdo_card_read(card, 0, off, 32, &v), 0);
	return v;
}

static void card_wr(uint64_t off, uint64_t v)
{
	cr_assert_eq(rdo_card_write(card, 0, off, 32, v), 0);
}

static void expect_ok(const Rdo__Reply *rep)
{
	cr_assert_eq(rep->error, RDO__ERROR_CODE__OK, "error %d: %s", rep->error, rep->message);
	cr_assert_str_eq(rep->message, "ok");
}

static const Rdo__RegValue *only_value(const Rdo__Reply *rep)
{
	expect_ok(rep);
	cr_assert_eq(rep->body_case, RDO__REPLY__BODY_VALUES);
	cr_assert_eq(rep->values->n_regs, 1);
	return rep->values->regs[0];
}

/* Card state a refused request must leave alone. */
struct state {
	uint64_t scratch, config, errors, link_enable;
	size_t nregs;
};

static struct state prepare(void)
{
	card_wr(SIM_ID_SCRATCH, 0x5a5a1234);
	card_wr(SIM_CTRL_CONFIG, 0x13);
	card_wr(SIM_LINK_ENABLE, 0x5);
	return (struct state){.scratch = 0x5a5a1234,
			      .config = 0x13,
			      .errors = card_rd(SIM_CTRL_ERRORS),
			      .link_enable = 0x5,
			      .nregs = rdo_regmap_count(map)};
}

/*
 * `rep` must be refused with `code` and a message, carry no body, and have
 * left the card and the map as `s` says; the next request must be served.
 */
static void expect_refused(const Rdo__Reply *rep, Rdo__ErrorCode code, const struct state *s)
{
	cr_assert_eq(rep->error, code, "error %d (want %d): %s", rep->error, code, rep->message);
	cr_assert_neq(rep->message[0], '\0', "a refusal needs a message");
	cr_assert_str_neq(rep->message, "ok");
	cr_assert_eq(rep->body_case, RDO__REPLY__BODY__NOT_SET, "a refusal carries no body");
	cr_assert_eq(card_rd(SIM_ID_SCRATCH), s->scratch, "scratch changed");
	cr_assert_eq(card_rd(SIM_CTRL_CONFIG), s->config, "ctrl.config changed");
	cr_assert_eq(card_rd(SIM_CTRL_ERRORS), s->errors, "ctrl.errors changed");
	cr_assert_eq(card_rd(SIM_LINK_ENABLE), s->link_enable, "link.enable changed");
	cr_assert_eq(rdo_regmap_count(map), s->nregs, "the map changed");
	const Rdo__RegValue *v = only_value(reg_read("id.scratch"));
	cr_assert_eq(v->value, s->scratch, "the next request is served");
}

Test(control, info)
{
	Rdo__Reply *rep = info();
	expect_ok(rep);
	cr_assert_eq(rep->body_case, RDO__REPLY__BODY_INFO);
	const Rdo__InfoReply *i = rep->info;
	cr_assert_str_eq(i->card, "sim0");
	cr_assert_str_eq(i->backend, "sim");
	cr_assert_str_eq(i->address, "sim");
	cr_assert_eq(i->identity, 0x52444f31);
	cr_assert_eq(i->firmware, 0x01020003);
	cr_assert_eq(i->serial, 0x5244000000000001ull);
	cr_assert_eq(i->links, 12);
	cr_assert_str_eq(i->map_name, "rdo-sim");
	cr_assert_str_eq(i->map_file, REGMAP_FILE);
	cr_assert_eq(i->map_registers, MAP_REGISTERS);
	cr_assert_not(i->forced);
	cr_assert_str_eq(i->server_version, RDO_VERSION);
	cr_assert_eq(i->n_bars, 1);
	cr_assert_eq(i->bars[0]->index, 0);
	cr_assert_eq(i->bars[0]->size, SIM_BAR0_SIZE);
}

Test(control, counters)
{
	uint64_t served, refused;
	rdo_control_counters(ctl, &served, &refused);
	cr_assert_eq(served, 0);
	cr_assert_eq(refused, 0);
	info();
	reg_read("ctrl.nope");
	reg_read("id.scratch");
	rdo_control_counters(ctl, &served, &refused);
	cr_assert_eq(served, 2);
	cr_assert_eq(refused, 1);
}

Test(control, read_registers)
{
	card_wr(SIM_ID_SCRATCH, 0xfeed);
	static const char *const names[] = {"id.identity", "id.scratch", "ctrl.config",
					    "id.serial"};
	Rdo__Reply *rep = reg_read_n(names, 4);
	expect_ok(rep);
	cr_assert_eq(rep->body_case, RDO__REPLY__BODY_VALUES);
	cr_assert_eq(rep->values->n_regs, 4);
	Rdo__RegValue **v = rep->values->regs;
	cr_assert_str_eq(v[0]->name, "id.identity");
	cr_assert(v[0]->has_value);
	cr_assert_eq(v[0]->value, 0x52444f31);
	cr_assert_eq(v[0]->access, RDO__ACCESS__ACCESS_RO);
	cr_assert_not(v[0]->has_old);
	cr_assert_eq(v[1]->value, 0xfeed);
	cr_assert_eq(v[1]->offset, SIM_ID_SCRATCH);
	cr_assert_eq(v[1]->access, RDO__ACCESS__ACCESS_RW);

	cr_assert_str_eq(v[2]->name, "ctrl.config");
	cr_assert_eq(v[2]->value, 0x10);
	cr_assert_eq(v[2]->bar, 0);
	cr_assert_eq(v[2]->offset, SIM_CTRL_CONFIG);
	cr_assert_eq(v[2]->width, 32);
	cr_assert_str_eq(v[2]->description, "Card configuration.");
	cr_assert_eq(v[2]->n_fields, 3);
	cr_assert_str_eq(v[2]->fields[0]->name, "led");
	cr_assert_eq(v[2]->fields[0]->value, 0);
	cr_assert_str_eq(v[2]->fields[0]->symbol, "off");
	cr_assert_str_eq(v[2]->fields[2]->name, "data_source");
	cr_assert_eq(v[2]->fields[2]->value, 1);
	cr_assert_str_eq(v[2]->fields[2]->symbol, "pattern");

	cr_assert_eq(v[3]->width, 64);
	cr_assert_eq(v[3]->value, 0x5244000000000001ull);
}

Test(control, read_fields)
{
	Rdo__Reply *rep = reg_read("ctrl.config.data_source");
	const Rdo__RegValue *v = only_value(rep);
	cr_assert_str_eq(v->name, "ctrl.config.data_source");
	cr_assert(v->has_value);
	cr_assert_eq(v->value, 1);
	cr_assert_str_eq(v->symbol, "pattern");
	cr_assert_eq(v->lsb, 4);
	cr_assert_eq(v->msb, 5);
	cr_assert_eq(v->width, 2);
	cr_assert_eq(v->offset, SIM_CTRL_CONFIG);
	cr_assert_str_eq(v->description, "Where DMA data comes from.");

	card_wr(SIM_CTRL_CONFIG, 0x31);
	v = only_value(reg_read("ctrl.config.led"));
	cr_assert_eq(v->value, 1);
	cr_assert_str_eq(v->symbol, "on");
	v = only_value(reg_read("ctrl.config.data_source"));
	cr_assert_eq(v->value, 3);
	cr_assert_str_eq(v->symbol, "", "3 has no name");
	v = only_value(reg_read("id.firmware.minor"));
	cr_assert_eq(v->value, 2);
}

Test(control, read_raw)
{
	card_wr(SIM_ID_SCRATCH, 0xabcd);
	const Rdo__RegValue *v = only_value(reg_read("bar0:0x10"));
	cr_assert_str_eq(v->name, "bar0:0x10");
	cr_assert(v->has_value);
	cr_assert_eq(v->value, 0xabcd);
	cr_assert_eq(v->bar, 0);
	cr_assert_eq(v->offset, 0x10);
	cr_assert_eq(v->width, 32);
	cr_assert_eq(v->n_fields, 0);
	v = only_value(reg_read("0:0x300"));
	cr_assert_eq(v->value, 12, "link.count");
	v = only_value(reg_read("bar0:0x14"));
	cr_assert_eq(v->value, 0xffffffff, "nothing decodes bar0:0x14");
}

Test(control, garbage_bytes)
{
	struct state s = prepare();
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	expect_refused(send_frame(garbage, sizeof(garbage), 0), RDO__ERROR_CODE__ERR_MALFORMED, &s);
	static const char text[] = "hello, readoutd";
	expect_refused(send_frame(text, sizeof(text) - 1, 0), RDO__ERROR_CODE__ERR_MALFORMED, &s);
	static const uint8_t short_string[] = {0x62, 0x10, 'i', 'd'}; /* field 12, 16 bytes */
	expect_refused(send_frame(short_string, sizeof(short_string), 0),
		       RDO__ERROR_CODE__ERR_MALFORMED, &s);
}

Test(control, truncated_request)
{
	struct state s = prepare();
	Rdo__RegWriteRequest wr = RDO__REG_WRITE_REQUEST__INIT;
	wr.name = "id.scratch";
	wr.value = 0x1111;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.version = 1;
	rq.id = 77;
	rq.cmd_case = RDO__REQUEST__CMD_REG_WRITE;
	rq.reg_write = &wr;
	uint8_t buf[128];
	size_t len = rdo__request__get_packed_size(&rq);
	cr_assert_leq(len, sizeof(buf));
	rdo__request__pack(&rq, buf);
	expect_refused(send_frame(buf, len / 2, 0), RDO__ERROR_CODE__ERR_MALFORMED, &s);
	expect_refused(send_frame(buf, len - 1, 0), RDO__ERROR_CODE__ERR_MALFORMED, &s);
	/* The whole frame is served, so the halves were refused for being cut. */
	const Rdo__RegValue *v = only_value(send_frame(buf, len, 77));
	cr_assert_eq(v->value, 0x1111);
	cr_assert_eq(card_rd(SIM_ID_SCRATCH), 0x1111);
}

Test(control, zero_length_frame)
{
	struct state s = prepare();
	static const uint8_t nothing[1];
	/* Zero bytes decode as an empty Request: version 0. */
	Rdo__Reply *rep = send_frame(nothing, 0, 0);
	cr_assert_neq(rep->error, RDO__ERROR_CODE__OK);
	expect_refused(rep, RDO__ERROR_CODE__ERR_VERSION, &s);
}

Test(control, wrong_version)
{
	struct state s = prepare();
	Rdo__RegWriteRequest wr = RDO__REG_WRITE_REQUEST__INIT;
	wr.name = "id.scratch";
	wr.value = 1;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.version = 2;
	rq.cmd_case = RDO__REQUEST__CMD_REG_WRITE;
	rq.reg_write = &wr;
	Rdo__Reply *rep = call(&rq);
	cr_assert(strstr(rep->message, "version 2"), "%s", rep->message);
	cr_assert(strstr(rep->message, "speaks version 1"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_VERSION, &s);
}

Test(control, no_command)
{
	struct state s = prepare();
	Rdo__Request rq = RDO__REQUEST__INIT;
	expect_refused(call(&rq), RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND, &s);
}

Test(control, unknown_command_names_the_known_ones)
{
	Rdo__Request rq = RDO__REQUEST__INIT;
	Rdo__Reply *rep = call(&rq);
	cr_assert_eq(rep->error, RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND);
	cr_assert_str_eq(rep->message,
			 "the request carries no command this server knows (protocol 1: info, "
			 "reg_read, reg_write, reg_modify, reg_list, reg_define, start, stop, "
			 "reset, status, list_cards)");
}

/* A request of `cmd` with no arguments: every empty request message packs alike. */
static Rdo__Reply *simple(Rdo__Request__CmdCase cmd, const char *card)
{
	Rdo__InfoRequest empty = RDO__INFO_REQUEST__INIT;
	Rdo__StartRequest start = RDO__START_REQUEST__INIT;
	Rdo__Request rq = RDO__REQUEST__INIT;
	rq.cmd_case = cmd;
	if (card)
		rq.card = (char *)card;
	if (cmd == RDO__REQUEST__CMD_START)
		rq.start = &start;
	else
		rq.info = &empty;
	return call(&rq);
}

Test(control, monitor_reads_and_may_not_write)
{
	struct state s = prepare();
	static const struct rdo_peer monitor = {
	    .role = RDO_ROLE_MONITOR, .curve = true, .id = "mon (ABCDEFGH)", .name = "mon"};
	sender = &monitor;
	expect_ok(info());
	cr_assert_eq(only_value(reg_read("id.scratch"))->value, s.scratch);
	Rdo__Reply *rep = reg_write("id.scratch", 1, NULL);
	cr_assert_str_eq(rep->message,
			 "reg_write needs the operator role, and your key mon (ABCDEFGH) has "
			 "monitor: ask the server's operator to list it as operator in its "
			 "authorized_keys");
	expect_refused(rep, RDO__ERROR_CODE__ERR_DENIED, &s);
	rep = simple(RDO__REQUEST__CMD_START, "sim0");
	cr_assert(strstr(rep->message, "start needs the operator role"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_DENIED, &s);
	uint64_t served, refused;
	rdo_control_counters(ctl, &served, &refused);
	cr_assert_eq(served, 4, "info, reg_read and the reads after each refusal");
	cr_assert_eq(refused, 2, "refusals for want of a role count as refused");
}

Test(control, no_role_no_command)
{
	struct state s = prepare();
	static const struct rdo_peer nobody = {.role = RDO_ROLE_NONE, .id = "nobody"};
	sender = &nobody;
	Rdo__Reply *rep = info();
	cr_assert(strstr(rep->message, "info needs the monitor role"), "%s", rep->message);
	sender = NULL; /* for expect_refused's next request */
	expect_refused(rep, RDO__ERROR_CODE__ERR_DENIED, &s);
}

Test(control, no_acquisition_without_a_dma_channel)
{
	struct state s = prepare();
	static const Rdo__Request__CmdCase acq[] = {RDO__REQUEST__CMD_START, RDO__REQUEST__CMD_STOP,
						    RDO__REQUEST__CMD_RESET};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(acq); i++) {
		Rdo__Reply *rep = simple(acq[i], NULL);
		cr_assert_str_eq(
		    rep->message,
		    "this server runs without a DMA channel: no acquisition to control");
		expect_refused(rep, RDO__ERROR_CODE__ERR_STATE, &s);
	}
	Rdo__Reply *rep = simple(RDO__REQUEST__CMD_STATUS, NULL);
	cr_assert_str_eq(rep->message, "this server runs without a DMA channel: no status");
	expect_refused(rep, RDO__ERROR_CODE__ERR_STATE, &s);
}

Test(control, cards_by_name)
{
	struct state s = prepare();
	expect_ok(simple(RDO__REQUEST__CMD_INFO, "sim0"));
	Rdo__Reply *rep = simple(RDO__REQUEST__CMD_INFO, "sim9");
	cr_assert_str_eq(rep->message, "info: no card \"sim9\" here; this server reads out sim0");
	expect_refused(rep, RDO__ERROR_CODE__ERR_UNKNOWN_CARD, &s);
	/* list_cards names no card: whatever the request says, every card is listed. */
	rep = simple(RDO__REQUEST__CMD_LIST_CARDS, "sim9");
	expect_ok(rep);
	cr_assert_eq(rep->body_case, RDO__REPLY__BODY_CARDS);
	cr_assert_eq(rep->cards->n_cards, 1);
	cr_assert_str_eq(rep->cards->cards[0]->card, "sim0");
	cr_assert_eq(rep->cards->cards[0]->map_registers, MAP_REGISTERS);
}

Test(control, unknown_field_number)
{
	struct state s = prepare();
	/* version 1, id 300, then field 99 (varint 1): a command from a newer protocol. */
	static const uint8_t frame[] = {0x08, 0x01, 0x10, 0xac, 0x02, 0x98, 0x06, 0x01};
	Rdo__Reply *rep = send_frame(frame, sizeof(frame), 300);
	expect_refused(rep, RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND, &s);
}

Test(control, unknown_register)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_read("ctrl.nope");
	cr_assert(strstr(rep->message, "ctrl.nope"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);
	expect_refused(reg_write("ctrl.nope", 1, NULL), RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);
	expect_refused(reg_write("ctrl.config.nope", 1, NULL),
		       RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);
	static const char *const names[] = {"id.scratch", "nobank.x"};
	expect_refused(reg_read_n(names, 2), RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);
	expect_refused(reg_read("scratch"), RDO__ERROR_CODE__ERR_INVALID, &s);
	expect_refused(reg_read_n(NULL, 0), RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, write_read_only)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_write("id.identity", 0, NULL);
	cr_assert(strstr(rep->message, "id.identity is read-only"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_READ_ONLY, &s);
	expect_refused(reg_write("ctrl.status.ready", 0, NULL), RDO__ERROR_CODE__ERR_READ_ONLY, &s);
	Rdo__RegChange ch[] = {change("id.scratch", 1, 0, NULL), change("link.count", 1, 0, NULL)};
	expect_refused(reg_modify(ch, 2), RDO__ERROR_CODE__ERR_READ_ONLY, &s);
}

Test(control, read_write_only)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_read("ctrl.reset");
	cr_assert(strstr(rep->message, "ctrl.reset is write-only"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_WRITE_ONLY, &s);
	expect_refused(reg_read("ctrl.reset.card"), RDO__ERROR_CODE__ERR_WRITE_ONLY, &s);
	static const char *const names[] = {"id.scratch", "ctrl.reset"};
	expect_refused(reg_read_n(names, 2), RDO__ERROR_CODE__ERR_WRITE_ONLY, &s);
}

Test(control, value_wider_than_field)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_write("ctrl.config.data_source", 4, NULL);
	cr_assert(strstr(rep->message, "does not fit in 2 bits"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_VALUE_RANGE, &s);
	expect_refused(reg_write("ctrl.config.led", 2, NULL), RDO__ERROR_CODE__ERR_VALUE_RANGE, &s);
}

Test(control, value_wider_than_register)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_write("id.scratch", 0x100000000ull, NULL);
	cr_assert(strstr(rep->message, "does not fit in 32 bits"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_VALUE_RANGE, &s);
	expect_refused(reg_write("bar0:0x10", 0x1ffffffffull, NULL),
		       RDO__ERROR_CODE__ERR_VALUE_RANGE, &s);
	Rdo__RegChange ch = change("id.scratch", 0x100000000ull, 0x100000000ull, NULL);
	expect_refused(reg_modify(&ch, 1), RDO__ERROR_CODE__ERR_VALUE_RANGE, &s);
}

Test(control, raw_out_of_bounds)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_read("bar0:0x10000");
	cr_assert(strstr(rep->message, "outside BAR 0"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
	expect_refused(reg_write("bar0:0x10000", 1, NULL), RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
	expect_refused(reg_write("bar0:0xfffffffffffffff0", 1, NULL),
		       RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
}

Test(control, raw_missing_bar)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_read("bar3:0x0");
	cr_assert(strstr(rep->message, "no BAR 3"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
	expect_refused(reg_write("3:0x10", 1, NULL), RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
	expect_refused(reg_read("bar9:0x0"), RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, raw_misaligned)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_read("bar0:0x12");
	cr_assert(strstr(rep->message, "not aligned"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
	expect_refused(reg_write("bar0:0x11", 1, NULL), RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
}

Test(control, raw_write)
{
	const Rdo__RegValue *v = only_value(reg_write("bar0:0x10", 0x77, NULL));
	cr_assert(v->has_old);
	cr_assert_eq(v->old, 0);
	cr_assert_eq(v->value, 0x77);
	cr_assert_eq(card_rd(SIM_ID_SCRATCH), 0x77);
}

Test(control, unknown_symbol)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_write("ctrl.config.led", 0, "blink");
	cr_assert(strstr(rep->message, "\"blink\""), "%s", rep->message);
	cr_assert(strstr(rep->message, "off, on"), "the message lists the names: %s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_INVALID, &s);
	expect_refused(reg_write("ctrl.config.loopback", 0, "on"), RDO__ERROR_CODE__ERR_INVALID,
		       &s);
	expect_refused(reg_write("id.scratch", 0, "on"), RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, write_symbol)
{
	const Rdo__RegValue *v = only_value(reg_write("ctrl.config.data_source", 0, "counter"));
	cr_assert_str_eq(v->name, "ctrl.config");
	cr_assert(v->has_old);
	cr_assert_eq(v->old, 0x10);
	cr_assert_eq(v->value, 0x20);
	cr_assert_eq(card_rd(SIM_CTRL_CONFIG), 0x20);
}

Test(control, write_register)
{
	card_wr(SIM_ID_SCRATCH, 0x1);
	const Rdo__RegValue *v = only_value(reg_write("id.scratch", 0xdeadbeef, NULL));
	cr_assert_str_eq(v->name, "id.scratch");
	cr_assert(v->has_old);
	cr_assert_eq(v->old, 0x1);
	cr_assert(v->has_value);
	cr_assert_eq(v->value, 0xdeadbeef);
	cr_assert_eq(card_rd(SIM_ID_SCRATCH), 0xdeadbeef);
}

Test(control, modify_second_change_bad)
{
	struct state s = prepare();
	Rdo__RegChange ch[] = {change("id.scratch", 0x1, 0, NULL),
			       change("ctrl.config.data_source", 7, 0, NULL)};
	expect_refused(reg_modify(ch, 2), RDO__ERROR_CODE__ERR_VALUE_RANGE, &s);
	Rdo__RegChange ch2[] = {change("ctrl.config.led", 0, 0, NULL),
				change("ctrl.nope", 1, 0, NULL)};
	expect_refused(reg_modify(ch2, 2), RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);
	Rdo__RegChange ch3[] = {change("link.enable", 0, 0, NULL),
				change("ctrl.config.led", 0, 0, "dim")};
	expect_refused(reg_modify(ch3, 2), RDO__ERROR_CODE__ERR_INVALID, &s);
	expect_refused(reg_modify(NULL, 0), RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, modify_same_bits_twice)
{
	struct state s = prepare();
	Rdo__RegChange ch[] = {change("ctrl.config.led", 0, 0, NULL),
			       change("ctrl.config", 0x1, 0x1, NULL)};
	Rdo__Reply *rep = reg_modify(ch, 2);
	cr_assert(strstr(rep->message, "same bits"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_INVALID, &s);
	Rdo__RegChange ch2[] = {change("id.scratch", 1, 0, NULL), change("bar0:0x10", 2, 0, NULL)};
	expect_refused(reg_modify(ch2, 2), RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, masked_modify)
{
	Rdo__RegChange ch = change("ctrl.config", 0x1, 0x1, NULL);
	const Rdo__RegValue *v = only_value(reg_modify(&ch, 1));
	cr_assert_str_eq(v->name, "ctrl.config");
	cr_assert(v->has_old);
	cr_assert_eq(v->old, 0x10);
	cr_assert_eq(v->value, 0x11, "only led is set, data_source stays");
	cr_assert_eq(card_rd(SIM_CTRL_CONFIG), 0x11);

	struct state s = prepare();
	Rdo__RegChange bad = change("ctrl.config", 0x3, 0x1, NULL);
	Rdo__Reply *rep = reg_modify(&bad, 1);
	cr_assert(strstr(rep->message, "outside the mask"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, modify_merges_fields)
{
	Rdo__RegChange ch[] = {change("ctrl.config.led", 1, 0, NULL),
			       change("ctrl.config.data_source", 0, 0, "counter")};
	Rdo__Reply *rep = reg_modify(ch, 2);
	const Rdo__RegValue *v = only_value(rep);
	cr_assert_str_eq(v->name, "ctrl.config");
	cr_assert(v->has_old);
	cr_assert_eq(v->old, 0x10);
	cr_assert(v->has_value);
	cr_assert_eq(v->value, 0x21);
	cr_assert_eq(card_rd(SIM_CTRL_CONFIG), 0x21);
	cr_assert_eq(v->n_fields, 3);
	cr_assert_str_eq(v->fields[2]->symbol, "counter");

	Rdo__RegChange two[] = {change("ctrl.config.loopback", 1, 0, NULL),
				change("id.scratch", 9, 0, NULL)};
	rep = reg_modify(two, 2);
	expect_ok(rep);
	cr_assert_eq(rep->values->n_regs, 2, "two registers, two values");
	cr_assert_eq(card_rd(SIM_CTRL_CONFIG), 0x23);
	cr_assert_eq(card_rd(SIM_ID_SCRATCH), 9);
}

Test(control, w1c_modify)
{
	card_wr(SIM_LINK_ENABLE, 0x1);
	card_wr(SIM_FAULT_LINK_DOWN, 0x1);
	cr_assert_eq(card_rd(SIM_CTRL_ERRORS), SIM_ERR_POWER_ON | SIM_ERR_LINK_DOWN);
	Rdo__RegChange ch = change("ctrl.errors.power_on", 1, 0, NULL);
	const Rdo__RegValue *v = only_value(reg_modify(&ch, 1));
	cr_assert_str_eq(v->name, "ctrl.errors");
	cr_assert(v->has_old);
	cr_assert_eq(v->old, 0x3);
	cr_assert_eq(v->value, SIM_ERR_LINK_DOWN, "only power_on is cleared");
	cr_assert_eq(card_rd(SIM_CTRL_ERRORS), SIM_ERR_LINK_DOWN);
}

Test(control, write_reset_card)
{
	card_wr(SIM_ID_SCRATCH, 0x4242);
	card_wr(SIM_CTRL_CONFIG, 0x3);
	const Rdo__RegValue *v = only_value(reg_write("ctrl.reset.card", 1, NULL));
	cr_assert_str_eq(v->name, "ctrl.reset");
	cr_assert_not(v->has_value, "a write-only register has no value to report");
	cr_assert_not(v->has_old);
	cr_assert_eq(card_rd(SIM_ID_SCRATCH), 0);
	cr_assert_eq(card_rd(SIM_CTRL_CONFIG), 0x10);
	cr_assert_eq(card_rd(SIM_CTRL_ERRORS), SIM_ERR_POWER_ON);
}

Test(control, list_pattern)
{
	card_wr(SIM_LINK_ENABLE, 0x3);
	Rdo__Reply *rep = reg_list("link.*", false);
	expect_ok(rep);
	cr_assert_eq(rep->body_case, RDO__REPLY__BODY_VALUES);
	cr_assert_eq(rep->values->n_regs, 3);
	Rdo__RegValue **v = rep->values->regs;
	cr_assert_str_eq(v[0]->name, "link.count");
	cr_assert_str_eq(v[1]->name, "link.enable");
	cr_assert_str_eq(v[2]->name, "link.status");
	cr_assert(v[0]->has_value);
	cr_assert_eq(v[0]->value, 12);
	cr_assert_eq(v[1]->value, 0x3);
	cr_assert_eq(v[1]->n_fields, 1);
	cr_assert_str_eq(v[1]->fields[0]->name, "mask");
	cr_assert_eq(v[1]->fields[0]->value, 0x3);
	cr_assert_eq(v[2]->value, 0x3);
}

Test(control, list_all)
{
	Rdo__Reply *rep = reg_list(NULL, false);
	expect_ok(rep);
	cr_assert_eq(rep->values->n_regs, MAP_REGISTERS);
	for (size_t i = 1; i < rep->values->n_regs; i++) {
		const Rdo__RegValue *a = rep->values->regs[i - 1], *b = rep->values->regs[i];
		cr_assert(a->bar < b->bar || (a->bar == b->bar && a->offset < b->offset),
			  "%s before %s", a->name, b->name);
	}
	bool saw_reset = false;
	for (size_t i = 0; i < rep->values->n_regs; i++) {
		const Rdo__RegValue *v = rep->values->regs[i];
		if (v->access == RDO__ACCESS__ACCESS_WO)
			cr_assert_not(v->has_value, "%s is write-only", v->name);
		if (strcmp(v->name, "ctrl.reset") != 0) {
			cr_assert(v->has_value || v->access == RDO__ACCESS__ACCESS_WO, "%s",
				  v->name);
			continue;
		}
		saw_reset = true;
		cr_assert_not(v->has_value, "ctrl.reset is write-only");
		cr_assert_eq(v->access, RDO__ACCESS__ACCESS_WO);
		cr_assert_eq(v->n_fields, 2, "the field list comes without values");
	}
	cr_assert(saw_reset);

	rep = reg_list("*", true);
	expect_ok(rep);
	cr_assert_eq(rep->values->n_regs, MAP_REGISTERS);
	for (size_t i = 0; i < rep->values->n_regs; i++) {
		const Rdo__RegValue *v = rep->values->regs[i];
		cr_assert_not(v->has_value, "%s", v->name);
		for (size_t f = 0; f < v->n_fields; f++)
			cr_assert_str_empty(v->fields[f]->symbol,
					    "%s.%s: a symbol for a value not read", v->name,
					    v->fields[f]->name);
	}
}

Test(control, list_no_match)
{
	struct state s = prepare();
	Rdo__Reply *rep = reg_list("nothing.*", false);
	cr_assert(strstr(rep->message, "nothing.*"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);
}

Test(control, define_register)
{
	Rdo__EnumValue on = RDO__ENUM_VALUE__INIT, off = RDO__ENUM_VALUE__INIT;
	on.name = "on";
	on.value = 1;
	off.name = "off";
	Rdo__EnumValue *values[] = {&off, &on};
	Rdo__FieldDef f = RDO__FIELD_DEF__INIT;
	f.name = "enable";
	f.lsb = 0;
	f.msb = 0;
	f.description = "Switch.";
	f.values = values;
	f.n_values = 2;
	Rdo__FieldDef *fields[] = {&f};
	Rdo__RegDefineRequest dr = define_req("id", "extra", 0x20);
	dr.description = "Defined at run time.";
	dr.fields = fields;
	dr.n_fields = 1;
	const Rdo__RegValue *v = only_value(reg_define(&dr));
	cr_assert_str_eq(v->name, "id.extra");
	cr_assert_eq(v->offset, 0x20);
	cr_assert_eq(v->width, 32, "width 0 means 32");
	cr_assert_eq(v->access, RDO__ACCESS__ACCESS_RW);
	cr_assert(v->has_value);
	cr_assert_eq(v->value, 0xffffffff, "the emulator decodes nothing at 0x20");
	cr_assert_eq(rdo_regmap_count(map), MAP_REGISTERS + 1);

	v = only_value(reg_read("id.extra"));
	cr_assert_eq(v->offset, 0x20);
	cr_assert_str_eq(v->description, "Defined at run time.");
	v = only_value(reg_read("id.extra.enable"));
	cr_assert_eq(v->value, 1);
	cr_assert_str_eq(v->symbol, "on");
	cr_assert_eq(info()->info->map_registers, MAP_REGISTERS + 1);
}

Test(control, define_in_new_bank)
{
	Rdo__RegDefineRequest dr = define_req("user", "r", 0x4);
	dr.new_bank = true;
	dr.bank_bar = 0;
	dr.bank_base = 0x8000;
	dr.width = 16;
	dr.access = RDO__ACCESS__ACCESS_RO;
	const Rdo__RegValue *v = only_value(reg_define(&dr));
	cr_assert_str_eq(v->name, "user.r");
	cr_assert_eq(v->offset, 0x8004);
	cr_assert_eq(v->width, 16);
	cr_assert_eq(v->access, RDO__ACCESS__ACCESS_RO);
	cr_assert_not_null(rdo_regmap_bank(map, "user"));
	v = only_value(reg_read("user.r"));
	cr_assert_eq(v->offset, 0x8004);
	cr_assert_eq(v->value, 0xffff);

	Rdo__RegDefineRequest more = define_req("user", "s", 0x8);
	v = only_value(reg_define(&more));
	cr_assert_eq(v->offset, 0x8008, "the new bank takes more registers");
	struct state s = prepare();
	Rdo__RegDefineRequest again = define_req("user", "t", 0x10);
	again.new_bank = true;
	again.bank_base = 0x3000;
	expect_refused(reg_define(&again), RDO__ERROR_CODE__ERR_EXISTS, &s);
}

Test(control, define_duplicate)
{
	struct state s = prepare();
	Rdo__RegDefineRequest dr = define_req("id", "scratch", 0x40);
	Rdo__Reply *rep = reg_define(&dr);
	cr_assert(strstr(rep->message, "id.scratch is defined twice"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_EXISTS, &s);
}

Test(control, define_overlapping)
{
	struct state s = prepare();
	Rdo__RegDefineRequest dr = define_req("id", "alias", 0x10);
	Rdo__Reply *rep = reg_define(&dr);
	cr_assert(strstr(rep->message, "overlaps id.scratch"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_EXISTS, &s);
	dr = define_req("link", "wide", 0x0);
	dr.width = 64;
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_EXISTS, &s);
}

Test(control, define_out_of_bar)
{
	struct state s = prepare();
	Rdo__RegDefineRequest dr = define_req("dma", "far", 0xf000); /* 0x1000 + 0xf000 */
	Rdo__Reply *rep = reg_define(&dr);
	cr_assert(strstr(rep->message, "outside BAR 0"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
	dr = define_req("b2", "r", 0x0);
	dr.new_bank = true;
	dr.bank_bar = 2;
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS, &s);
	cr_assert_null(rdo_regmap_bank(map, "b2"));
}

Test(control, define_bad_field)
{
	struct state s = prepare();
	Rdo__FieldDef f = RDO__FIELD_DEF__INIT;
	f.name = "big";
	f.lsb = 30;
	f.msb = 33;
	Rdo__FieldDef *fields[] = {&f};
	Rdo__RegDefineRequest dr = define_req("id", "x", 0x20);
	dr.fields = fields;
	dr.n_fields = 1;
	Rdo__Reply *rep = reg_define(&dr);
	cr_assert(strstr(rep->message, "id.x.big"), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_INVALID, &s);
	f.lsb = 3;
	f.msb = 1;
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
	f.msb = 3;
	f.name = "";
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, define_bad_register)
{
	struct state s = prepare();
	Rdo__RegDefineRequest dr = define_req("id", "x", 0x22);
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
	dr = define_req("id", "x", 0x20);
	dr.width = 24;
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
	dr = define_req("id", "bad name", 0x20);
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
	dr = define_req("id", "x", 0x20);
	dr.width = 8;
	dr.reset = 0x100;
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
	dr = define_req("id", "x", 0x20);
	dr.access = (Rdo__Access)9;
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
}

Test(control, define_unknown_bank)
{
	struct state s = prepare();
	Rdo__RegDefineRequest dr = define_req("nobank", "x", 0x0);
	Rdo__Reply *rep = reg_define(&dr);
	cr_assert(strstr(rep->message, "no bank \"nobank\""), "%s", rep->message);
	expect_refused(rep, RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);
	cr_assert_null(rdo_regmap_bank(map, "nobank"));
}

Test(control, failed_define_leaves_no_bank)
{
	struct state s = prepare();
	Rdo__RegDefineRequest dr = define_req("tmpb", "r", 0x2); /* misaligned */
	dr.new_bank = true;
	dr.bank_base = 0x4000;
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_INVALID, &s);
	cr_assert_null(rdo_regmap_bank(map, "tmpb"));
	dr.offset = 0x10;
	dr.bank_base = 0x0; /* the register then overlaps id.scratch */
	expect_refused(reg_define(&dr), RDO__ERROR_CODE__ERR_EXISTS, &s);
	cr_assert_null(rdo_regmap_bank(map, "tmpb"));

	Rdo__RegDefineRequest plain = define_req("tmpb", "r", 0x0);
	expect_refused(reg_define(&plain), RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER, &s);

	dr.bank_base = 0x4000;
	const Rdo__RegValue *v = only_value(reg_define(&dr));
	cr_assert_str_eq(v->name, "tmpb.r");
	cr_assert_eq(v->offset, 0x4010);
	cr_assert_not_null(rdo_regmap_bank(map, "tmpb"));
	v = only_value(reg_read("tmpb.r"));
	cr_assert_eq(v->offset, 0x4010);
}

/* Two fields of one definition that share bits: malformed, refused, nothing changes. */
Test(control, define_overlapping_fields)
{
	struct state s = prepare();
	Rdo__FieldDef a = RDO__FIELD_DEF__INIT, b = RDO__FIELD_DEF__INIT;
	a.name = "a";
	a.msb = 3;
	b.name = "b";
	b.lsb = 2;
	b.msb = 5;
	Rdo__FieldDef *fields[] = {&a, &b};
	Rdo__RegDefineRequest dr = define_req("id", "x", 0x20);
	dr.fields = fields;
	dr.n_fields = 2;
	Rdo__Reply *rep = reg_define(&dr);
	cr_assert_eq(rep->error, RDO__ERROR_CODE__ERR_INVALID, "error %d: %s", rep->error,
		     rep->message);
	cr_assert(strstr(rep->message, "overlaps field a"), "%s", rep->message);
	expect_refused(rep, rep->error, &s);
}
