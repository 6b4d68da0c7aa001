#include "sinks/disk.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/pool.h"
#include "core/sink.h"

struct disk {
	struct rdo_sink base;
	struct rdo_pool *pool;
	struct rdo_writer *w;
	struct rdo_squeue q;
	pthread_t thread;
	_Atomic bool quit;
	/* The sink thread's: */
	struct rdo_superpage *pending; /* popped, refused by the writer for now */
	/* For the DMA thread and the stats: */
	_Atomic uint64_t dropped;
};

static struct disk *to_disk(struct rdo_sink *s)
{
	return container_of(s, struct disk, base);
}

/* Take every superpage: the queue holds the whole pool. */
static bool disk_offer(struct rdo_sink *s, struct rdo_superpage *sp)
{
	struct disk *k = to_disk(s);
	rdo_pool_ref(sp);
	if (rdo_squeue_push(&k->q, sp->index))
		return true;
	rdo_pool_put(sp->pool, sp);
	atomic_fetch_add_explicit(&k->dropped, 1, memory_order_relaxed); /* a counter */
	return false;
}

static void disk_run_end(struct rdo_sink *s, uint64_t run)
{
	(void)run; /* the records carry it */
	struct disk *k = to_disk(s);
	if (!rdo_squeue_push(&k->q, RDO_SQUEUE_RUN_END))
		rdo_warn("writer: its queue is full; the file of this run stays open until the "
			 "next run or a rotation");
}

/* From the writer, on the sink thread: a record is on disk, or lost. */
static void written(void *cookie, int status, void *arg)
{
	struct disk *k = arg;
	if (status)
		atomic_fetch_add_explicit(&k->dropped, 1, memory_order_relaxed); /* a counter */
	rdo_pool_put(k->pool, cookie);
}

/* Hand `sp` to the writer: 0, or what rdo_writer_put() refused it with. */
static int put(struct disk *k, struct rdo_superpage *sp)
{
	struct rdo_writer_record r = {
	    .data = sp->data,
	    .size = sp->size,
	    .link = sp->link,
	    .flags = sp->flags,
	    .sequence = sp->sequence,
	    .timestamp_ns = sp->timestamp_ns,
	    .run = sp->run,
	    .card_pages_dropped = sp->card_pages_dropped,
	    .cookie = sp,
	};
	int rc;
	while ((rc = rdo_writer_put(k->w, &r)) == -EAGAIN)
		rdo_writer_reap(k->w, 100);
	if (rc == -EINVAL) { /* cannot happen with the pool the writer was made for */
		rdo_err("writer: superpage %u does not fit the writer: dropped", sp->index);
		written(sp, rc, k);
		return 0;
	}
	return rc;
}

/* Write what is queued, in order, until the queue is empty or the writer refuses. */
static void write_queued(struct disk *k)
{
	for (;;) {
		if (!k->pending) {
			uint32_t idx;
			if (!rdo_squeue_pop(&k->q, &idx))
				return;
			if (idx == RDO_SQUEUE_RUN_END) {
				rdo_writer_end_file(k->w);
				continue;
			}
			k->pending = rdo_pool_at(k->pool, idx);
		}
		if (put(k, k->pending))
			return; /* disk full or failing: hold it, the pool fills, the card drops */
		k->pending = NULL;
	}
}

static void *disk_thread(void *arg)
{
	struct disk *k = arg;
	struct pollfd fds[2] = {{rdo_writer_fd(k->w), POLLIN, 0},
				{rdo_squeue_fd(&k->q), POLLIN, 0}};
	/* acquire: nothing but the flag itself */
	while (!atomic_load_explicit(&k->quit, memory_order_acquire)) {
		write_queued(k);
		rdo_writer_flush(k->w);
		rdo_writer_reap(k->w, 0);
		if (k->pending) { /* refused: try again within the writer's retry time */
			poll(fds, 1, 100);
			continue;
		}
		if (!rdo_squeue_sleep(&k->q))
			continue;
		poll(fds, 2, 100);
		rdo_squeue_woken(&k->q);
	}
	return NULL;
}

static void disk_stats(struct rdo_sink *s, struct rdo_sink_stats *st)
{
	struct disk *k = to_disk(s);
	struct rdo_writer_stats ws;
	rdo_writer_stats(k->w, &ws);
	*st = (struct rdo_sink_stats){
	    .name = "writer",
	    .superpages = ws.records,
	    .bytes = ws.bytes,
	    .dropped = atomic_load_explicit(&k->dropped, memory_order_relaxed), /* a counter */
	    .queued = (uint32_t)rdo_squeue_count(&k->q) + ws.in_flight,
	    .consumers = ws.state == RDO_WRITER_WRITING,
	    .state = rdo_writer_state_name(ws.state),
	    .files = ws.files,
	    .errors = ws.errors,
	};
	rdo_strlcpy(st->file, ws.file, sizeof(st->file));
	rdo_strlcpy(st->last_error, ws.last_error, sizeof(st->last_error));
}

/* Write what is held, if the disk takes it, then close the file; what is left is dropped. */
static void disk_destroy(struct rdo_sink *s)
{
	struct disk *k = to_disk(s);
	atomic_store_explicit(&k->quit, true, memory_order_release); /* a flag */
	pthread_join(k->thread, NULL);
	write_queued(k);
	rdo_writer_end_file(k->w);
	uint64_t lost = rdo_squeue_release_all(&k->q, k->pool);
	if (k->pending) {
		rdo_pool_put(k->pool, k->pending);
		lost++;
	}
	if (lost) {
		atomic_fetch_add_explicit(&k->dropped, lost, memory_order_relaxed); /* a counter */
		rdo_warn("writer: %llu superpages not written at shutdown (the disk refused them)",
			 (unsigned long long)lost);
	}
	rdo_writer_destroy(&k->w);
	rdo_squeue_fini(&k->q);
	free(k);
}

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
	k->pool = pool;
	char err[512];
	k->w = rdo_writer_create(o, ident, written, k, err, sizeof(err));
	if (!k->w) {
		rdo_err("writer: %s", err);
		goto fail;
	}
	int rc = rdo_squeue_init(&k->q, rdo_pool_count(pool) + RDO_SQUEUE_MARKS);
	if (rc) {
		rdo_err("writer: cannot create its queue: %s", strerror(-rc));
		goto fail_writer;
	}
	rc = pthread_create(&k->thread, NULL, disk_thread, k);
	if (rc) {
		rdo_err("writer: cannot start its thread: %s", strerror(rc));
		goto fail_queue;
	}
	pthread_setname_np(k->thread, "rdo-writer");
	rdo_notice("writer: files go to %s as %s (%s, %zu-byte writes, %u in flight)", o->directory,
		   o->name, o->direct ? "O_DIRECT" : "buffered", o->block_size, o->depth);
	return &k->base;
fail_queue:
	rdo_squeue_fini(&k->q);
fail_writer:
	rdo_writer_destroy(&k->w);
fail:
	free(k);
	return NULL;
}
