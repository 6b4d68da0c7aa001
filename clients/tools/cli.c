#include "tools/cli.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "lib/rdodata.h"

/* The tool this process runs; set once, by rdo_cli_init(). */
static const char *tool_name = "?";
static void (*tool_usage)(FILE *out);

void rdo_cli_init(struct rdo_cli *c, const char *tool, void (*usage)(FILE *out))
{
	memset(c, 0, sizeof(*c));
	tool_name = tool;
	tool_usage = usage;
}

int rdo_cli_usage_error(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "%s: ", tool_name);
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (%s --help)\n", tool_name);
	va_end(ap);
	return RDO_EXIT_USAGE;
}

bool rdo_cli_card_valid(const char *name)
{
	size_t n = strlen(name);
	return n > 0 && n < RDO_DATA_CARD_MAX && !strchr(name, '/');
}

bool rdo_cli_seconds(const char *arg, double *out)
{
	char *end;
	*out = strtod(arg, &end);
	return end != arg && !*end;
}

int rdo_cli_option(struct rdo_cli *c, int opt, const char *arg)
{
	switch (opt) {
	case 'e':
		c->endpoint = arg;
		return 0;
	case 'j':
		c->json = true;
		return 0;
	case 'h':
		tool_usage(stdout);
		exit(0);
	case RDO_CLI_OPT_CARD:
		if (!rdo_cli_card_valid(arg))
			return rdo_cli_usage_error(
			    "--card: expected a card name (1 to %d characters, no '/'), got \"%s\"",
			    RDO_DATA_CARD_MAX - 1, arg);
		c->card = arg;
		return 0;
	case RDO_CLI_OPT_SERVER_KEY:
		c->server_key = arg;
		return 0;
	case RDO_CLI_OPT_KEY:
		c->key_file = arg;
		return 0;
	default: /* getopt_long said why */
		tool_usage(stderr);
		return RDO_EXIT_USAGE;
	}
}

int rdo_cli_keys(const struct rdo_cli *c, struct rdo_client_keys *keys)
{
	char err[1024];
	if (rdo_client_keys_init(keys, c->server_key, c->key_file, err, sizeof(err)))
		return rdo_cli_usage_error("%s", err);
	return 0;
}
