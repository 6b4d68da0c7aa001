#include "service/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "common/log.h"
#include "common/util.h"
#include "common/writer.h"
#include "net/status.h"

#define CONNECTION_LIMIT   16u
#define CONNECTION_TIMEOUT 10u /* seconds */
#define LOG_BURST	   10u /* libmicrohttpd lines per window, then counted */
#define LOG_WINDOW_NS	   (10 * 1000000000ull)

#define BIND_MAX sizeof(((struct rdo_metrics_opts *)0)->bind)

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct rdo_metrics {
	struct MHD_Daemon *mhd;
	rdo_metrics_fill_fn fill;
	rdo_metrics_daemon_fn daemon;
	void *arg;
	char bind[BIND_MAX];
	char url[INET6_ADDRSTRLEN + 32];
	/* The rate limit of libmicrohttpd's messages, which come from any thread. */
	_Atomic uint64_t log_window_ns;
	_Atomic unsigned log_lines, log_suppressed;
};

void rdo_metrics_opts_init(struct rdo_metrics_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->enabled = true;
	rdo_strlcpy(o->bind, RDO_DEFAULT_METRICS_BIND, sizeof(o->bind));
}

/* A growing text buffer; after a failed allocation every append is a no-op. */
struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static bool buf_reserve(struct buf *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->len + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 16384;
	while (cap < b->len + more + 1)
		cap *= 2;
	char *p = realloc(b->p, cap);
	if (!p) {
		b->oom = true;
		return false;
	}
	b->p = p;
	b->cap = cap;
	return true;
}

static void buf_put(struct buf *b, const char *s, size_t n)
{
	if (!buf_reserve(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_puts(struct buf *b, const char *s)
{
	buf_put(b, s, strlen(s));
}

__attribute__((format(printf, 2, 3))) static void buf_printf(struct buf *b, const char *fmt, ...)
{
	char small[128];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n < sizeof(small)) {
		buf_put(b, small, (size_t)n);
		return;
	}
	if (!buf_reserve(b, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* A label value as the format wants it: backslash, double quote and newline escaped. */
static void buf_label_value(struct buf *b, const char *s)
{
	while (*s) {
		size_t n = strcspn(s, "\\\"\n");
		buf_put(b, s, n);
		s += n;
		if (*s == '\n')
			buf_puts(b, "\\n");
		else if (*s)
			buf_put(b, (char[]){'\\', *s}, 2);
		if (*s)
			s++;
	}
}

struct label {
	const char *name, *value;
};

/*
 * A metric family. Its HELP and TYPE are written before its first sample, so
 * a family without samples (no writer, no card) leaves no trace; the callers
 * write all samples of one family before the next family, as the format
 * requires.
 */
struct family {
	const char *name, *type, *help;
	bool started;
};

static void sample_start(struct buf *b, struct family *f, const struct label *l, size_t nl)
{
	if (!f->started) {
		buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
		f->started = true;
	}
	buf_puts(b, f->name);
	for (size_t i = 0; i < nl; i++) {
		buf_printf(b, "%c%s=\"", i ? ',' : '{', l[i].name);
		buf_label_value(b, l[i].value ? l[i].value : "");
		buf_puts(b, "\"");
	}
	if (nl)
		buf_puts(b, "}");
}

static void sample_u64(struct buf *b, struct family *f, const struct label *l, size_t nl,
		       uint64_t v)
{
	sample_start(b, f, l, nl);
	buf_printf(b, " %" PRIu64 "\n", v);
}

static void sample_f64(struct buf *b, struct family *f, const struct label *l, size_t nl, double v)
{
	sample_start(b, f, l, nl);
	buf_printf(b, " %.17g\n", v);
}

/* The width of a message field a table entry reads. */
enum kind { U64, U32, BOOL };

/* A metric that is one field of a message, by offset. */
struct field_metric {
	struct family f;
	size_t off;
	enum kind kind;
};

static uint64_t field(const void *msg, const struct field_metric *fm)
{
	const char *p = (const char *)msg + fm->off;
	switch (fm->kind) {
	case U64:
		return *(const uint64_t *)p;
	case U32:
		return *(const uint32_t *)p;
	case BOOL:
		return *(const protobuf_c_boolean *)p ? 1 : 0;
	}
	return 0;
}

#define FIELD(msg, n, t, h, fld, k)                                                                \
	{                                                                                          \
		{n, t, h, false}, offsetof(msg, fld), k                                            \
	}
#define CARD(...) FIELD(Rdo__Status, __VA_ARGS__)
#define LINK(...) FIELD(Rdo__LinkStatus, __VA_ARGS__)
#define SINK(...) FIELD(Rdo__SinkStatus, __VA_ARGS__)

static const struct field_metric card_fields[] = {
    CARD("readoutd_run_number", "gauge", "Run number of the current or last acquisition (0: none).",
	 run, U64),
    CARD("readoutd_superpages_total", "counter", "Filled superpages collected since start.",
	 superpages, U64),
    CARD("readoutd_bytes_total", "counter", "Bytes in the filled superpages collected since start.",
	 bytes, U64),
    CARD("readoutd_dropped_pages_total", "counter",
	 "DMA pages the card dropped at the source, all links.", pages_dropped, U64),
    CARD("readoutd_dropped_bytes_total", "counter",
	 "Bytes in the DMA pages the card dropped at the source, all links.", bytes_dropped, U64),
    CARD("readoutd_errors_total", "counter",
	 "Errors since start or reset: protocol errors, DMA faults, FIFO overflows.", errors, U64),
    CARD("readoutd_fifo_overflows_total", "counter", "Overflows of the card's data FIFO.",
	 fifo_overflows, U64),
    CARD("readoutd_unclaimed_superpages_total", "counter",
	 "Superpages read out while no sink took them (no consumer).", unclaimed, U64),
    CARD("readoutd_events_lost_total", "counter",
	 "Events logged but not published: the event queue was full.", events_lost, U64),
    CARD("readoutd_pool_capacity_superpages", "gauge", "Superpages in the card's pool.", pool_total,
	 U32),
    CARD("readoutd_superpage_size_bytes", "gauge", "Size of one superpage.", superpage_size, U64),
    CARD("readoutd_acquisition_uptime_seconds", "gauge",
	 "Seconds since acquisition started; 0 when idle.", uptime_s, U64),
};

static const struct field_metric link_fields[] = {
    LINK("readoutd_link_enabled", "gauge", "1 if the link is read out by this server.", enabled,
	 BOOL),
    LINK("readoutd_link_up", "gauge", "1 if the card reports the link up.", up, BOOL),
    LINK("readoutd_link_stalled", "gauge",
	 "1 if the link is enabled, up and running, but sent no data for 2 s.", stalled, BOOL),
    LINK("readoutd_link_superpages_total", "counter", "Filled superpages collected from the link.",
	 superpages, U64),
    LINK("readoutd_link_bytes_total", "counter", "Bytes in the superpages collected from the link.",
	 bytes, U64),
    LINK("readoutd_link_pages_total", "counter",
	 "DMA pages the card generated on the link (delivered and dropped).", pages, U64),
    LINK("readoutd_link_dropped_pages_total", "counter",
	 "DMA pages the card dropped at the source on the link.", pages_dropped, U64),
    LINK("readoutd_link_dropped_bytes_total", "counter",
	 "Bytes in the DMA pages the card dropped on the link.", bytes_dropped, U64),
    LINK("readoutd_link_in_card_superpages", "gauge",
	 "Superpages posted to the card for the link and not yet filled.", in_card, U32),
};

static const struct field_metric sink_fields[] = {
    SINK("readoutd_sink_superpages_total", "counter",
	 "Superpages the sink delivered to its consumers.", superpages, U64),
    SINK("readoutd_sink_bytes_total", "counter", "Bytes the sink delivered to its consumers.",
	 bytes, U64),
    SINK("readoutd_sink_dropped_superpages_total", "counter",
	 "Superpages the sink dropped (live: slow subscribers; writer: failed writes).", dropped,
	 U64),
    SINK("readoutd_sink_queued_superpages", "gauge", "Superpages waiting in the sink.", queued,
	 U32),
    SINK("readoutd_sink_consumers", "gauge",
	 "Subscriptions (live), attached consumers (lossless), 1 while writing (writer).",
	 consumers, U32),
};

/* Only sinks with a state of their own (the writer) have these. */
static const struct field_metric writer_fields[] = {
    SINK("readoutd_writer_files_total", "counter", "Files the writer closed with their footer.",
	 files, U64),
    SINK("readoutd_writer_errors_total", "counter",
	 "Failed writes, opens and syncs of the writer, and disk-full events.", errors, U64),
};

static const char *const dma_states[] = {
    [RDO__STATE__STATE_IDLE] = "idle",
    [RDO__STATE__STATE_RUNNING] = "running",
    [RDO__STATE__STATE_STOPPING] = "stopping",
    [RDO__STATE__STATE_ERROR] = "error",
};

/* The cards of one scrape, each filled once. */
struct cards {
	struct rdo_status_msg *m[RDO_METRICS_MAX_CARDS];
	unsigned n;
};

static const char *card_name(const struct rdo_status_msg *m)
{
	return m->st.card ? m->st.card : "";
}

static bool has_state(const Rdo__SinkStatus *k)
{
	return k->state && *k->state;
}

static void render_daemon(struct buf *b, rdo_metrics_daemon_fn daemon, void *arg)
{
	struct family build = {"readoutd_build_info", "gauge",
			       "Always 1; the version of readoutd as a label.", false};
	sample_u64(b, &build, &(struct label){"version", RDO_VERSION}, 1, 1);
	if (!daemon)
		return;
	struct rdo_metrics_daemon d;
	memset(&d, 0, sizeof(d));
	daemon(arg, &d);
	struct {
		struct family f;
		uint64_t v;
	} fams[] = {
	    {{"readoutd_start_time_seconds", "gauge",
	      "Start time of readoutd since the Unix epoch.", false},
	     d.start_time_s},
	    {{"readoutd_control_requests_served_total", "counter",
	      "Control requests answered (any result but a refusal).", false},
	     d.requests_served},
	    {{"readoutd_control_requests_refused_total", "counter",
	      "Control requests refused: the client's role may not do this.", false},
	     d.requests_refused},
	    {{"readoutd_connections_refused_total", "counter",
	      "Connections refused by authentication (no key, unknown key).", false},
	     d.connections_refused},
	    {{"readoutd_reloads_total", "counter",
	      "Reloads of register maps and authorised keys (SIGHUP).", false},
	     d.reloads},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(fams); i++)
		sample_u64(b, &fams[i].f, NULL, 0, fams[i].v);
}

static void render_cards(struct buf *b, const struct cards *c)
{
	struct family state = {"readoutd_dma_state", "gauge",
			       "1 for the DMA channel's current state, 0 for the others.", false};
	for (unsigned i = 0; i < c->n; i++) {
		const Rdo__Status *st = &c->m[i]->st;
		for (size_t s = 0; s < RDO_ARRAY_SIZE(dma_states); s++) {
			struct label l[] = {{"card", card_name(c->m[i])}, {"state", dma_states[s]}};
			sample_u64(b, &state, l, 2, (size_t)st->state == s);
		}
	}
	for (size_t k = 0; k < RDO_ARRAY_SIZE(card_fields); k++) {
		struct field_metric fm = card_fields[k];
		for (unsigned i = 0; i < c->n; i++)
			sample_u64(b, &fm.f, &(struct label){"card", card_name(c->m[i])}, 1,
				   field(&c->m[i]->st, &fm));
	}
	struct family pool = {"readoutd_pool_superpages", "gauge",
			      "Superpages of the pool by place: free, in_card, in_sinks.", false};
	for (unsigned i = 0; i < c->n; i++) {
		const Rdo__Status *st = &c->m[i]->st;
		const struct {
			const char *place;
			uint32_t v;
		} places[] = {{"free", st->pool_free},
			      {"in_card", st->pool_in_card},
			      {"in_sinks", st->pool_in_sinks}};
		for (size_t p = 0; p < RDO_ARRAY_SIZE(places); p++) {
			struct label l[] = {{"card", card_name(c->m[i])},
					    {"place", places[p].place}};
			sample_u64(b, &pool, l, 2, places[p].v);
		}
	}
	struct family memory = {
	    "readoutd_pool_memory_info", "gauge",
	    "Always 1; the pool's memory (hugepages, locked, unlocked) as a label.", false};
	for (unsigned i = 0; i < c->n; i++) {
		const Rdo__Status *st = &c->m[i]->st;
		if (!st->pool_memory || !*st->pool_memory)
			continue;
		struct label l[] = {{"card", card_name(c->m[i])}, {"memory", st->pool_memory}};
		sample_u64(b, &memory, l, 2, 1);
	}
	/*
	 * The Status message cannot tell a card without a temperature register
	 * (0 then) from one at 0 degrees: every card reports it.
	 */
	struct family temp = {"readoutd_temperature_celsius", "gauge",
			      "Card temperature (0 when the card's map has no mon.temperature).",
			      false};
	for (unsigned i = 0; i < c->n; i++)
		sample_f64(b, &temp, &(struct label){"card", card_name(c->m[i])}, 1,
			   c->m[i]->st.temperature_mc / 1000.0);
}

static void render_links(struct buf *b, const struct cards *c)
{
	for (size_t k = 0; k < RDO_ARRAY_SIZE(link_fields); k++) {
		struct field_metric fm = link_fields[k];
		for (unsigned i = 0; i < c->n; i++) {
			const Rdo__Status *st = &c->m[i]->st;
			for (size_t j = 0; j < st->n_links; j++) {
				const Rdo__LinkStatus *ls = st->links[j];
				if (!ls)
					continue;
				char link[16];
				snprintf(link, sizeof(link), "%" PRIu32, ls->link);
				struct label l[] = {{"card", card_name(c->m[i])}, {"link", link}};
				sample_u64(b, &fm.f, l, 2, field(ls, &fm));
			}
		}
	}
}

static void render_sink_fields(struct buf *b, const struct cards *c,
			       const struct field_metric *fields, size_t n, bool writers_only)
{
	for (size_t k = 0; k < n; k++) {
		struct field_metric fm = fields[k];
		for (unsigned i = 0; i < c->n; i++) {
			const Rdo__Status *st = &c->m[i]->st;
			for (size_t j = 0; j < st->n_sinks; j++) {
				const Rdo__SinkStatus *ks = st->sinks[j];
				if (!ks || (writers_only && !has_state(ks)))
					continue;
				struct label l[] = {{"card", card_name(c->m[i])},
						    {"sink", ks->name}};
				sample_u64(b, &fm.f, l, 2, field(ks, &fm));
			}
		}
	}
}

static void render_sinks(struct buf *b, const struct cards *c)
{
	render_sink_fields(b, c, sink_fields, RDO_ARRAY_SIZE(sink_fields), false);
	struct family state = {"readoutd_writer_state", "gauge",
			       "1 for the writer's current state, 0 for the others.", false};
	for (unsigned i = 0; i < c->n; i++) {
		const Rdo__Status *st = &c->m[i]->st;
		for (size_t j = 0; j < st->n_sinks; j++) {
			const Rdo__SinkStatus *ks = st->sinks[j];
			if (!ks || !has_state(ks))
				continue;
			bool known = false;
			/* every state of the writer, by the names it gives them */
			for (int s = RDO_WRITER_IDLE; s <= RDO_WRITER_ERROR; s++) {
				const char *name = rdo_writer_state_name(s);
				bool now = strcmp(ks->state, name) == 0;
				known |= now;
				struct label l[] = {{"card", card_name(c->m[i])},
						    {"sink", ks->name},
						    {"state", name}};
				sample_u64(b, &state, l, 3, now);
			}
			if (!known) {
				struct label l[] = {{"card", card_name(c->m[i])},
						    {"sink", ks->name},
						    {"state", ks->state}};
				sample_u64(b, &state, l, 3, 1);
			}
		}
	}
	render_sink_fields(b, c, writer_fields, RDO_ARRAY_SIZE(writer_fields), true);
}

static void cards_free(struct cards *c)
{
	for (unsigned i = 0; i < c->n; i++)
		free(c->m[i]);
	c->n = 0;
}

/* Each card's status, filled once: the families below go across all cards. */
static int cards_fill(struct cards *c, rdo_metrics_fill_fn fill, void *arg)
{
	c->n = 0;
	struct rdo_status_msg *m = NULL;
	for (unsigned i = 0; i < RDO_METRICS_MAX_CARDS; i++) {
		if (!m && !(m = malloc(sizeof(*m))))
			return -ENOMEM;
		memset(m, 0, sizeof(*m)); /* a failed fill may have left half a card */
		int rc = fill(arg, i, m);
		if (rc == -ENOENT)
			break;
		if (rc)
			continue;
		c->m[c->n++] = m;
		m = NULL;
	}
	free(m);
	return 0;
}

char *rdo_metrics_render(rdo_metrics_fill_fn fill, rdo_metrics_daemon_fn daemon, void *arg,
			 size_t *len)
{
	struct cards *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	struct buf b = {0};
	if (cards_fill(c, fill, arg))
		b.oom = true;
	render_daemon(&b, daemon, arg);
	render_cards(&b, c);
	render_links(&b, c);
	render_sinks(&b, c);
	cards_free(c);
	free(c);
	if (b.oom || !buf_reserve(&b, 0)) {
		free(b.p);
		return NULL;
	}
	if (len)
		*len = b.len;
	return b.p;
}

/* "HOST:PORT" or "[V6]:PORT" into its host and port; 0 or -EINVAL with the reason. */
static int split_bind(const char *bind, char *host, size_t hostlen, uint16_t *port, bool *v6,
		      char *err, size_t errlen)
{
	static const char form[] = "expected HOST:PORT, e.g. 127.0.0.1:5574 or [::1]:5574";
	const char *colon = strrchr(bind, ':');
	const char *h = bind, *hend = colon;
	*v6 = false;
	if (bind[0] == '[') {
		const char *close = strchr(bind, ']');
		if (!close || close[1] != ':') {
			snprintf(err, errlen,
				 "\"%s\": an IPv6 address in brackets needs a port; %s", bind,
				 form);
			return -EINVAL;
		}
		h = bind + 1;
		hend = close;
		colon = close + 1;
		*v6 = true;
	} else if (colon && memchr(bind, ':', (size_t)(colon - bind))) {
		snprintf(err, errlen, "\"%s\": an IPv6 address goes in brackets: [%.*s]%s", bind,
			 (int)(colon - bind), bind, colon);
		return -EINVAL;
	}
	if (!colon || hend == h) {
		snprintf(err, errlen, "\"%s\": %s", bind, form);
		return -EINVAL;
	}
	if ((size_t)(hend - h) >= hostlen) {
		snprintf(err, errlen, "\"%s\": the host is too long", bind);
		return -EINVAL;
	}
	memcpy(host, h, (size_t)(hend - h));
	host[hend - h] = '\0';
	const char *p = colon + 1;
	unsigned long v = 0;
	if (!*p || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p) ||
	    (v = strtoul(p, NULL, 10)) > 65535) {
		snprintf(err, errlen,
			 "\"%s\": the port must be a number 0..65535 (0: any free); %s", bind,
			 form);
		return -EINVAL;
	}
	*port = (uint16_t)v;
	return 0;
}

int rdo_metrics_bind_check(const char *bind, char *err, size_t errlen)
{
	char host[BIND_MAX];
	uint16_t port;
	bool v6;
	if (split_bind(bind, host, sizeof(host), &port, &v6, err, errlen))
		return -EINVAL;
	struct in6_addr a6;
	if (v6 && inet_pton(AF_INET6, host, &a6) != 1) {
		snprintf(err, errlen, "\"%s\": \"%s\" is not an IPv6 address", bind, host);
		return -EINVAL;
	}
	return 0;
}

/* The address to bind: numeric, or the first address a name resolves to. */
static int resolve_bind(const char *bind, struct sockaddr_storage *ss, char *err, size_t errlen)
{
	char host[BIND_MAX];
	uint16_t port;
	bool v6;
	int rc = split_bind(bind, host, sizeof(host), &port, &v6, err, errlen);
	if (rc)
		return rc;
	struct addrinfo hints = {.ai_family = v6 ? AF_INET6 : AF_UNSPEC,
				 .ai_socktype = SOCK_STREAM,
				 .ai_flags = v6 ? AI_NUMERICHOST : 0};
	struct addrinfo *ai = NULL;
	rc = getaddrinfo(host, NULL, &hints, &ai);
	if (rc) {
		snprintf(err, errlen, "\"%s\": cannot resolve \"%s\": %s", bind, host,
			 gai_strerror(rc));
		return -EINVAL;
	}
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, ai->ai_addr, ai->ai_addrlen);
	freeaddrinfo(ai);
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	return 0;
}

/* libmicrohttpd's messages into the log: LOG_BURST per window, the rest counted. */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct rdo_metrics *m = cls;
	uint64_t now = rdo_now_ns();
	/* relaxed: the limiter's fields are independent statistics */
	uint64_t start = atomic_load_explicit(&m->log_window_ns, memory_order_relaxed);
	if (now - start >= LOG_WINDOW_NS &&
	    atomic_compare_exchange_strong_explicit(&m->log_window_ns, &start, now,
						    memory_order_relaxed, memory_order_relaxed)) {
		atomic_store_explicit(&m->log_lines, 0, memory_order_relaxed);
		unsigned n = atomic_exchange_explicit(&m->log_suppressed, 0, memory_order_relaxed);
		if (n)
			rdo_warn("metrics: %u more libmicrohttpd messages were not logged", n);
	}
	if (atomic_fetch_add_explicit(&m->log_lines, 1, memory_order_relaxed) >= LOG_BURST) {
		atomic_fetch_add_explicit(&m->log_suppressed, 1, memory_order_relaxed);
		return;
	}
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	line[strcspn(line, "\r\n")] = '\0';
	rdo_warn("metrics: libmicrohttpd: %s", line);
}

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code, const char *type,
			       char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	enum MHD_Result ret = MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	if (ret == MHD_YES && code == MHD_HTTP_METHOD_NOT_ALLOWED)
		ret = MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (ret == MHD_YES)
		ret = MHD_queue_response(conn, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result respond_static(struct MHD_Connection *conn, unsigned code, const char *type,
				      const char *body)
{
	return respond(conn, code, type, (char *)body, strlen(body), MHD_RESPMEM_PERSISTENT);
}

/*
 * The request handler, on the metrics thread; called at least twice per
 * request. A refusal goes out on the first call, before any body is read
 * (libmicrohttpd then closes the connection); an answer on the call after
 * the request is complete, which keeps the connection alive for the next
 * scrape.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_data_size, void **req)
{
	static char started; /* *req of a request seen once: its address */
	struct rdo_metrics *m = cls;
	(void)version;
	(void)upload_data;
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return respond_static(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
				      "text/plain; charset=utf-8",
				      "405 method not allowed: GET /metrics\n");
	if (!*req) {
		*req = &started;
		return MHD_YES;
	}
	if (*upload_data_size) {
		*upload_data_size = 0; /* a GET with a body: ignored */
		return MHD_YES;
	}
	if (strcmp(url, "/metrics") == 0) {
		size_t len;
		char *text = rdo_metrics_render(m->fill, m->daemon, m->arg, &len);
		if (!text)
			return respond_static(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
					      "text/plain; charset=utf-8",
					      "500 out of memory rendering the metrics\n");
		return respond(conn, MHD_HTTP_OK, CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE);
	}
	if (strcmp(url, "/") == 0)
		return respond_static(
		    conn, MHD_HTTP_OK, "text/html; charset=utf-8",
		    "<!DOCTYPE html>\n<html><head><title>readoutd</title></head><body>\n"
		    "<h1>readoutd</h1>\n<p><a href=\"/metrics\">Metrics</a> in the Prometheus "
		    "text format.</p>\n</body></html>\n");
	return respond_static(conn, MHD_HTTP_NOT_FOUND, "text/plain; charset=utf-8",
			      "404 not found: the metrics are at /metrics\n");
}

static void bind_failed(const char *bind, uint16_t port, int e)
{
	switch (e) {
	case EADDRINUSE:
		rdo_err("metrics: cannot listen on %s: port %u is in use (another readoutd or "
			"exporter?): stop what holds it (ss -ltnp 'sport = :%u'), or set "
			"metrics.bind to a free HOST:PORT (port 0: any free one)",
			bind, port, port);
		break;
	case EADDRNOTAVAIL:
		rdo_err("metrics: cannot listen on %s: no interface of this host has that address: "
			"set metrics.bind to one of its addresses, e.g. " RDO_DEFAULT_METRICS_BIND,
			bind);
		break;
	case EACCES:
		rdo_err("metrics: cannot listen on %s: permission denied (ports below 1024 need "
			"privileges): set metrics.bind to a port above 1023",
			bind);
		break;
	default:
		rdo_err("metrics: cannot start the HTTP server on %s: %s (libmicrohttpd's message "
			"above says more)",
			bind, e ? strerror(e) : "unknown error");
	}
}

/* The URL a scraper uses, from the address bound and the port libmicrohttpd picked. */
static int make_url(struct rdo_metrics *m, const struct sockaddr_storage *ss)
{
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->mhd, MHD_DAEMON_INFO_BIND_PORT);
	if (!info || !info->port) {
		rdo_err("metrics: libmicrohttpd does not tell the port it bound for %s", m->bind);
		return -EIO;
	}
	char host[INET6_ADDRSTRLEN];
	bool v6 = ss->ss_family == AF_INET6;
	const void *a = v6 ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
			   : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (!inet_ntop(ss->ss_family, a, host, sizeof(host)))
		return -errno;
	snprintf(m->url, sizeof(m->url), v6 ? "http://[%s]:%u/metrics" : "http://%s:%u/metrics",
		 host, info->port);
	return 0;
}

struct rdo_metrics *rdo_metrics_create(const struct rdo_metrics_opts *o, rdo_metrics_fill_fn fill,
				       rdo_metrics_daemon_fn daemon, void *arg)
{
	struct sockaddr_storage ss;
	char err[512];
	if (resolve_bind(o->bind, &ss, err, sizeof(err))) {
		rdo_err("metrics.bind: %s", err);
		return NULL;
	}
	struct rdo_metrics *m = calloc(1, sizeof(*m));
	if (!m) {
		rdo_err("metrics: out of memory");
		return NULL;
	}
	m->fill = fill;
	m->daemon = daemon;
	m->arg = arg;
	rdo_strlcpy(m->bind, o->bind, sizeof(m->bind));
	bool v6 = ss.ss_family == AF_INET6;
	uint16_t port = ntohs(v6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
				 : ((struct sockaddr_in *)&ss)->sin_port);
	/* poll, not select: readoutd may hold more descriptors than FD_SETSIZE */
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG |
			 (v6 ? MHD_USE_IPv6 : 0);
	errno = 0;
	m->mhd = MHD_start_daemon(
	    flags, port, NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, m,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT,
	    CONNECTION_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, CONNECTION_TIMEOUT, MHD_OPTION_END);
	if (!m->mhd) {
		/* libmicrohttpd leaves bind(2)'s errno; its own line names no address */
		bind_failed(m->bind, port, errno);
		goto fail;
	}
	if (make_url(m, &ss))
		goto fail_mhd;
	rdo_info("metrics: serving %s", m->url);
	return m;
fail_mhd:
	MHD_stop_daemon(m->mhd);
fail:
	free(m);
	return NULL;
}

void rdo_metrics_destroy(struct rdo_metrics **mp)
{
	struct rdo_metrics *m = *mp;
	if (!m)
		return;
	MHD_stop_daemon(m->mhd);
	free(m);
	*mp = NULL;
}

const char *rdo_metrics_url(const struct rdo_metrics *m)
{
	return m->url;
}
