#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "net/status.h"
#include "proto/readout.pb-c.h"
#include "service/metrics.h"

#define MAX_CARDS 4

/* What the fake cards report: counters that differ per card, so a mix-up shows. */
struct fake {
	unsigned ncards;
	const char *names[MAX_CARDS];
	int fail[MAX_CARDS]; /* fill returns this for the card */
	unsigned calls[MAX_CARDS + 1];
	struct rdo_metrics_daemon daemon;
	unsigned daemon_calls;
};

static int fake_fill(void *arg, unsigned i, struct rdo_status_msg *m)
{
	struct fake *f = arg;
	if (i <= MAX_CARDS)
		f->calls[i]++;
	if (i >= f->ncards)
		return -ENOENT;
	if (f->fail[i])
		return f->fail[i];
	memset(m, 0, sizeof(*m));
	Rdo__Status *st = &m->st;
	rdo__status__init(st);
	rdo_strlcpy(m->card, f->names[i], sizeof(m->card));
	st->card = m->card;
	st->state = i == 0 ? RDO__STATE__STATE_IDLE : RDO__STATE__STATE_RUNNING;
	st->run = 100 + i;
	st->superpages = 10 + 7 * i; /* a: 10, b: 17 */
	st->bytes = (10 + 7 * i) * 1048576ull;
	st->pages_dropped = 3 + i;
	st->bytes_dropped = (3 + i) * 8192ull;
	st->errors = 5 + i;
	st->fifo_overflows = 2 + i;
	st->unclaimed = 4 + i;
	st->events_lost = 6 + i;
	st->pool_total = 256;
	st->pool_free = 200 - i;
	st->pool_in_card = 40 + i;
	st->pool_in_sinks = 16;
	st->superpage_size = 1048576;
	st->pool_memory = "hugepages";
	st->temperature_mc = 41500 + 1000 * (int32_t)i;
	st->uptime_s = 60 * i;
	st->rate_bytes = 12345.0; /* never exported */
	unsigned nlinks = 2 + i;
	for (unsigned j = 0; j < nlinks; j++) {
		Rdo__LinkStatus *l = &m->link[j];
		rdo__link_status__init(l);
		l->link = j;
		l->enabled = j != 1;
		l->up = true;
		l->stalled = j == 0 && i == 1;
		l->superpages = 1000 * i + j;
		l->bytes = 1000000 * i + j;
		l->pages = 500 * i + j;
		l->pages_dropped = 10 * i + j;
		l->bytes_dropped = 8192 * (10 * i + j);
		l->in_card = 7 + j;
		m->linkp[j] = l;
	}
	st->n_links = nlinks;
	st->links = m->linkp;
	static const char *const sinks[] = {"live", "writer"};
	for (unsigned j = 0; j < 2; j++) {
		Rdo__SinkStatus *k = &m->sink[j];
		rdo__sink_status__init(k);
		k->name = (char *)sinks[j];
		k->superpages = 20 + 100 * i + j;
		k->bytes = 2000 + 100 * i + j;
		k->dropped = 1 + i + j;
		k->queued = 3 + j;
		k->consumers = 2 - j;
		if (j == 1) {
			k->state = i == 0 ? "writing" : "disk_full";
			k->files = 9 + i;
			k->errors = i;
		}
		m->sinkp[j] = k;
	}
	st->n_sinks = 2;
	st->sinks = m->sinkp;
	return 0;
}

static void fake_daemon(void *arg, struct rdo_metrics_daemon *d)
{
	struct fake *f = arg;
	f->daemon_calls++;
	*d = f->daemon;
}

static struct fake two_cards(void)
{
	return (struct fake){
	    .ncards = 2,
	    .names = {"a", "b"},
	    .daemon = {.requests_served = 41,
		       .requests_refused = 3,
		       .connections_refused = 2,
		       .reloads = 1,
		       .start_time_s = 1700000000},
	};
}

/*
 * A checker of the text exposition format, as much of it as readoutd emits:
 * "# HELP name text", "# TYPE name type" and "name{l="v",...} value" lines.
 */
#define MAX_FAMILIES 128
#define MAX_SAMPLES  2048

struct sample {
	char name[128];
	char labels[512]; /* "card=b,link=1", values unescaped */
	double value;
};

struct parsed {
	struct {
		char name[128];
		char type[16];
		unsigned samples;
	} fam[MAX_FAMILIES];
	unsigned nfam;
	struct sample s[MAX_SAMPLES];
	unsigned ns;
	char err[2048];
};

static bool name_char(char c, bool first)
{
	return isalpha((unsigned char)c) || c == '_' || c == ':' ||
	       (!first && isdigit((unsigned char)c));
}

/* A metric name at *p: copied to `out`, *p moved past it. */
static bool take_name(const char **p, char *out, size_t len)
{
	size_t n = 0;
	while (name_char((*p)[n], n == 0))
		n++;
	if (!n || n >= len)
		return false;
	memcpy(out, *p, n);
	out[n] = '\0';
	*p += n;
	return true;
}

#define FAIL(P, ...)                                                                               \
	do {                                                                                       \
		snprintf((P)->err, sizeof((P)->err), __VA_ARGS__);                                 \
		return false;                                                                      \
	} while (0)

/* `{name="value",...}` at *p into "name=value,...", escapes resolved. */
static bool take_labels(struct parsed *P, const char **p, char *out, size_t len, const char *line)
{
	size_t o = 0;
	out[0] = '\0';
	if (**p != '{')
		return true;
	(*p)++;
	while (**p != '}') {
		char lname[128];
		if (!take_name(p, lname, sizeof(lname)) || strchr(lname, ':'))
			FAIL(P, "bad label name in: %s", line);
		if (*(*p)++ != '=' || *(*p)++ != '"')
			FAIL(P, "label %s: expected =\" in: %s", lname, line);
		o += (size_t)snprintf(out + o, len - o, "%s%s=", o ? "," : "", lname);
		for (;;) {
			char c = *(*p)++;
			if (c == '\0' || c == '\n')
				FAIL(P, "unterminated label value in: %s", line);
			if (c == '"')
				break;
			if (c == '\\') {
				char e = *(*p)++;
				c = e == '\\' ? '\\' : e == '"' ? '"' : e == 'n' ? '\n' : 0;
				if (!c)
					FAIL(P, "bad escape \\%c in: %s", e, line);
			}
			if (o + 1 < len)
				out[o++] = c;
			out[o] = '\0';
		}
		if (**p == ',')
			(*p)++;
		else if (**p != '}')
			FAIL(P, "expected , or } after a label in: %s", line);
	}
	(*p)++;
	return true;
}

static int family_index(const struct parsed *P, const char *name)
{
	for (unsigned i = 0; i < P->nfam; i++)
		if (strcmp(P->fam[i].name, name) == 0)
			return (int)i;
	return -1;
}

static bool parse(const char *text, struct parsed *P)
{
	memset(P, 0, sizeof(*P));
	size_t tlen = strlen(text);
	if (!tlen || text[tlen - 1] != '\n')
		FAIL(P, "the text does not end with a newline");
	int cur = -1;		/* the family whose samples may follow */
	bool want_type = false; /* a HELP was just read */
	for (const char *l = text; *l;) {
		const char *nl = strchr(l, '\n');
		char line[1024];
		size_t n = (size_t)(nl - l);
		if (n >= sizeof(line))
			FAIL(P, "line too long");
		memcpy(line, l, n);
		line[n] = '\0';
		l = nl + 1;
		const char *p = line;
		char name[128];
		if (strncmp(line, "# HELP ", 7) == 0) {
			p += 7;
			if (!take_name(&p, name, sizeof(name)) || *p != ' ' || !p[1])
				FAIL(P, "bad HELP: %s", line);
			if (family_index(P, name) >= 0)
				FAIL(P, "family %s appears twice", name);
			if (P->nfam == MAX_FAMILIES)
				FAIL(P, "too many families");
			rdo_strlcpy(P->fam[P->nfam].name, name, sizeof(P->fam[0].name));
			cur = (int)P->nfam++;
			want_type = true;
			continue;
		}
		if (strncmp(line, "# TYPE ", 7) == 0) {
			p += 7;
			if (!take_name(&p, name, sizeof(name)) || *p++ != ' ')
				FAIL(P, "bad TYPE: %s", line);
			if (!want_type || cur < 0 || strcmp(P->fam[cur].name, name))
				FAIL(P, "TYPE of %s not right after its HELP", name);
			if (strcmp(p, "counter") && strcmp(p, "gauge"))
				FAIL(P, "%s: type %s is not counter or gauge", name, p);
			size_t nlen = strlen(name);
			bool total = nlen > 6 && strcmp(name + nlen - 6, "_total") == 0;
			if (!strcmp(p, "counter") != total)
				FAIL(P, "%s: a %s, so it %s end in _total", name, p,
				     total ? "must not" : "must");
			rdo_strlcpy(P->fam[cur].type, p, sizeof(P->fam[0].type));
			want_type = false;
			continue;
		}
		if (line[0] == '#' || line[0] == '\0')
			FAIL(P, "unexpected line: \"%s\"", line);
		if (want_type)
			FAIL(P, "sample before the TYPE of its family: %s", line);
		struct sample *s = &P->s[P->ns];
		if (P->ns == MAX_SAMPLES)
			FAIL(P, "too many samples");
		if (!take_name(&p, s->name, sizeof(s->name)))
			FAIL(P, "bad metric name: %s", line);
		if (cur < 0 || strcmp(P->fam[cur].name, s->name))
			FAIL(P, "sample %s outside its family (HELP/TYPE before it, all together)",
			     s->name);
		if (!take_labels(P, &p, s->labels, sizeof(s->labels), line))
			return false;
		if (*p++ != ' ')
			FAIL(P, "expected a space before the value: %s", line);
		char *end;
		errno = 0;
		s->value = strtod(p, &end);
		if (end == p || *end || errno)
			FAIL(P, "bad value \"%s\": %s", p, line);
		for (unsigned i = 0; i < P->ns; i++)
			if (!strcmp(P->s[i].name, s->name) && !strcmp(P->s[i].labels, s->labels))
				FAIL(P, "duplicate series: %s", line);
		P->fam[cur].samples++;
		P->ns++;
	}
	for (unsigned i = 0; i < P->nfam; i++)
		if (!P->fam[i].samples || !P->fam[i].type[0])
			FAIL(P, "family %s without TYPE or samples", P->fam[i].name);
	return true;
}

static const struct sample *find(const struct parsed *P, const char *name, const char *labels)
{
	for (unsigned i = 0; i < P->ns; i++)
		if (!strcmp(P->s[i].name, name) && !strcmp(P->s[i].labels, labels))
			return &P->s[i];
	return NULL;
}

static void expect(const struct parsed *P, const char *name, const char *labels, double v)
{
	const struct sample *s = find(P, name, labels);
	cr_assert_not_null(s, "no sample %s{%s}", name, labels);
	cr_assert_eq(s->value, v, "%s{%s} is %.17g, expected %.17g", name, labels, s->value, v);
}

static char *render_parsed(struct fake *f, struct parsed *P, bool with_daemon)
{
	size_t len = 0;
	char *text = rdo_metrics_render(fake_fill, with_daemon ? fake_daemon : NULL, f, &len);
	cr_assert_not_null(text);
	cr_assert_eq(len, strlen(text));
	cr_assert(parse(text, P), "%s\n--- in:\n%s", P->err, text);
	return text;
}

static struct parsed parsed; /* large: not on the stack */

static void quiet(void)
{
	rdo_log_set_level(LOG_WARNING);
}

TestSuite(metrics, .init = quiet);

Test(metrics, render_two_cards)
{
	struct fake f = two_cards();
	char *text = render_parsed(&f, &parsed, true);
	const struct parsed *P = &parsed;
	/* once per card per scrape, and one call to learn there is no third */
	cr_assert_eq(f.calls[0], 1);
	cr_assert_eq(f.calls[1], 1);
	cr_assert_eq(f.calls[2], 1);
	cr_assert_eq(f.calls[3], 0);
	cr_assert_eq(f.daemon_calls, 1);

	expect(P, "readoutd_build_info", "version=" RDO_VERSION, 1);
	expect(P, "readoutd_start_time_seconds", "", 1700000000);
	expect(P, "readoutd_control_requests_served_total", "", 41);
	expect(P, "readoutd_control_requests_refused_total", "", 3);
	expect(P, "readoutd_connections_refused_total", "", 2);
	expect(P, "readoutd_reloads_total", "", 1);

	expect(P, "readoutd_superpages_total", "card=b", 17);
	expect(P, "readoutd_superpages_total", "card=a", 10);
	expect(P, "readoutd_bytes_total", "card=b", 17 * 1048576.0);
	expect(P, "readoutd_dma_state", "card=a,state=idle", 1);
	expect(P, "readoutd_dma_state", "card=a,state=running", 0);
	expect(P, "readoutd_dma_state", "card=b,state=running", 1);
	expect(P, "readoutd_dma_state", "card=b,state=idle", 0);
	expect(P, "readoutd_dma_state", "card=b,state=stopping", 0);
	expect(P, "readoutd_dma_state", "card=b,state=error", 0);
	expect(P, "readoutd_run_number", "card=b", 101);
	expect(P, "readoutd_dropped_pages_total", "card=b", 4);
	expect(P, "readoutd_dropped_bytes_total", "card=b", 4 * 8192);
	expect(P, "readoutd_errors_total", "card=b", 6);
	expect(P, "readoutd_fifo_overflows_total", "card=b", 3);
	expect(P, "readoutd_unclaimed_superpages_total", "card=b", 5);
	expect(P, "readoutd_events_lost_total", "card=b", 7);
	expect(P, "readoutd_pool_superpages", "card=b,place=free", 199);
	expect(P, "readoutd_pool_superpages", "card=b,place=in_card", 41);
	expect(P, "readoutd_pool_superpages", "card=b,place=in_sinks", 16);
	expect(P, "readoutd_pool_capacity_superpages", "card=a", 256);
	expect(P, "readoutd_superpage_size_bytes", "card=a", 1048576);
	expect(P, "readoutd_pool_memory_info", "card=a,memory=hugepages", 1);
	expect(P, "readoutd_temperature_celsius", "card=a", 41.5);
	expect(P, "readoutd_temperature_celsius", "card=b", 42.5);
	expect(P, "readoutd_acquisition_uptime_seconds", "card=b", 60);

	expect(P, "readoutd_link_enabled", "card=b,link=0", 1);
	expect(P, "readoutd_link_enabled", "card=b,link=1", 0);
	expect(P, "readoutd_link_up", "card=b,link=2", 1);
	expect(P, "readoutd_link_stalled", "card=b,link=0", 1);
	expect(P, "readoutd_link_stalled", "card=a,link=0", 0);
	expect(P, "readoutd_link_superpages_total", "card=b,link=2", 1002);
	expect(P, "readoutd_link_bytes_total", "card=b,link=2", 1000002);
	expect(P, "readoutd_link_pages_total", "card=b,link=1", 501);
	expect(P, "readoutd_link_dropped_pages_total", "card=b,link=1", 11);
	expect(P, "readoutd_link_dropped_bytes_total", "card=b,link=1", 11 * 8192);
	expect(P, "readoutd_link_in_card_superpages", "card=a,link=1", 8);
	cr_assert_null(find(P, "readoutd_link_up", "card=a,link=2"), "card a has two links");

	expect(P, "readoutd_sink_superpages_total", "card=b,sink=writer", 121);
	expect(P, "readoutd_sink_bytes_total", "card=b,sink=live", 2100);
	expect(P, "readoutd_sink_dropped_superpages_total", "card=b,sink=writer", 3);
	expect(P, "readoutd_sink_queued_superpages", "card=a,sink=writer", 4);
	expect(P, "readoutd_sink_consumers", "card=a,sink=live", 2);
	expect(P, "readoutd_writer_files_total", "card=b,sink=writer", 10);
	expect(P, "readoutd_writer_errors_total", "card=b,sink=writer", 1);
	expect(P, "readoutd_writer_state", "card=a,sink=writer,state=writing", 1);
	expect(P, "readoutd_writer_state", "card=a,sink=writer,state=idle", 0);
	expect(P, "readoutd_writer_state", "card=b,sink=writer,state=disk_full", 1);
	expect(P, "readoutd_writer_state", "card=b,sink=writer,state=writing", 0);
	cr_assert_null(find(P, "readoutd_writer_files_total", "card=a,sink=live"),
		       "the live sink has no files");
	for (unsigned i = 0; i < P->nfam; i++)
		cr_assert_null(strstr(P->fam[i].name, "rate"),
			       "%s: rates are Prometheus' to compute", P->fam[i].name);
	for (unsigned i = 0; i < P->ns; i++)
		cr_assert_neq(P->s[i].value, 12345.0, "%s{%s}: a rate", P->s[i].name,
			      P->s[i].labels);
	free(text);
}

Test(metrics, families_grouped_across_cards)
{
	struct fake f = two_cards();
	char *text = render_parsed(&f, &parsed, true);
	/* the checker refuses a family twice; here also: card b right after card a */
	const char *a = strstr(text, "readoutd_superpages_total{card=\"a\"}");
	const char *b = strstr(text, "readoutd_superpages_total{card=\"b\"}");
	cr_assert(a && b && a < b);
	cr_assert_eq(strchr(a, '\n') + 1, b, "samples of one family are not adjacent");
	int help = 0;
	for (const char *p = text; (p = strstr(p, "# HELP ")); p++)
		help++;
	cr_assert_eq((unsigned)help, parsed.nfam);
	static const char *const families[][2] = {
	    {"readoutd_build_info", "gauge"},
	    {"readoutd_start_time_seconds", "gauge"},
	    {"readoutd_control_requests_served_total", "counter"},
	    {"readoutd_control_requests_refused_total", "counter"},
	    {"readoutd_connections_refused_total", "counter"},
	    {"readoutd_reloads_total", "counter"},
	    {"readoutd_dma_state", "gauge"},
	    {"readoutd_run_number", "gauge"},
	    {"readoutd_superpages_total", "counter"},
	    {"readoutd_bytes_total", "counter"},
	    {"readoutd_dropped_pages_total", "counter"},
	    {"readoutd_dropped_bytes_total", "counter"},
	    {"readoutd_errors_total", "counter"},
	    {"readoutd_fifo_overflows_total", "counter"},
	    {"readoutd_unclaimed_superpages_total", "counter"},
	    {"readoutd_events_lost_total", "counter"},
	    {"readoutd_pool_capacity_superpages", "gauge"},
	    {"readoutd_superpage_size_bytes", "gauge"},
	    {"readoutd_acquisition_uptime_seconds", "gauge"},
	    {"readoutd_pool_superpages", "gauge"},
	    {"readoutd_pool_memory_info", "gauge"},
	    {"readoutd_temperature_celsius", "gauge"},
	    {"readoutd_link_enabled", "gauge"},
	    {"readoutd_link_up", "gauge"},
	    {"readoutd_link_stalled", "gauge"},
	    {"readoutd_link_superpages_total", "counter"},
	    {"readoutd_link_bytes_total", "counter"},
	    {"readoutd_link_pages_total", "counter"},
	    {"readoutd_link_dropped_pages_total", "counter"},
	    {"readoutd_link_dropped_bytes_total", "counter"},
	    {"readoutd_link_in_card_superpages", "gauge"},
	    {"readoutd_sink_superpages_total", "counter"},
	    {"readoutd_sink_bytes_total", "counter"},
	    {"readoutd_sink_dropped_superpages_total", "counter"},
	    {"readoutd_sink_queued_superpages", "gauge"},
	    {"readoutd_sink_consumers", "gauge"},
	    {"readoutd_writer_state", "gauge"},
	    {"readoutd_writer_files_total", "counter"},
	    {"readoutd_writer_errors_total", "counter"},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(families); i++) {
		int k = family_index(&parsed, families[i][0]);
		cr_assert_geq(k, 0, "no family %s", families[i][0]);
		cr_assert_str_eq(parsed.fam[k].type, families[i][1], "%s", families[i][0]);
	}
	cr_assert_eq(parsed.nfam, RDO_ARRAY_SIZE(families), "%u families, %zu expected",
		     parsed.nfam, RDO_ARRAY_SIZE(families));
	free(text);
}

Test(metrics, label_values_escaped)
{
	struct fake f = two_cards();
	f.names[1] = "we\"ird\\card\nx";
	char *text = render_parsed(&f, &parsed, true);
	cr_assert(strstr(text, "readoutd_superpages_total{card=\"we\\\"ird\\\\card\\nx\"} 17\n"),
		  "%s", text);
	expect(&parsed, "readoutd_superpages_total", "card=we\"ird\\card\nx", 17);
	expect(&parsed, "readoutd_link_superpages_total", "card=we\"ird\\card\nx,link=2", 1002);
	free(text);
}

Test(metrics, no_cards_no_daemon)
{
	struct fake f = {.ncards = 0};
	char *text = render_parsed(&f, &parsed, false);
	expect(&parsed, "readoutd_build_info", "version=" RDO_VERSION, 1);
	cr_assert_eq(parsed.nfam, 1, "only build_info, got %u families:\n%s", parsed.nfam, text);
	cr_assert_eq(f.calls[0], 1);
	free(text);
}

Test(metrics, card_failing_its_fill_skipped)
{
	struct fake f = two_cards();
	f.ncards = 3;
	f.names[2] = "c";
	f.fail[1] = -EIO;
	char *text = render_parsed(&f, &parsed, true);
	expect(&parsed, "readoutd_superpages_total", "card=a", 10);
	expect(&parsed, "readoutd_superpages_total", "card=c", 24);
	cr_assert_null(find(&parsed, "readoutd_superpages_total", "card=b"));
	cr_assert_eq(f.calls[3], 1);
	free(text);
}

Test(metrics, checker_catches_bad_text)
{
	struct parsed *P = &parsed;
	cr_assert_not(parse("# HELP x_total a\n# TYPE x_total counter\nx_total 1\n"
			    "# HELP x_total a\n# TYPE x_total counter\n",
			    P));
	cr_assert_not(parse("# HELP x a\n# TYPE x gauge\nx{c=\"a\\q\"} 1\n", P));
	cr_assert_not(parse("# HELP x a\n# TYPE x gauge\ny 1\n", P));
	cr_assert_not(parse("# HELP x a\n# TYPE x counter\nx 1\n", P));
	cr_assert_not(parse("# HELP x a\n# TYPE x gauge\nx{c=\"a\"} 1\nx{c=\"a\"} 2\n", P));
	cr_assert_not(parse("# HELP 1x a\n# TYPE 1x gauge\n1x 1\n", P));
	cr_assert(parse("# HELP x a\n# TYPE x gauge\nx{c=\"a\\\"\"} 1.5\n", P), "%s", P->err);
}

Test(metrics, opts_and_bind_forms)
{
	struct rdo_metrics_opts o;
	rdo_metrics_opts_init(&o);
	cr_assert(o.enabled);
	cr_assert_str_eq(o.bind, "127.0.0.1:5574");
	char err[256];
	cr_assert_eq(rdo_metrics_bind_check("127.0.0.1:0", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rdo_metrics_bind_check("[::1]:9100", err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rdo_metrics_bind_check("localhost:9100", err, sizeof(err)), 0, "%s", err);
	static const char *const bad[] = {"127.0.0.1", "127.0.0.1:", "127.0.0.1:65536",
					  ":5574",     "::1:5574",   "[::1]5574",
					  "[nope]:1",  "host:12ab",  "host:-1"};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(bad); i++) {
		err[0] = '\0';
		cr_assert_eq(rdo_metrics_bind_check(bad[i], err, sizeof(err)), -EINVAL, "%s",
			     bad[i]);
		cr_assert(strstr(err, bad[i]), "\"%s\" does not name \"%s\"", err, bad[i]);
	}
	rdo_metrics_bind_check("::1:5574", err, sizeof(err));
	cr_assert(strstr(err, "[::1]:5574"), "no fix in: %s", err);
}

/* An HTTP exchange over a plain socket: the status code, headers and body. */
struct reply {
	int code;
	char head[2048];
	char *body;
	char raw[256 * 1024];
};

static void http(int family, unsigned port, const char *request, struct reply *r)
{
	memset(r, 0, sizeof(*r));
	int fd = socket(family, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_storage ss = {0};
	socklen_t len;
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	} else {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	}
	cr_assert_eq(connect(fd, (struct sockaddr *)&ss, len), 0, "connect: %s", strerror(errno));
	size_t n = strlen(request);
	cr_assert_eq(write(fd, request, n), (ssize_t)n);
	size_t got = 0;
	ssize_t rc;
	while ((rc = read(fd, r->raw + got, sizeof(r->raw) - 1 - got)) > 0)
		got += (size_t)rc;
	close(fd);
	cr_assert_eq(rc, 0, "read: %s", strerror(errno));
	r->raw[got] = '\0';
	cr_assert_eq(sscanf(r->raw, "HTTP/1.%*d %d", &r->code), 1, "no status line: %s", r->raw);
	char *end = strstr(r->raw, "\r\n\r\n");
	cr_assert_not_null(end, "no end of headers: %s", r->raw);
	size_t hl = (size_t)(end - r->raw);
	cr_assert_lt(hl, sizeof(r->head));
	memcpy(r->head, r->raw, hl);
	r->body = end + 4;
}

/* The value of header `name`, or NULL. */
static const char *header(struct reply *r, const char *name, char *out, size_t len)
{
	for (char *l = strstr(r->head, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		size_t n = strlen(name);
		if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
			h += n + 1;
			while (*h == ' ')
				h++;
			size_t vl = strcspn(h, "\r");
			snprintf(out, len, "%.*s", (int)vl, h);
			return out;
		}
	}
	return NULL;
}

static unsigned url_port(const struct rdo_metrics *m, const char *prefix)
{
	const char *url = rdo_metrics_url(m);
	size_t n = strlen(prefix);
	cr_assert_eq(strncmp(url, prefix, n), 0, "url %s", url);
	char *end;
	unsigned long port = strtoul(url + n, &end, 10);
	cr_assert_str_eq(end, "/metrics", "url %s", url);
	cr_assert(port > 0 && port < 65536, "url %s", url);
	return (unsigned)port;
}

static struct reply reply; /* large: not on the stack */

Test(metrics, http_get_metrics)
{
	struct fake f = two_cards();
	struct rdo_metrics_opts o;
	rdo_metrics_opts_init(&o);
	rdo_strlcpy(o.bind, "127.0.0.1:0", sizeof(o.bind));
	struct rdo_metrics *m = rdo_metrics_create(&o, fake_fill, fake_daemon, &f);
	cr_assert_not_null(m);
	unsigned port = url_port(m, "http://127.0.0.1:");
	char v[256];

	http(AF_INET, port, "GET /metrics HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 200, "%s", reply.raw);
	cr_assert_not_null(header(&reply, "Content-Type", v, sizeof(v)), "%s", reply.head);
	cr_assert_eq(strncmp(v, "text/plain; version=0.0.4", 25), 0, "Content-Type: %s", v);
	cr_assert(parse(reply.body, &parsed), "%s", parsed.err);
	expect(&parsed, "readoutd_superpages_total", "card=b", 17);
	expect(&parsed, "readoutd_start_time_seconds", "", 1700000000);
	cr_assert_not_null(header(&reply, "Content-Length", v, sizeof(v)));
	cr_assert_eq(strtoul(v, NULL, 10), strlen(reply.body));

	/* a second scrape fills each card again */
	http(AF_INET, port, "GET /metrics?x=1 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
	     &reply);
	cr_assert_eq(reply.code, 200, "%s", reply.raw);
	cr_assert_eq(f.calls[1], 2);

	http(AF_INET, port, "HEAD /metrics HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 200, "%s", reply.raw);
	cr_assert_str_eq(reply.body, "", "HEAD with a body");

	http(AF_INET, port, "GET / HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 200, "%s", reply.raw);
	cr_assert(strstr(reply.body, "/metrics"), "%s", reply.body);

	http(AF_INET, port, "GET /nope HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 404, "%s", reply.raw);
	http(AF_INET, port, "GET /metrics/ HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 404, "%s", reply.raw);

	http(AF_INET, port, "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello", &reply);
	cr_assert_eq(reply.code, 405, "%s", reply.raw);
	cr_assert_not_null(header(&reply, "Allow", v, sizeof(v)), "%s", reply.head);
	cr_assert_str_eq(v, "GET, HEAD");
	http(AF_INET, port, "DELETE / HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 405, "%s", reply.raw);

	unsigned calls = f.calls[0];
	rdo_metrics_destroy(&m);
	cr_assert_null(m);
	rdo_metrics_destroy(&m);
	cr_assert_eq(f.calls[0], calls, "filled after destroy");
}

/* Read one HTTP/1.1 response with a Content-Length from `fd`: its status code. */
static int read_one(int fd, char *buf, size_t cap)
{
	size_t got = 0;
	char *end = NULL;
	unsigned long clen = 0;
	for (;;) {
		buf[got] = '\0';
		if (!end && (end = strstr(buf, "\r\n\r\n"))) {
			const char *cl = strcasestr(buf, "\r\nContent-Length:");
			cr_assert(cl && cl < end, "no Content-Length: %s", buf);
			clen = strtoul(cl + 17, NULL, 10);
		}
		if (end && got >= (size_t)(end + 4 - buf) + clen)
			break;
		ssize_t rc = read(fd, buf + got, cap - 1 - got);
		cr_assert_gt(rc, 0, "connection ended early: %s", buf);
		got += (size_t)rc;
	}
	int code = 0;
	cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &code), 1, "%s", buf);
	cr_assert_null(strcasestr(buf, "Connection: close"), "%s", buf);
	return code;
}

Test(metrics, http_keep_alive)
{
	struct fake f = two_cards();
	struct rdo_metrics_opts o;
	rdo_metrics_opts_init(&o);
	rdo_strlcpy(o.bind, "127.0.0.1:0", sizeof(o.bind));
	struct rdo_metrics *m = rdo_metrics_create(&o, fake_fill, fake_daemon, &f);
	cr_assert_not_null(m);
	unsigned port = url_port(m, "http://127.0.0.1:");
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	static const char req[] = "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
	for (unsigned i = 0; i < 3; i++) {
		cr_assert_eq(write(fd, req, sizeof(req) - 1), (ssize_t)sizeof(req) - 1);
		cr_assert_eq(read_one(fd, reply.raw, sizeof(reply.raw)), 200);
	}
	close(fd);
	cr_assert_eq(f.calls[0], 3);
	rdo_metrics_destroy(&m);
}

/* Run rdo_metrics_create(o), expect NULL, and return what it logged. */
static void create_refused(const struct rdo_metrics_opts *o, char *log, size_t len)
{
	char path[] = "/tmp/rdo-test-metrics-XXXXXX";
	int fd = mkstemp(path);
	cr_assert_geq(fd, 0);
	fflush(stderr);
	int saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	struct fake f = {0};
	struct rdo_metrics *m = rdo_metrics_create(o, fake_fill, NULL, &f);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	ssize_t n = pread(fd, log, len - 1, 0);
	close(fd);
	unlink(path);
	log[n > 0 ? n : 0] = '\0';
	cr_assert_null(m, "created on %s", o->bind);
	cr_assert_gt(n, 0, "refused without a word");
}

Test(metrics, port_in_use_refused)
{
	struct fake f = two_cards();
	struct rdo_metrics_opts o;
	rdo_metrics_opts_init(&o);
	rdo_strlcpy(o.bind, "127.0.0.1:0", sizeof(o.bind));
	struct rdo_metrics *m = rdo_metrics_create(&o, fake_fill, NULL, &f);
	cr_assert_not_null(m);
	unsigned port = url_port(m, "http://127.0.0.1:");
	snprintf(o.bind, sizeof(o.bind), "127.0.0.1:%u", port);
	char log[4096];
	create_refused(&o, log, sizeof(log));
	char want[64];
	snprintf(want, sizeof(want), "port %u is in use", port);
	cr_assert(strstr(log, want), "the log lacks \"%s\": %s", want, log);
	cr_assert(strstr(log, "metrics.bind"), "no fix in: %s", log);
	/* the first one still serves */
	http(AF_INET, port, "GET /metrics HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 200);
	rdo_metrics_destroy(&m);
}

Test(metrics, bad_bind_refused)
{
	struct rdo_metrics_opts o;
	rdo_metrics_opts_init(&o);
	char log[4096];
	rdo_strlcpy(o.bind, "127.0.0.1", sizeof(o.bind));
	create_refused(&o, log, sizeof(log));
	cr_assert(strstr(log, "expected HOST:PORT"), "%s", log);
	rdo_strlcpy(o.bind, "192.0.2.1:0", sizeof(o.bind)); /* TEST-NET-1: on no interface */
	create_refused(&o, log, sizeof(log));
	cr_assert(strstr(log, "no interface"), "%s", log);
}

Test(metrics, http_ipv6)
{
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = in6addr_loopback};
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	if (!ok)
		cr_skip_test("no IPv6 loopback here: %s", strerror(errno));
	struct fake f = two_cards();
	struct rdo_metrics_opts o;
	rdo_metrics_opts_init(&o);
	rdo_strlcpy(o.bind, "[::1]:0", sizeof(o.bind));
	struct rdo_metrics *m = rdo_metrics_create(&o, fake_fill, fake_daemon, &f);
	cr_assert_not_null(m);
	unsigned port = url_port(m, "http://[::1]:");
	http(AF_INET6, port, "GET /metrics HTTP/1.0\r\n\r\n", &reply);
	cr_assert_eq(reply.code, 200, "%s", reply.raw);
	cr_assert(parse(reply.body, &parsed), "%s", parsed.err);
	expect(&parsed, "readoutd_superpages_total", "card=b", 17);
	rdo_metrics_destroy(&m);
}
