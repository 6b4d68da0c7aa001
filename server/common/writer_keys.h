/*
 * The writer section of a config file (enabled, directory, name, block_size,
 * depth, prealloc, rotate_size, rotate_s, direct): one option table for
 * struct rdo_writer_opts, read by readoutd's config and readout-writer's
 * alike, so that both accept, refuse and print the same.
 *
 * Ownership and thread-safety: a constant table, shared by all.
 */
#ifndef RDO_WRITER_KEYS_H
#define RDO_WRITER_KEYS_H

#include "common/yaml.h"

/* Every key; the first is `enabled`, readoutd's switch for its writer sink. */
extern const struct rdo_yopt rdo_writer_keys[];

/* The keys but `enabled`, for a writer that always writes (readout-writer). */
#define RDO_WRITER_FILE_KEYS (rdo_writer_keys + 1)

#endif
