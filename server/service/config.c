#include "service/config.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/log.h"
#include "net/control.h"
#include "common/util.h"

#define RDO_BANK_MAX_COUNT 64 /* banks in one bank array */

/* A loaded YAML document and where to report what is wrong with it. */
struct ydoc {
	const char *file;
	yaml_document_t doc;
	char *err;
	size_t errlen;
};

static int yfail(struct ydoc *y, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int yfail(struct ydoc *y, const yaml_node_t *n, const char *fmt, ...)
{
	int len = snprintf(y->err, y->errlen, "%s:%zu:%zu: ", y->file, n->start_mark.line + 1,
			   n->start_mark.column + 1);
	if (len < 0 || (size_t)len >= y->errlen)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(y->err + len, y->errlen - (size_t)len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static yaml_node_t *ynode(struct ydoc *y, int index)
{
	return yaml_document_get_node(&y->doc, index);
}

static const char *kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE:
		return "a mapping";
	case YAML_SEQUENCE_NODE:
		return "a list";
	default:
		return "a scalar";
	}
}

static const char *scalar(const yaml_node_t *n)
{
	return (const char *)n->data.scalar.value;
}

/* Read the document of `file` into `y`: 0, or -errno with the reason in y->err. */
static int yload(struct ydoc *y, const char *file, char *err, size_t errlen)
{
	*y = (struct ydoc){.file = file, .err = err, .errlen = errlen};
	FILE *f = fopen(file, "rb");
	if (!f) {
		int rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
		return rc;
	}
	yaml_parser_t parser;
	yaml_parser_initialize(&parser);
	yaml_parser_set_input_file(&parser, f);
	int rc = 0;
	if (!yaml_parser_load(&parser, &y->doc)) {
		snprintf(err, errlen, "%s:%zu:%zu: not valid YAML: %s", file,
			 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
			 parser.problem ? parser.problem : "parse error");
		rc = -EINVAL;
	} else if (!yaml_document_get_root_node(&y->doc)) {
		snprintf(err, errlen, "%s:1:1: the file is empty: expected a mapping", file);
		yaml_document_delete(&y->doc);
		rc = -EINVAL;
	}
	yaml_parser_delete(&parser);
	fclose(f);
	return rc;
}

static int expect_kind(struct ydoc *y, const yaml_node_t *n, yaml_node_type_t type,
		       const char *path)
{
	if (n->type == type)
		return 0;
	const char *want = type == YAML_MAPPING_NODE	? "a mapping"
			   : type == YAML_SEQUENCE_NODE ? "a list"
							: "a scalar";
	return yfail(y, n, "%s: expected %s, got %s", path, want, kind_name(n));
}

static int get_u64(struct ydoc *y, const yaml_node_t *n, const char *path, uint64_t *out)
{
	if (n->type != YAML_SCALAR_NODE)
		return yfail(y, n, "%s: expected an integer, got %s", path, kind_name(n));
	int rc = rdo_parse_u64(scalar(n), out);
	if (rc == -ERANGE)
		return yfail(y, n, "%s: %s does not fit in 64 bits", path, scalar(n));
	if (rc)
		return yfail(y, n,
			     "%s: expected an integer, got \"%s\" (write decimal, 0x hex or 0b "
			     "binary)",
			     path, scalar(n));
	return 0;
}

/* What a number may be: min..max, and a multiple of `step` unless it is 0. */
struct limits {
	uint64_t min, max, step;
	bool size; /* show it in bytes with a unit */
	bool hex;  /* show it in hex (--check-config): serials, ids, versions */
};

/* Write `v` as the user would: "256MiB" for an exact binary size, else decimal. */
static const char *fmt_amount(char *buf, size_t cap, uint64_t v, bool size)
{
	static const char *const units[] = {"GiB", "MiB", "KiB"};
	for (size_t i = 0; size && v && i < RDO_ARRAY_SIZE(units); i++) {
		unsigned shift = 30 - 10 * (unsigned)i;
		if (v % (1ull << shift) == 0) {
			snprintf(buf, cap, "%llu%s", (unsigned long long)(v >> shift), units[i]);
			return buf;
		}
	}
	snprintf(buf, cap, "%llu", (unsigned long long)v);
	return buf;
}

static int check_limits(struct ydoc *y, const yaml_node_t *n, const char *path, uint64_t v,
			const struct limits *l)
{
	char got[32], lim[32];
	fmt_amount(got, sizeof(got), v, l->size);
	if (v < l->min)
		return yfail(y, n, "%s: %s is too small (at least %s)", path, got,
			     fmt_amount(lim, sizeof(lim), l->min, l->size));
	if (v > l->max)
		return yfail(y, n, "%s: %s is too large (at most %s)", path, got,
			     fmt_amount(lim, sizeof(lim), l->max, l->size));
	if (l->step > 1 && v % l->step)
		return yfail(y, n, "%s: %s is not a multiple of %s", path, got,
			     fmt_amount(lim, sizeof(lim), l->step, l->size));
	return 0;
}

static int get_uint(struct ydoc *y, const yaml_node_t *n, const char *path, uint64_t min,
		    uint64_t max, unsigned *out)
{
	uint64_t v;
	int rc = get_u64(y, n, path, &v);
	if (rc == 0)
		rc = check_limits(y, n, path, v, &(struct limits){.min = min, .max = max});
	if (rc == 0)
		*out = (unsigned)v;
	return rc;
}

/* A size ("1MiB", "4096") or, with `rate`, a rate ("100MB/s"; the "/s" is optional). */
static int get_size(struct ydoc *y, const yaml_node_t *n, const char *path, bool rate,
		    uint64_t *out)
{
	const char *want =
	    rate ? "a rate like 100MB/s, 1GiB/s or 0" : "a size like 4096, 8KiB or 1MiB";
	if (n->type != YAML_SCALAR_NODE)
		return yfail(y, n, "%s: expected %s, got %s", path, want, kind_name(n));
	size_t len = n->data.scalar.length;
	if (!rate && len > 2 && strcmp(scalar(n) + len - 2, "/s") == 0)
		return yfail(y, n, "%s: expected %s, got the rate \"%s\" (drop the /s)", path, want,
			     scalar(n));
	int rc = rdo_parse_size(scalar(n), out);
	if (rc == -ERANGE)
		return yfail(y, n, "%s: %s does not fit in 64 bits", path, scalar(n));
	if (rc)
		return yfail(y, n,
			     "%s: expected %s, got \"%s\" (units K, M, G are powers of 1000, KiB, "
			     "MiB, GiB powers of 1024)",
			     path, want, scalar(n));
	return 0;
}

static int get_str(struct ydoc *y, const yaml_node_t *n, const char *path, char *dst, size_t cap)
{
	if (n->type != YAML_SCALAR_NODE)
		return yfail(y, n, "%s: expected a string, got %s", path, kind_name(n));
	if (n->data.scalar.length >= cap)
		return yfail(y, n, "%s: longer than %zu characters", path, cap - 1);
	memcpy(dst, scalar(n), n->data.scalar.length + 1);
	return 0;
}

static int get_bool(struct ydoc *y, const yaml_node_t *n, const char *path, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no",
									       "off"};
	if (n->type == YAML_SCALAR_NODE)
		for (size_t i = 0; i < RDO_ARRAY_SIZE(yes); i++) {
			if (strcmp(scalar(n), yes[i]) == 0)
				return *out = true, 0;
			if (strcmp(scalar(n), no[i]) == 0)
				return *out = false, 0;
		}
	return yfail(y, n, "%s: expected true or false, got %s%s%s", path,
		     n->type == YAML_SCALAR_NODE ? "\"" : "",
		     n->type == YAML_SCALAR_NODE ? scalar(n) : kind_name(n),
		     n->type == YAML_SCALAR_NODE ? "\"" : "");
}

/*
 * Walk a mapping: for every key, find it in `keys` (NULL-terminated) and hand
 * its value to `visit` with the key's index. Unknown and repeated keys are
 * errors that list what is allowed.
 */
typedef int (*visit_fn)(struct ydoc *y, void *ctx, int key, const yaml_node_t *value,
			const char *path);

static int walk_map(struct ydoc *y, const yaml_node_t *map, const char *path,
		    const char *const *keys, visit_fn visit, void *ctx)
{
	int rc = expect_kind(y, map, YAML_MAPPING_NODE, path[0] ? path : "top level");
	if (rc)
		return rc;
	uint64_t seen = 0;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
	     p++) {
		yaml_node_t *k = ynode(y, p->key), *v = ynode(y, p->value);
		if (k->type != YAML_SCALAR_NODE)
			return yfail(y, k, "%s: keys must be plain words", path);
		int idx = -1;
		for (int i = 0; keys[i]; i++)
			if (strcmp(keys[i], scalar(k)) == 0)
				idx = i;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", scalar(k));
		if (idx < 0) {
			char allowed[512] = "";
			for (int i = 0; keys[i]; i++)
				snprintf(allowed + strlen(allowed),
					 sizeof(allowed) - strlen(allowed), "%s%s", i ? ", " : "",
					 keys[i]);
			return yfail(y, k, "%s: unknown key (expected one of: %s)", sub, allowed);
		}
		if (seen & (1ull << idx))
			return yfail(y, k, "%s: given twice", sub);
		seen |= 1ull << idx;
		rc = visit(y, ctx, idx, v, sub);
		if (rc)
			return rc;
	}
	return 0;
}

/* Resolve `rel` against the folder of `base`, unless it is absolute. */
static int path_relative_to(char *dst, size_t cap, const char *base, const char *rel)
{
	if (rel[0] == '/') {
		rdo_strlcpy(dst, rel, cap);
		return strlen(rel) < cap ? 0 : -ENAMETOOLONG;
	}
	char copy[PATH_MAX];
	rdo_strlcpy(copy, base, sizeof(copy));
	int n = snprintf(dst, cap, "%s/%s", dirname(copy), rel);
	return n >= 0 && (size_t)n < cap ? 0 : -ENAMETOOLONG;
}

void rdo_server_opts_init(struct rdo_server_opts *o)
{
	memset(o, 0, sizeof(*o));
	struct rdo_card_conf *c = &o->cards[0];
	o->ncards = 1;
	rdo_card_opts_init(&c->card);
	rdo_strlcpy(c->regmap_file, "config/regmaps/rdo-sim.yaml", sizeof(c->regmap_file));
	c->numa_node = -1;
	rdo_dma_opts_init(&c->dma);
	rdo_live_opts_init(&c->live);
	rdo_lossless_opts_init(&c->lossless);
	rdo_writer_opts_init(&c->writer);
	rdo_endpoints_add(&o->control, RDO_DEFAULT_CONTROL_TCP);
	rdo_endpoints_add(&o->control, RDO_DEFAULT_CONTROL_IPC);
	rdo_status_opts_init(&o->status);
	rdo_auth_opts_init(&o->security);
	rdo_metrics_opts_init(&o->metrics);
	/* systemd's RuntimeDirectory= (it may list several, colon-separated: the first) */
	const char *rt = getenv("RUNTIME_DIRECTORY");
	rdo_strlcpy(o->runtime_dir, rt && rt[0] ? rt : RDO_DEFAULT_RUNTIME_DIR,
		    sizeof(o->runtime_dir));
	o->runtime_dir[strcspn(o->runtime_dir, ":")] = '\0';
	o->log_level = LOG_INFO;
}

/*
 * The endpoints a socket binds, replacing the defaults: a list of 1 to
 * RDO_MAX_ENDPOINTS tcp:// or ipc:// addresses. Shared by every section with a
 * `bind` key, so that they all accept and refuse the same.
 */
static int get_endpoints(struct ydoc *y, const yaml_node_t *v, const char *path,
			 struct rdo_endpoints *e)
{
	int rc = expect_kind(y, v, YAML_SEQUENCE_NODE, path);
	if (rc)
		return rc;
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n == 0 || n > RDO_MAX_ENDPOINTS)
		return yfail(y, v, "%s: expected 1 to %d endpoints, got %zu", path,
			     RDO_MAX_ENDPOINTS, n);
	e->n = 0;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *en = ynode(y, v->data.sequence.items.start[i]);
		char ep[RDO_ENDPOINT_MAX];
		rc = get_str(y, en, path, ep, sizeof(ep));
		if (rc)
			return rc;
		if (!rdo_endpoint_valid(ep))
			return yfail(y, en,
				     "%s: expected tcp://HOST:PORT or ipc://PATH, got \"%s\"", path,
				     ep);
		for (size_t j = 0; j < e->n; j++)
			if (strcmp(e->ep[j], ep) == 0)
				return yfail(y, en, "%s: \"%s\" is listed twice", path, ep);
		rdo_endpoints_add(e, ep);
	}
	return 0;
}

/*
 * dma.links: the word "all", a list of link numbers, or a mask. "all" keeps
 * every bit set, so that it means all the links the card turns out to have.
 */
static int get_link_mask(struct ydoc *y, const yaml_node_t *v, const char *path, uint64_t *out)
{
	static const char want[] = "all, a list of link numbers 0-31 or an integer mask";
	if (v->type == YAML_SEQUENCE_NODE) {
		uint64_t mask = 0;
		for (yaml_node_item_t *it = v->data.sequence.items.start;
		     it < v->data.sequence.items.top; it++) {
			yaml_node_t *ln = ynode(y, *it);
			char sub[300];
			snprintf(sub, sizeof(sub), "%s[%td]", path,
				 it - v->data.sequence.items.start);
			unsigned link;
			int rc = get_uint(y, ln, sub, 0, RDO_DMA_MAX_LINKS - 1, &link);
			if (rc)
				return rc;
			if (mask & (1ull << link))
				return yfail(y, ln, "%s: link %u is listed twice", path, link);
			mask |= 1ull << link;
		}
		if (!mask)
			return yfail(y, v, "%s: expected %s, got an empty list", path, want);
		*out = mask;
		return 0;
	}
	if (v->type != YAML_SCALAR_NODE)
		return yfail(y, v, "%s: expected %s, got %s", path, want, kind_name(v));
	if (strcmp(scalar(v), "all") == 0) {
		*out = UINT32_MAX;
		return 0;
	}
	int rc = rdo_parse_u64(scalar(v), out);
	if (rc == 0 && *out == 0)
		return yfail(y, v, "%s: the mask 0 selects no link (expected %s)", path, want);
	if (rc == 0 && *out > UINT32_MAX)
		return yfail(y, v, "%s: %s has bits above link 31 (expected %s)", path, scalar(v),
			     want);
	if (rc)
		return yfail(y, v, "%s: expected %s, got \"%s\"", path, want, scalar(v));
	return 0;
}

/*
 * An option table: each key, how to read it, and where in the options struct
 * it goes. Sections that are only plain values are read through one.
 */
enum opt_type {
	OPT_BOOL,
	OPT_UINT,
	OPT_SIZE,
	OPT_RATE,
	OPT_ENDPOINTS,
	OPT_LINK_MASK,
	OPT_STRING,
	OPT_PATH, /* a string, resolved against the config file's folder */
	OPT_MODE, /* a file mode in octal: 0660 */
};

struct opt_key {
	const char *name;
	enum opt_type type;
	size_t offset, width; /* of the member */
	struct limits lim;    /* OPT_UINT, OPT_SIZE and OPT_RATE */
};

#define OPT_MAX_KEYS 16 /* in one table */
#define OPT(st, key, member, type_, ...)                                                           \
	{                                                                                          \
		.name = key, .type = type_, .offset = offsetof(st, member),                        \
		.width = sizeof(((st *)0)->member),                                                \
		.lim = { __VA_ARGS__ }                                                             \
	}

struct opts_ctx {
	const struct opt_key *keys;
	void *base;
	const yaml_node_t **nodes; /* NULL, or where each key was given, for cross-checks */
};

/* A path in the config, resolved against the config file's folder unless absolute. */
static int get_path(struct ydoc *y, const yaml_node_t *v, const char *path, char *dst, size_t cap)
{
	char rel[PATH_MAX];
	int rc = get_str(y, v, path, rel, sizeof(rel));
	if (rc == 0 && rel[0] && path_relative_to(dst, cap, y->file, rel))
		return yfail(y, v, "%s: path too long", path);
	if (rc == 0 && !rel[0])
		dst[0] = '\0';
	return rc;
}

/* A file mode as chmod takes it: octal, 0000 to 0777. */
static int get_mode(struct ydoc *y, const yaml_node_t *v, const char *path, uint64_t *out)
{
	const char *s = v->type == YAML_SCALAR_NODE ? scalar(v) : "";
	char *end;
	unsigned long m = strtoul(s, &end, 8);
	if (!s[0] || *end || m > 0777)
		return yfail(y, v, "%s: expected a file mode in octal like 0660, got \"%s\"", path,
			     s);
	*out = m;
	return 0;
}

/* Members are 64 bits (uint64_t, size_t) or 32 (unsigned, uint32_t). */
static void store_uint(void *dst, size_t width, uint64_t v)
{
	_Static_assert(sizeof(unsigned) == sizeof(uint32_t), "unsigned members are 32 bits");
	if (width == sizeof(uint64_t)) {
		uint64_t u = v;
		memcpy(dst, &u, sizeof(u));
	} else {
		uint32_t u = (uint32_t)v;
		memcpy(dst, &u, sizeof(u));
	}
}

static int visit_opt(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct opts_ctx *c = ctx;
	const struct opt_key *k = &c->keys[key];
	void *dst = (char *)c->base + k->offset;
	uint64_t u = 0;
	int rc;
	if (c->nodes)
		c->nodes[key] = v;
	switch (k->type) {
	case OPT_BOOL:
		return get_bool(y, v, path, dst);
	case OPT_ENDPOINTS:
		return get_endpoints(y, v, path, dst);
	case OPT_STRING: /* into a char array of `width` */
		return get_str(y, v, path, dst, k->width);
	case OPT_PATH:
		return get_path(y, v, path, dst, k->width);
	case OPT_MODE:
		rc = get_mode(y, v, path, &u);
		break;
	case OPT_LINK_MASK:
		rc = get_link_mask(y, v, path, &u);
		break;
	case OPT_UINT:
		rc = get_u64(y, v, path, &u);
		break;
	default:
		rc = get_size(y, v, path, k->type == OPT_RATE, &u);
		break;
	}
	if (rc == 0 && k->type != OPT_LINK_MASK && k->type != OPT_MODE)
		rc = check_limits(y, v, path, u, &k->lim);
	if (rc == 0)
		store_uint(dst, k->width, u);
	return rc;
}

static int walk_opts(struct ydoc *y, const yaml_node_t *map, const char *path,
		     const struct opt_key *keys, void *base, const yaml_node_t **nodes)
{
	const char *names[OPT_MAX_KEYS + 1];
	size_t n = 0;
	for (; keys[n].name && n < OPT_MAX_KEYS; n++)
		names[n] = keys[n].name;
	names[n] = NULL;
	struct opts_ctx c = {.keys = keys, .base = base, .nodes = nodes};
	return walk_map(y, map, path, names, visit_opt, &c);
}

static const struct opt_key sim_opts[] = {
    OPT(struct rdo_card_opts, "links", links, OPT_UINT, .min = 1, .max = 1024),
    OPT(struct rdo_card_opts, "serial", serial, OPT_UINT, .max = UINT64_MAX, .hex = true),
    OPT(struct rdo_card_opts, "firmware", fw_version, OPT_UINT, .max = UINT32_MAX, .hex = true),
    OPT(struct rdo_card_opts, "identity", identity, OPT_UINT, .max = UINT32_MAX, .hex = true),
    OPT(struct rdo_card_opts, "rate", sim_rate, OPT_RATE, .max = UINT64_MAX, .size = true),
    OPT(struct rdo_card_opts, "pulsed", sim_pulsed, OPT_BOOL),
    OPT(struct rdo_card_opts, "pulse_hz", sim_pulse_hz, OPT_UINT, .min = 1, .max = 10000),
    OPT(struct rdo_card_opts, "pulse_bytes", sim_pulse_bytes, OPT_SIZE, .min = 1, .max = 1ull << 31,
	.size = true),
    OPT(struct rdo_card_opts, "variable_size", sim_variable_size, OPT_BOOL),
    OPT(struct rdo_card_opts, "header_only", sim_header_only, OPT_BOOL),
    {NULL},
};

static const struct opt_key control_opts[] = {
    OPT(struct rdo_server_opts, "bind", control, OPT_ENDPOINTS),
    {NULL},
};

/* The dma keys check_dma looks up. */
enum dma_key { DMA_SUPERPAGE_SIZE, DMA_SUPERPAGES, DMA_LINKS, DMA_PAGE_SIZE };

static const struct opt_key dma_opts[] = {
    [DMA_SUPERPAGE_SIZE] = OPT(struct rdo_dma_opts, "superpage_size", superpage_size, OPT_SIZE,
			       .min = 4096, .max = 256ull << 20, .step = 4096, .size = true),
    [DMA_SUPERPAGES] =
	OPT(struct rdo_dma_opts, "superpages", superpages, OPT_UINT, .min = 2, .max = 65536),
    [DMA_LINKS] = OPT(struct rdo_dma_opts, "links", link_mask, OPT_LINK_MASK),
    [DMA_PAGE_SIZE] = OPT(struct rdo_dma_opts, "page_size", page_size, OPT_SIZE, .min = 64,
			  .max = 8192, .step = 8, .size = true),
    OPT(struct rdo_dma_opts, "irq_coalesce", irq_coalesce, OPT_UINT, .min = 1, .max = 1024),
    OPT(struct rdo_dma_opts, "irq_holdoff_us", irq_holdoff_us, OPT_UINT, .min = 1, .max = 1000000),
    OPT(struct rdo_dma_opts, "autostart", autostart, OPT_BOOL),
    {NULL},
};

static const struct opt_key live_opts[] = {
    OPT(struct rdo_live_opts, "enabled", enabled, OPT_BOOL),
    OPT(struct rdo_live_opts, "bind", bind, OPT_ENDPOINTS),
    OPT(struct rdo_live_opts, "hwm", hwm, OPT_UINT, .min = 1, .max = 100000),
    {NULL},
};

static const struct opt_key lossless_opts[] = {
    OPT(struct rdo_lossless_opts, "enabled", enabled, OPT_BOOL),
    OPT(struct rdo_lossless_opts, "bind", bind, OPT_ENDPOINTS),
    OPT(struct rdo_lossless_opts, "timeout_ms", timeout_ms, OPT_UINT, .min = 100, .max = 600000),
    {NULL},
};

/* readout-writer takes this table without its first key: it always writes. */
static const struct opt_key writer_opts[] = {
    OPT(struct rdo_writer_opts, "enabled", enabled, OPT_BOOL),
    OPT(struct rdo_writer_opts, "directory", directory, OPT_STRING),
    OPT(struct rdo_writer_opts, "name", name, OPT_STRING),
    OPT(struct rdo_writer_opts, "block_size", block_size, OPT_SIZE, .min = 4096, .max = 1u << 30,
	.size = true),
    OPT(struct rdo_writer_opts, "depth", depth, OPT_UINT, .min = 1, .max = 64),
    OPT(struct rdo_writer_opts, "prealloc", prealloc, OPT_SIZE, .min = 4096, .max = 1ull << 40,
	.size = true),
    OPT(struct rdo_writer_opts, "rotate_size", rotate_bytes, OPT_SIZE, .min = 1u << 20,
	.max = 1ull << 50, .size = true),
    OPT(struct rdo_writer_opts, "rotate_s", rotate_s, OPT_UINT, .max = 31u * 86400),
    OPT(struct rdo_writer_opts, "direct", direct, OPT_BOOL),
    {NULL},
};

static const struct opt_key status_opts[] = {
    OPT(struct rdo_status_opts, "bind", bind, OPT_ENDPOINTS),
    OPT(struct rdo_status_opts, "interval_ms", interval_ms, OPT_UINT, .min = 10, .max = 3600000),
    OPT(struct rdo_status_opts, "log_interval_s", log_interval_s, OPT_UINT, .max = 86400),
    {NULL},
};

/*
 * The card fills superpages with whole DMA pages, so a superpage must hold a
 * whole number of them, at least one. Each key is fine alone; only together
 * can they be wrong, so the message names both and points at the one given.
 */
static int check_dma(struct ydoc *y, const yaml_node_t *section, const yaml_node_t **nodes,
		     const struct rdo_dma_opts *d)
{
	if (d->superpage_size >= d->page_size && d->superpage_size % d->page_size == 0)
		return 0;
	const yaml_node_t *at = nodes[DMA_SUPERPAGE_SIZE] ? nodes[DMA_SUPERPAGE_SIZE]
				: nodes[DMA_PAGE_SIZE]	  ? nodes[DMA_PAGE_SIZE]
							  : section;
	char sp[32], pg[32], fix[32];
	fmt_amount(sp, sizeof(sp), d->superpage_size, true);
	fmt_amount(pg, sizeof(pg), d->page_size, true);
	if (d->superpage_size < d->page_size)
		return yfail(y, at,
			     "dma.superpage_size: %s does not hold one dma.page_size of %s: raise "
			     "dma.superpage_size to at least %s or lower dma.page_size",
			     sp, pg, fmt_amount(fix, sizeof(fix), d->page_size, true));
	/* The next size up that is a multiple of both the page and 4 KiB. */
	uint64_t a = d->page_size, b = 4096;
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	uint64_t step = d->page_size / a * 4096;
	fmt_amount(fix, sizeof(fix), (d->superpage_size + step - 1) / step * step, true);
	return yfail(y, at,
		     "dma.superpage_size: %s is not a multiple of dma.page_size %s: make "
		     "dma.superpage_size a multiple of dma.page_size (%s is) or dma.page_size a "
		     "divisor of dma.superpage_size",
		     sp, pg, fix);
}

static const struct opt_key security_opts[] = {
    OPT(struct rdo_auth_opts, "server_key", server_key, OPT_PATH),
    OPT(struct rdo_auth_opts, "authorized_keys", authorized_keys, OPT_PATH),
    OPT(struct rdo_auth_opts, "curve_loopback", curve_loopback, OPT_BOOL),
    OPT(struct rdo_auth_opts, "ipc_mode", ipc_mode, OPT_MODE),
    {NULL},
};

static const struct opt_key metrics_opts[] = {
    OPT(struct rdo_metrics_opts, "enabled", enabled, OPT_BOOL),
    OPT(struct rdo_metrics_opts, "bind", bind, OPT_STRING),
    {NULL},
};

static const char *const card_keys[] = {
    "name", "backend", "address", "regmap",   "force",	"numa_node",
    "sim",  "dma",     "live",	  "lossless", "writer", NULL,
};

/* numa_node: "auto" (what the card reports) or a node number. */
static int get_numa_node(struct ydoc *y, const yaml_node_t *v, const char *path, int *out)
{
	if (v->type == YAML_SCALAR_NODE && strcmp(scalar(v), "auto") == 0) {
		*out = -1;
		return 0;
	}
	unsigned n;
	int rc = get_uint(y, v, path, 0, 1023, &n);
	if (rc)
		return yfail(y, v, "%s: expected auto or a NUMA node number 0-1023, got \"%s\"",
			     path, v->type == YAML_SCALAR_NODE ? scalar(v) : kind_name(v));
	*out = (int)n;
	return 0;
}

static int visit_card(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct rdo_card_conf *c = ctx;
	const yaml_node_t *nodes[OPT_MAX_KEYS] = {NULL};
	int rc;
	switch (key) {
	case 0:
		rc = get_str(y, v, path, c->card.name, sizeof(c->card.name));
		if (rc == 0 && !rdo_regmap_valid_name(c->card.name))
			return yfail(y, v,
				     "%s: \"%s\" is not a valid card name (letters, digits, '_')",
				     path, c->card.name);
		return rc;
	case 1:
		rc = get_str(y, v, path, c->card.backend, sizeof(c->card.backend));
		if (rc == 0 && strcmp(c->card.backend, "sim") != 0 &&
		    strcmp(c->card.backend, "shim") != 0)
			return yfail(y, v,
				     "%s: expected sim (the emulated card) or shim (a PCIe card "
				     "through driver-shim), got \"%s\"",
				     path, c->card.backend);
		return rc;
	case 2:
		return get_str(y, v, path, c->card.address, sizeof(c->card.address));
	case 3:
		return get_path(y, v, path, c->regmap_file, sizeof(c->regmap_file));
	case 4:
		return get_bool(y, v, path, &c->force);
	case 5:
		return get_numa_node(y, v, path, &c->numa_node);
	case 6:
		return walk_opts(y, v, path, sim_opts, &c->card, NULL);
	case 7:
		rc = walk_opts(y, v, path, dma_opts, &c->dma, nodes);
		return rc ? rc : check_dma(y, v, nodes, &c->dma);
	case 8:
		return walk_opts(y, v, path, live_opts, &c->live, NULL);
	case 9:
		return walk_opts(y, v, path, lossless_opts, &c->lossless, NULL);
	default:
		return walk_opts(y, v, path, writer_opts, &c->writer, NULL);
	}
}

static int get_log_level(struct ydoc *y, const yaml_node_t *v, const char *path, int *out)
{
	char level[16];
	int rc = get_str(y, v, path, level, sizeof(level));
	if (rc)
		return rc;
	*out = rdo_log_level_parse(level);
	if (*out < 0)
		return yfail(y, v, "%s: expected err, warning, notice, info or debug, got \"%s\"",
			     path, level);
	return 0;
}

static int get_role(struct ydoc *y, const yaml_node_t *v, const char *path, enum rdo_role *out)
{
	char role[16];
	int rc = get_str(y, v, path, role, sizeof(role));
	int r = rc ? rc : rdo_role_parse(role);
	if (r < 0 || r == RDO_ROLE_NONE)
		return yfail(y, v, "%s: expected monitor or operator, got \"%s\"", path,
			     rc ? kind_name(v) : role);
	*out = (enum rdo_role)r;
	return 0;
}

static const char *const security_keys[] = {"server_key", "authorized_keys", "curve_loopback",
					    "ipc_mode",	  "local_role",	     NULL};

static int visit_security(struct ydoc *y, void *ctx, int key, const yaml_node_t *v,
			  const char *path)
{
	struct rdo_auth_opts *a = ctx;
	if (key == 4)
		return get_role(y, v, path, &a->local_role);
	struct opts_ctx c = {.keys = security_opts, .base = a};
	return visit_opt(y, &c, key, v, path);
}

/* The config being read: the sections every card takes, and where the cards are. */
struct server_ctx {
	struct rdo_server_opts *o;
	struct rdo_card_conf tmpl; /* the top-level dma, live, lossless, writer */
	const yaml_node_t *card, *cards;
};

static const char *const top_keys[] = {
    "card",	 "cards",  "control",  "dma",	  "live",	 "lossless", "status",
    "log_level", "writer", "security", "metrics", "runtime_dir", NULL,
};

static int visit_top(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct server_ctx *c = ctx;
	struct rdo_server_opts *o = c->o;
	const yaml_node_t *nodes[OPT_MAX_KEYS] = {NULL};
	int rc;
	switch (key) {
	case 0:
		c->card = v;
		return 0;
	case 1:
		c->cards = v;
		return 0;
	case 2:
		return walk_opts(y, v, path, control_opts, o, NULL);
	case 3:
		rc = walk_opts(y, v, path, dma_opts, &c->tmpl.dma, nodes);
		return rc ? rc : check_dma(y, v, nodes, &c->tmpl.dma);
	case 4:
		return walk_opts(y, v, path, live_opts, &c->tmpl.live, NULL);
	case 5:
		return walk_opts(y, v, path, lossless_opts, &c->tmpl.lossless, NULL);
	case 6:
		return walk_opts(y, v, path, status_opts, &o->status, NULL);
	case 7:
		return get_log_level(y, v, path, &o->log_level);
	case 8:
		return walk_opts(y, v, path, writer_opts, &c->tmpl.writer, NULL);
	case 9:
		return walk_map(y, v, path, security_keys, visit_security, &o->security);
	case 10:
		return walk_opts(y, v, path, metrics_opts, &o->metrics, NULL);
	default:
		return get_str(y, v, path, o->runtime_dir, sizeof(o->runtime_dir));
	}
}

/*
 * One card: the top-level sections, then its own keys over them. A card of
 * the cards list must be named; an emulated one there is addressed by its
 * name unless given an address, so that several need no addresses.
 */
static int load_card(struct ydoc *y, struct server_ctx *c, const yaml_node_t *v, const char *path,
		     bool in_list)
{
	struct rdo_card_conf *card = &c->o->cards[c->o->ncards];
	*card = c->tmpl;
	card->line = (unsigned)v->start_mark.line + 1;
	card->column = (unsigned)v->start_mark.column + 1;
	if (in_list)
		card->card.name[0] = card->card.address[0] = '\0';
	int rc = walk_map(y, v, path, card_keys, visit_card, card);
	if (rc)
		return rc;
	if (!card->card.name[0])
		return yfail(y, v, "%s: expected a name (name: ...), which clients address it by",
			     path);
	if (!card->card.address[0] && strcmp(card->card.backend, "sim") == 0)
		rdo_strlcpy(card->card.address, card->card.name, sizeof(card->card.address));
	if (!card->card.address[0])
		return yfail(y, v,
			     "%s: expected an address (address: DDDD:BB:DD.F, the card's PCI "
			     "address) for backend %s",
			     path, card->card.backend);
	for (unsigned i = 0; i < c->o->ncards; i++) {
		const struct rdo_card_opts *other = &c->o->cards[i].card;
		if (strcmp(other->name, card->card.name) == 0)
			return yfail(y, v,
				     "%s: card name \"%s\" is taken by cards[%u]: give each card a "
				     "name of its own",
				     path, card->card.name, i);
		if (strcmp(other->backend, card->card.backend) == 0 &&
		    strcmp(other->address, card->card.address) == 0)
			return yfail(y, v,
				     "%s: card %s has the address of card %s (%s %s): one card "
				     "cannot be read out twice; give each its own address",
				     path, card->card.name, other->name, other->backend,
				     other->address);
	}
	c->o->ncards++;
	return 0;
}

static int load_cards(struct ydoc *y, struct server_ctx *c)
{
	struct rdo_server_opts *o = c->o;
	if (c->card && c->cards)
		return yfail(y, c->cards,
			     "cards: the config has both card and cards: list every card under "
			     "cards, or keep one card under card");
	o->ncards = 0;
	if (!c->cards) {
		if (!c->card) {
			o->cards[o->ncards++] = c->tmpl;
			return 0;
		}
		return load_card(y, c, c->card, "card", false);
	}
	int rc = expect_kind(y, c->cards, YAML_SEQUENCE_NODE, "cards");
	if (rc)
		return rc;
	size_t n =
	    (size_t)(c->cards->data.sequence.items.top - c->cards->data.sequence.items.start);
	if (n == 0 || n > RDO_MAX_CARDS)
		return yfail(y, c->cards, "cards: expected 1 to %d cards, got %zu", RDO_MAX_CARDS,
			     n);
	for (size_t i = 0; i < n; i++) {
		char path[32];
		snprintf(path, sizeof(path), "cards[%zu]", i);
		rc = load_card(y, c, ynode(y, c->cards->data.sequence.items.start[i]), path, true);
		if (rc)
			return rc;
	}
	return 0;
}

/* Replace every `key` in `s` by `value`: 0, or -ENAMETOOLONG. */
static int expand(char *s, size_t cap, const char *key, const char *value)
{
	char out[RDO_ENDPOINT_MAX > PATH_MAX ? RDO_ENDPOINT_MAX : PATH_MAX];
	size_t n = 0, klen = strlen(key), vlen = strlen(value);
	for (const char *p = s; *p;) {
		bool hit = strncmp(p, key, klen) == 0;
		size_t take = hit ? vlen : 1;
		if (n + take >= sizeof(out) || n + take >= cap)
			return -ENAMETOOLONG;
		memcpy(out + n, hit ? value : p, take);
		n += take;
		p += hit ? klen : 1;
	}
	out[n] = '\0';
	memcpy(s, out, n + 1);
	return 0;
}

/* An error about the config as a whole, at a card's entry when there is one. */
static int conf_fail(char *err, size_t errlen, const char *file, const struct rdo_card_conf *c,
		     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int conf_fail(char *err, size_t errlen, const char *file, const struct rdo_card_conf *c,
		     const char *fmt, ...)
{
	int len = c && c->line ? snprintf(err, errlen, "%s:%u:%u: ", file, c->line, c->column)
			       : snprintf(err, errlen, "%s: ", file);
	if (len < 0 || (size_t)len >= errlen)
		return -EINVAL;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err + len, errlen - (size_t)len, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* {runtime} everywhere, {card} in a card's own streams. */
static int expand_endpoints(struct rdo_endpoints *e, const char *runtime, const char *card)
{
	for (size_t i = 0; i < e->n; i++) {
		if (expand(e->ep[i], sizeof(e->ep[i]), "{runtime}", runtime) ||
		    (card && expand(e->ep[i], sizeof(e->ep[i]), "{card}", card)))
			return -ENAMETOOLONG;
		if (!card && strstr(e->ep[i], "{card}"))
			return -EINVAL;
	}
	return 0;
}

/* A bound endpoint and who binds it, for the check that no two bind the same. */
struct bind_use {
	const char *ep, *what;
	const struct rdo_card_conf *card;
};

/* tcp with port * binds any free port: two of them never clash. */
static bool same_endpoint(const char *a, const char *b)
{
	size_t n = strlen(a);
	return strcmp(a, b) == 0 && !(strncmp(a, "tcp://", 6) == 0 && n && a[n - 1] == '*');
}

static int check_binds(const struct rdo_server_opts *o, char *err, size_t errlen)
{
	struct bind_use use[(2 + 2 * RDO_MAX_CARDS) * RDO_MAX_ENDPOINTS];
	size_t n = 0;
	struct surface {
		const struct rdo_endpoints *e;
		const char *what;
		const struct rdo_card_conf *card;
	} surfaces[2 + 2 * RDO_MAX_CARDS] = {{&o->control, "control", NULL},
					     {&o->status.bind, "status", NULL}};
	size_t ns = 2;
	for (unsigned i = 0; i < o->ncards; i++) {
		const struct rdo_card_conf *c = &o->cards[i];
		if (c->live.enabled)
			surfaces[ns++] = (struct surface){&c->live.bind, "live", c};
		if (c->lossless.enabled)
			surfaces[ns++] = (struct surface){&c->lossless.bind, "lossless", c};
	}
	for (size_t s = 0; s < ns; s++) {
		for (size_t i = 0; i < surfaces[s].e->n; i++) {
			const char *ep = surfaces[s].e->ep[i];
			for (size_t j = 0; j < n; j++) {
				if (!same_endpoint(ep, use[j].ep))
					continue;
				const struct rdo_card_conf *c = surfaces[s].card;
				char other[128];
				snprintf(other, sizeof(other), "%s%s%s%s",
					 use[j].card ? "card " : "",
					 use[j].card ? use[j].card->card.name : "",
					 use[j].card ? "'s " : "the ", use[j].what);
				rdo_strlcpy(other + strlen(other), ".bind",
					    sizeof(other) - strlen(other));
				return conf_fail(err, errlen, o->config_file, c,
						 "%s%s%s%s.bind: %s is also bound by %s: give each "
						 "card endpoints "
						 "of its own (a port per card, {card} in an ipc "
						 "path, or port *)",
						 c ? "card " : "", c ? c->card.name : "",
						 c ? ": " : "", surfaces[s].what, ep, other);
			}
			use[n++] = (struct bind_use){ep, surfaces[s].what, surfaces[s].card};
		}
	}
	return 0;
}

/* Two writers writing into one folder must name their files apart. */
static int check_writers(const struct rdo_server_opts *o, char *err, size_t errlen)
{
	for (unsigned i = 0; i < o->ncards; i++)
		for (unsigned j = 0; j < i; j++) {
			const struct rdo_writer_opts *a = &o->cards[i].writer,
						     *b = &o->cards[j].writer;
			if (a->enabled && b->enabled && strcmp(a->directory, b->directory) == 0 &&
			    strcmp(a->name, b->name) == 0 && !strstr(a->name, "{card}"))
				return conf_fail(
				    err, errlen, o->config_file, &o->cards[i],
				    "card %s: writer.name \"%s\" in %s is also card %s's: "
				    "put {card} in the name, or give each card its own "
				    "writer.directory",
				    o->cards[i].card.name, a->name, a->directory,
				    o->cards[j].card.name);
		}
	return 0;
}

/* After every key is read: placeholders expanded, the whole checked. */
static int finish(struct rdo_server_opts *o, char *err, size_t errlen)
{
	if (expand_endpoints(&o->control, o->runtime_dir, NULL) ||
	    expand_endpoints(&o->status.bind, o->runtime_dir, NULL))
		return conf_fail(err, errlen, o->config_file, NULL,
				 "control.bind, status.bind: an endpoint is too long once "
				 "{runtime} is %s, or names {card}, which only a card's live and "
				 "lossless streams can",
				 o->runtime_dir);
	/* systemd's StateDirectory= (the first, if several), where the service may write. */
	char state[PATH_MAX];
	const char *sd = getenv("STATE_DIRECTORY");
	rdo_strlcpy(state, sd && sd[0] ? sd : RDO_DEFAULT_STATE_DIR, sizeof(state));
	state[strcspn(state, ":")] = '\0';
	for (unsigned i = 0; i < o->ncards; i++) {
		struct rdo_card_conf *c = &o->cards[i];
		if (expand(c->writer.directory, sizeof(c->writer.directory), "{state}", state))
			return conf_fail(err, errlen, o->config_file, c,
					 "card %s: writer.directory is too long once {state} is %s",
					 c->card.name, state);
		if (expand_endpoints(&c->live.bind, o->runtime_dir, c->card.name) ||
		    expand_endpoints(&c->lossless.bind, o->runtime_dir, c->card.name))
			return conf_fail(err, errlen, o->config_file, c,
					 "card %s: a live or lossless endpoint is too long once "
					 "{runtime} and {card} are expanded",
					 c->card.name);
	}
	if (o->security.server_key[0] && !o->security.authorized_keys[0])
		return conf_fail(err, errlen, o->config_file, NULL,
				 "security.server_key is set but security.authorized_keys is not: "
				 "name the file of the clients allowed in (ROLE KEY NAME lines)");
	char why[256];
	if (o->metrics.enabled && rdo_metrics_bind_check(o->metrics.bind, why, sizeof(why)))
		return conf_fail(err, errlen, o->config_file, NULL, "metrics.bind: %s", why);
	int rc = check_binds(o, err, errlen);
	return rc ? rc : check_writers(o, err, errlen);
}

int rdo_config_load(const char *file, struct rdo_server_opts *o, char *err, size_t errlen)
{
	struct ydoc y;
	int rc = yload(&y, file, err, errlen);
	if (rc)
		return rc;
	rdo_strlcpy(o->config_file, file, sizeof(o->config_file));
	struct server_ctx c = {.o = o, .tmpl = o->cards[0]};
	/* The default map sits beside the default config: resolve it the same way. */
	path_relative_to(c.tmpl.regmap_file, sizeof(c.tmpl.regmap_file), file,
			 "regmaps/rdo-sim.yaml");
	rc = walk_map(&y, yaml_document_get_root_node(&y.doc), "", top_keys, visit_top, &c);
	if (rc == 0)
		rc = load_cards(&y, &c);
	yaml_document_delete(&y.doc);
	return rc ? rc : finish(o, err, errlen);
}

/* --check-config: the effective config, as a file that sets every key. */

static void print_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

/* Paths absolute, so that the printed config means the same read from anywhere. */
static void print_path(FILE *f, const char *path)
{
	char abs[PATH_MAX];
	print_str(f, path[0] && realpath(path, abs) ? abs : path);
}

static uint64_t load_uint(const void *src, size_t width)
{
	if (width == sizeof(uint64_t)) {
		uint64_t u;
		memcpy(&u, src, sizeof(u));
		return u;
	}
	uint32_t u;
	memcpy(&u, src, sizeof(u));
	return u;
}

/* A rate as written in configs: "100MB/s" when a whole number of K, M or G, else bytes. */
static const char *fmt_rate(char *buf, size_t cap, uint64_t v)
{
	static const struct {
		uint64_t unit;
		const char *name;
	} units[] = {{1000000000, "G"}, {1000000, "M"}, {1000, "K"}};
	for (size_t i = 0; v && i < RDO_ARRAY_SIZE(units); i++)
		if (v % units[i].unit == 0) {
			snprintf(buf, cap, "%llu%sB/s", (unsigned long long)(v / units[i].unit),
				 units[i].name);
			return buf;
		}
	snprintf(buf, cap, "%llu/s", (unsigned long long)v);
	return buf;
}

static void print_opts(FILE *f, int indent, const char *section, const struct opt_key *keys,
		       const void *base)
{
	if (section)
		fprintf(f, "%*s%s:\n", indent, "", section);
	indent += section ? 2 : 0;
	for (const struct opt_key *k = keys; k->name; k++) {
		const void *src = (const char *)base + k->offset;
		char buf[64];
		fprintf(f, "%*s%s: ", indent, "", k->name);
		switch (k->type) {
		case OPT_BOOL:
			fputs(*(const bool *)src ? "true" : "false", f);
			break;
		case OPT_ENDPOINTS: {
			const struct rdo_endpoints *e = src;
			fputc('[', f);
			for (size_t i = 0; i < e->n; i++) {
				fputs(i ? ", " : "", f);
				print_str(f, e->ep[i]);
			}
			fputc(']', f);
			break;
		}
		case OPT_STRING:
			print_str(f, src);
			break;
		case OPT_PATH:
			print_path(f, src);
			break;
		case OPT_MODE:
			fprintf(f, "0%03llo", (unsigned long long)load_uint(src, k->width));
			break;
		case OPT_LINK_MASK: {
			uint64_t m = load_uint(src, k->width);
			if (m == UINT32_MAX)
				fputs("all", f);
			else
				fprintf(f, "0x%llx", (unsigned long long)m);
			break;
		}
		case OPT_UINT:
			fprintf(f, k->lim.hex ? "0x%llx" : "%llu",
				(unsigned long long)load_uint(src, k->width));
			break;
		case OPT_RATE:
			fputs(fmt_rate(buf, sizeof(buf), load_uint(src, k->width)), f);
			break;
		default:
			fputs(fmt_amount(buf, sizeof(buf), load_uint(src, k->width), true), f);
			break;
		}
		fputc('\n', f);
	}
}

void rdo_config_print(FILE *f, const struct rdo_server_opts *o)
{
	static const char *const levels[] = {[LOG_ERR] = "err",
					     [LOG_WARNING] = "warning",
					     [LOG_NOTICE] = "notice",
					     [LOG_INFO] = "info",
					     [LOG_DEBUG] = "debug"};
	fprintf(f, "# The effective config of %s: every key, defaults filled in.\n",
		o->config_file[0] ? o->config_file : "(defaults)");
	fprintf(f, "log_level: %s\n",
		o->log_level >= 0 && o->log_level <= LOG_DEBUG && levels[o->log_level]
		    ? levels[o->log_level]
		    : "info");
	fputs("runtime_dir: ", f);
	print_str(f, o->runtime_dir);
	fputc('\n', f);
	print_opts(f, 0, "control", control_opts, o);
	print_opts(f, 0, "status", status_opts, &o->status);
	print_opts(f, 0, "security", security_opts, &o->security);
	fprintf(f, "  local_role: %s\n", rdo_role_name(o->security.local_role));
	print_opts(f, 0, "metrics", metrics_opts, &o->metrics);
	fputs("cards:\n", f);
	for (unsigned i = 0; i < o->ncards; i++) {
		const struct rdo_card_conf *c = &o->cards[i];
		fputs("  - name: ", f);
		print_str(f, c->card.name);
		fprintf(f, "\n    backend: %s\n    address: ", c->card.backend);
		print_str(f, c->card.address);
		fputs("\n    regmap: ", f);
		print_path(f, c->regmap_file);
		fprintf(f, "\n    force: %s\n", c->force ? "true" : "false");
		if (c->numa_node < 0)
			fputs("    numa_node: auto\n", f);
		else
			fprintf(f, "    numa_node: %d\n", c->numa_node);
		if (strcmp(c->card.backend, "sim") == 0)
			print_opts(f, 4, "sim", sim_opts, &c->card);
		print_opts(f, 4, "dma", dma_opts, &c->dma);
		print_opts(f, 4, "live", live_opts, &c->live);
		print_opts(f, 4, "lossless", lossless_opts, &c->lossless);
		print_opts(f, 4, "writer", writer_opts, &c->writer);
	}
}

/* readout-writer's config. */

void rdo_remote_writer_opts_init(struct rdo_remote_writer_opts *o)
{
	memset(o, 0, sizeof(*o));
	rdo_strlcpy(o->control, RDO_DEFAULT_CONTROL_TCP, sizeof(o->control));
	rdo_strlcpy(o->lossless, RDO_DEFAULT_LOSSLESS_TCP, sizeof(o->lossless));
	o->buffers = 64;
	o->status_s = 10;
	rdo_writer_opts_init(&o->writer);
	o->log_level = LOG_INFO;
}

enum { SOURCE_CONTROL, SOURCE_LOSSLESS };

static const struct opt_key source_opts[] = {
    [SOURCE_CONTROL] = OPT(struct rdo_remote_writer_opts, "control", control, OPT_STRING),
    [SOURCE_LOSSLESS] = OPT(struct rdo_remote_writer_opts, "lossless", lossless, OPT_STRING),
    OPT(struct rdo_remote_writer_opts, "name", name, OPT_STRING),
    OPT(struct rdo_remote_writer_opts, "buffers", buffers, OPT_UINT, .min = 2,
	.max = 4096), /* the most credits a lossless consumer may ask for */
    {NULL},
};

/* An endpoint to connect to: tcp://HOST:PORT or ipc://PATH. */
static int check_connect(struct ydoc *y, const yaml_node_t *n, const char *path, const char *ep)
{
	if (!n || rdo_endpoint_valid(ep))
		return 0;
	return yfail(y, n, "%s: expected tcp://HOST:PORT or ipc://PATH, got \"%s\"", path, ep);
}

static const char *const remote_writer_keys[] = {"source", "writer", "status_interval_s",
						 "log_level", NULL};

static int visit_remote_writer(struct ydoc *y, void *ctx, int key, const yaml_node_t *v,
			       const char *path)
{
	struct rdo_remote_writer_opts *o = ctx;
	const yaml_node_t *nodes[OPT_MAX_KEYS] = {NULL};
	int rc;
	switch (key) {
	case 0:
		rc = walk_opts(y, v, path, source_opts, o, nodes);
		if (rc == 0)
			rc = check_connect(y, nodes[SOURCE_CONTROL], "source.control", o->control);
		if (rc == 0)
			rc = check_connect(y, nodes[SOURCE_LOSSLESS], "source.lossless",
					   o->lossless);
		return rc;
	case 1:
		return walk_opts(y, v, path, writer_opts + 1, &o->writer, NULL);
	case 2:
		return get_uint(y, v, path, 0, 86400, &o->status_s);
	default:
		return get_log_level(y, v, path, &o->log_level);
	}
}

int rdo_config_load_remote_writer(const char *file, struct rdo_remote_writer_opts *o, char *err,
				  size_t errlen)
{
	struct ydoc y;
	int rc = yload(&y, file, err, errlen);
	if (rc)
		return rc;
	rdo_strlcpy(o->config_file, file, sizeof(o->config_file));
	rc = walk_map(&y, yaml_document_get_root_node(&y.doc), "", remote_writer_keys,
		      visit_remote_writer, o);
	yaml_document_delete(&y.doc);
	return rc;
}

/* Register maps. */

struct field_ctx {
	struct rdo_field *f;
	bool has_bits;
};

static int parse_bits(struct ydoc *y, const yaml_node_t *v, const char *path, struct rdo_field *f)
{
	if (v->type != YAML_SCALAR_NODE)
		return yfail(y, v, "%s: expected a bit or a range \"high:low\", got %s", path,
			     kind_name(v));
	char text[32];
	rdo_strlcpy(text, scalar(v), sizeof(text));
	char *colon = strchr(text, ':');
	uint64_t hi, lo;
	if (colon)
		*colon = '\0';
	if (rdo_parse_u64(text, &hi) || (colon && rdo_parse_u64(colon + 1, &lo)) || hi > 63)
		return yfail(y, v, "%s: expected a bit (0-63) or a range \"high:low\", got \"%s\"",
			     path, scalar(v));
	if (!colon)
		lo = hi;
	if (lo > hi)
		return yfail(y, v, "%s: \"%s\": write the high bit first (\"%llu:%llu\")", path,
			     scalar(v), (unsigned long long)lo, (unsigned long long)hi);
	f->msb = (unsigned)hi;
	f->lsb = (unsigned)lo;
	return 0;
}

static int parse_values(struct ydoc *y, const yaml_node_t *v, const char *path, struct rdo_field *f)
{
	int rc = expect_kind(y, v, YAML_MAPPING_NODE, path);
	if (rc)
		return rc;
	size_t n = (size_t)(v->data.mapping.pairs.top - v->data.mapping.pairs.start);
	f->values = calloc(n ? n : 1, sizeof(*f->values));
	if (!f->values)
		return yfail(y, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_pair_t *p = &v->data.mapping.pairs.start[i];
		yaml_node_t *k = ynode(y, p->key), *val = ynode(y, p->value);
		if (k->type != YAML_SCALAR_NODE)
			return yfail(y, k, "%s: expected value names as keys", path);
		f->values[i].name = (char *)scalar(k);
		f->nvalues = i + 1;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s.%s", path, scalar(k));
		rc = get_u64(y, val, sub, &f->values[i].value);
		if (rc)
			return rc;
	}
	return 0;
}

static const char *const field_keys[] = {"name", "bits", "description", "values", NULL};

static int visit_field(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct field_ctx *fc = ctx;
	int rc;
	switch (key) {
	case 0:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		fc->f->name = rc ? NULL : (char *)scalar(v);
		return rc;
	case 1:
		fc->has_bits = true;
		return parse_bits(y, v, path, fc->f);
	case 2:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		fc->f->description = rc ? NULL : (char *)scalar(v);
		return rc;
	default:
		return parse_values(y, v, path, fc->f);
	}
}

/* A register definition being read; strings point into the YAML document. */
struct reg_ctx {
	struct rdo_reg_def def;
	struct rdo_field *fields;
	const yaml_node_t *node;
	bool has_offset;
};

static int parse_fields(struct ydoc *y, const yaml_node_t *v, const char *path, struct reg_ctx *rc_)
{
	int rc = expect_kind(y, v, YAML_SEQUENCE_NODE, path);
	if (rc)
		return rc;
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	rc_->fields = calloc(n ? n : 1, sizeof(*rc_->fields));
	if (!rc_->fields)
		return yfail(y, v, "out of memory");
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *fn = ynode(y, v->data.sequence.items.start[i]);
		struct field_ctx fc = {.f = &rc_->fields[i]};
		rc_->def.nfields = i + 1;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
		rc = walk_map(y, fn, sub, field_keys, visit_field, &fc);
		if (rc)
			return rc;
		if (!fc.f->name || !fc.has_bits)
			return yfail(y, fn, "%s: a field needs a name and bits", sub);
	}
	return 0;
}

static const char *const reg_keys[] = {"name",	"offset",      "width",	 "access",
				       "reset", "description", "fields", NULL};

static int visit_reg(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct reg_ctx *r = ctx;
	int rc;
	switch (key) {
	case 0:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		r->def.name = rc ? NULL : scalar(v);
		return rc;
	case 1:
		r->has_offset = true;
		return get_u64(y, v, path, &r->def.offset);
	case 2:
		return get_uint(y, v, path, 0, 64, &r->def.width);
	case 3:
		if (v->type != YAML_SCALAR_NODE || rdo_access_parse(scalar(v), &r->def.access))
			return yfail(y, v, "%s: expected ro, rw, wo or w1c, got %s%s%s", path,
				     v->type == YAML_SCALAR_NODE ? "\"" : "",
				     v->type == YAML_SCALAR_NODE ? scalar(v) : kind_name(v),
				     v->type == YAML_SCALAR_NODE ? "\"" : "");
		return 0;
	case 4:
		return get_u64(y, v, path, &r->def.reset);
	case 5:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		r->def.description = rc ? NULL : scalar(v);
		return rc;
	default:
		return parse_fields(y, v, path, r);
	}
}

static void free_parsed_fields(struct reg_ctx *r)
{
	for (size_t i = 0; i < r->def.nfields; i++)
		free(r->fields[i].values);
	free(r->fields);
}

struct bank_ctx {
	struct rdo_regmap *map;
	const char *name;
	unsigned bar;
	uint64_t base;
	const char *description;
	const yaml_node_t *registers;
	const yaml_node_t *count_node, *stride_node; /* a bank array */
	unsigned count;
	uint64_t stride;
	bool has_bar, has_base;
};

static const char *const bank_keys[] = {"name",	     "bar",   "base",	"description",
					"registers", "count", "stride", NULL};

static int visit_bank(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct bank_ctx *b = ctx;
	int rc;
	switch (key) {
	case 0:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		b->name = rc ? NULL : scalar(v);
		return rc;
	case 1:
		b->has_bar = true;
		return get_uint(y, v, path, 0, RDO_CARD_MAX_BARS - 1, &b->bar);
	case 2:
		b->has_base = true;
		return get_u64(y, v, path, &b->base);
	case 3:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		b->description = rc ? NULL : scalar(v);
		return rc;
	case 4:
		b->registers = v;
		return expect_kind(y, v, YAML_SEQUENCE_NODE, path);
	case 5:
		b->count_node = v;
		return get_uint(y, v, path, 1, RDO_BANK_MAX_COUNT, &b->count);
	default:
		b->stride_node = v;
		return get_u64(y, v, path, &b->stride);
	}
}

/* Read every register of a bank, before any is added, so that an array knows its extent. */
static int parse_regs(struct ydoc *y, const struct bank_ctx *b, struct reg_ctx *regs)
{
	for (yaml_node_item_t *it = b->registers->data.sequence.items.start;
	     it < b->registers->data.sequence.items.top; it++) {
		struct reg_ctx *r = &regs[it - b->registers->data.sequence.items.start];
		r->node = ynode(y, *it);
		r->def.width = 32;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s.registers[%td]", b->name,
			 it - b->registers->data.sequence.items.start);
		int rc = walk_map(y, r->node, sub, reg_keys, visit_reg, r);
		r->def.fields = r->fields;
		if (rc)
			return rc;
		if (!r->def.name || !r->has_offset)
			return yfail(y, r->node, "%s: a register needs a name and an offset", sub);
	}
	return 0;
}

/*
 * A bank array (count: N, stride: S) is N banks NAME0..NAME{N-1}, S bytes
 * apart, each with all the registers: the stride must clear the registers'
 * extent, or bank i would overlap bank i+1.
 */
static int check_array(struct ydoc *y, const struct bank_ctx *b, const char *path,
		       const struct reg_ctx *regs, size_t nregs)
{
	if (!b->count_node) {
		if (b->stride_node)
			return yfail(y, b->stride_node,
				     "%s.stride: a stride needs a count (count: N makes banks %s0 "
				     "to %sN-1)",
				     path, b->name, b->name);
		return 0;
	}
	if (!b->stride_node) {
		if (b->count > 1)
			return yfail(
			    y, b->count_node,
			    "%s.count: a bank array needs a stride (stride: the bytes from "
			    "%s0 to %s1)",
			    path, b->name, b->name);
		return 0;
	}
	uint64_t extent = 0;
	for (size_t i = 0; i < nregs; i++) {
		uint64_t bytes = (regs[i].def.width + 7) / 8;
		uint64_t end = regs[i].def.offset > UINT64_MAX - bytes ? UINT64_MAX
								       : regs[i].def.offset + bytes;
		if (end > extent)
			extent = end;
	}
	if (b->stride == 0 || b->stride < extent)
		return yfail(
		    y, b->stride_node,
		    "%s.stride: 0x%llx is smaller than the registers of %s (0x%llx bytes): "
		    "make the stride at least 0x%llx",
		    path, (unsigned long long)b->stride, b->name, (unsigned long long)extent,
		    (unsigned long long)(extent ? extent : 1));
	if (b->count > 1 && b->stride > (UINT64_MAX - b->base) / (b->count - 1))
		return yfail(y, b->stride_node, "%s.stride: %s%u would lie beyond 64-bit offsets",
			     path, b->name, b->count - 1);
	return 0;
}

static int add_banks(struct ydoc *y, struct rdo_regmap *map, const struct bank_ctx *b,
		     const yaml_node_t *bn, const struct reg_ctx *regs, size_t nregs)
{
	char why[256];
	for (unsigned i = 0; i < (b->count_node ? b->count : 1); i++) {
		char name[RDO_NAME_MAX + 16];
		if (b->count_node)
			snprintf(name, sizeof(name), "%s%u", b->name, i);
		else
			rdo_strlcpy(name, b->name, sizeof(name));
		if (rdo_regmap_add_bank(map, name, b->bar, b->base + i * b->stride, b->description,
					why, sizeof(why)))
			return yfail(y, bn, "%s", why);
		for (size_t r = 0; r < nregs; r++)
			if (rdo_regmap_add_reg(map, name, &regs[r].def, why, sizeof(why)))
				return yfail(y, regs[r].node, "%s", why);
	}
	return 0;
}

static int load_bank(struct ydoc *y, struct rdo_regmap *map, const yaml_node_t *bn,
		     const char *path)
{
	struct bank_ctx b = {.map = map};
	int rc = walk_map(y, bn, path, bank_keys, visit_bank, &b);
	if (rc)
		return rc;
	if (!b.name || !b.has_bar || !b.has_base || !b.registers)
		return yfail(y, bn, "%s: a bank needs name, bar, base and registers", path);
	size_t nregs =
	    (size_t)(b.registers->data.sequence.items.top - b.registers->data.sequence.items.start);
	struct reg_ctx *regs = calloc(nregs ? nregs : 1, sizeof(*regs));
	if (!regs)
		return yfail(y, bn, "out of memory");
	rc = parse_regs(y, &b, regs);
	if (rc == 0)
		rc = check_array(y, &b, path, regs, nregs);
	if (rc == 0)
		rc = add_banks(y, map, &b, bn, regs, nregs);
	for (size_t i = 0; i < nregs; i++)
		free_parsed_fields(&regs[i]);
	free(regs);
	return rc;
}

struct map_ctx {
	struct rdo_regmap *map;
	const yaml_node_t *identity, *firmware, *serial, *banks, *dma;
	const char *name, *description;
};

static const char *const map_keys[] = {"map",	 "description", "identity", "firmware",
				       "serial", "banks",	"dma",	    NULL};

static const struct opt_key map_dma_opts[] = {
    OPT(struct rdo_map_dma, "protocol", protocol, OPT_STRING),
    OPT(struct rdo_map_dma, "links", links, OPT_UINT, .min = 1, .max = 32),
    OPT(struct rdo_map_dma, "address_bits", address_bits, OPT_UINT, .min = 24, .max = 64),
    {NULL},
};

/* dma: {protocol, links, address_bits}: what the card's DMA engine speaks. */
static int load_map_dma(struct ydoc *y, struct map_ctx *m)
{
	struct rdo_map_dma dma = *rdo_regmap_dma(m->map);
	const yaml_node_t *nodes[OPT_MAX_KEYS] = {NULL};
	int rc = walk_opts(y, m->dma, "dma", map_dma_opts, &dma, nodes);
	if (rc)
		return rc;
	if (strcmp(dma.protocol, "superpage") != 0 && strcmp(dma.protocol, "edu") != 0)
		return yfail(y, nodes[0],
			     "dma.protocol: expected superpage (readout cards) or edu (QEMU's "
			     "edu device), got \"%s\"",
			     dma.protocol);
	rdo_regmap_set_dma(m->map, &dma);
	return 0;
}

static int visit_map(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct map_ctx *m = ctx;
	int rc;
	switch (key) {
	case 0:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		m->name = rc ? NULL : scalar(v);
		return rc;
	case 1:
		return expect_kind(y, v, YAML_SCALAR_NODE, path);
	case 2:
		m->identity = v;
		return expect_kind(y, v, YAML_MAPPING_NODE, path);
	case 3:
		m->firmware = v;
		return expect_kind(y, v, YAML_MAPPING_NODE, path);
	case 4:
		m->serial = v;
		return expect_kind(y, v, YAML_MAPPING_NODE, path);
	case 5:
		m->banks = v;
		return expect_kind(y, v, YAML_SEQUENCE_NODE, path);
	default:
		m->dma = v;
		return expect_kind(y, v, YAML_MAPPING_NODE, path);
	}
}

/* identity: {register, value} and firmware: {register, min, max} */
struct check_ctx {
	const yaml_node_t *reg;
	uint64_t value[2];
	bool has[2];
};

static const char *const identity_keys[] = {"register", "value", NULL};
static const char *const firmware_keys[] = {"register", "min", "max", NULL};
static const char *const serial_keys[] = {"register", NULL};

static int visit_check(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct check_ctx *c = ctx;
	if (key == 0) {
		c->reg = v;
		return expect_kind(y, v, YAML_SCALAR_NODE, path);
	}
	c->has[key - 1] = true;
	return get_u64(y, v, path, &c->value[key - 1]);
}

static int load_checks(struct ydoc *y, struct map_ctx *m)
{
	char why[256];
	struct check_ctx c = {0};
	int rc;
	if (m->identity) {
		rc = walk_map(y, m->identity, "identity", identity_keys, visit_check, &c);
		if (rc)
			return rc;
		if (!c.reg || !c.has[0])
			return yfail(y, m->identity,
				     "identity: expected {register: NAME, value: N}");
		if (rdo_regmap_set_identity(m->map, scalar(c.reg), c.value[0], why, sizeof(why)))
			return yfail(y, c.reg, "%s", why);
	}
	if (m->firmware) {
		c = (struct check_ctx){0};
		rc = walk_map(y, m->firmware, "firmware", firmware_keys, visit_check, &c);
		if (rc)
			return rc;
		if (!c.reg || !c.has[0] || !c.has[1])
			return yfail(y, m->firmware,
				     "firmware: expected {register: NAME, min: N, max: N}");
		if (rdo_regmap_set_firmware(m->map, scalar(c.reg), c.value[0], c.value[1], why,
					    sizeof(why)))
			return yfail(y, c.reg, "%s", why);
	}
	if (m->serial) {
		c = (struct check_ctx){0};
		rc = walk_map(y, m->serial, "serial", serial_keys, visit_check, &c);
		if (rc)
			return rc;
		if (!c.reg)
			return yfail(y, m->serial, "serial: expected {register: NAME}");
		if (rdo_regmap_set_serial(m->map, scalar(c.reg), why, sizeof(why)))
			return yfail(y, c.reg, "%s", why);
	}
	return 0;
}

struct rdo_regmap *rdo_config_load_regmap(const char *file, char *err, size_t errlen)
{
	struct ydoc y;
	if (yload(&y, file, err, errlen))
		return NULL;
	const yaml_node_t *root = yaml_document_get_root_node(&y.doc);
	struct map_ctx m = {0};
	int rc = walk_map(&y, root, "", map_keys, visit_map, &m);
	if (rc == 0 && (!m.name || !m.banks))
		rc = yfail(&y, root, "a register map needs \"map: NAME\" and \"banks:\"");
	if (rc == 0) {
		m.map = rdo_regmap_create(m.name, file);
		if (!m.map)
			rc = yfail(&y, root, "out of memory");
	}
	for (yaml_node_item_t *it = rc ? NULL : m.banks->data.sequence.items.start;
	     it && it < m.banks->data.sequence.items.top && rc == 0; it++) {
		char path[64];
		snprintf(path, sizeof(path), "banks[%td]", it - m.banks->data.sequence.items.start);
		rc = load_bank(&y, m.map, ynode(&y, *it), path);
	}
	if (rc == 0)
		rc = load_checks(&y, &m);
	if (rc == 0 && m.dma)
		rc = load_map_dma(&y, &m);
	yaml_document_delete(&y.doc);
	if (rc)
		rdo_regmap_destroy(&m.map);
	return m.map;
}
