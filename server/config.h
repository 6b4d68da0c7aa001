/*
 * Configuration files: the server config (config/readoutd.yaml) and register
 * maps (config/regmaps/). The only module that includes libyaml. Every error
 * names the place and the expected form:
 *   readoutd.yaml:7:12: card.sim.links: expected an integer, got "twelve"
 * Unknown keys are errors too, so that a typo never silently means a default.
 */
#ifndef RDO_CONFIG_H
#define RDO_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "card.h"
#include "dma.h"
#include "live.h"
#include "lossless.h"
#include "status.h"
#include "writer.h"
#include "regmap.h"

#define RDO_DEFAULT_CONFIG	 "config/readoutd.yaml"
#define RDO_DEFAULT_CONTROL_TCP	 "tcp://127.0.0.1:5570"
#define RDO_DEFAULT_CONTROL_IPC	 "ipc:///tmp/readoutd.ctl"
#define RDO_DEFAULT_LIVE_TCP	 "tcp://127.0.0.1:5571"
#define RDO_DEFAULT_LIVE_IPC	 "ipc:///tmp/readoutd.live"
#define RDO_DEFAULT_LOSSLESS_TCP "tcp://127.0.0.1:5572"
#define RDO_DEFAULT_LOSSLESS_IPC "ipc:///tmp/readoutd.lossless"
#define RDO_DEFAULT_STATUS_TCP	 "tcp://127.0.0.1:5573"
#define RDO_DEFAULT_STATUS_IPC	 "ipc:///tmp/readoutd.status"

/* Everything the server config sets. Plain value. */
struct rdo_server_opts {
	char config_file[PATH_MAX];
	char regmap_file[PATH_MAX]; /* resolved against the config file's folder */
	struct rdo_card_opts card;
	bool force; /* start despite an identity or firmware mismatch */
	struct rdo_endpoints control;
	struct rdo_dma_opts dma;
	struct rdo_live_opts live;
	struct rdo_lossless_opts lossless;
	struct rdo_status_opts status;
	struct rdo_writer_opts writer;
	int log_level; /* LOG_* */
};

/*
 * Defaults: the emulated card, its map, and every socket (control, live,
 * lossless, status) on loopback tcp and ipc.
 */
void rdo_server_opts_init(struct rdo_server_opts *o);

/* Fill `o` from `file` over the defaults: 0, or -errno with "file:line:col: ..." in `err`. */
int rdo_config_load(const char *file, struct rdo_server_opts *o, char *err, size_t errlen);

/* What readout-writer's config sets (config/readout-writer.yaml). Plain value. */
struct rdo_remote_writer_opts {
	char config_file[PATH_MAX];
	char control[RDO_ENDPOINT_MAX];	 /* readoutd's control: the card's identity for headers */
	char lossless[RDO_ENDPOINT_MAX]; /* its lossless stream */
	char name[64];			 /* shown in readoutd's log; "": readout-writer@HOST */
	unsigned buffers;  /* superpages received and not yet on disk (the stream's credits) */
	unsigned status_s; /* a status line this often; 0: none */
	struct rdo_writer_opts writer;
	int log_level; /* LOG_* */
};

/* Defaults: readoutd on this host's loopback, files in the current directory. */
void rdo_remote_writer_opts_init(struct rdo_remote_writer_opts *o);

/* Fill `o` from `file` over the defaults: 0, or -errno with "file:line:col: ..." in `err`. */
int rdo_config_load_remote_writer(const char *file, struct rdo_remote_writer_opts *o, char *err,
				  size_t errlen);

/* Load a register map file. NULL with "file:line:col: ..." in `err`; caller owns the map. */
struct rdo_regmap *rdo_config_load_regmap(const char *file, char *err, size_t errlen);

#endif
