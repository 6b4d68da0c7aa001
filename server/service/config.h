/*
 * The server config (config/readoutd.yaml): its cards, each with its DMA
 * channel and sinks, and the daemon's sockets, security and metrics, read
 * over the defaults and checked whole. Every error names the place and the
 * expected form:
 *   readoutd.yaml:7:12: card.sim.links: expected an integer, got "twelve"
 * Unknown keys are errors too, so that a typo never silently means a default.
 *
 * Ownership: the options are plain values the caller owns.
 * Thread-safety: loads share nothing; any thread may load a config.
 */
#ifndef RDO_CONFIG_H
#define RDO_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "card/card.h"
#include "common/writer.h"
#include "dma/dma.h"
#include "net/auth.h"
#include "net/status.h"
#include "service/metrics.h"
#include "sinks/live.h"
#include "sinks/lossless.h"

#define RDO_DEFAULT_CONFIG	"config/readoutd.yaml"
#define RDO_DEFAULT_RUNTIME_DIR "/tmp" /* without systemd's $RUNTIME_DIRECTORY */
#define RDO_DEFAULT_STATE_DIR	"/tmp" /* {state} without systemd's $STATE_DIRECTORY */
#define RDO_MAX_CARDS		8

/*
 * One card and everything that reads it out: its DMA channel and sinks.
 * Plain value. The top-level dma, live, lossless and writer sections are the
 * defaults of every card; a card's own sections override them key by key.
 */
struct rdo_card_conf {
	struct rdo_card_opts card;
	char regmap_file[PATH_MAX]; /* resolved against the config file's folder */
	bool force;		    /* start despite an identity or firmware mismatch */
	int numa_node;		    /* pin the DMA thread here; -1: the card's own (auto) */
	struct rdo_dma_opts dma;
	struct rdo_live_opts live;
	struct rdo_lossless_opts lossless;
	struct rdo_writer_opts writer;
	unsigned line, column; /* of the card's entry in the config, for messages; 0: none */
};

/* Everything the server config sets. Plain value. */
struct rdo_server_opts {
	char config_file[PATH_MAX];
	unsigned ncards;
	struct rdo_card_conf cards[RDO_MAX_CARDS];
	struct rdo_endpoints control;
	struct rdo_status_opts status;
	struct rdo_auth_opts security;
	struct rdo_metrics_opts metrics;
	/* Where {runtime} in ipc endpoints points: $RUNTIME_DIRECTORY, else /tmp. */
	char runtime_dir[PATH_MAX];
	int log_level; /* LOG_* */
};

/*
 * Defaults: one emulated card with its map, every socket (control, live,
 * lossless, status) on loopback tcp and ipc, metrics on loopback.
 */
void rdo_server_opts_init(struct rdo_server_opts *o);

/*
 * Fill `o` from `file` over the defaults and check it whole: card names
 * unique, no endpoint bound twice, no two writers writing the same files.
 * {card} and {runtime} in endpoints, and {state} in writer.directory, are
 * expanded. 0, or -errno with
 * "file:line:col: ..." in `err`.
 */
int rdo_config_load(const char *file, struct rdo_server_opts *o, char *err, size_t errlen);

/* Print `o` as a config file that sets every key to its value, defaults filled in. */
void rdo_config_print(FILE *f, const struct rdo_server_opts *o);

#endif
