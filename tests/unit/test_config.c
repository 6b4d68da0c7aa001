#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "card/card_sim.h"
#include "net/control.h"
#include "service/config.h"
#include "common/log.h"
#include "common/util.h"

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

/* Assert that `err` starts with exactly "path:line:col: " and contains `needle`. */
static void expect_message(const char *err, const char *path, int line, int col, const char *needle)
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
	struct rdo_server_opts o;
	int rc = load_text(yaml, &o, path, err, sizeof(err));
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

Test(config, load_sim_regmap)
{
	char err[512] = "";
	struct rdo_regmap *map = rdo_config_load_regmap(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	cr_assert_str_eq(rdo_regmap_name(map), "rdo-sim");
	cr_assert_str_eq(rdo_regmap_source(map), REGMAP_FILE);
	cr_assert_eq(rdo_regmap_count(map), 30 + 12 * 8, "30 registers and 12 dma_link banks of 8");

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
	cr_assert_eq(rdo_regmap_resolve(map, "dma.control.mode", &t, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(rdo_field_mask(t.field), SIM_DMA_PULSED);
	cr_assert_str_eq(rdo_field_symbol(t.field, 1), "pulsed");
	cr_assert_str_eq(rdo_field_symbol(t.field, 0), "continuous");
	cr_assert_eq(rdo_regmap_resolve(map, "dma.fifo_depth", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->reset, SIM_FIFO_DEPTH);
	cr_assert_eq(rdo_regmap_resolve(map, "dma.irq_holdoff", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->reset, 1000);
	cr_assert_eq(rdo_regmap_resolve(map, "dma.pulse_hz", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->reset, 60);
	cr_assert_eq(rdo_regmap_resolve(map, "dma.pulse_bytes", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->reset, 262144);
	cr_assert_eq(rdo_regmap_resolve(map, "dma.irq_coalesce", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.reg->reset, 1);
	cr_assert_eq(rdo_regmap_resolve(map, "dma_link12.pages", &t, err, sizeof(err)), -ENOENT,
		     "the map has 12 links");
	rdo_regmap_destroy(&map);
}

/* Where card_sim.h puts a register (in bank dma_link<N>, relative to the bank). */
struct reg_spec {
	const char *name;
	unsigned offset, width;
	enum rdo_access access;
};

static void expect_reg(const struct rdo_regmap *map, const char *name, uint64_t offset,
		       unsigned width, enum rdo_access access)
{
	struct rdo_target t;
	char err[512] = "";
	cr_assert_eq(rdo_regmap_resolve(map, name, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.bar, 0, "%s", name);
	cr_assert_eq(t.offset, offset, "%s", name);
	cr_assert_eq(t.width, width, "%s", name);
	cr_assert_eq(t.reg->access, access, "%s", name);
}

/* The map must describe the emulator: every register and bit where card_sim.h puts it. */
Test(config, sim_regmap_matches_emulator)
{
	static const struct reg_spec regs[] = {
	    {"id.identity", SIM_ID_IDENTITY, 32, RDO_ACCESS_RO},
	    {"id.firmware", SIM_ID_FIRMWARE, 32, RDO_ACCESS_RO},
	    {"id.serial", SIM_ID_SERIAL, 64, RDO_ACCESS_RO},
	    {"id.scratch", SIM_ID_SCRATCH, 32, RDO_ACCESS_RW},
	    {"ctrl.config", SIM_CTRL_CONFIG, 32, RDO_ACCESS_RW},
	    {"ctrl.reset", SIM_CTRL_RESET, 32, RDO_ACCESS_WO},
	    {"ctrl.status", SIM_CTRL_STATUS, 32, RDO_ACCESS_RO},
	    {"ctrl.errors", SIM_CTRL_ERRORS, 32, RDO_ACCESS_W1C},
	    {"mon.temperature", SIM_MON_TEMPERATURE, 32, RDO_ACCESS_RO},
	    {"mon.temperature_max", SIM_MON_TEMP_MAX, 32, RDO_ACCESS_RO},
	    {"mon.uptime", SIM_MON_UPTIME, 32, RDO_ACCESS_RO},
	    {"link.count", SIM_LINK_COUNT, 32, RDO_ACCESS_RO},
	    {"link.enable", SIM_LINK_ENABLE, 32, RDO_ACCESS_RW},
	    {"link.status", SIM_LINK_STATUS, 32, RDO_ACCESS_RO},
	    {"fault.link_down", SIM_FAULT_LINK_DOWN, 32, RDO_ACCESS_RW},
	    {"fault.stall", SIM_FAULT_STALL, 32, RDO_ACCESS_RW},
	    {"fault.corrupt", SIM_FAULT_CORRUPT, 32, RDO_ACCESS_WO},
	    {"fault.overflow", SIM_FAULT_OVERFLOW, 32, RDO_ACCESS_WO},
	    {"dma.control", SIM_DMA_CONTROL, 32, RDO_ACCESS_RW},
	    {"dma.status", SIM_DMA_STATUS, 32, RDO_ACCESS_RO},
	    {"dma.rate", SIM_DMA_RATE, 64, RDO_ACCESS_RW},
	    {"dma.page_size", SIM_DMA_PAGE_SIZE, 32, RDO_ACCESS_RW},
	    {"dma.irq_coalesce", SIM_DMA_IRQ_COALESCE, 32, RDO_ACCESS_RW},
	    {"dma.dropped", SIM_DMA_DROPPED, 64, RDO_ACCESS_RO},
	    {"dma.irq_holdoff", SIM_DMA_IRQ_HOLDOFF, 32, RDO_ACCESS_RW},
	    {"dma.fifo_depth", SIM_DMA_FIFO_DEPTH, 32, RDO_ACCESS_RO},
	    {"dma.pulse_hz", SIM_DMA_PULSE_HZ, 32, RDO_ACCESS_RW},
	    {"dma.pulse_bytes", SIM_DMA_PULSE_BYTES, 32, RDO_ACCESS_RW},
	    {"dma.irq_count", SIM_DMA_IRQ_COUNT, 64, RDO_ACCESS_RO},
	    {"dma.overflows", SIM_DMA_OVERFLOWS, 32, RDO_ACCESS_RO},
	};
	static const struct reg_spec link_regs[] = {
	    {"free_addr", SIM_LINK_FREE_ADDR, 64, RDO_ACCESS_RW},
	    {"free_push", SIM_LINK_FREE_PUSH, 32, RDO_ACCESS_WO},
	    {"free_level", SIM_LINK_FREE_LEVEL, 32, RDO_ACCESS_RO},
	    {"completion_addr", SIM_LINK_COMPL_ADDR, 64, RDO_ACCESS_RW},
	    {"ready_count", SIM_LINK_READY, 32, RDO_ACCESS_RO},
	    {"pages", SIM_LINK_PAGES, 64, RDO_ACCESS_RO},
	    {"dropped", SIM_LINK_DROPPED, 64, RDO_ACCESS_RO},
	    {"dropped_bytes", SIM_LINK_DROPPED_BYTES, 64, RDO_ACCESS_RO},
	};
	static const struct {
		const char *name;
		uint64_t mask;
	} fields[] = {
	    {"ctrl.errors.power_on", SIM_ERR_POWER_ON},
	    {"ctrl.errors.link_down", SIM_ERR_LINK_DOWN},
	    {"ctrl.errors.dma_fault", SIM_ERR_DMA_FAULT},
	    {"ctrl.errors.fifo_full", SIM_ERR_FIFO_FULL},
	    {"ctrl.reset.card", SIM_RESET_CARD},
	    {"ctrl.reset.dma", SIM_RESET_DMA},
	    {"dma.control.enable", SIM_DMA_ENABLE},
	    {"dma.control.irq_enable", SIM_DMA_IRQ_ENABLE},
	    {"dma.control.mode", SIM_DMA_PULSED},
	    {"dma.control.header_only", SIM_DMA_HEADER_ONLY},
	    {"dma.control.variable_size", SIM_DMA_VARIABLE_SIZE},
	    {"dma.status.running", SIM_DMA_RUNNING},
	};
	char err[512] = "";
	struct rdo_regmap *map = rdo_config_load_regmap(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	cr_assert_eq(rdo_regmap_count(map), RDO_ARRAY_SIZE(regs) + 12 * RDO_ARRAY_SIZE(link_regs));
	for (size_t i = 0; i < RDO_ARRAY_SIZE(regs); i++)
		expect_reg(map, regs[i].name, regs[i].offset, regs[i].width, regs[i].access);
	for (unsigned link = 0; link < 12; link++)
		for (size_t i = 0; i < RDO_ARRAY_SIZE(link_regs); i++) {
			char name[64];
			snprintf(name, sizeof(name), "dma_link%u.%s", link, link_regs[i].name);
			expect_reg(map, name,
				   SIM_LINK_BASE + link * SIM_LINK_STRIDE + link_regs[i].offset,
				   link_regs[i].width, link_regs[i].access);
		}
	for (size_t i = 0; i < RDO_ARRAY_SIZE(fields); i++) {
		struct rdo_target t;
		cr_assert_eq(rdo_regmap_resolve(map, fields[i].name, &t, err, sizeof(err)), 0, "%s",
			     err);
		cr_assert_eq(rdo_field_mask(t.field), fields[i].mask, "%s", fields[i].name);
	}
	uint64_t bars[] = {SIM_BAR0_SIZE};
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

struct bad_yaml {
	const char *yaml;
	int line, col;
	const char *needle;
};

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

/* A bank array of three banks b0..b2, 0x10 apart: the tests below change count and stride. */
#define ARRAY_HEAD                                                                                 \
	"map: t\n"                                                                                 \
	"banks:\n"                                                                                 \
	"  - name: b\n"                                                                            \
	"    bar: 0\n"                                                                             \
	"    base: 0x100\n"
#define ARRAY_REGS                                                                                 \
	"    registers:\n"                                                                         \
	"      - { name: r, offset: 0x0 }\n"                                                       \
	"      - { name: s, offset: 0x8, width: 64 }\n"

static void expect_offset(const struct rdo_regmap *map, const char *name, uint64_t offset)
{
	struct rdo_target t;
	char err[512] = "";
	cr_assert_eq(rdo_regmap_resolve(map, name, &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.offset, offset, "%s is at 0x%llx", name, (unsigned long long)t.offset);
}

Test(config, regmap_bank_array)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(ARRAY_HEAD "    count: 3\n"
			      "    stride: 0x10\n"
			      "    description: Three of a kind.\n" ARRAY_REGS
			      "identity: { register: b2.r, value: 1 }\n",
		   path);
	struct rdo_regmap *map = rdo_config_load_regmap(path, err, sizeof(err));
	unlink(path);
	cr_assert_not_null(map, "%s", err);
	cr_assert_eq(rdo_regmap_count(map), 6);
	expect_offset(map, "b0.r", 0x100);
	expect_offset(map, "b0.s", 0x108);
	expect_offset(map, "b1.r", 0x110);
	expect_offset(map, "b1.s", 0x118);
	expect_offset(map, "b2.r", 0x120);
	expect_offset(map, "b2.s", 0x128);
	const struct rdo_bank *bank = rdo_regmap_bank(map, "b1");
	cr_assert_not_null(bank);
	cr_assert_eq(bank->base, 0x110);
	cr_assert_str_eq(bank->description, "Three of a kind.");
	cr_assert_null(rdo_regmap_bank(map, "b"), "an array has no bank of its bare name");
	cr_assert_null(rdo_regmap_bank(map, "b3"));
	struct rdo_target t;
	cr_assert_eq(rdo_regmap_resolve(map, "b3.r", &t, err, sizeof(err)), -ENOENT);
	rdo_regmap_destroy(&map);

	write_temp(ARRAY_HEAD "    count: 1\n" ARRAY_REGS, path);
	map = rdo_config_load_regmap(path, err, sizeof(err));
	unlink(path);
	cr_assert_not_null(map, "%s", err);
	expect_offset(map, "b0.s", 0x108);
	rdo_regmap_destroy(&map);
}

Test(config, regmap_bank_array_errors)
{
	static const struct bad_yaml bad[] = {
	    {ARRAY_HEAD "    count: 0\n    stride: 0x10\n" ARRAY_REGS, 6, 12,
	     "banks[0].count: 0 is too small (at least 1)"},
	    {ARRAY_HEAD "    count: 65\n    stride: 0x10\n" ARRAY_REGS, 6, 12,
	     "banks[0].count: 65 is too large (at most 64)"},
	    {ARRAY_HEAD "    count: two\n    stride: 0x10\n" ARRAY_REGS, 6, 12,
	     "banks[0].count: expected an integer, got \"two\""},
	    {ARRAY_HEAD "    count: 3\n    stride: 0\n" ARRAY_REGS, 7, 13,
	     "banks[0].stride: 0x0 is smaller than the registers of b (0x10 bytes): "
	     "make the stride at least 0x10"},
	    {ARRAY_HEAD "    count: 3\n    stride: 0xc\n" ARRAY_REGS, 7, 13,
	     "banks[0].stride: 0xc is smaller than the registers of b (0x10 bytes)"},
	    {ARRAY_HEAD "    count: 3\n    stride: [4]\n" ARRAY_REGS, 7, 13,
	     "banks[0].stride: expected an integer, got a list"},
	    {ARRAY_HEAD "    stride: 0x10\n" ARRAY_REGS, 6, 13,
	     "banks[0].stride: a stride needs a count"},
	    {ARRAY_HEAD "    count: 2\n" ARRAY_REGS, 6, 12,
	     "banks[0].count: a bank array needs a stride"},
	    {"map: t\nbanks:\n  - name: b\n    bar: 0\n"
	     "    base: 0xffff_ffff_ffff_fff0\n    count: 3\n    stride: 0x10\n" ARRAY_REGS,
	     7, 13, "banks[0].stride: b2 would lie beyond 64-bit offsets"},
	    {ARRAY_HEAD "    count: 2\n    stride: 0x10\n" ARRAY_REGS
			"      - { name: r, offset: 0xc }\n",
	     11, 9, "register b0.r is defined twice"},
	    {ARRAY_HEAD "    count: 2\n    stride: 0x10\n" ARRAY_REGS
			"  - { name: b1, bar: 0, base: 0x800, registers: [] }\n",
	     11, 5, "bank \"b1\" is defined twice"},
	    {ARRAY_HEAD "    count: 2\n    stride: 0x10\n    size: 2\n" ARRAY_REGS, 8, 5,
	     "banks[0].size: unknown key (expected one of: name, bar, base, "
	     "description, registers, count, stride)"},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(bad); i++)
		expect_regmap_error(bad[i].yaml, bad[i].line, bad[i].col, bad[i].needle);
}

/* readout-writer's config. */
#define WRITER_CONFIG_FILE RDO_SOURCE_DIR "/config/readout-writer.yaml"

/* The shipped example is the defaults, but for the directory it names. */
Test(config, shipped_remote_writer_config_is_the_defaults)
{
	struct rdo_remote_writer_opts d, o;
	rdo_remote_writer_opts_init(&d);
	rdo_remote_writer_opts_init(&o);
	char err[512] = "";
	cr_assert_eq(rdo_config_load_remote_writer(WRITER_CONFIG_FILE, &o, err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_str_eq(o.config_file, WRITER_CONFIG_FILE);
	cr_assert_str_eq(o.writer.directory, "/tmp");
	memcpy(o.writer.directory, d.writer.directory, sizeof(o.writer.directory));
	memcpy(o.config_file, d.config_file, sizeof(o.config_file));
	cr_assert_eq(memcmp(&o, &d, sizeof(o)), 0, "a value differs from its default");
}

Test(config, load_remote_writer_config)
{
	char path[PATH_MAX], err[512] = "";
	write_temp("source:\n  control: ipc:///run/readoutd/ctl\n  lossless: tcp://node7:5572\n"
		   "  name: disk-server-3\n  buffers: 256\n"
		   "writer: { directory: /data, rotate_size: 1GiB, depth: 16 }\n"
		   "status_interval_s: 0\nlog_level: debug\n",
		   path);
	struct rdo_remote_writer_opts o;
	rdo_remote_writer_opts_init(&o);
	int rc = rdo_config_load_remote_writer(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(o.control, "ipc:///run/readoutd/ctl");
	cr_assert_str_eq(o.lossless, "tcp://node7:5572");
	cr_assert_str_eq(o.name, "disk-server-3");
	cr_assert_eq(o.buffers, 256);
	cr_assert_str_eq(o.writer.directory, "/data");
	cr_assert_eq(o.writer.rotate_bytes, 1ull << 30);
	cr_assert_eq(o.writer.depth, 16);
	cr_assert_eq(o.writer.block_size, 4u << 20, "untouched keys keep their default");
	cr_assert_eq(o.status_s, 0);
	cr_assert_eq(o.log_level, LOG_DEBUG);
}

/* Load `yaml` as readout-writer's config; it must fail at line:col with `needle`. */
static void expect_remote_writer_error(const char *yaml, int line, int col, const char *needle)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(yaml, path);
	struct rdo_remote_writer_opts o;
	rdo_remote_writer_opts_init(&o);
	int rc = rdo_config_load_remote_writer(path, &o, err, sizeof(err));
	unlink(path);
	cr_assert_eq(rc, -EINVAL, "config load gave %d: %s", rc, err);
	expect_message(err, path, line, col, needle);
}

Test(config, remote_writer_errors)
{
	expect_remote_writer_error("source: { buffers: 5000 }\n", 1, 20, "at most 4096");
	expect_remote_writer_error("source:\n  lossless: node7:5572\n", 2, 13,
				   "expected tcp://HOST:PORT or ipc://PATH");
	expect_remote_writer_error("writer: { enabled: true }\n", 1, 11,
				   "writer.enabled: unknown key");
	expect_remote_writer_error("card: {}\n", 1, 1, "unknown key (expected one of: source");
	expect_remote_writer_error("status_interval_s: -1\n", 1, 20, "expected an integer");
	expect_remote_writer_error("log_level: loud\n", 1, 12, "expected err, warning");
}

/* The DMA side of a card, as its map says: the emulator's defaults, and edu's own. */
Test(config, map_dma_profile)
{
	char err[512] = "";
	struct rdo_regmap *map = rdo_config_load_regmap(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	const struct rdo_map_dma *dma = rdo_regmap_dma(map);
	cr_assert_str_eq(dma->protocol, "superpage");
	cr_assert_eq(dma->links, 0, "the emulator's links are its option");
	cr_assert_eq(dma->address_bits, 64);
	rdo_regmap_destroy(&map);
	map = rdo_config_load_regmap(RDO_SOURCE_DIR "/config/regmaps/edu.yaml", err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	dma = rdo_regmap_dma(map);
	cr_assert_str_eq(dma->protocol, "edu");
	cr_assert_eq(dma->links, 1);
	cr_assert_eq(dma->address_bits, 28, "edu masks DMA addresses to 28 bits");
	struct rdo_target t;
	cr_assert_eq(rdo_regmap_resolve(map, "dma.command.to_ram", &t, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(t.offset, 0x98);
	rdo_regmap_destroy(&map);
}

Test(config, bad_map_dma)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "dma: { protocol: pcie }\n",
			    8, 18, "dma.protocol: expected superpage (readout cards) or edu");
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "dma: { address_bits: 12 }\n",
			    8, 22, "dma.address_bits: 12 is too small (at least 24)");
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "dma: { lanes: 4 }\n",
			    8, 8, "lanes");
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "dma: superpage\n",
			    8, 6, "dma");
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
