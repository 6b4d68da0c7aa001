#include "dma/dma.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "card/regmap.h"
#include "common/log.h"
#include "common/util.h"
#include "core/events.h"
#include "core/pool.h"
#include "core/sink.h"
#include "dma/dma_proto.h"

#define STALL_NS	2000000000ull
#define HOUSEKEEPING_NS 100000000ull

void rdo_dma_opts_init(struct rdo_dma_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->superpage_size = 1u << 20;
	o->superpages = 256;
	o->link_mask = UINT32_MAX;
	o->page_size = 8192;
	o->irq_coalesce = 4;
	o->irq_holdoff_us = 1000;
	o->autostart = true;
}

const char *rdo_dma_state_name(enum rdo_dma_state s)
{
	static const char *const names[] = {
	    [RDO_DMA_IDLE] = "idle",
	    [RDO_DMA_RUNNING] = "running",
	    [RDO_DMA_STOPPING] = "stopping",
	    [RDO_DMA_ERROR] = "error",
	};
	return (unsigned)s < RDO_ARRAY_SIZE(names) ? names[s] : "unknown";
}

uint64_t dma_rd(struct rdo_dma *d, const struct dreg *r)
{
	uint64_t v = d->card->ops->read(d->card, r->bar, r->off, r->width);
	return (v & r->mask) >> r->lsb;
}

void dma_wr(struct rdo_dma *d, const struct dreg *r, uint64_t v)
{
	uint64_t reg = v << r->lsb;
	if (r->mask != rdo_mask(r->width))
		reg = (d->card->ops->read(d->card, r->bar, r->off, r->width) & ~r->mask) |
		      (reg & r->mask);
	d->card->ops->write(d->card, r->bar, r->off, r->width, reg & rdo_mask(r->width));
}

uint64_t dma_now_wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int set_state(struct rdo_dma *d, enum rdo_dma_state s)
{
	int old = atomic_exchange_explicit(&d->state, s, memory_order_relaxed); /* a status value */
	if (old != (int)s)
		rdo_event(d->events, RDO_SEV_INFO, "state", s, "card %s: acquisition %s",
			  d->card->name, rdo_dma_state_name(s));
	return old;
}

void dma_note_error(struct rdo_dma *d, const char *kind, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	atomic_fetch_add_explicit(&d->errors, 1, memory_order_relaxed); /* a counter */
	pthread_mutex_lock(&d->error_lock);
	rdo_strlcpy(d->last_error, msg, sizeof(d->last_error));
	pthread_mutex_unlock(&d->error_lock);
	rdo_event(d->events, RDO_SEV_ERROR, kind, 0, "card %s: %s", d->card->name, msg);
}

void dma_protocol_error(struct rdo_dma *d, const char *fmt, ...)
{
	char msg[200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	d->proto->disable(d);
	dma_note_error(d, "error", "DMA protocol error: %s; acquisition halted, reset to recover",
		       msg);
	set_state(d, RDO_DMA_ERROR);
}

bool dma_link_can_post(struct rdo_dma *d, struct dma_link *l)
{
	/* relaxed: our own flag, from housekeeping */
	return (d->link_mask & (1u << l->index)) && l->posted_head - l->posted_tail < d->share &&
	       atomic_load_explicit(&l->up, memory_order_relaxed);
}

static void note_in_card(struct dma_link *l)
{
	atomic_store_explicit(&l->in_card, l->posted_head - l->posted_tail,
			      memory_order_relaxed); /* a level, for stats */
}

void dma_posted_push(struct rdo_dma *d, struct dma_link *l, struct rdo_superpage *sp)
{
	l->posted[l->posted_head++ % d->depth] = sp;
	note_in_card(l);
}

struct rdo_superpage *dma_posted_oldest(struct rdo_dma *d, struct dma_link *l)
{
	return l->posted_tail == l->posted_head ? NULL : l->posted[l->posted_tail % d->depth];
}

void dma_posted_pop(struct dma_link *l)
{
	l->posted_tail++;
	note_in_card(l);
}

void dma_deliver(struct rdo_dma *d, struct dma_link *l, struct rdo_superpage *sp, uint32_t length,
		 uint32_t flags)
{
	if (length == 0) { /* flushed before a page was written: nothing to deliver */
		rdo_pool_put(d->pool, sp);
		return;
	}
	sp->size = length;
	sp->link = l->index;
	sp->flags = flags;
	sp->sequence = l->sequence++;
	sp->timestamp_ns = dma_now_wall_ns();
	sp->card_pages_dropped = l->card_dropped;
	sp->run = atomic_load_explicit(&d->run, memory_order_relaxed); /* ours */
	/* relaxed: counters for the stats; the channel thread is their only writer */
	atomic_store_explicit(&l->superpages,
			      atomic_load_explicit(&l->superpages, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	atomic_store_explicit(&l->bytes,
			      atomic_load_explicit(&l->bytes, memory_order_relaxed) + length,
			      memory_order_relaxed);
	bool taken = false;
	for (unsigned i = 0; i < d->nsinks; i++)
		taken |= d->sink[i]->ops->offer(d->sink[i], sp);
	if (!taken) /* no consumer wanted it: read out, then back to the card */
		atomic_fetch_add_explicit(&d->unclaimed, 1, memory_order_relaxed); /* a counter */
	rdo_pool_put(d->pool, sp);
}

/* Reset the card's DMA engine and take back every superpage still posted. */
static void dma_reset(struct rdo_dma *d)
{
	d->proto->reset(d);
	for (unsigned i = 0; i < d->nlinks; i++) {
		struct dma_link *l = &d->link[i];
		while (l->posted_tail != l->posted_head)
			rdo_pool_put(d->pool, l->posted[l->posted_tail++ % d->depth]);
		l->posted_head = l->posted_tail = 0;
		l->card_dropped = 0;
		note_in_card(l);
	}
}

/* Read the card's counters and flags for the stats; raise what changed as events. */
static void housekeeping(struct rdo_dma *d, uint64_t now)
{
	d->next_housekeeping_ns = now + HOUSEKEEPING_NS;
	int state = atomic_load_explicit(&d->state, memory_order_relaxed); /* ours */
	bool running = state == RDO_DMA_RUNNING;
	/* Out of a run the card's counters are frozen at the run's end, until start or reset. */
	bool counting = running || state == RDO_DMA_STOPPING;
	uint64_t up = d->proto->poll_card(d, counting);
	for (unsigned i = 0; i < d->nlinks; i++) {
		struct dma_link *l = &d->link[i];
		if (!(d->link_mask & (1u << i)))
			continue;
		bool is_up = up & (1ull << i);
		/* relaxed: the protocol stored it on this thread */
		uint64_t pages = counting ? atomic_load_explicit(&l->pages, memory_order_relaxed)
					  : l->last_pages;
		/* relaxed: a flag for the stats and post_free; this thread is its only writer */
		bool was_up = atomic_exchange_explicit(&l->up, is_up, memory_order_relaxed);
		if (running && is_up != was_up)
			rdo_event(d->events, is_up ? RDO_SEV_INFO : RDO_SEV_WARNING, "fault", 0,
				  "card %s: link %u is %s", d->card->name, i,
				  is_up ? "up" : "down");
		if (pages != l->last_pages || !running || !is_up) {
			l->last_pages = pages;
			l->last_progress_ns = now;
		}
		bool stalled = running && now - l->last_progress_ns >= STALL_NS;
		if (stalled != atomic_load_explicit(&l->stalled, memory_order_relaxed))
			rdo_event(d->events, stalled ? RDO_SEV_WARNING : RDO_SEV_INFO, "fault", 0,
				  stalled ? "card %s: link %u stalled: up, but no data for 2 s"
					  : "card %s: link %u flows again",
				  d->card->name, i);
		atomic_store_explicit(&l->stalled, stalled, memory_order_relaxed);
	}
}

/* Zero what the stats show of the card and the run. */
static void clear_counters(struct rdo_dma *d)
{
	for (unsigned i = 0; i < d->nlinks; i++) {
		struct dma_link *l = &d->link[i];
		/* relaxed: counters for the stats */
		atomic_store_explicit(&l->superpages, 0, memory_order_relaxed);
		atomic_store_explicit(&l->bytes, 0, memory_order_relaxed);
		atomic_store_explicit(&l->pages, 0, memory_order_relaxed);
		atomic_store_explicit(&l->pages_dropped, 0, memory_order_relaxed);
		atomic_store_explicit(&l->bytes_dropped, 0, memory_order_relaxed);
		atomic_store_explicit(&l->stalled, false, memory_order_relaxed);
		l->last_pages = 0;
	}
	atomic_store_explicit(&d->fifo_overflows, 0, memory_order_relaxed);
	atomic_store_explicit(&d->errors, 0, memory_order_relaxed);
	atomic_store_explicit(&d->unclaimed, 0, memory_order_relaxed);
}

static int cmd_start(struct rdo_dma *d)
{
	int st = atomic_load_explicit(&d->state, memory_order_relaxed); /* ours */
	if (st != RDO_DMA_IDLE) {
		snprintf(d->cmd_err, sizeof(d->cmd_err), "acquisition is %s: %s",
			 rdo_dma_state_name(st),
			 st == RDO_DMA_ERROR ? "reset it first" : "stop it first");
		return -EBUSY;
	}
	dma_reset(d);
	uint64_t now = rdo_now_ns();
	for (unsigned i = 0; i < d->nlinks; i++) {
		struct dma_link *l = &d->link[i];
		l->sequence = 0;
		l->last_pages = 0;
		l->last_progress_ns = now;
		atomic_store_explicit(&l->up, true,
				      memory_order_relaxed); /* until housekeeping says */
	}
	clear_counters(d);
	/* relaxed: status values */
	atomic_store_explicit(&d->run, d->cmd_run, memory_order_relaxed);
	atomic_store_explicit(&d->started_ns, now, memory_order_relaxed);
	d->proto->start(d);
	if (d->card->ops->irq_done) /* INTx: whatever came between runs is acknowledged */
		d->card->ops->irq_done(d->card);
	set_state(d, RDO_DMA_RUNNING);
	return 0;
}

/*
 * Disable the engine, collect what it flushes (unless the protocol broke:
 * then its completions cannot be trusted), take back the rest; with
 * `end_run`, tell the sinks the run is over.
 */
static int drain(struct rdo_dma *d, bool deliver_flushed, bool end_run)
{
	d->proto->disable(d);
	int rc = 0;
	uint64_t deadline = rdo_now_ns() + 2000000000ull;
	while (d->proto->busy(d, deliver_flushed)) {
		if (deliver_flushed)
			d->proto->collect(d);
		if (rdo_now_ns() > deadline) {
			snprintf(d->cmd_err, sizeof(d->cmd_err),
				 "the card did not stop its DMA within 2 s; reset it");
			rc = -ETIMEDOUT;
			break;
		}
		struct timespec ts = {0, 200000};
		nanosleep(&ts, NULL);
	}
	if (deliver_flushed)
		d->proto->collect(d);
	uint64_t run = atomic_load_explicit(&d->run, memory_order_relaxed); /* ours */
	for (unsigned i = 0; end_run && i < d->nsinks; i++)
		if (d->sink[i]->ops->run_end)
			d->sink[i]->ops->run_end(d->sink[i], run);
	housekeeping(d, rdo_now_ns()); /* the run's counters, before the reset zeroes them */
	dma_reset(d);
	return rc;
}

static int cmd_stop(struct rdo_dma *d)
{
	int st = atomic_load_explicit(&d->state, memory_order_relaxed); /* ours */
	if (st != RDO_DMA_RUNNING) {
		snprintf(d->cmd_err, sizeof(d->cmd_err), "acquisition is %s, not running%s",
			 rdo_dma_state_name(st), st == RDO_DMA_ERROR ? ": reset it" : "");
		return -EBUSY;
	}
	set_state(d, RDO_DMA_STOPPING);
	int rc = drain(d, true, true);
	if (atomic_load_explicit(&d->state, memory_order_relaxed) == RDO_DMA_ERROR) { /* ours */
		snprintf(d->cmd_err, sizeof(d->cmd_err),
			 "the card broke the DMA protocol while stopping; reset it");
		return -EIO;
	}
	set_state(d, RDO_DMA_IDLE);
	return rc;
}

static int cmd_reset(struct rdo_dma *d)
{
	int st = atomic_load_explicit(&d->state, memory_order_relaxed); /* ours */
	if (st == RDO_DMA_RUNNING)
		set_state(d, RDO_DMA_STOPPING);
	int rc = drain(d, st != RDO_DMA_ERROR, st != RDO_DMA_IDLE); /* idle: no run to end */
	clear_counters(d);
	if (d->proto->clear_errors)
		d->proto->clear_errors(d);
	pthread_mutex_lock(&d->error_lock);
	d->last_error[0] = '\0';
	pthread_mutex_unlock(&d->error_lock);
	set_state(d, RDO_DMA_IDLE);
	return rc;
}

static void run_command(struct rdo_dma *d, int cmd)
{
	d->cmd_err[0] = '\0';
	switch (cmd) {
	case CMD_START:
		d->cmd_rc = cmd_start(d);
		break;
	case CMD_STOP:
		d->cmd_rc = cmd_stop(d);
		break;
	case CMD_QUIT:
		d->nsinks = 0; /* they may be gone: whatever the card still flushes goes home */
		d->cmd_rc = cmd_reset(d);
		break;
	case CMD_RESET:
		d->cmd_rc = cmd_reset(d);
		break;
	}
	/* release: cmd_rc and cmd_err before the caller sees the command done */
	atomic_fetch_add_explicit(&d->cmd_done, 1, memory_order_release);
	uint64_t one = 1;
	ssize_t n = write(d->done_fd, &one, sizeof(one));
	(void)n; /* EAGAIN: a wake-up is already pending */
}

static void drain_fd(int fd)
{
	uint64_t v;
	ssize_t n = read(fd, &v, sizeof(v));
	(void)n; /* EAGAIN: nothing was signalled */
}

static void *dma_thread(void *arg)
{
	struct rdo_dma *d = arg;
	bool irq_seen = false;
	for (;;) {
		atomic_fetch_add_explicit(&d->heartbeat, 1, memory_order_relaxed); /* a counter */
		/* acquire: the caller's cmd_run before its command */
		int cmd = atomic_exchange_explicit(&d->cmd, CMD_NONE, memory_order_acquire);
		if (cmd != CMD_NONE)
			run_command(d, cmd);
		if (cmd == CMD_QUIT)
			return NULL;
		bool running = atomic_load_explicit(&d->state, memory_order_relaxed) ==
			       RDO_DMA_RUNNING; /* ours */
		unsigned got = 0;
		if (running) {
			got = d->proto->collect(d);
			if (atomic_load_explicit(&d->state, memory_order_relaxed) ==
			    RDO_DMA_RUNNING) /* ours: collect may have halted */
				d->proto->post(d);
		}
		if (irq_seen && d->card->ops->irq_done) /* acknowledged in the card by collect */
			d->card->ops->irq_done(d->card);
		irq_seen = false;
		uint64_t now = rdo_now_ns();
		if (now >= d->next_housekeeping_ns)
			housekeeping(d, now);
		if (got)
			continue; /* more may be ready: poll again before sleeping */
		struct pollfd p[2] = {{.fd = d->cmd_fd, .events = POLLIN},
				      {.fd = d->irq_fd, .events = POLLIN}};
		int n = poll(p, running ? 2 : 1, running ? 10 : 100);
		if (n > 0 && (p[0].revents & POLLIN))
			drain_fd(d->cmd_fd);
		if (n > 0 && running && (p[1].revents & POLLIN)) {
			drain_fd(d->irq_fd);
			irq_seen = true;
		}
	}
}

/* Ask the channel thread to act and wait for its answer. */
static int command(struct rdo_dma *d, int cmd, uint64_t run, char *err, size_t errlen)
{
	d->cmd_run = run;
	uint64_t want = ++d->cmd_sent;
	/* release: cmd_run before the command */
	atomic_store_explicit(&d->cmd, cmd, memory_order_release);
	uint64_t one = 1;
	ssize_t w = write(d->cmd_fd, &one, sizeof(one));
	(void)w; /* EAGAIN: a wake-up is already pending */
	uint64_t deadline = rdo_now_ns() + 10000000000ull;
	/* acquire: the channel's cmd_rc and cmd_err */
	while (atomic_load_explicit(&d->cmd_done, memory_order_acquire) < want) {
		if (rdo_now_ns() > deadline) {
			snprintf(err, errlen, "the DMA channel did not answer within 10 s");
			return -ETIMEDOUT;
		}
		struct pollfd p = {.fd = d->done_fd, .events = POLLIN};
		if (poll(&p, 1, 100) > 0)
			drain_fd(d->done_fd);
	}
	if (d->cmd_rc)
		rdo_strlcpy(err, d->cmd_err, errlen);
	return d->cmd_rc;
}

int rdo_dma_start(struct rdo_dma *d, uint64_t run, char *err, size_t errlen)
{
	return command(d, CMD_START, run, err, errlen);
}

int rdo_dma_stop(struct rdo_dma *d, char *err, size_t errlen)
{
	return command(d, CMD_STOP, 0, err, errlen);
}

int rdo_dma_reset(struct rdo_dma *d, char *err, size_t errlen)
{
	return command(d, CMD_RESET, 0, err, errlen);
}

int rdo_dma_add_sink(struct rdo_dma *d, struct rdo_sink *sink)
{
	if (d->nsinks == RDO_DMA_MAX_SINKS)
		return -ENOSPC;
	d->sink[d->nsinks++] = sink;
	return 0;
}

struct rdo_pool *rdo_dma_pool(struct rdo_dma *d)
{
	return d->pool;
}

void rdo_dma_stats(struct rdo_dma *d, struct rdo_dma_stats *st)
{
	memset(st, 0, sizeof(*st));
	/* relaxed throughout: independent counters, each exact, together a snapshot */
	st->state = atomic_load_explicit(&d->state, memory_order_relaxed);
	st->run = atomic_load_explicit(&d->run, memory_order_relaxed);
	st->started_ns = atomic_load_explicit(&d->started_ns, memory_order_relaxed);
	st->errors = atomic_load_explicit(&d->errors, memory_order_relaxed);
	st->fifo_overflows = atomic_load_explicit(&d->fifo_overflows, memory_order_relaxed);
	st->unclaimed = atomic_load_explicit(&d->unclaimed, memory_order_relaxed);
	st->heartbeat = atomic_load_explicit(&d->heartbeat, memory_order_relaxed);
	st->links = d->nlinks;
	for (unsigned i = 0; i < d->nlinks; i++) {
		struct dma_link *l = &d->link[i];
		struct rdo_dma_link_stats *ls = &st->link[i];
		ls->enabled = d->link_mask & (1u << i);
		ls->up = atomic_load_explicit(&l->up, memory_order_relaxed);
		ls->stalled = atomic_load_explicit(&l->stalled, memory_order_relaxed);
		ls->superpages = atomic_load_explicit(&l->superpages, memory_order_relaxed);
		ls->bytes = atomic_load_explicit(&l->bytes, memory_order_relaxed);
		ls->pages = atomic_load_explicit(&l->pages, memory_order_relaxed);
		ls->pages_dropped = atomic_load_explicit(&l->pages_dropped, memory_order_relaxed);
		ls->bytes_dropped = atomic_load_explicit(&l->bytes_dropped, memory_order_relaxed);
		ls->in_card = atomic_load_explicit(&l->in_card, memory_order_relaxed);
		st->superpages += ls->superpages;
		st->bytes += ls->bytes;
		st->pages_dropped += ls->pages_dropped;
		st->bytes_dropped += ls->bytes_dropped;
		st->pool_in_card += ls->in_card;
	}
	st->pool_total = rdo_pool_count(d->pool);
	st->pool_free = rdo_pool_free(d->pool);
	if (st->pool_free + st->pool_in_card > st->pool_total)
		st->pool_free = st->pool_total - st->pool_in_card;
	st->pool_in_sinks = st->pool_total - st->pool_free - st->pool_in_card;
	st->superpage_size = rdo_pool_superpage_size(d->pool);
	st->pool_memory = d->mem.memory;
	pthread_mutex_lock(&d->error_lock);
	rdo_strlcpy(st->last_error, d->last_error, sizeof(st->last_error));
	pthread_mutex_unlock(&d->error_lock);
}

int dma_resolve(struct rdo_dma *d, const struct rdo_regmap *map, struct dreg *r, bool required,
		const char *fmt, ...)
{
	char name[96], err[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	struct rdo_target t;
	*r = (struct dreg){0};
	if (rdo_regmap_resolve(map, name, &t, err, sizeof(err)) != 0 || !t.reg) {
		if (!required)
			return 0;
		rdo_err("card %s: register map %s has no %s, which the %s DMA protocol needs: load "
			"the map of a card that speaks it",
			d->card->name, rdo_regmap_source(map), name, d->proto->name);
		return -ENOENT;
	}
	if (rdo_card_check(d->card, t.bar, t.offset, t.width)) {
		rdo_err("card %s: %s is outside the card's BAR%u", d->card->name, name, t.bar);
		return -ERANGE;
	}
	r->present = true;
	r->bar = t.bar;
	r->off = t.offset;
	r->width = t.width;
	r->mask = t.field ? rdo_field_mask(t.field) : rdo_mask(t.width);
	r->lsb = t.field ? t.field->lsb : 0;
	return 0;
}

static int check_opts(const struct rdo_card *card, const struct rdo_dma_opts *o)
{
	if (o->page_size < 64 || o->page_size > 8192 || o->page_size % 8) {
		rdo_err("card %s: dma.page_size %u: expected 64 to 8192 bytes, a multiple of 8",
			card->name, o->page_size);
		return -EINVAL;
	}
	if (o->superpage_size < o->page_size || o->superpage_size % o->page_size ||
	    o->superpage_size > UINT32_MAX) {
		rdo_err(
		    "card %s: dma.superpage_size %zu: expected a multiple of dma.page_size (%u) "
		    "below 4 GiB",
		    card->name, o->superpage_size, o->page_size);
		return -EINVAL;
	}
	if (o->superpages < 2) {
		rdo_err("card %s: dma.superpages %u: expected at least 2", card->name,
			o->superpages);
		return -EINVAL;
	}
	if (!(o->link_mask & (uint32_t)rdo_mask(card->links))) {
		rdo_err("card %s: dma.links selects none of the card's %u links", card->name,
			card->links);
		return -EINVAL;
	}
	return 0;
}

static const struct dma_proto *find_proto(const char *name)
{
	static const struct dma_proto *const protos[] = {&rdo_dma_superpage_proto,
							 &rdo_dma_edu_proto};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(protos); i++)
		if (strcmp(protos[i]->name, name) == 0)
			return protos[i];
	return NULL;
}

/* Free what create made; every part may be missing. */
static void free_channel(struct rdo_dma *d)
{
	if (d->cmd_fd >= 0)
		close(d->cmd_fd);
	if (d->done_fd >= 0)
		close(d->done_fd);
	rdo_pool_destroy(&d->pool);
	if (d->proto_state)
		d->proto->teardown(d);
	free(d->proto_state);
	rdo_card_dma_free(d->card, &d->mem);
	for (unsigned i = 0; i < d->nlinks; i++)
		free(d->link[i].posted);
	pthread_mutex_destroy(&d->error_lock);
	free(d);
}

struct rdo_dma *rdo_dma_create(struct rdo_card *card, const struct rdo_regmap *map,
			       const struct rdo_dma_opts *o, struct rdo_events *events)
{
	if (check_opts(card, o))
		return NULL;
	if (!card->ops->irq_fd) {
		rdo_err("card %s: backend %s has no DMA interrupt: it cannot run a DMA channel",
			card->name, card->ops->name);
		return NULL;
	}
	const struct rdo_map_dma *profile = rdo_regmap_dma(map);
	const struct dma_proto *proto = find_proto(profile->protocol);
	if (!proto) {
		rdo_err("card %s: register map %s names DMA protocol \"%s\", which this build does "
			"not speak",
			card->name, rdo_regmap_source(map), profile->protocol);
		return NULL;
	}
	struct rdo_dma *d = calloc(1, sizeof(*d));
	if (!d) {
		rdo_err("card %s: out of memory for the DMA channel", card->name);
		return NULL;
	}
	d->card = card;
	d->o = *o;
	d->events = events;
	d->address_bits = profile->address_bits;
	d->nlinks = card->links < RDO_DMA_MAX_LINKS ? card->links : RDO_DMA_MAX_LINKS;
	d->link_mask = o->link_mask & (uint32_t)rdo_mask(d->nlinks);
	d->cmd_fd = d->done_fd = -1;
	pthread_mutex_init(&d->error_lock, NULL);
	size_t len = o->superpage_size * o->superpages;
	if (rdo_card_dma_alloc(card, len, o->superpage_size, d->address_bits, &d->mem))
		goto fail;
	d->pool = rdo_pool_create(&d->mem, o->superpage_size, o->superpages);
	if (!d->pool)
		goto fail;
	d->proto = proto;
	d->proto_state = calloc(1, proto->state_size);
	if (!d->proto_state) {
		rdo_err("card %s: out of memory for the %s DMA protocol", card->name, proto->name);
		goto fail;
	}
	if (proto->setup(d, map))
		goto fail;
	unsigned enabled = (unsigned)__builtin_popcount(d->link_mask);
	d->share = o->superpages / enabled;
	if (d->share < 2)
		d->share = 2;
	if (d->share > d->depth)
		d->share = d->depth;
	for (unsigned i = 0; i < d->nlinks; i++) {
		d->link[i].index = i;
		d->link[i].posted = calloc(d->depth, sizeof(*d->link[i].posted));
		if (!d->link[i].posted)
			goto fail;
	}
	d->irq_fd = card->ops->irq_fd(card);
	d->cmd_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	d->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (d->cmd_fd < 0 || d->done_fd < 0) {
		rdo_err("card %s: cannot create eventfds: %s", card->name, strerror(errno));
		goto fail;
	}
	int rc = pthread_create(&d->thread, NULL, dma_thread, d);
	if (rc) {
		rdo_err("card %s: cannot start the DMA thread: %s", card->name, strerror(rc));
		goto fail;
	}
	pthread_setname_np(d->thread, "rdo-dma");
	rdo_info("card %s: DMA channel (%s protocol): %u superpages of %zu KiB (%s memory), links "
		 "0x%x, page size %u, depth %u",
		 card->name, proto->name, o->superpages, o->superpage_size >> 10, d->mem.memory,
		 d->link_mask, o->page_size, d->depth);
	return d;
fail:
	free_channel(d);
	return NULL;
}

void rdo_dma_destroy(struct rdo_dma **dma)
{
	struct rdo_dma *d = *dma;
	if (!d)
		return;
	char err[256];
	command(d, CMD_QUIT, 0, err, sizeof(err));
	pthread_join(d->thread, NULL);
	unsigned missing = rdo_pool_count(d->pool) - rdo_pool_free(d->pool);
	if (missing)
		rdo_err("card %s: %u superpages were not returned to the pool at shutdown",
			d->card->name, missing);
	free_channel(d);
	*dma = NULL;
}
