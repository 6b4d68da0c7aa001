#include "config.h"

#include <errno.h>
#include <libgen.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "log.h"
#include "util.h"

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
	*y = (struct ydoc){ .file = file, .err = err, .errlen = errlen };
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
	const char *want = type == YAML_MAPPING_NODE ? "a mapping"
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
		return yfail(y, n, "%s: expected an integer, got \"%s\" (write decimal, 0x hex or 0b "
			     "binary)",
			     path, scalar(n));
	return 0;
}

static int get_uint(struct ydoc *y, const yaml_node_t *n, const char *path, uint64_t max,
		    unsigned *out)
{
	uint64_t v;
	int rc = get_u64(y, n, path, &v);
	if (rc)
		return rc;
	if (v > max)
		return yfail(y, n, "%s: %llu is too large (at most %llu)", path,
			     (unsigned long long)v, (unsigned long long)max);
	*out = (unsigned)v;
	return 0;
}

static int get_str(struct ydoc *y, const yaml_node_t *n, const char *path, char *dst,
		   size_t cap)
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
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
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
				snprintf(allowed + strlen(allowed), sizeof(allowed) - strlen(allowed),
					 "%s%s", i ? ", " : "", keys[i]);
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
	rdo_card_opts_init(&o->card);
	rdo_strlcpy(o->regmap_file, "config/regmaps/rdo-sim.yaml", sizeof(o->regmap_file));
	rdo_strlcpy(o->control_bind[0], RDO_DEFAULT_CONTROL_TCP, RDO_ENDPOINT_MAX);
	rdo_strlcpy(o->control_bind[1], RDO_DEFAULT_CONTROL_IPC, RDO_ENDPOINT_MAX);
	o->ncontrol_bind = 2;
	o->log_level = LOG_INFO;
}

static const char *const sim_keys[] = { "links", "serial", "firmware", "identity", NULL };

static int visit_sim(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct rdo_card_opts *c = ctx;
	unsigned u = 0;
	int rc;
	switch (key) {
	case 0:
		return get_uint(y, v, path, 1024, &c->links);
	case 1:
		return get_u64(y, v, path, &c->serial);
	case 2:
		rc = get_uint(y, v, path, UINT32_MAX, &u);
		c->fw_version = u;
		return rc;
	default:
		rc = get_uint(y, v, path, UINT32_MAX, &u);
		c->identity = u;
		return rc;
	}
}

static const char *const card_keys[] = { "name",  "backend", "address", "regmap",
					  "force", "sim",     NULL };

static int visit_card(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct rdo_server_opts *o = ctx;
	char rel[PATH_MAX];
	int rc;
	switch (key) {
	case 0:
		rc = get_str(y, v, path, o->card.name, sizeof(o->card.name));
		if (rc == 0 && !rdo_regmap_valid_name(o->card.name))
			return yfail(y, v, "%s: \"%s\" is not a valid card name (letters, digits, '_')",
				     path, o->card.name);
		return rc;
	case 1:
		rc = get_str(y, v, path, o->card.backend, sizeof(o->card.backend));
		if (rc == 0 && strcmp(o->card.backend, "sim") != 0)
			return yfail(y, v, "%s: expected \"sim\" (the backends of this build), got \"%s\"",
				     path, o->card.backend);
		return rc;
	case 2:
		return get_str(y, v, path, o->card.address, sizeof(o->card.address));
	case 3:
		rc = get_str(y, v, path, rel, sizeof(rel));
		if (rc == 0 && path_relative_to(o->regmap_file, sizeof(o->regmap_file), y->file, rel))
			return yfail(y, v, "%s: path too long", path);
		return rc;
	case 4:
		return get_bool(y, v, path, &o->force);
	default:
		return walk_map(y, v, path, sim_keys, visit_sim, &o->card);
	}
}

static const char *const control_keys[] = { "bind", NULL };

static int visit_control(struct ydoc *y, void *ctx, int key, const yaml_node_t *v,
			 const char *path)
{
	struct rdo_server_opts *o = ctx;
	(void)key;
	int rc = expect_kind(y, v, YAML_SEQUENCE_NODE, path);
	if (rc)
		return rc;
	size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
	if (n == 0 || n > RDO_MAX_ENDPOINTS)
		return yfail(y, v, "%s: expected 1 to %d endpoints, got %zu", path,
			     RDO_MAX_ENDPOINTS, n);
	o->ncontrol_bind = n;
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *e = ynode(y, v->data.sequence.items.start[i]);
		rc = get_str(y, e, path, o->control_bind[i], RDO_ENDPOINT_MAX);
		if (rc)
			return rc;
		if (strncmp(o->control_bind[i], "tcp://", 6) && strncmp(o->control_bind[i], "ipc://", 6))
			return yfail(y, e, "%s: expected tcp://HOST:PORT or ipc://PATH, got \"%s\"",
				     path, o->control_bind[i]);
	}
	return 0;
}

static const char *const top_keys[] = { "card", "control", "log_level", NULL };

static int visit_top(struct ydoc *y, void *ctx, int key, const yaml_node_t *v, const char *path)
{
	struct rdo_server_opts *o = ctx;
	char level[16];
	int rc;
	switch (key) {
	case 0:
		return walk_map(y, v, path, card_keys, visit_card, o);
	case 1:
		return walk_map(y, v, path, control_keys, visit_control, o);
	default:
		rc = get_str(y, v, path, level, sizeof(level));
		if (rc)
			return rc;
		o->log_level = rdo_log_level_parse(level);
		if (o->log_level < 0)
			return yfail(y, v, "%s: expected err, warning, notice, info or debug, got \"%s\"",
				     path, level);
		return 0;
	}
}

int rdo_config_load(const char *file, struct rdo_server_opts *o, char *err, size_t errlen)
{
	struct ydoc y;
	int rc = yload(&y, file, err, errlen);
	if (rc)
		return rc;
	rdo_strlcpy(o->config_file, file, sizeof(o->config_file));
	/* The default map sits beside the default config: resolve it the same way. */
	path_relative_to(o->regmap_file, sizeof(o->regmap_file), file, "regmaps/rdo-sim.yaml");
	rc = walk_map(&y, yaml_document_get_root_node(&y.doc), "", top_keys, visit_top, o);
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

static const char *const field_keys[] = { "name", "bits", "description", "values", NULL };

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
		struct field_ctx fc = { .f = &rc_->fields[i] };
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

static const char *const reg_keys[] = { "name",  "offset",      "width",  "access",
					 "reset", "description", "fields", NULL };

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
		return get_uint(y, v, path, 64, &r->def.width);
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
	const char *registers_path;
	bool has_bar, has_base;
};

static const char *const bank_keys[] = { "name", "bar", "base", "description", "registers", NULL };

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
		return get_uint(y, v, path, RDO_CARD_MAX_BARS - 1, &b->bar);
	case 2:
		b->has_base = true;
		return get_u64(y, v, path, &b->base);
	case 3:
		rc = expect_kind(y, v, YAML_SCALAR_NODE, path);
		b->description = rc ? NULL : scalar(v);
		return rc;
	default:
		b->registers = v;
		return expect_kind(y, v, YAML_SEQUENCE_NODE, path);
	}
}

static int load_bank(struct ydoc *y, struct rdo_regmap *map, const yaml_node_t *bn,
		     const char *path)
{
	struct bank_ctx b = { .map = map };
	int rc = walk_map(y, bn, path, bank_keys, visit_bank, &b);
	if (rc)
		return rc;
	if (!b.name || !b.has_bar || !b.has_base || !b.registers)
		return yfail(y, bn, "%s: a bank needs name, bar, base and registers", path);
	char why[256];
	rc = rdo_regmap_add_bank(map, b.name, b.bar, b.base, b.description, why, sizeof(why));
	if (rc)
		return yfail(y, bn, "%s", why);
	for (yaml_node_item_t *it = b.registers->data.sequence.items.start;
	     it < b.registers->data.sequence.items.top; it++) {
		yaml_node_t *rn = ynode(y, *it);
		struct reg_ctx r = { .def = { .width = 32 } };
		char sub[256];
		snprintf(sub, sizeof(sub), "%s.registers[%td]", b.name,
			 it - b.registers->data.sequence.items.start);
		rc = walk_map(y, rn, sub, reg_keys, visit_reg, &r);
		if (rc == 0 && (!r.def.name || !r.has_offset))
			rc = yfail(y, rn, "%s: a register needs a name and an offset", sub);
		r.def.fields = r.fields;
		if (rc == 0 && rdo_regmap_add_reg(map, b.name, &r.def, why, sizeof(why)))
			rc = yfail(y, rn, "%s", why);
		free_parsed_fields(&r);
		if (rc)
			return rc;
	}
	return 0;
}

struct map_ctx {
	struct rdo_regmap *map;
	const yaml_node_t *identity, *firmware, *serial, *banks;
	const char *name, *description;
};

static const char *const map_keys[] = { "map",	   "description", "identity", "firmware",
					 "serial", "banks",	  NULL };

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
	default:
		m->banks = v;
		return expect_kind(y, v, YAML_SEQUENCE_NODE, path);
	}
}

/* identity: {register, value} and firmware: {register, min, max} */
struct check_ctx {
	const yaml_node_t *reg;
	uint64_t value[2];
	bool has[2];
};

static const char *const identity_keys[] = { "register", "value", NULL };
static const char *const firmware_keys[] = { "register", "min", "max", NULL };
static const char *const serial_keys[] = { "register", NULL };

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
	struct check_ctx c = { 0 };
	int rc;
	if (m->identity) {
		rc = walk_map(y, m->identity, "identity", identity_keys, visit_check, &c);
		if (rc)
			return rc;
		if (!c.reg || !c.has[0])
			return yfail(y, m->identity, "identity: expected {register: NAME, value: N}");
		if (rdo_regmap_set_identity(m->map, scalar(c.reg), c.value[0], why, sizeof(why)))
			return yfail(y, c.reg, "%s", why);
	}
	if (m->firmware) {
		c = (struct check_ctx){ 0 };
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
		c = (struct check_ctx){ 0 };
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
	struct map_ctx m = { 0 };
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
	yaml_document_delete(&y.doc);
	if (rc)
		rdo_regmap_destroy(&m.map);
	return m.map;
}
