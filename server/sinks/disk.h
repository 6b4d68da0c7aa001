/*
 * The disk sink: readoutd's own writer (writer.h) as a sink, taking every
 * superpage through the lossless path and writing it straight from the pool.
 *
 * While enabled it takes every superpage and holds it until it is on disk. A
 * disk that cannot keep up, or is full, fills the pool, and the card then
 * drops at the source, counted there: nothing is lost between the card and
 * the file. Records that a failed write lost are counted as the sink's drops.
 * A file ends at the end of each run (a stop or reset), at a new run number,
 * and when it reaches its size or age limit.
 *
 * Ownership: the sink holds a reference on a superpage from offer until its
 * record is on disk, or lost. Its stats carry the writer's own
 * (RDO_SINK_WRITER: state, files, errors, file, last_error).
 *
 * Thread-safety: a sink of core/sink.h (offer and run_end from the DMA
 * thread, stats from any thread); the writer is the sink thread's.
 */
#ifndef RDO_DISK_H
#define RDO_DISK_H

#include "common/writer.h"

struct rdo_sink;
struct rdo_pool;

/*
 * Check the writer's directory and start the sink's thread; `ident` fills the
 * file headers (writer.h). Logs why, with the fix, and returns NULL on
 * failure. Caller owns the result: destroy it with rdo_sink_destroy(), which
 * writes what it holds and closes the file cleanly, while `pool` lives.
 */
struct rdo_sink *rdo_disk_create(struct rdo_pool *pool, const struct rdo_writer_opts *o,
				 const struct rdo_file_header *ident);

#endif
