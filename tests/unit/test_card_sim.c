#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>

#include "card.h"
#include "card_sim.h"
#include "log.h"
#include "util.h"

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
	static const uint32_t ro[] = { SIM_ID_IDENTITY, SIM_ID_FIRMWARE, SIM_CTRL_STATUS,
				       SIM_LINK_COUNT, SIM_DMA_STATUS };
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
	wr32(card, SIM_DMA_CONTROL, 0x3);
	wr32(card, SIM_DMA_IRQ_COALESCE, 8);
	wr32(card, SIM_CTRL_RESET, SIM_RESET_DMA);
	cr_assert_eq(rd32(card, SIM_DMA_CONTROL), 0);
	cr_assert_eq(rd32(card, SIM_DMA_IRQ_COALESCE), 1);
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

	struct timespec ts = { .tv_sec = 1, .tv_nsec = 500000000 };
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
	static const uint32_t holes[] = { 0x0014, 0x0110, 0x0800, 0xfffc };
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
