#include "common/yaml.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/log.h"

/* A loaded YAML document and where to report what is wrong with it. */
struct rdo_ydoc {
	const char *file;
	yaml_document_t doc;
	char *err;
	size_t errlen;
};

/* A handle is the libyaml node itself, never dereferenced outside this file. */
static const yaml_node_t *N(const struct rdo_ynode *n)
{
	return (const yaml_node_t *)n;
}

static const struct rdo_ynode *H(const yaml_node_t *n)
{
	return (const struct rdo_ynode *)n;
}

int rdo_yaml_fail(struct rdo_ydoc *y, const struct rdo_ynode *h, const char *fmt, ...)
{
	const yaml_node_t *n = N(h);
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

static const yaml_node_t *ynode(struct rdo_ydoc *y, int index)
{
	return yaml_document_get_node(&y->doc, index);
}

enum rdo_ykind rdo_yaml_kind(const struct rdo_ynode *n)
{
	switch (N(n)->type) {
	case YAML_MAPPING_NODE:
		return RDO_YMAP;
	case YAML_SEQUENCE_NODE:
		return RDO_YLIST;
	default:
		return RDO_YSCALAR;
	}
}

static const char *const kind_names[] = {
    [RDO_YSCALAR] = "a scalar", [RDO_YLIST] = "a list", [RDO_YMAP] = "a mapping"};

const char *rdo_yaml_kind_name(const struct rdo_ynode *n)
{
	return kind_names[rdo_yaml_kind(n)];
}

const char *rdo_yaml_scalar(const struct rdo_ynode *n)
{
	return N(n)->type == YAML_SCALAR_NODE ? (const char *)N(n)->data.scalar.value : NULL;
}

unsigned rdo_yaml_line(const struct rdo_ynode *n)
{
	return (unsigned)N(n)->start_mark.line + 1;
}

unsigned rdo_yaml_column(const struct rdo_ynode *n)
{
	return (unsigned)N(n)->start_mark.column + 1;
}

size_t rdo_yaml_count(const struct rdo_ynode *h)
{
	const yaml_node_t *n = N(h);
	if (n->type == YAML_SEQUENCE_NODE)
		return (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
	if (n->type == YAML_MAPPING_NODE)
		return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
	return 0;
}

const struct rdo_ynode *rdo_yaml_item(struct rdo_ydoc *y, const struct rdo_ynode *list, size_t i)
{
	return H(ynode(y, N(list)->data.sequence.items.start[i]));
}

void rdo_yaml_pair(struct rdo_ydoc *y, const struct rdo_ynode *map, size_t i,
		   const struct rdo_ynode **key, const struct rdo_ynode **value)
{
	const yaml_node_pair_t *p = &N(map)->data.mapping.pairs.start[i];
	*key = H(ynode(y, p->key));
	*value = H(ynode(y, p->value));
}

int rdo_yaml_load(const char *file, struct rdo_ydoc **out, char *err, size_t errlen)
{
	struct rdo_ydoc *y = calloc(1, sizeof(*y));
	if (!y) {
		snprintf(err, errlen, "%s: out of memory", file);
		return -ENOMEM;
	}
	*y = (struct rdo_ydoc){.file = file, .err = err, .errlen = errlen};
	FILE *f = fopen(file, "rb");
	if (!f) {
		int rc = -errno;
		snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
		free(y);
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
	if (rc)
		free(y);
	else
		*out = y;
	return rc;
}

void rdo_yaml_destroy(struct rdo_ydoc **y)
{
	if (!*y)
		return;
	yaml_document_delete(&(*y)->doc);
	free(*y);
	*y = NULL;
}

const struct rdo_ynode *rdo_yaml_root(struct rdo_ydoc *y)
{
	return H(yaml_document_get_root_node(&y->doc));
}

const char *rdo_yaml_file(const struct rdo_ydoc *y)
{
	return y->file;
}

int rdo_yaml_expect(struct rdo_ydoc *y, const struct rdo_ynode *n, enum rdo_ykind kind,
		    const char *path)
{
	if (rdo_yaml_kind(n) == kind)
		return 0;
	return rdo_yaml_fail(y, n, "%s: expected %s, got %s", path, kind_names[kind],
			     rdo_yaml_kind_name(n));
}

int rdo_yaml_get_text(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		      const char **out)
{
	int rc = rdo_yaml_expect(y, n, RDO_YSCALAR, path);
	if (rc == 0)
		*out = rdo_yaml_scalar(n);
	return rc;
}

int rdo_yaml_get_u64(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, uint64_t *out)
{
	const char *s = rdo_yaml_scalar(n);
	if (!s)
		return rdo_yaml_fail(y, n, "%s: expected an integer, got %s", path,
				     rdo_yaml_kind_name(n));
	int rc = rdo_parse_u64(s, out);
	if (rc == -ERANGE)
		return rdo_yaml_fail(y, n, "%s: %s does not fit in 64 bits", path, s);
	if (rc)
		return rdo_yaml_fail(
		    y, n,
		    "%s: expected an integer, got \"%s\" (write decimal, 0x hex or "
		    "0b binary)",
		    path, s);
	return 0;
}

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

const char *rdo_yaml_fmt_size(char *buf, size_t cap, uint64_t v)
{
	return fmt_amount(buf, cap, v, true);
}

/* What a number may be: the key's min..max, and a multiple of its step unless that is 0. */
static int check_limits(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, uint64_t v,
			const struct rdo_yopt *l)
{
	char got[32], lim[32];
	fmt_amount(got, sizeof(got), v, l->size);
	if (v < l->min)
		return rdo_yaml_fail(y, n, "%s: %s is too small (at least %s)", path, got,
				     fmt_amount(lim, sizeof(lim), l->min, l->size));
	if (v > l->max)
		return rdo_yaml_fail(y, n, "%s: %s is too large (at most %s)", path, got,
				     fmt_amount(lim, sizeof(lim), l->max, l->size));
	if (l->step > 1 && v % l->step)
		return rdo_yaml_fail(y, n, "%s: %s is not a multiple of %s", path, got,
				     fmt_amount(lim, sizeof(lim), l->step, l->size));
	return 0;
}

int rdo_yaml_get_uint(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, uint64_t min,
		      uint64_t max, unsigned *out)
{
	uint64_t v;
	int rc = rdo_yaml_get_u64(y, n, path, &v);
	if (rc == 0)
		rc = check_limits(y, n, path, v, &(struct rdo_yopt){.min = min, .max = max});
	if (rc == 0)
		*out = (unsigned)v;
	return rc;
}

/* A size ("1MiB", "4096") or, with `rate`, a rate ("100MB/s"; the "/s" is optional). */
static int get_amount(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, bool rate,
		      uint64_t *out)
{
	const char *want =
	    rate ? "a rate like 100MB/s, 1GiB/s or 0" : "a size like 4096, 8KiB or 1MiB";
	const char *s = rdo_yaml_scalar(n);
	if (!s)
		return rdo_yaml_fail(y, n, "%s: expected %s, got %s", path, want,
				     rdo_yaml_kind_name(n));
	size_t len = N(n)->data.scalar.length;
	if (!rate && len > 2 && strcmp(s + len - 2, "/s") == 0)
		return rdo_yaml_fail(y, n, "%s: expected %s, got the rate \"%s\" (drop the /s)",
				     path, want, s);
	int rc = rdo_parse_size(s, out);
	if (rc == -ERANGE)
		return rdo_yaml_fail(y, n, "%s: %s does not fit in 64 bits", path, s);
	if (rc)
		return rdo_yaml_fail(y, n,
				     "%s: expected %s, got \"%s\" (units K, M, G are powers of "
				     "1000, KiB, MiB, GiB powers of 1024)",
				     path, want, s);
	return 0;
}

int rdo_yaml_get_size(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		      uint64_t *out)
{
	return get_amount(y, n, path, false, out);
}

int rdo_yaml_get_rate(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		      uint64_t *out)
{
	return get_amount(y, n, path, true, out);
}

int rdo_yaml_get_str(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, char *dst,
		     size_t cap)
{
	const char *s = rdo_yaml_scalar(n);
	if (!s)
		return rdo_yaml_fail(y, n, "%s: expected a string, got %s", path,
				     rdo_yaml_kind_name(n));
	size_t len = N(n)->data.scalar.length;
	if (len >= cap)
		return rdo_yaml_fail(y, n, "%s: longer than %zu characters", path, cap - 1);
	memcpy(dst, s, len + 1);
	return 0;
}

int rdo_yaml_get_bool(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, bool *out)
{
	static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no",
									       "off"};
	const char *s = rdo_yaml_scalar(n);
	for (size_t i = 0; s && i < RDO_ARRAY_SIZE(yes); i++) {
		if (strcmp(s, yes[i]) == 0)
			return *out = true, 0;
		if (strcmp(s, no[i]) == 0)
			return *out = false, 0;
	}
	return rdo_yaml_fail(y, n, "%s: expected true or false, got %s%s%s", path, s ? "\"" : "",
			     s ? s : rdo_yaml_kind_name(n), s ? "\"" : "");
}

int rdo_yaml_path_relative(char *dst, size_t cap, const char *base, const char *rel)
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

int rdo_yaml_get_path(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, char *dst,
		      size_t cap)
{
	char rel[PATH_MAX];
	int rc = rdo_yaml_get_str(y, n, path, rel, sizeof(rel));
	if (rc == 0 && rel[0] && rdo_yaml_path_relative(dst, cap, y->file, rel))
		return rdo_yaml_fail(y, n, "%s: path too long", path);
	if (rc == 0 && !rel[0])
		dst[0] = '\0';
	return rc;
}

int rdo_yaml_get_endpoints(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path,
			   struct rdo_endpoints *e)
{
	int rc = rdo_yaml_expect(y, v, RDO_YLIST, path);
	if (rc)
		return rc;
	size_t n = rdo_yaml_count(v);
	if (n == 0 || n > RDO_MAX_ENDPOINTS)
		return rdo_yaml_fail(y, v, "%s: expected 1 to %d endpoints, got %zu", path,
				     RDO_MAX_ENDPOINTS, n);
	e->n = 0;
	for (size_t i = 0; i < n; i++) {
		const struct rdo_ynode *en = rdo_yaml_item(y, v, i);
		char ep[RDO_ENDPOINT_MAX];
		rc = rdo_yaml_get_str(y, en, path, ep, sizeof(ep));
		if (rc)
			return rc;
		if (!rdo_endpoint_valid(ep))
			return rdo_yaml_fail(
			    y, en, "%s: expected tcp://HOST:PORT or ipc://PATH, got \"%s\"", path,
			    ep);
		for (size_t j = 0; j < e->n; j++)
			if (strcmp(e->ep[j], ep) == 0)
				return rdo_yaml_fail(y, en, "%s: \"%s\" is listed twice", path, ep);
		rdo_endpoints_add(e, ep);
	}
	return 0;
}

int rdo_yaml_get_log_level(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
			   int *out)
{
	char level[16];
	int rc = rdo_yaml_get_str(y, n, path, level, sizeof(level));
	if (rc)
		return rc;
	int l = rdo_log_level_parse(level);
	if (l < 0)
		return rdo_yaml_fail(y, n,
				     "%s: expected err, warning, notice, info or debug, got \"%s\"",
				     path, level);
	*out = l;
	return 0;
}

int rdo_yaml_walk_map(struct rdo_ydoc *y, const struct rdo_ynode *map, const char *path,
		      const char *const *keys, rdo_yaml_visit_fn visit, void *ctx)
{
	int rc = rdo_yaml_expect(y, map, RDO_YMAP, path[0] ? path : "top level");
	if (rc)
		return rc;
	uint64_t seen = 0;
	for (size_t p = 0; p < rdo_yaml_count(map); p++) {
		const struct rdo_ynode *k, *v;
		rdo_yaml_pair(y, map, p, &k, &v);
		const char *name = rdo_yaml_scalar(k);
		if (!name)
			return rdo_yaml_fail(y, k, "%s: keys must be plain words", path);
		int idx = -1;
		for (int i = 0; keys[i]; i++)
			if (strcmp(keys[i], name) == 0)
				idx = i;
		char sub[256];
		snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", name);
		if (idx < 0) {
			char allowed[512] = "";
			for (int i = 0; keys[i]; i++)
				snprintf(allowed + strlen(allowed),
					 sizeof(allowed) - strlen(allowed), "%s%s", i ? ", " : "",
					 keys[i]);
			return rdo_yaml_fail(y, k, "%s: unknown key (expected one of: %s)", sub,
					     allowed);
		}
		if (seen & (1ull << idx))
			return rdo_yaml_fail(y, k, "%s: given twice", sub);
		seen |= 1ull << idx;
		rc = visit(y, ctx, idx, v, sub);
		if (rc)
			return rc;
	}
	return 0;
}

struct opts_ctx {
	const struct rdo_yopt *keys;
	void *base;
	const struct rdo_ynode **nodes; /* NULL, or where each key was given */
};

/* Integer members are 64 bits (uint64_t, size_t) or 32 (unsigned, uint32_t, an enum). */
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

static int visit_opt(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		     const char *path)
{
	struct opts_ctx *c = ctx;
	const struct rdo_yopt *k = &c->keys[key];
	void *dst = (char *)c->base + k->offset;
	uint64_t u = 0;
	int rc;
	if (c->nodes)
		c->nodes[key] = v;
	switch (k->type) {
	case RDO_YOPT_BOOL:
		return rdo_yaml_get_bool(y, v, path, dst);
	case RDO_YOPT_ENDPOINTS:
		return rdo_yaml_get_endpoints(y, v, path, dst);
	case RDO_YOPT_STRING: /* into a char array of `width` */
		return rdo_yaml_get_str(y, v, path, dst, k->width);
	case RDO_YOPT_PATH:
		return rdo_yaml_get_path(y, v, path, dst, k->width);
	case RDO_YOPT_CUSTOM: /* checks its own limits */
		rc = k->custom->parse(y, v, path, &u);
		break;
	case RDO_YOPT_UINT:
		rc = rdo_yaml_get_u64(y, v, path, &u);
		break;
	default:
		rc = get_amount(y, v, path, k->type == RDO_YOPT_RATE, &u);
		break;
	}
	if (rc == 0 && k->type != RDO_YOPT_CUSTOM)
		rc = check_limits(y, v, path, u, k);
	if (rc == 0)
		store_uint(dst, k->width, u);
	return rc;
}

int rdo_yaml_walk_opts(struct rdo_ydoc *y, const struct rdo_ynode *map, const char *path,
		       const struct rdo_yopt *keys, void *base, const struct rdo_ynode **nodes)
{
	const char *names[RDO_YOPT_MAX + 1];
	size_t n = 0;
	for (; keys[n].name && n < RDO_YOPT_MAX; n++)
		names[n] = keys[n].name;
	names[n] = NULL;
	struct opts_ctx c = {.keys = keys, .base = base, .nodes = nodes};
	return rdo_yaml_walk_map(y, map, path, names, visit_opt, &c);
}

void rdo_yaml_print_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			fputc('\\', f);
		fputc(*s, f);
	}
	fputc('"', f);
}

void rdo_yaml_print_path(FILE *f, const char *path)
{
	char abs[PATH_MAX];
	rdo_yaml_print_str(f, path[0] && realpath(path, abs) ? abs : path);
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

static void print_endpoints(FILE *f, const struct rdo_endpoints *e)
{
	fputc('[', f);
	for (size_t i = 0; i < e->n; i++) {
		fputs(i ? ", " : "", f);
		rdo_yaml_print_str(f, e->ep[i]);
	}
	fputc(']', f);
}

void rdo_yaml_print_opts(FILE *f, int indent, const char *section, const struct rdo_yopt *keys,
			 const void *base)
{
	if (section)
		fprintf(f, "%*s%s:\n", indent, "", section);
	indent += section ? 2 : 0;
	for (const struct rdo_yopt *k = keys; k->name; k++) {
		const void *src = (const char *)base + k->offset;
		char buf[64];
		fprintf(f, "%*s%s: ", indent, "", k->name);
		switch (k->type) {
		case RDO_YOPT_BOOL:
			fputs(*(const bool *)src ? "true" : "false", f);
			break;
		case RDO_YOPT_ENDPOINTS:
			print_endpoints(f, src);
			break;
		case RDO_YOPT_STRING:
			rdo_yaml_print_str(f, src);
			break;
		case RDO_YOPT_PATH:
			rdo_yaml_print_path(f, src);
			break;
		case RDO_YOPT_CUSTOM:
			k->custom->print(f, load_uint(src, k->width));
			break;
		case RDO_YOPT_UINT:
			fprintf(f, k->hex ? "0x%llx" : "%llu",
				(unsigned long long)load_uint(src, k->width));
			break;
		case RDO_YOPT_RATE:
			fputs(fmt_rate(buf, sizeof(buf), load_uint(src, k->width)), f);
			break;
		default:
			fputs(rdo_yaml_fmt_size(buf, sizeof(buf), load_uint(src, k->width)), f);
			break;
		}
		fputc('\n', f);
	}
}
