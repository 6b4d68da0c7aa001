/*
 * The emulated card's register file, as its firmware documents it: the
 * offsets and bits that config/regmaps/rdo-sim.yaml names. Tests use these to
 * check the map against the emulator; nothing else should, because code above
 * the card interface addresses registers by name through the map.
 *
 * BAR0 is 64 KiB. An access of the wrong width, or to an offset where no
 * register starts, is unclaimed: reads return all ones, writes are ignored,
 * as on a PCIe card whose firmware does not decode the address.
 */
#ifndef RDO_CARD_SIM_H
#define RDO_CARD_SIM_H

#define SIM_BAR0_SIZE 0x10000u
#define SIM_MAX_LINKS 32u

#define SIM_ID_IDENTITY 0x0000u	    /* ro 32 */
#define SIM_ID_FIRMWARE 0x0004u	    /* ro 32: major 31:24, minor 23:16, patch 15:0 */
#define SIM_ID_SERIAL 0x0008u	    /* ro 64 */
#define SIM_ID_SCRATCH 0x0010u	    /* rw 32 */
#define SIM_CTRL_CONFIG 0x0100u	    /* rw 32: led 0, loopback 1, data_source 5:4 */
#define SIM_CTRL_RESET 0x0104u	    /* wo 32: card 0, dma 1 (self-clearing) */
#define SIM_CTRL_STATUS 0x0108u	    /* ro 32: ready 0, clock_locked 1 */
#define SIM_CTRL_ERRORS 0x010cu	    /* w1c 32: power_on 0, link_down 1 */
#define SIM_MON_TEMPERATURE 0x0200u /* ro 32: millidegrees Celsius */
#define SIM_MON_TEMP_MAX 0x0204u    /* ro 32: highest since reset */
#define SIM_MON_UPTIME 0x0208u	    /* ro 32: seconds since reset */
#define SIM_LINK_COUNT 0x0300u	    /* ro 32 */
#define SIM_LINK_ENABLE 0x0304u	    /* rw 32: a bit per link */
#define SIM_LINK_STATUS 0x0308u	    /* ro 32: a bit per link, up = enabled and not forced down */
#define SIM_FAULT_LINK_DOWN 0x0f00u /* rw 32: fault injection, a bit per link forced down */
#define SIM_DMA_CONTROL 0x1000u	    /* rw 32: enable 0, irq_enable 1, pulsed 2 */
#define SIM_DMA_STATUS 0x1004u	    /* ro 32: running 0 */
#define SIM_DMA_RATE 0x1008u	    /* rw 64: bytes per second, 0 = unlimited */
#define SIM_DMA_PAGE_SIZE 0x1010u   /* rw 32: DMA page size in bytes */
#define SIM_DMA_IRQ_COALESCE 0x1014u /* rw 32: superpages per interrupt */
#define SIM_DMA_DROPPED 0x1018u	    /* ro 64: superpages dropped at the source */

#define SIM_ERR_POWER_ON 0x1u
#define SIM_ERR_LINK_DOWN 0x2u
#define SIM_RESET_CARD 0x1u
#define SIM_RESET_DMA 0x2u

#endif
