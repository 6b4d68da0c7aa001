#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "card_sim.h"
#include "config.h"
#include "log.h"
#include "util.h"

#define CONFIG_FILE RDO_SOURCE_DIR "/config/readoutd.yaml"
#define REGMAP_FILE RDO_SOURCE_DIR "/config/regmaps/rdo-sim.yaml"

/* Write `text` to a new file in /tmp; its name goes to `path` (PATH_MAX bytes). */
static void write_temp(const char *text, char *path)
{
	rdo_strlcpy(path, "/tmp/rdo-test-config-XXXXXX", PATH_MAX);
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0, "mkstemp: %s", strerror(errno));
	size_t len = strlen(text);
	cr_assert_eq(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* Assert that `err` starts with exactly "path:line:col: " and contains `needle`. */
static void expect_message(const char *err, const char *path, int line, int col,
			   const char *needle)
{
	char prefix[PATH_MAX + 32];
	snprintf(prefix, sizeof(prefix), "%s:%d:%d: ", path, line, col);
	cr_assert(strncmp(err, prefix, strlen(prefix)) == 0, "\"%s\" does not start with \"%s\"",
		  err, prefix);
	cr_assert(strstr(err + strlen(prefix), needle), "\"%s\" lacks \"%s\"", err, needle);
}

/* Load `yaml` as a server config; it must fail at line:col with `needle` in the message. */
static void expect_config_error(const char *yaml, int line, int col, const char *needle)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(yaml, path);
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	int rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, -EINVAL, "config load gave %d: %s", rc, err);
	expect_message(err, path, line, col, needle);
}

/* Load `yaml` as a register map; it must fail at line:col with `needle` in the message. */
static void expect_regmap_error(const char *yaml, int line, int col, const char *needle)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(yaml, path);
	struct rdo_regmap *map = rdo_config_load_regmap(path, err, sizeof(err));
	unlink(path);
	cr_assert_null(map, "the map loaded");
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
	cr_assert_eq(o.card.links, 12);
	cr_assert_str_eq(o.card.backend, "sim");
	cr_assert_eq(o.ncontrol_bind, 2);
	cr_assert_str_eq(o.control_bind[0], RDO_DEFAULT_CONTROL_TCP);
	cr_assert_str_eq(o.control_bind[1], RDO_DEFAULT_CONTROL_IPC);
	cr_assert_eq(o.log_level, LOG_INFO);
	cr_assert_not(o.force);
}

Test(config, load_server_config)
{
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	o.card.links = 1;
	o.log_level = LOG_DEBUG;
	char err[512] = "";
	cr_assert_eq(rdo_config_load(CONFIG_FILE, &o, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(o.config_file, CONFIG_FILE);
	cr_assert_str_eq(o.regmap_file, REGMAP_FILE, "the map path is resolved beside the config");
	cr_assert_str_eq(o.card.name, "sim0");
	cr_assert_str_eq(o.card.backend, "sim");
	cr_assert_eq(o.card.links, 12);
	cr_assert_eq(o.card.serial, 0x5244000000000001ull);
	cr_assert_eq(o.card.fw_version, 0x01020003);
	cr_assert_not(o.force);
	cr_assert_eq(o.ncontrol_bind, 2);
	cr_assert_str_eq(o.control_bind[0], "tcp://127.0.0.1:5570");
	cr_assert_str_eq(o.control_bind[1], "ipc:///tmp/readoutd.ctl");
	cr_assert_eq(o.log_level, LOG_INFO);
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
	cr_assert_str_eq(o.card.name, "lab_1");
	cr_assert_str_eq(o.card.address, "0000:3b:00.0");
	cr_assert_str_eq(o.regmap_file, "/tmp/maps/other.yaml");
	cr_assert(o.force);
	cr_assert_eq(o.card.links, 4);
	cr_assert_eq(o.card.identity, 0xcafe);
	cr_assert_eq(o.card.fw_version, 0x01020009);
	cr_assert_eq(o.card.serial, 7);
	cr_assert_eq(o.ncontrol_bind, 1);
	cr_assert_str_eq(o.control_bind[0], "tcp://0.0.0.0:6000");
}

Test(config, default_regmap_beside_config)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("# nothing but the level\nlog_level: notice\n", path);
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	int rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(o.log_level, LOG_NOTICE);
	cr_assert_str_eq(o.regmap_file, "/tmp/regmaps/rdo-sim.yaml");
	cr_assert_eq(o.card.links, 12, "defaults stay where the file says nothing");
	cr_assert_eq(o.ncontrol_bind, 2);
}

Test(config, absolute_regmap_path)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("card:\n  regmap: /etc/readoutd/map.yaml\n", path);
	struct rdo_server_opts o;
	rdo_server_opts_init(&o);
	int rc = rdo_config_load(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(o.regmap_file, "/etc/readoutd/map.yaml");
}

Test(config, load_sim_regmap)
{
	char err[512] = "";
	struct rdo_regmap *map = rdo_config_load_regmap(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	cr_assert_str_eq(rdo_regmap_name(map), "rdo-sim");
	cr_assert_str_eq(rdo_regmap_source(map), REGMAP_FILE);
	cr_assert_eq(rdo_regmap_count(map), 21);

	uint64_t v, lo, hi;
	const struct rdo_reg *r = rdo_regmap_identity(map, &v);
	cr_assert_not_null(r);
	cr_assert_str_eq(r->name, "id.identity");
	cr_assert_eq(v, 0x52444f31);
	r = rdo_regmap_firmware(map, &lo, &hi);
	cr_assert_not_null(r);
	cr_assert_str_eq(r->name, "id.firmware");
	cr_assert_eq(lo, 0x01020000);
	cr_assert_eq(hi, 0x0102ffff);
	cr_assert_str_eq(rdo_regmap_serial(map)->name, "id.serial");

	struct rdo_target t;
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.data_source", &t, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(t.field->lsb, 4);
	cr_assert_eq(t.field->msb, 5);
	cr_assert_str_eq(t.field->description, "Where DMA data comes from.");
	cr_assert_str_eq(rdo_field_symbol(t.field, 2), "counter");
	cr_assert_eq(t.reg->reset, 0x10);
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.errors", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->access, RDO_ACCESS_W1C);
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.reset", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->access, RDO_ACCESS_WO);
	cr_assert_eq(rdo_regmap_resolve(map, "dma.page_size", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->reset, 8192);
	rdo_regmap_destroy(&map);
}

/* The map must describe the emulator: every register where card_sim.h puts it. */
Test(config, sim_regmap_matches_emulator)
{
	static const struct {
		const char *name;
		unsigned offset, width;
		enum rdo_access access;
	} regs[] = {
		{ "id.identity", SIM_ID_IDENTITY, 32, RDO_ACCESS_RO },
		{ "id.firmware", SIM_ID_FIRMWARE, 32, RDO_ACCESS_RO },
		{ "id.serial", SIM_ID_SERIAL, 64, RDO_ACCESS_RO },
		{ "id.scratch", SIM_ID_SCRATCH, 32, RDO_ACCESS_RW },
		{ "ctrl.config", SIM_CTRL_CONFIG, 32, RDO_ACCESS_RW },
		{ "ctrl.reset", SIM_CTRL_RESET, 32, RDO_ACCESS_WO },
		{ "ctrl.status", SIM_CTRL_STATUS, 32, RDO_ACCESS_RO },
		{ "ctrl.errors", SIM_CTRL_ERRORS, 32, RDO_ACCESS_W1C },
		{ "mon.temperature", SIM_MON_TEMPERATURE, 32, RDO_ACCESS_RO },
		{ "mon.temperature_max", SIM_MON_TEMP_MAX, 32, RDO_ACCESS_RO },
		{ "mon.uptime", SIM_MON_UPTIME, 32, RDO_ACCESS_RO },
		{ "link.count", SIM_LINK_COUNT, 32, RDO_ACCESS_RO },
		{ "link.enable", SIM_LINK_ENABLE, 32, RDO_ACCESS_RW },
		{ "link.status", SIM_LINK_STATUS, 32, RDO_ACCESS_RO },
		{ "fault.link_down", SIM_FAULT_LINK_DOWN, 32, RDO_ACCESS_RW },
		{ "dma.control", SIM_DMA_CONTROL, 32, RDO_ACCESS_RW },
		{ "dma.status", SIM_DMA_STATUS, 32, RDO_ACCESS_RO },
		{ "dma.rate", SIM_DMA_RATE, 64, RDO_ACCESS_RW },
		{ "dma.page_size", SIM_DMA_PAGE_SIZE, 32, RDO_ACCESS_RW },
		{ "dma.irq_coalesce", SIM_DMA_IRQ_COALESCE, 32, RDO_ACCESS_RW },
		{ "dma.dropped", SIM_DMA_DROPPED, 64, RDO_ACCESS_RO },
	};
	char err[512] = "";
	struct rdo_regmap *map = rdo_config_load_regmap(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	cr_assert_eq(rdo_regmap_count(map), RDO_ARRAY_SIZE(regs));
	for (size_t i = 0; i < RDO_ARRAY_SIZE(regs); i++) {
		struct rdo_target t;
		cr_assert_eq(rdo_regmap_resolve(map, regs[i].name, &t, err, sizeof(err)), 0, "%s",
			     err);
		cr_assert_eq(t.bar, 0, "%s", regs[i].name);
		cr_assert_eq(t.offset, regs[i].offset, "%s", regs[i].name);
		cr_assert_eq(t.width, regs[i].width, "%s", regs[i].name);
		cr_assert_eq(t.reg->access, regs[i].access, "%s", regs[i].name);
	}
	uint64_t bars[] = { SIM_BAR0_SIZE };
	cr_assert_eq(rdo_regmap_bind_bars(map, 1, bars, err, sizeof(err)), 0, "%s", err);
	rdo_regmap_destroy(&map);
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
	err[0] = '\0';
	cr_assert_null(rdo_config_load_regmap(path, err, sizeof(err)));
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
			    "regmap, force, sim)");
	expect_config_error("log_level: info\nlinks: 12\n", 2, 1,
			    "links: unknown key (expected one of: card, control, log_level)");
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
	expect_config_error("control:\n  bind:\n    - tcp://127.0.0.1:1\n    - http://x:80\n", 4,
			    7,
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
			    "card.backend: expected \"sim\" (the backends of this build), got "
			    "\"pcie\"");
	expect_config_error("card:\n  name: \"my card\"\n", 2, 9,
			    "card.name: \"my card\" is not a valid card name");
}

/* A valid map of one bank; the tests below break it in one place each. */
#define MAP_HEAD                                                                                   \
	"map: t\n"                                                                                 \
	"banks:\n"                                                                                 \
	"  - name: b\n"                                                                            \
	"    bar: 0\n"                                                                             \
	"    base: 0x100\n"                                                                        \
	"    registers:\n"

Test(config, small_regmap_loads)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(MAP_HEAD "      - { name: r, offset: 0x4, width: 16, reset: 0b11,"
			    " access: w1c }\n"
			    "      - name: s\n"
			    "        offset: 0x8\n"
			    "        fields:\n"
			    "          - { name: f, bits: \"7:4\", values: { lo: 1, hi: 0xf } }\n"
			    "identity: { register: b.s, value: 9 }\n",
		   path);
	struct rdo_regmap *map = rdo_config_load_regmap(path, err, sizeof(err));
	unlink(path);
	cr_assert_not_null(map, "%s", err);
	struct rdo_target t;
	cr_assert_eq(rdo_regmap_resolve(map, "b.r", &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.offset, 0x104);
	cr_assert_eq(t.width, 16);
	cr_assert_eq(t.reg->reset, 3);
	cr_assert_eq(t.reg->access, RDO_ACCESS_W1C);
	cr_assert_eq(rdo_regmap_resolve(map, "b.s.f", &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.reg->access, RDO_ACCESS_RW, "access defaults to rw");
	cr_assert_eq(t.width, 32, "width defaults to 32");
	cr_assert_eq(rdo_field_mask(t.field), 0xf0);
	uint64_t v;
	cr_assert_eq(rdo_field_lookup_symbol(t.field, "hi", &v), 0);
	cr_assert_eq(v, 0xf);
	cr_assert_not_null(rdo_regmap_identity(map, &v));
	cr_assert_eq(v, 9);
	rdo_regmap_destroy(&map);
}

Test(config, regmap_duplicate_names)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "      - { name: r, offset: 0x4 }\n",
			    8, 9, "register b.r is defined twice");
}

Test(config, regmap_overlapping_registers)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0, width: 64 }\n"
				     "      - { name: s, offset: 0x4 }\n",
			    8, 9, "register b.s at bar0:0x104 overlaps b.r at bar0:0x100");
}

Test(config, regmap_overlapping_fields)
{
	expect_regmap_error(MAP_HEAD "      - name: r\n"
				     "        offset: 0x0\n"
				     "        fields:\n"
				     "          - { name: a, bits: \"3:0\" }\n"
				     "          - { name: c, bits: \"4:2\" }\n",
			    7, 9, "b.r: field c (bits 4:2) overlaps field a (bits 3:0)");
}

Test(config, regmap_bits_low_first)
{
	expect_regmap_error(MAP_HEAD "      - name: r\n"
				     "        offset: 0x0\n"
				     "        fields:\n"
				     "          - { name: a, bits: \"3:5\" }\n",
			    10, 30, "\"3:5\": write the high bit first (\"5:3\")");
	expect_regmap_error(MAP_HEAD "      - name: r\n"
				     "        offset: 0x0\n"
				     "        fields:\n"
				     "          - { name: a, bits: \"x:0\" }\n",
			    10, 30, "expected a bit (0-63) or a range \"high:low\", got \"x:0\"");
	expect_regmap_error(MAP_HEAD "      - name: r\n"
				     "        offset: 0x0\n"
				     "        fields:\n"
				     "          - { name: a, bits: 32 }\n",
			    7, 9, "b.r.a: bits 32:32 do not fit a 32-bit register");
}

Test(config, regmap_unknown_access)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0, access: rx }\n", 7, 41,
			    "b.registers[0].access: expected ro, rw, wo or w1c, got \"rx\"");
}

Test(config, regmap_identity_missing_register)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "identity: { register: b.nope, value: 1 }\n",
			    8, 23, "identity register b.nope is not in the map");
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "firmware: { register: b.r, min: 2, max: 1 }\n",
			    8, 23, "firmware range 0x2..0x1 is empty");
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "identity: { register: b.r }\n",
			    8, 11, "identity: expected {register: NAME, value: N}");
}

Test(config, regmap_structure_errors)
{
	expect_regmap_error(MAP_HEAD "      - { name: r }\n", 7, 9,
			    "b.registers[0]: a register needs a name and an offset");
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0, width: 24 }\n", 7, 9,
			    "b.r: width 24 is not one of 8, 16, 32, 64");
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0, colour: red }\n", 7, 31,
			    "b.registers[0].colour: unknown key (expected one of: name, offset, "
			    "width, access, reset, description, fields)");
	expect_regmap_error("map: t\nbanks:\n  - { name: b, base: 0, registers: [] }\n", 3, 5,
			    "banks[0]: a bank needs name, bar, base and registers");
	expect_regmap_error("map: t\n", 1, 1, "a register map needs \"map: NAME\" and \"banks:\"");
	expect_regmap_error("map: t\nbanks:\n  - { name: b, bar: 7, base: 0, registers: [] }\n", 3,
			    21, "banks[0].bar: 7 is too large (at most 5)");
	expect_regmap_error(MAP_HEAD "      - name: r\n"
				     "        offset: 0x0\n"
				     "        fields:\n"
				     "          - { name: a, bits: 0, values: { on: 2 } }\n",
			    7, 9, "b.r.a: value on = 2 does not fit in 1 bits");
}
