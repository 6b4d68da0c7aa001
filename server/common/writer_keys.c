#include "common/writer_keys.h"

#include "common/writer.h"

const struct rdo_yopt rdo_writer_keys[] = {
    RDO_YOPT(struct rdo_writer_opts, "enabled", enabled, RDO_YOPT_BOOL),
    RDO_YOPT(struct rdo_writer_opts, "directory", directory, RDO_YOPT_STRING),
    RDO_YOPT(struct rdo_writer_opts, "name", name, RDO_YOPT_STRING),
    RDO_YOPT(struct rdo_writer_opts, "block_size", block_size, RDO_YOPT_SIZE, .min = 4096,
	     .max = 1u << 30, .size = true),
    RDO_YOPT(struct rdo_writer_opts, "depth", depth, RDO_YOPT_UINT, .min = 1, .max = 64),
    RDO_YOPT(struct rdo_writer_opts, "prealloc", prealloc, RDO_YOPT_SIZE, .min = 4096,
	     .max = 1ull << 40, .size = true),
    RDO_YOPT(struct rdo_writer_opts, "rotate_size", rotate_bytes, RDO_YOPT_SIZE, .min = 1u << 20,
	     .max = 1ull << 50, .size = true),
    RDO_YOPT(struct rdo_writer_opts, "rotate_s", rotate_s, RDO_YOPT_UINT, .max = 31u * 86400),
    RDO_YOPT(struct rdo_writer_opts, "direct", direct, RDO_YOPT_BOOL),
    {NULL},
};
