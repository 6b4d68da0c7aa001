/*
 * readout-sub: subscribe to a readoutd data stream, verify what comes, and
 * say how fast it came and what was wrong with it.
 * Exit status: 0 clean, 1 loss or corruption (with --check), 2 usage error,
 * 3 no data or no server.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/keys.h"
#include "common/util.h"
#include "lib/rdodata.h"
#include "lib/verify.h"
#include "tools/cli.h"
#include "tools/json.h"

#define EXIT_LOSS    1
#define EXIT_NO_DATA 3
#define NS	     1000000000ull
/* Problem lines printed per second at most; the rest are counted. */
#define PROBLEM_LINES 10

static const char usage_text[] =
    "usage: readout-sub [-e ENDPOINT] [--lossless] [--card NAME] [--topic T] [--count N]\n"
    "                   [--seconds S] [--check] [--json] [--credits N] [--timeout S]\n"
    "                   [--server-key KEY|FILE --key FILE] [--quiet] [-h]\n"
    "\n"
    "Receive superpages from readoutd's live stream (or, with --lossless, its lossless\n"
    "stream), check every DMA page header and the continuity of sequence numbers and\n"
    "page counters per link, print the rate once a second, one line per problem (at\n"
    "most 10 a second; the rest are counted) and a summary at the end.\n"
    "\n"
    "options:\n"
    "  -e, --endpoint ENDPOINT  data endpoint (default $READOUTD_LIVE, else\n"
    "                           " RDO_DEFAULT_LIVE_TCP "; with --lossless\n"
    "                           $READOUTD_LOSSLESS, else " RDO_DEFAULT_LOSSLESS_TCP ")\n"
    "  -l, --lossless           consume the lossless stream (credit flow control: the\n"
    "                           server holds superpages until this consumer takes them)\n"
    "      --card NAME          one card of a readoutd with several: live, its topic\n"
    "                           \"NAME/\" (a --topic must be one of its links); lossless,\n"
    "                           refuse a stream that is another card's\n"
    "  -T, --topic T            live only: \"\" everything (default), \"CARD/\" one card,\n"
    "                           \"CARD/LL\" one link (\"sim0/03\")\n"
    "  -n, --count N            stop after N superpages\n"
    "  -s, --seconds S          stop after S seconds\n"
    "  -c, --check              also check every payload byte against the pattern, and\n"
    "                           make the exit status strict (see below)\n"
    "  -j, --json               print the summary as one JSON object on stdout (the\n"
    "                           per-second lines then go to stderr)\n"
    "  -C, --credits N          superpages in flight (lossless) or queued here (live);\n"
    "                           default 8\n"
    "  -t, --timeout S          give up when no superpage came within S seconds of\n"
    "                           starting (default 5)\n"
    "      --server-key KEY     talk CURVE: readoutd's public key, as 40 Z85\n"
    "                           characters or a key file holding it (its .pub);\n"
    "                           default $RDO_SERVER_KEY. Needs --key\n"
    "      --key FILE           your key pair file (readoutctl keygen makes one; mode\n"
    "                           0600), authorised at readoutd as monitor or operator;\n"
    "                           default $RDO_CLIENT_KEY\n"
    "  -q, --quiet              no per-second lines\n"
    "  -h, --help               this text\n"
    "\n"
    "A readoutd bound to a non-loopback address speaks CURVE only; one that refuses\n"
    "the key sends nothing, as if it were not there (exit status 3).\n"
    "\n"
    "It stops after --count superpages, after --seconds, when the server ends the\n"
    "lossless stream, or on Ctrl-C (SIGINT) or SIGTERM.\n"
    "\n"
    "Per-second line: elapsed time, bytes/s and superpages/s over the last second,\n"
    "totals, superpages missing from the per-link sequences (gaps), superpages the\n"
    "server's sink dropped (sink drops), pages the card dropped at the source (card\n"
    "drops), corrupt pages.\n"
    "\n"
    "JSON summary keys: mode, endpoint, topic, payload_checked, ended_by (count,\n"
    "seconds, end, signal, silence, timeout, refused, card, error), seconds,\n"
    "superpages, pages, bytes (payload bytes), rate_bytes and rate_superpages (per second, over "
    "the run),\n"
    "sequence_gaps (superpages missing from the per-link sequences), gaps_counted (of\n"
    "those, counted by the server as dropped by its live sink), unexplained_gaps (the\n"
    "rest: lost), sink_dropped (superpages of any link the server's sink dropped while\n"
    "readout-sub listened, from the headers' dropped_before), links_seen, out_of_order,\n"
    "card_pages_dropped (pages the card counted as dropped\n"
    "at the source), pages_missing (jumps of the page counters inside contiguous\n"
    "sequences), corrupt_pages, unverified (header-only superpages: payload not\n"
    "written, not checked), malformed (messages that were not superpages), result\n"
    "(clean, loss, corrupt, no data), exit_status, and links: one object per link with\n"
    "card, link, superpages, pages, bytes, sequence_gaps, gaps_counted,\n"
    "card_pages_dropped, pages_missing, corrupt_pages, unverified and silent.\n"
    "\n"
    "exit status: 0 clean (without --check: whenever data came), 1 with --check: loss or\n"
    "corruption (corrupt pages, out-of-order or malformed messages and unexplained gaps\n"
    "in any mode; in lossless mode also any sequence gap or page the card dropped; in\n"
    "live mode superpages dropped and counted by the server or the card are reported\n"
    "but are not an error), 2 usage error, 3 no data at all or no server within the\n"
    "timeout, or (--card) the lossless stream is another card's.\n";

struct sub_opts {
	struct rdo_data_opts data;
	struct rdo_client_keys keys;		/* data.keys points here */
	struct rdo_cli cli;			/* cli.card NULL: any card */
	char card_topic[RDO_DATA_CARD_MAX + 2]; /* live with --card: "CARD/" */
	uint64_t count;				/* 0: no limit */
	double seconds;				/* 0: no limit */
	double timeout;
	bool check, quiet;
};

/* Problem lines: at most PROBLEM_LINES per second, the rest counted. */
struct problems {
	uint64_t window_ns;
	unsigned printed;
	uint64_t suppressed;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	stop_signal = sig;
}

static void print_usage(FILE *f)
{
	fputs(usage_text, f);
}

static int parse_seconds(const char *opt, const char *arg, double *out)
{
	if (!rdo_cli_seconds(arg, out) || !(*out > 0 && *out < 1e9))
		return rdo_cli_usage_error("%s: expected seconds (> 0), got \"%s\"", opt, arg);
	return 0;
}

static int parse_args(int argc, char **argv, struct sub_opts *o)
{
	static const struct option longopts[] = {
	    RDO_CLI_OPTIONS /* then readout-sub's own */
	    {"lossless", no_argument, NULL, 'l'},
	    {"topic", required_argument, NULL, 'T'},
	    {"count", required_argument, NULL, 'n'},
	    {"seconds", required_argument, NULL, 's'},
	    {"check", no_argument, NULL, 'c'},
	    {"credits", required_argument, NULL, 'C'},
	    {"timeout", required_argument, NULL, 't'},
	    {"quiet", no_argument, NULL, 'q'},
	    {NULL, 0, NULL, 0},
	};
	const char *topic = NULL;
	uint64_t credits;
	int opt, rc;
	rdo_cli_init(&o->cli, "readout-sub", print_usage);
	while ((opt = getopt_long(argc, argv, RDO_CLI_SHORT "lT:n:s:cC:t:q", longopts, NULL)) !=
	       -1) {
		switch (opt) {
		case 'l':
			o->data.mode = RDO_DATA_LOSSLESS;
			break;
		case 'T':
			topic = optarg;
			break;
		case 'n':
			if (rdo_parse_u64(optarg, &o->count) || o->count == 0)
				return rdo_cli_usage_error(
				    "--count: expected a number of superpages > 0, got \"%s\"",
				    optarg);
			break;
		case 's':
			if ((rc = parse_seconds("--seconds", optarg, &o->seconds)))
				return rc;
			break;
		case 'c':
			o->check = true;
			break;
		case 'C':
			if (rdo_parse_u64(optarg, &credits) || credits < 1 ||
			    credits > RDO_DATA_MAX_CREDITS)
				return rdo_cli_usage_error(
				    "--credits: expected 1 to 4096, got \"%s\"", optarg);
			o->data.credits = (unsigned)credits;
			break;
		case 't':
			if ((rc = parse_seconds("--timeout", optarg, &o->timeout)))
				return rc;
			break;
		case 'q':
			o->quiet = true;
			break;
		default:
			if ((rc = rdo_cli_option(&o->cli, opt, optarg)))
				return rc;
		}
	}
	if (optind < argc)
		return rdo_cli_usage_error("unexpected argument \"%s\"", argv[optind]);
	bool lossless = o->data.mode == RDO_DATA_LOSSLESS;
	if (topic && lossless)
		return rdo_cli_usage_error(
		    "--topic selects from the live stream; the lossless stream has no topics");
	const char *card = o->cli.card;
	char *card_topic = o->card_topic;
	if (card && !lossless) {
		/* A valid card name (rdo_cli_card_valid) and its '/' fit. */
		snprintf(card_topic, sizeof(o->card_topic), "%s/", card);
		if (topic && strncmp(topic, card_topic, strlen(card_topic)) != 0)
			return rdo_cli_usage_error(
			    "--topic \"%s\" is not card %s's: its topics are \"%s\" and \"%sLL\"",
			    topic, card, card_topic, card_topic);
		if (!topic)
			topic = card_topic;
	}
	if ((rc = rdo_cli_keys(&o->cli, &o->keys)))
		return rc;
	o->data.keys = &o->keys;
	const char *endpoint = o->cli.endpoint;
	if (!endpoint || !endpoint[0])
		endpoint = getenv(lossless ? "READOUTD_LOSSLESS" : "READOUTD_LIVE");
	if (!endpoint || !endpoint[0])
		endpoint = lossless ? RDO_DEFAULT_LOSSLESS_TCP : RDO_DEFAULT_LIVE_TCP;
	o->data.endpoint = endpoint;
	o->data.topic = topic ? topic : "";
	o->data.name = "readout-sub";
	return 0;
}

static void problem(struct problems *p, const char *line)
{
	uint64_t now = rdo_now_ns();
	if (now - p->window_ns >= NS) {
		p->window_ns = now;
		p->printed = 0;
	}
	if (p->printed++ < PROBLEM_LINES)
		fprintf(stderr, "readout-sub: %s\n", line);
	else
		p->suppressed++;
}

static void on_report(void *arg, enum rdo_verify_problem kind, const char *line)
{
	(void)kind;
	problem(arg, line);
}

static void flush_suppressed(struct problems *p)
{
	if (!p->suppressed)
		return;
	fprintf(stderr, "readout-sub: %llu more problem lines suppressed (at most %d a second)\n",
		(unsigned long long)p->suppressed, PROBLEM_LINES);
	p->suppressed = 0;
}

/* The one-a-second line; `last` holds the totals of the previous one. */
static void progress(FILE *out, const struct rdo_verify *v, double elapsed, double dt,
		     struct rdo_verify_counts *last)
{
	struct rdo_verify_totals t;
	rdo_verify_totals(v, &t);
	const struct rdo_verify_counts *c = &t.c;
	char rate[32], total[32];
	rdo_data_format_bytes(rate, sizeof(rate), (double)(c->bytes - last->bytes) / dt);
	rdo_data_format_bytes(total, sizeof(total), (double)c->bytes);
	uint64_t card =
	    c->card_pages_dropped > c->pages_missing ? c->card_pages_dropped : c->pages_missing;
	fprintf(out,
		"%7.1f s  %s/s  %.0f superpages/s  total %llu superpages %s  gaps %llu  sink drops "
		"%llu  card drops %llu  corrupt %llu\n",
		elapsed, rate, (double)(c->superpages - last->superpages) / dt,
		(unsigned long long)c->superpages, total, (unsigned long long)c->sequence_gaps,
		(unsigned long long)t.sink_dropped, (unsigned long long)card,
		(unsigned long long)c->corrupt_pages);
	fflush(out);
	*last = *c;
}

/* How the run ended, and what it found. */
struct outcome {
	const char *ended_by;
	const char *result;
	int status;
	double seconds;
	uint64_t malformed;
};

static void judge(const struct sub_opts *o, const struct rdo_verify_totals *t, struct outcome *r)
{
	const struct rdo_verify_counts *c = &t->c;
	bool lossless = o->data.mode == RDO_DATA_LOSSLESS;
	bool corrupt = c->corrupt_pages || c->out_of_order || r->malformed;
	bool loss = c->sequence_gaps > c->gaps_counted ||
		    (lossless && (c->sequence_gaps || c->card_pages_dropped || c->pages_missing ||
				  strcmp(r->ended_by, "silence") == 0));
	if (r->status == EXIT_NO_DATA)
		r->result = "no data";
	else if (corrupt)
		r->result = "corrupt";
	else if (loss)
		r->result = "loss";
	else
		r->result = "clean";
	if (r->status == 0 && o->check && (corrupt || loss))
		r->status = EXIT_LOSS;
}

static void json_counts(struct rdo_json *j, const struct rdo_verify_counts *c)
{
	rdo_json_u64(j, "superpages", c->superpages);
	rdo_json_u64(j, "pages", c->pages);
	rdo_json_u64(j, "bytes", c->bytes);
	rdo_json_u64(j, "sequence_gaps", c->sequence_gaps);
	rdo_json_u64(j, "gaps_counted", c->gaps_counted);
	rdo_json_u64(j, "card_pages_dropped", c->card_pages_dropped);
	rdo_json_u64(j, "pages_missing", c->pages_missing);
	rdo_json_u64(j, "corrupt_pages", c->corrupt_pages);
	rdo_json_u64(j, "unverified", c->unverified);
}

/* json.h writes integers only: the whole seconds, then three decimals right after them. */
static void json_seconds(struct rdo_json *j, const char *key, double s)
{
	uint64_t ms = (uint64_t)(s * 1000 + 0.5);
	rdo_json_u64(j, key, ms / 1000);
	fprintf(j->f, ".%03u", (unsigned)(ms % 1000));
}

static void summary_json(const struct sub_opts *o, const struct rdo_verify *v,
			 const struct rdo_verify_totals *t, const struct outcome *r)
{
	const struct rdo_verify_counts *c = &t->c;
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_str(&j, "mode", rdo_data_mode_name(o->data.mode));
	rdo_json_str(&j, "endpoint", o->data.endpoint);
	rdo_json_str(&j, "topic", o->data.topic);
	rdo_json_bool(&j, "payload_checked", o->check);
	rdo_json_str(&j, "ended_by", r->ended_by);
	json_seconds(&j, "seconds", r->seconds);
	json_counts(&j, c);
	rdo_json_u64(&j, "rate_bytes", r->seconds > 0 ? (uint64_t)(c->bytes / r->seconds) : 0);
	rdo_json_u64(&j, "rate_superpages",
		     r->seconds > 0 ? (uint64_t)(c->superpages / r->seconds) : 0);
	rdo_json_u64(&j, "unexplained_gaps", c->sequence_gaps - c->gaps_counted);
	rdo_json_u64(&j, "sink_dropped", t->sink_dropped);
	rdo_json_u64(&j, "links_seen", t->links);
	rdo_json_u64(&j, "out_of_order", c->out_of_order);
	rdo_json_u64(&j, "malformed", r->malformed);
	rdo_json_str(&j, "result", r->result);
	rdo_json_u64(&j, "exit_status", (uint64_t)r->status);
	rdo_json_open(&j, "links", '[');
	for (size_t i = 0; i < rdo_verify_nlinks(v); i++) {
		const struct rdo_verify_link *l = rdo_verify_link_at(v, i);
		rdo_json_open(&j, NULL, '{');
		rdo_json_str(&j, "card", l->card);
		rdo_json_u64(&j, "link", l->link);
		json_counts(&j, &l->c);
		rdo_json_bool(&j, "silent", l->silent);
		rdo_json_close(&j, '}');
	}
	rdo_json_close(&j, ']');
	rdo_json_close(&j, '}');
}

static void summary_text(const struct sub_opts *o, const struct rdo_verify *v,
			 const struct rdo_verify_totals *t, const struct outcome *r)
{
	const struct rdo_verify_counts *c = &t->c;
	char bytes[32], rate[32];
	rdo_data_format_bytes(bytes, sizeof(bytes), (double)c->bytes);
	rdo_data_format_bytes(rate, sizeof(rate), r->seconds > 0 ? c->bytes / r->seconds : 0);
	printf("readout-sub: %.1f s, %llu superpages, %llu pages, %s: %s/s, %.0f superpages/s\n",
	       r->seconds, (unsigned long long)c->superpages, (unsigned long long)c->pages, bytes,
	       rate, r->seconds > 0 ? c->superpages / r->seconds : 0.0);
	printf("  stream     %s %s", rdo_data_mode_name(o->data.mode), o->data.endpoint);
	if (o->data.mode == RDO_DATA_LIVE)
		printf(", topic \"%s\"", o->data.topic);
	printf(", %zu links seen, ended by %s\n", t->links, r->ended_by);
	printf("  gaps       %llu superpages missing: %llu counted as dropped by the server, %llu "
	       "unexplained; %llu out of order\n",
	       (unsigned long long)c->sequence_gaps, (unsigned long long)c->gaps_counted,
	       (unsigned long long)(c->sequence_gaps - c->gaps_counted),
	       (unsigned long long)c->out_of_order);
	printf("  sink drops %llu superpages of any link dropped by the server's sink meanwhile\n",
	       (unsigned long long)t->sink_dropped);
	printf("  card drops %llu pages counted by the card, %llu missing in page counters\n",
	       (unsigned long long)c->card_pages_dropped, (unsigned long long)c->pages_missing);
	printf("  corrupt    %llu pages (%s)\n", (unsigned long long)c->corrupt_pages,
	       o->check ? "headers and payloads checked"
			: "headers checked; --check checks payloads too");
	printf("  unverified %llu header-only superpages; %llu malformed messages\n",
	       (unsigned long long)c->unverified, (unsigned long long)r->malformed);
	if (t->links)
		printf("  %-10s %12s %12s %8s %11s %8s\n", "link", "superpages", "bytes", "gaps",
		       "card drops", "corrupt");
	for (size_t i = 0; i < t->links; i++) {
		const struct rdo_verify_link *l = rdo_verify_link_at(v, i);
		char name[RDO_DATA_CARD_MAX + 8];
		snprintf(name, sizeof(name), "%s/%02u", l->card, l->link);
		rdo_data_format_bytes(bytes, sizeof(bytes), (double)l->c.bytes);
		printf("  %-10s %12llu %12s %8llu %11llu %8llu%s\n", name,
		       (unsigned long long)l->c.superpages, bytes,
		       (unsigned long long)l->c.sequence_gaps,
		       (unsigned long long)l->c.card_pages_dropped,
		       (unsigned long long)l->c.corrupt_pages, l->silent ? "  silent" : "");
	}
	printf("  result     %s\n", r->result);
}

/* Why nothing came, naming the endpoint and what to try. */
static void explain_no_data(const struct sub_opts *o, struct rdo_data *d)
{
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	const char *ep = rdo_data_endpoint(d);
	if (o->data.mode == RDO_DATA_LIVE)
		fprintf(
		    stderr,
		    "readout-sub: no superpage from %s (topic \"%s\") within %.1f s: is readoutd "
		    "running there and acquiring? (readoutctl status; readoutctl start) And if it "
		    "needs CURVE, is your key authorised (--server-key, --key)?\n",
		    ep, o->data.topic, o->timeout);
	else if (!st.welcomed)
		fprintf(stderr,
			"readout-sub: no answer from %s within %.1f s: is readoutd running there "
			"with its lossless stream enabled? (start it: systemctl start readoutd, or "
			"make run in a source tree) And if it needs CURVE, is your key authorised "
			"(--server-key, --key)?\n",
			ep, o->timeout);
	else
		fprintf(stderr,
			"readout-sub: connected to %s (card %s), but no superpage came within %.1f "
			"s: is the acquisition running? (readoutctl status; readoutctl start)\n",
			ep, st.card, o->timeout);
}

/*
 * --card on the lossless stream, which has no topics: once welcomed, is it
 * that card's? Says why on stderr when it is not.
 */
static bool wrong_card(const struct sub_opts *o, struct rdo_data *d, bool *checked)
{
	if (*checked || o->data.mode != RDO_DATA_LOSSLESS)
		return false;
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	if (!st.welcomed)
		return false;
	*checked = true;
	if (strcmp(st.card, o->cli.card) == 0)
		return false;
	fprintf(stderr,
		"readout-sub: the lossless stream at %s is card %s's, not %s's: point -e at card "
		"%s's lossless endpoint (readoutd's config lists them)\n",
		rdo_data_endpoint(d), st.card, o->cli.card, o->cli.card);
	return true;
}

/*
 * Receive, verify and count until a stop condition. Fills `r->ended_by` and,
 * for no data or no server, `r->status`.
 */
static void run(const struct sub_opts *o, struct rdo_data *d, struct rdo_verify *v,
		struct problems *p, struct outcome *r)
{
	FILE *out = o->cli.json ? stderr : stdout;
	struct rdo_verify_counts last = {0};
	uint64_t start = rdo_now_ns(), tick = start, received = 0;
	bool card_checked = false;
	r->ended_by = "error";
	for (;;) {
		uint64_t now = rdo_now_ns();
		double elapsed = (double)(now - start) / NS;
		if (stop_signal) {
			r->ended_by = "signal";
			break;
		}
		if (o->count && received >= o->count) {
			r->ended_by = "count";
			break;
		}
		if (o->seconds && elapsed >= o->seconds) {
			r->ended_by = "seconds";
			break;
		}
		if (!received && elapsed >= o->timeout) {
			r->ended_by = "timeout";
			break;
		}
		if (now - tick >= NS) {
			rdo_verify_tick(v, now);
			if (!o->quiet)
				progress(out, v, elapsed, (double)(now - tick) / NS, &last);
			flush_suppressed(p);
			tick = now;
		}
		struct rdo_data_view sp;
		int rc = rdo_data_wait(d, &sp, 100);
		if (o->cli.card && wrong_card(o, d, &card_checked)) {
			if (rc == 0)
				rdo_data_ack(d, &sp);
			r->ended_by = "card";
			r->status = EXIT_NO_DATA;
			break;
		}
		if (rc == 0) {
			received++;
			rdo_verify_superpage(v, &sp, rdo_now_ns());
			rdo_data_ack(d, &sp);
		} else if (rc == -EPROTO) {
			char line[600];
			snprintf(line, sizeof(line), "malformed message skipped: %s",
				 rdo_data_error(d));
			problem(p, line);
		} else if (rc == -EPIPE) {
			struct rdo_data_stats st;
			rdo_data_stats(d, &st);
			r->ended_by = st.silent ? "silence" : "end";
			fprintf(stderr, "readout-sub: %s\n", rdo_data_error(d));
			break;
		} else if (rc == -ECONNREFUSED) {
			r->ended_by = "refused";
			fprintf(stderr, "readout-sub: %s\n", rdo_data_error(d));
			r->status = EXIT_NO_DATA;
			break;
		} else if (rc != -ETIMEDOUT && rc != -EINTR) {
			fprintf(stderr, "readout-sub: receiving from %s failed: %s\n",
				rdo_data_endpoint(d), strerror(-rc));
			break;
		}
	}
	r->seconds = (double)(rdo_now_ns() - start) / NS;
	flush_suppressed(p);
	if (!received && r->status == 0) {
		if (strcmp(r->ended_by, "timeout") == 0)
			explain_no_data(o, d);
		else
			fprintf(stderr, "readout-sub: no superpage came from %s\n",
				rdo_data_endpoint(d));
		r->status = EXIT_NO_DATA;
	}
}

int main(int argc, char **argv)
{
	struct sub_opts o = {.timeout = 5.0};
	rdo_data_opts_init(&o.data);
	int rc = parse_args(argc, argv, &o);
	if (rc)
		return rc;

	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	char err[512];
	struct rdo_data *d = rdo_data_open(&o.data, err, sizeof(err));
	explicit_bzero(&o.keys, sizeof(o.keys)); /* on the socket now */
	if (!d)
		return rdo_cli_usage_error("%s", err);
	struct problems p = {0};
	struct rdo_verify_opts vo;
	rdo_verify_opts_init(&vo);
	vo.check_payload = o.check;
	vo.report = on_report;
	vo.arg = &p;
	struct rdo_verify *v = rdo_verify_create(&vo);
	if (!v) {
		fprintf(stderr, "readout-sub: out of memory\n");
		rdo_data_close(&d);
		return EXIT_NO_DATA;
	}

	struct outcome r = {0};
	run(&o, d, v, &p, &r);
	struct rdo_verify_totals t;
	rdo_verify_totals(v, &t);
	struct rdo_data_stats st;
	rdo_data_stats(d, &st);
	r.malformed = st.malformed;
	judge(&o, &t, &r);
	if (o.cli.json)
		summary_json(&o, v, &t, &r);
	else if (r.status != EXIT_NO_DATA)
		summary_text(&o, v, &t, &r);
	rdo_verify_destroy(&v);
	rdo_data_close(&d);
	explicit_bzero(&o.keys, sizeof(o.keys));
	return r.status;
}
