#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "card/card_sim.h"
#include "card/regmap_load.h"
#include "common/log.h"
#include "common/util.h"
#include "unit/yaml_files.h"

#define REGMAP_FILE RDO_SOURCE_DIR "/config/regmaps/rdo-sim.yaml"

/* Load `yaml` as a register map; it must fail at line:col with `needle` in the message. */
static void expect_regmap_error(const char *yaml, int line, int col, const char *needle)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(yaml, path);
	struct rdo_regmap *map = rdo_regmap_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_null(map, "the map loaded");
	expect_message(err, path, line, col, needle);
}

static void quiet(void)
{
	rdo_log_set_level(LOG_WARNING);
}

TestSuite(regmap_load, .init = quiet);

Test(regmap_load, load_sim_regmap)
{
	char err[512] = "";
	struct rdo_regmap *map = rdo_regmap_load(REGMAP_FILE, err, sizeof(err));
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
Test(regmap_load, sim_regmap_matches_emulator)
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
	struct rdo_regmap *map = rdo_regmap_load(REGMAP_FILE, err, sizeof(err));
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

Test(regmap_load, missing_file)
{
	const char *path = "/tmp/rdo-test-config-does-not-exist.yaml";
	char err[512] = "";
	cr_assert_null(rdo_regmap_load(path, err, sizeof(err)));
	cr_assert(strstr(err, path), "%s", err);
	cr_assert(strstr(err, "cannot open"), "%s", err);
}

/* A valid map of one bank; the tests below break it in one place each. */
#define MAP_HEAD                                                                                   \
	"map: t\n"                                                                                 \
	"banks:\n"                                                                                 \
	"  - name: b\n"                                                                            \
	"    bar: 0\n"                                                                             \
	"    base: 0x100\n"                                                                        \
	"    registers:\n"

Test(regmap_load, small_regmap_loads)
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
	struct rdo_regmap *map = rdo_regmap_load(path, err, sizeof(err));
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

Test(regmap_load, regmap_duplicate_names)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0 }\n"
				     "      - { name: r, offset: 0x4 }\n",
			    8, 9, "register b.r is defined twice");
}

Test(regmap_load, regmap_overlapping_registers)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0, width: 64 }\n"
				     "      - { name: s, offset: 0x4 }\n",
			    8, 9, "register b.s at bar0:0x104 overlaps b.r at bar0:0x100");
}

Test(regmap_load, regmap_overlapping_fields)
{
	expect_regmap_error(MAP_HEAD "      - name: r\n"
				     "        offset: 0x0\n"
				     "        fields:\n"
				     "          - { name: a, bits: \"3:0\" }\n"
				     "          - { name: c, bits: \"4:2\" }\n",
			    7, 9, "b.r: field c (bits 4:2) overlaps field a (bits 3:0)");
}

Test(regmap_load, regmap_bits_low_first)
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

Test(regmap_load, regmap_unknown_access)
{
	expect_regmap_error(MAP_HEAD "      - { name: r, offset: 0x0, access: rx }\n", 7, 41,
			    "b.registers[0].access: expected ro, rw, wo or w1c, got \"rx\"");
}

Test(regmap_load, regmap_identity_missing_register)
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

Test(regmap_load, regmap_structure_errors)
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

Test(regmap_load, regmap_bank_array)
{
	char path[PATH_MAX], err[512] = "";
	write_temp(ARRAY_HEAD "    count: 3\n"
			      "    stride: 0x10\n"
			      "    description: Three of a kind.\n" ARRAY_REGS
			      "identity: { register: b2.r, value: 1 }\n",
		   path);
	struct rdo_regmap *map = rdo_regmap_load(path, err, sizeof(err));
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
	map = rdo_regmap_load(path, err, sizeof(err));
	unlink(path);
	cr_assert_not_null(map, "%s", err);
	expect_offset(map, "b0.s", 0x108);
	rdo_regmap_destroy(&map);
}

Test(regmap_load, regmap_bank_array_errors)
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

/* The DMA side of a card, as its map says: the emulator's defaults, and edu's own. */
Test(regmap_load, map_dma_profile)
{
	char err[512] = "";
	struct rdo_regmap *map = rdo_regmap_load(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	const struct rdo_map_dma *dma = rdo_regmap_dma(map);
	cr_assert_str_eq(dma->protocol, "superpage");
	cr_assert_eq(dma->links, 0, "the emulator's links are its option");
	cr_assert_eq(dma->address_bits, 64);
	rdo_regmap_destroy(&map);
	map = rdo_regmap_load(RDO_SOURCE_DIR "/config/regmaps/edu.yaml", err, sizeof(err));
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

Test(regmap_load, bad_map_dma)
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
