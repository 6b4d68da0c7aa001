#include "net/auth.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/util.h"
#include "core/zsock.h"

#define ZAP_ENDPOINT	"inproc://zeromq.zap.01"
#define ZAP_MAX_FRAMES	8
#define KEY_BYTES	RDO_ZSOCK_KEY_BYTES
#define NAME_MAX_LEN	63
#define TOKEN_LEN	32 /* hex characters */
#define MAX_REPORTED	20 /* errors logged per authorised keys file */
#define REFUSAL_SLOTS	16
#define REFUSAL_QUIET_S 10
#define PROP_TOKEN	"X-Rdo-Token"
#define PROP_KEY	"X-Rdo-Key"

/* One line of the authorised keys file. */
struct client {
	enum rdo_role role;
	uint8_t key[KEY_BYTES];
	char z85[RDO_KEY_Z85_LEN + 1];
	char name[NAME_MAX_LEN + 1];
	unsigned line;
};

struct table {
	struct client *c;
	size_t n, cap;
};

/* A refusal recently logged, and how many like it were not. */
struct refusal {
	char what[192];
	uint64_t logged_ns;
	uint64_t more;
};

struct rdo_auth {
	struct rdo_auth_opts o;
	void *zap;
	struct rdo_zsock_policy policy; /* curve once the server key and the table loaded */
	char public_z85[RDO_KEY_Z85_LEN + 1];
	char token[TOKEN_LEN + 1];
	struct table keys;
	struct refusal recent[REFUSAL_SLOTS];
	atomic_uint_fast64_t accepted, refused;
};

const char *rdo_role_name(enum rdo_role r)
{
	switch (r) {
	case RDO_ROLE_MONITOR:
		return "monitor";
	case RDO_ROLE_OPERATOR:
		return "operator";
	default:
		return "none";
	}
}

int rdo_role_parse(const char *s)
{
	static const enum rdo_role roles[] = {RDO_ROLE_NONE, RDO_ROLE_MONITOR, RDO_ROLE_OPERATOR};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(roles); i++)
		if (strcmp(s, rdo_role_name(roles[i])) == 0)
			return (int)roles[i];
	return -EINVAL;
}

void rdo_auth_opts_init(struct rdo_auth_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->local_role = RDO_ROLE_OPERATOR;
	o->ipc_mode = 0660;
}

static void table_free(struct table *t)
{
	free(t->c);
	*t = (struct table){0};
}

static void count_roles(const struct table *t, size_t *op, size_t *mon)
{
	*op = *mon = 0;
	for (size_t i = 0; i < t->n; i++)
		*(t->c[i].role == RDO_ROLE_OPERATOR ? op : mon) += 1;
}

static const struct client *find_key(const struct table *t, const uint8_t *key)
{
	for (size_t i = 0; i < t->n; i++)
		if (memcmp(t->c[i].key, key, KEY_BYTES) == 0)
			return &t->c[i];
	return NULL;
}

static const struct client *find_name(const struct table *t, const char *name)
{
	for (size_t i = 0; i < t->n; i++)
		if (strcmp(t->c[i].name, name) == 0)
			return &t->c[i];
	return NULL;
}

/* The authorised keys file being read, for its messages. */
struct parse {
	const char *file;
	unsigned line;
	const char *text; /* the line, for columns */
	unsigned errors;
};

static void parse_error(struct parse *p, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void parse_error(struct parse *p, const char *at, const char *fmt, ...)
{
	if (p->errors++ >= MAX_REPORTED)
		return;
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rdo_err("%s:%u:%zu: %s", p->file, p->line, (size_t)(at - p->text) + 1, msg);
}

/* `len` characters of `s` for a message: quoted, shortened, unprintables as '?'. */
static const char *got(const char *s, size_t len, char *buf, size_t cap)
{
	if (len == 0)
		return "end of line";
	size_t show = len > 48 ? 48 : len, n = 0;
	buf[n++] = '"';
	for (size_t i = 0; i < show && n + 5 < cap; i++)
		buf[n++] = isprint((unsigned char)s[i]) ? s[i] : '?';
	if (show < len && n + 5 < cap)
		n += (size_t)snprintf(buf + n, cap - n, "...");
	buf[n++] = '"';
	buf[n] = '\0';
	return buf;
}

static bool blank(char c)
{
	return c == ' ' || c == '\t';
}

static const char *skip_blank(const char *s)
{
	while (blank(*s))
		s++;
	return s;
}

static const char *token_end(const char *s)
{
	while (*s && !blank(*s))
		s++;
	return s;
}

/*
 * Decode a Z85 key. zmq_z85_decode refuses characters outside the alphabet
 * and groups above 2^32; encoding back catches what else it lets through.
 */
static bool z85_key(const char *z85, uint8_t *key)
{
	char back[RDO_KEY_Z85_LEN + 1];
	return zmq_z85_decode(key, z85) && zmq_z85_encode(back, key, KEY_BYTES) &&
	       strcmp(back, z85) == 0;
}

static int table_add(struct table *t, const struct client *c)
{
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		struct client *n = realloc(t->c, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->c = n;
		t->cap = cap;
	}
	t->c[t->n++] = *c;
	return 0;
}

/* One line: a client added to `t`, nothing (blank, comment), or an error logged. */
static int parse_line(struct parse *p, struct table *t)
{
	char q[64];
	struct client c = {.line = p->line};
	const char *s = skip_blank(p->text), *e;
	if (!*s || *s == '#')
		return 0;

	e = token_end(s);
	size_t len = (size_t)(e - s);
	if (len == 8 && memcmp(s, "operator", 8) == 0) {
		c.role = RDO_ROLE_OPERATOR;
	} else if (len == 7 && memcmp(s, "monitor", 7) == 0) {
		c.role = RDO_ROLE_MONITOR;
	} else {
		parse_error(p, s, "expected a role (operator or monitor), got %s",
			    got(s, len, q, sizeof(q)));
		return 0;
	}

	s = skip_blank(e);
	e = token_end(s);
	len = (size_t)(e - s);
	if (len == RDO_KEY_Z85_LEN) {
		memcpy(c.z85, s, len);
		c.z85[len] = '\0';
	}
	if (len != RDO_KEY_Z85_LEN || !z85_key(c.z85, c.key)) {
		parse_error(p, s,
			    "expected a 40-character Z85 public key (readoutctl keygen makes one), "
			    "got %s",
			    got(s, len, q, sizeof(q)));
		return 0;
	}
	const char *key_at = s;

	s = skip_blank(e);
	e = token_end(s);
	len = (size_t)(e - s);
	const char *bad = s;
	while (bad < e && isgraph((unsigned char)*bad))
		bad++;
	if (len == 0 || *s == '#' || bad < e) {
		parse_error(p, len == 0 || *s == '#' ? s : bad,
			    "expected a client name after the key (printable, no spaces), got %s",
			    got(s, len, q, sizeof(q)));
		return 0;
	}
	if (len > NAME_MAX_LEN) {
		parse_error(p, s, "a client name has at most %d characters, got %zu: %s",
			    NAME_MAX_LEN, len, got(s, len, q, sizeof(q)));
		return 0;
	}
	memcpy(c.name, s, len);
	c.name[len] = '\0';

	const char *rest = skip_blank(e);
	if (*rest && *rest != '#') {
		parse_error(p, rest,
			    "expected the end of the line after the client name (a '#' starts a "
			    "comment), got %s",
			    got(rest, strlen(rest), q, sizeof(q)));
		return 0;
	}

	const struct client *dup = find_key(t, c.key);
	if (dup) {
		parse_error(p, key_at,
			    "this key is already authorised on line %u (as %s): one line "
			    "per client",
			    dup->line, dup->name);
		return 0;
	}
	dup = find_name(t, c.name);
	if (dup) {
		parse_error(p, s,
			    "the name \"%s\" is already used on line %u: names must be unique",
			    c.name, dup->line);
		return 0;
	}
	return table_add(t, &c);
}

/* Read `file` into `t`: 0, or -errno with every error logged (`t` then empty). */
static int table_load(const char *file, struct table *t)
{
	*t = (struct table){0};
	FILE *f = fopen(file, "re");
	if (!f) {
		int rc = -errno;
		rdo_err("%s: cannot read the authorised keys: %s", file, strerror(errno));
		return rc;
	}
	struct stat st;
	int rc = 0;
	if (fstat(fileno(f), &st) != 0) {
		rc = -errno;
		rdo_err("%s: cannot read the authorised keys: %s", file, strerror(errno));
		goto out_file;
	}
	if (!S_ISREG(st.st_mode)) {
		rdo_err("%s: the authorised keys must be a regular file", file);
		rc = -EINVAL;
		goto out_file;
	}
	if (st.st_mode & S_IWOTH) {
		rdo_err("%s: mode %04o lets any user authorise a key: chmod o-w %s", file,
			(unsigned)(st.st_mode & 07777), file);
		rc = -EPERM;
		goto out_file;
	}
	struct parse p = {.file = file};
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while (rc == 0 && (n = getline(&line, &cap, f)) >= 0) {
		while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
			line[--n] = '\0';
		p.line++;
		p.text = line;
		rc = parse_line(&p, t);
	}
	if (rc == 0 && ferror(f)) {
		rc = -EIO;
		rdo_err("%s: cannot read the authorised keys: %s", file, strerror(EIO));
	}
	free(line);
	if (rc == -ENOMEM)
		rdo_err("%s: out of memory", file);
	if (rc == 0 && p.errors) {
		if (p.errors > MAX_REPORTED)
			rdo_err("%s: %u more errors", file, p.errors - MAX_REPORTED);
		rc = -EINVAL;
	}
	if (rc)
		table_free(t);
out_file:
	fclose(f);
	return rc;
}

static void log_table(const struct rdo_auth *a)
{
	size_t op, mon;
	count_roles(&a->keys, &op, &mon);
	if (a->keys.n == 0)
		rdo_warn(
		    "security: %s authorises no client: every CURVE connection will be refused",
		    a->o.authorized_keys);
	else
		rdo_notice("security: %zu authorised keys (%zu operator, %zu monitor) from %s",
			   a->keys.n, op, mon, a->o.authorized_keys);
}

static int load_server_key(struct rdo_auth *a)
{
	struct rdo_keypair kp;
	char err[512];
	int rc = rdo_key_load(a->o.server_key, true, &kp, err, sizeof(err));
	if (rc) {
		rdo_err("security.server_key: %s", err);
		return rc;
	}
	if (!zmq_z85_decode(a->policy.secret, kp.secret_z85)) {
		rdo_err("security.server_key: %s: the secret key is not valid Z85",
			a->o.server_key);
		rc = -EINVAL;
	}
	rdo_strlcpy(a->public_z85, kp.public_z85, sizeof(a->public_z85));
	explicit_bzero(&kp, sizeof(kp));
	return rc;
}

static int make_token(char *out)
{
	uint8_t r[TOKEN_LEN / 2];
	if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return -errno;
	for (size_t i = 0; i < sizeof(r); i++)
		sprintf(out + 2 * i, "%02x", r[i]);
	return 0;
}

struct rdo_auth *rdo_auth_create(void *zctx, const struct rdo_auth_opts *o)
{
	if (o->server_key[0] && !o->authorized_keys[0]) {
		rdo_err(
		    "security.server_key is set but security.authorized_keys is not: CURVE needs "
		    "the file of clients allowed in");
		return NULL;
	}
	if (!o->server_key[0] && (o->authorized_keys[0] || o->curve_loopback)) {
		rdo_err(
		    "security.%s is set but security.server_key is not: CURVE needs the server's "
		    "key pair (readoutctl keygen makes one)",
		    o->authorized_keys[0] ? "authorized_keys" : "curve_loopback");
		return NULL;
	}
	struct rdo_auth *a = calloc(1, sizeof(*a));
	if (!a) {
		rdo_err("security: out of memory");
		return NULL;
	}
	a->o = *o;
	rdo_zsock_policy_init(&a->policy);
	a->policy.curve_loopback = o->curve_loopback;
	a->policy.ipc_mode = o->ipc_mode;
	if (make_token(a->token)) {
		rdo_err("security: no random numbers: %s", strerror(errno));
		goto out_auth;
	}
	if (o->server_key[0]) {
		if (load_server_key(a))
			goto out_secret;
		if (table_load(o->authorized_keys, &a->keys))
			goto out_secret;
		a->policy.curve = true;
	}
	a->zap = zmq_socket(zctx, ZMQ_REP);
	if (!a->zap) {
		rdo_err("security: cannot create the ZAP socket: %s", zmq_strerror(errno));
		goto out_keys;
	}
	int zero = 0;
	zmq_setsockopt(a->zap, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_bind(a->zap, ZAP_ENDPOINT) != 0) {
		rdo_err("security: cannot bind the ZAP handler on %s: %s%s", ZAP_ENDPOINT,
			zmq_strerror(errno),
			errno == EADDRINUSE ? " (one handler per ZeroMQ context)" : "");
		goto out_zap;
	}
	if (a->policy.curve) {
		rdo_notice("security: CURVE on non-local endpoints, server public key %s from %s",
			   a->public_z85, o->server_key);
		log_table(a);
	} else {
		rdo_info("security: no server key: local endpoints only (ipc, loopback tcp)");
	}
	return a;

out_zap:
	zmq_close(a->zap);
out_keys:
	table_free(&a->keys);
out_secret:
	explicit_bzero(&a->policy, sizeof(a->policy));
out_auth:
	free(a);
	return NULL;
}

void rdo_auth_destroy(struct rdo_auth **pa)
{
	struct rdo_auth *a = *pa;
	if (!a)
		return;
	zmq_close(a->zap);
	table_free(&a->keys);
	explicit_bzero(a, sizeof(*a));
	free(a);
	*pa = NULL;
}

void *rdo_auth_socket(struct rdo_auth *a)
{
	return a->zap;
}

int rdo_auth_reload(struct rdo_auth *a)
{
	if (!a->policy.curve) {
		rdo_debug("security: no server key, no authorised keys to reload");
		return 0;
	}
	struct table t;
	int rc = table_load(a->o.authorized_keys, &t);
	if (rc) {
		rdo_err("security: keeping the %zu authorised keys loaded before", a->keys.n);
		return rc;
	}
	table_free(&a->keys);
	a->keys = t;
	log_table(a);
	return 0;
}

/* A frame's bytes as a string, shortened to fit and made printable. */
static const char *frame_str(zmq_msg_t *m, char *buf, size_t cap)
{
	size_t len = zmq_msg_size(m);
	const char *s = zmq_msg_data(m);
	if (len > cap - 1)
		len = cap - 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = isprint((unsigned char)s[i]) ? s[i] : '?';
	buf[len] = '\0';
	return buf;
}

/*
 * An audit line for a refused connection, unless one like it (same surface,
 * address and reason) was logged less than REFUSAL_QUIET_S ago: a client
 * retrying in a loop, or a scan, would otherwise be a line per attempt.
 */
static void audit_refusal(struct rdo_auth *a, const char *line)
{
	uint64_t now = rdo_now_ns();
	struct refusal *r = NULL, *oldest = &a->recent[0];
	for (size_t i = 0; i < REFUSAL_SLOTS && !r; i++) {
		if (strcmp(a->recent[i].what, line) == 0)
			r = &a->recent[i];
		else if (a->recent[i].logged_ns < oldest->logged_ns)
			oldest = &a->recent[i];
	}
	if (r && now - r->logged_ns < (uint64_t)REFUSAL_QUIET_S * 1000000000u) {
		r->more++;
		return;
	}
	if (!r) {
		r = oldest;
		rdo_strlcpy(r->what, line, sizeof(r->what));
		r->more = 0;
	}
	if (r->more)
		rdo_warn("audit: %s (and %llu more like it since the last such line)", line,
			 (unsigned long long)r->more);
	else
		rdo_warn("audit: %s", line);
	r->logged_ns = now;
	r->more = 0;
}

static size_t put_property(uint8_t *p, const char *name, const char *value)
{
	size_t n = strlen(name), v = strlen(value);
	p[0] = (uint8_t)n;
	memcpy(p + 1, name, n);
	p[1 + n] = (uint8_t)(v >> 24);
	p[2 + n] = (uint8_t)(v >> 16);
	p[3 + n] = (uint8_t)(v >> 8);
	p[4 + n] = (uint8_t)v;
	memcpy(p + 5 + n, value, v);
	return 5 + n + v;
}

static void reply(void *zap, zmq_msg_t *request_id, const char *code, const char *text,
		  const char *user, const uint8_t *meta, size_t meta_len)
{
	zmq_send(zap, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(zap, request_id ? zmq_msg_data(request_id) : "",
		 request_id ? zmq_msg_size(request_id) : 0, ZMQ_SNDMORE);
	zmq_send(zap, code, strlen(code), ZMQ_SNDMORE);
	zmq_send(zap, text, strlen(text), ZMQ_SNDMORE);
	zmq_send(zap, user, strlen(user), ZMQ_SNDMORE);
	zmq_send(zap, meta, meta_len, 0);
}

/*
 * One ZAP request (RFC 27): version, request id, domain, address, routing
 * id, mechanism, credentials. The domain is the surface, set per endpoint by
 * the binds (core/zsock.c).
 */
static void answer(struct rdo_auth *a, zmq_msg_t *f, size_t n, bool oversized)
{
	char surface[64], address[64], mech[16], line[192], id[9];
	if (oversized || n < 6 || zmq_msg_size(&f[0]) != 3 ||
	    memcmp(zmq_msg_data(&f[0]), "1.0", 3)) {
		rdo_warn("security: malformed ZAP request (%zu frames): refused", n);
		reply(a->zap, n > 1 ? &f[1] : NULL, "500", "malformed request", "", NULL, 0);
		return;
	}
	frame_str(&f[2], surface, sizeof(surface));
	frame_str(&f[3], address, sizeof(address));
	frame_str(&f[5], mech, sizeof(mech));
	if (strcmp(mech, "CURVE") != 0) {
		atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed); /* a counter */
		snprintf(line, sizeof(line), "refused %s connection to %s from %s: only CURVE here",
			 mech, surface, address);
		audit_refusal(a, line);
		reply(a->zap, &f[1], "400", "CURVE only", "", NULL, 0);
		return;
	}
	if (n != 7 || zmq_msg_size(&f[6]) != KEY_BYTES) {
		rdo_warn("security: malformed CURVE ZAP request (%zu frames): refused", n);
		reply(a->zap, &f[1], "500", "malformed request", "", NULL, 0);
		return;
	}
	char z85[RDO_KEY_Z85_LEN + 1];
	zmq_z85_encode(z85, zmq_msg_data(&f[6]), KEY_BYTES);
	const struct client *c = find_key(&a->keys, zmq_msg_data(&f[6]));
	if (!c) {
		atomic_fetch_add_explicit(&a->refused, 1, memory_order_relaxed); /* a counter */
		snprintf(line, sizeof(line),
			 "refused CURVE connection to %s from %s: unknown key %s", surface, address,
			 rdo_key_id(z85, id));
		audit_refusal(a, line);
		reply(a->zap, &f[1], "400", "unknown key", "", NULL, 0);
		return;
	}
	atomic_fetch_add_explicit(&a->accepted, 1, memory_order_relaxed); /* a counter */
	rdo_info("audit: CURVE client %s (%s, %s) connected to %s from %s", c->name,
		 rdo_key_id(c->z85, id), rdo_role_name(c->role), surface, address);
	uint8_t meta[2 * (5 + 16) + TOKEN_LEN + RDO_KEY_Z85_LEN];
	size_t len = put_property(meta, PROP_TOKEN, a->token);
	len += put_property(meta + len, PROP_KEY, c->z85);
	reply(a->zap, &f[1], "200", "OK", c->name, meta, len);
}

void rdo_auth_serve(struct rdo_auth *a)
{
	for (;;) {
		zmq_msg_t f[ZAP_MAX_FRAMES];
		bool oversized;
		size_t n = rdo_zsock_recv_frames(a->zap, f, ZAP_MAX_FRAMES, &oversized);
		if (n == 0)
			return;
		answer(a, f, n, oversized);
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
}

/* Equal strings, in time independent of where they differ. */
static bool same_secret(const char *s, const char *secret, size_t len)
{
	if (strlen(s) != len)
		return false;
	unsigned char d = 0;
	for (size_t i = 0; i < len; i++)
		d |= (unsigned char)(s[i] ^ secret[i]);
	return d == 0;
}

void rdo_auth_peer(const struct rdo_auth *a, zmq_msg_t *msg, struct rdo_peer *p)
{
	const char *user = zmq_msg_gets(msg, "User-Id");
	const char *token = zmq_msg_gets(msg, PROP_TOKEN);
	const char *key = zmq_msg_gets(msg, PROP_KEY);
	memset(p, 0, sizeof(*p));
	if (!user || !*user || !token || !key || !same_secret(token, a->token, TOKEN_LEN)) {
		p->role = a->o.local_role;
		rdo_strlcpy(p->id, "local", sizeof(p->id));
		return;
	}
	char id[9];
	p->curve = true;
	rdo_strlcpy(p->name, user, sizeof(p->name));
	snprintf(p->id, sizeof(p->id), "%s (%s)", p->name, rdo_key_id(key, id));
	const struct client *c = find_name(&a->keys, p->name);
	p->role = c && strcmp(c->z85, key) == 0 ? c->role : RDO_ROLE_NONE;
}

void rdo_auth_counters(const struct rdo_auth *a, uint64_t *accepted, uint64_t *refused)
{
	/* Counters, ordering nothing. */
	*accepted = atomic_load_explicit(&a->accepted, memory_order_relaxed);
	*refused = atomic_load_explicit(&a->refused, memory_order_relaxed);
}

const struct rdo_zsock_policy *rdo_auth_policy(const struct rdo_auth *a)
{
	return a ? &a->policy : NULL;
}
