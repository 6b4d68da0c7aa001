/*
 * The superpage protocol, which readout cards and the emulator speak. Per
 * enabled link: post free superpages into the card's free FIFO
 * (dma_link<N>.free_addr, then free_push with the size), round-robin over the
 * links; learn filled ones from dma_link<N>.ready_count and the completion
 * descriptors the card writes into host memory, checked against what was
 * posted. Every register is found by name in the map, so another card with
 * this protocol needs only its map.
 */
#include <errno.h>
#include <string.h>

#include "card/regmap.h"
#include "card/superpage_proto.h"
#include "common/log.h"
#include "dma/dma_proto.h"

#define MAX_DEPTH 1024u

struct sp_link {
	struct dreg free_addr, free_push, compl_addr, ready, pages, dropped, dropped_bytes;
	struct rdo_dma_completion *ring;
	uint64_t ring_bus;
	uint32_t ready_seen;
};

struct sp_state {
	struct dreg enable, irq_enable, running, page_size, irq_coalesce, irq_holdoff, fifo_depth,
	    reset_dma, err_dma_fault, err_fifo_full, link_enable, link_status, overflows;
	struct sp_link link[RDO_DMA_MAX_LINKS];
	struct rdo_dma_buf compl_mem;
};

static struct sp_state *state(struct rdo_dma *d)
{
	return d->proto_state;
}

static int resolve_all(struct rdo_dma *d, struct sp_state *s, const struct rdo_regmap *map)
{
	int rc = dma_resolve(d, map, &s->enable, true, "dma.control.enable") ||
		 dma_resolve(d, map, &s->irq_enable, true, "dma.control.irq_enable") ||
		 dma_resolve(d, map, &s->running, true, "dma.status.running") ||
		 dma_resolve(d, map, &s->page_size, true, "dma.page_size") ||
		 dma_resolve(d, map, &s->irq_coalesce, true, "dma.irq_coalesce") ||
		 dma_resolve(d, map, &s->irq_holdoff, true, "dma.irq_holdoff") ||
		 dma_resolve(d, map, &s->fifo_depth, true, "dma.fifo_depth") ||
		 dma_resolve(d, map, &s->reset_dma, true, "ctrl.reset.dma") ||
		 dma_resolve(d, map, &s->link_enable, true, "link.enable") ||
		 dma_resolve(d, map, &s->link_status, false, "link.status") ||
		 dma_resolve(d, map, &s->overflows, false, "dma.overflows") ||
		 dma_resolve(d, map, &s->err_dma_fault, false, "ctrl.errors.dma_fault") ||
		 dma_resolve(d, map, &s->err_fifo_full, false, "ctrl.errors.fifo_full");
	for (unsigned i = 0; rc == 0 && i < d->nlinks; i++) {
		struct sp_link *l = &s->link[i];
		if (!(d->link_mask & (1u << i)))
			continue;
		rc = dma_resolve(d, map, &l->free_addr, true, "dma_link%u.free_addr", i) ||
		     dma_resolve(d, map, &l->free_push, true, "dma_link%u.free_push", i) ||
		     dma_resolve(d, map, &l->compl_addr, true, "dma_link%u.completion_addr", i) ||
		     dma_resolve(d, map, &l->ready, true, "dma_link%u.ready_count", i) ||
		     dma_resolve(d, map, &l->pages, true, "dma_link%u.pages", i) ||
		     dma_resolve(d, map, &l->dropped, true, "dma_link%u.dropped", i) ||
		     dma_resolve(d, map, &l->dropped_bytes, true, "dma_link%u.dropped_bytes", i);
	}
	return rc ? -ENOENT : 0;
}

static int sp_setup(struct rdo_dma *d, const struct rdo_regmap *map)
{
	struct sp_state *s = state(d);
	if (resolve_all(d, s, map))
		return -ENOENT;
	d->depth = (unsigned)dma_rd(d, &s->fifo_depth);
	/* A power of two, so that ring positions taken from 32-bit counters survive the wrap. */
	if (d->depth == 0 || d->depth > MAX_DEPTH || (d->depth & (d->depth - 1))) {
		rdo_err("card %s: dma.fifo_depth reads %u: expected a power of two up to %u; is "
			"this the map of the card?",
			d->card->name, d->depth, MAX_DEPTH);
		return -EINVAL;
	}
	/* One ring a link, each on its own pages: a backend allocates whole pages. */
	size_t ring_bytes = (size_t)d->depth * sizeof(struct rdo_dma_completion);
	size_t stride = (ring_bytes + 4095) / 4096 * 4096;
	if (rdo_card_dma_alloc(d->card, stride * d->nlinks, stride, d->address_bits, &s->compl_mem))
		return -ENOMEM;
	for (unsigned i = 0; i < d->nlinks; i++) {
		s->link[i].ring =
		    (struct rdo_dma_completion *)((char *)s->compl_mem.va + i * stride);
		if (rdo_dma_buf_bus(&s->compl_mem, i * stride, ring_bytes, &s->link[i].ring_bus))
			return -ERANGE; /* the backend keeps granules whole: cannot happen */
	}
	return 0;
}

static void sp_teardown(struct rdo_dma *d)
{
	rdo_card_dma_free(d->card, &state(d)->compl_mem);
}

/* Post free superpages round-robin over the links until the pool or the FIFOs run out. */
static void sp_post(struct rdo_dma *d)
{
	struct sp_state *s = state(d);
	size_t size = rdo_pool_superpage_size(d->pool);
	for (bool posted = true; posted;) {
		posted = false;
		for (unsigned k = 0; k < d->nlinks; k++) {
			unsigned i = (d->rr + k) % d->nlinks;
			struct dma_link *l = &d->link[i];
			if (!dma_link_can_post(d, l))
				continue;
			struct rdo_superpage *sp = rdo_pool_get(d->pool);
			if (!sp) {
				d->rr = i;
				return;
			}
			dma_posted_push(d, l, sp);
			dma_wr(d, &s->link[i].free_addr, sp->bus);
			dma_wr(d, &s->link[i].free_push, size);
			posted = true;
		}
	}
}

static void sp_start(struct rdo_dma *d)
{
	struct sp_state *s = state(d);
	dma_wr(d, &s->page_size, d->o.page_size);
	dma_wr(d, &s->irq_coalesce, d->o.irq_coalesce);
	dma_wr(d, &s->irq_holdoff, d->o.irq_holdoff_us);
	dma_wr(d, &s->link_enable, d->link_mask);
	for (unsigned i = 0; i < d->nlinks; i++) {
		struct sp_link *l = &s->link[i];
		if (!(d->link_mask & (1u << i)))
			continue; /* its registers are not resolved */
		memset(l->ring, 0, d->depth * sizeof(*l->ring));
		dma_wr(d, &l->compl_addr, l->ring_bus);
	}
	sp_post(d);
	dma_wr(d, &s->irq_enable, 1);
	dma_wr(d, &s->enable, 1);
}

/* Collect what the card has filled on every link; the number collected. */
static unsigned sp_collect(struct rdo_dma *d)
{
	struct sp_state *s = state(d);
	unsigned n = 0;
	for (unsigned i = 0; i < d->nlinks; i++) {
		struct dma_link *l = &d->link[i];
		struct sp_link *pl = &s->link[i];
		if (!(d->link_mask & (1u << i)))
			continue;
		uint32_t ready = (uint32_t)dma_rd(d, &pl->ready);
		while (pl->ready_seen != ready) {
			struct rdo_superpage *sp = dma_posted_oldest(d, l);
			if (!sp) {
				dma_protocol_error(
				    d, "link %u reports superpage %u filled, but none is posted", i,
				    pl->ready_seen);
				return n;
			}
			struct rdo_dma_completion c = pl->ring[pl->ready_seen % d->depth];
			if (c.bus != sp->bus || c.length > rdo_pool_superpage_size(d->pool)) {
				dma_protocol_error(
				    d,
				    "link %u: completion %u is for bus address 0x%llx, %u "
				    "bytes; expected 0x%llx, at most %zu",
				    i, pl->ready_seen, (unsigned long long)c.bus, c.length,
				    (unsigned long long)sp->bus, rdo_pool_superpage_size(d->pool));
				return n;
			}
			dma_posted_pop(l);
			pl->ready_seen++;
			if (c.flags & RDO_SP_DISCONTINUITY)
				l->card_dropped = dma_rd(d, &pl->dropped);
			dma_deliver(d, l, sp, c.length, c.flags);
			n++;
		}
	}
	return n;
}

static void sp_disable(struct rdo_dma *d)
{
	dma_wr(d, &state(d)->enable, 0);
}

static bool sp_busy(struct rdo_dma *d, bool collecting)
{
	(void)collecting; /* the engine says whether it still flushes */
	return dma_rd(d, &state(d)->running);
}

static void sp_reset(struct rdo_dma *d)
{
	struct sp_state *s = state(d);
	dma_wr(d, &s->reset_dma, 1);
	for (unsigned i = 0; i < d->nlinks; i++)
		s->link[i].ready_seen = 0;
}

static void sp_clear_errors(struct rdo_dma *d)
{
	struct sp_state *s = state(d);
	if (s->err_dma_fault.present)
		dma_wr(d, &s->err_dma_fault, 1);
	if (s->err_fifo_full.present)
		dma_wr(d, &s->err_fifo_full, 1);
}

static uint64_t sp_poll_card(struct rdo_dma *d, bool counting)
{
	struct sp_state *s = state(d);
	uint64_t up = s->link_status.present ? dma_rd(d, &s->link_status) : UINT64_MAX;
	for (unsigned i = 0; counting && i < d->nlinks; i++) {
		struct dma_link *l = &d->link[i];
		struct sp_link *pl = &s->link[i];
		if (!(d->link_mask & (1u << i)))
			continue;
		/* relaxed: counters for the stats */
		atomic_store_explicit(&l->pages, dma_rd(d, &pl->pages), memory_order_relaxed);
		atomic_store_explicit(&l->pages_dropped, dma_rd(d, &pl->dropped),
				      memory_order_relaxed);
		atomic_store_explicit(&l->bytes_dropped, dma_rd(d, &pl->dropped_bytes),
				      memory_order_relaxed);
	}
	if (s->overflows.present && counting) {
		uint64_t n = dma_rd(d, &s->overflows);
		uint64_t old =
		    atomic_exchange_explicit(&d->fifo_overflows, n, memory_order_relaxed);
		if (n > old)
			dma_note_error(d, "fault",
				       "the card's data FIFO overflowed (%llu times since start): "
				       "pages lost at the source, counted per link",
				       (unsigned long long)n);
	}
	if (s->err_dma_fault.present && dma_rd(d, &s->err_dma_fault)) {
		dma_wr(d, &s->err_dma_fault, 1);
		dma_note_error(d, "error",
			       "the card reported a DMA fault: a posted address is not DMA "
			       "memory");
	}
	if (s->err_fifo_full.present && dma_rd(d, &s->err_fifo_full)) {
		dma_wr(d, &s->err_fifo_full, 1);
		dma_note_error(d, "error", "a post to a full free FIFO was lost");
	}
	return up;
}

const struct dma_proto rdo_dma_superpage_proto = {
    .name = "superpage",
    .state_size = sizeof(struct sp_state),
    .setup = sp_setup,
    .teardown = sp_teardown,
    .start = sp_start,
    .collect = sp_collect,
    .post = sp_post,
    .disable = sp_disable,
    .busy = sp_busy,
    .reset = sp_reset,
    .clear_errors = sp_clear_errors,
    .poll_card = sp_poll_card,
};
