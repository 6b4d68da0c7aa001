#include "service/config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "card/regmap.h"
#include "common/log.h"
#include "common/util.h"
#include "common/writer_keys.h"
#include "common/yaml.h"
#include "net/control.h"

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
 * dma.links: the word "all", a list of link numbers, or a mask. "all" keeps
 * every bit set, so that it means all the links the card turns out to have.
 */
static int parse_link_mask(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path,
			   uint64_t *out)
{
	static const char want[] = "all, a list of link numbers 0-31 or an integer mask";
	if (rdo_yaml_kind(v) == RDO_YLIST) {
		uint64_t mask = 0;
		for (size_t i = 0; i < rdo_yaml_count(v); i++) {
			const struct rdo_ynode *ln = rdo_yaml_item(y, v, i);
			char sub[300];
			snprintf(sub, sizeof(sub), "%s[%zu]", path, i);
			unsigned link;
			int rc = rdo_yaml_get_uint(y, ln, sub, 0, RDO_DMA_MAX_LINKS - 1, &link);
			if (rc)
				return rc;
			if (mask & (1ull << link))
				return rdo_yaml_fail(y, ln, "%s: link %u is listed twice", path,
						     link);
			mask |= 1ull << link;
		}
		if (!mask)
			return rdo_yaml_fail(y, v, "%s: expected %s, got an empty list", path,
					     want);
		*out = mask;
		return 0;
	}
	const char *s = rdo_yaml_scalar(v);
	if (!s)
		return rdo_yaml_fail(y, v, "%s: expected %s, got %s", path, want,
				     rdo_yaml_kind_name(v));
	if (strcmp(s, "all") == 0) {
		*out = UINT32_MAX;
		return 0;
	}
	int rc = rdo_parse_u64(s, out);
	if (rc == 0 && *out == 0)
		return rdo_yaml_fail(y, v, "%s: the mask 0 selects no link (expected %s)", path,
				     want);
	if (rc == 0 && *out > UINT32_MAX)
		return rdo_yaml_fail(y, v, "%s: %s has bits above link 31 (expected %s)", path, s,
				     want);
	if (rc)
		return rdo_yaml_fail(y, v, "%s: expected %s, got \"%s\"", path, want, s);
	return 0;
}

static void print_link_mask(FILE *f, uint64_t m)
{
	if (m == UINT32_MAX)
		fputs("all", f);
	else
		fprintf(f, "0x%llx", (unsigned long long)m);
}

static const struct rdo_ytype link_mask_type = {.parse = parse_link_mask, .print = print_link_mask};

/* A file mode as chmod takes it: octal, 0000 to 0777. */
static int parse_mode(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path,
		      uint64_t *out)
{
	const char *s = rdo_yaml_scalar(v) ? rdo_yaml_scalar(v) : "";
	char *end;
	unsigned long m = strtoul(s, &end, 8);
	if (!s[0] || *end || m > 0777)
		return rdo_yaml_fail(
		    y, v, "%s: expected a file mode in octal like 0660, got \"%s\"", path, s);
	*out = m;
	return 0;
}

static void print_mode(FILE *f, uint64_t m)
{
	fprintf(f, "0%03llo", (unsigned long long)m);
}

static const struct rdo_ytype mode_type = {.parse = parse_mode, .print = print_mode};

/* security.local_role: what a client on a plain endpoint may do. */
static int parse_role(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path,
		      uint64_t *out)
{
	char role[16];
	int rc = rdo_yaml_get_str(y, v, path, role, sizeof(role));
	int r = rc ? rc : rdo_role_parse(role);
	if (r < 0 || r == RDO_ROLE_NONE)
		return rdo_yaml_fail(y, v, "%s: expected monitor or operator, got \"%s\"", path,
				     rc ? rdo_yaml_kind_name(v) : role);
	*out = (uint64_t)r;
	return 0;
}

static void print_role(FILE *f, uint64_t r)
{
	fputs(rdo_role_name((enum rdo_role)r), f);
}

static const struct rdo_ytype role_type = {.parse = parse_role, .print = print_role};

static const struct rdo_yopt sim_opts[] = {
    RDO_YOPT(struct rdo_card_opts, "links", links, RDO_YOPT_UINT, .min = 1, .max = 1024),
    RDO_YOPT(struct rdo_card_opts, "serial", serial, RDO_YOPT_UINT, .max = UINT64_MAX, .hex = true),
    RDO_YOPT(struct rdo_card_opts, "firmware", fw_version, RDO_YOPT_UINT, .max = UINT32_MAX,
	     .hex = true),
    RDO_YOPT(struct rdo_card_opts, "identity", identity, RDO_YOPT_UINT, .max = UINT32_MAX,
	     .hex = true),
    RDO_YOPT(struct rdo_card_opts, "rate", sim_rate, RDO_YOPT_RATE, .max = UINT64_MAX,
	     .size = true),
    RDO_YOPT(struct rdo_card_opts, "pulsed", sim_pulsed, RDO_YOPT_BOOL),
    RDO_YOPT(struct rdo_card_opts, "pulse_hz", sim_pulse_hz, RDO_YOPT_UINT, .min = 1, .max = 10000),
    RDO_YOPT(struct rdo_card_opts, "pulse_bytes", sim_pulse_bytes, RDO_YOPT_SIZE, .min = 1,
	     .max = 1ull << 31, .size = true),
    RDO_YOPT(struct rdo_card_opts, "variable_size", sim_variable_size, RDO_YOPT_BOOL),
    RDO_YOPT(struct rdo_card_opts, "header_only", sim_header_only, RDO_YOPT_BOOL),
    {NULL},
};

static const struct rdo_yopt control_opts[] = {
    RDO_YOPT(struct rdo_server_opts, "bind", control, RDO_YOPT_ENDPOINTS),
    {NULL},
};

/* The dma keys check_dma looks up. */
enum dma_key { DMA_SUPERPAGE_SIZE, DMA_SUPERPAGES, DMA_LINKS, DMA_PAGE_SIZE };

static const struct rdo_yopt dma_opts[] = {
    [DMA_SUPERPAGE_SIZE] =
	RDO_YOPT(struct rdo_dma_opts, "superpage_size", superpage_size, RDO_YOPT_SIZE, .min = 4096,
		 .max = 256ull << 20, .step = 4096, .size = true),
    [DMA_SUPERPAGES] = RDO_YOPT(struct rdo_dma_opts, "superpages", superpages, RDO_YOPT_UINT,
				.min = 2, .max = 65536),
    [DMA_LINKS] = RDO_YOPT(struct rdo_dma_opts, "links", link_mask, RDO_YOPT_CUSTOM,
			   .custom = &link_mask_type),
    [DMA_PAGE_SIZE] = RDO_YOPT(struct rdo_dma_opts, "page_size", page_size, RDO_YOPT_SIZE,
			       .min = 64, .max = 8192, .step = 8, .size = true),
    RDO_YOPT(struct rdo_dma_opts, "irq_coalesce", irq_coalesce, RDO_YOPT_UINT, .min = 1,
	     .max = 1024),
    RDO_YOPT(struct rdo_dma_opts, "irq_holdoff_us", irq_holdoff_us, RDO_YOPT_UINT, .min = 1,
	     .max = 1000000),
    RDO_YOPT(struct rdo_dma_opts, "autostart", autostart, RDO_YOPT_BOOL),
    {NULL},
};

static const struct rdo_yopt live_opts[] = {
    RDO_YOPT(struct rdo_live_opts, "enabled", enabled, RDO_YOPT_BOOL),
    RDO_YOPT(struct rdo_live_opts, "bind", bind, RDO_YOPT_ENDPOINTS),
    RDO_YOPT(struct rdo_live_opts, "hwm", hwm, RDO_YOPT_UINT, .min = 1, .max = 100000),
    {NULL},
};

static const struct rdo_yopt lossless_opts[] = {
    RDO_YOPT(struct rdo_lossless_opts, "enabled", enabled, RDO_YOPT_BOOL),
    RDO_YOPT(struct rdo_lossless_opts, "bind", bind, RDO_YOPT_ENDPOINTS),
    RDO_YOPT(struct rdo_lossless_opts, "timeout_ms", timeout_ms, RDO_YOPT_UINT, .min = 100,
	     .max = 600000),
    {NULL},
};

static const struct rdo_yopt status_opts[] = {
    RDO_YOPT(struct rdo_status_opts, "bind", bind, RDO_YOPT_ENDPOINTS),
    RDO_YOPT(struct rdo_status_opts, "interval_ms", interval_ms, RDO_YOPT_UINT, .min = 10,
	     .max = 3600000),
    RDO_YOPT(struct rdo_status_opts, "log_interval_s", log_interval_s, RDO_YOPT_UINT, .max = 86400),
    {NULL},
};

/*
 * The card fills superpages with whole DMA pages, so a superpage must hold a
 * whole number of them, at least one. Each key is fine alone; only together
 * can they be wrong, so the message names both and points at the one given.
 */
static int check_dma(struct rdo_ydoc *y, const struct rdo_ynode *section,
		     const struct rdo_ynode **nodes, const struct rdo_dma_opts *d)
{
	if (d->superpage_size >= d->page_size && d->superpage_size % d->page_size == 0)
		return 0;
	const struct rdo_ynode *at = nodes[DMA_SUPERPAGE_SIZE] ? nodes[DMA_SUPERPAGE_SIZE]
				     : nodes[DMA_PAGE_SIZE]    ? nodes[DMA_PAGE_SIZE]
							       : section;
	char sp[32], pg[32], fix[32];
	rdo_yaml_fmt_size(sp, sizeof(sp), d->superpage_size);
	rdo_yaml_fmt_size(pg, sizeof(pg), d->page_size);
	if (d->superpage_size < d->page_size)
		return rdo_yaml_fail(
		    y, at,
		    "dma.superpage_size: %s does not hold one dma.page_size of %s: "
		    "raise dma.superpage_size to at least %s or lower "
		    "dma.page_size",
		    sp, pg, rdo_yaml_fmt_size(fix, sizeof(fix), d->page_size));
	/* The next size up that is a multiple of both the page and 4 KiB. */
	uint64_t a = d->page_size, b = 4096;
	while (b) {
		uint64_t t = a % b;
		a = b;
		b = t;
	}
	uint64_t step = d->page_size / a * 4096;
	rdo_yaml_fmt_size(fix, sizeof(fix), (d->superpage_size + step - 1) / step * step);
	return rdo_yaml_fail(y, at,
			     "dma.superpage_size: %s is not a multiple of dma.page_size %s: make "
			     "dma.superpage_size a multiple of dma.page_size (%s is) or "
			     "dma.page_size a divisor of dma.superpage_size",
			     sp, pg, fix);
}

static const struct rdo_yopt security_opts[] = {
    RDO_YOPT(struct rdo_auth_opts, "server_key", server_key, RDO_YOPT_PATH),
    RDO_YOPT(struct rdo_auth_opts, "authorized_keys", authorized_keys, RDO_YOPT_PATH),
    RDO_YOPT(struct rdo_auth_opts, "curve_loopback", curve_loopback, RDO_YOPT_BOOL),
    RDO_YOPT(struct rdo_auth_opts, "ipc_mode", ipc_mode, RDO_YOPT_CUSTOM, .custom = &mode_type),
    RDO_YOPT(struct rdo_auth_opts, "local_role", local_role, RDO_YOPT_CUSTOM, .custom = &role_type),
    {NULL},
};

static const struct rdo_yopt metrics_opts[] = {
    RDO_YOPT(struct rdo_metrics_opts, "enabled", enabled, RDO_YOPT_BOOL),
    RDO_YOPT(struct rdo_metrics_opts, "bind", bind, RDO_YOPT_STRING),
    {NULL},
};

static const char *const card_keys[] = {
    "name", "backend", "address", "regmap",   "force",	"numa_node",
    "sim",  "dma",     "live",	  "lossless", "writer", NULL,
};

/* numa_node: "auto" (what the card reports) or a node number. */
static int get_numa_node(struct rdo_ydoc *y, const struct rdo_ynode *v, const char *path, int *out)
{
	const char *s = rdo_yaml_scalar(v);
	if (s && strcmp(s, "auto") == 0) {
		*out = -1;
		return 0;
	}
	unsigned n;
	int rc = rdo_yaml_get_uint(y, v, path, 0, 1023, &n);
	if (rc)
		return rdo_yaml_fail(y, v,
				     "%s: expected auto or a NUMA node number 0-1023, got \"%s\"",
				     path, s ? s : rdo_yaml_kind_name(v));
	*out = (int)n;
	return 0;
}

static int visit_card(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		      const char *path)
{
	struct rdo_card_conf *c = ctx;
	const struct rdo_ynode *nodes[RDO_YOPT_MAX] = {NULL};
	int rc;
	switch (key) {
	case 0:
		rc = rdo_yaml_get_str(y, v, path, c->card.name, sizeof(c->card.name));
		if (rc == 0 && !rdo_regmap_valid_name(c->card.name))
			return rdo_yaml_fail(
			    y, v, "%s: \"%s\" is not a valid card name (letters, digits, '_')",
			    path, c->card.name);
		return rc;
	case 1:
		rc = rdo_yaml_get_str(y, v, path, c->card.backend, sizeof(c->card.backend));
		if (rc == 0 && strcmp(c->card.backend, "sim") != 0 &&
		    strcmp(c->card.backend, "shim") != 0)
			return rdo_yaml_fail(y, v,
					     "%s: expected sim (the emulated card) or shim (a PCIe "
					     "card through driver-shim), got \"%s\"",
					     path, c->card.backend);
		return rc;
	case 2:
		return rdo_yaml_get_str(y, v, path, c->card.address, sizeof(c->card.address));
	case 3:
		return rdo_yaml_get_path(y, v, path, c->regmap_file, sizeof(c->regmap_file));
	case 4:
		return rdo_yaml_get_bool(y, v, path, &c->force);
	case 5:
		return get_numa_node(y, v, path, &c->numa_node);
	case 6:
		return rdo_yaml_walk_opts(y, v, path, sim_opts, &c->card, NULL);
	case 7:
		rc = rdo_yaml_walk_opts(y, v, path, dma_opts, &c->dma, nodes);
		return rc ? rc : check_dma(y, v, nodes, &c->dma);
	case 8:
		return rdo_yaml_walk_opts(y, v, path, live_opts, &c->live, NULL);
	case 9:
		return rdo_yaml_walk_opts(y, v, path, lossless_opts, &c->lossless, NULL);
	default:
		return rdo_yaml_walk_opts(y, v, path, rdo_writer_keys, &c->writer, NULL);
	}
}

/* The config being read: the sections every card takes, and where the cards are. */
struct server_ctx {
	struct rdo_server_opts *o;
	struct rdo_card_conf tmpl; /* the top-level dma, live, lossless, writer */
	const struct rdo_ynode *card, *cards;
};

static const char *const top_keys[] = {
    "card",	 "cards",  "control",  "dma",	  "live",	 "lossless", "status",
    "log_level", "writer", "security", "metrics", "runtime_dir", NULL,
};

static int visit_top(struct rdo_ydoc *y, void *ctx, int key, const struct rdo_ynode *v,
		     const char *path)
{
	struct server_ctx *c = ctx;
	struct rdo_server_opts *o = c->o;
	const struct rdo_ynode *nodes[RDO_YOPT_MAX] = {NULL};
	int rc;
	switch (key) {
	case 0:
		c->card = v;
		return 0;
	case 1:
		c->cards = v;
		return 0;
	case 2:
		return rdo_yaml_walk_opts(y, v, path, control_opts, o, NULL);
	case 3:
		rc = rdo_yaml_walk_opts(y, v, path, dma_opts, &c->tmpl.dma, nodes);
		return rc ? rc : check_dma(y, v, nodes, &c->tmpl.dma);
	case 4:
		return rdo_yaml_walk_opts(y, v, path, live_opts, &c->tmpl.live, NULL);
	case 5:
		return rdo_yaml_walk_opts(y, v, path, lossless_opts, &c->tmpl.lossless, NULL);
	case 6:
		return rdo_yaml_walk_opts(y, v, path, status_opts, &o->status, NULL);
	case 7:
		return rdo_yaml_get_log_level(y, v, path, &o->log_level);
	case 8:
		return rdo_yaml_walk_opts(y, v, path, rdo_writer_keys, &c->tmpl.writer, NULL);
	case 9:
		return rdo_yaml_walk_opts(y, v, path, security_opts, &o->security, NULL);
	case 10:
		return rdo_yaml_walk_opts(y, v, path, metrics_opts, &o->metrics, NULL);
	default:
		return rdo_yaml_get_str(y, v, path, o->runtime_dir, sizeof(o->runtime_dir));
	}
}

/*
 * One card: the top-level sections, then its own keys over them. A card of
 * the cards list must be named; an emulated one there is addressed by its
 * name unless given an address, so that several need no addresses.
 */
static int load_card(struct rdo_ydoc *y, struct server_ctx *c, const struct rdo_ynode *v,
		     const char *path, bool in_list)
{
	struct rdo_card_conf *card = &c->o->cards[c->o->ncards];
	*card = c->tmpl;
	card->line = rdo_yaml_line(v);
	card->column = rdo_yaml_column(v);
	if (in_list)
		card->card.name[0] = card->card.address[0] = '\0';
	int rc = rdo_yaml_walk_map(y, v, path, card_keys, visit_card, card);
	if (rc)
		return rc;
	if (!card->card.name[0])
		return rdo_yaml_fail(
		    y, v, "%s: expected a name (name: ...), which clients address it by", path);
	if (!card->card.address[0] && strcmp(card->card.backend, "sim") == 0)
		rdo_strlcpy(card->card.address, card->card.name, sizeof(card->card.address));
	if (!card->card.address[0])
		return rdo_yaml_fail(y, v,
				     "%s: expected an address (address: DDDD:BB:DD.F, the card's "
				     "PCI address) for backend %s",
				     path, card->card.backend);
	for (unsigned i = 0; i < c->o->ncards; i++) {
		const struct rdo_card_opts *other = &c->o->cards[i].card;
		if (strcmp(other->name, card->card.name) == 0)
			return rdo_yaml_fail(
			    y, v,
			    "%s: card name \"%s\" is taken by cards[%u]: give each "
			    "card a name of its own",
			    path, card->card.name, i);
		if (strcmp(other->backend, card->card.backend) == 0 &&
		    strcmp(other->address, card->card.address) == 0)
			return rdo_yaml_fail(y, v,
					     "%s: card %s has the address of card %s (%s %s): one "
					     "card cannot be read out twice; give each its own "
					     "address",
					     path, card->card.name, other->name, other->backend,
					     other->address);
	}
	c->o->ncards++;
	return 0;
}

static int load_cards(struct rdo_ydoc *y, struct server_ctx *c)
{
	struct rdo_server_opts *o = c->o;
	if (c->card && c->cards)
		return rdo_yaml_fail(y, c->cards,
				     "cards: the config has both card and cards: list every card "
				     "under cards, or keep one card under card");
	o->ncards = 0;
	if (!c->cards) {
		if (!c->card) {
			o->cards[o->ncards++] = c->tmpl;
			return 0;
		}
		return load_card(y, c, c->card, "card", false);
	}
	int rc = rdo_yaml_expect(y, c->cards, RDO_YLIST, "cards");
	if (rc)
		return rc;
	size_t n = rdo_yaml_count(c->cards);
	if (n == 0 || n > RDO_MAX_CARDS)
		return rdo_yaml_fail(y, c->cards, "cards: expected 1 to %d cards, got %zu",
				     RDO_MAX_CARDS, n);
	for (size_t i = 0; i < n; i++) {
		char path[32];
		snprintf(path, sizeof(path), "cards[%zu]", i);
		rc = load_card(y, c, rdo_yaml_item(y, c->cards, i), path, true);
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
	struct rdo_ydoc *y;
	int rc = rdo_yaml_load(file, &y, err, errlen);
	if (rc)
		return rc;
	rdo_strlcpy(o->config_file, file, sizeof(o->config_file));
	struct server_ctx c = {.o = o, .tmpl = o->cards[0]};
	/* The default map sits beside the default config: resolve it the same way. */
	rdo_yaml_path_relative(c.tmpl.regmap_file, sizeof(c.tmpl.regmap_file), file,
			       "regmaps/rdo-sim.yaml");
	rc = rdo_yaml_walk_map(y, rdo_yaml_root(y), "", top_keys, visit_top, &c);
	if (rc == 0)
		rc = load_cards(y, &c);
	rdo_yaml_destroy(&y);
	return rc ? rc : finish(o, err, errlen);
}

/* --check-config: the effective config, as a file that sets every key. */
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
	rdo_yaml_print_str(f, o->runtime_dir);
	fputc('\n', f);
	rdo_yaml_print_opts(f, 0, "control", control_opts, o);
	rdo_yaml_print_opts(f, 0, "status", status_opts, &o->status);
	rdo_yaml_print_opts(f, 0, "security", security_opts, &o->security);
	rdo_yaml_print_opts(f, 0, "metrics", metrics_opts, &o->metrics);
	fputs("cards:\n", f);
	for (unsigned i = 0; i < o->ncards; i++) {
		const struct rdo_card_conf *c = &o->cards[i];
		fputs("  - name: ", f);
		rdo_yaml_print_str(f, c->card.name);
		fprintf(f, "\n    backend: %s\n    address: ", c->card.backend);
		rdo_yaml_print_str(f, c->card.address);
		fputs("\n    regmap: ", f);
		rdo_yaml_print_path(f, c->regmap_file);
		fprintf(f, "\n    force: %s\n", c->force ? "true" : "false");
		if (c->numa_node < 0)
			fputs("    numa_node: auto\n", f);
		else
			fprintf(f, "    numa_node: %d\n", c->numa_node);
		if (strcmp(c->card.backend, "sim") == 0)
			rdo_yaml_print_opts(f, 4, "sim", sim_opts, &c->card);
		rdo_yaml_print_opts(f, 4, "dma", dma_opts, &c->dma);
		rdo_yaml_print_opts(f, 4, "live", live_opts, &c->live);
		rdo_yaml_print_opts(f, 4, "lossless", lossless_opts, &c->lossless);
		rdo_yaml_print_opts(f, 4, "writer", rdo_writer_keys, &c->writer);
	}
}
