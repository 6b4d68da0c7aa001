#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "card/card.h"
#include "card/card_sim.h"
#include "card/superpage_proto.h"
#include "common/log.h"
#include "common/page.h"
#include "common/util.h"

static struct rdo_card *open_sim(unsigned links)
{
	struct rdo_card_opts o;
	rdo_card_opts_init(&o);
	o.links = links;
	struct rdo_card *card = rdo_card_open(&o);
	cr_assert_not_null(card);
	return card;
}

static uint64_t rd(struct rdo_card *card, uint64_t off, unsigned width)
{
	uint64_t v = 0xbad;
	int rc = rdo_card_read(card, 0, off, width, &v);
	cr_assert_eq(rc, 0, "read bar0:0x%llx/%u: %d", (unsigned long long)off, width, rc);
	return v;
}

static uint32_t rd32(struct rdo_card *card, uint64_t off)
{
	return (uint32_t)rd(card, off, 32);
}

static void wr32(struct rdo_card *card, uint64_t off, uint64_t val)
{
	int rc = rdo_card_write(card, 0, off, 32, val);
	cr_assert_eq(rc, 0, "write bar0:0x%llx: %d", (unsigned long long)off, rc);
}

static void quiet(void)
{
	rdo_log_set_level(LOG_WARNING);
}

TestSuite(card_sim, .init = quiet);

Test(card_sim, opts_defaults)
{
	struct rdo_card_opts o;
	rdo_card_opts_init(&o);
	cr_assert_str_eq(o.backend, "sim");
	cr_assert_str_eq(o.name, "sim0");
	cr_assert_eq(o.links, 12);
	cr_assert_eq(o.identity, 0x52444f31);
}

Test(card_sim, open_defaults)
{
	struct rdo_card_opts o;
	rdo_card_opts_init(&o);
	struct rdo_card *card = rdo_card_open(&o);
	cr_assert_not_null(card);
	cr_assert_eq(card->ops, &rdo_card_sim_ops);
	cr_assert_str_eq(card->name, "sim0");
	cr_assert_str_eq(card->address, "sim");
	cr_assert_eq(card->links, 12);
	cr_assert_eq(card->nbars, 1);
	cr_assert_eq(card->bar_size[0], SIM_BAR0_SIZE);
	cr_assert_eq(card->bar_size[1], 0);
	cr_assert_eq(rd32(card, SIM_LINK_COUNT), 12);
	rdo_card_close(&card);
	cr_assert_null(card);
	rdo_card_close(&card);
}

Test(card_sim, identity_firmware_serial_from_opts)
{
	struct rdo_card_opts o;
	rdo_card_opts_init(&o);
	cr_assert_eq(o.fw_version, 0x01020003);
	cr_assert_eq(o.serial, 0x5244000000000001ull);
	struct rdo_card *card = rdo_card_open(&o);
	cr_assert_eq(rd32(card, SIM_ID_IDENTITY), o.identity);
	cr_assert_eq(rd32(card, SIM_ID_FIRMWARE), o.fw_version);
	cr_assert_eq(rd(card, SIM_ID_SERIAL, 64), o.serial);
	rdo_card_close(&card);

	o.identity = 0xcafe0001;
	o.fw_version = 0x02000007;
	o.serial = 0x0123456789abcdefull;
	o.links = 3;
	card = rdo_card_open(&o);
	cr_assert_not_null(card);
	cr_assert_eq(rd32(card, SIM_ID_IDENTITY), 0xcafe0001);
	cr_assert_eq(rd32(card, SIM_ID_FIRMWARE), 0x02000007);
	cr_assert_eq(rd(card, SIM_ID_SERIAL, 64), 0x0123456789abcdefull);
	cr_assert_eq(rd32(card, SIM_LINK_COUNT), 3);
	rdo_card_close(&card);
}

Test(card_sim, scratch_is_rw)
{
	struct rdo_card *card = open_sim(12);
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0);
	wr32(card, SIM_ID_SCRATCH, 0xa5a5f00d);
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0xa5a5f00d);
	wr32(card, SIM_ID_SCRATCH, 0);
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0);
	rdo_card_close(&card);
}

Test(card_sim, write_truncated_to_width)
{
	struct rdo_card *card = open_sim(12);
	cr_assert_eq(rdo_card_write(card, 0, SIM_ID_SCRATCH, 32, 0x1122334455667788ull), 0);
	cr_assert_eq(rd(card, SIM_ID_SCRATCH, 32), 0x55667788);
	rdo_card_close(&card);
}

Test(card_sim, ro_writes_ignored)
{
	struct rdo_card *card = open_sim(12);
	static const uint32_t ro[] = {SIM_ID_IDENTITY, SIM_ID_FIRMWARE, SIM_CTRL_STATUS,
				      SIM_LINK_COUNT, SIM_DMA_STATUS};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(ro); i++) {
		uint32_t before = rd32(card, ro[i]);
		wr32(card, ro[i], ~before);
		cr_assert_eq(rd32(card, ro[i]), before, "0x%x changed", ro[i]);
	}
	uint64_t serial = rd(card, SIM_ID_SERIAL, 64);
	cr_assert_eq(rdo_card_write(card, 0, SIM_ID_SERIAL, 64, 0), 0);
	cr_assert_eq(rd(card, SIM_ID_SERIAL, 64), serial);
	cr_assert_eq(rd32(card, SIM_CTRL_STATUS), 0x3, "ready and clock_locked");
	rdo_card_close(&card);
}

Test(card_sim, reset_register_reads_zero)
{
	struct rdo_card *card = open_sim(12);
	cr_assert_eq(rd32(card, SIM_CTRL_RESET), 0);
	wr32(card, SIM_CTRL_RESET, 0xfffffffc); /* no action bit */
	cr_assert_eq(rd32(card, SIM_CTRL_RESET), 0);
	rdo_card_close(&card);
}

Test(card_sim, card_reset_restores_registers)
{
	struct rdo_card *card = open_sim(12);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS) & SIM_ERR_POWER_ON, 0);
	wr32(card, SIM_ID_SCRATCH, 0x1234);
	wr32(card, SIM_CTRL_CONFIG, 0x3);
	wr32(card, SIM_LINK_ENABLE, 0x7);
	wr32(card, SIM_DMA_PAGE_SIZE, 4096);

	wr32(card, SIM_CTRL_RESET, SIM_RESET_CARD);
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0);
	cr_assert_eq(rd32(card, SIM_CTRL_CONFIG), 0x10);
	cr_assert_eq(rd32(card, SIM_LINK_ENABLE), 0);
	cr_assert_eq(rd32(card, SIM_DMA_PAGE_SIZE), 8192);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_POWER_ON, "power_on is set again");
	cr_assert_eq(rd32(card, SIM_ID_IDENTITY), 0x52444f31, "identity survives a reset");
	cr_assert_eq(rd32(card, SIM_LINK_COUNT), 12);
	cr_assert_lt(rd32(card, SIM_MON_UPTIME), 2);
	rdo_card_close(&card);
}

Test(card_sim, dma_reset_touches_dma_only)
{
	struct rdo_card *card = open_sim(12);
	wr32(card, SIM_ID_SCRATCH, 0x55);
	wr32(card, SIM_DMA_IRQ_COALESCE, 8);
	wr32(card, SIM_DMA_CONTROL, 0x7);
	wr32(card, SIM_CTRL_RESET, SIM_RESET_DMA);
	cr_assert_eq(rd32(card, SIM_DMA_CONTROL), 0x4, "the engine stops, pulsed mode stays");
	cr_assert_eq(rd32(card, SIM_DMA_IRQ_COALESCE), 8, "configuration survives");
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0x55);
	rdo_card_close(&card);
}

Test(card_sim, errors_w1c)
{
	struct rdo_card *card = open_sim(4);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_POWER_ON, "power_on after open");
	wr32(card, SIM_LINK_ENABLE, 0x1);
	wr32(card, SIM_FAULT_LINK_DOWN, 0x1);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_POWER_ON | SIM_ERR_LINK_DOWN);

	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_LINK_DOWN, "only power_on cleared");
	wr32(card, SIM_CTRL_ERRORS, 0);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_LINK_DOWN, "writing 0 clears nothing");
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_LINK_DOWN);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0);
	wr32(card, SIM_CTRL_ERRORS, 0xffffffff);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0, "writing 1 never sets a bit");
	rdo_card_close(&card);
}

Test(card_sim, link_enable_masked_to_link_count)
{
	struct rdo_card *card = open_sim(4);
	wr32(card, SIM_LINK_ENABLE, 0xffff);
	cr_assert_eq(rd32(card, SIM_LINK_ENABLE), 0xf);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0xf);
	wr32(card, SIM_FAULT_LINK_DOWN, 0xffffffff);
	cr_assert_eq(rd32(card, SIM_FAULT_LINK_DOWN), 0xf);
	rdo_card_close(&card);

	card = open_sim(32);
	wr32(card, SIM_LINK_ENABLE, 0xffffffff);
	cr_assert_eq(rd32(card, SIM_LINK_ENABLE), 0xffffffff);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0xffffffff);
	rdo_card_close(&card);
}

Test(card_sim, link_status_is_enable_and_not_down)
{
	struct rdo_card *card = open_sim(12);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0, "no link enabled after open");
	wr32(card, SIM_LINK_ENABLE, 0x0f0);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0x0f0);
	wr32(card, SIM_FAULT_LINK_DOWN, 0x030);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0x0c0);
	wr32(card, SIM_LINK_ENABLE, 0xfff);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0xfcf);
	wr32(card, SIM_FAULT_LINK_DOWN, 0);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0xfff);
	rdo_card_close(&card);
}

Test(card_sim, forced_down_link_sets_error)
{
	struct rdo_card *card = open_sim(12);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	wr32(card, SIM_FAULT_LINK_DOWN, 0x2);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0, "a disabled link going down is no error");
	wr32(card, SIM_FAULT_LINK_DOWN, 0);
	wr32(card, SIM_LINK_ENABLE, 0x1);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0);
	wr32(card, SIM_FAULT_LINK_DOWN, 0x1);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_LINK_DOWN);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_LINK_DOWN);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0);
	/* Enabling a link that is forced down raises it too. */
	wr32(card, SIM_LINK_ENABLE, 0x0);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_LINK_DOWN);
	wr32(card, SIM_LINK_ENABLE, 0x1);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_LINK_DOWN);
	rdo_card_close(&card);
}

Test(card_sim, temperature_max_is_a_sample_from_the_start)
{
	struct rdo_card *card = open_sim(12);
	cr_assert_geq(rd32(card, SIM_MON_TEMP_MAX), 30000,
		      "temperature_max read first must not be 0");
	rdo_card_close(&card);
}

Test(card_sim, temperature)
{
	struct rdo_card *card = open_sim(12);
	uint32_t t0 = rd32(card, SIM_MON_TEMPERATURE);
	cr_assert(t0 >= 30000 && t0 <= 60000, "temperature %u m°C", t0);
	uint32_t max0 = rd32(card, SIM_MON_TEMP_MAX);
	cr_assert_geq(max0, t0);

	struct timespec ts = {.tv_sec = 1, .tv_nsec = 500000000};
	nanosleep(&ts, NULL);
	uint32_t t1 = rd32(card, SIM_MON_TEMPERATURE);
	cr_assert(t1 >= 30000 && t1 <= 60000, "temperature %u m°C", t1);
	cr_assert_neq(t1, t0, "the temperature should drift over 1.5 s");
	uint32_t max1 = rd32(card, SIM_MON_TEMP_MAX);
	cr_assert_geq(max1, t1);
	cr_assert_geq(max1, t0);
	cr_assert_geq(rd32(card, SIM_MON_UPTIME), 1);
	uint32_t t = rd32(card, SIM_MON_TEMPERATURE);
	wr32(card, SIM_MON_TEMP_MAX, 0);
	cr_assert_geq(rd32(card, SIM_MON_TEMP_MAX), t, "temperature_max is read-only");
	rdo_card_close(&card);
}

Test(card_sim, unclaimed_offset)
{
	struct rdo_card *card = open_sim(12);
	static const uint32_t holes[] = {0x0014, 0x0110, 0x0800, 0xfffc};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(holes); i++) {
		cr_assert_eq(rd32(card, holes[i]), 0xffffffff, "0x%x", holes[i]);
		wr32(card, holes[i], 0x12345678);
		cr_assert_eq(rd32(card, holes[i]), 0xffffffff, "0x%x kept a write", holes[i]);
	}
	cr_assert_eq(rd(card, 0x0800, 64), UINT64_MAX);
	cr_assert_eq(rd(card, 0x0801, 8), 0xff);
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0, "a write to a hole landed elsewhere");
	cr_assert_eq(rd32(card, SIM_CTRL_CONFIG), 0x10);
	rdo_card_close(&card);
}

Test(card_sim, wrong_width_access)
{
	struct rdo_card *card = open_sim(12);
	wr32(card, SIM_ID_SCRATCH, 0x11223344);
	cr_assert_eq(rd(card, SIM_ID_SCRATCH, 16), 0xffff);
	cr_assert_eq(rd(card, SIM_ID_SCRATCH, 8), 0xff);
	cr_assert_eq(rd(card, SIM_ID_SCRATCH, 64), UINT64_MAX);
	cr_assert_eq(rd(card, SIM_ID_SERIAL, 32), 0xffffffff, "serial is 64 bits wide");
	cr_assert_eq(rd(card, SIM_ID_SERIAL + 4, 32), 0xffffffff);
	cr_assert_eq(rdo_card_write(card, 0, SIM_ID_SCRATCH, 16, 0), 0);
	cr_assert_eq(rdo_card_write(card, 0, SIM_ID_SCRATCH, 64, 0), 0);
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0x11223344, "a wrong-width write is ignored");
	cr_assert_eq(rdo_card_write(card, 0, SIM_DMA_RATE, 64, 1000000), 0);
	cr_assert_eq(rd(card, SIM_DMA_RATE, 64), 1000000);
	cr_assert_eq(rd(card, SIM_DMA_RATE, 32), 0xffffffff);
	rdo_card_close(&card);
}

Test(card_sim, check_bounds_and_alignment)
{
	struct rdo_card *card = open_sim(12);
	cr_assert_eq(rdo_card_check(card, 0, 0, 32), 0);
	cr_assert_eq(rdo_card_check(card, 0, SIM_BAR0_SIZE - 4, 32), 0);
	cr_assert_eq(rdo_card_check(card, 0, SIM_BAR0_SIZE - 8, 64), 0);
	cr_assert_eq(rdo_card_check(card, 0, SIM_BAR0_SIZE - 1, 8), 0);
	cr_assert_eq(rdo_card_check(card, 0, SIM_BAR0_SIZE, 32), -ERANGE);
	cr_assert_eq(rdo_card_check(card, 0, SIM_BAR0_SIZE, 8), -ERANGE);
	cr_assert_eq(rdo_card_check(card, 0, 0x100000000ull, 32), -ERANGE);
	cr_assert_eq(rdo_card_check(card, 0, UINT64_MAX - 7, 64), -ERANGE);
	cr_assert_eq(rdo_card_check(card, 2, 0, 32), -ENODEV);
	cr_assert_eq(rdo_card_check(card, 1, 0, 32), -ENODEV);
	cr_assert_eq(rdo_card_check(card, RDO_CARD_MAX_BARS, 0, 32), -ENODEV);
	cr_assert_eq(rdo_card_check(card, 0, 0x2, 32), -EINVAL);
	cr_assert_eq(rdo_card_check(card, 0, 0x4, 64), -EINVAL);
	cr_assert_eq(rdo_card_check(card, 0, 0x1, 16), -EINVAL);
	cr_assert_eq(rdo_card_check(card, 0, 0x0, 24), -EINVAL);
	cr_assert_eq(rdo_card_check(card, 0, 0x0, 0), -EINVAL);
	cr_assert_eq(rdo_card_check(card, 0, 0x0, 128), -EINVAL);
	rdo_card_close(&card);
}

Test(card_sim, checked_access_refuses)
{
	struct rdo_card *card = open_sim(12);
	uint64_t v = 0xabc;
	cr_assert_eq(rdo_card_read(card, 0, SIM_BAR0_SIZE, 32, &v), -ERANGE);
	cr_assert_eq(rdo_card_read(card, 2, 0, 32, &v), -ENODEV);
	cr_assert_eq(rdo_card_read(card, 0, SIM_ID_SCRATCH + 2, 32, &v), -EINVAL);
	cr_assert_eq(rdo_card_read(card, 0, SIM_ID_SCRATCH, 24, &v), -EINVAL);
	cr_assert_eq(v, 0xabc, "a refused read leaves the value alone");
	cr_assert_eq(rdo_card_write(card, 0, SIM_BAR0_SIZE, 32, 1), -ERANGE);
	cr_assert_eq(rdo_card_write(card, 2, SIM_ID_SCRATCH, 32, 1), -ENODEV);
	cr_assert_eq(rdo_card_write(card, 0, SIM_ID_SCRATCH + 2, 32, 1), -EINVAL);
	cr_assert_eq(rdo_card_write(card, 0, SIM_ID_SCRATCH, 24, 1), -EINVAL);
	cr_assert_eq(rd32(card, SIM_ID_SCRATCH), 0, "a refused write changed scratch");
	rdo_card_close(&card);
}

Test(card_sim, links_out_of_range)
{
	struct rdo_card_opts o;
	rdo_card_opts_init(&o);
	o.links = 0;
	cr_assert_null(rdo_card_open(&o));
	o.links = 33;
	cr_assert_null(rdo_card_open(&o));
	o.links = 1;
	struct rdo_card *card = rdo_card_open(&o);
	cr_assert_not_null(card);
	wr32(card, SIM_LINK_ENABLE, 0xff);
	cr_assert_eq(rd32(card, SIM_LINK_ENABLE), 0x1);
	rdo_card_close(&card);
}

Test(card_sim, unknown_backend)
{
	struct rdo_card_opts o;
	rdo_card_opts_init(&o);
	rdo_strlcpy(o.backend, "shim", sizeof(o.backend));
	cr_assert_null(rdo_card_open(&o));
	o.backend[0] = '\0';
	cr_assert_null(rdo_card_open(&o));
}

/* The DMA engine at register level: the test plays the host side of the superpage protocol. */

#define SLOT	   1024u
#define SP_PAGES   16u
#define SP_SIZE	   (SLOT * SP_PAGES)
#define NSP	   8u
#define RING_BYTES (SIM_FIFO_DEPTH * sizeof(struct rdo_dma_completion))

/* One link's host side: superpages and a completion ring in the card's DMA memory. */
struct host {
	struct rdo_card *card;
	unsigned link;
	struct rdo_dma_buf mem, ring;
	struct rdo_dma_completion *desc; /* the completion ring */
};

static void wr64(struct rdo_card *card, uint64_t off, uint64_t val)
{
	int rc = rdo_card_write(card, 0, off, 64, val);
	cr_assert_eq(rc, 0, "write bar0:0x%llx: %d", (unsigned long long)off, rc);
}

static uint64_t link_reg(unsigned link, uint32_t reg)
{
	return SIM_LINK_BASE + (uint64_t)link * SIM_LINK_STRIDE + reg;
}

static void host_init(struct host *h, struct rdo_card *card, unsigned link)
{
	memset(h, 0, sizeof(*h));
	h->card = card;
	h->link = link;
	cr_assert_eq(rdo_card_dma_alloc(card, (size_t)SP_SIZE * NSP, SP_SIZE, 64, &h->mem), 0);
	cr_assert_eq(rdo_card_dma_alloc(card, RING_BYTES, RING_BYTES, 64, &h->ring), 0);
	cr_assert_geq(h->mem.seg[0].bus, SIM_BUS_BASE);
	cr_assert_neq(h->mem.seg[0].bus, h->ring.seg[0].bus);
	memset(h->mem.va, 0xee, (size_t)SP_SIZE * NSP);
	memset(h->ring.va, 0, RING_BYTES);
	h->desc = h->ring.va;
	wr64(card, link_reg(link, SIM_LINK_COMPL_ADDR), h->ring.seg[0].bus);
	cr_assert_eq(rd(card, link_reg(link, SIM_LINK_COMPL_ADDR), 64), h->ring.seg[0].bus);
	wr32(card, SIM_DMA_PAGE_SIZE, SLOT);
	wr64(card, SIM_DMA_RATE, 0); /* the host sets the pace, unless a test sets a rate */
	wr32(card, SIM_LINK_ENABLE, rd32(card, SIM_LINK_ENABLE) | (1u << link));
}

static void host_fini(struct host *h)
{
	wr32(h->card, SIM_DMA_CONTROL, 0);
	wr32(h->card, SIM_CTRL_RESET, SIM_RESET_DMA);
	rdo_card_dma_free(h->card, &h->mem);
	rdo_card_dma_free(h->card, &h->ring);
}

/* A card of `links` links with the host side of `link` set up on it. */
static struct rdo_card *host_open(struct host *h, unsigned links, unsigned link)
{
	host_init(h, open_sim(links), link);
	return h->card;
}

static void host_close(struct host *h)
{
	host_fini(h);
	rdo_card_close(&h->card);
}

/* A card of `links` links with the host side of links 0 and 1. */
static struct rdo_card *hosts_open(struct host *h0, struct host *h1, unsigned links)
{
	host_open(h0, links, 0);
	host_init(h1, h0->card, 1);
	return h0->card;
}

static void hosts_close(struct host *h0, struct host *h1)
{
	host_fini(h1);
	host_close(h0);
}

static uint64_t sp_bus(const struct host *h, unsigned i)
{
	return h->mem.seg[0].bus + (uint64_t)i * SP_SIZE;
}

static unsigned char *sp_va(const struct host *h, unsigned i)
{
	return (unsigned char *)h->mem.va + (size_t)i * SP_SIZE;
}

/* The superpage whose bus address a descriptor names. */
static unsigned char *bus_va(const struct host *h, uint64_t bus)
{
	cr_assert(bus >= h->mem.seg[0].bus && bus < h->mem.seg[0].bus + (uint64_t)SP_SIZE * NSP &&
		      (bus - h->mem.seg[0].bus) % SP_SIZE == 0,
		  "descriptor names bus address 0x%llx, not a posted superpage",
		  (unsigned long long)bus);
	return (unsigned char *)h->mem.va + (bus - h->mem.seg[0].bus);
}

static void post_bus(struct rdo_card *card, unsigned link, uint64_t bus, uint32_t size)
{
	wr64(card, link_reg(link, SIM_LINK_FREE_ADDR), bus);
	wr32(card, link_reg(link, SIM_LINK_FREE_PUSH), size);
}

static void post(const struct host *h, unsigned i)
{
	post_bus(h->card, h->link, sp_bus(h, i), SP_SIZE);
}

static uint32_t ready(const struct host *h)
{
	return rd32(h->card, link_reg(h->link, SIM_LINK_READY));
}

static uint64_t link_counter(struct rdo_card *card, unsigned link, uint32_t reg)
{
	return rd(card, link_reg(link, reg), 64);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Wait until register `off` (32 bits) reads at least `want`; fail after 5 s. */
static uint32_t wait_at_least(struct rdo_card *card, uint64_t off, uint32_t want)
{
	uint32_t v = 0;
	for (int i = 0; i < 5000; i++) {
		v = rd32(card, off);
		if (v >= want)
			return v;
		sleep_ms(1);
	}
	cr_assert_fail("bar0:0x%llx reads %u after 5 s, expected at least %u",
		       (unsigned long long)off, v, want);
	return v;
}

static void wait_ready(const struct host *h, uint32_t want)
{
	wait_at_least(h->card, link_reg(h->link, SIM_LINK_READY), want);
}

/* Wait until a 64-bit link counter reaches `want`; fail after 5 s. */
static void wait_counter(struct rdo_card *card, unsigned link, uint32_t reg, uint64_t want)
{
	for (int i = 0; i < 5000; i++) {
		if (link_counter(card, link, reg) >= want)
			return;
		sleep_ms(1);
	}
	cr_assert_fail("dma_link%u+0x%x reads %llu after 5 s, expected at least %llu", link, reg,
		       (unsigned long long)link_counter(card, link, reg), (unsigned long long)want);
}

/* Disable the engine and wait until it has flushed: status.running reads 0. */
static void disable_and_wait(struct rdo_card *card)
{
	wr32(card, SIM_DMA_CONTROL, rd32(card, SIM_DMA_CONTROL) & ~SIM_DMA_ENABLE);
	for (int i = 0; i < 5000 && (rd32(card, SIM_DMA_STATUS) & SIM_DMA_RUNNING); i++)
		sleep_ms(1);
	cr_assert_eq(rd32(card, SIM_DMA_STATUS) & SIM_DMA_RUNNING, 0,
		     "status.running still 1 5 s after disable");
}

/* Post superpages 0 to n-1, run the engine with `control` until all are filled, disable it. */
static void fill(const struct host *h, unsigned n, uint32_t control)
{
	for (unsigned i = 0; i < n; i++)
		post(h, i);
	wr32(h->card, SIM_DMA_CONTROL, SIM_DMA_ENABLE | control);
	wait_ready(h, n);
	disable_and_wait(h->card);
}

static struct rdo_page_header page_header(const unsigned char *p)
{
	struct rdo_page_header hd;
	memcpy(&hd, p, sizeof(hd));
	return hd;
}

/*
 * Check every page of a filled superpage of `len` bytes: valid, on `link`,
 * payload as the pattern, counters continuing from `*next`. Returns the pages.
 */
static unsigned check_pages(const unsigned char *sp, uint32_t len, unsigned link, uint64_t *next)
{
	cr_assert_eq(len % SLOT, 0, "length %u is not whole pages of %u", len, SLOT);
	for (uint32_t off = 0; off < len; off += SLOT) {
		size_t bad = 0;
		enum rdo_page_verdict v = rdo_page_check(sp + off, len - off, link, true, &bad);
		cr_assert_eq(v, RDO_PAGE_OK, "page at %u: %s (byte %zu)", off,
			     rdo_page_verdict_name(v), bad);
		struct rdo_page_header hd = page_header(sp + off);
		cr_assert_eq(hd.slot, SLOT);
		cr_assert_eq(hd.payload, SLOT - sizeof(hd));
		cr_assert_eq(hd.counter, *next, "page at %u has counter %llu, expected %llu", off,
			     (unsigned long long)hd.counter, (unsigned long long)*next);
		cr_assert_neq(hd.timestamp_ns, 0);
		(*next)++;
	}
	return len / SLOT;
}

Test(card_sim, dma_registers_after_open)
{
	struct rdo_card *card = open_sim(12);
	cr_assert_eq(rd32(card, SIM_DMA_FIFO_DEPTH), SIM_FIFO_DEPTH);
	cr_assert_eq(rd32(card, SIM_DMA_PAGE_SIZE), 8192);
	cr_assert_eq(rd32(card, SIM_DMA_STATUS), 0, "not running after open");
	cr_assert_eq(rd(card, SIM_DMA_DROPPED, 64), 0);
	for (unsigned i = 0; i < 12; i++) {
		cr_assert_eq(rd32(card, link_reg(i, SIM_LINK_FREE_LEVEL)), 0);
		cr_assert_eq(rd32(card, link_reg(i, SIM_LINK_READY)), 0);
		cr_assert_eq(link_counter(card, i, SIM_LINK_PAGES), 0);
	}
	cr_assert_eq(rd32(card, link_reg(12, SIM_LINK_READY)), 0xffffffff,
		     "a 12-link card has no dma_link12");
	rdo_card_close(&card);
}

Test(card_sim, dma_fills_posted_superpages_in_order)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 4, 2);
	wr64(card, SIM_DMA_RATE, 4000000);
	static const unsigned order[] = {3, 0, 5, 1};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(order); i++)
		post(&h, order[i]);
	cr_assert_eq(rd32(card, link_reg(2, SIM_LINK_FREE_LEVEL)), 4, "posted, engine disabled");
	sleep_ms(20);
	cr_assert_eq(ready(&h), 0, "nothing is filled while the engine is disabled");

	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	cr_assert_eq(rd32(card, SIM_DMA_STATUS), SIM_DMA_RUNNING, "running once enabled");
	wait_ready(&h, 4);
	cr_assert_eq(rd32(card, link_reg(2, SIM_LINK_FREE_LEVEL)), 0);
	disable_and_wait(card);
	cr_assert_eq(ready(&h), 4, "no superpage beyond those posted");
	uint64_t next = 0;
	for (unsigned i = 0; i < 4; i++) {
		const struct rdo_dma_completion *c = &h.desc[i];
		cr_assert_eq(c->bus, sp_bus(&h, order[i]),
			     "completion %u: bus 0x%llx, expected 0x%llx", i,
			     (unsigned long long)c->bus, (unsigned long long)sp_bus(&h, order[i]));
		cr_assert_eq(c->length, SP_SIZE, "completion %u: %u bytes", i, c->length);
		cr_assert_eq(c->flags, 0, "completion %u: flags 0x%x", i, c->flags);
		check_pages(sp_va(&h, order[i]), c->length, 2, &next);
	}
	cr_assert_eq(next, 4 * SP_PAGES);
	cr_assert_eq(h.desc[4].bus, 0, "no fifth descriptor");
	cr_assert_eq(*sp_va(&h, 2), 0xee, "a superpage never posted stays untouched");
	for (unsigned i = 0; i < 4; i++)
		if (i != 2)
			cr_assert_eq(rd32(card, link_reg(i, SIM_LINK_READY)), 0, "link %u", i);
	uint64_t pages = link_counter(card, 2, SIM_LINK_PAGES);
	uint64_t dropped = link_counter(card, 2, SIM_LINK_DROPPED);
	cr_assert_eq(pages, 4 * SP_PAGES + dropped);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS) & (SIM_ERR_DMA_FAULT | SIM_ERR_FIFO_FULL), 0);
	host_close(&h);
}

Test(card_sim, dma_unlimited_rate_fills_only_what_is_posted)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	sleep_ms(20);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), 0, "no data without superpages");
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED), 0, "nothing dropped at rate 0");
	for (unsigned i = 0; i < NSP; i++)
		post(&h, i);
	wait_ready(&h, NSP);
	sleep_ms(20);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), NSP * SP_PAGES);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED), 0);
	uint64_t next = 0;
	for (unsigned i = 0; i < NSP; i++) {
		cr_assert_eq(h.desc[i].bus, sp_bus(&h, i));
		cr_assert_eq(h.desc[i].flags, 0);
		check_pages(sp_va(&h, i), h.desc[i].length, 0, &next);
	}
	host_close(&h);
}

Test(card_sim, dma_drops_at_the_source_when_nothing_is_posted)
{
	struct host h0, h1;
	struct rdo_card *card = hosts_open(&h0, &h1, 4);
	wr64(card, SIM_DMA_RATE, 4000000); /* 2 MB/s a link: ~2000 pages a second */
	post(&h0, 0);
	post(&h0, 1);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_ready(&h0, 2);
	wait_counter(card, 0, SIM_LINK_DROPPED, 10);
	wait_counter(card, 1, SIM_LINK_DROPPED, 10);
	disable_and_wait(card);

	uint64_t delivered = 0;
	uint64_t next = 0;
	for (unsigned i = 0; i < ready(&h0); i++)
		delivered += check_pages(bus_va(&h0, h0.desc[i].bus), h0.desc[i].length, 0, &next);
	cr_assert_eq(delivered, 2 * SP_PAGES);
	cr_assert_eq(ready(&h1), 0, "nothing posted on link 1, nothing completed");
	uint64_t d0 = link_counter(card, 0, SIM_LINK_DROPPED);
	uint64_t d1 = link_counter(card, 1, SIM_LINK_DROPPED);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), delivered + d0,
		     "link 0: pages %llu != delivered %llu + dropped %llu",
		     (unsigned long long)link_counter(card, 0, SIM_LINK_PAGES),
		     (unsigned long long)delivered, (unsigned long long)d0);
	cr_assert_eq(link_counter(card, 1, SIM_LINK_PAGES), d1, "link 1 delivered nothing");
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED_BYTES), d0 * SLOT);
	cr_assert_eq(link_counter(card, 1, SIM_LINK_DROPPED_BYTES), d1 * SLOT);
	cr_assert_eq(rd(card, SIM_DMA_DROPPED, 64), d0 + d1, "dma.dropped sums the links");
	cr_assert_eq(link_counter(card, 2, SIM_LINK_PAGES), 0, "a disabled link generates nothing");
	sleep_ms(20);
	cr_assert_eq(rd(card, SIM_DMA_DROPPED, 64), d0 + d1, "nothing is dropped once disabled");
	hosts_close(&h0, &h1);
}

Test(card_sim, dma_drop_sets_discontinuity_on_the_next_superpage)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	wr64(card, SIM_DMA_RATE, 2000000);
	post(&h, 0);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_ready(&h, 1);
	wait_counter(card, 0, SIM_LINK_DROPPED, 20);
	post(&h, 1);
	wait_ready(&h, 2);
	disable_and_wait(card);
	cr_assert_eq(h.desc[0].flags, 0);
	cr_assert_eq(h.desc[1].flags & RDO_SP_DISCONTINUITY, RDO_SP_DISCONTINUITY,
		     "pages were dropped before superpage 1: flags 0x%x", h.desc[1].flags);
	struct rdo_page_header first = page_header(sp_va(&h, 1));
	cr_assert_geq(first.counter, SP_PAGES + 20, "the counter skips the dropped pages");
	uint64_t next = first.counter;
	check_pages(sp_va(&h, 1), h.desc[1].length, 0, &next);
	host_close(&h);
}

Test(card_sim, dma_disable_flushes_a_partial_superpage)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	wr64(card, SIM_DMA_RATE, 100 * SLOT); /* 100 pages a second */
	post(&h, 0);
	post(&h, 1);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_counter(card, 0, SIM_LINK_PAGES, 3);
	cr_assert_eq(ready(&h), 0, "superpage 0 is not full yet");
	disable_and_wait(card);
	cr_assert_eq(ready(&h), 1, "the flush completes exactly the superpage being filled");
	const struct rdo_dma_completion *c = &h.desc[0];
	cr_assert_eq(c->bus, sp_bus(&h, 0));
	cr_assert_eq(c->flags, RDO_SP_PARTIAL, "flags 0x%x", c->flags);
	cr_assert(c->length > 0 && c->length < SP_SIZE, "length %u", c->length);
	uint64_t next = 0;
	unsigned n = check_pages(sp_va(&h, 0), c->length, 0, &next);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), n, "every page generated is delivered");
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED), 0);
	cr_assert_eq(page_header(sp_va(&h, 0) + c->length).magic, 0xeeeeeeee,
		     "nothing written past the flushed length");
	cr_assert_eq(rd32(card, link_reg(0, SIM_LINK_FREE_LEVEL)), 1, "superpage 1 stays posted");
	sleep_ms(20);
	cr_assert_eq(ready(&h), 1, "no more completions while disabled");
	host_close(&h);
}

Test(card_sim, dma_reset_empties_fifos_and_zeroes_counters)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 2, 0);
	wr64(card, SIM_DMA_RATE, 4000000);
	wr32(card, SIM_DMA_IRQ_COALESCE, 1);
	post(&h, 0);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE | SIM_DMA_IRQ_ENABLE);
	wait_ready(&h, 1);
	wait_counter(card, 0, SIM_LINK_DROPPED, 5);
	disable_and_wait(card);
	wr32(card, SIM_FAULT_OVERFLOW, 3);
	for (unsigned i = 1; i < 6; i++)
		post(&h, i);
	cr_assert_eq(rd32(card, link_reg(0, SIM_LINK_FREE_LEVEL)), 5);
	cr_assert_neq(rd(card, SIM_DMA_IRQ_COUNT, 64), 0);
	cr_assert_eq(rd32(card, SIM_DMA_OVERFLOWS), 1);

	wr32(card, SIM_CTRL_RESET, SIM_RESET_DMA);
	/* Synchronous: everything reads reset at once. */
	cr_assert_eq(rd32(card, link_reg(0, SIM_LINK_FREE_LEVEL)), 0);
	cr_assert_eq(ready(&h), 0);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), 0);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED), 0);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED_BYTES), 0);
	cr_assert_eq(rd(card, SIM_DMA_DROPPED, 64), 0);
	cr_assert_eq(rd(card, SIM_DMA_IRQ_COUNT, 64), 0);
	cr_assert_eq(rd32(card, SIM_DMA_OVERFLOWS), 0);
	cr_assert_eq(rd32(card, SIM_DMA_CONTROL) & (SIM_DMA_ENABLE | SIM_DMA_IRQ_ENABLE), 0);
	cr_assert_eq(rd(card, SIM_DMA_RATE, 64), 4000000, "configuration survives");
	cr_assert_eq(rd32(card, SIM_DMA_PAGE_SIZE), SLOT);

	/* The superpages the reset took back are never filled; a new post starts at page 0. */
	memset(h.mem.va, 0xee, (size_t)SP_SIZE * NSP);
	memset(h.ring.va, 0, RING_BYTES);
	wr64(card, SIM_DMA_RATE, 0);
	post(&h, 7);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_ready(&h, 1);
	disable_and_wait(card);
	cr_assert_eq(h.desc[0].bus, sp_bus(&h, 7));
	cr_assert_eq(h.desc[0].flags, 0, "the overflow was reset too: flags 0x%x", h.desc[0].flags);
	uint64_t next = 0;
	check_pages(sp_va(&h, 7), h.desc[0].length, 0, &next);
	for (unsigned i = 1; i < 6; i++)
		cr_assert_eq(*sp_va(&h, i), 0xee, "superpage %u was filled after the reset", i);
	host_close(&h);
}

Test(card_sim, dma_post_outside_dma_memory_faults_and_is_skipped)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0);
	post_bus(card, 0, 0x1000, SP_SIZE);			   /* not DMA memory at all */
	post_bus(card, 0, h.mem.seg[0].bus, SP_SIZE * NSP + SLOT); /* runs past the region */
	post(&h, 4);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_ready(&h, 1);
	disable_and_wait(card);
	cr_assert_eq(ready(&h), 1, "the bad posts are skipped, not completed");
	cr_assert_eq(h.desc[0].bus, sp_bus(&h, 4));
	cr_assert_eq(h.desc[0].length, SP_SIZE);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_DMA_FAULT);
	uint64_t next = 0;
	check_pages(sp_va(&h, 4), h.desc[0].length, 0, &next);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_DMA_FAULT);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0, "dma_fault is w1c");
	host_close(&h);
}

Test(card_sim, dma_completion_ring_outside_dma_memory_faults)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	wr64(card, link_reg(0, SIM_LINK_COMPL_ADDR), 0x2000);
	post(&h, 0);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_at_least(card, SIM_CTRL_ERRORS, SIM_ERR_DMA_FAULT);
	disable_and_wait(card);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_DMA_FAULT);
	cr_assert_eq(ready(&h), 0, "no completion without a ring to write it to");
	host_close(&h);
}

Test(card_sim, dma_bad_page_size_faults)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	wr32(card, SIM_DMA_PAGE_SIZE, 1000 + 4); /* not a multiple of 8 */
	post(&h, 0);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_at_least(card, SIM_CTRL_ERRORS, SIM_ERR_DMA_FAULT);
	disable_and_wait(card);
	cr_assert_eq(ready(&h), 0);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), 0);
	host_close(&h);
}

Test(card_sim, dma_post_to_full_fifo_sets_fifo_full)
{
	struct rdo_card *card = open_sim(2);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	uint32_t depth = rd32(card, SIM_DMA_FIFO_DEPTH);
	for (uint32_t i = 0; i < depth; i++)
		post_bus(card, 1, SIM_BUS_BASE + (uint64_t)i * SP_SIZE, SP_SIZE);
	cr_assert_eq(rd32(card, link_reg(1, SIM_LINK_FREE_LEVEL)), depth);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0, "a full FIFO is no error yet");
	post_bus(card, 1, SIM_BUS_BASE, SP_SIZE);
	cr_assert_eq(rd32(card, link_reg(1, SIM_LINK_FREE_LEVEL)), depth, "the post was lost");
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_FIFO_FULL);
	cr_assert_eq(rd32(card, link_reg(0, SIM_LINK_FREE_LEVEL)), 0, "link 0 has its own FIFO");
	post_bus(card, 0, SIM_BUS_BASE, SP_SIZE);
	cr_assert_eq(rd32(card, link_reg(0, SIM_LINK_FREE_LEVEL)), 1);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_FIFO_FULL);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), 0);
	wr32(card, SIM_CTRL_RESET, SIM_RESET_DMA);
	cr_assert_eq(rd32(card, link_reg(1, SIM_LINK_FREE_LEVEL)), 0);
	cr_assert_eq(rd32(card, link_reg(0, SIM_LINK_FREE_LEVEL)), 0);
	rdo_card_close(&card);
}

Test(card_sim, fault_corrupt_damages_exactly_n_pages)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	wr32(card, SIM_FAULT_CORRUPT, 2);
	wr32(card, SIM_FAULT_CORRUPT, 1); /* adds up */
	cr_assert_eq(rd32(card, SIM_FAULT_CORRUPT), 0, "write-only");
	fill(&h, 4, 0);
	unsigned bad = 0;
	for (unsigned i = 0; i < 4; i++) {
		cr_assert_eq(h.desc[i].length, SP_SIZE);
		for (uint32_t off = 0; off < SP_SIZE; off += SLOT) {
			size_t at = 0;
			enum rdo_page_verdict v =
			    rdo_page_check(sp_va(&h, i) + off, SP_SIZE - off, 0, true, &at);
			if (v == RDO_PAGE_OK)
				continue;
			cr_assert_eq(v, RDO_PAGE_BAD_PAYLOAD, "superpage %u page at %u: %s", i, off,
				     rdo_page_verdict_name(v));
			cr_assert_eq(at, sizeof(struct rdo_page_header) + (SLOT - 32) / 2,
				     "the corrupted byte is mid-payload, found at %zu", at);
			bad++;
		}
	}
	cr_assert_eq(bad, 3, "%u pages corrupted, expected 3", bad);
	host_close(&h);
}

Test(card_sim, fault_overflow_loses_pages_and_flags_discontinuity)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 2, 0);
	wr32(card, SIM_FAULT_OVERFLOW, 5);
	cr_assert_eq(rd32(card, SIM_DMA_OVERFLOWS), 1);
	fill(&h, 2, 0);
	cr_assert_eq(h.desc[0].flags, RDO_SP_DISCONTINUITY, "flags 0x%x", h.desc[0].flags);
	cr_assert_eq(h.desc[1].flags, 0, "only the next completion: flags 0x%x", h.desc[1].flags);
	uint64_t next = 5;
	check_pages(sp_va(&h, 0), h.desc[0].length, 0, &next);
	check_pages(sp_va(&h, 1), h.desc[1].length, 0, &next);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED), 5, "dropped %llu",
		     (unsigned long long)link_counter(card, 0, SIM_LINK_DROPPED));
	cr_assert_eq(link_counter(card, 0, SIM_LINK_DROPPED_BYTES), 5 * SLOT);
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), 5 + 2 * SP_PAGES);
	cr_assert_eq(link_counter(card, 1, SIM_LINK_DROPPED), 0, "link 1 is not enabled");
	host_close(&h);
}

Test(card_sim, fault_link_down_flushes_with_link_down)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 2, 1);
	wr32(card, SIM_CTRL_ERRORS, SIM_ERR_POWER_ON);
	wr64(card, SIM_DMA_RATE, 100 * SLOT);
	post(&h, 0);
	post(&h, 1);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_counter(card, 1, SIM_LINK_PAGES, 2);
	wr32(card, SIM_FAULT_LINK_DOWN, 0x2);
	cr_assert_eq(rd32(card, SIM_CTRL_ERRORS), SIM_ERR_LINK_DOWN);
	cr_assert_eq(rd32(card, SIM_LINK_STATUS), 0);
	wait_ready(&h, 1);
	const struct rdo_dma_completion *c = &h.desc[0];
	cr_assert_eq(c->bus, sp_bus(&h, 0));
	cr_assert_eq(c->flags, RDO_SP_PARTIAL | RDO_SP_LINK_DOWN, "flags 0x%x", c->flags);
	uint64_t next = 0;
	unsigned n = check_pages(sp_va(&h, 0), c->length, 1, &next);
	cr_assert_geq(n, 2);
	uint64_t pages = link_counter(card, 1, SIM_LINK_PAGES);
	sleep_ms(30);
	cr_assert_eq(link_counter(card, 1, SIM_LINK_PAGES), pages, "a down link generates nothing");
	cr_assert_eq(ready(&h), 1);
	cr_assert_eq(rd32(card, link_reg(1, SIM_LINK_FREE_LEVEL)), 1, "superpage 1 stays posted");
	cr_assert_eq(rd32(card, SIM_DMA_STATUS), SIM_DMA_RUNNING, "the engine runs on");
	host_close(&h);
}

Test(card_sim, fault_stall_stops_one_link)
{
	struct host h0, h1;
	struct rdo_card *card = hosts_open(&h0, &h1, 2);
	wr32(card, SIM_FAULT_STALL, 0x2);
	post(&h0, 0);
	post(&h1, 0);
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE);
	wait_ready(&h0, 1);
	sleep_ms(30);
	cr_assert_eq(ready(&h1), 0, "the stalled link filled a superpage");
	cr_assert_eq(link_counter(card, 1, SIM_LINK_PAGES), 0);
	wr32(card, SIM_FAULT_STALL, 0);
	wait_ready(&h1, 1);
	disable_and_wait(card);
	uint64_t next = 0;
	check_pages(sp_va(&h1, 0), h1.desc[0].length, 1, &next);
	hosts_close(&h0, &h1);
}

Test(card_sim, header_only_writes_the_first_header)
{
	struct host h;
	struct rdo_card *card = host_open(&h, 1, 0);
	fill(&h, 2, SIM_DMA_HEADER_ONLY);
	for (unsigned i = 0; i < 2; i++) {
		const struct rdo_dma_completion *c = &h.desc[i];
		cr_assert_eq(c->flags, RDO_SP_HEADER_ONLY, "completion %u: flags 0x%x", i,
			     c->flags);
		cr_assert_eq(c->length, SP_SIZE);
		const unsigned char *sp = sp_va(&h, i);
		size_t at = 0;
		cr_assert_eq(rdo_page_check(sp, SP_SIZE, 0, false, &at), RDO_PAGE_OK);
		struct rdo_page_header hd = page_header(sp);
		cr_assert_eq(hd.counter, (uint64_t)i * SP_PAGES, "superpage %u starts at page %llu",
			     i, (unsigned long long)hd.counter);
		cr_assert_eq(hd.slot, SLOT);
		for (size_t b = sizeof(hd); b < SP_SIZE; b++)
			cr_assert_eq(sp[b], 0xee, "superpage %u: byte %zu was written", i, b);
	}
	cr_assert_eq(link_counter(card, 0, SIM_LINK_PAGES), 2 * SP_PAGES,
		     "pages are still counted: %llu",
		     (unsigned long long)link_counter(card, 0, SIM_LINK_PAGES));
	host_close(&h);
}

Test(card_sim, variable_size_payloads_follow_the_formula)
{
	struct host h;
	host_open(&h, 1, 0);
	fill(&h, 2, SIM_DMA_VARIABLE_SIZE);
	uint64_t counter = 0;
	bool varied = false;
	for (unsigned i = 0; i < 2; i++) {
		const struct rdo_dma_completion *c = &h.desc[i];
		cr_assert_eq(c->flags, 0);
		cr_assert_eq(c->length, SP_SIZE, "pages still occupy whole slots");
		for (uint32_t off = 0; off < c->length; off += SLOT, counter++) {
			const unsigned char *p = sp_va(&h, i) + off;
			size_t at = 0;
			enum rdo_page_verdict v = rdo_page_check(p, c->length - off, 0, true, &at);
			cr_assert_eq(v, RDO_PAGE_OK, "page %llu: %s", (unsigned long long)counter,
				     rdo_page_verdict_name(v));
			struct rdo_page_header hd = page_header(p);
			cr_assert_eq(hd.counter, counter);
			cr_assert_eq(hd.slot, SLOT);
			cr_assert_eq(hd.payload, rdo_page_variable_payload(counter, SLOT),
				     "page %llu: payload %u", (unsigned long long)counter,
				     hd.payload);
			varied |= hd.payload != SLOT - sizeof(hd);
		}
	}
	cr_assert(varied, "every payload filled its slot");
	host_close(&h);
}

static bool readable(int fd, int timeout_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int n = poll(&p, 1, timeout_ms);
	cr_assert_geq(n, 0, "poll: %s", strerror(errno));
	return n == 1 && (p.revents & POLLIN);
}

/*
 * irq_count once it has settled on `want` (up to 100 ms): the emulator bumps
 * it just after it signals the eventfd (irq_count_includes_the_interrupt_being_handled).
 */
static uint64_t irq_count(struct rdo_card *card, uint64_t want)
{
	uint64_t n = rd(card, SIM_DMA_IRQ_COUNT, 64);
	for (int i = 0; i < 100 && n != want; i++) {
		sleep_ms(1);
		n = rd(card, SIM_DMA_IRQ_COUNT, 64);
	}
	return n;
}

static uint64_t read_irq(int fd)
{
	uint64_t v = 0;
	cr_assert_eq(read(fd, &v, sizeof(v)), (ssize_t)sizeof(v), "eventfd read: %s",
		     strerror(errno));
	return v;
}

/* A one-link card whose interrupt coalescing is set; the interrupt eventfd. */
static int irq_open(struct host *h, uint32_t coalesce, uint32_t holdoff_us)
{
	host_open(h, 1, 0);
	int fd = h->card->ops->irq_fd(h->card);
	cr_assert_geq(fd, 0);
	wr32(h->card, SIM_DMA_IRQ_COALESCE, coalesce);
	wr32(h->card, SIM_DMA_IRQ_HOLDOFF, holdoff_us);
	return fd;
}

/* One interrupt arrives within `timeout_ms`, the `nth` the card counts. */
static void expect_irq(const struct host *h, int fd, int timeout_ms, uint64_t nth)
{
	cr_assert(readable(fd, timeout_ms), "interrupt %llu did not come within %d ms",
		  (unsigned long long)nth, timeout_ms);
	cr_assert_eq(read_irq(fd), 1, "one eventfd signal for interrupt %llu",
		     (unsigned long long)nth);
	cr_assert_eq(irq_count(h->card, nth), nth);
}

Test(card_sim, irq_after_coalesced_completions)
{
	struct host h;
	int fd = irq_open(&h, 3, 10000000); /* 10 s holdoff: only the count triggers */
	post(&h, 0);
	post(&h, 1);
	wr32(h.card, SIM_DMA_CONTROL, SIM_DMA_ENABLE | SIM_DMA_IRQ_ENABLE);
	wait_ready(&h, 2);
	cr_assert(!readable(fd, 50), "interrupt after 2 completions of 3");
	cr_assert_eq(irq_count(h.card, 0), 0);
	post(&h, 2);
	expect_irq(&h, fd, 2000, 1);
	for (unsigned i = 3; i < 6; i++)
		post(&h, i);
	wait_ready(&h, 6);
	expect_irq(&h, fd, 2000, 2);
	host_close(&h);
}

Test(card_sim, irq_after_holdoff)
{
	struct host h;
	int fd = irq_open(&h, 100, 300000); /* 300 ms */
	post(&h, 0);
	wr32(h.card, SIM_DMA_CONTROL, SIM_DMA_ENABLE | SIM_DMA_IRQ_ENABLE);
	wait_ready(&h, 1);
	uint64_t t0 = rdo_now_ns();
	cr_assert(!readable(fd, 0), "interrupt before the holdoff");
	expect_irq(&h, fd, 3000, 1);
	cr_assert_lt(rdo_now_ns() - t0, 2000000000ull);
	host_close(&h);
}

Test(card_sim, irq_count_includes_the_interrupt_being_handled)
{
	struct host h;
	int fd = irq_open(&h, 1, 1000);
	struct rdo_card *card = h.card;
	wr32(card, SIM_DMA_CONTROL, SIM_DMA_ENABLE | SIM_DMA_IRQ_ENABLE);
	uint64_t irqs = 0;
	for (unsigned i = 0; i < 1000; i++) {
		post(&h, i % NSP);
		cr_assert(readable(fd, 2000), "no interrupt for completion %u", i);
		/* The handler reads the count first: it includes the interrupt that woke it. */
		uint64_t count = rd(card, SIM_DMA_IRQ_COUNT, 64);
		cr_assert_gt(count, irqs, "interrupt %llu arrived, irq_count reads %llu",
			     (unsigned long long)irqs + 1, (unsigned long long)count);
		irqs += read_irq(fd);
	}
	host_close(&h);
}

Test(card_sim, no_irq_without_irq_enable)
{
	struct host h;
	int fd = irq_open(&h, 1, 1);
	fill(&h, 2, 0);
	cr_assert(!readable(fd, 50), "interrupt with irq_enable clear");
	cr_assert_eq(irq_count(h.card, 0), 0);
	host_close(&h);
}
