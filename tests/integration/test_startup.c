/*
 * Integration: readoutd start-up. A bad config or register map, or a card the
 * map does not describe, stops it before it serves, with the place and the
 * fix in the log; --force overrides only the identity check.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static struct rdo_daemon d;

/* Start with `config` (`verbatim`: as it is); expect exit status 1 and `why` in the log. */
static void expect_refusal_of(const char *config, bool verbatim, const char *why)
{
	struct rdo_daemon_opts o = {.config = config, .verbatim = verbatim};
	cr_assert_eq(rdo_daemon_start_opts(&d, &o), -1, "readoutd started with a bad config");
	cr_assert_eq(d.exit_status, 1);
	char *log = rdo_daemon_log(&d);
	cr_assert(strstr(log, why), "log lacks \"%s\":\n%s", why, log);
	cr_assert(strstr(log, "<3>readoutd: "), "error without priority prefix:\n%s", log);
	free(log);
	rdo_daemon_cleanup(&d);
}

static void expect_refusal(const char *config, const char *why)
{
	expect_refusal_of(config, false, why);
}

Test(startup, wrong_type_names_file_line_column)
{
	expect_refusal("card:\n"
		       "  regmap: @MAP@/rdo-sim.yaml\n"
		       "  sim:\n"
		       "    links: twelve\n",
		       "config.yaml:4:12: card.sim.links: expected an integer, got \"twelve\"");
}

Test(startup, unknown_key_lists_the_allowed_ones)
{
	expect_refusal("card:\n  regmapp: x.yaml\n",
		       "config.yaml:2:3: card.regmapp: unknown key (expected one of: name, "
		       "backend, address, regmap, force, numa_node, sim, dma, live, lossless, "
		       "writer)");
}

Test(startup, invalid_yaml)
{
	/* Verbatim: what the harness would add after the unclosed bracket moves the error. */
	expect_refusal_of("card: [ unclosed\n", true, "config.yaml:2:1: not valid YAML");
}

Test(startup, missing_register_map)
{
	expect_refusal("card: { regmap: /nonexistent/map.yaml }\n",
		       "/nonexistent/map.yaml: cannot open");
}

/* The shim backend: what an operator gets wrong before the driver is even asked. */
Test(startup, shim_backend_refusals_say_what_to_do)
{
	expect_refusal("card:\n"
		       "  backend: shim\n"
		       "  address: \"00:04.0\"\n"
		       "  regmap: @MAP@/edu.yaml\n",
		       "card.address \"00:04.0\" is not a PCI address: expected DDDD:BB:DD.F");
	expect_refusal("card:\n"
		       "  backend: shim\n"
		       "  address: \"0000:00:1f.7\"\n"
		       "  regmap: @MAP@/edu.yaml\n",
		       "no /dev/readout/0000:00:1f.7: load driver-shim for the card");
	expect_refusal("card:\n"
		       "  backend: shim\n"
		       "  address: \"0000:00:1f.7\"\n"
		       "  regmap: @MAP@/rdo-sim.yaml\n",
		       "the register map does not say how many links the card has: add dma: "
		       "{links: N}");
}

/* Write a register map into the daemon's folder-to-be and point the config at it. */
static void expect_map_refusal(const char *map, const char *why)
{
	char path[] = "/tmp/rdo-map-XXXXXX.yaml";
	int fd = mkstemps(path, 5);
	cr_assert_geq(fd, 0);
	FILE *f = fdopen(fd, "w");
	fputs(map, f);
	fclose(f);
	char config[512];
	snprintf(config, sizeof(config),
		 "card: { regmap: %s }\ncontrol: { bind: [ \"tcp://127.0.0.1:*\" ] }\n", path);
	expect_refusal(config, why);
	unlink(path);
}

Test(startup, map_with_duplicate_names)
{
	expect_map_refusal("map: bad\n"
			   "banks:\n"
			   "  - name: a\n"
			   "    bar: 0\n"
			   "    base: 0\n"
			   "    registers:\n"
			   "      - { name: x, offset: 0 }\n"
			   "      - { name: x, offset: 4 }\n",
			   ":8:9: register a.x is defined twice");
}

Test(startup, map_with_overlapping_fields)
{
	expect_map_refusal("map: bad\n"
			   "banks:\n"
			   "  - name: a\n"
			   "    bar: 0\n"
			   "    base: 0\n"
			   "    registers:\n"
			   "      - name: x\n"
			   "        offset: 0\n"
			   "        fields:\n"
			   "          - { name: f, bits: \"7:0\" }\n"
			   "          - { name: g, bits: \"9:4\" }\n",
			   ":7:9: a.x: field g (bits 9:4) overlaps field f (bits 7:0)");
}

Test(startup, map_outside_the_bar)
{
	expect_map_refusal(
	    "map: big\n"
	    "banks:\n"
	    "  - { name: a, bar: 0, base: 0x10000, registers: [ { name: x, offset: 0 } ] }\n",
	    "a.x: offset 0x10000 is outside BAR 0");
}

static const char unsupported_firmware[] = "card:\n"
					   "  regmap: @MAP@/rdo-sim.yaml\n"
					   "  sim: { firmware: 0x01030000 }\n"
					   "control: { bind: [ \"tcp://127.0.0.1:*\" ] }\n";

Test(startup, unsupported_firmware_refuses_to_start)
{
	expect_refusal(unsupported_firmware,
		       "firmware 1.3.0 (0x01030000) is not supported by register map rdo-sim");
}

Test(startup, wrong_identity_refuses_to_start)
{
	expect_refusal("card:\n"
		       "  regmap: @MAP@/rdo-sim.yaml\n"
		       "  sim: { identity: 0x12345678 }\n",
		       "identity id.identity reads 0x12345678");
}

Test(startup, force_starts_despite_a_mismatch)
{
	const char *const args[] = {"--force", NULL};
	cr_assert_eq(rdo_daemon_start(&d, unsupported_firmware, args), 0);
	char *log = rdo_daemon_log(&d);
	cr_assert(strstr(log, "<4>readoutd: card sim0: firmware 1.3.0"), "no warning:\n%s", log);
	free(log);
	struct rdo_output o;
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s info", d.tcp), 0);
	cr_assert(strstr(o.out, "FORCED"), "%s", o.out);
	cr_assert_eq(rdo_daemon_stop(&d), 0);
}

/* Replace every `from` in `text` (of capacity `cap`) with `to`; the number replaced. */
static int replace_all(char *text, size_t cap, const char *from, const char *to)
{
	int n = 0;
	size_t lf = strlen(from), lt = strlen(to);
	for (char *p = strstr(text, from); p; p = strstr(p + lt, from), n++) {
		size_t rest = strlen(p + lf) + 1;
		cr_assert_lt((size_t)(p - text) + lt + rest, cap, "config text too long");
		memmove(p + lt, p + lf, rest);
		memcpy(p, to, lt);
	}
	return n;
}

Test(startup, the_default_config_starts)
{
	/*
	 * config/readoutd.yaml as shipped, with every endpoint moved aside (a
	 * developer's readoutd may hold the defaults) and a card of its own.
	 */
	char config[PATH_MAX];
	snprintf(config, sizeof(config), "%s/config/readoutd.yaml", rdo_source_dir());
	const char *const args[] = {"--bind", "tcp://127.0.0.1:*", NULL};
	char text[16384];
	FILE *f = fopen(config, "r");
	cr_assert_not_null(f);
	size_t n = fread(text, 1, sizeof(text) / 2, f);
	fclose(f);
	text[n] = '\0';
	/* Keep its regmap reference working from the temporary folder. */
	cr_assert_eq(replace_all(text, sizeof(text), "regmap: regmaps/", "regmap: @MAP@/"), 1);
	cr_assert_eq(replace_all(text, sizeof(text), "ipc://{runtime}/readoutd.", "ipc://@DIR@/"),
		     4);
	cr_assert_eq(replace_all(text, sizeof(text), "bind: 127.0.0.1:5574", "bind: 127.0.0.1:0"),
		     1);
	for (int port = 5570; port <= 5573; port++) {
		char ep[32];
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", port);
		cr_assert_eq(replace_all(text, sizeof(text), ep, "tcp://127.0.0.1:*"), 1, "%s", ep);
	}
	cr_assert(n < sizeof(text) / 2, "config/readoutd.yaml outgrew the test's buffer");
	cr_assert_null(strstr(text, "address:"), "the shipped config names a card address");
	cr_assert_eq(rdo_daemon_start(&d, text, args), 0, "%s", rdo_daemon_log(&d));
	cr_assert(d.live_tcp[0] && d.lossless_ipc[0] && d.status_tcp[0], "ready line lacks sinks");
	cr_assert_eq(rdo_daemon_stop(&d), 0);
}

/*
 * --check-config: the shipped several-card config prints in full, defaults
 * filled in; a config whose map is missing is refused, naming the file and
 * card; neither opens a card or binds a socket.
 */
Test(startup, check_config_prints_the_effective_config_or_the_error)
{
	static struct rdo_output out;
	int rc = rdo_run(&out, "readoutd --check-config %s/config/readoutd-cards.yaml",
			 rdo_source_dir());
	cr_assert_eq(rc, 0, "%s", out.err);
	cr_assert(strstr(out.out, "  - name: \"sim1\"\n"), "%s", out.out);
	cr_assert(strstr(out.out, "      irq_coalesce: 4\n"), "a default not filled in: %s",
		  out.out);
	cr_assert(strstr(out.out, "metrics:\n  enabled: true\n"), "%s", out.out);

	char dir[] = "/tmp/rdo-test-check-XXXXXX", path[64];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/c.yaml", dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("cards:\n  - { name: a, regmap: nowhere.yaml }\n", f);
	fclose(f);
	rc = rdo_run(&out, "readoutd --check-config %s", path);
	unlink(path);
	rmdir(dir);
	cr_assert_eq(rc, 1, "%s", out.out);
	cr_assert_str_empty(out.out, "a refused config printed: %s", out.out);
	cr_assert(strstr(out.err, "card a: ") && strstr(out.err, "nowhere.yaml"), "%s", out.err);
}
