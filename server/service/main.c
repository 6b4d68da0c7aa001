/*
 * readoutd: open every card of the config, check each is the card its
 * register map describes, take it for this process, set up its DMA channel
 * and sinks; then one status stream, one control socket and the metrics
 * endpoint for all of them; start acquisition and serve until SIGINT or
 * SIGTERM, reloading maps and authorised keys at SIGHUP, telling systemd how
 * it is doing all along. At the end, stop acquisition, deliver what the cards
 * flushed, and tear down in reverse order.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "card/card.h"
#include "card/numa.h"
#include "card/regmap.h"
#include "card/regmap_load.h"
#include "common/log.h"
#include "common/util.h"
#include "core/events.h"
#include "core/sink.h"
#include "core/zsock.h"
#include "dma/dma.h"
#include "net/auth.h"
#include "net/control.h"
#include "net/status.h"
#include "service/config.h"
#include "service/metrics.h"
#include "service/service.h"
#include "sinks/disk.h"
#include "sinks/live.h"
#include "sinks/lossless.h"

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: readoutd [-c FILE] [--bind ENDPOINT]... [--force] [--log-level LEVEL]\n"
	    "       readoutd --check-config FILE\n"
	    "\n"
	    "Read out cards: their registers, DMA data and status over ZeroMQ.\n"
	    "\n"
	    "  -c, --config FILE        server config (default %s)\n"
	    "  -b, --bind ENDPOINT      control endpoint, instead of the config's; repeatable\n"
	    "                           (tcp://127.0.0.1:PORT, tcp://127.0.0.1:* for any port,\n"
	    "                           ipc:///path)\n"
	    "  -f, --force              start even if a card's identity or firmware does not\n"
	    "                           match its register map\n"
	    "  -l, --log-level LEVEL    err, warning, notice, info (default) or debug\n"
	    "  -C, --check-config FILE  check FILE, its register maps and key files in full,\n"
	    "                           print the effective config (defaults filled in) and\n"
	    "                           exit 0, or print what is wrong and exit 1\n"
	    "  -h, --help               this text\n"
	    "  -V, --version            print the version\n"
	    "\n"
	    "Logs go to stderr with syslog priority prefixes. Once serving, readoutd logs\n"
	    "\"ready: ...\" with every bound endpoint and, under systemd (Type=notify), says\n"
	    "READY=1. SIGINT and SIGTERM stop it; SIGHUP reloads the register maps and the\n"
	    "authorised keys without stopping acquisition.\n",
	    RDO_DEFAULT_CONFIG);
}

static const char *fw_string(uint64_t fw, char *buf, size_t cap)
{
	snprintf(buf, cap, "%u.%u.%u (0x%08llx)", (unsigned)(fw >> 24) & 0xff,
		 (unsigned)(fw >> 16) & 0xff, (unsigned)fw & 0xffff, (unsigned long long)fw);
	return buf;
}

/*
 * The card must be the one the map describes: identity equal, firmware in the
 * supported range. A mismatch is an error unless forced, then a warning.
 */
static int check_identity(struct rdo_card *card, const struct rdo_regmap *map, bool force)
{
	int mismatches = 0;
	uint64_t want, min, max, got;
	const struct rdo_reg *r = rdo_regmap_identity(map, &want);
	const char *verdict = force ? "continuing because of --force" : "refusing to start";
	int level = force ? LOG_WARNING : LOG_ERR;
	if (r) {
		got = rdo_reg_read(card, r);
		if (got != want) {
			rdo_log(
			    level,
			    "card %s: identity %s reads 0x%llx, but register map %s (%s) is for "
			    "cards with 0x%llx: %s. Use the map for this card (card.regmap in "
			    "the config), or --force",
			    card->name, r->name, (unsigned long long)got, rdo_regmap_name(map),
			    rdo_regmap_source(map), (unsigned long long)want, verdict);
			mismatches++;
		}
	}
	r = rdo_regmap_firmware(map, &min, &max);
	if (r) {
		char a[40], b[40], c[40];
		got = rdo_reg_read(card, r);
		if (got < min || got > max) {
			rdo_log(level,
				"card %s: firmware %s is not supported by register map %s (%s), "
				"which supports %s to %s: %s. Load a map for this firmware, or "
				"--force",
				card->name, fw_string(got, a, sizeof(a)), rdo_regmap_name(map),
				rdo_regmap_source(map), fw_string(min, b, sizeof(b)),
				fw_string(max, c, sizeof(c)), verdict);
			mismatches++;
		}
	}
	return mismatches && !force ? -EPERM : 0;
}

/*
 * The SHA-256 of the register map file's bytes, as `sha256sum` prints it:
 * data files and card info carry it, so that years later the map that
 * decoded a run can be told from any other. 0, or -errno.
 */
static int map_sha256(const char *file, uint8_t out[crypto_hash_sha256_BYTES])
{
	FILE *f = fopen(file, "rb");
	if (!f)
		return -errno;
	crypto_hash_sha256_state st;
	crypto_hash_sha256_init(&st);
	unsigned char buf[8192];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		crypto_hash_sha256_update(&st, buf, n);
	int rc = ferror(f) ? -EIO : 0;
	fclose(f);
	crypto_hash_sha256_final(&st, out);
	return rc;
}

/* What every file the writer opens says of where its data came from. */
static void writer_ident(struct rdo_file_header *h, struct rdo_card *card,
			 const struct rdo_regmap *map, const struct rdo_card_conf *o,
			 const uint8_t *sha)
{
	uint64_t a, b;
	memset(h, 0, sizeof(*h));
	h->superpage_size = (uint32_t)o->dma.superpage_size;
	h->serial = rdo_reg_read(card, rdo_regmap_serial(map));
	h->identity = (uint32_t)rdo_reg_read(card, rdo_regmap_identity(map, &a));
	h->firmware = (uint32_t)rdo_reg_read(card, rdo_regmap_firmware(map, &a, &b));
	h->links = card->links;
	memcpy(h->map_sha256, sha, sizeof(h->map_sha256));
	rdo_strlcpy(h->card, card->name, sizeof(h->card));
	rdo_strlcpy(h->backend, o->card.backend, sizeof(h->backend));
	rdo_strlcpy(h->address, card->address, sizeof(h->address));
	rdo_strlcpy(h->map_name, rdo_regmap_name(map), sizeof(h->map_name));
	if (gethostname(h->host, sizeof(h->host) - 1))
		rdo_strlcpy(h->host, "unknown", sizeof(h->host));
	rdo_strlcpy(h->writer, "readoutd " RDO_VERSION, sizeof(h->writer));
}

/* One card and everything that reads it out. */
struct unit {
	const struct rdo_card_conf *conf;
	struct rdo_regmap *map;
	uint8_t sha[crypto_hash_sha256_BYTES];
	struct rdo_card *card;
	struct rdo_events *events;
	struct rdo_dma *dma;
	struct rdo_sink *sinks[RDO_DMA_MAX_SINKS];
	unsigned nsinks;
	int numa_node;	    /* where its DMA thread runs; -1: not pinned */
	uint64_t heartbeat; /* the channel thread's, at the last health check */
};

struct daemon {
	struct rdo_server_opts o;
	struct unit unit[RDO_MAX_CARDS];
	unsigned n;
	void *zctx;
	struct rdo_auth *auth;
	struct rdo_status *status;
	struct rdo_control *ctl;
	struct rdo_metrics *metrics;
	_Atomic uint64_t reloads;
	uint64_t start_time_s;
};

/* Load a card's register map and its SHA-256: the map, or NULL (logged). */
static struct rdo_regmap *load_map(const struct rdo_card_conf *c, uint8_t *sha)
{
	char err[512];
	struct rdo_regmap *map = rdo_regmap_load(c->regmap_file, err, sizeof(err));
	if (!map) {
		rdo_err("card %s: %s", c->card.name, err);
		return NULL;
	}
	int rc = map_sha256(c->regmap_file, sha);
	if (rc) {
		rdo_err("card %s: register map %s: cannot compute its SHA-256: %s", c->card.name,
			c->regmap_file, strerror(-rc));
		rdo_regmap_destroy(&map);
	}
	return map;
}

/* Does `map` fit the open card: its BARs and its identity? 0, or -errno (logged). */
static int check_map(struct unit *u, struct rdo_regmap *map, bool force)
{
	char err[256];
	if (rdo_regmap_bind_bars(map, u->card->nbars, u->card->bar_size, err, sizeof(err))) {
		rdo_err("register map %s does not fit card %s: %s", u->conf->regmap_file,
			u->card->name, err);
		return -EINVAL;
	}
	return check_identity(u->card, map, force);
}

/*
 * The card, its channel and its sinks. The channel is set up with this
 * thread pinned to the card's NUMA node (on a machine with more than one):
 * its thread inherits the pinning and its pool is touched, so placed, there.
 */
static int unit_open(struct daemon *dm, struct unit *u, const struct rdo_card_conf *conf)
{
	u->conf = conf;
	u->numa_node = -1;
	if (!(u->map = load_map(conf, u->sha)))
		return -1;
	struct rdo_card_opts copts = conf->card;
	/* A real card's links are its firmware's: the map says; the emulator's are an option. */
	if (strcmp(copts.backend, "sim") != 0)
		copts.links = rdo_regmap_dma(u->map)->links;
	if (!(u->card = rdo_card_open(&copts)))
		return -1;
	if (check_map(u, u->map, conf->force) || rdo_card_lock(u->card))
		return -1;
	if (!(u->events = rdo_events_create()))
		return -1;
	int node = conf->numa_node >= 0 ? conf->numa_node : u->card->numa_node;
	cpu_set_t saved;
	if (node >= 0 && rdo_numa_nodes() > 1) {
		int rc = rdo_numa_enter(node, &saved);
		if (rc)
			rdo_warn("card %s: cannot pin its DMA thread to NUMA node %d (%s): it runs "
				 "unpinned; check numa_node in the config",
				 u->card->name, node, strerror(-rc));
		else
			u->numa_node = node;
	}
	struct rdo_dma_opts dopts = conf->dma;
	u->dma = rdo_dma_create(u->card, u->map, &dopts, u->events);
	if (u->numa_node >= 0) {
		rdo_numa_leave(&saved);
		rdo_info("card %s: DMA thread and pool on NUMA node %d", u->card->name, node);
	}
	if (!u->dma)
		return -1;
	const char *name = u->card->name;
	struct rdo_pool *pool = rdo_dma_pool(u->dma);
	const struct rdo_zsock_policy *policy = rdo_auth_policy(dm->auth);
	if (conf->live.enabled &&
	    !(u->sinks[u->nsinks++] = rdo_live_create(dm->zctx, policy, name, pool, &conf->live)))
		return -1;
	if (conf->lossless.enabled && !(u->sinks[u->nsinks++] = rdo_lossless_create(
					    dm->zctx, policy, name, pool, &conf->lossless)))
		return -1;
	if (conf->writer.enabled) {
		struct rdo_file_header ident;
		writer_ident(&ident, u->card, u->map, conf, u->sha);
		if (!(u->sinks[u->nsinks++] = rdo_disk_create(pool, &conf->writer, &ident)))
			return -1;
	}
	for (unsigned i = 0; i < u->nsinks; i++)
		rdo_dma_add_sink(u->dma, u->sinks[i]);
	return 0;
}

/* The sinks, before the ZeroMQ context ends. */
static void unit_close_sinks(struct unit *u)
{
	for (unsigned i = 0; i < u->nsinks; i++)
		rdo_sink_destroy(&u->sinks[i]);
	u->nsinks = 0;
}

/* The rest, after the context has released every superpage in flight. */
static void unit_close(struct unit *u)
{
	rdo_dma_destroy(&u->dma);
	rdo_events_destroy(&u->events);
	rdo_card_close(&u->card);
	rdo_regmap_destroy(&u->map);
}

/*
 * Stop acquisition, whatever ended the serving: what the card flushes is
 * delivered to the sinks, and the channel is idle (or halted) before the
 * sinks it feeds are destroyed. Then say what the run did.
 */
static void unit_stop(struct unit *u)
{
	struct rdo_dma_stats st;
	char err[256];
	rdo_dma_stats(u->dma, &st);
	if (st.state == RDO_DMA_RUNNING && rdo_dma_stop(u->dma, err, sizeof(err)))
		rdo_err("card %s: stopping acquisition: %s", u->card->name, err);
	rdo_dma_stats(u->dma, &st);
	if (st.state != RDO_DMA_IDLE && st.state != RDO_DMA_ERROR &&
	    rdo_dma_reset(u->dma, err, sizeof(err)))
		rdo_err("card %s: resetting the DMA channel: %s", u->card->name, err);
	rdo_info("card %s: stopped: %llu superpages (%llu bytes) read out, %llu pages dropped at "
		 "the card",
		 u->card->name, (unsigned long long)st.superpages, (unsigned long long)st.bytes,
		 (unsigned long long)st.pages_dropped);
}

static int metrics_fill(void *arg, unsigned i, struct rdo_status_msg *m)
{
	struct daemon *dm = arg;
	if (i >= dm->n)
		return -ENOENT;
	rdo_status_fill(dm->status, i, m);
	return 0;
}

static void metrics_daemon(void *arg, struct rdo_metrics_daemon *d)
{
	struct daemon *dm = arg;
	rdo_control_counters(dm->ctl, &d->requests_served, &d->requests_refused);
	uint64_t accepted;
	rdo_auth_counters(dm->auth, &accepted, &d->connections_refused);
	d->reloads = atomic_load_explicit(&dm->reloads, memory_order_relaxed); /* a counter */
	d->start_time_s = dm->start_time_s;
}

/* "2 cards: sim0 running 98.2 MB/s, sim1 idle": for systemd's STATUS=. */
static const char *summary(struct daemon *dm, char *buf, size_t cap)
{
	size_t len = (size_t)snprintf(buf, cap, "%u card%s:", dm->n, dm->n == 1 ? "" : "s");
	struct rdo_status_msg *m = malloc(sizeof(*m));
	for (unsigned i = 0; m && i < dm->n && len < cap; i++) {
		rdo_status_fill(dm->status, i, m);
		len += (size_t)snprintf(buf + len, cap - len, "%s %s %s", i ? "," : "",
					dm->unit[i].card->name, rdo_dma_state_name(m->dma.state));
		if (len < cap && m->dma.state == RDO_DMA_RUNNING)
			len += (size_t)snprintf(buf + len, cap - len, " %.1f MB/s",
						m->st.rate_bytes / 1e6);
	}
	free(m);
	return buf;
}

/*
 * The watchdog's health check: every channel that is acquiring (running or
 * stopping) must have turned its loop since the last check. A channel thread
 * stuck in a card access or a deadlock stops the pings, and systemd restarts
 * the service. Data need not flow: a card may have no beam.
 */
static bool healthy(struct daemon *dm)
{
	bool ok = true;
	for (unsigned i = 0; i < dm->n; i++) {
		struct unit *u = &dm->unit[i];
		struct rdo_dma_stats st;
		rdo_dma_stats(u->dma, &st);
		bool acquiring = st.state == RDO_DMA_RUNNING || st.state == RDO_DMA_STOPPING;
		if (acquiring && st.heartbeat == u->heartbeat) {
			rdo_err("card %s: the DMA channel thread has not turned since the last "
				"health check while %s: withholding the watchdog ping",
				u->card->name, rdo_dma_state_name(st.state));
			ok = false;
		}
		u->heartbeat = st.heartbeat;
	}
	return ok;
}

/*
 * SIGHUP: reload each card's register map and the authorised keys; acquisition
 * goes on. A map that fails to load or does not fit its card is refused and
 * the old one kept. The DMA channel keeps the registers it resolved at start.
 */
static void reload(struct daemon *dm)
{
	rdo_service_reloading();
	unsigned maps = 0;
	for (unsigned i = 0; i < dm->n; i++) {
		struct unit *u = &dm->unit[i];
		uint8_t sha[crypto_hash_sha256_BYTES];
		struct rdo_regmap *map = load_map(u->conf, sha);
		if (!map || check_map(u, map, u->conf->force)) {
			rdo_err("card %s: SIGHUP: keeping register map %s as it was", u->card->name,
				rdo_regmap_name(u->map));
			rdo_regmap_destroy(&map);
			continue;
		}
		memcpy(u->sha, sha, sizeof(sha));
		struct rdo_regmap *old = rdo_control_swap_map(dm->ctl, i, map, u->sha);
		rdo_regmap_destroy(&old);
		u->map = map;
		maps++;
		rdo_notice("card %s: SIGHUP: register map %s reloaded from %s (%zu registers); the "
			   "DMA channel keeps the registers it resolved at start",
			   u->card->name, rdo_regmap_name(map), u->conf->regmap_file,
			   rdo_regmap_count(map));
	}
	int rc = rdo_auth_reload(dm->auth);
	atomic_fetch_add_explicit(&dm->reloads, 1, memory_order_relaxed); /* a counter */
	char st[256], line[320];
	snprintf(line, sizeof(line), "reloaded %u of %u register maps%s; %s", maps, dm->n,
		 rc ? ", authorised keys kept (see log)" : " and the authorised keys",
		 summary(dm, st, sizeof(st)));
	rdo_service_reloaded(line);
}

/*
 * SIGINT, SIGTERM and SIGHUP arrive through a signalfd. They are blocked
 * before any thread starts, so that every thread inherits the mask and none
 * is killed by them; and their disposition is reset, because a signal ignored
 * by whoever started us (a shell's background job) would never reach the
 * signalfd.
 */
static int watch_signals(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	sigset_t set;
	sigemptyset(&set);
	for (size_t i = 0; i < RDO_ARRAY_SIZE(sigs); i++) {
		signal(sigs[i], SIG_DFL);
		sigaddset(&set, sigs[i]);
	}
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/*
 * Serve control requests and authentication handshakes until SIGINT or
 * SIGTERM; reload at SIGHUP; tell systemd the status and, while healthy,
 * ping its watchdog at half its interval.
 */
static int serve(struct daemon *dm, int sig_fd)
{
	uint64_t wd_us = rdo_service_watchdog_usec();
	uint64_t tick_ms = wd_us ? wd_us / 2000 : 5000;
	if (tick_ms == 0)
		tick_ms = 1;
	if (tick_ms > 5000)
		tick_ms = 5000;
	zmq_pollitem_t items[] = {
	    {.socket = rdo_control_socket(dm->ctl), .events = ZMQ_POLLIN},
	    {.socket = rdo_auth_socket(dm->auth), .events = ZMQ_POLLIN},
	    {.fd = sig_fd, .events = ZMQ_POLLIN},
	    {.socket = rdo_control_monitor(dm->ctl), .events = ZMQ_POLLIN},
	};
	int nitems = items[3].socket ? 4 : 3;
	uint64_t next_tick = rdo_now_ns() + tick_ms * 1000000u;
	char st[256];
	for (;;) {
		uint64_t now = rdo_now_ns();
		long wait = now >= next_tick ? 0 : (long)((next_tick - now) / 1000000u);
		if (zmq_poll(items, nitems, wait) < 0) {
			if (errno == EINTR)
				continue;
			rdo_err("control: poll failed: %s", zmq_strerror(errno));
			return -errno;
		}
		/* Handshakes first: a client's first request may wait on its handshake. */
		if (items[1].revents & ZMQ_POLLIN)
			rdo_auth_serve(dm->auth);
		/* Answer what has arrived before stopping: a request never goes unanswered. */
		if ((items[0].revents | items[3].revents) & ZMQ_POLLIN)
			rdo_control_serve(dm->ctl);
		if (items[2].revents & ZMQ_POLLIN) {
			struct signalfd_siginfo si;
			while (read(sig_fd, &si, sizeof(si)) == sizeof(si)) {
				if (si.ssi_signo != SIGHUP) {
					rdo_notice("%s: stopping", strsignal((int)si.ssi_signo));
					return 0;
				}
				rdo_notice("SIGHUP: reloading register maps and authorised keys");
				reload(dm);
			}
		}
		now = rdo_now_ns();
		if (now >= next_tick) {
			next_tick = now + tick_ms * 1000000u;
			if (wd_us && healthy(dm))
				rdo_service_watchdog();
			rdo_service_status("%s", summary(dm, st, sizeof(st)));
		}
	}
}

/* The one-line endpoint list of a card's sink named `name`, or "(off)". */
static const char *sink_endpoints(const struct unit *u, const char *name, char *buf, size_t cap)
{
	rdo_strlcpy(buf, "(off)", cap);
	for (unsigned i = 0; i < u->nsinks; i++) {
		struct rdo_sink_stats ss;
		u->sinks[i]->ops->stats(u->sinks[i], &ss);
		if (ss.endpoints && strcmp(ss.name, name) == 0)
			rdo_endpoints_join(ss.endpoints, buf, cap);
	}
	return buf;
}

/*
 * "ready: ..." with every bound endpoint: one line per card, then the
 * daemon's. With one card, one line says it all (the test harness and
 * scripts read it).
 */
static void log_ready(struct daemon *dm, const struct rdo_endpoints *control)
{
	char ctl[RDO_MAX_ENDPOINTS * RDO_ENDPOINT_MAX], status[sizeof(ctl)];
	char live[sizeof(ctl)], lossless[sizeof(ctl)];
	rdo_endpoints_join(control, ctl, sizeof(ctl));
	rdo_endpoints_join(rdo_status_endpoints(dm->status), status, sizeof(status));
	const char *metrics = dm->metrics ? rdo_metrics_url(dm->metrics) : "(off)";
	for (unsigned i = 0; i < dm->n; i++) {
		const struct unit *u = &dm->unit[i];
		char who[RDO_CARD_NAME_MAX + 16];
		snprintf(who, sizeof(who),
			 dm->n == 1 ? "ready: card %s," : "card %s ready:", u->card->name);
		rdo_info("%s map %s (%zu registers), control on %s, live on %s, lossless on %s, "
			 "status on %s, writer %s, metrics on %s",
			 who, rdo_regmap_name(u->map), rdo_regmap_count(u->map), ctl,
			 sink_endpoints(u, "live", live, sizeof(live)),
			 sink_endpoints(u, "lossless", lossless, sizeof(lossless)), status,
			 u->conf->writer.enabled ? u->conf->writer.directory : "(off)", metrics);
	}
	if (dm->n > 1) {
		char names[RDO_MAX_CARDS * (RDO_CARD_NAME_MAX + 2)] = "";
		for (unsigned i = 0; i < dm->n; i++)
			snprintf(names + strlen(names), sizeof(names) - strlen(names), "%s%s",
				 i ? " " : "", dm->unit[i].card->name);
		rdo_info("ready: %u cards (%s), control on %s, status on %s, metrics on %s", dm->n,
			 names, ctl, status, metrics);
	}
}

/* --check-config: everything start-up reads, read and checked; nothing opened. */
static int check_config(const char *file)
{
	struct rdo_server_opts *o = malloc(sizeof(*o));
	char err[512];
	if (!o)
		return 1;
	rdo_server_opts_init(o);
	int rc = rdo_config_load(file, o, err, sizeof(err));
	if (rc)
		fprintf(stderr, "readoutd: %s\n", err);
	for (unsigned i = 0; rc == 0 && i < o->ncards; i++) {
		struct rdo_regmap *map = rdo_regmap_load(o->cards[i].regmap_file, err, sizeof(err));
		if (!map) {
			fprintf(stderr, "readoutd: card %s: %s\n", o->cards[i].card.name, err);
			rc = -EINVAL;
		}
		rdo_regmap_destroy(&map);
	}
	if (rc == 0) {
		void *zctx = zmq_ctx_new();
		struct rdo_auth *auth = zctx ? rdo_auth_create(zctx, &o->security) : NULL;
		if (!auth)
			rc = -EINVAL;
		rdo_auth_destroy(&auth);
		if (zctx)
			zmq_ctx_term(zctx);
	}
	if (rc == 0)
		rdo_config_print(stdout, o);
	free(o);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"bind", required_argument, NULL, 'b'},
	    {"force", no_argument, NULL, 'f'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"check-config", required_argument, NULL, 'C'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = RDO_DEFAULT_CONFIG, *level = NULL, *check = NULL;
	const char *binds[RDO_MAX_ENDPOINTS];
	size_t nbinds = 0;
	bool force = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "c:b:fl:C:hV", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'b':
			if (nbinds == RDO_MAX_ENDPOINTS) {
				fprintf(stderr, "readoutd: at most %d --bind endpoints\n",
					RDO_MAX_ENDPOINTS);
				return 2;
			}
			binds[nbinds++] = optarg;
			break;
		case 'f':
			force = true;
			break;
		case 'l':
			level = optarg;
			break;
		case 'C':
			check = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("readoutd %s (protocol %d)\n", RDO_VERSION, RDO_PROTOCOL_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "readoutd: unexpected argument \"%s\"\n", argv[optind]);
		usage(stderr);
		return 2;
	}
	if (level && rdo_log_level_parse(level) < 0) {
		fprintf(stderr,
			"readoutd: --log-level: expected err, warning, notice, info or "
			"debug, got \"%s\"\n",
			level);
		return 2;
	}
	if (sodium_init() < 0) {
		fprintf(stderr, "readoutd: libsodium failed to initialise\n");
		return 1;
	}
	if (check) {
		rdo_log_set_level(LOG_WARNING); /* stdout is the config; stderr what is wrong */
		return check_config(check);
	}

	struct daemon *dm = calloc(1, sizeof(*dm));
	if (!dm) {
		rdo_err("out of memory");
		return 1;
	}
	struct rdo_server_opts *o = &dm->o;
	char err[512];
	rdo_server_opts_init(o);
	if (rdo_config_load(config, o, err, sizeof(err))) {
		rdo_err("%s", err);
		free(dm);
		return 1;
	}
	rdo_log_set_level(level ? rdo_log_level_parse(level) : o->log_level);
	if (nbinds)
		o->control.n = 0;
	for (size_t i = 0; i < nbinds; i++)
		rdo_endpoints_add(&o->control, binds[i]);
	for (unsigned i = 0; i < o->ncards; i++)
		o->cards[i].force |= force;
	dm->start_time_s = (uint64_t)time(NULL);

	int rc = 1;
	int sig_fd = watch_signals();
	if (sig_fd < 0) {
		rdo_err("cannot watch SIGINT, SIGTERM and SIGHUP: %s", strerror(errno));
		free(dm);
		return 1;
	}
	/* Security before any socket: every surface binds through its policy. */
	if (!(dm->zctx = zmq_ctx_new())) {
		rdo_err("cannot create a ZeroMQ context: %s", zmq_strerror(errno));
		goto out_signals;
	}
	if (!(dm->auth = rdo_auth_create(dm->zctx, &o->security)))
		goto out_units;
	for (; dm->n < o->ncards; dm->n++)
		if (unit_open(dm, &dm->unit[dm->n], &o->cards[dm->n])) {
			dm->n++;
			goto out_units;
		}
	struct rdo_status_sources src[RDO_MAX_CARDS];
	struct rdo_control_card cards[RDO_MAX_CARDS];
	for (unsigned i = 0; i < dm->n; i++) {
		struct unit *u = &dm->unit[i];
		src[i] = (struct rdo_status_sources){.card = u->card,
						     .map = u->map,
						     .dma = u->dma,
						     .sinks = u->sinks,
						     .nsinks = u->nsinks,
						     .events = u->events};
		cards[i] = (struct rdo_control_card){
		    .card = u->card,
		    .map = u->map,
		    .backend = u->conf->card.backend,
		    .forced = u->conf->force,
		    .map_sha256 = u->sha,
		    .dma = u->dma,
		    .numa_node = u->numa_node >= 0 ? u->numa_node : u->card->numa_node};
	}
	if (!(dm->status =
		  rdo_status_create(dm->zctx, rdo_auth_policy(dm->auth), src, dm->n, &o->status)))
		goto out_units;
	if (!(dm->ctl = rdo_control_create(dm->zctx, cards, dm->n, dm->status, dm->auth)))
		goto out_status;
	struct rdo_endpoints bound;
	if (rdo_control_bind(dm->ctl, &o->control, &bound))
		goto out_control;
	if (o->metrics.enabled &&
	    !(dm->metrics = rdo_metrics_create(&o->metrics, metrics_fill, metrics_daemon, dm)))
		goto out_control;
	log_ready(dm, &bound);
	for (unsigned i = 0; i < dm->n; i++) {
		if (!dm->unit[i].conf->dma.autostart)
			continue;
		if (rdo_dma_start(dm->unit[i].dma, 0, err, sizeof(err)))
			rdo_err("card %s: cannot start acquisition: %s", dm->unit[i].card->name,
				err);
	}
	char st[256];
	rdo_service_ready(summary(dm, st, sizeof(st)));
	rc = serve(dm, sig_fd) == 0 ? 0 : 1;
	rdo_service_stopping("stopping: draining the DMA channels, flushing the writers");
	for (unsigned i = 0; i < dm->n; i++)
		unit_stop(&dm->unit[i]);
	uint64_t served, refused;
	rdo_control_counters(dm->ctl, &served, &refused);
	rdo_info("stopping: %llu requests served, %llu refused", (unsigned long long)served,
		 (unsigned long long)refused);
	rdo_metrics_destroy(&dm->metrics);
out_control:
	rdo_control_destroy(&dm->ctl);
out_status:
	rdo_status_destroy(&dm->status);
out_units:
	for (unsigned i = 0; i < dm->n; i++)
		unit_close_sinks(&dm->unit[i]);
	rdo_auth_destroy(&dm->auth);
	if (dm->zctx)
		zmq_ctx_term(dm->zctx);
	for (unsigned i = dm->n; i-- > 0;)
		unit_close(&dm->unit[i]);
out_signals:
	close(sig_fd);
	free(dm);
	return rc;
}
