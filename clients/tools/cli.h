/*
 * The command line readoutctl, readout-sub and readout-writer share: the
 * options every tool takes the same way (-e/--endpoint, --card,
 * --server-key, --key, -j/--json, -h/--help), one rule for a card name, and
 * one form for a usage error:
 *
 *   readout-sub: --count: expected a number of superpages > 0, got "x" (readout-sub --help)
 *
 * A tool lists RDO_CLI_OPTIONS in its getopt_long table, handles its own
 * options in its switch and hands every other value getopt_long returns to
 * rdo_cli_option(). Options a tool gives another meaning (readout-writer's
 * -e, a config key) it handles itself, before rdo_cli_option().
 *
 * A process runs one tool: rdo_cli_init() names it for every message here.
 * Not thread-safe; for the main thread, while it reads its command line.
 */
#ifndef RDO_CLI_H
#define RDO_CLI_H

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>

#define RDO_EXIT_USAGE 2 /* every tool's exit status for a usage error */

/* What getopt_long returns for the shared long options without a short form. */
enum {
	RDO_CLI_OPT_CARD = 256,
	RDO_CLI_OPT_SERVER_KEY,
	RDO_CLI_OPT_KEY,
	RDO_CLI_OPT_TOOL, /* the first value free for a tool's own */
};

/*
 * The shared options' entries for a tool's getopt_long table, each with its
 * comma: the tool's own follow (with a comment between, clang-format keeps
 * them apart). RDO_CLI_SHORT leads its short options.
 */
#define RDO_CLI_OPTIONS                                                                            \
	{"endpoint", required_argument, NULL, 'e'}, {"json", no_argument, NULL, 'j'},              \
	    {"help", no_argument, NULL, 'h'}, {"card", required_argument, NULL, RDO_CLI_OPT_CARD}, \
	    {"server-key", required_argument, NULL, RDO_CLI_OPT_SERVER_KEY},                       \
	    {"key", required_argument, NULL, RDO_CLI_OPT_KEY},
#define RDO_CLI_SHORT "e:jh"

/* What the shared options said. Plain value, filled by rdo_cli_option(). */
struct rdo_cli {
	const char *endpoint;	/* -e; NULL: not given (the tool's default applies) */
	const char *card;	/* --card, a valid card name; NULL: not given */
	const char *server_key; /* --server-key; NULL: not given ($RDO_SERVER_KEY applies) */
	const char *key_file;	/* --key; NULL: not given ($RDO_CLIENT_KEY applies) */
	bool json;		/* -j, --json */
};

/*
 * Clear `c` and name the tool for this process: `tool` starts every message
 * and says where help is ("(readoutctl --help)"); `usage` prints the tool's
 * help, for -h (on stdout) and a bad option (on stderr). `tool` must live as
 * long as the process.
 */
void rdo_cli_init(struct rdo_cli *c, const char *tool, void (*usage)(FILE *out));

/*
 * A value getopt_long returned. A shared option is stored in `c`: 0, or
 * RDO_EXIT_USAGE with the reason on stderr (a --card that is no card name).
 * -h prints the help on stdout and exits 0. Anything else (getopt_long's '?'
 * for an unknown option or a missing value) prints the help on stderr and
 * returns RDO_EXIT_USAGE.
 */
int rdo_cli_option(struct rdo_cli *c, int opt, const char *arg);

/*
 * Print "TOOL: MESSAGE (TOOL --help)" on stderr, MESSAGE formatted from `fmt`
 * as printf does. Returns RDO_EXIT_USAGE, for `return rdo_cli_usage_error(...)`.
 */
int rdo_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * A card name as --card takes it: 1 to RDO_DATA_CARD_MAX - 1 characters and
 * no '/' (live topics are "CARD/LL"). The server's config is stricter;
 * what it does not know it refuses by name.
 */
bool rdo_cli_card_valid(const char *name);

/* `arg` is a number of seconds, all of it (strtod's forms): true with `*out` set. */
bool rdo_cli_seconds(const char *arg, double *out);

struct rdo_client_keys; /* keys.h */

/*
 * The CURVE keys from --server-key and --key, or the environment
 * (rdo_client_keys_init() says which counts). 0, or RDO_EXIT_USAGE with the
 * reason on stderr as a usage error. `*keys` carries a secret: the caller
 * clears it once the sockets have it.
 */
int rdo_cli_keys(const struct rdo_cli *c, struct rdo_client_keys *keys);

#endif
