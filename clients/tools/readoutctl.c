/*
 * readoutctl: drive a readoutd from the command line or a script, and read
 * the data files its disk writers write.
 * Exit status: 0 done, 1 refused by the server (or a file with a problem),
 * 2 usage error, 3 no answer, 4 denied: the client's key lacks the role.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/json.h"
#include "common/keys.h"
#include "lib/rdoclient.h"
#include "lib/rdodata.h"
#include "lib/verify.h"
#include "common/rdofile.h"
#include "common/util.h"

#define EXIT_REFUSED	 1
#define EXIT_BAD_FILE	 1 /* file commands: the file has a problem, or cannot be read */
#define EXIT_USAGE	 2
#define EXIT_NO_ANSWER	 3
#define EXIT_DENIED	 4 /* the server refused the command to this client's role */
#define DEFAULT_ENDPOINT "tcp://127.0.0.1:5570"

/* Long options without a short form. */
enum { OPT_CARD = 256, OPT_SERVER_KEY, OPT_KEY, OPT_DIR };

static const char usage_text[] =
    "usage: readoutctl [-e ENDPOINT] [-t SECONDS] [--card NAME] [--server-key KEY|FILE]\n"
    "                  [--key FILE] [--json] COMMAND\n"
    "\n"
    "commands:\n"
    "  list-cards                 every card the server reads out: name, backend,\n"
    "                             address, identity, firmware, serial, NUMA node,\n"
    "                             state, links, register map (--json leaves out\n"
    "                             numa_node when the server does not know it)\n"
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
    "  file info FILE             a data file's run, card, map, host and writer, and\n"
    "                             its totals if it was closed\n"
    "  file verify [--pages] FILE check every record and CRC, the index and the\n"
    "                             totals; list the sequence gaps per link; --pages:\n"
    "                             also every DMA page against the emulator's pattern\n"
    "  file cat [--link N] FILE   the records' payloads to stdout, in file order\n"
    "  file recover FILE          close a file whose writer died: keep the complete\n"
    "                             records, cut the rest, write index and trailer\n"
    "  keygen NAME [--dir DIR]    make a CURVE key pair: DIR/NAME.key (mode 0600, the\n"
    "                             pair: yours, for --key) and DIR/NAME.pub (the public\n"
    "                             key, for the other side); prints the public key and\n"
    "                             the line for readoutd's authorized_keys. Never\n"
    "                             overwrites. DIR defaults to the current directory\n"
    "\n"
    "start, stop and reset print the resulting state line; a command the current\n"
    "state does not allow (start while running) is refused (exit status 1).\n"
    "\n"
    "NAME is bank.register, bank.register.field or a raw barN:OFFSET (32 bits).\n"
    "Numbers are decimal, 0x hex or 0b binary.\n"
    "\n"
    "With several cards in one readoutd every command but list-cards names its card\n"
    "(--card); with one card it may be left out.\n"
    "\n"
    "options:\n"
    "  -e, --endpoint ENDPOINT    readoutd control endpoint (default $READOUTD_ENDPOINT,\n"
    "                             else " DEFAULT_ENDPOINT ")\n"
    "  -t, --timeout SECONDS      wait this long for a reply (default 5)\n"
    "      --card NAME            the card the command addresses, by its name in the\n"
    "                             server's config (default $RDO_CARD)\n"
    "      --server-key KEY|FILE  talk CURVE: the server's public key, as 40 Z85\n"
    "                             characters or a key file holding it (its NAME.pub);\n"
    "                             default $RDO_SERVER_KEY. Needs --key\n"
    "      --key FILE             your key pair file for CURVE (readoutctl keygen makes\n"
    "                             one; mode 0600); default $RDO_CLIENT_KEY\n"
    "      --dir DIR              keygen: where the key files go\n"
    "  -j, --json                 print JSON on stdout, for scripts\n"
    "  -h, --help                 this text\n"
    "\n"
    "A readoutd bound to a non-loopback address speaks CURVE only: give it its public\n"
    "key and your key pair, whose public key its operator has put in its\n"
    "authorized_keys with a role: monitor (info, status, register reads, data) or\n"
    "operator (also register writes and definitions, start, stop, reset). A server\n"
    "that refuses the key does not answer at all (exit status 3).\n"
    "\n"
    "exit status: 0 done, 1 refused by the server (the reason on stderr), 2 usage\n"
    "error, 3 no answer from the server, 4 denied: the key's role may not do this\n"
    "(a monitor key writing). The file commands and keygen need no server; they\n"
    "exit 1 when the file has a problem (named on stderr with its byte offset),\n"
    "file verify also when the file was not closed; keygen when it cannot write\n"
    "its files.\n";

struct define_opts {
	uint64_t width, reset, bar, base;
	const char *access, *desc;
	const char *fields[32];
	size_t nfields;
	bool has_bank, used;
};

/* Options of the file commands. */
struct file_opts {
	uint64_t link;
	bool has_link;
	bool pages; /* verify: every DMA page too */
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

/* In the order of Rdo__State. */
static const char *state_name(Rdo__State s)
{
	static const char *const names[] = {"idle", "running", "stopping", "error"};
	return (unsigned)s < RDO_ARRAY_SIZE(names) ? names[s] : "unknown";
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
		rdo_json_str(&j, "state", state_name(in->state));
		/* json.h has no signed numbers: an unknown node (-1) leaves the key out. */
		if (in->numa_node >= 0)
			rdo_json_u64(&j, "numa_node", (uint64_t)in->numa_node);
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
	printf("state     %s", state_name(in->state));
	if (in->numa_node >= 0)
		printf(", NUMA node %d", in->numa_node);
	printf("\n");
	printf("server    readoutd %s, protocol %u, at %s\n", in->server_version, r->version,
	       endpoint);
}

/* "1.2.3 (0x01020003)", as info prints a firmware version. */
static const char *firmware_str(char buf[32], uint32_t fw)
{
	snprintf(buf, 32, "%u.%u.%u (0x%08x)", fw >> 24, (fw >> 16) & 0xff, fw & 0xffff, fw);
	return buf;
}

static int max_width(int w, const char *s)
{
	int n = (int)strlen(s);
	return n > w ? n : w;
}

/* list-cards: one line a card, or {"cards": [...]} with --json. */
static void print_cards(const Rdo__Reply *r)
{
	const Rdo__CardList *cl = r->cards;
	size_t n = cl ? cl->n_cards : 0;
	if (json_out) {
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		rdo_json_open(&j, "cards", '[');
		for (size_t i = 0; i < n; i++) {
			const Rdo__InfoReply *in = cl->cards[i];
			rdo_json_open(&j, NULL, '{');
			rdo_json_str(&j, "card", in->card);
			rdo_json_str(&j, "backend", in->backend);
			rdo_json_str(&j, "address", in->address);
			rdo_json_u64(&j, "identity", in->identity);
			rdo_json_u64(&j, "firmware", in->firmware);
			rdo_json_u64(&j, "serial", in->serial);
			if (in->numa_node >= 0)
				rdo_json_u64(&j, "numa_node", (uint64_t)in->numa_node);
			rdo_json_str(&j, "state", state_name(in->state));
			rdo_json_u64(&j, "links", in->links);
			rdo_json_str(&j, "map", in->map_name);
			rdo_json_str(&j, "map_file", in->map_file);
			rdo_json_bool(&j, "forced", in->forced);
			rdo_json_close(&j, '}');
		}
		rdo_json_close(&j, ']');
		rdo_json_close(&j, '}');
		return;
	}
	int wn = 4, wb = 7, wa = 7;
	for (size_t i = 0; i < n; i++) {
		wn = max_width(wn, cl->cards[i]->card);
		wb = max_width(wb, cl->cards[i]->backend);
		wa = max_width(wa, cl->cards[i]->address);
	}
	printf("%-*s %-*s %-*s %-10s %-18s %-18s %4s %-8s %5s %s\n", wn, "card", wb, "backend", wa,
	       "address", "identity", "firmware", "serial", "numa", "state", "links", "map");
	for (size_t i = 0; i < n; i++) {
		const Rdo__InfoReply *in = cl->cards[i];
		char fw[32], numa[16] = "-";
		if (in->numa_node >= 0)
			snprintf(numa, sizeof(numa), "%d", in->numa_node);
		printf("%-*s %-*s %-*s 0x%08x %-18s 0x%016llx %4s %-8s %5u %s%s\n", wn, in->card,
		       wb, in->backend, wa, in->address, in->identity,
		       firmware_str(fw, in->firmware), (unsigned long long)in->serial, numa,
		       state_name(in->state), in->links, in->map_name,
		       in->forced ? "  FORCED" : "");
	}
	if (n == 0)
		printf("(the server reads out no card)\n");
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
		if (k->state && k->state[0])
			printf("%-11s   %s, %llu files closed, %llu errors, file %s%s%s\n", "",
			       k->state, (unsigned long long)k->files,
			       (unsigned long long)k->errors,
			       k->file && k->file[0] ? k->file : "(none yet)",
			       k->last_error && k->last_error[0] ? "; last error: " : "",
			       k->last_error ? k->last_error : "");
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
		if (k->state && k->state[0]) {
			rdo_json_str(&j, "state", k->state);
			rdo_json_str(&j, "file", k->file);
			rdo_json_u64(&j, "files", k->files);
			rdo_json_u64(&j, "errors", k->errors);
			rdo_json_str(&j, "last_error", k->last_error);
		}
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
static int exchange(struct rdo_client *client, Rdo__Request *req, bool list)
{
	const char *endpoint = rdo_client_endpoint(client);
	Rdo__Reply *rep = NULL;
	int rc = rdo_client_call(client, req, &rep);
	if (rc) {
		fprintf(stderr, "readoutctl: %s\n", rdo_client_error(client));
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
		rc = rep->error == RDO__ERROR_CODE__ERR_DENIED ? EXIT_DENIED : EXIT_REFUSED;
	} else if (rep->body_case == RDO__REPLY__BODY_INFO) {
		print_info(rep, endpoint);
	} else if (req->cmd_case == RDO__REQUEST__CMD_LIST_CARDS) {
		print_cards(rep);
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

/* "2023-11-14T22:13:20.123Z": UTC, ISO 8601. */
static const char *iso_time(char buf[40], uint64_t ns)
{
	time_t secs = (time_t)(ns / 1000000000u);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 40 - n, ".%03uZ", (unsigned)(ns / 1000000u % 1000));
	return buf;
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

static int file_problem(const char *path, const char *what)
{
	fprintf(stderr, "readoutctl: %s: %s\n", path, what);
	return EXIT_BAD_FILE;
}

static void print_link_totals(const struct rdo_file_trailer *t)
{
	for (uint32_t i = 0; i < t->links; i++) {
		const struct rdo_link_totals *l = &t->link[i];
		if (l->records)
			printf("link %02u     %llu record%s, sequences %llu-%llu, %llu missing\n",
			       i, (unsigned long long)l->records, plural(l->records),
			       (unsigned long long)l->first_sequence,
			       (unsigned long long)l->last_sequence,
			       (unsigned long long)l->missing);
	}
}

static void json_link_totals(struct rdo_json *j, const struct rdo_file_trailer *t)
{
	rdo_json_open(j, "links", '[');
	for (uint32_t i = 0; i < t->links; i++) {
		const struct rdo_link_totals *l = &t->link[i];
		if (!l->records)
			continue;
		rdo_json_open(j, NULL, '{');
		rdo_json_u64(j, "link", i);
		rdo_json_u64(j, "records", l->records);
		rdo_json_u64(j, "first_sequence", l->first_sequence);
		rdo_json_u64(j, "last_sequence", l->last_sequence);
		rdo_json_u64(j, "missing", l->missing);
		rdo_json_close(j, '}');
	}
	rdo_json_close(j, ']');
}

static void json_file_info(const char *path, uint64_t size, const struct rdo_file_header *h,
			   const struct rdo_file_trailer *t, const char *why)
{
	char sha[65], when[40];
	for (int i = 0; i < 32; i++)
		sprintf(sha + 2 * i, "%02x", h->map_sha256[i]);
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_str(&j, "file", path);
	rdo_json_u64(&j, "size", size);
	rdo_json_u64(&j, "version", h->version);
	rdo_json_u64(&j, "run", h->run);
	rdo_json_u64(&j, "file_seq", h->file_seq);
	rdo_json_u64(&j, "start_ns", h->start_ns);
	rdo_json_str(&j, "start", iso_time(when, h->start_ns));
	rdo_json_str(&j, "card", h->card);
	rdo_json_str(&j, "backend", h->backend);
	rdo_json_str(&j, "address", h->address);
	rdo_json_u64(&j, "identity", h->identity);
	rdo_json_u64(&j, "firmware", h->firmware);
	rdo_json_u64(&j, "serial", h->serial);
	rdo_json_u64(&j, "links", h->links);
	rdo_json_str(&j, "map", h->map_name);
	rdo_json_str(&j, "map_sha256", sha);
	rdo_json_str(&j, "host", h->host);
	rdo_json_str(&j, "writer", h->writer);
	rdo_json_u64(&j, "superpage_size", h->superpage_size);
	rdo_json_bool(&j, "closed", t != NULL);
	if (t) {
		rdo_json_open(&j, "trailer", '{');
		rdo_json_u64(&j, "end_ns", t->end_ns);
		rdo_json_str(&j, "end", iso_time(when, t->end_ns));
		rdo_json_bool(&j, "recovered", t->flags & RDO_TRAILER_RECOVERED);
		rdo_json_u64(&j, "records", t->records);
		rdo_json_u64(&j, "payload_bytes", t->payload_bytes);
		rdo_json_u64(&j, "index_offset", t->index_offset);
		json_link_totals(&j, t);
		rdo_json_close(&j, '}');
	} else {
		rdo_json_str(&j, "not_closed", why);
	}
	rdo_json_close(&j, '}');
}

static void print_file_info(const char *path, uint64_t size, const struct rdo_file_header *h,
			    const struct rdo_file_trailer *t, const char *why)
{
	char b[32], when[40];
	printf("file        %s, %s (%llu bytes), format version %u\n", path,
	       bytes_str(b, (double)size), (unsigned long long)size, h->version);
	printf("run         %llu, file %llu of the run\n", (unsigned long long)h->run,
	       (unsigned long long)h->file_seq);
	printf("started     %s\n", iso_time(when, h->start_ns));
	printf("card        %s (backend %s, address %s)\n", h->card, h->backend, h->address);
	printf("identity    0x%08x\n", h->identity);
	printf("firmware    %u.%u.%u (0x%08x)\n", h->firmware >> 24, (h->firmware >> 16) & 0xff,
	       h->firmware & 0xffff, h->firmware);
	printf("serial      0x%016llx\n", (unsigned long long)h->serial);
	printf("links       %u\n", h->links);
	printf("map         %s, sha256 ", h->map_name);
	for (int i = 0; i < 32; i++)
		printf("%02x", h->map_sha256[i]);
	printf("\n");
	printf("host        %s\n", h->host);
	printf("writer      %s\n", h->writer);
	printf("superpage   %u bytes\n", h->superpage_size);
	if (!t) {
		printf("trailer     %s (run `readoutctl file recover %s`)\n", why, path);
		return;
	}
	printf("trailer     closed %s%s: %llu record%s, %s of payload\n", iso_time(when, t->end_ns),
	       t->flags & RDO_TRAILER_RECOVERED ? " by readoutctl file recover" : "",
	       (unsigned long long)t->records, plural(t->records),
	       bytes_str(b, (double)t->payload_bytes));
	print_link_totals(t);
}

static int file_info(const char *path)
{
	char err[RDO_FILE_ERR_MAX];
	const char *why;
	struct rdo_file_reader *r = rdo_file_reader_open(path, err, sizeof(err));
	if (!r)
		return file_problem(path, err);
	const struct rdo_file_trailer *t = rdo_file_reader_trailer(r, &why);
	if (json_out)
		json_file_info(path, rdo_file_reader_size(r), rdo_file_reader_header(r), t, why);
	else
		print_file_info(path, rdo_file_reader_size(r), rdo_file_reader_header(r), t, why);
	rdo_file_reader_close(&r);
	return 0;
}

/* What file verify prints as it goes, or keeps for --json (the first VERIFY_KEEP of each). */
#define VERIFY_KEEP 1000
struct verify_out {
	const char *path;
	char *problems[VERIFY_KEEP];
	uint64_t gaps[VERIFY_KEEP][3]; /* link, first, last */
	size_t nproblems, ngaps;
	struct rdo_verify *pages; /* --pages: checks every DMA page; NULL: off */
};

static void on_problem(void *arg, const char *line)
{
	struct verify_out *o = arg;
	if (!json_out)
		fprintf(stderr, "readoutctl: %s: %s\n", o->path, line);
	else if (o->nproblems < VERIFY_KEEP)
		o->problems[o->nproblems++] = strdup(line);
}

static void on_gap(void *arg, uint32_t link, uint64_t first, uint64_t last)
{
	struct verify_out *o = arg;
	if (!json_out)
		printf("link %u: sequences %llu-%llu missing (%llu)\n", link,
		       (unsigned long long)first, (unsigned long long)last,
		       (unsigned long long)(last - first + 1));
	else if (o->ngaps < VERIFY_KEEP)
		memcpy(o->gaps[o->ngaps++], (uint64_t[3]){link, first, last}, sizeof(o->gaps[0]));
}

static void json_verify(const struct verify_out *o, const struct rdo_file_verify_report *rep,
			bool ok)
{
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_str(&j, "file", o->path);
	rdo_json_bool(&j, "ok", ok);
	rdo_json_bool(&j, "closed", rep->closed);
	rdo_json_bool(&j, "recovered", rep->closed && rep->trailer.flags & RDO_TRAILER_RECOVERED);
	rdo_json_u64(&j, "size", rep->size);
	rdo_json_u64(&j, "records", rep->found.records);
	rdo_json_u64(&j, "payload_bytes", rep->found.payload_bytes);
	rdo_json_u64(&j, "problem_count", rep->problems);
	rdo_json_open(&j, "problems", '[');
	for (size_t i = 0; i < o->nproblems; i++)
		rdo_json_str(&j, NULL, o->problems[i]);
	rdo_json_close(&j, ']');
	rdo_json_u64(&j, "gap_count", rep->gaps);
	rdo_json_open(&j, "gaps", '[');
	for (size_t i = 0; i < o->ngaps; i++) {
		rdo_json_open(&j, NULL, '{');
		rdo_json_u64(&j, "link", o->gaps[i][0]);
		rdo_json_u64(&j, "first", o->gaps[i][1]);
		rdo_json_u64(&j, "last", o->gaps[i][2]);
		rdo_json_u64(&j, "count", o->gaps[i][2] - o->gaps[i][1] + 1);
		rdo_json_close(&j, '}');
	}
	rdo_json_close(&j, ']');
	json_link_totals(&j, &rep->found);
	rdo_json_close(&j, '}');
}

static void print_verify(const char *path, const struct rdo_file_verify_report *rep, bool ok)
{
	char a[32], b[32], when[40];
	printf("file        %s, %s", path, bytes_str(a, (double)rep->size));
	if (rep->closed)
		printf(", closed %s%s\n", iso_time(when, rep->trailer.end_ns),
		       rep->trailer.flags & RDO_TRAILER_RECOVERED ? " by readoutctl file recover"
								  : "");
	else
		printf(", not closed\n");
	printf("records     %llu, %s of payload; %llu sequence gaps\n",
	       (unsigned long long)rep->found.records,
	       bytes_str(b, (double)rep->found.payload_bytes), (unsigned long long)rep->gaps);
	print_link_totals(&rep->found);
	if (ok)
		printf("verify      OK: every record and CRC, the index and the totals check\n");
	else if (rep->problems)
		printf("verify      FAILED: %llu problem%s%s\n", (unsigned long long)rep->problems,
		       plural(rep->problems), rep->closed ? "" : ", not closed");
	else
		printf("verify      FAILED: not closed\n");
}

static void on_page_problem(void *arg, enum rdo_verify_problem p, const char *line)
{
	(void)p;
	fprintf(stderr, "readoutctl: %s: %s\n", (const char *)arg, line);
}

/* A record's DMA pages, as readout-sub --check checks a superpage of the stream. */
static void on_record(void *arg, const struct rdo_file_header *fh,
		      const struct rdo_file_record *rec)
{
	struct verify_out *o = arg;
	struct rdo_data_view view = {
	    .data = rec->payload,
	    .size = rec->h.size,
	    .link = rec->h.link,
	    .sequence = rec->h.sequence,
	    .timestamp_ns = rec->h.timestamp_ns,
	    .flags = rec->h.flags,
	    .run = rec->h.run,
	    .card_pages_dropped = rec->h.card_pages_dropped,
	};
	rdo_strlcpy(view.card, fh->card, sizeof(view.card));
	rdo_verify_superpage(o->pages, &view, 0);
}

/*
 * What the page check found: page headers, page counters continuous per
 * link, every payload byte. The number of pages that fail.
 */
static uint64_t pages_verdict(const struct verify_out *o)
{
	struct rdo_verify_totals t;
	rdo_verify_totals(o->pages, &t);
	/* Pages the card dropped at the source, and said so in its counter, are not the file's
	 * fault. */
	uint64_t unexplained = t.c.pages_missing > t.c.card_pages_dropped
				   ? t.c.pages_missing - t.c.card_pages_dropped
				   : 0;
	if (!json_out)
		printf("pages       %llu checked, %llu corrupt, %llu dropped by the card (counted "
		       "there), %llu missing otherwise\n",
		       (unsigned long long)t.c.pages, (unsigned long long)t.c.corrupt_pages,
		       (unsigned long long)t.c.card_pages_dropped, (unsigned long long)unexplained);
	return t.c.corrupt_pages + unexplained + t.c.out_of_order;
}

static int file_verify(const char *path, const struct file_opts *f)
{
	struct verify_out o = {.path = path};
	struct rdo_file_verify_cb cb = {.problem = on_problem, .gap = on_gap, .arg = &o};
	if (f->pages) {
		struct rdo_verify_opts vo;
		rdo_verify_opts_init(&vo);
		vo.check_payload = true;
		vo.report = on_page_problem;
		vo.arg = (void *)path;
		vo.silent_ns = UINT64_MAX;
		if (!(o.pages = rdo_verify_create(&vo))) {
			fprintf(stderr, "readoutctl: out of memory\n");
			return EXIT_BAD_FILE;
		}
		cb.record = on_record;
	}
	struct rdo_file_verify_report rep;
	int rc = rdo_file_verify(path, &rep, &cb);
	if (json_out)
		json_verify(&o, &rep, rc == 0);
	else if (rep.size)
		print_verify(path, &rep, rc == 0);
	if (rep.size && !rep.closed)
		fprintf(stderr, "readoutctl: %s: not closed (run `readoutctl file recover %s`)\n",
			path, path);
	for (size_t i = 0; i < o.nproblems; i++)
		free(o.problems[i]);
	if (o.pages && pages_verdict(&o) != 0)
		rc = -EBADMSG;
	rdo_verify_destroy(&o.pages);
	return rc ? EXIT_BAD_FILE : 0;
}

static int file_cat(const char *path, const struct file_opts *f)
{
	char err[RDO_FILE_ERR_MAX];
	struct rdo_file_record rec;
	struct rdo_file_reader *r = rdo_file_reader_open(path, err, sizeof(err));
	if (!r)
		return file_problem(path, err);
	int rc;
	while ((rc = rdo_file_reader_next(r, &rec, err, sizeof(err))) == 1) {
		if (f->has_link && rec.h.link != f->link)
			continue;
		if (fwrite(rec.payload, 1, rec.h.size, stdout) != rec.h.size)
			break;
	}
	const char *why;
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "readoutctl: writing %s to stdout: %s\n", path, strerror(errno));
		rc = -EIO;
	} else if (rc < 0) {
		fprintf(stderr,
			"readoutctl: %s: %s; the payloads before it were written (`readoutctl file "
			"verify %s` lists every problem)\n",
			path, err, path);
	} else if (!rdo_file_reader_trailer(r, &why)) {
		fprintf(stderr, "readoutctl: %s: %s (`readoutctl file recover %s` closes it)\n",
			path, why, path);
	}
	rdo_file_reader_close(&r);
	return rc < 0 ? EXIT_BAD_FILE : 0;
}

static int file_recover(const char *path)
{
	char err[RDO_FILE_ERR_MAX], b[32];
	struct rdo_file_recover_report rep;
	int rc = rdo_file_recover(path, &rep, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "readoutctl: %s: cannot recover: %s\n", path, err);
		return EXIT_BAD_FILE;
	}
	if (json_out) {
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		rdo_json_str(&j, "file", path);
		rdo_json_bool(&j, "was_closed", rep.was_closed);
		rdo_json_u64(&j, "records", rep.records);
		rdo_json_u64(&j, "payload_bytes", rep.payload_bytes);
		rdo_json_u64(&j, "end", rep.end);
		rdo_json_u64(&j, "cut", rep.cut);
		rdo_json_u64(&j, "size", rep.size);
		rdo_json_str(&j, "stopped", rep.stopped);
		rdo_json_close(&j, '}');
	} else if (rep.was_closed) {
		printf("%s: already closed (%llu record%s, %s of payload): nothing changed\n", path,
		       (unsigned long long)rep.records, plural(rep.records),
		       bytes_str(b, (double)rep.payload_bytes));
	} else {
		printf("kept %llu record%s (%s), cut %llu bytes after offset %llu\n",
		       (unsigned long long)rep.records, plural(rep.records),
		       bytes_str(b, (double)rep.payload_bytes), (unsigned long long)rep.cut,
		       (unsigned long long)rep.end);
		if (rep.stopped[0])
			printf("the first record cut: %s\n", rep.stopped);
		printf("closed %s: index and trailer written, %llu bytes now\n", path,
		       (unsigned long long)rep.size);
	}
	return 0;
}

/* `readoutctl file SUB FILE`: no server involved. */
static int file_command(int nargs, char **args, const struct file_opts *f)
{
	const char *sub = nargs > 0 ? args[0] : "";
	if (nargs != 2)
		return usage_error("file: expected info, verify, cat or recover, then FILE%s", "");
	if (f->has_link && strcmp(sub, "cat") != 0)
		return usage_error("--link belongs to file cat%s", "");
	if (f->pages && strcmp(sub, "verify") != 0)
		return usage_error("--pages belongs to file verify%s", "");
	if (strcmp(sub, "info") == 0)
		return file_info(args[1]);
	if (strcmp(sub, "verify") == 0)
		return file_verify(args[1], f);
	if (strcmp(sub, "recover") == 0)
		return file_recover(args[1]);
	if (strcmp(sub, "cat") != 0)
		return usage_error("unknown command \"file %s\"", sub);
	if (json_out)
		return usage_error("--json: file cat writes the payloads as they are%s", "");
	return file_cat(args[1], f);
}

/* keygen NAME: a file name and the name in authorized_keys, so no path and no spaces. */
static bool key_name_ok(const char *name)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789._@+-";
	size_t n = strlen(name);
	return n > 0 && n <= 63 && name[0] != '.' && name[0] != '-' && strspn(name, allowed) == n;
}

/* `readoutctl keygen NAME [--dir DIR]`: no server involved. */
static int keygen(int nargs, char **args, const char *dir)
{
	if (nargs != 2)
		return usage_error("keygen: expected NAME%s", "");
	const char *name = args[1];
	if (!key_name_ok(name))
		return usage_error(
		    "keygen: NAME \"%s\": expected 1 to 63 letters, digits and . _ @ "
		    "+ - (it names the files and the key in authorized_keys)",
		    name);
	char base[PATH_MAX], err[1024];
	if ((size_t)snprintf(base, sizeof(base), "%s%s%s", dir ? dir : "", dir ? "/" : "", name) >=
	    sizeof(base))
		return usage_error("--dir: \"%s\" is too long", dir);
	struct rdo_keypair k;
	if (rdo_key_generate(base, name, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "readoutctl: keygen: %s\n", err);
		return EXIT_BAD_FILE;
	}
	const char *pub = k.public_z85;
	if (json_out) {
		char line[256], path[PATH_MAX + 8];
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		rdo_json_str(&j, "name", name);
		rdo_json_str(&j, "public_key", pub);
		snprintf(path, sizeof(path), "%s.key", base);
		rdo_json_str(&j, "key_file", path);
		snprintf(path, sizeof(path), "%s.pub", base);
		rdo_json_str(&j, "public_file", path);
		rdo_json_open(&j, "authorized_keys", '{');
		snprintf(line, sizeof(line), "monitor %s %s", pub, name);
		rdo_json_str(&j, "monitor", line);
		snprintf(line, sizeof(line), "operator %s %s", pub, name);
		rdo_json_str(&j, "operator", line);
		rdo_json_close(&j, '}');
		rdo_json_close(&j, '}');
	} else {
		printf("public key  %s\n", pub);
		printf("wrote       %s.key (the key pair, mode 0600: keep it secret; use it with "
		       "--key\n"
		       "            or $RDO_CLIENT_KEY)\n",
		       base);
		printf("            %s.pub (the public key: give it to the other side)\n", base);
		printf(
		    "\n"
		    "For a client key, readoutd's operator adds one of these lines to its\n"
		    "authorized_keys and reloads it (systemctl reload readoutd): monitor for a "
		    "key\n"
		    "that only watches (info, status, register reads, data streams), operator for\n"
		    "one that also changes the card (register writes and definitions, start, "
		    "stop,\n"
		    "reset). Pick monitor unless %s must change the card.\n",
		    name);
		printf("monitor %s %s\n", pub, name);
		printf("operator %s %s\n", pub, name);
		printf("\n"
		       "For readoutd's own key pair: its config names %s.key, and clients give\n"
		       "%s.pub with --server-key.\n",
		       base, base);
	}
	explicit_bzero(&k, sizeof(k));
	return 0;
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
	    {"link", required_argument, NULL, 'L'},
	    {"pages", no_argument, NULL, 'P'},
	    {"card", required_argument, NULL, OPT_CARD},
	    {"server-key", required_argument, NULL, OPT_SERVER_KEY},
	    {"key", required_argument, NULL, OPT_KEY},
	    {"dir", required_argument, NULL, OPT_DIR},
	    {NULL, 0, NULL, 0},
	};
	const char *endpoint = getenv("READOUTD_ENDPOINT");
	const char *card = getenv("RDO_CARD");
	const char *server_key = NULL, *key_file = NULL, *dir = NULL;
	bool card_given = false;
	double timeout = 5.0;
	struct define_opts d = {0};
	struct acq_opts a = {.interval = 1.0};
	struct file_opts f = {0};
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
		case 'P':
			f.pages = true;
			break;
		case OPT_CARD:
			if (!optarg[0])
				return usage_error("--card: expected a card name%s", "");
			card = optarg;
			card_given = true;
			break;
		case OPT_SERVER_KEY:
			server_key = optarg;
			break;
		case OPT_KEY:
			key_file = optarg;
			break;
		case OPT_DIR:
			dir = optarg;
			break;
		case 'L':
			f.has_link = true;
			if (rdo_parse_u64(optarg, &f.link) || f.link > UINT32_MAX)
				return usage_error("--link: \"%s\" is not a link number", optarg);
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
	bool remote_opts = card_given || server_key || key_file;
	if (strcmp(args[0], "file") == 0 &&
	    (d.used || a.has_run || a.watch || a.has_interval || remote_opts || dir))
		return usage_error("file commands take only --json, --link and --pages%s", "");
	if (strcmp(args[0], "file") == 0)
		return file_command(nargs - 1, args + 1, &f);
	if (strcmp(args[0], "keygen") == 0 && (d.used || a.has_run || a.watch || a.has_interval ||
					       remote_opts || f.has_link || f.pages))
		return usage_error("keygen takes only --dir and --json%s", "");
	if (strcmp(args[0], "keygen") == 0)
		return keygen(nargs, args, dir);
	if (dir)
		return usage_error("--dir belongs to keygen%s", "");
	if (f.has_link)
		return usage_error("--link belongs to file cat%s", "");

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
	Rdo__ListCardsRequest cards;
	bool list = false;
	const char *cmd = args[0];
	const char *sub = nargs > 1 ? args[1] : "";
	int rest = nargs - 2;
	char **restv = args + 2;
	if (strcmp(cmd, "info") == 0 && nargs == 1) {
		rdo__info_request__init(&info);
		req.cmd_case = RDO__REQUEST__CMD_INFO;
		req.info = &info;
	} else if (strcmp(cmd, "list-cards") == 0) {
		if (nargs > 1)
			return usage_error("list-cards: unexpected argument \"%s\"", args[1]);
		if (card_given)
			return usage_error(
			    "list-cards shows every card: --card belongs to the other "
			    "commands%s",
			    "");
		rdo__list_cards_request__init(&cards);
		req.cmd_case = RDO__REQUEST__CMD_LIST_CARDS;
		req.list_cards = &cards;
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

	/* Every command names its card; list-cards is about all of them. */
	if (card && card[0] && req.cmd_case != RDO__REQUEST__CMD_LIST_CARDS)
		req.card = (char *)card;

	char err[1024];
	struct rdo_client_keys keys;
	if (rdo_client_keys_init(&keys, server_key, key_file, err, sizeof(err)) != 0) {
		fprintf(stderr, "readoutctl: %s\n", err);
		return EXIT_USAGE;
	}
	struct rdo_client *client =
	    rdo_client_open(endpoint, (int)(timeout * 1000), &keys, err, sizeof(err));
	explicit_bzero(&keys, sizeof(keys)); /* on the socket now */
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
	rc = exchange(client, &req, list);
	while (a.watch && rc == 0 && !stop_signal) {
		struct timespec ts = {.tv_sec = (time_t)a.interval,
				      .tv_nsec =
					  (long)((a.interval - (double)(time_t)a.interval) * 1e9)};
		/* A signal cuts the sleep short. */
		if (nanosleep(&ts, NULL) != 0 || stop_signal)
			break;
		if (!json_out)
			printf("\n");
		rc = exchange(client, &req, list);
	}
	for (size_t i = 0; req.cmd_case == RDO__REQUEST__CMD_REG_DEFINE && i < def.n_fields; i++)
		free(fields[i].name);
	rdo_client_destroy(&client);
	return rc;
}
