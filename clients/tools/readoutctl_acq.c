/*
 * readoutctl's commands about the cards and their acquisition: list-cards,
 * info, start, stop, reset and status (readoutctl.h).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "tools/json.h"
#include "tools/readoutctl.h"

/* status --watch: Ctrl-C or SIGTERM ends it after the current round. */
static volatile sig_atomic_t stop_signal;

/* In the order of Rdo__State. */
static const char *state_name(Rdo__State s)
{
	static const char *const names[] = {"idle", "running", "stopping", "error"};
	return (unsigned)s < RDO_ARRAY_SIZE(names) ? names[s] : "unknown";
}

/* What info and list-cards both say first of a card: which it is. */
static void json_identity(struct rdo_json *j, const Rdo__InfoReply *in)
{
	rdo_json_str(j, "card", in->card);
	rdo_json_str(j, "backend", in->backend);
	rdo_json_str(j, "address", in->address);
	rdo_json_u64(j, "identity", in->identity);
	rdo_json_u64(j, "firmware", in->firmware);
	rdo_json_u64(j, "serial", in->serial);
}

static void print_info(const struct ctl *c, const Rdo__Reply *r)
{
	if (r->body_case != RDO__REPLY__BODY_INFO)
		return;
	const Rdo__InfoReply *in = r->info;
	if (c->cli.json) {
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		json_identity(&j, in);
		rdo_json_u64(&j, "links", in->links);
		rdo_json_str(&j, "map", in->map_name);
		rdo_json_str(&j, "map_file", in->map_file);
		rdo_json_u64(&j, "map_registers", in->map_registers);
		rdo_json_bool(&j, "forced", in->forced);
		rdo_json_str(&j, "state", state_name(in->state));
		/* json.h has no signed numbers: an unknown node (-1) leaves the key out. */
		if (in->numa_node >= 0)
			rdo_json_u64(&j, "numa_node", (uint64_t)in->numa_node);
		rdo_json_str(&j, "server_version", in->server_version);
		rdo_json_u64(&j, "protocol", r->version);
		rdo_json_open(&j, "bars", '[');
		for (size_t i = 0; i < in->n_bars; i++) {
			rdo_json_open(&j, NULL, '{');
			rdo_json_u64(&j, "index", in->bars[i]->index);
			rdo_json_u64(&j, "size", in->bars[i]->size);
			rdo_json_close(&j, '}');
		}
		rdo_json_close(&j, ']');
		rdo_json_close(&j, '}');
		return;
	}
	printf("card      %s (backend %s, address %s)%s\n", in->card, in->backend, in->address,
	       in->forced ? "  FORCED: identity or firmware not supported by the map" : "");
	printf("identity  0x%08x\n", in->identity);
	printf("firmware  %u.%u.%u (0x%08x)\n", in->firmware >> 24, (in->firmware >> 16) & 0xff,
	       in->firmware & 0xffff, in->firmware);
	printf("serial    0x%016llx\n", (unsigned long long)in->serial);
	printf("links     %u\n", in->links);
	printf("bars     ");
	for (size_t i = 0; i < in->n_bars; i++)
		printf(" bar%u %llu KiB", in->bars[i]->index,
		       (unsigned long long)in->bars[i]->size / 1024);
	printf("\n");
	printf("map       %s, %u registers (%s)\n", in->map_name, in->map_registers, in->map_file);
	printf("state     %s", state_name(in->state));
	if (in->numa_node >= 0)
		printf(", NUMA node %d", in->numa_node);
	printf("\n");
	printf("server    readoutd %s, protocol %u, at %s\n", in->server_version, r->version,
	       rdo_client_endpoint(c->client));
}

/* "1.2.3 (0x01020003)", as info prints a firmware version. */
static const char *firmware_str(char buf[32], uint32_t fw)
{
	snprintf(buf, 32, "%u.%u.%u (0x%08x)", fw >> 24, (fw >> 16) & 0xff, fw & 0xffff, fw);
	return buf;
}

static int max_width(int w, const char *s)
{
	int n = (int)strlen(s);
	return n > w ? n : w;
}

/* list-cards: one line a card, or {"cards": [...]} with --json. */
static void print_cards(const struct ctl *c, const Rdo__Reply *r)
{
	const Rdo__CardList *cl = r->cards;
	size_t n = cl ? cl->n_cards : 0;
	if (c->cli.json) {
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		rdo_json_open(&j, "cards", '[');
		for (size_t i = 0; i < n; i++) {
			const Rdo__InfoReply *in = cl->cards[i];
			rdo_json_open(&j, NULL, '{');
			json_identity(&j, in);
			if (in->numa_node >= 0)
				rdo_json_u64(&j, "numa_node", (uint64_t)in->numa_node);
			rdo_json_str(&j, "state", state_name(in->state));
			rdo_json_u64(&j, "links", in->links);
			rdo_json_str(&j, "map", in->map_name);
			rdo_json_str(&j, "map_file", in->map_file);
			rdo_json_bool(&j, "forced", in->forced);
			rdo_json_close(&j, '}');
		}
		rdo_json_close(&j, ']');
		rdo_json_close(&j, '}');
		return;
	}
	int wn = 4, wb = 7, wa = 7;
	for (size_t i = 0; i < n; i++) {
		wn = max_width(wn, cl->cards[i]->card);
		wb = max_width(wb, cl->cards[i]->backend);
		wa = max_width(wa, cl->cards[i]->address);
	}
	printf("%-*s %-*s %-*s %-10s %-18s %-18s %4s %-8s %5s %s\n", wn, "card", wb, "backend", wa,
	       "address", "identity", "firmware", "serial", "numa", "state", "links", "map");
	for (size_t i = 0; i < n; i++) {
		const Rdo__InfoReply *in = cl->cards[i];
		char fw[32], numa[16] = "-";
		if (in->numa_node >= 0)
			snprintf(numa, sizeof(numa), "%d", in->numa_node);
		printf("%-*s %-*s %-*s 0x%08x %-18s 0x%016llx %4s %-8s %5u %s%s\n", wn, in->card,
		       wb, in->backend, wa, in->address, in->identity,
		       firmware_str(fw, in->firmware), (unsigned long long)in->serial, numa,
		       state_name(in->state), in->links, in->map_name,
		       in->forced ? "  FORCED" : "");
	}
	if (n == 0)
		printf("(the server reads out no card)\n");
}

static const char *yes(bool b)
{
	return b ? "yes" : "no";
}

/* "sim0 running, run 42, up 0:01:23": what start, stop and reset print. */
static void print_state_line(const Rdo__Status *st)
{
	printf("%s %s, run %llu", st->card, state_name(st->state), (unsigned long long)st->run);
	if (st->state != RDO__STATE__STATE_IDLE)
		printf(", up %llu:%02llu:%02llu", (unsigned long long)st->uptime_s / 3600,
		       (unsigned long long)st->uptime_s / 60 % 60,
		       (unsigned long long)st->uptime_s % 60);
	printf("\n");
}

static void print_links(const Rdo__Status *st)
{
	char b[32], r[32];
	printf("links       %-4s %-7s %-3s %-7s %11s %10s %12s %13s\n", "link", "enabled", "up",
	       "stalled", "superpages", "bytes", "rate", "pages dropped");
	for (size_t i = 0; i < st->n_links; i++) {
		const Rdo__LinkStatus *l = st->links[i];
		printf("            %02u   %-7s %-3s %-7s %11llu %10s %10s/s %13llu\n", l->link,
		       yes(l->enabled), yes(l->up), yes(l->stalled),
		       (unsigned long long)l->superpages, ctl_bytes(b, (double)l->bytes),
		       ctl_bytes(r, l->rate_bytes), (unsigned long long)l->pages_dropped);
	}
}

static void print_sinks(const Rdo__Status *st)
{
	char r[32];
	for (size_t i = 0; i < st->n_sinks; i++) {
		const Rdo__SinkStatus *k = st->sinks[i];
		printf("%-11s %s: %llu superpages, %s/s, dropped %llu, queued %u, %u consumers,",
		       i ? "" : "sinks", k->name, (unsigned long long)k->superpages,
		       ctl_bytes(r, k->rate_bytes), (unsigned long long)k->dropped, k->queued,
		       k->consumers);
		for (size_t e = 0; e < k->n_endpoints; e++)
			printf(" %s", k->endpoints[e]);
		printf("\n");
		if (k->state && k->state[0])
			printf("%-11s   %s, %llu files closed, %llu errors, file %s%s%s\n", "",
			       k->state, (unsigned long long)k->files,
			       (unsigned long long)k->errors,
			       k->file && k->file[0] ? k->file : "(none yet)",
			       k->last_error && k->last_error[0] ? "; last error: " : "",
			       k->last_error ? k->last_error : "");
	}
}

static void print_status(const Rdo__Status *st)
{
	char a[32], b[32];
	printf("card        ");
	print_state_line(st);
	printf("totals      %llu superpages, %s; %s/s, %.1f superpages/s; %llu taken by no sink\n",
	       (unsigned long long)st->superpages, ctl_bytes(a, (double)st->bytes),
	       ctl_bytes(b, st->rate_bytes), st->rate_superpages,
	       (unsigned long long)st->unclaimed);
	printf("card drops  %llu pages (%s); FIFO overflows %llu\n",
	       (unsigned long long)st->pages_dropped, ctl_bytes(a, (double)st->bytes_dropped),
	       (unsigned long long)st->fifo_overflows);
	printf("pool        %u free, %u in card, %u in sinks, of %u superpages of %s (%s)\n",
	       st->pool_free, st->pool_in_card, st->pool_in_sinks, st->pool_total,
	       ctl_bytes(a, (double)st->superpage_size),
	       st->pool_memory[0] ? st->pool_memory : "memory kind unknown");
	if (st->temperature_mc)
		printf("temperature %.1f C\n", st->temperature_mc / 1000.0);
	else
		printf("temperature not reported by this card\n");
	print_links(st);
	print_sinks(st);
	printf("errors      %llu%s%s\n", (unsigned long long)st->errors,
	       st->last_error[0] ? ", last: " : "", st->last_error);
	if (st->events_lost)
		printf("events      %llu logged but not published (event queue full)\n",
		       (unsigned long long)st->events_lost);
}

/* One object a line (json.h ends the line when the top object closes). */
static void json_status(const Rdo__Status *st)
{
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_str(&j, "card", st->card);
	rdo_json_str(&j, "state", state_name(st->state));
	rdo_json_u64(&j, "time_ns", st->time_ns);
	rdo_json_u64(&j, "run", st->run);
	rdo_json_u64(&j, "uptime_s", st->uptime_s);
	rdo_json_u64(&j, "superpages", st->superpages);
	rdo_json_u64(&j, "bytes", st->bytes);
	rdo_json_u64(&j, "rate_bytes", (uint64_t)(st->rate_bytes + 0.5));
	rdo_json_u64(&j, "rate_superpages", (uint64_t)(st->rate_superpages + 0.5));
	rdo_json_u64(&j, "pages_dropped", st->pages_dropped);
	rdo_json_u64(&j, "bytes_dropped", st->bytes_dropped);
	rdo_json_u64(&j, "fifo_overflows", st->fifo_overflows);
	rdo_json_open(&j, "pool", '{');
	rdo_json_u64(&j, "total", st->pool_total);
	rdo_json_u64(&j, "free", st->pool_free);
	rdo_json_u64(&j, "in_card", st->pool_in_card);
	rdo_json_u64(&j, "in_sinks", st->pool_in_sinks);
	rdo_json_u64(&j, "superpage_size", st->superpage_size);
	rdo_json_str(&j, "memory", st->pool_memory);
	rdo_json_close(&j, '}');
	/* json.h has no signed numbers; a card below 0 C leaves the key out. */
	if (st->temperature_mc > 0)
		rdo_json_u64(&j, "temperature_mc", (uint64_t)st->temperature_mc);
	rdo_json_open(&j, "links", '[');
	for (size_t i = 0; i < st->n_links; i++) {
		const Rdo__LinkStatus *l = st->links[i];
		rdo_json_open(&j, NULL, '{');
		rdo_json_u64(&j, "link", l->link);
		rdo_json_bool(&j, "enabled", l->enabled);
		rdo_json_bool(&j, "up", l->up);
		rdo_json_bool(&j, "stalled", l->stalled);
		rdo_json_u64(&j, "superpages", l->superpages);
		rdo_json_u64(&j, "bytes", l->bytes);
		rdo_json_u64(&j, "pages", l->pages);
		rdo_json_u64(&j, "pages_dropped", l->pages_dropped);
		rdo_json_u64(&j, "bytes_dropped", l->bytes_dropped);
		rdo_json_u64(&j, "rate_bytes", (uint64_t)(l->rate_bytes + 0.5));
		rdo_json_u64(&j, "in_card", l->in_card);
		rdo_json_close(&j, '}');
	}
	rdo_json_close(&j, ']');
	rdo_json_open(&j, "sinks", '[');
	for (size_t i = 0; i < st->n_sinks; i++) {
		const Rdo__SinkStatus *k = st->sinks[i];
		rdo_json_open(&j, NULL, '{');
		rdo_json_str(&j, "name", k->name);
		rdo_json_u64(&j, "superpages", k->superpages);
		rdo_json_u64(&j, "bytes", k->bytes);
		rdo_json_u64(&j, "dropped", k->dropped);
		rdo_json_u64(&j, "queued", k->queued);
		rdo_json_u64(&j, "consumers", k->consumers);
		rdo_json_u64(&j, "rate_bytes", (uint64_t)(k->rate_bytes + 0.5));
		rdo_json_open(&j, "endpoints", '[');
		for (size_t e = 0; e < k->n_endpoints; e++)
			rdo_json_str(&j, NULL, k->endpoints[e]);
		rdo_json_close(&j, ']');
		if (k->state && k->state[0]) {
			rdo_json_str(&j, "state", k->state);
			rdo_json_str(&j, "file", k->file);
			rdo_json_u64(&j, "files", k->files);
			rdo_json_u64(&j, "errors", k->errors);
			rdo_json_str(&j, "last_error", k->last_error);
		}
		rdo_json_close(&j, '}');
	}
	rdo_json_close(&j, ']');
	rdo_json_u64(&j, "errors", st->errors);
	rdo_json_u64(&j, "unclaimed", st->unclaimed);
	rdo_json_u64(&j, "events_lost", st->events_lost);
	rdo_json_str(&j, "last_error", st->last_error);
	rdo_json_close(&j, '}');
}

static void on_signal(int sig)
{
	stop_signal = sig;
}

/* A status reply: `text` prints it without --json. */
static void print_status_reply(const struct ctl *c, const Rdo__Reply *r,
			       void (*text)(const Rdo__Status *st))
{
	if (r->body_case != RDO__REPLY__BODY_STATUS)
		return;
	if (c->cli.json)
		json_status(r->status);
	else
		text(r->status);
}

/* What start, stop and reset print: the state they left. */
static void print_state(const struct ctl *c, const Rdo__Reply *r)
{
	print_status_reply(c, r, print_state_line);
}

static void print_full_status(const struct ctl *c, const Rdo__Reply *r)
{
	print_status_reply(c, r, print_status);
}

int ctl_list_cards(struct ctl *c)
{
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_LIST_CARDS);
	req.list_cards = &(Rdo__ListCardsRequest)RDO__LIST_CARDS_REQUEST__INIT;
	return ctl_no_args(c) ? RDO_EXIT_USAGE : ctl_call(c, &req, print_cards);
}

int ctl_info(struct ctl *c)
{
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_INFO);
	req.info = &(Rdo__InfoRequest)RDO__INFO_REQUEST__INIT;
	return ctl_no_args(c) ? RDO_EXIT_USAGE : ctl_call(c, &req, print_info);
}

int ctl_start(struct ctl *c)
{
	Rdo__StartRequest start = RDO__START_REQUEST__INIT;
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_START);
	start.run = c->acq.run;
	req.start = &start;
	return ctl_no_args(c) ? RDO_EXIT_USAGE : ctl_call(c, &req, print_state);
}

int ctl_stop(struct ctl *c)
{
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_STOP);
	req.stop = &(Rdo__StopRequest)RDO__STOP_REQUEST__INIT;
	return ctl_no_args(c) ? RDO_EXIT_USAGE : ctl_call(c, &req, print_state);
}

int ctl_reset(struct ctl *c)
{
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_RESET);
	req.reset = &(Rdo__ResetRequest)RDO__RESET_REQUEST__INIT;
	return ctl_no_args(c) ? RDO_EXIT_USAGE : ctl_call(c, &req, print_state);
}

/* status; with --watch again every --interval until a signal or a failure. */
int ctl_status(struct ctl *c)
{
	Rdo__Request req = ctl_request(c, RDO__REQUEST__CMD_STATUS);
	req.status = &(Rdo__StatusRequest)RDO__STATUS_REQUEST__INIT;
	const struct ctl_acq_opts *a = &c->acq;
	int rc = ctl_no_args(c);
	if (rc)
		return rc;
	if (a->watch) {
		struct sigaction sa = {.sa_handler = on_signal};
		sigemptyset(&sa.sa_mask);
		sigaction(SIGINT, &sa, NULL);
		sigaction(SIGTERM, &sa, NULL);
	}
	rc = ctl_call(c, &req, print_full_status);
	while (a->watch && rc == 0 && !stop_signal) {
		struct timespec ts = {
		    .tv_sec = (time_t)a->interval,
		    .tv_nsec = (long)((a->interval - (double)(time_t)a->interval) * 1e9)};
		/* A signal cuts the sleep short. */
		if (nanosleep(&ts, NULL) != 0 || stop_signal)
			break;
		if (!c->cli.json)
			printf("\n");
		rc = ctl_call(c, &req, print_full_status);
	}
	return rc;
}
