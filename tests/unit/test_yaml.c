#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "common/yaml.h"
#include "unit/yaml_files.h"

/* A document loaded from `text`; its file name stays in `path`, which must outlive it. */
static struct rdo_ydoc *load_doc(const char *text, char *path, char *err, size_t errlen)
{
	write_temp(text, path);
	struct rdo_ydoc *y = NULL;
	int rc = rdo_yaml_load(path, &y, err, errlen);
	unlink(path);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_not_null(y);
	return y;
}

/* A key type of the test's own: red, green or blue, as 1, 2, 3. */
static const char *const colours[] = {NULL, "red", "green", "blue"};

static int parse_colour(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
			uint64_t *out)
{
	const char *s = rdo_yaml_scalar(n);
	for (uint64_t i = 1; s && i < RDO_ARRAY_SIZE(colours); i++)
		if (strcmp(s, colours[i]) == 0)
			return *out = i, 0;
	return rdo_yaml_fail(y, n, "%s: expected red, green or blue", path);
}

static void print_colour(FILE *f, uint64_t v)
{
	fputs(colours[v], f);
}

static const struct rdo_ytype colour_type = {.parse = parse_colour, .print = print_colour};

/* One member of every kind an option table reads. */
struct sample {
	bool flag;
	unsigned count;
	size_t size;
	uint64_t rate;
	uint32_t id;
	char name[8];
	char file[PATH_MAX];
	struct rdo_endpoints bind;
	unsigned colour;
};

enum { KEY_FLAG, KEY_COUNT, KEY_SIZE };

static const struct rdo_yopt sample_opts[] = {
    [KEY_FLAG] = RDO_YOPT(struct sample, "flag", flag, RDO_YOPT_BOOL),
    [KEY_COUNT] = RDO_YOPT(struct sample, "count", count, RDO_YOPT_UINT, .min = 1, .max = 10),
    [KEY_SIZE] = RDO_YOPT(struct sample, "size", size, RDO_YOPT_SIZE, .min = 4096, .max = 1u << 30,
			  .step = 4096, .size = true),
    RDO_YOPT(struct sample, "rate", rate, RDO_YOPT_RATE, .max = UINT64_MAX, .size = true),
    RDO_YOPT(struct sample, "id", id, RDO_YOPT_UINT, .max = UINT32_MAX, .hex = true),
    RDO_YOPT(struct sample, "name", name, RDO_YOPT_STRING),
    RDO_YOPT(struct sample, "file", file, RDO_YOPT_PATH),
    RDO_YOPT(struct sample, "bind", bind, RDO_YOPT_ENDPOINTS),
    RDO_YOPT(struct sample, "colour", colour, RDO_YOPT_CUSTOM, .custom = &colour_type),
    {NULL},
};

/* Read `text` as a sample section over `s`: rdo_yaml_walk_opts's result. */
static int load_sample(const char *text, struct sample *s, char *path, char *err, size_t errlen)
{
	struct rdo_ydoc *y = load_doc(text, path, err, errlen);
	int rc = rdo_yaml_walk_opts(y, rdo_yaml_root(y), "", sample_opts, s, NULL);
	rdo_yaml_destroy(&y);
	return rc;
}

/* `text` as a sample section must fail at line:col with `needle` in the message. */
static void expect_sample_errors(const struct bad_yaml *bad, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char path[PATH_MAX], err[512] = "";
		struct sample s = {0};
		int rc = load_sample(bad[i].yaml, &s, path, err, sizeof(err));
		cr_assert_eq(rc, -EINVAL, "%s: gave %d: %s", bad[i].yaml, rc, err);
		expect_message(err, path, bad[i].line, bad[i].col, bad[i].needle);
	}
}

static void quiet(void)
{
	rdo_log_set_level(LOG_WARNING);
}

TestSuite(yaml, .init = quiet);

Test(yaml, load_errors)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_ydoc *y = NULL;
	const char *missing = "/tmp/rdo-test-config-does-not-exist.yaml";
	cr_assert_eq(rdo_yaml_load(missing, &y, err, sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "/tmp/rdo-test-config-does-not-exist.yaml: cannot open: No such "
			      "file or directory");
	cr_assert_null(y);

	static const struct bad_yaml bad[] = {
	    {"", 1, 1, "the file is empty: expected a mapping"},
	    {"# a comment\n", 1, 1, "the file is empty: expected a mapping"},
	    {"a: 1\n  b: 2\n", 2, 4, "not valid YAML: mapping values are not allowed"},
	    {"a: [1, 2\n", 2, 1, "not valid YAML"},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(bad); i++) {
		write_temp(bad[i].yaml, path);
		int rc = rdo_yaml_load(path, &y, err, sizeof(err));
		unlink(path);
		cr_assert_eq(rc, -EINVAL, "%s", bad[i].yaml);
		cr_assert_null(y);
		expect_message(err, path, bad[i].line, bad[i].col, bad[i].needle);
	}
	rdo_yaml_destroy(&y);
	cr_assert_null(y, "destroying nothing is fine");
}

Test(yaml, nodes)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_ydoc *y =
	    load_doc("top:\n  - one\n  - {k: v, n: 2}\nword: hello\n", path, err, sizeof(err));
	cr_assert_str_eq(rdo_yaml_file(y), path);
	const struct rdo_ynode *root = rdo_yaml_root(y);
	cr_assert_eq(rdo_yaml_kind(root), RDO_YMAP);
	cr_assert_str_eq(rdo_yaml_kind_name(root), "a mapping");
	cr_assert_null(rdo_yaml_scalar(root));
	cr_assert_eq(rdo_yaml_count(root), 2);

	const struct rdo_ynode *k, *v;
	rdo_yaml_pair(y, root, 0, &k, &v);
	cr_assert_str_eq(rdo_yaml_scalar(k), "top");
	cr_assert_eq(rdo_yaml_kind(v), RDO_YLIST);
	cr_assert_str_eq(rdo_yaml_kind_name(v), "a list");
	cr_assert_eq(rdo_yaml_count(v), 2);
	const struct rdo_ynode *one = rdo_yaml_item(y, v, 0), *map = rdo_yaml_item(y, v, 1);
	cr_assert_eq(rdo_yaml_kind(one), RDO_YSCALAR);
	cr_assert_str_eq(rdo_yaml_kind_name(one), "a scalar");
	cr_assert_str_eq(rdo_yaml_scalar(one), "one");
	cr_assert_eq(rdo_yaml_count(one), 0);
	cr_assert_eq(rdo_yaml_line(one), 2);
	cr_assert_eq(rdo_yaml_column(one), 5);
	cr_assert_eq(rdo_yaml_count(map), 2);
	cr_assert_eq(rdo_yaml_line(map), 3);
	cr_assert_eq(rdo_yaml_column(map), 5);

	rdo_yaml_pair(y, root, 1, &k, &v);
	cr_assert_str_eq(rdo_yaml_scalar(k), "word");
	const char *text = NULL;
	cr_assert_eq(rdo_yaml_get_text(y, v, "word", &text), 0);
	cr_assert_str_eq(text, "hello");
	cr_assert_eq(rdo_yaml_expect(y, v, RDO_YSCALAR, "word"), 0);
	cr_assert_eq(rdo_yaml_expect(y, map, RDO_YLIST, "top[1]"), -EINVAL);
	expect_message(err, path, 3, 5, "top[1]: expected a list, got a mapping");
	cr_assert_eq(rdo_yaml_get_text(y, map, "top[1]", &text), -EINVAL);
	expect_message(err, path, 3, 5, "top[1]: expected a scalar, got a mapping");
	cr_assert_str_eq(text, "hello", "a failed getter leaves its output alone");
	rdo_yaml_destroy(&y);
	cr_assert_null(y);
}

Test(yaml, fail_names_the_place)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_ydoc *y = load_doc("a: 1\nb:\n    c: 2\n", path, err, sizeof(err));
	const struct rdo_ynode *k, *b, *ck, *c;
	rdo_yaml_pair(y, rdo_yaml_root(y), 1, &k, &b);
	rdo_yaml_pair(y, b, 0, &ck, &c);
	cr_assert_eq(rdo_yaml_fail(y, c, "b.c: %d is wrong", 2), -EINVAL);
	char want[PATH_MAX + 64];
	snprintf(want, sizeof(want), "%s:3:8: b.c: 2 is wrong", path);
	cr_assert_str_eq(err, want);
	rdo_yaml_destroy(&y);
}

Test(yaml, option_table_reads_every_type)
{
	char path[PATH_MAX], err[512] = "";
	struct sample s = {.count = 7, .name = "keep"};
	int rc = load_sample("flag: yes\nsize: 8KiB\nrate: 100MB/s\nid: 0xcafe_f00d\n"
			     "file: data/x.rdo\nbind: [\"tcp://127.0.0.1:1\", \"ipc:///tmp/b\"]\n"
			     "colour: green\n",
			     &s, path, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(s.flag);
	cr_assert_eq(s.count, 7, "keys not given keep their value");
	cr_assert_str_eq(s.name, "keep");
	cr_assert_eq(s.size, 8192);
	cr_assert_eq(s.rate, 100000000);
	cr_assert_eq(s.id, 0xcafef00d);
	cr_assert_str_eq(s.file, "/tmp/data/x.rdo", "resolved beside the file");
	cr_assert_eq(s.bind.n, 2);
	cr_assert_str_eq(s.bind.ep[0], "tcp://127.0.0.1:1");
	cr_assert_str_eq(s.bind.ep[1], "ipc:///tmp/b");
	cr_assert_eq(s.colour, 2);

	rc = load_sample("count: 10\nname: seven77\nfile: /abs/f\nrate: 1GiB\nflag: off\n", &s,
			 path, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(s.count, 10);
	cr_assert_str_eq(s.name, "seven77");
	cr_assert_str_eq(s.file, "/abs/f");
	cr_assert_eq(s.rate, 1ull << 30, "the /s of a rate is optional");
	cr_assert_not(s.flag);
	rc = load_sample("file: \"\"\n", &s, path, err, sizeof(err));
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(s.file, "", "an empty path stays empty");
}

Test(yaml, option_table_errors)
{
	static const struct bad_yaml bad[] = {
	    {"count: 0\n", 1, 8, "count: 0 is too small (at least 1)"},
	    {"count: 11\n", 1, 8, "count: 11 is too large (at most 10)"},
	    {"count: ten\n", 1, 8,
	     "count: expected an integer, got \"ten\" (write decimal, 0x hex or 0b binary)"},
	    {"count: {}\n", 1, 8, "count: expected an integer, got a mapping"},
	    {"count: 0x1_0000_0000_0000_0000\n", 1, 8,
	     "count: 0x1_0000_0000_0000_0000 does not fit in 64 bits"},
	    {"size: 1000\n", 1, 7, "size: 1000 is too small (at least 4KiB)"},
	    {"size: 2GiB\n", 1, 7, "size: 2GiB is too large (at most 1GiB)"},
	    {"size: 6000\n", 1, 7, "size: 6000 is not a multiple of 4KiB"},
	    {"size: 8KiB/s\n", 1, 7,
	     "size: expected a size like 4096, 8KiB or 1MiB, got the rate \"8KiB/s\" (drop the "
	     "/s)"},
	    {"size: big\n", 1, 7,
	     "size: expected a size like 4096, 8KiB or 1MiB, got \"big\" (units K, M, G are "
	     "powers of 1000, KiB, MiB, GiB powers of 1024)"},
	    {"size: [1]\n", 1, 7, "size: expected a size like 4096, 8KiB or 1MiB, got a list"},
	    {"rate: fast\n", 1, 7, "rate: expected a rate like 100MB/s, 1GiB/s or 0, got \"fast\""},
	    {"rate: 20000000000GB/s\n", 1, 7, "rate: 20000000000GB/s does not fit in 64 bits"},
	    {"id: 0x1_0000_0000\n", 1, 5, "id: 4294967296 is too large (at most 4294967295)"},
	    {"flag: maybe\n", 1, 7, "flag: expected true or false, got \"maybe\""},
	    {"flag: [true]\n", 1, 7, "flag: expected true or false, got a list"},
	    {"name: eight888\n", 1, 7, "name: longer than 7 characters"},
	    {"name: [a]\n", 1, 7, "name: expected a string, got a list"},
	    {"bind: []\n", 1, 7, "bind: expected 1 to 8 endpoints, got 0"},
	    {"bind: tcp://127.0.0.1:1\n", 1, 7, "bind: expected a list, got a scalar"},
	    {"bind: [\"http://x\"]\n", 1, 8,
	     "bind: expected tcp://HOST:PORT or ipc://PATH, got \"http://x\""},
	    {"bind: [ipc:///a, ipc:///a]\n", 1, 18, "bind: \"ipc:///a\" is listed twice"},
	    {"colour: pink\n", 1, 9, "colour: expected red, green or blue"},
	    {"flag: true\nshape: round\n", 2, 1,
	     "shape: unknown key (expected one of: flag, count, size, rate, id, name, file, "
	     "bind, colour)"},
	    {"flag: true\nflag: false\n", 2, 1, "flag: given twice"},
	    {"- flag\n", 1, 1, "top level: expected a mapping, got a list"},
	    {"? [a]\n: 1\n", 1, 3, ": keys must be plain words"},
	};
	expect_sample_errors(bad, RDO_ARRAY_SIZE(bad));
}

/* Where each key was given, for checks across keys; NULL for keys not given. */
Test(yaml, option_table_nodes)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_ydoc *y = load_doc("size: 8KiB\nflag: true\n", path, err, sizeof(err));
	struct sample s = {0};
	const struct rdo_ynode *nodes[RDO_YOPT_MAX] = {NULL};
	cr_assert_eq(rdo_yaml_walk_opts(y, rdo_yaml_root(y), "", sample_opts, &s, nodes), 0, "%s",
		     err);
	cr_assert_not_null(nodes[KEY_FLAG]);
	cr_assert_eq(rdo_yaml_line(nodes[KEY_FLAG]), 2);
	cr_assert_not_null(nodes[KEY_SIZE]);
	cr_assert_eq(rdo_yaml_line(nodes[KEY_SIZE]), 1);
	cr_assert_eq(rdo_yaml_column(nodes[KEY_SIZE]), 7);
	cr_assert_null(nodes[KEY_COUNT]);
	rdo_yaml_destroy(&y);
}

struct visits {
	int keys[4];
	char paths[4][64];
	int n;
	int fail_at; /* the visit that fails, or -1 */
};

static int record_visit(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *value,
			const char *path)
{
	struct visits *v = ctx;
	if (v->n == v->fail_at)
		return rdo_yaml_fail(y, value, "%s: refused", path);
	v->keys[v->n] = key;
	rdo_strlcpy(v->paths[v->n], path, sizeof(v->paths[0]));
	v->n++;
	return 0;
}

Test(yaml, walk_map_visits_in_file_order)
{
	static const char *const keys[] = {"alpha", "beta", "gamma", NULL};
	char path[PATH_MAX], err[512] = "";
	struct rdo_ydoc *y = load_doc("gamma: 1\nalpha: 2\n", path, err, sizeof(err));
	struct visits v = {.fail_at = -1};
	cr_assert_eq(rdo_yaml_walk_map(y, rdo_yaml_root(y), "sec", keys, record_visit, &v), 0);
	cr_assert_eq(v.n, 2);
	cr_assert_eq(v.keys[0], 2);
	cr_assert_str_eq(v.paths[0], "sec.gamma");
	cr_assert_eq(v.keys[1], 0);
	cr_assert_str_eq(v.paths[1], "sec.alpha");

	v = (struct visits){.fail_at = 1};
	cr_assert_eq(rdo_yaml_walk_map(y, rdo_yaml_root(y), "", keys, record_visit, &v), -EINVAL);
	cr_assert_eq(v.n, 1, "the first error ends the walk");
	cr_assert_str_eq(v.paths[0], "gamma", "the top level's keys have bare paths");
	expect_message(err, path, 2, 8, "alpha: refused");
	rdo_yaml_destroy(&y);
}

Test(yaml, getters)
{
	char path[PATH_MAX], err[512] = "";
	struct rdo_ydoc *y =
	    load_doc("[5, 0b101, \"x\", on, no, debug, loud, \"\", 0x_]\n", path, err, sizeof(err));
	const struct rdo_ynode *list = rdo_yaml_root(y);
	unsigned u = 99;
	uint64_t u64 = 0;
	bool b = false;
	int level = -1;
	cr_assert_eq(rdo_yaml_get_uint(y, rdo_yaml_item(y, list, 0), "n", 5, 5, &u), 0);
	cr_assert_eq(u, 5);
	cr_assert_eq(rdo_yaml_get_uint(y, rdo_yaml_item(y, list, 1), "n", 6, 9, &u), -EINVAL);
	expect_message(err, path, 1, 5, "n: 5 is too small (at least 6)");
	cr_assert_eq(u, 5, "a refused value is not stored");
	cr_assert_eq(rdo_yaml_get_u64(y, rdo_yaml_item(y, list, 1), "n", &u64), 0);
	cr_assert_eq(u64, 5);
	cr_assert_eq(rdo_yaml_get_u64(y, rdo_yaml_item(y, list, 8), "n", &u64), -EINVAL);
	expect_message(err, path, 1, 42, "n: expected an integer, got \"0x_\"");
	cr_assert_eq(rdo_yaml_get_size(y, rdo_yaml_item(y, list, 0), "s", &u64), 0);
	cr_assert_eq(u64, 5);
	cr_assert_eq(rdo_yaml_get_rate(y, rdo_yaml_item(y, list, 2), "r", &u64), -EINVAL);
	expect_message(err, path, 1, 12, "r: expected a rate like 100MB/s, 1GiB/s or 0, got \"x\"");
	cr_assert_eq(rdo_yaml_get_bool(y, rdo_yaml_item(y, list, 3), "b", &b), 0);
	cr_assert(b);
	cr_assert_eq(rdo_yaml_get_bool(y, rdo_yaml_item(y, list, 4), "b", &b), 0);
	cr_assert_not(b);
	cr_assert_eq(rdo_yaml_get_log_level(y, rdo_yaml_item(y, list, 5), "log_level", &level), 0);
	cr_assert_eq(level, LOG_DEBUG);
	cr_assert_eq(rdo_yaml_get_log_level(y, rdo_yaml_item(y, list, 6), "log_level", &level),
		     -EINVAL);
	expect_message(err, path, 1, 32,
		       "log_level: expected err, warning, notice, info or debug, got \"loud\"");
	cr_assert_eq(level, LOG_DEBUG);
	char s[4] = "abc";
	cr_assert_eq(rdo_yaml_get_str(y, rdo_yaml_item(y, list, 7), "s", s, sizeof(s)), 0);
	cr_assert_str_eq(s, "");
	cr_assert_eq(rdo_yaml_get_str(y, list, "s", s, sizeof(s)), -EINVAL);
	expect_message(err, path, 1, 1, "s: expected a string, got a list");
	struct rdo_endpoints e = {.n = 0};
	cr_assert_eq(rdo_yaml_get_endpoints(y, list, "bind", &e), -EINVAL);
	expect_message(err, path, 1, 1, "bind: expected 1 to 8 endpoints, got 9");
	rdo_yaml_destroy(&y);
}

Test(yaml, path_relative)
{
	char dst[64];
	cr_assert_eq(rdo_yaml_path_relative(dst, sizeof(dst), "/etc/rdo/a.yaml", "maps/m.yaml"), 0);
	cr_assert_str_eq(dst, "/etc/rdo/maps/m.yaml");
	cr_assert_eq(rdo_yaml_path_relative(dst, sizeof(dst), "a.yaml", "m.yaml"), 0);
	cr_assert_str_eq(dst, "./m.yaml");
	cr_assert_eq(rdo_yaml_path_relative(dst, sizeof(dst), "/etc/rdo/a.yaml", "/abs/m"), 0);
	cr_assert_str_eq(dst, "/abs/m");
	char tiny[8];
	cr_assert_eq(rdo_yaml_path_relative(tiny, sizeof(tiny), "/etc/rdo/a.yaml", "m.yaml"),
		     -ENAMETOOLONG);
	cr_assert_eq(rdo_yaml_path_relative(tiny, sizeof(tiny), "/a", "/abcdefgh"), -ENAMETOOLONG);
}

/* Print `s` as a sample section; caller frees. */
static char *printed_sample(const struct sample *s, int indent, const char *section)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	cr_assert_not_null(f);
	rdo_yaml_print_opts(f, indent, section, sample_opts, s);
	fclose(f);
	return buf;
}

/* A printed section is YAML that reads back to the same values. */
Test(yaml, printed_options_read_back)
{
	struct sample a, b;
	memset(&a, 0, sizeof(a)); /* padding too: the two are compared whole */
	memset(&b, 0, sizeof(b));
	a.flag = true;
	a.count = 3;
	a.size = 1u << 20;
	a.rate = 50000000;
	a.id = 0xbeef;
	rdo_strlcpy(a.name, "q\"b\\", sizeof(a.name));
	rdo_strlcpy(a.file, "/no/such/file", sizeof(a.file));
	a.colour = 3;
	rdo_endpoints_add(&a.bind, "tcp://127.0.0.1:7");
	rdo_endpoints_add(&a.bind, "ipc:///tmp/x");
	char *text = printed_sample(&a, 2, "sample");
	cr_assert_str_eq(text, "  sample:\n"
			       "    flag: true\n"
			       "    count: 3\n"
			       "    size: 1MiB\n"
			       "    rate: 50MB/s\n"
			       "    id: 0xbeef\n"
			       "    name: \"q\\\"b\\\\\"\n"
			       "    file: \"/no/such/file\"\n"
			       "    bind: [\"tcp://127.0.0.1:7\", \"ipc:///tmp/x\"]\n"
			       "    colour: blue\n");
	free(text);
	text = printed_sample(&a, 0, NULL);
	char path[PATH_MAX], err[512] = "";
	int rc = load_sample(text, &b, path, err, sizeof(err));
	free(text);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(memcmp(&a, &b, sizeof(a)), 0, "a value read back differs");

	char buf[32];
	cr_assert_str_eq(rdo_yaml_fmt_size(buf, sizeof(buf), 3u << 30), "3GiB");
	cr_assert_str_eq(rdo_yaml_fmt_size(buf, sizeof(buf), 6144), "6KiB");
	cr_assert_str_eq(rdo_yaml_fmt_size(buf, sizeof(buf), 1000), "1000");
	cr_assert_str_eq(rdo_yaml_fmt_size(buf, sizeof(buf), 0), "0");
}
