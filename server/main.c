/*
 * readoutd: open the card, check it is the card the register map describes,
 * take it for this process, set up its DMA channel, sinks and status stream,
 * start acquisition, and serve control requests until SIGINT or SIGTERM;
 * then stop acquisition, deliver what the card flushed, and tear down in
 * reverse order.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>
#include <zmq.h>

#include "card.h"
#include "config.h"
#include "control.h"
#include "disk.h"
#include "dma.h"
#include "events.h"
#include "live.h"
#include "lossless.h"
#include "log.h"
#include "regmap.h"
#include "sink.h"
#include "status.h"
#include "util.h"
#include "zsock.h"

static void usage(FILE *f)
{
	fprintf(f,
		"usage: readoutd [-c FILE] [--bind ENDPOINT]... [--force] [--log-level LEVEL]\n"
		"\n"
		"Read out a card: its registers, DMA data and status over ZeroMQ.\n"
		"\n"
		"  -c, --config FILE      server config (default %s)\n"
		"  -b, --bind ENDPOINT    control endpoint, instead of the config's; repeatable\n"
		"                         (tcp://127.0.0.1:PORT, tcp://127.0.0.1:* for any port,\n"
		"                         ipc:///path)\n"
		"  -f, --force            start even if the card's identity or firmware does not\n"
		"                         match the register map\n"
		"  -l, --log-level LEVEL  err, warning, notice, info (default) or debug\n"
		"  -h, --help             this text\n"
		"  -V, --version          print the version\n"
		"\n"
		"Logs go to stderr with syslog priority prefixes. Once serving, readoutd logs\n"
		"\"ready: ...\" with every bound endpoint. SIGINT and SIGTERM stop it.\n",
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
	uint64_t want, min, max, got = 0;
	const struct rdo_reg *r = rdo_regmap_identity(map, &want);
	const char *verdict = force ? "continuing because of --force" : "refusing to start";
	int level = force ? LOG_WARNING : LOG_ERR;
	if (r) {
		rdo_card_read(card, r->bar, r->offset, r->width, &got);
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
		rdo_card_read(card, r->bar, r->offset, r->width, &got);
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

static uint64_t reg_value(struct rdo_card *card, const struct rdo_reg *r)
{
	uint64_t v = 0;
	if (r)
		rdo_card_read(card, r->bar, r->offset, r->width, &v);
	return v;
}

/* What every file the writer opens says of where its data came from. */
static void writer_ident(struct rdo_file_header *h, struct rdo_card *card,
			 const struct rdo_regmap *map, const struct rdo_server_opts *o,
			 const uint8_t *sha)
{
	uint64_t a, b;
	memset(h, 0, sizeof(*h));
	h->superpage_size = (uint32_t)o->dma.superpage_size;
	h->serial = reg_value(card, rdo_regmap_serial(map));
	h->identity = (uint32_t)reg_value(card, rdo_regmap_identity(map, &a));
	h->firmware = (uint32_t)reg_value(card, rdo_regmap_firmware(map, &a, &b));
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

/*
 * SIGINT and SIGTERM arrive through a signalfd. They are blocked before any
 * thread starts, so that every thread inherits the mask and none is killed by
 * them; and their disposition is reset, because a signal ignored by whoever
 * started us (a shell's background job) would never reach the signalfd.
 */
static int stop_signals(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0)
		return -1;
	return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

/*
 * Stop acquisition, whatever ended the serving: what the card flushes is
 * delivered to the sinks, and the channel is idle (or halted) before the
 * sinks it feeds are destroyed. Then say what the run did.
 */
static void stop_acquisition(struct rdo_dma *dma, struct rdo_control *ctl, const char *card)
{
	struct rdo_dma_stats st;
	char err[256];
	rdo_dma_stats(dma, &st);
	if (st.state == RDO_DMA_RUNNING && rdo_dma_stop(dma, err, sizeof(err)))
		rdo_err("card %s: stopping acquisition: %s", card, err);
	rdo_dma_stats(dma, &st);
	if (st.state != RDO_DMA_IDLE && st.state != RDO_DMA_ERROR &&
	    rdo_dma_reset(dma, err, sizeof(err)))
		rdo_err("card %s: resetting the DMA channel: %s", card, err);
	uint64_t served, refused;
	rdo_control_counters(ctl, &served, &refused);
	rdo_info("stopping: %llu requests served, %llu refused; %llu superpages (%llu bytes) read "
		 "out, %llu pages dropped at the card",
		 (unsigned long long)served, (unsigned long long)refused,
		 (unsigned long long)st.superpages, (unsigned long long)st.bytes,
		 (unsigned long long)st.pages_dropped);
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"config", required_argument, NULL, 'c'},
	    {"bind", required_argument, NULL, 'b'},
	    {"force", no_argument, NULL, 'f'},
	    {"log-level", required_argument, NULL, 'l'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	const char *config = RDO_DEFAULT_CONFIG, *level = NULL;
	const char *binds[RDO_MAX_ENDPOINTS];
	size_t nbinds = 0;
	bool force = false;
	int opt;
	while ((opt = getopt_long(argc, argv, "c:b:fl:hV", longopts, NULL)) != -1) {
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

	struct rdo_server_opts o;
	char err[512];
	rdo_server_opts_init(&o);
	if (rdo_config_load(config, &o, err, sizeof(err))) {
		rdo_err("%s", err);
		return 1;
	}
	if (level && (o.log_level = rdo_log_level_parse(level)) < 0) {
		fprintf(stderr,
			"readoutd: --log-level: expected err, warning, notice, info or "
			"debug, got \"%s\"\n",
			level);
		return 2;
	}
	rdo_log_set_level(o.log_level);
	if (nbinds)
		o.control.n = 0;
	for (size_t i = 0; i < nbinds; i++)
		rdo_endpoints_add(&o.control, binds[i]);
	o.force |= force;

	int rc = 1;
	struct rdo_regmap *map = rdo_config_load_regmap(o.regmap_file, err, sizeof(err));
	if (!map) {
		rdo_err("%s", err);
		return 1;
	}
	uint8_t sha[crypto_hash_sha256_BYTES];
	int shrc = sodium_init() < 0 ? -ENOSYS : map_sha256(o.regmap_file, sha);
	if (shrc) {
		rdo_err("register map %s: cannot compute its SHA-256: %s", o.regmap_file,
			strerror(-shrc));
		goto out_map;
	}
	int stop_fd = stop_signals();
	if (stop_fd < 0) {
		rdo_err("cannot watch SIGINT/SIGTERM: %s", strerror(errno));
		goto out_map;
	}
	/* A real card's links are its firmware's: the map says; the emulator's are an option. */
	if (strcmp(o.card.backend, "sim") != 0)
		o.card.links = rdo_regmap_dma(map)->links;
	struct rdo_card *card = rdo_card_open(&o.card);
	if (!card)
		goto out_signals;
	if (rdo_regmap_bind_bars(map, card->nbars, card->bar_size, err, sizeof(err))) {
		rdo_err("register map %s does not fit card %s: %s", o.regmap_file, card->name, err);
		goto out_card;
	}
	if (check_identity(card, map, o.force))
		goto out_card;

	if (rdo_card_lock(card))
		goto out_card;
	struct rdo_events *events = rdo_events_create();
	if (!events)
		goto out_card;
	struct rdo_dma *dma = rdo_dma_create(card, map, &o.dma, events);
	if (!dma)
		goto out_events;
	void *zctx = zmq_ctx_new();
	if (!zctx) {
		rdo_err("cannot create a ZeroMQ context: %s", zmq_strerror(errno));
		goto out_dma;
	}
	struct rdo_sink *sinks[RDO_DMA_MAX_SINKS] = {NULL};
	unsigned nsinks = 0;
	if (o.live.enabled &&
	    !(sinks[nsinks++] = rdo_live_create(zctx, card->name, rdo_dma_pool(dma), &o.live)))
		goto out_sinks;
	if (o.lossless.enabled && !(sinks[nsinks++] = rdo_lossless_create(
					zctx, card->name, rdo_dma_pool(dma), &o.lossless)))
		goto out_sinks;
	if (o.writer.enabled) {
		struct rdo_file_header ident;
		writer_ident(&ident, card, map, &o, sha);
		if (!(sinks[nsinks++] = rdo_disk_create(rdo_dma_pool(dma), &o.writer, &ident)))
			goto out_sinks;
	}
	for (unsigned i = 0; i < nsinks; i++)
		rdo_dma_add_sink(dma, sinks[i]);
	struct rdo_status_sources src = {
	    .card = card,
	    .map = map,
	    .dma = dma,
	    .sinks = sinks,
	    .nsinks = nsinks,
	    .events = events,
	};
	struct rdo_status *status = rdo_status_create(zctx, &src, &o.status);
	if (!status)
		goto out_sinks;
	struct rdo_control_info info = {
	    .backend = o.card.backend,
	    .forced = o.force,
	    .map_sha256 = sha,
	    .dma = dma,
	    .status = status,
	};
	struct rdo_control *ctl = rdo_control_create(zctx, card, map, &info);
	if (!ctl)
		goto out_status;
	struct rdo_endpoints bound;
	if (rdo_control_bind(ctl, &o.control, &bound))
		goto out_control;
	char eps[4][RDO_MAX_ENDPOINTS * RDO_ENDPOINT_MAX];
	rdo_endpoints_join(&bound, eps[0], sizeof(eps[0]));
	rdo_endpoints_join(rdo_status_endpoints(status), eps[3], sizeof(eps[3]));
	eps[1][0] = eps[2][0] = '\0';
	for (unsigned i = 0; i < nsinks; i++) {
		struct rdo_sink_stats ss;
		sinks[i]->ops->stats(sinks[i], &ss);
		if (ss.endpoints)
			rdo_endpoints_join(ss.endpoints, eps[strcmp(ss.name, "live") ? 2 : 1],
					   sizeof(eps[1]));
	}
	rdo_info("ready: card %s, map %s (%zu registers), control on %s, live on %s, lossless on "
		 "%s, status on %s, writer %s",
		 card->name, rdo_regmap_name(map), rdo_regmap_count(map), eps[0],
		 eps[1][0] ? eps[1] : "(off)", eps[2][0] ? eps[2] : "(off)", eps[3],
		 o.writer.enabled ? o.writer.directory : "(off)");
	if (o.dma.autostart) {
		char err[256];
		if (rdo_dma_start(dma, 0, err, sizeof(err)))
			rdo_err("card %s: cannot start acquisition: %s", card->name, err);
	}
	rc = rdo_control_run(ctl, stop_fd) == 0 ? 0 : 1;
	stop_acquisition(dma, ctl, card->name);
out_control:
	rdo_control_destroy(&ctl);
out_status:
	rdo_status_destroy(&status);
out_sinks:
	for (unsigned i = 0; i < nsinks; i++)
		rdo_sink_destroy(&sinks[i]);
	zmq_ctx_term(zctx);
out_dma:
	rdo_dma_destroy(&dma);
out_events:
	rdo_events_destroy(&events);
out_card:
	rdo_card_close(&card);
out_signals:
	close(stop_fd);
out_map:
	rdo_regmap_destroy(&map);
	return rc;
}
