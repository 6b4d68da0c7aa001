#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "card/regmap.h"
#include "common/util.h"

/*
 * A small map of two banks in BAR 0 and one in BAR 1:
 *   ctrl (bar 0, base 0x100): config rw 32 at +0 with fields led 0, mode 5:4 (enum)
 *   dma  (bar 0, base 0x1000): nothing yet
 *   aux  (bar 1, base 0x100): nothing yet
 */
static struct rdo_enum mode_values[] = {{"idle", 0}, {"run", 1}, {"test", 2}};
static struct rdo_field config_fields[] = {
    {.name = "led", .lsb = 0, .msb = 0, .description = "Front LED."},
    {.name = "mode", .lsb = 4, .msb = 5, .values = mode_values, .nvalues = 3},
};

static struct rdo_reg_def reg32(const char *name, uint64_t offset)
{
	return (struct rdo_reg_def){
	    .name = name, .offset = offset, .width = 32, .access = RDO_ACCESS_RW};
}

static struct rdo_regmap *new_map(void)
{
	char err[256] = "";
	struct rdo_regmap *map = rdo_regmap_create("test", "test.yaml");
	cr_assert_not_null(map);
	cr_assert_eq(rdo_regmap_add_bank(map, "ctrl", 0, 0x100, "Control.", err, sizeof(err)), 0,
		     "%s", err);
	cr_assert_eq(rdo_regmap_add_bank(map, "dma", 0, 0x1000, NULL, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(rdo_regmap_add_bank(map, "aux", 1, 0x100, NULL, err, sizeof(err)), 0, "%s",
		     err);
	struct rdo_reg_def def = reg32("config", 0);
	def.reset = 0x10;
	def.description = "Configuration.";
	def.fields = config_fields;
	def.nfields = RDO_ARRAY_SIZE(config_fields);
	cr_assert_eq(rdo_regmap_add_reg(map, "ctrl", &def, err, sizeof(err)), 0, "%s", err);
	return map;
}

/*
 * Add `def` to `bank`, expecting refusal with `want` and a message containing
 * `needle`, and the map's register count unchanged.
 */
static void expect_refused(struct rdo_regmap *map, const char *bank, const struct rdo_reg_def *def,
			   int want, const char *needle)
{
	char err[256] = "";
	size_t before = rdo_regmap_count(map);
	int rc = rdo_regmap_add_reg(map, bank, def, err, sizeof(err));
	cr_assert_eq(rc, want, "adding %s.%s: got %d, want %d (%s)", bank,
		     def->name ? def->name : "(null)", rc, want, err);
	cr_assert(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
	cr_assert_eq(rdo_regmap_count(map), before, "a refused register changed the count");
}

Test(regmap, create_names)
{
	struct rdo_regmap *map = rdo_regmap_create("rdo-sim", "maps/rdo-sim.yaml");
	cr_assert_str_eq(rdo_regmap_name(map), "rdo-sim");
	cr_assert_str_eq(rdo_regmap_source(map), "maps/rdo-sim.yaml");
	cr_assert_eq(rdo_regmap_count(map), 0);
	cr_assert_null(rdo_regmap_at(map, 0));
	rdo_regmap_destroy(&map);
	cr_assert_null(map);
	rdo_regmap_destroy(&map);
}

Test(regmap, add_and_resolve_register)
{
	struct rdo_regmap *map = new_map();
	struct rdo_target t;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config", &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_not_null(t.reg);
	cr_assert_null(t.field);
	cr_assert_str_eq(t.reg->name, "ctrl.config");
	cr_assert_eq(t.bar, 0);
	cr_assert_eq(t.offset, 0x100, "offset is absolute: bank base plus register offset");
	cr_assert_eq(t.width, 32);
	cr_assert_eq(t.reg->access, RDO_ACCESS_RW);
	cr_assert_eq(t.reg->reset, 0x10);
	cr_assert_str_eq(t.reg->description, "Configuration.");
	cr_assert_str_eq(t.reg->bank->name, "ctrl");
	cr_assert_eq(t.reg->nfields, 2);
	rdo_regmap_destroy(&map);
}

Test(regmap, resolve_field)
{
	struct rdo_regmap *map = new_map();
	struct rdo_target t;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.mode", &t, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_not_null(t.reg);
	cr_assert_not_null(t.field);
	cr_assert_str_eq(t.field->name, "mode");
	cr_assert_eq(t.field->lsb, 4);
	cr_assert_eq(t.field->msb, 5);
	cr_assert_eq(t.field->nvalues, 3);
	cr_assert_eq(t.offset, 0x100);
	cr_assert_eq(t.width, 32, "the target width is the register's");
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.led", &t, err, sizeof(err)), 0);
	cr_assert_str_eq(t.field->description, "Front LED.");
	rdo_regmap_destroy(&map);
}

Test(regmap, resolve_raw)
{
	struct rdo_regmap *map = new_map();
	static const struct {
		const char *name;
		unsigned bar;
		uint64_t offset;
	} cases[] = {
	    {"bar0:0x10", 0, 0x10}, {"0:0x10", 0, 0x10},	   {"bar1:16", 1, 16},
	    {"5:0b1000", 5, 8},	    {"bar0:0x1_0000", 0, 0x10000}, {"bar0:0x100", 0, 0x100},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(cases); i++) {
		struct rdo_target t = {.reg = (void *)1};
		char err[256] = "";
		cr_assert_eq(rdo_regmap_resolve(map, cases[i].name, &t, err, sizeof(err)), 0,
			     "%s: %s", cases[i].name, err);
		cr_assert_null(t.reg, "%s: a raw name has no register", cases[i].name);
		cr_assert_null(t.field);
		cr_assert_eq(t.bar, cases[i].bar, "%s", cases[i].name);
		cr_assert_eq(t.offset, cases[i].offset, "%s", cases[i].name);
		cr_assert_eq(t.width, 32);
	}
	rdo_regmap_destroy(&map);
}

Test(regmap, unknown_register)
{
	struct rdo_regmap *map = new_map();
	static const char *const names[] = {"ctrl.nope", "nobank.config", "ctrl.", "ctrl.nope.led"};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(names); i++) {
		struct rdo_target t;
		char err[256] = "";
		cr_assert_eq(rdo_regmap_resolve(map, names[i], &t, err, sizeof(err)), -ENOENT, "%s",
			     names[i]);
		cr_assert(strstr(err, "no register"), "%s: \"%s\"", names[i], err);
		cr_assert(strstr(err, "test"), "the message names the map: \"%s\"", err);
	}
	rdo_regmap_destroy(&map);
}

Test(regmap, unknown_field)
{
	struct rdo_regmap *map = new_map();
	struct rdo_target t;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.nope", &t, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "ctrl.config"), "%s", err);
	cr_assert(strstr(err, "\"nope\""), "%s", err);
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.led.x", &t, err, sizeof(err)), -ENOENT);
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.", &t, err, sizeof(err)), -ENOENT);
	rdo_regmap_destroy(&map);
}

Test(regmap, malformed_names)
{
	struct rdo_regmap *map = new_map();
	static const char *const names[] = {
	    "config", "",      "bar9:0x10", "bar6:0",  "bar0:zz",	   "barx:0",
	    ":0x10",  "bar0:", "0:-4",	    "bar0:0x", "verylongbarname:0"};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(names); i++) {
		struct rdo_target t;
		char err[256] = "";
		cr_assert_eq(rdo_regmap_resolve(map, names[i], &t, err, sizeof(err)), -EINVAL,
			     "\"%s\" must be malformed (%s)", names[i], err);
		cr_assert_neq(err[0], '\0', "\"%s\": no message", names[i]);
	}
	rdo_regmap_destroy(&map);
}

Test(regmap, overlong_name_is_unknown)
{
	struct rdo_regmap *map = new_map();
	char name[300];
	memset(name, 'a', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	name[4] = '.';
	struct rdo_target t;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_resolve(map, name, &t, err, sizeof(err)), -ENOENT);
	rdo_regmap_destroy(&map);
}

Test(regmap, duplicate_names)
{
	struct rdo_regmap *map = new_map();
	struct rdo_reg_def def = reg32("config", 0x40);
	expect_refused(map, "ctrl", &def, -EEXIST, "ctrl.config is defined twice");
	/* The same register name in another bank is another register. */
	char err[256] = "";
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &def, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rdo_regmap_count(map), 2);
	rdo_regmap_destroy(&map);
}

Test(regmap, overlapping_registers)
{
	struct rdo_regmap *map = new_map();
	char err[256] = "";
	struct rdo_reg_def wide = reg32("wide", 0x8);
	wide.width = 64;
	cr_assert_eq(rdo_regmap_add_reg(map, "ctrl", &wide, err, sizeof(err)), 0, "%s", err);

	struct rdo_reg_def d = reg32("upper", 0xc);
	expect_refused(map, "ctrl", &d, -EEXIST, "overlaps ctrl.wide");
	d = reg32("same", 0x0);
	expect_refused(map, "ctrl", &d, -EEXIST, "overlaps ctrl.config");
	/* Another bank of the same BAR reaching the same bytes clashes too. */
	cr_assert_eq(rdo_regmap_add_bank(map, "alias", 0, 0x108, NULL, err, sizeof(err)), 0);
	d = reg32("byte", 0x3);
	d.width = 8;
	expect_refused(map, "alias", &d, -EEXIST, "overlaps ctrl.wide");

	/* Adjacent is fine, and the same offset in another BAR is another register. */
	d = reg32("before", 0x4);
	cr_assert_eq(rdo_regmap_add_reg(map, "ctrl", &d, err, sizeof(err)), 0, "%s", err);
	d = reg32("after", 0x10);
	cr_assert_eq(rdo_regmap_add_reg(map, "ctrl", &d, err, sizeof(err)), 0, "%s", err);
	d = reg32("config", 0x0);
	cr_assert_eq(rdo_regmap_add_reg(map, "aux", &d, err, sizeof(err)), 0, "%s", err);
	struct rdo_target t;
	cr_assert_eq(rdo_regmap_resolve(map, "aux.config", &t, err, sizeof(err)), 0);
	cr_assert_eq(t.bar, 1);
	cr_assert_eq(t.offset, 0x100);
	cr_assert_eq(rdo_regmap_count(map), 5);
	rdo_regmap_destroy(&map);
}

/* A malformed definition: -EINVAL with the reason, and the map unchanged. */
static void expect_bad_def(struct rdo_regmap *map, const struct rdo_reg_def *def,
			   const char *needle)
{
	char err[256] = "";
	size_t before = rdo_regmap_count(map);
	int rc = rdo_regmap_add_reg(map, "dma", def, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "dma.%s: got %d (%s)", def->name, rc, err);
	cr_assert(strstr(err, needle), "message \"%s\" lacks \"%s\"", err, needle);
	cr_assert_eq(rdo_regmap_count(map), before);
	struct rdo_target t;
	char full[128];
	snprintf(full, sizeof(full), "dma.%s", def->name);
	cr_assert_eq(rdo_regmap_resolve(map, full, &t, err, sizeof(err)), -ENOENT,
		     "a refused register must not be resolvable");
}

Test(regmap, overlapping_fields)
{
	struct rdo_regmap *map = new_map();
	struct rdo_field f[] = {{.name = "low", .lsb = 0, .msb = 3},
				{.name = "mid", .lsb = 2, .msb = 5}};
	struct rdo_reg_def d = reg32("r", 0);
	d.fields = f;
	d.nfields = 2;
	expect_bad_def(map, &d, "overlaps field low");
	f[1].name = "low";
	f[1].lsb = 8;
	f[1].msb = 9;
	expect_bad_def(map, &d, "field \"low\" is defined twice");
	f[1].name = "mid";
	f[1].lsb = 4;
	f[1].msb = 5;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	rdo_regmap_destroy(&map);
}

Test(regmap, field_beyond_width)
{
	struct rdo_regmap *map = new_map();
	struct rdo_field f = {.name = "top", .lsb = 16, .msb = 16};
	struct rdo_reg_def d = reg32("r", 0);
	d.width = 16;
	d.fields = &f;
	d.nfields = 1;
	expect_refused(map, "dma", &d, -EINVAL, "do not fit a 16-bit register");
	f = (struct rdo_field){.name = "rev", .lsb = 3, .msb = 1};
	expect_refused(map, "dma", &d, -EINVAL, "high:low");
	f = (struct rdo_field){.name = "bad name", .lsb = 0, .msb = 1};
	expect_refused(map, "dma", &d, -EINVAL, "field name \"bad name\" is not valid");
	f = (struct rdo_field){.name = "top", .lsb = 15, .msb = 15};
	char err[256] = "";
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	rdo_regmap_destroy(&map);
}

Test(regmap, reset_wider_than_width)
{
	struct rdo_regmap *map = new_map();
	struct rdo_reg_def d = reg32("r", 0);
	d.width = 8;
	d.reset = 0x100;
	expect_refused(map, "dma", &d, -EINVAL, "does not fit in 8 bits");
	d.width = 32;
	d.reset = 0x100000000ull;
	expect_refused(map, "dma", &d, -EINVAL, "does not fit in 32 bits");
	d.reset = 0xffffffff;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	rdo_regmap_destroy(&map);
}

Test(regmap, enum_value_wider_than_field)
{
	struct rdo_regmap *map = new_map();
	struct rdo_enum v[] = {{"a", 0}, {"b", 4}};
	struct rdo_field f = {.name = "sel", .lsb = 2, .msb = 3, .values = v, .nvalues = 2};
	struct rdo_reg_def d = reg32("r", 0);
	d.fields = &f;
	d.nfields = 1;
	expect_refused(map, "dma", &d, -EINVAL, "value b = 4 does not fit in 2 bits");
	v[1].value = 3;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	rdo_regmap_destroy(&map);
}

Test(regmap, duplicate_enum_names)
{
	struct rdo_regmap *map = new_map();
	struct rdo_enum v[] = {{"on", 1}, {"on", 0}};
	struct rdo_field f = {.name = "sel", .lsb = 0, .msb = 0, .values = v, .nvalues = 2};
	struct rdo_reg_def d = reg32("r", 0);
	d.fields = &f;
	d.nfields = 1;
	expect_bad_def(map, &d, "value \"on\" is defined twice");
	v[1].name = "9off";
	expect_refused(map, "dma", &d, -EINVAL, "value name \"9off\" is not valid");
	rdo_regmap_destroy(&map);
}

Test(regmap, misaligned_offset)
{
	struct rdo_regmap *map = new_map();
	struct rdo_reg_def d = reg32("r", 0x2);
	expect_refused(map, "dma", &d, -EINVAL, "is not aligned");
	d.width = 64;
	d.offset = 0x4;
	expect_refused(map, "dma", &d, -EINVAL, "is not aligned to its width of 64 bits");
	d.width = 16;
	d.offset = 0x2;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	d = reg32("b", 0x5);
	d.width = 8;
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	rdo_regmap_destroy(&map);
}

Test(regmap, bad_width)
{
	struct rdo_regmap *map = new_map();
	static const unsigned widths[] = {0, 1, 12, 24, 48, 128};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(widths); i++) {
		struct rdo_reg_def d = reg32("r", 0);
		d.width = widths[i];
		expect_refused(map, "dma", &d, -EINVAL, "is not one of 8, 16, 32, 64");
	}
	rdo_regmap_destroy(&map);
}

Test(regmap, bad_access)
{
	struct rdo_regmap *map = new_map();
	struct rdo_reg_def d = reg32("r", 0);
	d.access = (enum rdo_access)7;
	expect_refused(map, "dma", &d, -EINVAL, "access 7");
	rdo_regmap_destroy(&map);
}

Test(regmap, bad_register_names)
{
	struct rdo_regmap *map = new_map();
	static const char *const names[] = {
	    "",	   "1abc",	 "a.b",
	    "a-b", "with space", "abcdefghijabcdefghijabcdefghijabcdefghijabcdefgh"};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(names); i++) {
		struct rdo_reg_def d = reg32(names[i], 0);
		expect_refused(map, "dma", &d, -EINVAL, "is not valid");
	}
	struct rdo_reg_def d = reg32(NULL, 0);
	expect_refused(map, "dma", &d, -EINVAL, "is not valid");
	d = reg32("ok", 0);
	expect_refused(map, "nobank", &d, -ENOENT, "no bank \"nobank\"");
	rdo_regmap_destroy(&map);
}

Test(regmap, valid_name)
{
	char name[RDO_NAME_MAX + 1];
	memset(name, 'a', sizeof(name));
	name[RDO_NAME_MAX - 1] = '\0';
	cr_assert(rdo_regmap_valid_name(name), "%d characters are allowed", RDO_NAME_MAX - 1);
	name[RDO_NAME_MAX - 1] = 'a';
	name[RDO_NAME_MAX] = '\0';
	cr_assert_not(rdo_regmap_valid_name(name));
	cr_assert(rdo_regmap_valid_name("_x9"));
	cr_assert_not(rdo_regmap_valid_name("9x"));
	cr_assert_not(rdo_regmap_valid_name(""));
	cr_assert_not(rdo_regmap_valid_name(NULL));
}

Test(regmap, bank_errors)
{
	struct rdo_regmap *map = new_map();
	char err[256] = "";
	cr_assert_eq(rdo_regmap_add_bank(map, "ctrl", 0, 0x200, NULL, err, sizeof(err)), -EEXIST);
	cr_assert(strstr(err, "bank \"ctrl\" is defined twice"), "%s", err);
	cr_assert_eq(rdo_regmap_bank(map, "ctrl")->base, 0x100, "the first bank stays");
	cr_assert_eq(rdo_regmap_add_bank(map, "x y", 0, 0, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "is not valid"), "%s", err);
	cr_assert_eq(rdo_regmap_add_bank(map, "far", 6, 0, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "bar 6 does not exist"), "%s", err);
	cr_assert_null(rdo_regmap_bank(map, "far"));
	cr_assert_null(rdo_regmap_bank(map, "x y"));
	const struct rdo_bank *b = rdo_regmap_bank(map, "aux");
	cr_assert_not_null(b);
	cr_assert_eq(b->bar, 1);
	cr_assert_str_eq(b->description, "", "a NULL description reads as empty");
	cr_assert_str_eq(rdo_regmap_bank(map, "ctrl")->description, "Control.");
	rdo_regmap_destroy(&map);
}

Test(regmap, bind_bars_refuses_register_outside)
{
	struct rdo_regmap *map = new_map();
	char err[256] = "";
	struct rdo_reg_def d = reg32("last", 0xefc); /* dma base 0x1000: ends at 0x2000 */
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);

	uint64_t small[] = {0x1000};
	cr_assert_eq(rdo_regmap_bind_bars(map, 1, small, err, sizeof(err)), -ERANGE);
	cr_assert(strstr(err, "dma.last"), "the message names the offender: %s", err);
	/* A failed bind binds nothing: the map still takes any offset. */
	d = reg32("far", 0x100000);
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);

	uint64_t sizes[] = {0x200000, 0x1000};
	cr_assert_eq(rdo_regmap_bind_bars(map, 2, sizes, err, sizeof(err)), 0, "%s", err);
	/* A register in a BAR the card lacks fails the bind too. */
	struct rdo_regmap *map2 = new_map();
	d = reg32("x", 0);
	cr_assert_eq(rdo_regmap_add_reg(map2, "aux", &d, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rdo_regmap_bind_bars(map2, 1, sizes, err, sizeof(err)), -ERANGE);
	cr_assert(strstr(err, "aux.x: the card has no BAR 1"), "%s", err);
	rdo_regmap_destroy(&map2);
	rdo_regmap_destroy(&map);
}

Test(regmap, add_after_bind_is_checked)
{
	struct rdo_regmap *map = new_map();
	char err[256] = "";
	uint64_t sizes[] = {0x2000};
	cr_assert_eq(rdo_regmap_bind_bars(map, 1, sizes, err, sizeof(err)), 0, "%s", err);

	struct rdo_reg_def d = reg32("out", 0x1000); /* 0x2000: the first byte past the BAR */
	expect_refused(map, "dma", &d, -ERANGE, "is outside BAR 0");
	d = reg32("wide", 0xff8);
	d.width = 64;
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0,
		     "the last 8 bytes fit: %s", err);
	d = reg32("huge", 0xfffffffffffff000ull);
	expect_refused(map, "dma", &d, -ERANGE, "offset overflows");
	d = reg32("y", 0);
	expect_refused(map, "aux", &d, -ERANGE, "the card has no BAR 1");
	rdo_regmap_destroy(&map);
}

Test(regmap, add_bank_reg_all_or_nothing)
{
	struct rdo_regmap *map = new_map();
	char err[256] = "";
	size_t before = rdo_regmap_count(map);

	struct rdo_reg_def bad = reg32("r", 0x2);
	cr_assert_eq(rdo_regmap_add_bank_reg(map, "newb", 0, 0x4000, NULL, &bad, err, sizeof(err)),
		     -EINVAL);
	cr_assert(strstr(err, "newb.r"), "%s", err);
	cr_assert_null(rdo_regmap_bank(map, "newb"), "a failed add must not leave the bank");
	cr_assert_eq(rdo_regmap_count(map), before);

	/* A clash with an existing register leaves no bank either. */
	struct rdo_reg_def clash = reg32("r", 0x0);
	cr_assert_eq(rdo_regmap_add_bank_reg(map, "newb", 0, 0x100, NULL, &clash, err, sizeof(err)),
		     -EEXIST);
	cr_assert_null(rdo_regmap_bank(map, "newb"));
	cr_assert_eq(rdo_regmap_count(map), before);

	/* An existing bank name is refused and the existing bank is untouched. */
	struct rdo_reg_def ok = reg32("r", 0x40);
	cr_assert_eq(rdo_regmap_add_bank_reg(map, "ctrl", 0, 0x8000, NULL, &ok, err, sizeof(err)),
		     -EEXIST);
	cr_assert_eq(rdo_regmap_bank(map, "ctrl")->base, 0x100);
	cr_assert_eq(rdo_regmap_count(map), before);

	cr_assert_eq(rdo_regmap_add_bank_reg(map, "newb", 0, 0x4000, "New.", &ok, err, sizeof(err)),
		     0, "%s", err);
	const struct rdo_bank *b = rdo_regmap_bank(map, "newb");
	cr_assert_not_null(b);
	cr_assert_eq(b->base, 0x4000);
	struct rdo_target t;
	cr_assert_eq(rdo_regmap_resolve(map, "newb.r", &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.offset, 0x4040);
	cr_assert_eq(t.reg->bank, b);
	cr_assert_eq(rdo_regmap_count(map), before + 1);
	rdo_regmap_destroy(&map);
}

Test(regmap, failed_add_keeps_count_and_order)
{
	struct rdo_regmap *map = new_map();
	char err[256] = "";
	struct rdo_reg_def d = reg32("status", 0x8);
	cr_assert_eq(rdo_regmap_add_reg(map, "ctrl", &d, err, sizeof(err)), 0, "%s", err);
	const struct rdo_reg *first = rdo_regmap_at(map, 0), *second = rdo_regmap_at(map, 1);

	struct rdo_reg_def bad[] = {reg32("status", 0x20), reg32("x", 0x9), reg32("x", 0x8),
				    reg32("1x", 0x30)};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(bad); i++) {
		cr_assert_neq(rdo_regmap_add_reg(map, "ctrl", &bad[i], err, sizeof(err)), 0);
		cr_assert_eq(rdo_regmap_count(map), 2);
		cr_assert_eq(rdo_regmap_at(map, 0), first);
		cr_assert_eq(rdo_regmap_at(map, 1), second);
		cr_assert_null(rdo_regmap_at(map, 2));
	}
	rdo_regmap_destroy(&map);
}

Test(regmap, listing_order)
{
	struct rdo_regmap *map = new_map(); /* ctrl.config at bar0:0x100 */
	char err[256] = "";
	struct {
		const char *bank, *name;
		uint64_t offset;
	} adds[] = {{"aux", "z", 0x0}, {"dma", "b", 0x8},  {"ctrl", "y", 0x4},
		    {"dma", "a", 0x0}, {"aux", "a", 0x10}, {"ctrl", "early", 0x200}};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(adds); i++) {
		struct rdo_reg_def d = reg32(adds[i].name, adds[i].offset);
		cr_assert_eq(rdo_regmap_add_reg(map, adds[i].bank, &d, err, sizeof(err)), 0, "%s",
			     err);
	}
	static const char *const want[] = {"ctrl.config", "ctrl.y", "ctrl.early", "dma.a",
					   "dma.b",	  "aux.z",  "aux.a"};
	cr_assert_eq(rdo_regmap_count(map), RDO_ARRAY_SIZE(want));
	for (size_t i = 0; i < RDO_ARRAY_SIZE(want); i++)
		cr_assert_str_eq(rdo_regmap_at(map, i)->name, want[i], "position %zu", i);
	for (size_t i = 1; i < RDO_ARRAY_SIZE(want); i++) {
		const struct rdo_reg *a = rdo_regmap_at(map, i - 1), *b = rdo_regmap_at(map, i);
		cr_assert(a->bar < b->bar || (a->bar == b->bar && a->offset < b->offset));
	}
	cr_assert_null(rdo_regmap_at(map, RDO_ARRAY_SIZE(want)));
	rdo_regmap_destroy(&map);
}

Test(regmap, definitions_are_copied)
{
	struct rdo_regmap *map = rdo_regmap_create("m", "");
	char err[256] = "";
	char bank[] = "bank", reg[] = "reg", field[] = "fld", sym[] = "on", desc[] = "Desc.";
	cr_assert_eq(rdo_regmap_add_bank(map, bank, 0, 0, desc, err, sizeof(err)), 0);
	struct rdo_enum e = {sym, 1};
	struct rdo_field f = {
	    .name = field, .lsb = 0, .msb = 0, .description = desc, .values = &e, .nvalues = 1};
	struct rdo_reg_def d = reg32(reg, 0);
	d.description = desc;
	d.fields = &f;
	d.nfields = 1;
	cr_assert_eq(rdo_regmap_add_reg(map, bank, &d, err, sizeof(err)), 0, "%s", err);
	memset(bank, 'x', 4);
	memset(reg, 'x', 3);
	memset(field, 'x', 3);
	memset(sym, 'x', 2);
	memset(desc, 'x', 5);
	struct rdo_target t;
	cr_assert_eq(rdo_regmap_resolve(map, "bank.reg.fld", &t, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(t.reg->description, "Desc.");
	cr_assert_str_eq(t.field->description, "Desc.");
	cr_assert_str_eq(rdo_field_symbol(t.field, 1), "on");
	cr_assert_str_eq(rdo_regmap_bank(map, "bank")->description, "Desc.");
	rdo_regmap_destroy(&map);
}

Test(regmap, field_helpers)
{
	struct rdo_regmap *map = new_map();
	struct rdo_target t;
	char err[256] = "";
	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.mode", &t, err, sizeof(err)), 0);
	const struct rdo_field *mode = t.field;
	cr_assert_eq(rdo_field_mask(mode), 0x30);
	cr_assert_eq(rdo_field_width(mode), 2);
	cr_assert_eq(rdo_field_get(mode, 0xffffffef), 0x2);
	cr_assert_eq(rdo_field_get(mode, 0x10), 0x1);
	cr_assert_str_eq(rdo_field_symbol(mode, 2), "test");
	cr_assert_str_eq(rdo_field_symbol(mode, 0), "idle");
	cr_assert_null(rdo_field_symbol(mode, 3));
	uint64_t v = 99;
	cr_assert_eq(rdo_field_lookup_symbol(mode, "run", &v), 0);
	cr_assert_eq(v, 1);
	v = 99;
	cr_assert_eq(rdo_field_lookup_symbol(mode, "walk", &v), -ENOENT);
	cr_assert_eq(v, 99);

	cr_assert_eq(rdo_regmap_resolve(map, "ctrl.config.led", &t, err, sizeof(err)), 0);
	cr_assert_eq(rdo_field_mask(t.field), 0x1);
	cr_assert_eq(rdo_field_width(t.field), 1);
	cr_assert_null(rdo_field_symbol(t.field, 0), "led has no enum values");
	cr_assert_eq(rdo_field_lookup_symbol(t.field, "on", &v), -ENOENT);

	struct rdo_field all = {.name = "all", .lsb = 0, .msb = 63};
	cr_assert_eq(rdo_field_mask(&all), UINT64_MAX);
	cr_assert_eq(rdo_field_width(&all), 64);
	cr_assert_eq(rdo_field_get(&all, 0x8000000000000001ull), 0x8000000000000001ull);
	struct rdo_field top = {.name = "top", .lsb = 63, .msb = 63};
	cr_assert_eq(rdo_field_mask(&top), 0x8000000000000000ull);
	cr_assert_eq(rdo_field_get(&top, 0x8000000000000000ull), 1);
	rdo_regmap_destroy(&map);
}

Test(regmap, access_names)
{
	static const struct {
		const char *name;
		enum rdo_access a;
	} cases[] = {{"rw", RDO_ACCESS_RW},
		     {"ro", RDO_ACCESS_RO},
		     {"wo", RDO_ACCESS_WO},
		     {"w1c", RDO_ACCESS_W1C}};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(cases); i++) {
		enum rdo_access a = (enum rdo_access)99;
		cr_assert_eq(rdo_access_parse(cases[i].name, &a), 0);
		cr_assert_eq(a, cases[i].a);
		cr_assert_str_eq(rdo_access_name(cases[i].a), cases[i].name);
	}
	enum rdo_access a;
	cr_assert_eq(rdo_access_parse("rx", &a), -EINVAL);
	cr_assert_eq(rdo_access_parse("RW", &a), -EINVAL);
	cr_assert_str_eq(rdo_access_name((enum rdo_access)9), "?");
}

Test(regmap, identity_firmware_serial)
{
	struct rdo_regmap *map = new_map();
	char err[256] = "";
	uint64_t v = 1, lo = 1, hi = 1;
	cr_assert_null(rdo_regmap_identity(map, &v), "a new map declares no identity");
	cr_assert_null(rdo_regmap_firmware(map, &lo, &hi));
	cr_assert_null(rdo_regmap_serial(map));

	struct rdo_reg_def d = reg32("id", 0x0);
	d.access = RDO_ACCESS_RO;
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	d = reg32("fw", 0x4);
	d.access = RDO_ACCESS_RO;
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	d = reg32("sn", 0x8);
	d.width = 64;
	d.access = RDO_ACCESS_RO;
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);
	d = reg32("go", 0x10);
	d.access = RDO_ACCESS_WO;
	cr_assert_eq(rdo_regmap_add_reg(map, "dma", &d, err, sizeof(err)), 0, "%s", err);

	cr_assert_neq(rdo_regmap_set_identity(map, "dma.nope", 1, err, sizeof(err)), 0);
	cr_assert(strstr(err, "identity register dma.nope is not in the map"), "%s", err);
	cr_assert_neq(rdo_regmap_set_identity(map, "dma.go", 1, err, sizeof(err)), 0);
	cr_assert(strstr(err, "write-only"), "%s", err);
	cr_assert_null(rdo_regmap_identity(map, &v), "a refused identity is not set");

	cr_assert_eq(rdo_regmap_set_identity(map, "dma.id", 0x52444f31, err, sizeof(err)), 0, "%s",
		     err);
	const struct rdo_reg *r = rdo_regmap_identity(map, &v);
	cr_assert_not_null(r);
	cr_assert_str_eq(r->name, "dma.id");
	cr_assert_eq(v, 0x52444f31);

	cr_assert_neq(rdo_regmap_set_firmware(map, "dma.fw", 5, 4, err, sizeof(err)), 0);
	cr_assert(strstr(err, "is empty"), "%s", err);
	cr_assert_null(rdo_regmap_firmware(map, &lo, &hi));
	cr_assert_neq(rdo_regmap_set_firmware(map, "dma.nope", 1, 2, err, sizeof(err)), 0);
	cr_assert_eq(
	    rdo_regmap_set_firmware(map, "dma.fw", 0x01020000, 0x0102ffff, err, sizeof(err)), 0,
	    "%s", err);
	r = rdo_regmap_firmware(map, &lo, &hi);
	cr_assert_not_null(r);
	cr_assert_str_eq(r->name, "dma.fw");
	cr_assert_eq(lo, 0x01020000);
	cr_assert_eq(hi, 0x0102ffff);

	cr_assert_neq(rdo_regmap_set_serial(map, "dma.go", err, sizeof(err)), 0);
	cr_assert(strstr(err, "serial register dma.go is write-only"), "%s", err);
	cr_assert_null(rdo_regmap_serial(map));
	cr_assert_eq(rdo_regmap_set_serial(map, "dma.sn", err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(rdo_regmap_serial(map)->name, "dma.sn");
	cr_assert_eq(rdo_regmap_serial(map)->width, 64);
	rdo_regmap_destroy(&map);
}

Test(regmap, overlap_at_the_top_of_the_address_space)
{
	struct rdo_regmap *map = rdo_regmap_create("top", "test");
	char err[256];
	cr_assert_eq(
	    rdo_regmap_add_bank(map, "hi", 0, 0xfffffffffffffff0ull, NULL, err, sizeof(err)), 0);
	struct rdo_reg_def a = {.name = "a", .offset = 0x8, .width = 64};
	struct rdo_reg_def b = {.name = "b", .offset = 0x8, .width = 64};
	cr_assert_eq(rdo_regmap_add_reg(map, "hi", &a, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rdo_regmap_add_reg(map, "hi", &b, err, sizeof(err)), -EEXIST,
		     "a register ending at 2^64 must still be seen to overlap");
	rdo_regmap_destroy(&map);
}
