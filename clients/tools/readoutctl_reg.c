/*
 * readoutctl's register commands: reg read, write, modify, list and define
 * (readoutctl.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "tools/json.h"
#include "tools/readoutctl.h"

/* In the order of Rdo__Access. */
static const char *const access_names[] = {"rw", "ro", "wo", "w1c"};

static const char *access_name(Rdo__Access a)
{
	return (unsigned)a < RDO_ARRAY_SIZE(access_names) ? access_names[a] : "?";
}

static void print_hex(uint64_t v, unsigned width)
{
	printf("0x%0*llx", (int)((width + 3) / 4), (unsigned long long)v);
}

static void print_fields(const Rdo__RegValue *v)
{
	for (size_t i = 0; i < v->n_fields; i++) {
		const Rdo__FieldValue *f = v->fields[i];
		if (f->symbol[0])
			printf(" %s=%s", f->name, f->symbol);
		else
			printf(" %s=%llu", f->name, (unsigned long long)f->value);
	}
}

static void json_value(struct rdo_json *j, const Rdo__RegValue *v)
{
	rdo_json_open(j, NULL, '{');
	rdo_json_str(j, "name", v->name);
	rdo_json_u64(j, "bar", v->bar);
	rdo_json_u64(j, "offset", v->offset);
	rdo_json_u64(j, "width", v->width);
	rdo_json_str(j, "access", access_name(v->access));
	if (v->msb || v->lsb || v->symbol[0]) {
		rdo_json_u64(j, "msb", v->msb);
		rdo_json_u64(j, "lsb", v->lsb);
	}
	if (v->has_value)
		rdo_json_u64(j, "value", v->value);
	if (v->has_old)
		rdo_json_u64(j, "old", v->old);
	if (v->symbol[0])
		rdo_json_str(j, "symbol", v->symbol);
	rdo_json_str(j, "description", v->description);
	if (v->n_fields) {
		rdo_json_open(j, "fields", '[');
		for (size_t i = 0; i < v->n_fields; i++) {
			rdo_json_open(j, NULL, '{');
			rdo_json_str(j, "name", v->fields[i]->name);
			if (v->has_value)
				rdo_json_u64(j, "value", v->fields[i]->value);
			if (v->fields[i]->symbol[0])
				rdo_json_str(j, "symbol", v->fields[i]->symbol);
			rdo_json_close(j, '}');
		}
		rdo_json_close(j, ']');
	}
	rdo_json_close(j, '}');
}

static void print_values(const struct ctl *c, const Rdo__Reply *r, bool list)
{
	const Rdo__RegValues *vals = r->values;
	if (c->cli.json) {
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		rdo_json_open(&j, "registers", '[');
		for (size_t i = 0; vals && i < vals->n_regs; i++)
			json_value(&j, vals->regs[i]);
		rdo_json_close(&j, ']');
		rdo_json_close(&j, '}');
		return;
	}
	int w = 0;
	for (size_t i = 0; vals && i < vals->n_regs; i++) {
		int n = (int)strlen(vals->regs[i]->name);
		w = n > w ? n : w;
	}
	for (size_t i = 0; vals && i < vals->n_regs; i++) {
		const Rdo__RegValue *v = vals->regs[i];
		printf("%-*s ", w, v->name);
		if (list)
			printf("bar%u:0x%04llx %2u %-3s ", v->bar, (unsigned long long)v->offset,
			       v->width, access_name(v->access));
		if (v->has_old) {
			print_hex(v->old, v->width);
			printf(" -> ");
		}
		if (v->has_value)
			print_hex(v->value, v->width);
		if (v->has_value && v->n_fields == 0 && !v->symbol[0] && v->value > 9)
			printf(" (%llu)", (unsigned long long)v->value);
		else if (!v->has_value)
			printf("%-*s", (int)(v->width + 3) / 4 + 2, list ? "-" : "(written)");
		if (v->symbol[0])
			printf(" %s", v->symbol);
		if (v->has_value)
			print_fields(v);
		if (list && v->description[0])
			printf("  %s", v->description);
		printf("\n");
	}
}

/* "VALUE": a number, or an enum name the server resolves. */
static void parse_value(const char *s, uint64_t *value, char **symbol)
{
	if (rdo_parse_u64(s, value) != 0) {
		*value = 0;
		*symbol = (char *)s;
	}
}

static void print_read(const struct ctl *c, const Rdo__Reply *r)
{
	print_values(c, r, false);
}

static void print_list(const struct ctl *c, const Rdo__Reply *r)
{
	print_values(c, r, true);
}

int ctl_reg_read(struct ctl *c)
{
	if (c->nargs < 1)
		return rdo_cli_usage_error("reg read: expected NAME...");
	Rdo__RegReadRequest rd = RDO__REG_READ_REQUEST__INIT;
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_REG_READ);
	rd.n_names = (size_t)c->nargs;
	rd.names = c->args;
	req.reg_read = &rd;
	return ctl_call(c, &req, print_read);
}

int ctl_reg_write(struct ctl *c)
{
	if (c->nargs != 2)
		return rdo_cli_usage_error("reg write: expected NAME VALUE");
	Rdo__RegWriteRequest wr = RDO__REG_WRITE_REQUEST__INIT;
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_REG_WRITE);
	wr.name = c->args[0];
	parse_value(c->args[1], &wr.value, &wr.symbol);
	req.reg_write = &wr;
	return ctl_call(c, &req, print_read);
}

/* Changes to one register become one read-modify-write: the server's business. */
int ctl_reg_modify(struct ctl *c)
{
	Rdo__RegChange changes[64], *ptrs[64];
	if (c->nargs < 1 || c->nargs > 64)
		return rdo_cli_usage_error("reg modify: expected 1 to 64 changes NAME=VALUE");
	for (int i = 0; i < c->nargs; i++) {
		char *arg = c->args[i];
		Rdo__RegChange *ch = &changes[i];
		rdo__reg_change__init(ch);
		char *eq = strchr(arg, '=');
		if (!eq || eq == arg || !eq[1])
			return rdo_cli_usage_error(
			    "reg modify: expected NAME=VALUE or NAME=VALUE/MASK, got \"%s\"", arg);
		*eq = '\0';
		ch->name = arg;
		char *slash = strchr(eq + 1, '/');
		if (slash) {
			*slash = '\0';
			if (rdo_parse_u64(slash + 1, &ch->mask) || ch->mask == 0)
				return rdo_cli_usage_error(
				    "reg modify: mask \"%s\" is not a non-zero number", slash + 1);
		}
		parse_value(eq + 1, &ch->value, &ch->symbol);
		ptrs[i] = ch;
	}
	Rdo__RegModifyRequest mod = RDO__REG_MODIFY_REQUEST__INIT;
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_REG_MODIFY);
	mod.n_changes = (size_t)c->nargs;
	mod.changes = ptrs;
	req.reg_modify = &mod;
	return ctl_call(c, &req, print_read);
}

int ctl_reg_list(struct ctl *c)
{
	if (c->nargs > 1)
		return rdo_cli_usage_error("reg list: expected at most one PATTERN");
	Rdo__RegListRequest ls = RDO__REG_LIST_REQUEST__INIT;
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_REG_LIST);
	ls.pattern = c->nargs ? c->args[0] : "";
	req.reg_list = &ls;
	return ctl_call(c, &req, print_list);
}

static void free_fields(Rdo__FieldDef *fields, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(fields[i].name);
}

/* The fields of --field NAME=HIGH:LOW or NAME=BIT; their names are the caller's to free. */
static int parse_fields(const struct ctl_define_opts *d, Rdo__FieldDef *fields,
			Rdo__FieldDef **ptrs)
{
	for (size_t i = 0; i < d->nfields; i++) {
		Rdo__FieldDef *f = &fields[i];
		rdo__field_def__init(f);
		char *spec = strdup(d->fields[i]);
		char *eq = spec ? strchr(spec, '=') : NULL;
		char *colon = eq ? strchr(eq + 1, ':') : NULL;
		if (colon)
			*colon = '\0';
		uint64_t hi, lo = 0;
		if (!eq || rdo_parse_u64(eq + 1, &hi) || (colon && rdo_parse_u64(colon + 1, &lo))) {
			free(spec);
			free_fields(fields, i);
			return rdo_cli_usage_error(
			    "reg define: --field: expected NAME=HIGH:LOW or NAME=BIT, got \"%s\"",
			    d->fields[i]);
		}
		*eq = '\0';
		f->name = spec;
		f->msb = (uint32_t)hi;
		f->lsb = colon ? (uint32_t)lo : (uint32_t)hi;
		f->description = "";
		ptrs[i] = f;
	}
	return 0;
}

int ctl_reg_define(struct ctl *c)
{
	const struct ctl_define_opts *d = &c->define;
	Rdo__RegDefineRequest def = RDO__REG_DEFINE_REQUEST__INIT;
	Rdo__FieldDef fields[RDO_ARRAY_SIZE(d->fields)], *ptrs[RDO_ARRAY_SIZE(d->fields)];
	if (c->nargs != 2)
		return rdo_cli_usage_error("reg define: expected BANK.NAME OFFSET");
	char *dot = strchr(c->args[0], '.');
	if (!dot)
		return rdo_cli_usage_error("reg define: expected BANK.NAME, got \"%s\"",
					   c->args[0]);
	*dot = '\0';
	def.bank = c->args[0];
	def.name = dot + 1;
	if (rdo_parse_u64(c->args[1], &def.offset))
		return rdo_cli_usage_error("reg define: offset \"%s\" is not a number", c->args[1]);
	def.width = (uint32_t)d->width;
	def.reset = d->reset;
	def.description = (char *)(d->desc ? d->desc : "");
	if (d->access) {
		size_t a = 0;
		while (a < RDO_ARRAY_SIZE(access_names) && strcmp(access_names[a], d->access) != 0)
			a++;
		if (a == RDO_ARRAY_SIZE(access_names))
			return rdo_cli_usage_error(
			    "reg define: --access: expected ro, rw, wo or w1c, got \"%s\"",
			    d->access);
		def.access = (Rdo__Access)a;
	}
	def.new_bank = d->has_bank;
	def.bank_bar = (uint32_t)d->bar;
	def.bank_base = d->base;
	int rc = parse_fields(d, fields, ptrs);
	if (rc)
		return rc;
	def.n_fields = d->nfields;
	def.fields = ptrs;
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_REG_DEFINE);
	req.reg_define = &def;
	rc = ctl_call(c, &req, print_read);
	free_fields(fields, d->nfields);
	return rc;
}
