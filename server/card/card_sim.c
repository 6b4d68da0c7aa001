/*
 * The emulated readout card. Its registers live in atomics, so any thread may
 * access the card the way any thread may issue an MMIO on real hardware. A
 * generator thread plays the card's DMA engine and its data sources: it takes
 * free superpages from the per-link FIFOs the host fills, writes DMA pages
 * into them, reports filled ones through completion descriptors in host
 * memory and the ready counters, and signals the interrupt eventfd.
 */
#include "card/card_sim.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "card/card.h"
#include "card/superpage_proto.h"
#include "common/hostmem.h"
#include "common/log.h"
#include "common/page.h"
#include "common/util.h"

enum sim_access { SIM_RW, SIM_RO, SIM_WO, SIM_W1C };

struct sim_reg_spec {
	uint32_t off;
	uint8_t width;
	uint8_t access;
	uint64_t reset;
};

enum {
	R_IDENTITY,
	R_FIRMWARE,
	R_SERIAL,
	R_SCRATCH,
	R_CONFIG,
	R_RESET,
	R_STATUS,
	R_ERRORS,
	R_TEMPERATURE,
	R_TEMP_MAX,
	R_UPTIME,
	R_LINK_COUNT,
	R_LINK_ENABLE,
	R_LINK_STATUS,
	R_FAULT_LINK_DOWN,
	R_FAULT_STALL,
	R_FAULT_CORRUPT,
	R_FAULT_OVERFLOW,
	R_DMA_CONTROL,
	R_DMA_STATUS,
	R_DMA_RATE,
	R_DMA_PAGE_SIZE,
	R_DMA_IRQ_COALESCE,
	R_DMA_DROPPED,
	R_DMA_IRQ_HOLDOFF,
	R_DMA_FIFO_DEPTH,
	R_DMA_PULSE_HZ,
	R_DMA_PULSE_BYTES,
	R_DMA_IRQ_COUNT,
	R_DMA_OVERFLOWS,
	R_COUNT
};

/* Reset values of identity, firmware, serial and link count come from the opts. */
static const struct sim_reg_spec specs[R_COUNT] = {
    [R_IDENTITY] = {SIM_ID_IDENTITY, 32, SIM_RO, 0},
    [R_FIRMWARE] = {SIM_ID_FIRMWARE, 32, SIM_RO, 0},
    [R_SERIAL] = {SIM_ID_SERIAL, 64, SIM_RO, 0},
    [R_SCRATCH] = {SIM_ID_SCRATCH, 32, SIM_RW, 0},
    [R_CONFIG] = {SIM_CTRL_CONFIG, 32, SIM_RW, 0x10},
    [R_RESET] = {SIM_CTRL_RESET, 32, SIM_WO, 0},
    [R_STATUS] = {SIM_CTRL_STATUS, 32, SIM_RO, 0x3},
    [R_ERRORS] = {SIM_CTRL_ERRORS, 32, SIM_W1C, SIM_ERR_POWER_ON},
    [R_TEMPERATURE] = {SIM_MON_TEMPERATURE, 32, SIM_RO, 0},
    [R_TEMP_MAX] = {SIM_MON_TEMP_MAX, 32, SIM_RO, 0},
    [R_UPTIME] = {SIM_MON_UPTIME, 32, SIM_RO, 0},
    [R_LINK_COUNT] = {SIM_LINK_COUNT, 32, SIM_RO, 0},
    [R_LINK_ENABLE] = {SIM_LINK_ENABLE, 32, SIM_RW, 0},
    [R_LINK_STATUS] = {SIM_LINK_STATUS, 32, SIM_RO, 0},
    [R_FAULT_LINK_DOWN] = {SIM_FAULT_LINK_DOWN, 32, SIM_RW, 0},
    [R_FAULT_STALL] = {SIM_FAULT_STALL, 32, SIM_RW, 0},
    [R_FAULT_CORRUPT] = {SIM_FAULT_CORRUPT, 32, SIM_WO, 0},
    [R_FAULT_OVERFLOW] = {SIM_FAULT_OVERFLOW, 32, SIM_WO, 0},
    [R_DMA_CONTROL] = {SIM_DMA_CONTROL, 32, SIM_RW, 0},
    [R_DMA_STATUS] = {SIM_DMA_STATUS, 32, SIM_RO, 0},
    [R_DMA_RATE] = {SIM_DMA_RATE, 64, SIM_RW, 0},
    [R_DMA_PAGE_SIZE] = {SIM_DMA_PAGE_SIZE, 32, SIM_RW, 8192},
    [R_DMA_IRQ_COALESCE] = {SIM_DMA_IRQ_COALESCE, 32, SIM_RW, 1},
    [R_DMA_DROPPED] = {SIM_DMA_DROPPED, 64, SIM_RO, 0},
    [R_DMA_IRQ_HOLDOFF] = {SIM_DMA_IRQ_HOLDOFF, 32, SIM_RW, 1000},
    [R_DMA_FIFO_DEPTH] = {SIM_DMA_FIFO_DEPTH, 32, SIM_RO, SIM_FIFO_DEPTH},
    [R_DMA_PULSE_HZ] = {SIM_DMA_PULSE_HZ, 32, SIM_RW, 60},
    [R_DMA_PULSE_BYTES] = {SIM_DMA_PULSE_BYTES, 32, SIM_RW, 262144},
    [R_DMA_IRQ_COUNT] = {SIM_DMA_IRQ_COUNT, 64, SIM_RO, 0},
    [R_DMA_OVERFLOWS] = {SIM_DMA_OVERFLOWS, 32, SIM_RO, 0},
};

/* Memory the host allocated for DMA, as the emulator's IOMMU sees it. */
struct sim_region {
	_Atomic bool valid;
	uint64_t bus;
	struct rdo_dma_seg seg; /* the whole region: one segment */
	size_t len, mapped;
	void *va;
};

#define SIM_MAX_REGIONS 16

/*
 * One link of the DMA engine. The host side (register writes) posts into the
 * free FIFO; the generator thread takes from it. Everything below `gen` is
 * the generator's own.
 */
struct sim_link {
	uint64_t fifo_bus[SIM_FIFO_DEPTH];
	uint32_t fifo_size[SIM_FIFO_DEPTH];
	_Atomic uint32_t fifo_head; /* posts so far, host side */
	_Atomic uint32_t fifo_tail; /* taken so far, generator side */
	_Atomic uint64_t free_addr;
	_Atomic uint64_t compl_addr;
	_Atomic uint32_t ready;
	_Atomic uint64_t pages, dropped, dropped_bytes;
	_Atomic uint32_t overflow; /* pages the data FIFO is still to lose */
	/* gen: */
	unsigned char *cur; /* the superpage being filled, or NULL */
	uint64_t cur_bus;
	uint32_t cur_size, cur_fill, cur_flags;
	bool discontinuity; /* pages dropped since the last completion */
	double budget;	    /* bytes the source may still produce now */
};

struct sim_card {
	struct rdo_card base;
	uint64_t reset[R_COUNT];
	_Atomic uint64_t reg[R_COUNT];
	_Atomic uint64_t reset_ns;	 /* when the card last came out of reset */
	uint32_t link_mask;		 /* the bits of the links this card has */
	int8_t index[SIM_BAR0_SIZE / 4]; /* register starting at offset 4*i, or -1 */
	struct sim_link link[SIM_MAX_LINKS];
	atomic_flag post_lock; /* serialises host posts to the free FIFOs, as the bus does */
	struct sim_region region[SIM_MAX_REGIONS];
	_Atomic unsigned nregions;
	uint64_t next_bus;
	int irq_fd;
	_Atomic uint32_t corrupt; /* pages still to corrupt */
	_Atomic bool running;	  /* DMA status: filling or flushing */
	_Atomic uint64_t dma_reset_req, dma_reset_done;
	_Atomic bool quit;
	pthread_t thread;
	/* gen: */
	uint32_t irq_pending; /* completions not yet signalled */
	uint64_t irq_first_ns;
	uint64_t last_ns, next_pulse_ns;
};

static struct sim_card *to_sim(struct rdo_card *card)
{
	return container_of(card, struct sim_card, base);
}

/*
 * Register state is independent per register: nothing reads two registers and
 * expects them to agree, so relaxed ordering is enough throughout, as for MMIO
 * to different registers of a real card.
 */
static uint64_t get(struct sim_card *s, int r)
{
	return atomic_load_explicit(&s->reg[r], memory_order_relaxed); /* independent register */
}

static void set(struct sim_card *s, int r, uint64_t v)
{
	atomic_store_explicit(&s->reg[r], v, memory_order_relaxed); /* independent register */
}

/* Ask the generator to reset the DMA engine, and wait until it has: a reset is synchronous. */
static void sim_dma_reset(struct sim_card *s)
{
	/* acq_rel: our register writes before the request; the generator's reset before the ack */
	uint64_t req = atomic_fetch_add_explicit(&s->dma_reset_req, 1, memory_order_acq_rel) + 1;
	for (int i = 0; i < 10000; i++) {
		if (atomic_load_explicit(&s->dma_reset_done, memory_order_acquire) >= req)
			return; /* acquire: the generator's reset happened before */
		struct timespec ts = {0, 50000};
		nanosleep(&ts, NULL);
	}
	rdo_err("card %s: the emulator's DMA engine did not acknowledge a reset", s->base.name);
}

static void sim_reset(struct sim_card *s)
{
	for (int r = 0; r < R_COUNT; r++)
		set(s, r, s->reset[r]);
	atomic_store_explicit(&s->reset_ns, rdo_now_ns(), memory_order_relaxed); /* independent */
}

/*
 * A die temperature that drifts: 45 C, a slow 4 C swing over a minute, and a
 * quarter degree of jitter, in millidegrees. Deterministic in time, so two
 * reads a few seconds apart differ.
 */
static uint32_t sim_temperature(uint64_t now_ns)
{
	double t = (double)now_ns / 1e9;
	double jitter = 250.0 * sin(t * 7.3) * cos(t * 3.1);
	return (uint32_t)(45000.0 + 4000.0 * sin(2.0 * M_PI * t / 60.0) + jitter);
}

/* Take a temperature sample and keep the highest since reset. */
static uint64_t sim_sample_temperature(struct sim_card *s, uint64_t now_ns)
{
	uint64_t t = sim_temperature(now_ns);
	uint64_t max = get(s, R_TEMP_MAX);
	while (t > max && !atomic_compare_exchange_weak_explicit(
			      &s->reg[R_TEMP_MAX], &max, t, memory_order_relaxed,
			      memory_order_relaxed)) /* independent */
		;
	return t;
}

static void sim_check_links(struct sim_card *s)
{
	uint64_t down = get(s, R_LINK_ENABLE) & get(s, R_FAULT_LINK_DOWN);
	if (down)
		atomic_fetch_or_explicit(&s->reg[R_ERRORS], SIM_ERR_LINK_DOWN,
					 memory_order_relaxed); /* independent register */
}

/* The link whose register bank holds `off`, with the offset inside it in `*reg`; or NULL. */
static struct sim_link *link_at(struct sim_card *s, uint64_t off, uint32_t *reg)
{
	if (off < SIM_LINK_BASE || off >= SIM_LINK_BASE + (uint64_t)s->base.links * SIM_LINK_STRIDE)
		return NULL;
	*reg = (uint32_t)((off - SIM_LINK_BASE) % SIM_LINK_STRIDE);
	return &s->link[(off - SIM_LINK_BASE) / SIM_LINK_STRIDE];
}

static uint64_t link_read(struct sim_link *l, uint32_t reg, unsigned width)
{
	bool wide = width == 64;
	switch (reg) {
	case SIM_LINK_FREE_ADDR:
		return wide ? atomic_load_explicit(&l->free_addr, memory_order_relaxed)
			    : UINT64_MAX;
	case SIM_LINK_FREE_LEVEL:
		/* relaxed: a level, as a status register is */
		return wide ? UINT64_MAX
			    : atomic_load_explicit(&l->fifo_head, memory_order_relaxed) -
				  atomic_load_explicit(&l->fifo_tail, memory_order_relaxed);
	case SIM_LINK_COMPL_ADDR:
		return wide ? atomic_load_explicit(&l->compl_addr, memory_order_relaxed)
			    : UINT64_MAX;
	case SIM_LINK_READY:
		/*
		 * acquire: the descriptors the card wrote before bumping the counter are
		 * visible to whoever reads it, as PCIe orders the card's posted writes
		 * before the completion of the host's read.
		 */
		return wide ? UINT64_MAX : atomic_load_explicit(&l->ready, memory_order_acquire);
	case SIM_LINK_PAGES:
		return wide ? atomic_load_explicit(&l->pages, memory_order_relaxed) : UINT64_MAX;
	case SIM_LINK_DROPPED:
		return wide ? atomic_load_explicit(&l->dropped, memory_order_relaxed) : UINT64_MAX;
	case SIM_LINK_DROPPED_BYTES:
		return wide ? atomic_load_explicit(&l->dropped_bytes, memory_order_relaxed)
			    : UINT64_MAX;
	case SIM_LINK_FREE_PUSH:
		return wide ? UINT64_MAX : 0;
	default:
		return rdo_mask(width);
	}
}

/* The host posts a free superpage: one entry of the link's FIFO, or an error bit when full. */
static void link_post(struct sim_card *s, struct sim_link *l, uint32_t size)
{
	while (atomic_flag_test_and_set_explicit(&s->post_lock, memory_order_acquire))
		; /* acquire: the previous poster's FIFO writes */
	uint32_t head = atomic_load_explicit(&l->fifo_head, memory_order_relaxed); /* ours */
	/* acquire: the generator has read the entry it frees before we overwrite it */
	uint32_t tail = atomic_load_explicit(&l->fifo_tail, memory_order_acquire);
	if (head - tail >= SIM_FIFO_DEPTH) {
		atomic_fetch_or_explicit(&s->reg[R_ERRORS], SIM_ERR_FIFO_FULL,
					 memory_order_relaxed); /* independent register */
	} else {
		l->fifo_bus[head % SIM_FIFO_DEPTH] =
		    atomic_load_explicit(&l->free_addr, memory_order_relaxed); /* ours */
		l->fifo_size[head % SIM_FIFO_DEPTH] = size;
		/* release: the entry before the generator sees it posted */
		atomic_store_explicit(&l->fifo_head, head + 1, memory_order_release);
	}
	atomic_flag_clear_explicit(&s->post_lock, memory_order_release); /* our FIFO writes */
}

static void link_write(struct sim_card *s, struct sim_link *l, uint32_t reg, unsigned width,
		       uint64_t val)
{
	bool wide = width == 64;
	if (reg == SIM_LINK_FREE_ADDR && wide)
		atomic_store_explicit(&l->free_addr, val,
				      memory_order_relaxed); /* posted with it */
	else if (reg == SIM_LINK_COMPL_ADDR && wide)
		atomic_store_explicit(&l->compl_addr, val, memory_order_relaxed); /* read at fill */
	else if (reg == SIM_LINK_FREE_PUSH && !wide)
		link_post(s, l, (uint32_t)val);
}

static uint64_t sim_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width)
{
	struct sim_card *s = to_sim(card);
	uint32_t lreg;
	struct sim_link *l = bar == 0 ? link_at(s, off, &lreg) : NULL;
	if (l)
		return (width == 32 || width == 64) ? link_read(l, lreg, width) & rdo_mask(width)
						    : rdo_mask(width);
	int r = bar == 0 && off % 4 == 0 ? s->index[off / 4] : -1;
	if (r < 0 || specs[r].width != width)
		return rdo_mask(width);
	uint64_t now = rdo_now_ns();
	uint64_t sum = 0;
	switch (r) {
	case R_RESET:
		return 0;
	case R_TEMPERATURE:
		return sim_sample_temperature(s, now);
	case R_TEMP_MAX:
		sim_sample_temperature(s, now);
		return get(s, R_TEMP_MAX);
	case R_UPTIME:
		return (now - atomic_load_explicit(&s->reset_ns, memory_order_relaxed)) /
		       1000000000u; /* independent */
	case R_LINK_STATUS:
		return get(s, R_LINK_ENABLE) & ~get(s, R_FAULT_LINK_DOWN) & s->link_mask;
	case R_DMA_STATUS:
		/* acquire: a host that sees the engine stopped also sees its flushed completions */
		return atomic_load_explicit(&s->running, memory_order_acquire) ? SIM_DMA_RUNNING
									       : 0;
	case R_DMA_DROPPED:
		for (unsigned i = 0; i < s->base.links; i++)
			sum += atomic_load_explicit(&s->link[i].dropped,
						    memory_order_relaxed); /* a counter */
		return sum;
	default:
		if (specs[r].access == SIM_WO)
			return 0;
		return get(s, r);
	}
}

static void sim_write(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		      uint64_t val)
{
	struct sim_card *s = to_sim(card);
	uint32_t lreg;
	struct sim_link *l = bar == 0 ? link_at(s, off, &lreg) : NULL;
	if (l) {
		link_write(s, l, lreg, width, val);
		return;
	}
	int r = bar == 0 && off % 4 == 0 ? s->index[off / 4] : -1;
	if (r < 0 || specs[r].width != width)
		return;
	switch (specs[r].access) {
	case SIM_RO:
		return;
	case SIM_W1C:
		atomic_fetch_and_explicit(&s->reg[r], ~val,
					  memory_order_relaxed); /* independent register */
		return;
	case SIM_WO:
		if (r == R_RESET && (val & SIM_RESET_CARD)) {
			sim_reset(s);
			sim_dma_reset(s);
		} else if (r == R_RESET && (val & SIM_RESET_DMA)) {
			/* The engine stops and forgets; its configuration stays. */
			atomic_fetch_and_explicit(&s->reg[R_DMA_CONTROL],
						  ~(uint64_t)(SIM_DMA_ENABLE | SIM_DMA_IRQ_ENABLE),
						  memory_order_relaxed); /* independent register */
			set(s, R_DMA_IRQ_COUNT, 0);
			set(s, R_DMA_OVERFLOWS, 0);
			sim_dma_reset(s);
		} else if (r == R_FAULT_CORRUPT) {
			atomic_fetch_add_explicit(&s->corrupt, (uint32_t)val,
						  memory_order_relaxed); /* a count */
		} else if (r == R_FAULT_OVERFLOW && val) {
			uint32_t enabled = (uint32_t)get(s, R_LINK_ENABLE);
			for (unsigned i = 0; i < s->base.links; i++)
				if (enabled & (1u << i))
					atomic_fetch_add_explicit(&s->link[i].overflow,
								  (uint32_t)val,
								  memory_order_relaxed); /* count */
			atomic_fetch_add_explicit(&s->reg[R_DMA_OVERFLOWS], 1,
						  memory_order_relaxed); /* a counter */
		}
		return;
	case SIM_RW:
		if (r == R_LINK_ENABLE || r == R_FAULT_LINK_DOWN || r == R_FAULT_STALL)
			val &= s->link_mask;
		if (r == R_DMA_CONTROL && (val & SIM_DMA_ENABLE))
			/* release: a host that then reads status sees the engine running */
			atomic_store_explicit(&s->running, true, memory_order_release);
		if (r == R_DMA_CONTROL)
			/* release: what the host set up in memory before it enables the engine */
			atomic_store_explicit(&s->reg[r], val, memory_order_release);
		else
			set(s, r, val);
		if (r == R_LINK_ENABLE || r == R_FAULT_LINK_DOWN)
			sim_check_links(s);
		return;
	}
}

/* The host memory at bus address `bus`, if `len` bytes there are DMA memory; else NULL. */
static void *sim_translate(struct sim_card *s, uint64_t bus, size_t len)
{
	/* acquire: a region's fields before its count */
	unsigned n = atomic_load_explicit(&s->nregions, memory_order_acquire);
	for (unsigned i = 0; i < n; i++) {
		struct sim_region *r = &s->region[i];
		if (atomic_load_explicit(&r->valid, memory_order_acquire) && /* fields before */
		    bus >= r->bus && rdo_range_fits(r->len, bus - r->bus, len))
			return (char *)r->va + (bus - r->bus);
	}
	return NULL;
}

static void dma_fault(struct sim_card *s)
{
	atomic_fetch_or_explicit(&s->reg[R_ERRORS], SIM_ERR_DMA_FAULT,
				 memory_order_relaxed); /* independent register */
}

/* Count the interrupt first: a handler it wakes must find itself counted. */
static void raise_irq(struct sim_card *s)
{
	uint64_t one = 1;
	/* relaxed: a counter; the eventfd write orders it before the wake-up */
	atomic_fetch_add_explicit(&s->reg[R_DMA_IRQ_COUNT], 1, memory_order_relaxed);
	if (write(s->irq_fd, &one, sizeof(one)) != sizeof(one))
		atomic_fetch_sub_explicit(&s->reg[R_DMA_IRQ_COUNT], 1,
					  memory_order_relaxed); /* not raised after all */
	s->irq_pending = 0;
}

/* Report the link's current superpage filled: descriptor into host memory, then the counter. */
static void link_complete(struct sim_card *s, struct sim_link *l, uint32_t flags, uint64_t now)
{
	uint32_t ready = atomic_load_explicit(&l->ready, memory_order_relaxed);	    /* ours */
	uint64_t ring = atomic_load_explicit(&l->compl_addr, memory_order_relaxed); /* set once */
	struct rdo_dma_completion *c =
	    sim_translate(s, ring + (uint64_t)(ready % SIM_FIFO_DEPTH) * sizeof(*c), sizeof(*c));
	if (!c) {
		dma_fault(s);
	} else {
		if (l->discontinuity)
			flags |= RDO_SP_DISCONTINUITY;
		*c = (struct rdo_dma_completion){
		    .bus = l->cur_bus, .length = l->cur_fill, .flags = l->cur_flags | flags};
		l->discontinuity = false;
		/* release: the superpage and its descriptor before the count that reports them */
		atomic_store_explicit(&l->ready, ready + 1, memory_order_release);
		if (s->irq_pending++ == 0)
			s->irq_first_ns = now;
	}
	l->cur = NULL;
}

/* Take the next posted superpage, skipping (and flagging) any that is not DMA memory. */
static bool link_take(struct sim_card *s, struct sim_link *l)
{
	uint32_t tail = atomic_load_explicit(&l->fifo_tail, memory_order_relaxed); /* ours */
	/* acquire: the host's entry before its head */
	while (tail != atomic_load_explicit(&l->fifo_head, memory_order_acquire)) {
		uint64_t bus = l->fifo_bus[tail % SIM_FIFO_DEPTH];
		uint32_t size = l->fifo_size[tail % SIM_FIFO_DEPTH];
		tail++;
		/* release: we have read the entry before the host may reuse it */
		atomic_store_explicit(&l->fifo_tail, tail, memory_order_release);
		unsigned char *va = size ? sim_translate(s, bus, size) : NULL;
		if (!va) {
			dma_fault(s);
			continue;
		}
		l->cur = va;
		l->cur_bus = bus;
		l->cur_size = size;
		l->cur_fill = 0;
		l->cur_flags = 0;
		return true;
	}
	return false;
}

static void link_drop(struct sim_link *l, uint64_t pages, uint64_t bytes)
{
	/* relaxed: counters, read by status */
	atomic_fetch_add_explicit(&l->pages, pages, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->dropped, pages, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->dropped_bytes, bytes, memory_order_relaxed);
	l->discontinuity = true;
}

/* What the generator reads of the registers once per round. */
struct sim_round {
	uint32_t control, slot, up, stall;
	uint64_t now, wall;
	bool limited; /* a rate or pulses bound the sources; else the host's pace does */
};

/*
 * Produce up to one superpage on link `i`: pages into the current superpage
 * while the source's budget lasts, dropped at the source when the host has
 * posted nothing. True if anything happened.
 */
static bool link_run(struct sim_card *s, unsigned i, const struct sim_round *rd)
{
	struct sim_link *l = &s->link[i];
	bool header_only = rd->control & SIM_DMA_HEADER_ONLY;
	bool work = false;
	for (;;) {
		if (rd->limited && l->budget < rd->slot)
			return work;
		if (!l->cur && !link_take(s, l)) {
			if (!rd->limited)
				return work;
			uint64_t n = (uint64_t)(l->budget / rd->slot);
			link_drop(l, n, n * rd->slot);
			l->budget -= (double)n * rd->slot;
			return true;
		}
		uint32_t room = (l->cur_size - l->cur_fill) / rd->slot;
		if (room == 0) {
			link_complete(s, l, RDO_SP_PARTIAL, rd->now);
			continue;
		}
		uint32_t n = room;
		if (rd->limited && l->budget < (double)n * rd->slot)
			n = (uint32_t)(l->budget / rd->slot);
		uint32_t lost =
		    atomic_load_explicit(&l->overflow, memory_order_relaxed); /* count */
		if (lost) {
			uint32_t k = lost < n ? lost : n;
			atomic_fetch_sub_explicit(&l->overflow, k,
						  memory_order_relaxed); /* count */
			link_drop(l, k, (uint64_t)k * rd->slot);
			l->budget -= (double)k * rd->slot;
			work = true;
			continue;
		}
		uint64_t counter = atomic_load_explicit(&l->pages, memory_order_relaxed); /* ours */
		for (uint32_t p = 0; p < n; p++) {
			unsigned char *page = l->cur + l->cur_fill + (size_t)p * rd->slot;
			uint32_t payload =
			    rd->control & SIM_DMA_VARIABLE_SIZE
				? rdo_page_variable_payload(counter + p, rd->slot)
				: rd->slot - (uint32_t)sizeof(struct rdo_page_header);
			if (header_only) {
				if (l->cur_fill == 0 && p == 0)
					rdo_page_write_header(page, i, counter, rd->slot, payload,
							      rd->wall);
				continue;
			}
			rdo_page_write(page, i, counter + p, rd->slot, payload, rd->wall);
			if (atomic_load_explicit(&s->corrupt, memory_order_relaxed) && /* count */
			    atomic_fetch_sub_explicit(&s->corrupt, 1, memory_order_relaxed) > 0)
				page[sizeof(struct rdo_page_header) + payload / 2] ^= 0x5a;
		}
		/* relaxed: a counter; the pages reach the host through the ready count */
		atomic_store_explicit(&l->pages, counter + n, memory_order_relaxed);
		l->cur_fill += n * rd->slot;
		if (header_only)
			l->cur_flags |= RDO_SP_HEADER_ONLY;
		l->budget -= (double)n * rd->slot;
		work = true;
		if (l->cur_size - l->cur_fill < rd->slot) {
			link_complete(s, l, 0, rd->now);
			return true;
		}
	}
}

/* Give every link its share of the rate, or its burst at each pulse. */
static void refill_budgets(struct sim_card *s, const struct sim_round *rd, unsigned enabled)
{
	double dt = s->last_ns ? (double)(rd->now - s->last_ns) / 1e9 : 0;
	s->last_ns = rd->now;
	bool pulse = false;
	double burst = (double)get(s, R_DMA_PULSE_BYTES);
	if (rd->control & SIM_DMA_PULSED) {
		uint64_t hz = get(s, R_DMA_PULSE_HZ) ? get(s, R_DMA_PULSE_HZ) : 1;
		if (rd->now >= s->next_pulse_ns) {
			pulse = true;
			s->next_pulse_ns = rd->now + 1000000000u / hz;
		}
	}
	double share = (double)get(s, R_DMA_RATE) / (enabled ? enabled : 1);
	/* A source holds at most 10 ms of data, or one superpage, or one burst. */
	double cap = share / 100 > 1048576 ? share / 100 : 1048576;
	for (unsigned i = 0; i < s->base.links; i++) {
		struct sim_link *l = &s->link[i];
		if (rd->control & SIM_DMA_PULSED)
			l->budget = pulse ? l->budget + burst : l->budget;
		else
			l->budget = l->budget + share * dt < cap ? l->budget + share * dt : cap;
		if (l->budget > 2 * burst && (rd->control & SIM_DMA_PULSED))
			l->budget = 2 * burst;
	}
}

static void sim_do_dma_reset(struct sim_card *s)
{
	for (unsigned i = 0; i < s->base.links; i++) {
		struct sim_link *l = &s->link[i];
		while (atomic_flag_test_and_set_explicit(&s->post_lock, memory_order_acquire))
			; /* acquire: posts in flight finish first */
		/* relaxed: the post lock and the reset ack order these */
		atomic_store_explicit(&l->fifo_head, 0, memory_order_relaxed);
		atomic_store_explicit(&l->fifo_tail, 0, memory_order_relaxed);
		atomic_flag_clear_explicit(&s->post_lock,
					   memory_order_release); /* the empty FIFO */
		atomic_store_explicit(&l->ready, 0, memory_order_relaxed);
		atomic_store_explicit(&l->pages, 0, memory_order_relaxed);
		atomic_store_explicit(&l->dropped, 0, memory_order_relaxed);
		atomic_store_explicit(&l->dropped_bytes, 0, memory_order_relaxed);
		atomic_store_explicit(&l->overflow, 0, memory_order_relaxed);
		l->cur = NULL;
		l->discontinuity = false;
		l->budget = 0;
	}
	atomic_store_explicit(&s->corrupt, 0, memory_order_relaxed); /* ordered by the ack */
	s->irq_pending = 0;
	s->last_ns = 0;
	s->next_pulse_ns = 0;
}

static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/*
 * The card's DMA engine and data sources. One round: read the registers,
 * let every enabled link produce, flush on disable or link down, signal the
 * interrupt as the coalescing registers say; sleep when nothing happened.
 */
static void *sim_generator(void *arg)
{
	struct sim_card *s = arg;
	uint64_t resets_done = 0;
	/* acquire: the host's requests (quit, reset) and what it wrote before them */
	while (!atomic_load_explicit(&s->quit, memory_order_acquire)) {
		uint64_t req = atomic_load_explicit(&s->dma_reset_req, memory_order_acquire);
		if (req != resets_done) {
			sim_do_dma_reset(s);
			resets_done = req;
			/* release: the reset before the host's wait ends */
			atomic_store_explicit(&s->dma_reset_done, req, memory_order_release);
		}
		struct sim_round rd = {
		    /* acquire: the host's set-up before it enabled the engine */
		    .control = (uint32_t)atomic_load_explicit(&s->reg[R_DMA_CONTROL],
							      memory_order_acquire),
		    .slot = (uint32_t)get(s, R_DMA_PAGE_SIZE),
		    .up = (uint32_t)(get(s, R_LINK_ENABLE) & ~get(s, R_FAULT_LINK_DOWN) &
				     s->link_mask),
		    .stall = (uint32_t)get(s, R_FAULT_STALL),
		    .now = rdo_now_ns(),
		};
		struct timespec wall;
		clock_gettime(CLOCK_REALTIME, &wall);
		rd.wall = (uint64_t)wall.tv_sec * 1000000000u + (uint64_t)wall.tv_nsec;
		rd.limited = (rd.control & SIM_DMA_PULSED) || get(s, R_DMA_RATE) != 0;
		bool enabled = rd.control & SIM_DMA_ENABLE;
		bool valid_slot =
		    rd.slot >= RDO_PAGE_MIN && rd.slot <= RDO_PAGE_MAX && rd.slot % 8 == 0;
		bool work = false;
		if (enabled && !valid_slot)
			dma_fault(s);
		unsigned nup = (unsigned)__builtin_popcount(rd.up);
		if (enabled && valid_slot)
			refill_budgets(s, &rd, nup);
		for (unsigned i = 0; i < s->base.links; i++) {
			struct sim_link *l = &s->link[i];
			bool up = rd.up & (1u << i);
			if (l->cur && (!enabled || !up)) {
				link_complete(s, l, RDO_SP_PARTIAL | (up ? 0 : RDO_SP_LINK_DOWN),
					      rd.now);
				work = true;
			}
			if (enabled && valid_slot && up && !(rd.stall & (1u << i)))
				work |= link_run(s, i, &rd);
		}
		uint32_t coalesce = (uint32_t)get(s, R_DMA_IRQ_COALESCE);
		uint64_t holdoff = get(s, R_DMA_IRQ_HOLDOFF) * 1000u;
		if (s->irq_pending && (rd.control & SIM_DMA_IRQ_ENABLE) &&
		    (s->irq_pending >= coalesce || !enabled || rd.now - s->irq_first_ns >= holdoff))
			raise_irq(s);
		if (enabled) {
			/*
			 * relaxed: the host set it when it enabled us; setting it again mends
			 * the race where we stored false after that, from an older round.
			 */
			atomic_store_explicit(&s->running, true, memory_order_relaxed);
			if (!work)
				sleep_us(rd.limited ? 200 : 20);
		} else {
			/* release: the flushed completions before the host sees the engine stopped
			 */
			atomic_store_explicit(&s->running, false, memory_order_release);
			s->last_ns = 0;
			sleep_us(500);
		}
	}
	return NULL;
}

static int sim_dma_alloc(struct rdo_card *card, size_t len, size_t granule, unsigned address_bits,
			 struct rdo_dma_buf *buf)
{
	(void)granule; /* one segment holds every granule */
	struct sim_card *s = to_sim(card);
	if (address_bits < 64 && s->next_bus + len > (1ull << address_bits)) {
		rdo_err("card %s: the emulator's bus addresses start at 0x%llx, above the %u-bit "
			"DMA mask of the register map: use a map for the emulated card",
			card->name, (unsigned long long)SIM_BUS_BASE, address_bits);
		return -ERANGE;
	}
	unsigned n = atomic_load_explicit(&s->nregions, memory_order_relaxed); /* host only */
	if (n == SIM_MAX_REGIONS) {
		rdo_err("card %s: the emulator maps at most %d DMA regions", card->name,
			SIM_MAX_REGIONS);
		return -ENOSPC;
	}
	struct sim_region *r = &s->region[n];
	const char *kind;
	int rc = rdo_hostmem_alloc(card->name, len, &r->va, &r->mapped, &kind);
	if (rc)
		return rc;
	r->len = len;
	r->bus = s->next_bus;
	s->next_bus += (r->mapped + (1u << 30) - 1) / (1u << 30) * (1u << 30);
	atomic_store_explicit(&r->valid, true, memory_order_release);	  /* fields before valid */
	atomic_store_explicit(&s->nregions, n + 1, memory_order_release); /* region before count */
	r->seg = (struct rdo_dma_seg){.off = 0, .len = len, .bus = r->bus};
	*buf = (struct rdo_dma_buf){
	    .va = r->va, .len = len, .nsegs = 1, .seg = &r->seg, .memory = kind, .priv = r};
	return 0;
}

/* The region stays in the table, invalid: a card that writes there now faults. */
static void sim_dma_free(struct rdo_card *card, struct rdo_dma_buf *buf)
{
	(void)card;
	struct sim_region *r = buf->priv;
	atomic_store_explicit(&r->valid, false, memory_order_release); /* before the unmap */
	rdo_hostmem_free(r->va, r->mapped);
}

static int sim_irq_fd(struct rdo_card *card)
{
	return to_sim(card)->irq_fd;
}

static struct rdo_card *sim_open(const struct rdo_card_opts *o)
{
	if (o->links < 1 || o->links > SIM_MAX_LINKS) {
		rdo_err("card %s: links: %u is out of range, the emulator has 1 to %u", o->name,
			o->links, SIM_MAX_LINKS);
		return NULL;
	}
	struct sim_card *s = calloc(1, sizeof(*s));
	if (!s) {
		rdo_err("card %s: out of memory", o->name);
		return NULL;
	}
	s->base.nbars = 1;
	s->base.bar_size[0] = SIM_BAR0_SIZE;
	s->base.links = o->links;
	s->link_mask = (uint32_t)rdo_mask(o->links);
	s->next_bus = SIM_BUS_BASE;
	atomic_flag_clear(&s->post_lock);
	for (size_t i = 0; i < RDO_ARRAY_SIZE(s->index); i++)
		s->index[i] = -1;
	for (int r = 0; r < R_COUNT; r++) {
		s->index[specs[r].off / 4] = (int8_t)r;
		s->reset[r] = specs[r].reset;
	}
	s->reset[R_IDENTITY] = o->identity;
	s->reset[R_FIRMWARE] = o->fw_version;
	s->reset[R_SERIAL] = o->serial;
	s->reset[R_LINK_COUNT] = o->links;
	s->reset[R_DMA_RATE] = o->sim_rate;
	s->reset[R_DMA_PULSE_HZ] = o->sim_pulse_hz;
	s->reset[R_DMA_PULSE_BYTES] = o->sim_pulse_bytes;
	s->reset[R_DMA_CONTROL] = (o->sim_pulsed ? SIM_DMA_PULSED : 0) |
				  (o->sim_header_only ? SIM_DMA_HEADER_ONLY : 0) |
				  (o->sim_variable_size ? SIM_DMA_VARIABLE_SIZE : 0);
	sim_reset(s);
	s->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (s->irq_fd < 0) {
		rdo_err("card %s: cannot create the interrupt eventfd: %s", o->name,
			strerror(errno));
		goto fail;
	}
	int rc = pthread_create(&s->thread, NULL, sim_generator, s);
	if (rc) {
		rdo_err("card %s: cannot start the emulator thread: %s", o->name, strerror(rc));
		goto fail_fd;
	}
	pthread_setname_np(s->thread, "rdo-sim");
	rdo_info("card %s: emulated card, %u links, firmware %u.%u.%u, serial 0x%016llx", o->name,
		 o->links, o->fw_version >> 24, (o->fw_version >> 16) & 0xff,
		 o->fw_version & 0xffff, (unsigned long long)o->serial);
	s->base.numa_node = -1;
	return &s->base;
fail_fd:
	close(s->irq_fd);
fail:
	free(s);
	return NULL;
}

static void sim_close(struct rdo_card *card)
{
	struct sim_card *s = to_sim(card);
	atomic_store_explicit(&s->quit, true, memory_order_release); /* nothing to order: a flag */
	pthread_join(s->thread, NULL);
	close(s->irq_fd);
	free(s);
}

const struct rdo_card_ops rdo_card_sim_ops = {
    .name = "sim",
    .open = sim_open,
    .close = sim_close,
    .read = sim_read,
    .write = sim_write,
    .dma_alloc = sim_dma_alloc,
    .dma_free = sim_dma_free,
    .irq_fd = sim_irq_fd,
};
