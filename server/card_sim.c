/*
 * The emulated readout card. Its registers live in an array of atomics, one
 * per register, so any thread may access the card the way any thread may issue
 * an MMIO on real hardware. The DMA engine behind the dma bank arrives with
 * the data-path work; until then those registers hold what is written.
 */
#include "card_sim.h"

#include <errno.h>
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>

#include "card.h"
#include "log.h"
#include "util.h"

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
	R_DMA_CONTROL,
	R_DMA_STATUS,
	R_DMA_RATE,
	R_DMA_PAGE_SIZE,
	R_DMA_IRQ_COALESCE,
	R_DMA_DROPPED,
	R_COUNT
};

/* Reset values of identity, firmware, serial and link count come from the opts. */
static const struct sim_reg_spec specs[R_COUNT] = {
	[R_IDENTITY] = { SIM_ID_IDENTITY, 32, SIM_RO, 0 },
	[R_FIRMWARE] = { SIM_ID_FIRMWARE, 32, SIM_RO, 0 },
	[R_SERIAL] = { SIM_ID_SERIAL, 64, SIM_RO, 0 },
	[R_SCRATCH] = { SIM_ID_SCRATCH, 32, SIM_RW, 0 },
	[R_CONFIG] = { SIM_CTRL_CONFIG, 32, SIM_RW, 0x10 },
	[R_RESET] = { SIM_CTRL_RESET, 32, SIM_WO, 0 },
	[R_STATUS] = { SIM_CTRL_STATUS, 32, SIM_RO, 0x3 },
	[R_ERRORS] = { SIM_CTRL_ERRORS, 32, SIM_W1C, SIM_ERR_POWER_ON },
	[R_TEMPERATURE] = { SIM_MON_TEMPERATURE, 32, SIM_RO, 0 },
	[R_TEMP_MAX] = { SIM_MON_TEMP_MAX, 32, SIM_RO, 0 },
	[R_UPTIME] = { SIM_MON_UPTIME, 32, SIM_RO, 0 },
	[R_LINK_COUNT] = { SIM_LINK_COUNT, 32, SIM_RO, 0 },
	[R_LINK_ENABLE] = { SIM_LINK_ENABLE, 32, SIM_RW, 0 },
	[R_LINK_STATUS] = { SIM_LINK_STATUS, 32, SIM_RO, 0 },
	[R_FAULT_LINK_DOWN] = { SIM_FAULT_LINK_DOWN, 32, SIM_RW, 0 },
	[R_DMA_CONTROL] = { SIM_DMA_CONTROL, 32, SIM_RW, 0 },
	[R_DMA_STATUS] = { SIM_DMA_STATUS, 32, SIM_RO, 0 },
	[R_DMA_RATE] = { SIM_DMA_RATE, 64, SIM_RW, 0 },
	[R_DMA_PAGE_SIZE] = { SIM_DMA_PAGE_SIZE, 32, SIM_RW, 8192 },
	[R_DMA_IRQ_COALESCE] = { SIM_DMA_IRQ_COALESCE, 32, SIM_RW, 1 },
	[R_DMA_DROPPED] = { SIM_DMA_DROPPED, 64, SIM_RO, 0 },
};

struct sim_card {
	struct rdo_card base;
	uint64_t reset[R_COUNT];
	_Atomic uint64_t reg[R_COUNT];
	_Atomic uint64_t reset_ns; /* when the card last came out of reset */
	uint32_t link_mask;	   /* the bits of the links this card has */
	int8_t index[SIM_BAR0_SIZE / 4]; /* register starting at offset 4*i, or -1 */
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
	while (t > max && !atomic_compare_exchange_weak_explicit(&s->reg[R_TEMP_MAX], &max, t,
								 memory_order_relaxed,
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

static uint64_t sim_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width)
{
	struct sim_card *s = to_sim(card);
	int r = bar == 0 && off % 4 == 0 ? s->index[off / 4] : -1;
	if (r < 0 || specs[r].width != width)
		return rdo_mask(width);
	uint64_t now = rdo_now_ns();
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
		if (r == R_RESET && (val & SIM_RESET_CARD))
			sim_reset(s);
		else if (r == R_RESET && (val & SIM_RESET_DMA))
			for (int d = R_DMA_CONTROL; d <= R_DMA_DROPPED; d++)
				set(s, d, s->reset[d]);
		return;
	case SIM_RW:
		if (r == R_LINK_ENABLE || r == R_FAULT_LINK_DOWN)
			val &= s->link_mask;
		set(s, r, val);
		if (r == R_LINK_ENABLE || r == R_FAULT_LINK_DOWN)
			sim_check_links(s);
		return;
	}
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
	sim_reset(s);
	rdo_info("card %s: emulated card, %u links, firmware %u.%u.%u, serial 0x%016llx", o->name,
		 o->links, o->fw_version >> 24, (o->fw_version >> 16) & 0xff,
		 o->fw_version & 0xffff, (unsigned long long)o->serial);
	return &s->base;
}

static void sim_close(struct rdo_card *card)
{
	free(to_sim(card));
}

const struct rdo_card_ops rdo_card_sim_ops = {
	.name = "sim",
	.open = sim_open,
	.close = sim_close,
	.read = sim_read,
	.write = sim_write,
};
