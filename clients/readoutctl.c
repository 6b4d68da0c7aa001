/*
 * readoutctl: drive a readoutd from the command line or a script.
 * Exit status: 0 done, 1 refused by the server, 2 usage error, 3 no answer.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "rdoclient.h"
#include "rdodata.h"
#include "util.h"

#define EXIT_REFUSED	 1
#define EXIT_USAGE	 2
#define EXIT_NO_ANSWER	 3
#define DEFAULT_ENDPOINT "tcp://127.0.0.1:5570"

static const char usage_text[] =
    "usage: readoutctl [-e ENDPOINT] [-t SECONDS] [--json] COMMAND\n"
    "\n"
    "commands:\n"
    "  info                       card identity, firmware, serial, map, BARs\n"
    "  reg read NAME...           read registers or fields\n"
    "  reg write NAME VALUE       write a register or a field (VALUE: a number or,\n"
    "                             for a field with named values, the name)\n"
    "  reg modify CHANGE...       change fields or masked bits of registers, all\n"
    "                             checked before any is written; CHANGE is\n"
    "                             NAME=VALUE or NAME=VALUE/MASK\n"
    "  reg list [PATTERN]         registers with values and descriptions; PATTERN\n"
    "                             is a glob over bank.register (\"link.*\")\n"
    "  reg define BANK.NAME OFFSET [--width BITS] [--access ro|rw|wo|w1c]\n"
    "             [--reset VALUE] [--desc TEXT] [--field NAME=HIGH:LOW]...\n"
    "             [--bar N --base OFFSET]\n"
    "                             add a register to the running map; --bar and\n"
    "                             --base create a new bank\n"
    "  start [--run N]            start the acquisition (N: run number, default 0)\n"
    "  stop                       stop it: the card flushes, the pool refills\n"
    "  reset                      reset the DMA channel, leaving an error state\n"
    "  status [--watch] [--interval S]\n"
    "                             state, run, rates, drops, pool, temperature, links\n"
    "                             and sinks; --watch repeats every S seconds (default\n"
    "                             1) until Ctrl-C, with --json one object a line\n"
    "\n"
    "start, stop and reset print the resulting state line; a command the current\n"
    "state does not allow (start while running) is refused (exit status 1).\n"
    "\n"
    "NAME is bank.register, bank.register.field or a raw barN:OFFSET (32 bits).\n"
    "Numbers are decimal, 0x hex or 0b binary.\n"
    "\n"
    "options:\n"
    "  -e, --endpoint ENDPOINT    readoutd control endpoint (default $READOUTD_ENDPOINT,\n"
    "                             else " DEFAULT_ENDPOINT ")\n"
    "  -t, --timeout SECONDS      wait this long for a reply (default 5)\n"
    "  -j, --json                 print JSON on stdout, for scripts\n"
    "  -h, --help                 this text\n"
    "\n"
    "exit status: 0 done, 1 refused by the server (the reason on stderr), 2 usage\n"
    "error, 3 no answer from the server.\n";

struct define_opts {
	uint64_t width, reset, bar, base;
	const char *access, *desc;
	const char *fields[32];
	size_t nfields;
	bool has_bank, used;
};

/* Options of start and status. */
struct acq_opts {
	uint64_t run;
	double interval;
	bool has_run, watch, has_interval;
};

static bool json_out;
static volatile sig_atomic_t stop_signal;

/* In the order of Rdo__Access. */
static const char *const access_names[] = {"rw", "ro", "wo", "w1c"};

static const char *access_name(Rdo__Access a)
{
	return (unsigned)a < RDO_ARRAY_SIZE(access_names) ? access_names[a] : "?";
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "readoutctl: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (readoutctl --help)\n");
	return EXIT_USAGE;
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

static void print_values(const Rdo__Reply *r, bool list)
{
	const Rdo__RegValues *vals = r->values;
	if (json_out) {
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

static void print_info(const Rdo__Reply *r, const char *endpoint)
{
	const Rdo__InfoReply *in = r->info;
	if (json_out) {
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		rdo_json_str(&j, "card", in->card);
		rdo_json_str(&j, "backend", in->backend);
		rdo_json_str(&j, "address", in->address);
		rdo_json_u64(&j, "identity", in->identity);
		rdo_json_u64(&j, "firmware", in->firmware);
		rdo_json_u64(&j, "serial", in->serial);
		rdo_json_u64(&j, "links", in->links);
		rdo_json_str(&j, "map", in->map_name);
		rdo_json_str(&j, "map_file", in->map_file);
		rdo_json_u64(&j, "map_registers", in->map_registers);
		rdo_json_bool(&j, "forced", in->forced);
		rdo_json_str(&j, "server_version", in->server_version);
		rdo_json_u64(&j, "protocol", r->version);
		rdo_json_open(&j, "bars", '[');
		for (size_t i = 0; i < in->n_bars; i++) {
			rdo_json_open(&j, NULL, '{');
			rdo_json_u64(&j, "index", in->bars[i]->index);
			rdo_json_u64(&j, "size", in->bars[i]->size);
			rdo_json_close(&j, '}');
		}
		rdo_json_close(&j, ']');
		rdo_json_close(&j, '}');
		return;
	}
	printf("card      %s (backend %s, address %s)%s\n", in->card, in->backend, in->address,
	       in->forced ? "  FORCED: identity or firmware not supported by the map" : "");
	printf("identity  0x%08x\n", in->identity);
	printf("firmware  %u.%u.%u (0x%08x)\n", in->firmware >> 24, (in->firmware >> 16) & 0xff,
	       in->firmware & 0xffff, in->firmware);
	printf("serial    0x%016llx\n", (unsigned long long)in->serial);
	printf("links     %u\n", in->links);
	printf("bars     ");
	for (size_t i = 0; i < in->n_bars; i++)
		printf(" bar%u %llu KiB", in->bars[i]->index,
		       (unsigned long long)in->bars[i]->size / 1024);
	printf("\n");
	printf("map       %s, %u registers (%s)\n", in->map_name, in->map_registers, in->map_file);
	printf("server    readoutd %s, protocol %u, at %s\n", in->server_version, r->version,
	       endpoint);
}

/* "VALUE": a number, or an enum name the server resolves. */
static void parse_value(const char *s, uint64_t *value, char **symbol)
{
	if (rdo_parse_u64(s, value) != 0) {
		*value = 0;
		*symbol = (char *)s;
	}
}

static int build_modify(int argc, char **argv, Rdo__Request *req, Rdo__RegModifyRequest *mod,
			Rdo__RegChange *changes, Rdo__RegChange **ptrs)
{
	rdo__reg_modify_request__init(mod);
	for (int i = 0; i < argc; i++) {
		Rdo__RegChange *ch = &changes[i];
		rdo__reg_change__init(ch);
		char *eq = strchr(argv[i], '=');
		if (!eq || eq == argv[i] || !eq[1])
			return usage_error(
			    "reg modify: expected NAME=VALUE or NAME=VALUE/MASK, got \"%s\"",
			    argv[i]);
		*eq = '\0';
		ch->name = argv[i];
		char *slash = strchr(eq + 1, '/');
		if (slash) {
			*slash = '\0';
			if (rdo_parse_u64(slash + 1, &ch->mask) || ch->mask == 0)
				return usage_error(
				    "reg modify: mask \"%s\" is not a non-zero number", slash + 1);
		}
		parse_value(eq + 1, &ch->value, &ch->symbol);
		ptrs[i] = ch;
	}
	mod->n_changes = (size_t)argc;
	mod->changes = ptrs;
	req->cmd_case = RDO__REQUEST__CMD_REG_MODIFY;
	req->reg_modify = mod;
	return 0;
}

static int build_define(int argc, char **argv, const struct define_opts *d, Rdo__Request *req,
			Rdo__RegDefineRequest *def, Rdo__FieldDef *fields, Rdo__FieldDef **ptrs)
{
	if (argc != 2)
		return usage_error("reg define: expected BANK.NAME OFFSET%s", "");
	rdo__reg_define_request__init(def);
	char *dot = strchr(argv[0], '.');
	if (!dot)
		return usage_error("reg define: expected BANK.NAME, got \"%s\"", argv[0]);
	*dot = '\0';
	def->bank = argv[0];
	def->name = dot + 1;
	if (rdo_parse_u64(argv[1], &def->offset))
		return usage_error("reg define: offset \"%s\" is not a number", argv[1]);
	def->width = (uint32_t)d->width;
	def->reset = d->reset;
	def->description = (char *)(d->desc ? d->desc : "");
	if (d->access) {
		size_t a = 0;
		while (a < RDO_ARRAY_SIZE(access_names) && strcmp(access_names[a], d->access) != 0)
			a++;
		if (a == RDO_ARRAY_SIZE(access_names))
			return usage_error(
			    "reg define: --access: expected ro, rw, wo or w1c, got \"%s\"",
			    d->access);
		def->access = (Rdo__Access)a;
	}
	def->new_bank = d->has_bank;
	def->bank_bar = (uint32_t)d->bar;
	def->bank_base = d->base;
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
			for (size_t k = 0; k < i; k++)
				free(fields[k].name);
			return usage_error(
			    "reg define: --field: expected NAME=HIGH:LOW or NAME=BIT, "
			    "got \"%s\"",
			    d->fields[i]);
		}
		*eq = '\0';
		f->name = spec;
		f->msb = (uint32_t)hi;
		f->lsb = colon ? (uint32_t)lo : (uint32_t)hi;
		f->description = "";
		ptrs[i] = f;
	}
	def->n_fields = d->nfields;
	def->fields = ptrs;
	req->cmd_case = RDO__REQUEST__CMD_REG_DEFINE;
	req->reg_define = def;
	return 0;
}

/* In the order of Rdo__State. */
static const char *state_name(Rdo__State s)
{
	static const char *const names[] = {"idle", "running", "stopping", "error"};
	return (unsigned)s < RDO_ARRAY_SIZE(names) ? names[s] : "unknown";
}

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

static const char *bytes_str(char *buf, double bytes)
{
	return rdo_data_format_bytes(buf, 32, bytes);
}

/* "sim0 running, run 42, up 0:01:23": what start, stop and reset print. */
static void print_state_line(const Rdo__Status *st)
{
	printf("%s %s, run %llu", st->card, state_name(st->state), (unsigned long long)st->run);
	if (st->state != RDO__STATE__STATE_IDLE)
		printf(", up %llu:%02llu:%02llu", (unsigned long long)st->uptime_s / 3600,
		       (unsigned long long)st->uptime_s / 60 % 60,
		       (unsigned long long)st->uptime_s % 60);
	printf("\n");
}

static void print_links(const Rdo__Status *st)
{
	char b[32], r[32];
	printf("links       %-4s %-7s %-3s %-7s %11s %10s %12s %13s\n", "link", "enabled", "up",
	       "stalled", "superpages", "bytes", "rate", "pages dropped");
	for (size_t i = 0; i < st->n_links; i++) {
		const Rdo__LinkStatus *l = st->links[i];
		printf("            %02u   %-7s %-3s %-7s %11llu %10s %10s/s %13llu\n", l->link,
		       yes(l->enabled), yes(l->up), yes(l->stalled),
		       (unsigned long long)l->superpages, bytes_str(b, (double)l->bytes),
		       bytes_str(r, l->rate_bytes), (unsigned long long)l->pages_dropped);
	}
}

static void print_sinks(const Rdo__Status *st)
{
	char r[32];
	for (size_t i = 0; i < st->n_sinks; i++) {
		const Rdo__SinkStatus *k = st->sinks[i];
		printf("%-11s %s: %llu superpages, %s/s, dropped %llu, queued %u, %u consumers,",
		       i ? "" : "sinks", k->name, (unsigned long long)k->superpages,
		       bytes_str(r, k->rate_bytes), (unsigned long long)k->dropped, k->queued,
		       k->consumers);
		for (size_t e = 0; e < k->n_endpoints; e++)
			printf(" %s", k->endpoints[e]);
		printf("\n");
	}
}

static void print_status(const Rdo__Status *st)
{
	char a[32], b[32];
	printf("card        ");
	print_state_line(st);
	printf("totals      %llu superpages, %s; %s/s, %.1f superpages/s; %llu taken by no sink\n",
	       (unsigned long long)st->superpages, bytes_str(a, (double)st->bytes),
	       bytes_str(b, st->rate_bytes), st->rate_superpages,
	       (unsigned long long)st->unclaimed);
	printf("card drops  %llu pages (%s); FIFO overflows %llu\n",
	       (unsigned long long)st->pages_dropped, bytes_str(a, (double)st->bytes_dropped),
	       (unsigned long long)st->fifo_overflows);
	printf("pool        %u free, %u in card, %u in sinks, of %u superpages of %s (%s)\n",
	       st->pool_free, st->pool_in_card, st->pool_in_sinks, st->pool_total,
	       bytes_str(a, (double)st->superpage_size),
	       st->pool_memory[0] ? st->pool_memory : "memory kind unknown");
	if (st->temperature_mc)
		printf("temperature %.1f C\n", st->temperature_mc / 1000.0);
	else
		printf("temperature not reported by this card\n");
	print_links(st);
	print_sinks(st);
	printf("errors      %llu%s%s\n", (unsigned long long)st->errors,
	       st->last_error[0] ? ", last: " : "", st->last_error);
	if (st->events_lost)
		printf("events      %llu logged but not published (event queue full)\n",
		       (unsigned long long)st->events_lost);
}

/* One object a line (json.h ends the line when the top object closes). */
static void json_status(const Rdo__Status *st)
{
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_str(&j, "card", st->card);
	rdo_json_str(&j, "state", state_name(st->state));
	rdo_json_u64(&j, "time_ns", st->time_ns);
	rdo_json_u64(&j, "run", st->run);
	rdo_json_u64(&j, "uptime_s", st->uptime_s);
	rdo_json_u64(&j, "superpages", st->superpages);
	rdo_json_u64(&j, "bytes", st->bytes);
	rdo_json_u64(&j, "rate_bytes", (uint64_t)(st->rate_bytes + 0.5));
	rdo_json_u64(&j, "rate_superpages", (uint64_t)(st->rate_superpages + 0.5));
	rdo_json_u64(&j, "pages_dropped", st->pages_dropped);
	rdo_json_u64(&j, "bytes_dropped", st->bytes_dropped);
	rdo_json_u64(&j, "fifo_overflows", st->fifo_overflows);
	rdo_json_open(&j, "pool", '{');
	rdo_json_u64(&j, "total", st->pool_total);
	rdo_json_u64(&j, "free", st->pool_free);
	rdo_json_u64(&j, "in_card", st->pool_in_card);
	rdo_json_u64(&j, "in_sinks", st->pool_in_sinks);
	rdo_json_u64(&j, "superpage_size", st->superpage_size);
	rdo_json_str(&j, "memory", st->pool_memory);
	rdo_json_close(&j, '}');
	/* json.h has no signed numbers; a card below 0 C leaves the key out. */
	if (st->temperature_mc > 0)
		rdo_json_u64(&j, "temperature_mc", (uint64_t)st->temperature_mc);
	rdo_json_open(&j, "links", '[');
	for (size_t i = 0; i < st->n_links; i++) {
		const Rdo__LinkStatus *l = st->links[i];
		rdo_json_open(&j, NULL, '{');
		rdo_json_u64(&j, "link", l->link);
		rdo_json_bool(&j, "enabled", l->enabled);
		rdo_json_bool(&j, "up", l->up);
		rdo_json_bool(&j, "stalled", l->stalled);
		rdo_json_u64(&j, "superpages", l->superpages);
		rdo_json_u64(&j, "bytes", l->bytes);
		rdo_json_u64(&j, "pages", l->pages);
		rdo_json_u64(&j, "pages_dropped", l->pages_dropped);
		rdo_json_u64(&j, "bytes_dropped", l->bytes_dropped);
		rdo_json_u64(&j, "rate_bytes", (uint64_t)(l->rate_bytes + 0.5));
		rdo_json_u64(&j, "in_card", l->in_card);
		rdo_json_close(&j, '}');
	}
	rdo_json_close(&j, ']');
	rdo_json_open(&j, "sinks", '[');
	for (size_t i = 0; i < st->n_sinks; i++) {
		const Rdo__SinkStatus *k = st->sinks[i];
		rdo_json_open(&j, NULL, '{');
		rdo_json_str(&j, "name", k->name);
		rdo_json_u64(&j, "superpages", k->superpages);
		rdo_json_u64(&j, "bytes", k->bytes);
		rdo_json_u64(&j, "dropped", k->dropped);
		rdo_json_u64(&j, "queued", k->queued);
		rdo_json_u64(&j, "consumers", k->consumers);
		rdo_json_u64(&j, "rate_bytes", (uint64_t)(k->rate_bytes + 0.5));
		rdo_json_open(&j, "endpoints", '[');
		for (size_t e = 0; e < k->n_endpoints; e++)
			rdo_json_str(&j, NULL, k->endpoints[e]);
		rdo_json_close(&j, ']');
		rdo_json_close(&j, '}');
	}
	rdo_json_close(&j, ']');
	rdo_json_u64(&j, "errors", st->errors);
	rdo_json_u64(&j, "unclaimed", st->unclaimed);
	rdo_json_u64(&j, "events_lost", st->events_lost);
	rdo_json_str(&j, "last_error", st->last_error);
	rdo_json_close(&j, '}');
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

static int acq_option(struct acq_opts *a, int opt, const char *arg)
{
	char *end;
	switch (opt) {
	case 'r':
		a->has_run = true;
		return rdo_parse_u64(arg, &a->run)
			   ? usage_error("--run: \"%s\" is not a number", arg)
			   : 0;
	case 'w':
		a->watch = true;
		return 0;
	default:
		a->has_interval = true;
		a->interval = strtod(arg, &end);
		if (*end || end == arg || !(a->interval >= 0.1 && a->interval <= 86400))
			return usage_error(
			    "--interval: expected seconds (0.1 to 86400), got \"%s\"", arg);
		return 0;
	}
}

static int define_option(struct define_opts *d, int opt, const char *arg)
{
	d->used = true;
	switch (opt) {
	case 'W':
		return rdo_parse_u64(arg, &d->width)
			   ? usage_error("--width: \"%s\" is not a number", arg)
			   : 0;
	case 'R':
		return rdo_parse_u64(arg, &d->reset)
			   ? usage_error("--reset: \"%s\" is not a number", arg)
			   : 0;
	case 'B':
		d->has_bank = true;
		return rdo_parse_u64(arg, &d->bar)
			   ? usage_error("--bar: \"%s\" is not a number", arg)
			   : 0;
	case 'O':
		d->has_bank = true;
		return rdo_parse_u64(arg, &d->base)
			   ? usage_error("--base: \"%s\" is not a number", arg)
			   : 0;
	case 'A':
		d->access = arg;
		return 0;
	case 'D':
		d->desc = arg;
		return 0;
	default:
		if (d->nfields == RDO_ARRAY_SIZE(d->fields))
			return usage_error("at most 32 --field options%s", "");
		d->fields[d->nfields++] = arg;
		return 0;
	}
}

/* The bodies of the acquisition requests: they live as long as the request. */
struct acq_requests {
	Rdo__StartRequest start;
	Rdo__StopRequest stop;
	Rdo__ResetRequest reset;
	Rdo__StatusRequest status;
};

/* start, stop, reset, status: -1 when `args[0]` is none of them, else 0 or a usage error. */
static int build_acquisition(int nargs, char **args, const struct acq_opts *a, Rdo__Request *req,
			     struct acq_requests *r)
{
	const char *cmd = args[0];
	if (strcmp(cmd, "start") == 0) {
		rdo__start_request__init(&r->start);
		r->start.run = a->run;
		req->cmd_case = RDO__REQUEST__CMD_START;
		req->start = &r->start;
	} else if (strcmp(cmd, "stop") == 0) {
		rdo__stop_request__init(&r->stop);
		req->cmd_case = RDO__REQUEST__CMD_STOP;
		req->stop = &r->stop;
	} else if (strcmp(cmd, "reset") == 0) {
		rdo__reset_request__init(&r->reset);
		req->cmd_case = RDO__REQUEST__CMD_RESET;
		req->reset = &r->reset;
	} else if (strcmp(cmd, "status") == 0) {
		rdo__status_request__init(&r->status);
		req->cmd_case = RDO__REQUEST__CMD_STATUS;
		req->status = &r->status;
	} else {
		return -1;
	}
	if (nargs > 1) {
		fprintf(stderr, "readoutctl: %s: unexpected argument \"%s\" (readoutctl --help)\n",
			cmd, args[1]);
		return EXIT_USAGE;
	}
	return 0;
}

/* Send `req`, print the answer; the exit status. */
static int exchange(struct rdo_client *client, Rdo__Request *req, double timeout, bool list)
{
	const char *endpoint = rdo_client_endpoint(client);
	Rdo__Reply *rep = NULL;
	int rc = rdo_client_call(client, req, &rep);
	if (rc == -ETIMEDOUT) {
		fprintf(
		    stderr,
		    "readoutctl: no reply from %s within %.1f s: is readoutd running "
		    "there? (start it: systemctl start readoutd, or make run in a source tree)\n",
		    endpoint, timeout);
		return EXIT_NO_ANSWER;
	}
	if (rc) {
		fprintf(stderr, "readoutctl: talking to %s failed: %s\n", endpoint, strerror(-rc));
		return EXIT_NO_ANSWER;
	}
	if (rep->error != RDO__ERROR_CODE__OK) {
		fprintf(stderr, "readoutctl: %s: %s\n", rdo_client_error_name(rep->error),
			rep->message);
		if (json_out) {
			struct rdo_json j;
			rdo_json_init(&j, stdout);
			rdo_json_open(&j, NULL, '{');
			rdo_json_str(&j, "error", rdo_client_error_name(rep->error));
			rdo_json_u64(&j, "code", (uint64_t)rep->error);
			rdo_json_str(&j, "message", rep->message);
			rdo_json_close(&j, '}');
		}
		rc = EXIT_REFUSED;
	} else if (rep->body_case == RDO__REPLY__BODY_INFO) {
		print_info(rep, endpoint);
	} else if (rep->body_case == RDO__REPLY__BODY_STATUS && json_out) {
		json_status(rep->status);
	} else if (rep->body_case == RDO__REPLY__BODY_STATUS) {
		if (req->cmd_case == RDO__REQUEST__CMD_STATUS)
			print_status(rep->status);
		else
			print_state_line(rep->status);
	} else {
		print_values(rep, list);
	}
	fflush(stdout);
	rdo__reply__free_unpacked(rep, NULL);
	return rc;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"endpoint", required_argument, NULL, 'e'},
	    {"timeout", required_argument, NULL, 't'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {"width", required_argument, NULL, 'W'},
	    {"reset", required_argument, NULL, 'R'},
	    {"access", required_argument, NULL, 'A'},
	    {"desc", required_argument, NULL, 'D'},
	    {"field", required_argument, NULL, 'F'},
	    {"bar", required_argument, NULL, 'B'},
	    {"base", required_argument, NULL, 'O'},
	    {"run", required_argument, NULL, 'r'},
	    {"watch", no_argument, NULL, 'w'},
	    {"interval", required_argument, NULL, 'i'},
	    {NULL, 0, NULL, 0},
	};
	const char *endpoint = getenv("READOUTD_ENDPOINT");
	double timeout = 5.0;
	struct define_opts d = {0};
	struct acq_opts a = {.interval = 1.0};
	int opt, rc;
	while ((opt = getopt_long(argc, argv, "e:t:jh", longopts, NULL)) != -1) {
		switch (opt) {
		case 'e':
			endpoint = optarg;
			break;
		case 't': {
			char *end;
			timeout = strtod(optarg, &end);
			if (*end || !(timeout > 0 && timeout < 86400))
				return usage_error("--timeout: expected seconds, got \"%s\"",
						   optarg);
			break;
		}
		case 'j':
			json_out = true;
			break;
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'W':
		case 'R':
		case 'A':
		case 'D':
		case 'F':
		case 'B':
		case 'O':
			if ((rc = define_option(&d, opt, optarg)))
				return rc;
			break;
		case 'r':
		case 'w':
		case 'i':
			if ((rc = acq_option(&a, opt, optarg)))
				return rc;
			break;
		default:
			fputs(usage_text, stderr);
			return EXIT_USAGE;
		}
	}
	if (!endpoint || !endpoint[0])
		endpoint = DEFAULT_ENDPOINT;
	int nargs = argc - optind;
	char **args = argv + optind;
	if (nargs < 1)
		return usage_error("expected a command%s", "");

	Rdo__Request req;
	rdo__request__init(&req);
	Rdo__InfoRequest info;
	Rdo__RegReadRequest rd;
	Rdo__RegWriteRequest wr;
	Rdo__RegListRequest ls;
	Rdo__RegModifyRequest mod;
	Rdo__RegDefineRequest def;
	Rdo__RegChange changes[64], *change_ptrs[64];
	Rdo__FieldDef fields[32], *field_ptrs[32];
	struct acq_requests acq;
	bool list = false;
	const char *cmd = args[0];
	const char *sub = nargs > 1 ? args[1] : "";
	int rest = nargs - 2;
	char **restv = args + 2;
	if (strcmp(cmd, "info") == 0 && nargs == 1) {
		rdo__info_request__init(&info);
		req.cmd_case = RDO__REQUEST__CMD_INFO;
		req.info = &info;
	} else if ((rc = build_acquisition(nargs, args, &a, &req, &acq)) >= 0) {
		if (rc)
			return rc;
	} else if (strcmp(cmd, "reg") != 0 || nargs < 2) {
		return usage_error("unknown command \"%s\"", cmd);
	} else if (strcmp(sub, "read") == 0) {
		if (rest < 1)
			return usage_error("reg read: expected NAME...%s", "");
		rdo__reg_read_request__init(&rd);
		rd.n_names = (size_t)rest;
		rd.names = restv;
		req.cmd_case = RDO__REQUEST__CMD_REG_READ;
		req.reg_read = &rd;
	} else if (strcmp(sub, "write") == 0) {
		if (rest != 2)
			return usage_error("reg write: expected NAME VALUE%s", "");
		rdo__reg_write_request__init(&wr);
		wr.name = restv[0];
		parse_value(restv[1], &wr.value, &wr.symbol);
		req.cmd_case = RDO__REQUEST__CMD_REG_WRITE;
		req.reg_write = &wr;
	} else if (strcmp(sub, "modify") == 0) {
		if (rest < 1 || rest > 64)
			return usage_error("reg modify: expected 1 to 64 changes NAME=VALUE%s", "");
		if ((rc = build_modify(rest, restv, &req, &mod, changes, change_ptrs)))
			return rc;
	} else if (strcmp(sub, "list") == 0) {
		if (rest > 1)
			return usage_error("reg list: expected at most one PATTERN%s", "");
		rdo__reg_list_request__init(&ls);
		ls.pattern = rest ? restv[0] : "";
		req.cmd_case = RDO__REQUEST__CMD_REG_LIST;
		req.reg_list = &ls;
		list = true;
	} else if (strcmp(sub, "define") == 0) {
		if ((rc = build_define(rest, restv, &d, &req, &def, fields, field_ptrs)))
			return rc;
	} else {
		return usage_error("unknown command \"reg %s\"", sub);
	}
	if (d.used && req.cmd_case != RDO__REQUEST__CMD_REG_DEFINE)
		return usage_error("--width, --access, --reset, --desc, --field, --bar and --base "
				   "belong to reg define%s",
				   "");
	if (a.has_run && req.cmd_case != RDO__REQUEST__CMD_START)
		return usage_error("--run belongs to start%s", "");
	if ((a.watch || a.has_interval) && req.cmd_case != RDO__REQUEST__CMD_STATUS)
		return usage_error("--watch and --interval belong to status%s", "");

	char err[512];
	struct rdo_client *client =
	    rdo_client_create(endpoint, (int)(timeout * 1000), err, sizeof(err));
	if (!client) {
		fprintf(stderr, "readoutctl: %s\n", err);
		return EXIT_NO_ANSWER;
	}
	if (a.watch) {
		struct sigaction sa = {.sa_handler = on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	rc = exchange(client, &req, timeout, list);
	while (a.watch && rc == 0 && !stop_signal) {
		struct timespec ts = {.tv_sec = (time_t)a.interval,
				      .tv_nsec =
					  (long)((a.interval - (double)(time_t)a.interval) * 1e9)};
		/* A signal cuts the sleep short. */
		if (nanosleep(&ts, NULL) != 0 || stop_signal)
			break;
		if (!json_out)
			printf("\n");
		rc = exchange(client, &req, timeout, list);
	}
	for (size_t i = 0; req.cmd_case == RDO__REQUEST__CMD_REG_DEFINE && i < def.n_fields; i++)
		free(fields[i].name);
	rdo_client_destroy(&client);
	return rc;
}
