/*
 * The edu protocol: QEMU's `edu` teaching device (hw/misc/edu.c) as a
 * one-link readout card, so that readoutd can acquire through driver-shim in
 * a VM with no hardware.
 *
 * edu has no detector and no superpage engine: one copy engine between a bus
 * address and its 4 KiB device buffer, started by the host, which raises an
 * interrupt when done. So the host drives each DMA page in two transfers:
 *   load:  the page (header and pattern, as the emulator writes them) from a
 *          staging page in DMA memory into the device buffer;
 *   store: the device buffer into the next slot of the superpage at its bus
 *          address: the bytes consumers see came over the device's DMA.
 * A superpage is delivered when full, or partial when acquisition stops.
 * edu completes a transfer about 100 ms (its virtual clock) after the start,
 * so this moves about 5 pages a second: a test of the path, not of speed.
 *
 * The registers are found by name in the map (config/regmaps/edu.yaml); the
 * device buffer's address and size are edu's own.
 */
#include <errno.h>

#include "card/regmap.h"
#include "common/log.h"
#include "common/page.h"
#include "common/util.h"
#include "dma/dma_proto.h"

#define EDU_BUFFER	 0x40000u
#define EDU_BUFFER_SIZE	 4096u
#define EDU_TRANSFER_MAX (EDU_BUFFER_SIZE - 8) /* QEMU 7.2 aborts on one reaching the last byte */
#define EDU_IRQ_DMA	 0x100u
#define EDU_TIMEOUT_NS	 2000000000ull /* 20 times what a transfer takes */
#define EDU_DEPTH	 4u	       /* superpages handed to the one link at a time */

enum edu_phase { EDU_IDLE, EDU_LOAD, EDU_STORE };

struct edu_state {
	struct dreg src, dst, count, command, start, to_ram, irq, irq_status, irq_ack;
	struct rdo_dma_buf staging; /* the page on its way to the device */
	uint64_t staging_bus;
	enum edu_phase phase;
	bool enabled;	     /* taking data: a new page may start */
	size_t fill;	     /* bytes of the oldest posted superpage written */
	uint64_t pages;	     /* pages written since the DMA reset */
	uint64_t started_ns; /* of the transfer in flight */
};

static struct edu_state *state(struct rdo_dma *d)
{
	return d->proto_state;
}

static int edu_setup(struct rdo_dma *d, const struct rdo_regmap *map)
{
	struct edu_state *s = state(d);
	if (d->o.page_size > EDU_TRANSFER_MAX) {
		rdo_err("card %s: dma.page_size %u: the edu device copies at most %u bytes a "
			"transfer; set dma.page_size to %u or less",
			d->card->name, d->o.page_size, EDU_TRANSFER_MAX, EDU_TRANSFER_MAX);
		return -EINVAL;
	}
	if (d->link_mask != 1) {
		rdo_err("card %s: the edu device has one link, 0: set dma.links to [0]",
			d->card->name);
		return -EINVAL;
	}
	if (dma_resolve(d, map, &s->src, true, "dma.source") ||
	    dma_resolve(d, map, &s->dst, true, "dma.destination") ||
	    dma_resolve(d, map, &s->count, true, "dma.count") ||
	    dma_resolve(d, map, &s->command, true, "dma.command") ||
	    dma_resolve(d, map, &s->start, true, "dma.command.start") ||
	    dma_resolve(d, map, &s->to_ram, true, "dma.command.to_ram") ||
	    dma_resolve(d, map, &s->irq, true, "dma.command.irq") ||
	    dma_resolve(d, map, &s->irq_status, true, "irq.status") ||
	    dma_resolve(d, map, &s->irq_ack, true, "irq.ack"))
		return -ENOENT;
	d->depth = EDU_DEPTH;
	if (rdo_card_dma_alloc(d->card, 4096, 4096, d->address_bits, &s->staging))
		return -ENOMEM;
	s->staging_bus = s->staging.seg[0].bus;
	return 0;
}

static void edu_teardown(struct rdo_dma *d)
{
	rdo_card_dma_free(d->card, &state(d)->staging);
}

/* Start one transfer: the command register is written whole, never read-modify-written. */
static void transfer(struct rdo_dma *d, uint64_t src, uint64_t dst, bool to_ram)
{
	struct edu_state *s = state(d);
	dma_wr(d, &s->src, src);
	dma_wr(d, &s->dst, dst);
	dma_wr(d, &s->count, d->o.page_size);
	dma_wr(d, &s->command, s->start.mask | s->irq.mask | (to_ram ? s->to_ram.mask : 0));
	s->started_ns = rdo_now_ns();
}

/* The next page into the device buffer, if a superpage waits for it. */
static void next_page(struct rdo_dma *d)
{
	struct edu_state *s = state(d);
	if (!s->enabled || s->phase != EDU_IDLE || !dma_posted_oldest(d, &d->link[0]))
		return;
	if (dma_rd(d, &s->start)) /* edu ignores a command while it copies */
		return;
	uint32_t slot = d->o.page_size;
	rdo_page_write(s->staging.va, 0, s->pages, slot,
		       slot - (uint32_t)sizeof(struct rdo_page_header), dma_now_wall_ns());
	transfer(d, s->staging_bus, EDU_BUFFER, false);
	s->phase = EDU_LOAD;
}

static void edu_post(struct rdo_dma *d)
{
	struct dma_link *l = &d->link[0];
	while (dma_link_can_post(d, l)) {
		struct rdo_superpage *sp = rdo_pool_get(d->pool);
		if (!sp)
			break;
		dma_posted_push(d, l, sp);
	}
	next_page(d);
}

static void edu_start(struct rdo_dma *d)
{
	state(d)->enabled = true;
	edu_post(d);
}

/* Hand the oldest superpage on, holding `fill` bytes: full, or what a stop left in it. */
static void complete(struct rdo_dma *d, uint32_t flags)
{
	struct edu_state *s = state(d);
	struct dma_link *l = &d->link[0];
	struct rdo_superpage *sp = dma_posted_oldest(d, l);
	dma_posted_pop(l);
	dma_deliver(d, l, sp, (uint32_t)s->fill, flags);
	s->fill = 0;
}

static unsigned edu_collect(struct rdo_dma *d)
{
	struct edu_state *s = state(d);
	unsigned n = 0;
	if (s->phase != EDU_IDLE) {
		if (dma_rd(d, &s->irq_status) & EDU_IRQ_DMA)
			dma_wr(d, &s->irq_ack, EDU_IRQ_DMA);
		if (dma_rd(d, &s->start)) {
			if (rdo_now_ns() - s->started_ns > EDU_TIMEOUT_NS)
				dma_protocol_error(d, "the edu device did not finish a transfer "
						      "within 2 s");
			return 0;
		}
		struct rdo_superpage *sp = dma_posted_oldest(d, &d->link[0]);
		if (s->phase == EDU_LOAD) {
			transfer(d, EDU_BUFFER, sp->bus + s->fill, true);
			s->phase = EDU_STORE;
			return 0;
		}
		s->phase = EDU_IDLE;
		s->fill += d->o.page_size;
		s->pages++;
		/* relaxed: a counter for the stats, stored on this thread */
		atomic_store_explicit(&d->link[0].pages, s->pages, memory_order_relaxed);
		if (s->fill + d->o.page_size > rdo_pool_superpage_size(d->pool)) {
			complete(d, 0);
			n++;
		}
	}
	if (!s->enabled && s->phase == EDU_IDLE && s->fill) {
		complete(d, RDO_SP_PARTIAL);
		n++;
	}
	next_page(d);
	return n;
}

static void edu_disable(struct rdo_dma *d)
{
	state(d)->enabled = false;
}

/* Without collect, nothing moves a transfer on: only the engine can be busy. */
static bool edu_busy(struct rdo_dma *d, bool collecting)
{
	struct edu_state *s = state(d);
	if (s->phase == EDU_IDLE)
		return false;
	return collecting || dma_rd(d, &s->start) != 0;
}

/*
 * edu cannot abort a transfer: the core calls this after busy() turned false
 * or its 2 s passed. A transfer still running then keeps the next one waiting
 * (next_page), and the link shows stalled.
 */
static void edu_reset(struct rdo_dma *d)
{
	struct edu_state *s = state(d);
	s->enabled = false;
	s->phase = EDU_IDLE;
	s->fill = 0;
	s->pages = 0;
	dma_wr(d, &s->irq_ack, EDU_IRQ_DMA);
}

/* One link, always up; the host is the source, so nothing is dropped there. */
static uint64_t edu_poll_card(struct rdo_dma *d, bool counting)
{
	(void)d;
	(void)counting;
	return 1;
}

const struct dma_proto rdo_dma_edu_proto = {
    .name = "edu",
    .state_size = sizeof(struct edu_state),
    .setup = edu_setup,
    .teardown = edu_teardown,
    .start = edu_start,
    .collect = edu_collect,
    .post = edu_post,
    .disable = edu_disable,
    .busy = edu_busy,
    .reset = edu_reset,
    .poll_card = edu_poll_card,
};
