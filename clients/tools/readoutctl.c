/*
 * readoutctl: drive a readoutd from the command line or a script, and read
 * the data files its disk writers write.
 * Exit status: 0 done, 1 refused by the server (or a file with a problem),
 * 2 usage error, 3 no answer, 4 denied: the client's key lacks the role.
 *
 * This file: main, the table of commands, --help, and what every command
 * that talks to the server does (readoutctl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/util.h"
#include "lib/rdodata.h"
#include "tools/json.h"
#include "tools/readoutctl.h"

/* In the order of --help. */
static const struct ctl_command commands[] = {
    {"list-cards", "",
     "every card the server reads out: name, backend,\n"
     "address, identity, firmware, serial, NUMA node,\n"
     "state, links, register map (--json leaves out\n"
     "numa_node when the server does not know it)",
     CTL_OPTS_SERVER & ~CTL_OPT_CARD, ctl_list_cards},
    {"info", "", "card identity, firmware, serial, map, BARs", CTL_OPTS_SERVER, ctl_info},
    {"reg read", "NAME...", "read registers or fields", CTL_OPTS_SERVER, ctl_reg_read},
    {"reg write", "NAME VALUE",
     "write a register or a field (VALUE: a number or,\n"
     "for a field with named values, the name)",
     CTL_OPTS_SERVER, ctl_reg_write},
    {"reg modify", "CHANGE...",
     "change fields or masked bits of registers, all\n"
     "checked before any is written; CHANGE is\n"
     "NAME=VALUE or NAME=VALUE/MASK",
     CTL_OPTS_SERVER, ctl_reg_modify},
    {"reg list", "[PATTERN]",
     "registers with values and descriptions; PATTERN\n"
     "is a glob over bank.register (\"link.*\")",
     CTL_OPTS_SERVER, ctl_reg_list},
    {"reg define",
     "BANK.NAME OFFSET [--width BITS] [--access ro|rw|wo|w1c]\n"
     "[--reset VALUE] [--desc TEXT] [--field NAME=HIGH:LOW]...\n"
     "[--bar N --base OFFSET]",
     "add a register to the running map; --bar and\n"
     "--base create a new bank",
     CTL_OPTS_SERVER | CTL_OPT_DEFINE, ctl_reg_define},
    {"start", "[--run N]", "start the acquisition (N: run number, default 0)",
     CTL_OPTS_SERVER | CTL_OPT_RUN, ctl_start},
    {"stop", "", "stop it: the card flushes, the pool refills", CTL_OPTS_SERVER, ctl_stop},
    {"reset", "", "reset the DMA channel, leaving an error state", CTL_OPTS_SERVER, ctl_reset},
    {"status", "[--watch] [--interval S]",
     "state, run, rates, drops, pool, temperature, links\n"
     "and sinks; --watch repeats every S seconds (default\n"
     "1) until Ctrl-C, with --json one object a line",
     CTL_OPTS_SERVER | CTL_OPT_WATCH, ctl_status},
    {"file info", "FILE",
     "a data file's run, card, map, host and writer, and\n"
     "its totals if it was closed",
     CTL_OPT_JSON, ctl_file_info},
    {"file verify", "[--pages] FILE",
     "check every record and CRC, the index and the\n"
     "totals; list the sequence gaps per link; --pages:\n"
     "also every DMA page against the emulator's pattern",
     CTL_OPT_JSON | CTL_OPT_PAGES, ctl_file_verify},
    {"file cat", "[--link N] FILE", "the records' payloads to stdout, in file order",
     CTL_OPT_JSON | CTL_OPT_LINK, ctl_file_cat},
    {"file recover", "FILE",
     "close a file whose writer died: keep the complete\n"
     "records, cut the rest, write index and trailer",
     CTL_OPT_JSON, ctl_file_recover},
    {"keygen", "NAME [--dir DIR]",
     "make a CURVE key pair: DIR/NAME.key (mode 0600, the\n"
     "pair: yours, for --key) and DIR/NAME.pub (the public\n"
     "key, for the other side); prints the public key and\n"
     "the line for readoutd's authorized_keys. Never\n"
     "overwrites. DIR defaults to the current directory",
     CTL_OPT_DIR | CTL_OPT_JSON, ctl_keygen},
};

/* The option groups (readoutctl.h), as refusals name them. */
static const struct {
	unsigned group;
	const char *names;
	bool plural;
	const char *elsewhere; /* for a command that refuses what several others take */
} option_groups[] = {
    {CTL_OPT_DIR, "--dir", false, NULL},
    {CTL_OPT_JSON, "--json", false, NULL},
    {CTL_OPT_LINK, "--link", false, NULL},
    {CTL_OPT_PAGES, "--pages", false, NULL},
    {CTL_OPT_DEFINE, "--width, --access, --reset, --desc, --field, --bar and --base", true, NULL},
    {CTL_OPT_RUN, "--run", false, NULL},
    {CTL_OPT_WATCH, "--watch and --interval", true, NULL},
    {CTL_OPT_CARD, "--card", false, "shows every card: --card belongs to the other commands"},
    {CTL_OPT_KEYS, "--server-key and --key", true, NULL},
};

/* Where --help puts a command's description, and how wide its usage may be beside it. */
#define HELP_COLUMN 29
#define USAGE_WIDTH (HELP_COLUMN - 3)

static const char usage_head[] =
    "usage: readoutctl [-e ENDPOINT] [-t SECONDS] [--card NAME] [--server-key KEY|FILE]\n"
    "                  [--key FILE] [--json] COMMAND\n"
    "\n"
    "commands:\n";

static const char usage_tail[] =
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
    "                             else " RDO_DEFAULT_CONTROL_TCP ")\n"
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

/* Print `text` from its current line on, the lines after the first indented by `indent`. */
static void print_lines(FILE *f, const char *text, int indent)
{
	for (const char *nl; (nl = strchr(text, '\n')); text = nl + 1)
		fprintf(f, "%.*s\n%*s", (int)(nl - text), text, indent, "");
	fprintf(f, "%s\n", text);
}

/* A command in --help: its usage, and its description beside it or, if it is long, below. */
static void print_command(FILE *f, const struct ctl_command *cmd)
{
	char line[256];
	snprintf(line, sizeof(line), "%s%s%s", cmd->name, cmd->usage[0] ? " " : "", cmd->usage);
	if (strlen(line) <= USAGE_WIDTH) {
		fprintf(f, "  %-*s ", USAGE_WIDTH, line);
	} else {
		fprintf(f, "  ");
		/* The usage's later lines under its first argument. */
		print_lines(f, line, 2 + (int)strlen(cmd->name) + 1);
		fprintf(f, "%*s", HELP_COLUMN, "");
	}
	print_lines(f, cmd->help, HELP_COLUMN);
}

static void print_usage(FILE *f)
{
	fputs(usage_head, f);
	for (size_t i = 0; i < RDO_ARRAY_SIZE(commands); i++)
		print_command(f, &commands[i]);
	fputs(usage_tail, f);
}

/* The first word of a command's name, its family ("reg", "file"), is `word`. */
static bool in_family(const struct ctl_command *cmd, const char *word)
{
	size_t n = strlen(word);
	return strncmp(cmd->name, word, n) == 0 && (cmd->name[n] == ' ' || !cmd->name[n]);
}

/* The row whose name `args` starts with, and the words of its name; NULL: none. */
static const struct ctl_command *lookup(int nargs, char **args, int *words)
{
	for (size_t i = 0; i < RDO_ARRAY_SIZE(commands); i++) {
		const char *sub = strchr(commands[i].name, ' ');
		if (!in_family(&commands[i], args[0]))
			continue;
		if (!sub) {
			*words = 1;
			return &commands[i];
		}
		if (nargs > 1 && strcmp(args[1], sub + 1) == 0) {
			*words = 2;
			return &commands[i];
		}
	}
	return NULL;
}

/* "unknown command "reg frob"": a family's name with what followed it, else the word alone. */
static int unknown_command(int nargs, char **args)
{
	bool family = false;
	for (size_t i = 0; i < RDO_ARRAY_SIZE(commands); i++)
		family |= in_family(&commands[i], args[0]) && strchr(commands[i].name, ' ');
	if (family && nargs > 1)
		return rdo_cli_usage_error("unknown command \"%s %s\"", args[0], args[1]);
	return rdo_cli_usage_error("unknown command \"%s\"", args[0]);
}

/*
 * The one command that takes the options of `group`: of the family when
 * some of it does, else of them all. NULL when several do.
 */
static const struct ctl_command *only_taker(unsigned group, const char *family)
{
	const struct ctl_command *taker = NULL;
	unsigned n = 0;
	for (int pass = 0; pass < 2 && n == 0; pass++) {
		for (size_t i = 0; i < RDO_ARRAY_SIZE(commands); i++) {
			if (!(commands[i].opts & group) ||
			    (pass == 0 && !in_family(&commands[i], family)))
				continue;
			taker = &commands[i];
			n++;
		}
	}
	return n == 1 ? taker : NULL;
}

/* The options of `groups` for a person, as refusals list them: "--dir and --json". */
static void list_options(unsigned groups, char *out, size_t len)
{
	size_t count = 0, k = 0, n = 0;
	for (size_t i = 0; i < RDO_ARRAY_SIZE(option_groups); i++)
		count += (groups & option_groups[i].group) != 0;
	out[0] = '\0';
	for (size_t i = 0; i < RDO_ARRAY_SIZE(option_groups) && n < len; i++) {
		if (!(groups & option_groups[i].group))
			continue;
		k++;
		const char *sep = k == 1 ? "" : k == count ? " and " : ", ";
		n += (size_t)snprintf(out + n, len - n, "%s%s", sep, option_groups[i].names);
	}
}

/*
 * Refuse the options given (`given`, CTL_OPT_*) that the command does not
 * take. A command that needs no server takes only what its family takes:
 * "keygen takes only --dir and --json". Else an option that one command
 * takes belongs to it: "--run belongs to start", "--link belongs to file cat".
 */
static int refuse_options(const struct ctl_command *cmd, unsigned given)
{
	char family[32];
	snprintf(family, sizeof(family), "%.*s", (int)strcspn(cmd->name, " "), cmd->name);
	unsigned family_opts = 0, members = 0;
	for (size_t i = 0; i < RDO_ARRAY_SIZE(commands); i++) {
		if (in_family(&commands[i], family)) {
			family_opts |= commands[i].opts;
			members++;
		}
	}
	if (!(cmd->opts & CTL_OPT_KEYS) && (given & ~family_opts)) {
		char list[256];
		list_options(family_opts, list, sizeof(list));
		return rdo_cli_usage_error("%s%s only %s", family,
					   members > 1 ? " commands take" : " takes", list);
	}
	for (size_t i = 0; i < RDO_ARRAY_SIZE(option_groups); i++) {
		unsigned g = option_groups[i].group;
		if (!(given & g) || (cmd->opts & g))
			continue;
		const struct ctl_command *taker = only_taker(g, family);
		if (taker)
			return rdo_cli_usage_error("%s %s to %s", option_groups[i].names,
						   option_groups[i].plural ? "belong" : "belongs",
						   taker->name);
		if (option_groups[i].elsewhere)
			return rdo_cli_usage_error("%s %s", cmd->name, option_groups[i].elsewhere);
		return rdo_cli_usage_error("%s takes no %s", cmd->name, option_groups[i].names);
	}
	return 0;
}

/* readoutctl's own options; rdo_cli_option() takes the shared ones. */
enum { OPT_DIR = RDO_CLI_OPT_TOOL };

static int parse_define(struct ctl_define_opts *d, int opt, const char *arg)
{
	switch (opt) {
	case 'W':
		return rdo_parse_u64(arg, &d->width)
			   ? rdo_cli_usage_error("--width: \"%s\" is not a number", arg)
			   : 0;
	case 'R':
		return rdo_parse_u64(arg, &d->reset)
			   ? rdo_cli_usage_error("--reset: \"%s\" is not a number", arg)
			   : 0;
	case 'B':
		d->has_bank = true;
		return rdo_parse_u64(arg, &d->bar)
			   ? rdo_cli_usage_error("--bar: \"%s\" is not a number", arg)
			   : 0;
	case 'O':
		d->has_bank = true;
		return rdo_parse_u64(arg, &d->base)
			   ? rdo_cli_usage_error("--base: \"%s\" is not a number", arg)
			   : 0;
	case 'A':
		d->access = arg;
		return 0;
	case 'D':
		d->desc = arg;
		return 0;
	default:
		if (d->nfields == RDO_ARRAY_SIZE(d->fields))
			return rdo_cli_usage_error("at most 32 --field options");
		d->fields[d->nfields++] = arg;
		return 0;
	}
}

/* One option of readoutctl's own: its value into `c`, its group into `*given`. */
static int parse_option(struct ctl *c, int opt, const char *arg, unsigned *given)
{
	switch (opt) {
	case 't':
		if (!rdo_cli_seconds(arg, &c->timeout) || !(c->timeout > 0 && c->timeout < 86400))
			return rdo_cli_usage_error("--timeout: expected seconds, got \"%s\"", arg);
		return 0;
	case 'W':
	case 'R':
	case 'A':
	case 'D':
	case 'F':
	case 'B':
	case 'O':
		*given |= CTL_OPT_DEFINE;
		return parse_define(&c->define, opt, arg);
	case 'r':
		*given |= CTL_OPT_RUN;
		return rdo_parse_u64(arg, &c->acq.run)
			   ? rdo_cli_usage_error("--run: \"%s\" is not a number", arg)
			   : 0;
	case 'w':
		*given |= CTL_OPT_WATCH;
		c->acq.watch = true;
		return 0;
	case 'i':
		*given |= CTL_OPT_WATCH;
		if (!rdo_cli_seconds(arg, &c->acq.interval) ||
		    !(c->acq.interval >= 0.1 && c->acq.interval <= 86400))
			return rdo_cli_usage_error(
			    "--interval: expected seconds (0.1 to 86400), got \"%s\"", arg);
		return 0;
	case 'L':
		*given |= CTL_OPT_LINK;
		c->file.has_link = true;
		if (rdo_parse_u64(arg, &c->file.link) || c->file.link > UINT32_MAX)
			return rdo_cli_usage_error("--link: \"%s\" is not a link number", arg);
		return 0;
	case 'P':
		*given |= CTL_OPT_PAGES;
		c->file.pages = true;
		return 0;
	case OPT_DIR:
		*given |= CTL_OPT_DIR;
		c->dir = arg;
		return 0;
	case RDO_CLI_OPT_CARD:
		*given |= CTL_OPT_CARD;
		break;
	case RDO_CLI_OPT_SERVER_KEY:
	case RDO_CLI_OPT_KEY:
		*given |= CTL_OPT_KEYS;
		break;
	case 'j':
		*given |= CTL_OPT_JSON;
		break;
	}
	return rdo_cli_option(&c->cli, opt, arg);
}

static int parse_args(int argc, char **argv, struct ctl *c, unsigned *given)
{
	static const struct option longopts[] = {
	    RDO_CLI_OPTIONS /* then readoutctl's own */
	    {"timeout", required_argument, NULL, 't'},
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
	    {"dir", required_argument, NULL, OPT_DIR},
	    {NULL, 0, NULL, 0},
	};
	int opt, rc;
	while ((opt = getopt_long(argc, argv, RDO_CLI_SHORT "t:", longopts, NULL)) != -1)
		if ((rc = parse_option(c, opt, optarg, given)))
			return rc;
	c->endpoint = c->cli.endpoint ? c->cli.endpoint : getenv("READOUTD_ENDPOINT");
	if (!c->endpoint || !c->endpoint[0])
		c->endpoint = RDO_DEFAULT_CONTROL_TCP;
	c->card = c->cli.card ? c->cli.card : getenv("RDO_CARD");
	c->nargs = argc - optind;
	c->args = argv + optind;
	return 0;
}

Rdo__Request ctl_request(const struct ctl *c, Rdo__Request__CmdCase cmd)
{
	Rdo__Request req = RDO__REQUEST__INIT;
	req.cmd_case = cmd;
	/* Every command names its card; list-cards is about all of them. */
	if (c->card && c->card[0] && (c->cmd->opts & CTL_OPT_CARD))
		req.card = (char *)c->card;
	return req;
}

static int connect_client(struct ctl *c)
{
	char err[1024];
	struct rdo_client_keys keys;
	if (rdo_client_keys_init(&keys, c->cli.server_key, c->cli.key_file, err, sizeof(err))) {
		fprintf(stderr, "readoutctl: %s\n", err);
		return RDO_EXIT_USAGE;
	}
	c->client = rdo_client_open(c->endpoint, (int)(c->timeout * 1000), &keys, err, sizeof(err));
	explicit_bzero(&keys, sizeof(keys)); /* on the socket now */
	if (!c->client) {
		fprintf(stderr, "readoutctl: %s\n", err);
		return CTL_EXIT_NO_ANSWER;
	}
	return 0;
}

int ctl_call(struct ctl *c, Rdo__Request *req, ctl_print_fn *print)
{
	int rc;
	if (!c->client && (rc = connect_client(c)))
		return rc;
	Rdo__Reply *rep = NULL;
	if (rdo_client_call(c->client, req, &rep)) {
		fprintf(stderr, "readoutctl: %s\n", rdo_client_error(c->client));
		return CTL_EXIT_NO_ANSWER;
	}
	rc = 0;
	if (rep->error != RDO__ERROR_CODE__OK) {
		fprintf(stderr, "readoutctl: %s: %s\n", rdo_client_error_name(rep->error),
			rep->message);
		if (c->cli.json) {
			struct rdo_json j;
			rdo_json_init(&j, stdout);
			rdo_json_open(&j, NULL, '{');
			rdo_json_str(&j, "error", rdo_client_error_name(rep->error));
			rdo_json_u64(&j, "code", (uint64_t)rep->error);
			rdo_json_str(&j, "message", rep->message);
			rdo_json_close(&j, '}');
		}
		rc = rep->error == RDO__ERROR_CODE__ERR_DENIED ? CTL_EXIT_DENIED : CTL_EXIT_REFUSED;
	} else {
		print(c, rep);
	}
	fflush(stdout);
	rdo__reply__free_unpacked(rep, NULL);
	return rc;
}

int ctl_no_args(const struct ctl *c)
{
	if (c->nargs > 0)
		return rdo_cli_usage_error("%s: unexpected argument \"%s\"", c->cmd->name,
					   c->args[0]);
	return 0;
}

const char *ctl_bytes(char buf[32], double bytes)
{
	return rdo_data_format_bytes(buf, 32, bytes);
}

int main(int argc, char **argv)
{
	struct ctl c = {.timeout = 5.0, .acq.interval = 1.0};
	unsigned given = 0;
	int words, rc;
	rdo_cli_init(&c.cli, "readoutctl", print_usage);
	if ((rc = parse_args(argc, argv, &c, &given)))
		return rc;
	if (c.nargs < 1)
		return rdo_cli_usage_error("expected a command");
	c.cmd = lookup(c.nargs, c.args, &words);
	if (!c.cmd)
		return unknown_command(c.nargs, c.args);
	c.nargs -= words;
	c.args += words;
	if ((rc = refuse_options(c.cmd, given)))
		return rc;
	rc = c.cmd->run(&c);
	rdo_client_destroy(&c.client);
	return rc;
}
