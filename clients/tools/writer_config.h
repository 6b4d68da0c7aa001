/*
 * readout-writer's config (config/readout-writer.yaml): which readoutd to
 * take the lossless stream from, the writer section readoutd's own writer
 * takes (but `enabled`: readout-writer always writes), the status interval
 * and the log level. Errors are "file:line:col: ..." as readoutd's config
 * gives them, from the same toolkit (common/yaml.h).
 *
 * Ownership: the options are plain values the caller owns.
 * Thread-safety: loads share nothing; any thread may load a config.
 */
#ifndef RDO_WRITER_CONFIG_H
#define RDO_WRITER_CONFIG_H

#include <limits.h>
#include <stddef.h>

#include "common/util.h"
#include "common/writer.h"

/* What readout-writer's config sets. Plain value. */
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

#endif
