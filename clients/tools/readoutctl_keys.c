/*
 * readoutctl keygen: a CURVE key pair for readoutd or a client, in files
 * (common/keys.h); needs no server (readoutctl.h).
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "common/keys.h"
#include "tools/json.h"
#include "tools/readoutctl.h"

/* keygen NAME: a file name and the name in authorized_keys, so no path and no spaces. */
static bool key_name_ok(const char *name)
{
	static const char allowed[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				      "0123456789._@+-";
	size_t n = strlen(name);
	return n > 0 && n <= 63 && name[0] != '.' && name[0] != '-' && strspn(name, allowed) == n;
}

/* `readoutctl keygen NAME [--dir DIR]`: no server involved. */
int ctl_keygen(struct ctl *c)
{
	const char *dir = c->dir;
	if (c->nargs != 1)
		return rdo_cli_usage_error("keygen: expected NAME");
	const char *name = c->args[0];
	if (!key_name_ok(name))
		return rdo_cli_usage_error(
		    "keygen: NAME \"%s\": expected 1 to 63 letters, digits and . _ @ "
		    "+ - (it names the files and the key in authorized_keys)",
		    name);
	char base[PATH_MAX], err[1024];
	if ((size_t)snprintf(base, sizeof(base), "%s%s%s", dir ? dir : "", dir ? "/" : "", name) >=
	    sizeof(base))
		return rdo_cli_usage_error("--dir: \"%s\" is too long", dir);
	struct rdo_keypair k;
	if (rdo_key_generate(base, name, &k, err, sizeof(err)) != 0) {
		fprintf(stderr, "readoutctl: keygen: %s\n", err);
		return CTL_EXIT_BAD_FILE;
	}
	const char *pub = k.public_z85;
	if (c->cli.json) {
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
