#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/control.h"
#include "service/config.h"
#include "unit/yaml_files.h"

#define CONFIG_FILE RDO_SOURCE_DIR "/config/readoutd.yaml"
#define REGMAP_FILE RDO_SOURCE_DIR "/config/regmaps/rdo-sim.yaml"

/*
 * Load `yaml` as a server config file over the defaults: rdo_config_load's
 * result, with its message in `err` and the file's path in `path`.
 */
static int load_text(const char *yaml, struct rdo_server_opts *o, char *path, char *err,
		     size_t errlen)
{
	write_temp(yaml, path);
	rdo_server_opts_init(o);
	int rc = rdo_config_load(path, o, err, errlen);
	unlink(path);
	return rc;
}

/* Load `yaml` as a server config; it must fail at line:col with `needle` in the message. */
static void expect_config_error(const char *yaml, int line, int col, const char *needle)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_server_opts o;
	int rc = load_text(yaml, &o, path, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "config load gave %d: %s", rc, err);
	expect_message(err, path, line, col, needle);
}

static void quiet(void)
{
	rdo_log_set_level(LOG_WARNING);
}

TestSuite(config, .init = quiet);

Test(config, defaults)
{
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	cr_assert_eq(o.cards[0].card.links, 12);
	cr_assert_str_eq(o.cards[0].card.backend, "sim");
	cr_assert_eq(o.control.n, 2);
	cr_assert_str_eq(o.control.ep[0], RDO_DEFAULT_CONTROL_TCP);
	cr_assert_str_eq(o.control.ep[1], RDO_DEFAULT_CONTROL_IPC);
	cr_assert_eq(o.log_level, LOG_INFO);
	cr_assert_not(o.cards[0].force);
	cr_assert_eq(o.cards[0].card.sim_rate, 100000000);
	cr_assert_eq(o.cards[0].dma.superpage_size, 1u << 20);
	cr_assert_eq(o.cards[0].dma.superpages, 256);
	cr_assert_eq(o.cards[0].dma.link_mask, UINT32_MAX);
	cr_assert_eq(o.cards[0].dma.page_size, 8192);
	cr_assert(o.cards[0].dma.autostart);
	cr_assert(o.cards[0].live.enabled);
	cr_assert_eq(o.cards[0].live.bind.n, 2);
	cr_assert_str_eq(o.cards[0].live.bind.ep[0], RDO_DEFAULT_LIVE_TCP);
	cr_assert_str_eq(o.cards[0].live.bind.ep[1], RDO_DEFAULT_LIVE_IPC);
	cr_assert(o.cards[0].lossless.enabled);
	cr_assert_str_eq(o.cards[0].lossless.bind.ep[0], RDO_DEFAULT_LOSSLESS_TCP);
	cr_assert_str_eq(o.cards[0].lossless.bind.ep[1], RDO_DEFAULT_LOSSLESS_IPC);
	cr_assert_str_eq(o.status.bind.ep[0], RDO_DEFAULT_STATUS_TCP);
	cr_assert_str_eq(o.status.bind.ep[1], RDO_DEFAULT_STATUS_IPC);
}

Test(config, load_server_config)
{
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	o.cards[0].card.links = 1;
	o.log_level = LOG_DEBUG;
	char err[512] = "";
	cr_assert_eq(rdo_config_load(CONFIG_FILE, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(o.config_file, CONFIG_FILE);
	cr_assert_str_eq(o.cards[0].regmap_file, REGMAP_FILE,
			 "the map path is resolved beside the config");
	cr_assert_str_eq(o.cards[0].card.name, "sim0");
	cr_assert_str_eq(o.cards[0].card.backend, "sim");
	cr_assert_eq(o.cards[0].card.links, 12);
	cr_assert_eq(o.cards[0].card.serial, 0x5244000000000001ull);
	cr_assert_eq(o.cards[0].card.fw_version, 0x01020003);
	cr_assert_not(o.cards[0].force);
	cr_assert_eq(o.control.n, 2);
	cr_assert_str_eq(o.control.ep[0], "tcp://127.0.0.1:5570");
	cr_assert_str_eq(o.control.ep[1], "ipc:///tmp/readoutd.ctl");
	cr_assert_eq(o.log_level, LOG_INFO);
}

/* The shipped config writes out every default: loading it must change nothing else. */
Test(config, shipped_config_is_the_defaults)
{
	struct rdo_server_opts d, o;
	rdo_server_opts_init(&d);
	rdo_server_opts_init(&o);
	char err[512] = "", path[PATH_MAX];
	/* The defaults as loading a config that sets nothing makes them: {runtime} expanded. */
	write_temp("log_level: info\n", path);
	int rc = rdo_config_load(path, &d, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(rdo_config_load(CONFIG_FILE, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(o.ncards, 1);
	cr_assert_eq(memcmp(&o.cards[0].card, &d.cards[0].card, sizeof(o.cards[0].card)), 0);
	cr_assert_eq(memcmp(&o.security, &d.security, sizeof(o.security)), 0);
	cr_assert_eq(memcmp(&o.metrics, &d.metrics, sizeof(o.metrics)), 0);
	cr_assert_eq(o.cards[0].numa_node, d.cards[0].numa_node);
	cr_assert_eq(memcmp(&o.control, &d.control, sizeof(o.control)), 0);
	cr_assert_eq(memcmp(&o.cards[0].dma, &d.cards[0].dma, sizeof(o.cards[0].dma)), 0);
	cr_assert_eq(memcmp(&o.cards[0].live, &d.cards[0].live, sizeof(o.cards[0].live)), 0);
	cr_assert_eq(
	    memcmp(&o.cards[0].lossless, &d.cards[0].lossless, sizeof(o.cards[0].lossless)), 0);
	cr_assert_eq(memcmp(&o.status, &d.status, sizeof(o.status)), 0);
}

Test(config, load_custom_config)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("log_level: debug\n"
		   "card:\n"
		   "  name: lab_1\n"
		   "  address: \"0000:3b:00.0\"\n"
		   "  regmap: maps/other.yaml\n"
		   "  force: yes\n"
		   "  sim: { links: 4, identity: 0xcafe, firmware: 0x0102_0009, serial: 7 }\n"
		   "control:\n"
		   "  bind: [ \"tcp://0.0.0.0:6000\" ]\n",
		   path);
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	int rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(o.log_level, LOG_DEBUG);
	cr_assert_str_eq(o.cards[0].card.name, "lab_1");
	cr_assert_str_eq(o.cards[0].card.address, "0000:3b:00.0");
	cr_assert_str_eq(o.cards[0].regmap_file, "/tmp/maps/other.yaml");
	cr_assert(o.cards[0].force);
	cr_assert_eq(o.cards[0].card.links, 4);
	cr_assert_eq(o.cards[0].card.identity, 0xcafe);
	cr_assert_eq(o.cards[0].card.fw_version, 0x01020009);
	cr_assert_eq(o.cards[0].card.serial, 7);
	cr_assert_eq(o.control.n, 1);
	cr_assert_str_eq(o.control.ep[0], "tcp://0.0.0.0:6000");
}

Test(config, default_regmap_beside_config)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_server_opts o;
	int rc =
	    load_text("# nothing but the level\nlog_level: notice\n", &o, path, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(o.log_level, LOG_NOTICE);
	cr_assert_str_eq(o.cards[0].regmap_file, "/tmp/regmaps/rdo-sim.yaml");
	cr_assert_eq(o.cards[0].card.links, 12, "defaults stay where the file says nothing");
	cr_assert_eq(o.control.n, 2);
}

Test(config, absolute_regmap_path)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_server_opts o;
	int rc = load_text("card:\n  regmap: /etc/readoutd/map.yaml\n", &o, path, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(o.cards[0].regmap_file, "/etc/readoutd/map.yaml");
}

Test(config, missing_file)
{
	const char *path = "/tmp/rdo-test-config-does-not-exist.yaml";
	char err[512] = "";
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	cr_assert_eq(rdo_config_load(path, &o, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, path), "%s", err);
	cr_assert(strstr(err, "cannot open"), "%s", err);
}

Test(config, wrong_type)
{
	expect_config_error("card:\n  sim:\n    links: twelve\n", 3, 12,
			    "card.sim.links: expected an integer, got \"twelve\"");
	expect_config_error("card:\n  sim:\n    links: 0x\n", 3, 12,
			    "card.sim.links: expected an integer, got \"0x\"");
	expect_config_error("card:\n  sim:\n    links: [1, 2]\n", 3, 12,
			    "card.sim.links: expected an integer, got a list");
}

Test(config, number_limits)
{
	expect_config_error("card:\n  sim:\n    links: 2000\n", 3, 12,
			    "card.sim.links: 2000 is too large (at most 1024)");
	expect_config_error("card:\n  sim:\n    serial: 0x1_0000_0000_0000_0000\n", 3, 13,
			    "card.sim.serial: 0x1_0000_0000_0000_0000 does not fit in 64 bits");
	expect_config_error("card:\n  sim:\n    firmware: 0x1_0000_0000\n", 3, 15,
			    "card.sim.firmware: 4294967296 is too large");
}

Test(config, unknown_key)
{
	expect_config_error("card:\n  nmae: sim1\n", 2, 3,
			    "card.nmae: unknown key (expected one of: name, backend, address, "
			    "regmap, force, numa_node, sim, dma, live, lossless, writer)");
	expect_config_error(
	    "log_level: info\nlinks: 12\n", 2, 1,
	    "links: unknown key (expected one of: card, cards, control, dma, live, lossless, "
	    "status, log_level, writer, security, metrics, runtime_dir)");
}

Test(config, key_given_twice)
{
	expect_config_error("log_level: info\ncard:\n  name: a\nlog_level: debug\n", 4, 1,
			    "log_level: given twice");
	expect_config_error("card:\n  sim: { links: 2, links: 3 }\n", 2, 20,
			    "card.sim.links: given twice");
}

Test(config, mapping_for_scalar)
{
	expect_config_error("card:\n  name: { first: a }\n", 2, 9,
			    "card.name: expected a string, got a mapping");
	expect_config_error("card: sim0\n", 1, 7, "card: expected a mapping, got a scalar");
	expect_config_error("- card\n", 1, 1, "top level: expected a mapping, got a list");
}

Test(config, invalid_yaml)
{
	expect_config_error("card:\n  name: sim0\n   backend: sim\n", 3, 11, "not valid YAML");
	expect_config_error("card: { name: sim0\nlog_level: info\n", 2, 10, "not valid YAML");
}

Test(config, empty_file)
{
	expect_config_error("", 1, 1, "the file is empty");
	expect_config_error("# only a comment\n", 1, 1, "the file is empty");
}

Test(config, bad_bool)
{
	expect_config_error("card:\n  force: maybe\n", 2, 10,
			    "card.force: expected true or false, got \"maybe\"");
	expect_config_error("card:\n  force: [true]\n", 2, 10,
			    "card.force: expected true or false, got a list");
}

Test(config, bad_log_level)
{
	expect_config_error("log_level: loud\n", 1, 12,
			    "log_level: expected err, warning, notice, info or debug, "
			    "got \"loud\"");
}

Test(config, bad_endpoint)
{
	expect_config_error("control:\n  bind:\n    - tcp://127.0.0.1:1\n    - http://x:80\n", 4, 7,
			    "control.bind: expected tcp://HOST:PORT or ipc://PATH, got "
			    "\"http://x:80\"");
	expect_config_error("control:\n  bind: []\n", 2, 9,
			    "control.bind: expected 1 to 8 endpoints, got 0");
	expect_config_error("control:\n  bind: tcp://127.0.0.1:1\n", 2, 9,
			    "control.bind: expected a list, got a scalar");
}

Test(config, bad_card)
{
	expect_config_error("card:\n  backend: pcie\n", 2, 12,
			    "card.backend: expected sim (the emulated card) or shim (a PCIe card "
			    "through driver-shim), got \"pcie\"");
	expect_config_error("card:\n  name: \"my card\"\n", 2, 9,
			    "card.name: \"my card\" is not a valid card name");
}

/* Load `yaml` as a server config over the defaults; it must load. */
static void load_config(const char *yaml, struct rdo_server_opts *o)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(yaml, path);
	rdo_server_opts_init(o);
	int rc = rdo_config_load(path, o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
}

static void expect_config_errors(const struct bad_yaml *bad, size_t n)
{
	for (size_t i = 0; i < n; i++)
		expect_config_error(bad[i].yaml, bad[i].line, bad[i].col, bad[i].needle);
}

Test(config, sim_generator)
{
	struct rdo_server_opts o;
	load_config("card:\n"
		    "  sim:\n"
		    "    rate: 100MB/s\n"
		    "    pulsed: true\n"
		    "    pulse_hz: 10000\n"
		    "    pulse_bytes: 2GiB\n"
		    "    variable_size: yes\n"
		    "    header_only: on\n",
		    &o);
	cr_assert_eq(o.cards[0].card.sim_rate, 100000000);
	cr_assert(o.cards[0].card.sim_pulsed);
	cr_assert_eq(o.cards[0].card.sim_pulse_hz, 10000);
	cr_assert_eq(o.cards[0].card.sim_pulse_bytes, 1u << 31);
	cr_assert(o.cards[0].card.sim_variable_size);
	cr_assert(o.cards[0].card.sim_header_only);
	cr_assert_eq(o.cards[0].card.links, 12, "keys not given keep their defaults");

	load_config("card: { sim: { rate: 0, pulse_bytes: 1, pulse_hz: 1 } }\n", &o);
	cr_assert_eq(o.cards[0].card.sim_rate, 0, "0: as fast as the host takes it");
	cr_assert_eq(o.cards[0].card.sim_pulse_bytes, 1);
	cr_assert_eq(o.cards[0].card.sim_pulse_hz, 1);
	load_config("card: { sim: { rate: 1GiB } }\n", &o);
	cr_assert_eq(o.cards[0].card.sim_rate, 1ull << 30, "the /s of a rate is optional");
	load_config("card: { sim: { rate: 0x1000/s } }\n", &o);
	cr_assert_eq(o.cards[0].card.sim_rate, 0x1000);
}

Test(config, sim_generator_errors)
{
	static const struct bad_yaml bad[] = {
	    {"card:\n  sim:\n    rate: fast\n", 3, 11,
	     "card.sim.rate: expected a rate like 100MB/s, 1GiB/s or 0, got \"fast\""},
	    {"card:\n  sim:\n    rate: 100MB/h\n", 3, 11, "card.sim.rate: expected a rate"},
	    {"card:\n  sim:\n    rate: [1]\n", 3, 11,
	     "card.sim.rate: expected a rate like 100MB/s, 1GiB/s or 0, got a list"},
	    {"card:\n  sim:\n    rate: 20000000000GB/s\n", 3, 11,
	     "card.sim.rate: 20000000000GB/s does not fit in 64 bits"},
	    {"card:\n  sim:\n    pulsed: 1\n", 3, 13,
	     "card.sim.pulsed: expected true or false, got \"1\""},
	    {"card:\n  sim:\n    pulse_hz: 0\n", 3, 15,
	     "card.sim.pulse_hz: 0 is too small (at least 1)"},
	    {"card:\n  sim:\n    pulse_hz: 10001\n", 3, 15,
	     "card.sim.pulse_hz: 10001 is too large (at most 10000)"},
	    {"card:\n  sim:\n    pulse_hz: 60Hz\n", 3, 15,
	     "card.sim.pulse_hz: expected an integer, got \"60Hz\""},
	    {"card:\n  sim:\n    pulse_bytes: 0\n", 3, 18,
	     "card.sim.pulse_bytes: 0 is too small (at least 1)"},
	    {"card:\n  sim:\n    pulse_bytes: 3GiB\n", 3, 18,
	     "card.sim.pulse_bytes: 3GiB is too large (at most 2GiB)"},
	    {"card:\n  sim:\n    pulse_bytes: 1MiB/s\n", 3, 18,
	     "card.sim.pulse_bytes: expected a size like 4096, 8KiB or 1MiB, got the rate "
	     "\"1MiB/s\" (drop the /s)"},
	    {"card:\n  sim:\n    variable_size: sometimes\n", 3, 20,
	     "card.sim.variable_size: expected true or false, got \"sometimes\""},
	    {"card:\n  sim:\n    header_only: {}\n", 3, 18,
	     "card.sim.header_only: expected true or false, got a mapping"},
	    {"card:\n  sim:\n    links: 0\n", 3, 12, "card.sim.links: 0 is too small (at least 1)"},
	    {"card:\n  sim:\n    pulse: true\n", 3, 5,
	     "card.sim.pulse: unknown key (expected one of: links, serial, firmware, identity, "
	     "rate, pulsed, pulse_hz, pulse_bytes, variable_size, header_only)"},
	};
	expect_config_errors(bad, RDO_ARRAY_SIZE(bad));
}

Test(config, dma)
{
	struct rdo_server_opts o;
	load_config("dma:\n"
		    "  superpage_size: 256MiB\n"
		    "  superpages: 65536\n"
		    "  links: [0, 3, 31]\n"
		    "  page_size: 64\n"
		    "  irq_coalesce: 1024\n"
		    "  irq_holdoff_us: 1000000\n"
		    "  autostart: false\n",
		    &o);
	cr_assert_eq(o.cards[0].dma.superpage_size, 256u << 20);
	cr_assert_eq(o.cards[0].dma.superpages, 65536);
	cr_assert_eq(o.cards[0].dma.link_mask, 0x80000009u);
	cr_assert_eq(o.cards[0].dma.page_size, 64);
	cr_assert_eq(o.cards[0].dma.irq_coalesce, 1024);
	cr_assert_eq(o.cards[0].dma.irq_holdoff_us, 1000000);
	cr_assert_not(o.cards[0].dma.autostart);

	load_config("dma: { superpage_size: 4KiB, superpages: 2, page_size: 4096, irq_coalesce: 1,"
		    " irq_holdoff_us: 1, links: 0xfff }\n",
		    &o);
	cr_assert_eq(o.cards[0].dma.superpage_size, 4096);
	cr_assert_eq(o.cards[0].dma.superpages, 2);
	cr_assert_eq(o.cards[0].dma.page_size, 4096);
	cr_assert_eq(o.cards[0].dma.link_mask, 0xfff);
	cr_assert(o.cards[0].dma.autostart, "keys not given keep their defaults");
	load_config("dma: { links: [5] }\n", &o);
	cr_assert_eq(o.cards[0].dma.link_mask, 1u << 5);
	load_config("dma: { links: all }\n", &o);
	cr_assert_eq(o.cards[0].dma.link_mask, UINT32_MAX, "all: every link the card has");
}

Test(config, dma_errors)
{
	static const struct bad_yaml bad[] = {
	    {"dma:\n  superpage_size: 1000\n", 2, 19,
	     "dma.superpage_size: 1000 is too small (at least 4KiB)"},
	    {"dma:\n  superpage_size: 512MiB\n", 2, 19,
	     "dma.superpage_size: 512MiB is too large (at most 256MiB)"},
	    {"dma:\n  superpage_size: 6000\n", 2, 19,
	     "dma.superpage_size: 6000 is not a multiple of 4KiB"},
	    {"dma:\n  superpage_size: big\n", 2, 19,
	     "dma.superpage_size: expected a size like 4096, 8KiB or 1MiB, got \"big\""},
	    {"dma:\n  superpages: 1\n", 2, 15, "dma.superpages: 1 is too small (at least 2)"},
	    {"dma:\n  superpages: 65537\n", 2, 15,
	     "dma.superpages: 65537 is too large (at most 65536)"},
	    {"dma:\n  superpages: [2]\n", 2, 15, "dma.superpages: expected an integer, got a list"},
	    {"dma:\n  links: [0, 32]\n", 2, 14, "dma.links[1]: 32 is too large (at most 31)"},
	    {"dma:\n  links: [3, 3]\n", 2, 14, "dma.links: link 3 is listed twice"},
	    {"dma:\n  links: []\n", 2, 10,
	     "dma.links: expected all, a list of link numbers 0-31 or an integer mask, got an "
	     "empty list"},
	    {"dma:\n  links: 0\n", 2, 10, "dma.links: the mask 0 selects no link"},
	    {"dma:\n  links: 0x1_0000_0000\n", 2, 10,
	     "dma.links: 0x1_0000_0000 has bits above link 31"},
	    {"dma:\n  links: some\n", 2, 10,
	     "dma.links: expected all, a list of link numbers 0-31 or an integer mask, got "
	     "\"some\""},
	    {"dma:\n  links: { all: true }\n", 2, 10,
	     "dma.links: expected all, a list of link numbers 0-31 or an integer mask, got a "
	     "mapping"},
	    {"dma:\n  links: [one]\n", 2, 11, "dma.links[0]: expected an integer, got \"one\""},
	    {"dma:\n  page_size: 32\n", 2, 14, "dma.page_size: 32 is too small (at least 64)"},
	    {"dma:\n  page_size: 16KiB\n", 2, 14,
	     "dma.page_size: 16KiB is too large (at most 8KiB)"},
	    {"dma:\n  page_size: 100\n", 2, 14, "dma.page_size: 100 is not a multiple of 8"},
	    {"dma:\n  irq_coalesce: 0\n", 2, 17, "dma.irq_coalesce: 0 is too small (at least 1)"},
	    {"dma:\n  irq_coalesce: 1025\n", 2, 17,
	     "dma.irq_coalesce: 1025 is too large (at most 1024)"},
	    {"dma:\n  irq_holdoff_us: 0\n", 2, 19,
	     "dma.irq_holdoff_us: 0 is too small (at least 1)"},
	    {"dma:\n  irq_holdoff_us: 1000001\n", 2, 19,
	     "dma.irq_holdoff_us: 1000001 is too large (at most 1000000)"},
	    {"dma:\n  autostart: later\n", 2, 14,
	     "dma.autostart: expected true or false, got \"later\""},
	    {"dma:\n  superpage: 1MiB\n", 2, 3,
	     "dma.superpage: unknown key (expected one of: superpage_size, superpages, links, "
	     "page_size, irq_coalesce, irq_holdoff_us, autostart)"},
	    {"dma: 1MiB\n", 1, 6, "dma: expected a mapping, got a scalar"},
	};
	expect_config_errors(bad, RDO_ARRAY_SIZE(bad));
}

/* superpage_size and page_size are each fine alone; together they must fit. */
Test(config, dma_superpage_holds_pages)
{
	static const struct bad_yaml bad[] = {
	    {"dma:\n  superpage_size: 4KiB\n  page_size: 8KiB\n", 2, 19,
	     "dma.superpage_size: 4KiB does not hold one dma.page_size of 8KiB: raise "
	     "dma.superpage_size to at least 8KiB or lower dma.page_size"},
	    {"dma:\n  page_size: 8KiB\n  superpage_size: 12KiB\n", 3, 19,
	     "dma.superpage_size: 12KiB is not a multiple of dma.page_size 8KiB: make "
	     "dma.superpage_size a multiple of dma.page_size (16KiB is) or dma.page_size a "
	     "divisor of dma.superpage_size"},
	    {"dma:\n  page_size: 6000\n", 2, 14,
	     "dma.superpage_size: 1MiB is not a multiple of dma.page_size 6000: make "
	     "dma.superpage_size a multiple of dma.page_size (1500KiB is)"},
	};
	expect_config_errors(bad, RDO_ARRAY_SIZE(bad));
	struct rdo_server_opts o;
	load_config("dma: { superpage_size: 24KiB, page_size: 6KiB }\n", &o);
	cr_assert_eq(o.cards[0].dma.superpage_size / o.cards[0].dma.page_size, 4);
	load_config("dma: { superpage_size: 8KiB, page_size: 8KiB }\n", &o);
	cr_assert_eq(o.cards[0].dma.superpage_size, o.cards[0].dma.page_size,
		     "one page per superpage is enough");
}

Test(config, sinks_and_status)
{
	struct rdo_server_opts o;
	load_config("live:\n"
		    "  enabled: false\n"
		    "  bind: [ \"tcp://0.0.0.0:7001\" ]\n"
		    "  hwm: 100000\n"
		    "lossless:\n"
		    "  enabled: no\n"
		    "  bind: [ \"ipc:///run/rdo.lossless\", \"tcp://*:7002\" ]\n"
		    "  timeout_ms: 600000\n"
		    "status:\n"
		    "  bind: [ \"tcp://127.0.0.1:7003\" ]\n"
		    "  interval_ms: 10\n"
		    "  log_interval_s: 0\n",
		    &o);
	cr_assert_not(o.cards[0].live.enabled);
	cr_assert_eq(o.cards[0].live.bind.n, 1);
	cr_assert_str_eq(o.cards[0].live.bind.ep[0], "tcp://0.0.0.0:7001");
	cr_assert_eq(o.cards[0].live.hwm, 100000);
	cr_assert_not(o.cards[0].lossless.enabled);
	cr_assert_eq(o.cards[0].lossless.bind.n, 2);
	cr_assert_str_eq(o.cards[0].lossless.bind.ep[0], "ipc:///run/rdo.lossless");
	cr_assert_str_eq(o.cards[0].lossless.bind.ep[1], "tcp://*:7002");
	cr_assert_eq(o.cards[0].lossless.timeout_ms, 600000);
	cr_assert_eq(o.status.bind.n, 1);
	cr_assert_str_eq(o.status.bind.ep[0], "tcp://127.0.0.1:7003");
	cr_assert_eq(o.status.interval_ms, 10);
	cr_assert_eq(o.status.log_interval_s, 0);
	cr_assert_eq(o.control.n, 2, "sections not given keep their defaults");

	load_config("live: { hwm: 1 }\nlossless: { timeout_ms: 100 }\n"
		    "status: { interval_ms: 3600000, log_interval_s: 86400 }\n",
		    &o);
	cr_assert_eq(o.cards[0].live.hwm, 1);
	cr_assert_eq(o.cards[0].live.bind.n, 2, "bind not given keeps the default endpoints");
	cr_assert_eq(o.cards[0].lossless.timeout_ms, 100);
	cr_assert_eq(o.status.interval_ms, 3600000);
	cr_assert_eq(o.status.log_interval_s, 86400);
}

Test(config, sinks_and_status_errors)
{
	static const struct bad_yaml bad[] = {
	    {"live:\n  enabled: 2\n", 2, 12, "live.enabled: expected true or false, got \"2\""},
	    {"live:\n  hwm: 0\n", 2, 8, "live.hwm: 0 is too small (at least 1)"},
	    {"live:\n  hwm: 100001\n", 2, 8, "live.hwm: 100001 is too large (at most 100000)"},
	    {"live:\n  topic: x\n", 2, 3,
	     "live.topic: unknown key (expected one of: enabled, bind, hwm)"},
	    {"lossless:\n  enabled: []\n", 2, 12,
	     "lossless.enabled: expected true or false, got a list"},
	    {"lossless:\n  timeout_ms: 99\n", 2, 15,
	     "lossless.timeout_ms: 99 is too small (at least 100)"},
	    {"lossless:\n  timeout_ms: 600001\n", 2, 15,
	     "lossless.timeout_ms: 600001 is too large (at most 600000)"},
	    {"lossless:\n  credits: 4\n", 2, 3,
	     "lossless.credits: unknown key (expected one of: enabled, bind, timeout_ms)"},
	    {"status:\n  interval_ms: 9\n", 2, 16,
	     "status.interval_ms: 9 is too small (at least 10)"},
	    {"status:\n  interval_ms: 3600001\n", 2, 16,
	     "status.interval_ms: 3600001 is too large (at most 3600000)"},
	    {"status:\n  log_interval_s: 86401\n", 2, 19,
	     "status.log_interval_s: 86401 is too large (at most 86400)"},
	    {"status:\n  log_interval_s: -1\n", 2, 19,
	     "status.log_interval_s: expected an integer, got \"-1\""},
	    {"status:\n  enabled: true\n", 2, 3,
	     "status.enabled: unknown key (expected one of: bind, interval_ms, log_interval_s)"},
	    {"control:\n  hwm: 1\n", 2, 3, "control.hwm: unknown key (expected one of: bind)"},
	};
	expect_config_errors(bad, RDO_ARRAY_SIZE(bad));
}

/* control, live, lossless and status share one endpoint parser: each refuses the same. */
Test(config, bind_lists)
{
	static const char *const sections[] = {"control", "live", "lossless", "status"};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(sections); i++) {
		const char *s = sections[i];
		int col = (int)strlen(s) + 11; /* the list after "SECTION: { bind: " */
		char yaml[256], needle[256];
		snprintf(yaml, sizeof(yaml),
			 "%s: { bind: [ \"tcp://127.0.0.1:1\", \"http://x\" ] }\n", s);
		snprintf(needle, sizeof(needle),
			 "%s.bind: expected tcp://HOST:PORT or ipc://PATH, got \"http://x\"", s);
		expect_config_error(yaml, 1, col + 23, needle);
		snprintf(yaml, sizeof(yaml), "%s: { bind: [ \"ipc://\" ] }\n", s);
		snprintf(needle, sizeof(needle), "%s.bind: expected tcp://HOST:PORT or ipc://PATH",
			 s);
		expect_config_error(yaml, 1, col + 2, needle);
		snprintf(yaml, sizeof(yaml), "%s: { bind: [] }\n", s);
		snprintf(needle, sizeof(needle), "%s.bind: expected 1 to 8 endpoints, got 0", s);
		expect_config_error(yaml, 1, col, needle);
		snprintf(yaml, sizeof(yaml), "%s: { bind: \"tcp://127.0.0.1:1\" }\n", s);
		snprintf(needle, sizeof(needle), "%s.bind: expected a list, got a scalar", s);
		expect_config_error(yaml, 1, col, needle);
		snprintf(yaml, sizeof(yaml), "%s: { bind: [ \"ipc:///a\", \"ipc:///a\" ] }\n", s);
		snprintf(needle, sizeof(needle), "%s.bind: \"ipc:///a\" is listed twice", s);
		expect_config_error(yaml, 1, col + 14, needle);
		snprintf(
		    yaml, sizeof(yaml),
		    "%s: { bind: [ ipc:///1, ipc:///2, ipc:///3, ipc:///4, ipc:///5, ipc:///6, "
		    "ipc:///7, ipc:///8, ipc:///9 ] }\n",
		    s);
		snprintf(needle, sizeof(needle), "%s.bind: expected 1 to 8 endpoints, got 9", s);
		expect_config_error(yaml, 1, col, needle);
	}
	struct rdo_server_opts o;
	load_config("status: { bind: [ ipc:///1, ipc:///2, ipc:///3, ipc:///4, ipc:///5, ipc:///6,"
		    " ipc:///7, ipc:///8 ] }\n",
		    &o);
	cr_assert_eq(o.status.bind.n, RDO_MAX_ENDPOINTS);
	cr_assert_str_eq(o.status.bind.ep[7], "ipc:///8");
}

/* Several cards: the top-level sections are every card's defaults, a card's own override them. */
Test(config, cards_take_top_level_defaults_and_their_own)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("dma: {superpages: 32, page_size: 4KiB}\n"
		   "live: {bind: [\"ipc://{runtime}/{card}.live\"]}\n"
		   "lossless: {enabled: false}\n"
		   "runtime_dir: /run/rdo\n"
		   "cards:\n"
		   "  - name: a\n"
		   "    numa_node: 1\n"
		   "  - name: b\n"
		   "    regmap: maps/b.yaml\n"
		   "    dma: {superpages: 8}\n"
		   "    sim: {links: 3}\n",
		   path);
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	int rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(o.ncards, 2);
	cr_assert_str_eq(o.cards[0].card.name, "a");
	cr_assert_str_eq(o.cards[0].card.address, "a", "an emulated card is addressed by its name");
	cr_assert_eq(o.cards[0].numa_node, 1);
	cr_assert_eq(o.cards[0].dma.superpages, 32);
	cr_assert_eq(o.cards[0].dma.page_size, 4096);
	cr_assert_str_eq(o.cards[0].live.bind.ep[0], "ipc:///run/rdo/a.live");
	cr_assert_not(o.cards[0].lossless.enabled);
	cr_assert_str_eq(o.cards[1].card.name, "b");
	cr_assert_eq(o.cards[1].numa_node, -1);
	cr_assert_eq(o.cards[1].dma.superpages, 8, "the card's own key wins");
	cr_assert_eq(o.cards[1].dma.page_size, 4096, "keys it does not set are the top level's");
	cr_assert_eq(o.cards[1].card.links, 3);
	cr_assert_str_eq(o.cards[1].live.bind.ep[0], "ipc:///run/rdo/b.live");
	cr_assert_str_eq(o.cards[1].regmap_file, "/tmp/maps/b.yaml");
	cr_assert_str_eq(o.control.ep[1], "ipc:///run/rdo/readoutd.ctl");
}

Test(config, card_list_errors)
{
	expect_config_error("card: {name: x}\ncards:\n  - name: a\n", 3, 3, "both card and cards");
	expect_config_error("cards: []\n", 1, 8, "cards: expected 1 to 8 cards, got 0");
	expect_config_error("cards:\n  - backend: sim\n", 2, 5, "cards[0]: expected a name");
	expect_config_error("cards:\n  - name: a\n  - name: a\n", 3, 5,
			    "cards[1]: card name \"a\" is taken by cards[0]");
	expect_config_error("cards:\n  - {name: a, address: x}\n  - {name: b, address: x}\n", 3, 5,
			    "card b has the address of card a (sim x)");
	expect_config_error("cards:\n  - {name: a, backend: shim}\n", 2, 5,
			    "cards[0]: expected an address");
	expect_config_error("cards:\n  - {name: a, numa_node: near}\n", 2, 26,
			    "cards[0].numa_node: expected auto or a NUMA node number");
	expect_config_error("cards:\n  - {name: a, dma: {superpage_size: 4KiB}}\n", 2, 37,
			    "dma.superpage_size: 4KiB does not hold one dma.page_size of 8KiB");
}

/* Endpoints bound twice across cards, control and status, or writers that would collide. */
Test(config, whole_config_checks)
{
	expect_config_error("live: {bind: [\"tcp://127.0.0.1:6000\"]}\n"
			    "cards:\n  - name: a\n  - name: b\n",
			    4, 5,
			    "card b: live.bind: tcp://127.0.0.1:6000 is also bound by card a's "
			    "live.bind: give each card endpoints of its own");
	expect_config_error("cards:\n  - name: a\n    lossless: {bind: [tcp://127.0.0.1:5570]}\n",
			    2, 5,
			    "card a: lossless.bind: tcp://127.0.0.1:5570 is also bound by the "
			    "control.bind");
	expect_config_error("writer: {enabled: true, name: \"run{run}.rdo\"}\n"
			    "live: {enabled: false}\nlossless: {enabled: false}\n"
			    "cards:\n  - name: a\n  - name: b\n",
			    6, 5, "card b: writer.name \"run{run}.rdo\" in . is also card a's");
	char path[PATH_MAX], err[512] = "";
	struct rdo_server_opts o;
	int rc = load_text("control: {bind: [\"ipc://{card}.ctl\"]}\n", &o, path, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(err, "names {card}, which only a card's live and lossless streams can"),
		  "%s", err);
	/* Two cards whose streams bind any free port do not clash. */
	write_temp(
	    "live: {bind: [\"tcp://127.0.0.1:*\"]}\nlossless: {bind: [\"tcp://127.0.0.1:*\"]}\n"
	    "cards:\n  - name: a\n  - name: b\n",
	    path);
	rdo_server_opts_init(&o);
	rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
}

Test(config, security_and_metrics)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("security:\n  server_key: keys/server.key\n  authorized_keys: /etc/rdo/clients\n"
		   "  curve_loopback: true\n  local_role: monitor\n  ipc_mode: 0600\n"
		   "metrics: {enabled: false, bind: \"[::1]:9100\"}\n",
		   path);
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	int rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(o.security.server_key, "/tmp/keys/server.key",
			 "resolved beside the config");
	cr_assert_str_eq(o.security.authorized_keys, "/etc/rdo/clients");
	cr_assert(o.security.curve_loopback);
	cr_assert_eq(o.security.local_role, RDO_ROLE_MONITOR);
	cr_assert_eq(o.security.ipc_mode, 0600);
	cr_assert_not(o.metrics.enabled);
	cr_assert_str_eq(o.metrics.bind, "[::1]:9100");
	expect_config_error("security: {local_role: admin}\n", 1, 24,
			    "security.local_role: expected monitor or operator, got \"admin\"");
	expect_config_error("security: {ipc_mode: 0999}\n", 1, 22,
			    "security.ipc_mode: expected a file mode in octal like 0660");
	rc = load_text("security: {server_key: /etc/rdo/server.key}\n", &o, path, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(err, "security.server_key is set but security.authorized_keys is not"),
		  "%s", err);
	rc = load_text("metrics: {bind: \"localhost\"}\n", &o, path, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL);
	cr_assert(strstr(err, "metrics.bind: "), "%s", err);
}

/* Print `o` into a string; caller frees. */
static char *printed(const struct rdo_server_opts *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	rdo_config_print(f, o);
	fclose(f);
	return buf;
}

/* --check-config's output is a config: loaded again, it prints the same. */
Test(config, printed_config_loads_to_the_same)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_server_opts *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	cr_assert(a && b);
	rdo_server_opts_init(a);
	cr_assert_eq(
	    rdo_config_load(RDO_SOURCE_DIR "/config/readoutd-cards.yaml", a, err, sizeof(err)), 0,
	    "%s", err);
	char *first = printed(a);
	cr_assert(strstr(first, "  - name: \"sim1\"\n"), "%s", first);
	cr_assert(strstr(first, "      superpages: 64\n"), "sim1's own dma: %s", first);
	cr_assert(strstr(first, "      rate: 50MB/s\n"), "%s", first);
	write_temp(first, path);
	rdo_server_opts_init(b);
	int rc = rdo_config_load(path, b, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	rdo_strlcpy(b->config_file, a->config_file, sizeof(b->config_file));
	char *second = printed(b);
	cr_assert_str_eq(first, second);
	free(first);
	free(second);
	free(a);
	free(b);
}

/* Every server config the repository ships loads (make shim-test would find a broken edu one late).
 */
Test(config, shipped_server_configs_load)
{
	static const char *const files[] = {"readoutd.yaml", "readoutd-cards.yaml",
					    "readoutd-edu.yaml"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[PATH_MAX], err[512] = "";
		snprintf(path, sizeof(path), "%s/config/%s", RDO_SOURCE_DIR, files[i]);
		struct rdo_server_opts *o = malloc(sizeof(*o));
		cr_assert_not_null(o);
		rdo_server_opts_init(o);
		cr_assert_eq(rdo_config_load(path, o, err, sizeof(err)), 0, "%s", err);
		free(o);
	}
}

/* {state} in writer.directory is systemd's StateDirectory=, so the unit's files outlive it. */
Test(config, state_directory_expands_in_the_writer_directory)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("writer: {directory: \"{state}/runs\"}\n", path);
	struct rdo_server_opts o;
	setenv("STATE_DIRECTORY", "/var/lib/readoutd:/var/lib/other", 1);
	rdo_server_opts_init(&o);
	int rc = rdo_config_load(path, &o, err, sizeof(err));
	unsetenv("STATE_DIRECTORY");
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(o.cards[0].writer.directory, "/var/lib/readoutd/runs");
	rdo_server_opts_init(&o);
	rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(o.cards[0].writer.directory, "/tmp/runs", "without systemd: /tmp");
}
