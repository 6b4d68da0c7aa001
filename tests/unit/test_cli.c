/*
 * The tools' shared command line (clients/tools/cli.h): the options every
 * tool takes, the one --card rule, usage errors, seconds.
 */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/util.h"
#include "lib/rdodata.h"
#include "tools/cli.h"

#define CARD_REFUSED(name)                                                                         \
	"tool: --card: expected a card name (1 to 63 characters, no '/'), got \"" name             \
	"\" (tool --help)\n"

static void usage(FILE *f)
{
	fputs("usage: tool [options]\n", f);
}

/* -h must print the help on stdout: checked before rdo_cli_option exits. */
static void usage_on_stdout(FILE *f)
{
	cr_assert_eq(f, stdout, "-h printed the help elsewhere than on stdout");
	usage(f);
}

static struct rdo_cli cli;

static void setup(void)
{
	cr_redirect_stderr();
	rdo_cli_init(&cli, "tool", usage);
}

TestSuite(cli, .init = setup);

/* A name of `n` characters. */
static const char *name_of(size_t n)
{
	static char buf[RDO_DATA_CARD_MAX + 8];
	cr_assert_lt(n, sizeof(buf));
	memset(buf, 'c', n);
	buf[n] = '\0';
	return buf;
}

Test(cli, card_names)
{
	cr_assert(rdo_cli_card_valid("sim0"));
	cr_assert(rdo_cli_card_valid("a"));
	cr_assert(rdo_cli_card_valid(name_of(RDO_DATA_CARD_MAX - 1)));
	cr_assert_not(rdo_cli_card_valid(name_of(RDO_DATA_CARD_MAX)), "64 characters fit no card");
	cr_assert_not(rdo_cli_card_valid(""));
	cr_assert_not(rdo_cli_card_valid("a/b"), "a '/' would make a live topic of a card name");
	cr_assert_not(rdo_cli_card_valid("sim0/"));
	cr_assert_not(rdo_cli_card_valid("/"));
}

Test(cli, card_refused_with_the_one_message)
{
	cr_assert_eq(rdo_cli_option(&cli, RDO_CLI_OPT_CARD, "a/b"), RDO_EXIT_USAGE);
	cr_assert_null(cli.card, "a refused --card was kept");
	fflush(stderr);
	cr_assert_stderr_eq_str(CARD_REFUSED("a/b"));
}

Test(cli, empty_card_refused_alike)
{
	cr_assert_eq(rdo_cli_option(&cli, RDO_CLI_OPT_CARD, ""), RDO_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str(CARD_REFUSED(""));
}

Test(cli, card_taken)
{
	cr_assert_eq(rdo_cli_option(&cli, RDO_CLI_OPT_CARD, "sim0"), 0);
	cr_assert_str_eq(cli.card, "sim0");
	fflush(stderr);
	cr_assert_stderr_eq_str("");
}

Test(cli, usage_error_is_printf)
{
	cr_assert_eq(rdo_cli_usage_error("--count: %s %d of %u, \"%s\"", "got", -3, 7u, "x%sy"),
		     RDO_EXIT_USAGE);
	cr_assert_eq(rdo_cli_usage_error("expected a command"), RDO_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("tool: --count: got -3 of 7, \"x%sy\" (tool --help)\n"
				"tool: expected a command (tool --help)\n");
}

/* A tool's table as the tools write it: the shared entries, then its own. */
static int parse(int argc, char **argv, bool *own_seen)
{
	static const struct option longopts[] = {
	    RDO_CLI_OPTIONS /* then the test's own */
	    {"own", no_argument, NULL, 'o'},
	    {NULL, 0, NULL, 0},
	};
	int opt, rc;
	optind = 0;
	opterr = 0; /* getopt_long's own complaint would go to stderr too */
	while ((opt = getopt_long(argc, argv, RDO_CLI_SHORT "o", longopts, NULL)) != -1) {
		if (opt == 'o')
			*own_seen = true;
		else if ((rc = rdo_cli_option(&cli, opt, optarg)))
			return rc;
	}
	return 0;
}

Test(cli, shared_options_stored)
{
	char *argv[] = {"tool",	 "-e",	  "ipc:///tmp/x", "--card", "sim1", "--own",
			"--key", "k.key", "--server-key", "S",	    "-j",   NULL};
	bool own = false;
	cr_assert_eq(parse(RDO_ARRAY_SIZE(argv) - 1, argv, &own), 0);
	cr_assert(own, "the tool's own option did not reach it");
	cr_assert_str_eq(cli.endpoint, "ipc:///tmp/x");
	cr_assert_str_eq(cli.card, "sim1");
	cr_assert_str_eq(cli.key_file, "k.key");
	cr_assert_str_eq(cli.server_key, "S");
	cr_assert(cli.json);
}

Test(cli, nothing_given_nothing_set)
{
	char *argv[] = {"tool", NULL};
	bool own = false;
	cr_assert_eq(parse(1, argv, &own), 0);
	cr_assert_null(cli.endpoint);
	cr_assert_null(cli.card);
	cr_assert_null(cli.server_key);
	cr_assert_null(cli.key_file);
	cr_assert_not(cli.json);
}

Test(cli, unknown_option_prints_the_help_on_stderr)
{
	char *argv[] = {"tool", "--frob", NULL};
	bool own = false;
	cr_assert_eq(parse(2, argv, &own), RDO_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str("usage: tool [options]\n");
}

Test(cli, bad_card_on_the_command_line)
{
	char *argv[] = {"tool", "--card=x/01", NULL};
	bool own = false;
	cr_assert_eq(parse(2, argv, &own), RDO_EXIT_USAGE);
	fflush(stderr);
	cr_assert_stderr_eq_str(CARD_REFUSED("x/01"));
}

Test(cli, help_exits_0, .exit_code = 0)
{
	rdo_cli_init(&cli, "tool", usage_on_stdout);
	cr_redirect_stdout();
	rdo_cli_option(&cli, 'h', NULL);
	cr_assert_fail("-h returned");
}

Test(cli, seconds)
{
	double s;
	cr_assert(rdo_cli_seconds("1.5", &s));
	cr_assert_float_eq(s, 1.5, 1e-12);
	cr_assert(rdo_cli_seconds("1e3", &s));
	cr_assert_float_eq(s, 1000.0, 1e-9);
	cr_assert(rdo_cli_seconds("0", &s), "a range is the caller's to check");
	cr_assert_not(rdo_cli_seconds("", &s));
	cr_assert_not(rdo_cli_seconds("5s", &s));
	cr_assert_not(rdo_cli_seconds("x", &s));
}

Test(cli, keys_refused_as_a_usage_error)
{
	unsetenv("RDO_SERVER_KEY");
	unsetenv("RDO_CLIENT_KEY");
	struct rdo_client_keys keys;
	cli.server_key = "rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7";
	cr_assert_eq(rdo_cli_keys(&cli, &keys), RDO_EXIT_USAGE);
	cr_assert_not(keys.enabled);
	fflush(stderr);
	FILE *err = cr_get_redirected_stderr();
	char buf[1024] = "";
	size_t n = fread(buf, 1, sizeof(buf) - 1, err);
	buf[n] = '\0';
	cr_assert(strncmp(buf, "tool: --server-key needs --key FILE", 35) == 0, "%s", buf);
	cr_assert(strstr(buf, " (tool --help)\n"), "%s", buf);
}

Test(cli, no_keys_plain)
{
	unsetenv("RDO_SERVER_KEY");
	unsetenv("RDO_CLIENT_KEY");
	struct rdo_client_keys keys;
	cr_assert_eq(rdo_cli_keys(&cli, &keys), 0);
	cr_assert_not(keys.enabled);
}
