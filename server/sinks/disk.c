#include "sinks/disk.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/pool.h"
#include "core/sink.h"

struct disk {
	struct rdo_sink base;
	struct rdo_sink_thread t;
	struct rdo_writer *w; /* the sink thread's, after create; its stats from any thread */
};

static struct disk *to_disk(struct rdo_sink *s)
{
	return container_of(s, struct disk, base);
}

/* Take every superpage: the queue holds the whole pool. */
static bool disk_offer(struct rdo_sink *s, struct rdo_superpage *sp)
{
	return rdo_sink_thread_offer(&to_disk(s)->t, sp);
}

static void disk_run_end(struct rdo_sink *s, uint64_t run)
{
	(void)run; /* the records carry it */
	if (!rdo_sink_thread_run_end(&to_disk(s)->t))
		rdo_warn("writer: its queue is full; the file of this run stays open until the "
			 "next run or a rotation");
}

/*
 * From the writer, on the sink thread: a record is on disk, or lost. What
 * reached the disk the writer counts itself (disk_stats).
 */
static void written(void *cookie, int status, void *arg)
{
	struct disk *k = arg;
	if (status)
		rdo_sink_thread_count_dropped(&k->t, 1);
	rdo_pool_put(k->t.pool, cookie);
}

/*
 * Hand `sp` to the writer: true when taken (or lost, and counted), false
 * when the writer refuses it for now (disk full or failing): then it is held,
 * the pool fills and the card drops.
 */
static bool put(struct rdo_sink_thread *t, struct rdo_superpage *sp)
{
	struct disk *k = container_of(t, struct disk, t);
	struct rdo_writer_record r = {
	    .data = sp->data,
	    .h = {.link = sp->link,
		  .flags = sp->flags,
		  .size = sp->size,
		  .sequence = sp->sequence,
		  .timestamp_ns = sp->timestamp_ns,
		  .run = sp->run,
		  .card_pages_dropped = sp->card_pages_dropped},
	    .cookie = sp,
	};
	int rc;
	while ((rc = rdo_writer_put(k->w, &r)) == -EAGAIN)
		rdo_writer_reap(k->w, 100);
	if (rc == -EINVAL) { /* cannot happen with the pool the writer was made for */
		rdo_err("writer: superpage %u does not fit the writer: dropped", sp->index);
		written(sp, rc, k);
		return true;
	}
	return rc == 0;
}

static void end_file(struct rdo_sink_thread *t)
{
	rdo_writer_end_file(container_of(t, struct disk, t)->w);
}

/* Submit what was gathered, collect what completed: before the thread sleeps. */
static void flush(struct rdo_sink_thread *t)
{
	struct disk *k = container_of(t, struct disk, t);
	rdo_writer_flush(k->w);
	rdo_writer_reap(k->w, 0);
}

static void disk_stats(struct rdo_sink *s, struct rdo_sink_stats *st)
{
	struct disk *k = to_disk(s);
	*st = (struct rdo_sink_stats){.name = "writer", .kind = RDO_SINK_WRITER};
	rdo_sink_thread_stats(&k->t, st);
	rdo_writer_stats(k->w, &st->writer);
	st->superpages = st->writer.records; /* delivered: on disk */
	st->bytes = st->writer.bytes;
	st->queued += st->writer.in_flight;
	st->consumers = st->writer.state == RDO_WRITER_WRITING;
}

/* Write what is held, if the disk takes it, then close the file; what is left is dropped. */
static void disk_destroy(struct rdo_sink *s)
{
	struct disk *k = to_disk(s);
	rdo_sink_thread_stop(&k->t);
	rdo_sink_thread_drain(&k->t);
	rdo_writer_end_file(k->w);
	uint64_t lost = rdo_sink_thread_release_all(&k->t);
	if (lost)
		rdo_warn("writer: %llu superpages not written at shutdown (the disk refused them)",
			 (unsigned long long)lost);
	rdo_writer_destroy(&k->w);
	rdo_sink_thread_fini(&k->t);
	free(k);
}

static const struct rdo_sink_thread_ops disk_thread_ops = {
    .superpage = put,
    .run_end = end_file,
    .after_queue = flush,
};

static const struct rdo_sink_ops disk_ops = {
    .name = "writer",
    .offer = disk_offer,
    .run_end = disk_run_end,
    .stats = disk_stats,
    .destroy = disk_destroy,
};

struct rdo_sink *rdo_disk_create(struct rdo_pool *pool, const struct rdo_writer_opts *o,
				 const struct rdo_file_header *ident)
{
	struct disk *k = calloc(1, sizeof(*k));
	if (!k) {
		rdo_err("writer: out of memory");
		return NULL;
	}
	k->base.ops = &disk_ops;
	char err[512];
	k->w = rdo_writer_create(o, ident, written, k, err, sizeof(err));
	if (!k->w) {
		rdo_err("writer: %s", err);
		goto fail;
	}
	if (rdo_sink_thread_init(&k->t, "writer", &disk_thread_ops, pool,
				 rdo_pool_count(pool) + RDO_SQUEUE_MARKS))
		goto fail_writer;
	if (rdo_sink_thread_start(&k->t, "rdo-writer", NULL, rdo_writer_fd(k->w)))
		goto fail_queue;
	rdo_notice("writer: files go to %s as %s (%s, %zu-byte writes, %u in flight)", o->directory,
		   o->name, o->direct ? "O_DIRECT" : "buffered", o->block_size, o->depth);
	return &k->base;
fail_queue:
	rdo_sink_thread_fini(&k->t);
fail_writer:
	rdo_writer_destroy(&k->w);
fail:
	free(k);
	return NULL;
}
