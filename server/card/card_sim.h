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

#define SIM_ID_IDENTITY	    0x0000u /* ro 32 */
#define SIM_ID_FIRMWARE	    0x0004u /* ro 32: major 31:24, minor 23:16, patch 15:0 */
#define SIM_ID_SERIAL	    0x0008u /* ro 64 */
#define SIM_ID_SCRATCH	    0x0010u /* rw 32 */
#define SIM_CTRL_CONFIG	    0x0100u /* rw 32: led 0, loopback 1, data_source 5:4 */
#define SIM_CTRL_RESET	    0x0104u /* wo 32: card 0, dma 1 (self-clearing) */
#define SIM_CTRL_STATUS	    0x0108u /* ro 32: ready 0, clock_locked 1 */
#define SIM_CTRL_ERRORS	    0x010cu /* w1c 32: power_on 0, link_down 1 */
#define SIM_MON_TEMPERATURE 0x0200u /* ro 32: millidegrees Celsius */
#define SIM_MON_TEMP_MAX    0x0204u /* ro 32: highest since reset */
#define SIM_MON_UPTIME	    0x0208u /* ro 32: seconds since reset */
#define SIM_LINK_COUNT	    0x0300u /* ro 32 */
#define SIM_LINK_ENABLE	    0x0304u /* rw 32: a bit per link */
#define SIM_LINK_STATUS	    0x0308u /* ro 32: a bit per link, up = enabled and not forced down */
#define SIM_FAULT_LINK_DOWN 0x0f00u /* rw 32: a bit per link forced down */
#define SIM_FAULT_STALL	    0x0f04u /* rw 32: a bit per link whose source stalls */
#define SIM_FAULT_CORRUPT   0x0f08u /* wo 32: corrupt the payload of the next N pages */
#define SIM_FAULT_OVERFLOW                                                                         \
	0x0f0cu /* wo 32: the data FIFO of every link overflows, N pages lost                      \
		 */

/*
 * The DMA engine. The host posts free superpages into a FIFO per link
 * (write free_addr, then free_push with the size); the card fills them with
 * DMA pages in the order posted, writes a 16-byte completion descriptor into
 * the link's completion ring in host memory (at completion_addr, fifo_depth
 * entries), then bumps the link's ready_count; and, with irq_enable, signals
 * the interrupt after irq_coalesce completions or irq_holdoff_us, whichever
 * comes first. Disabling the engine flushes partly filled superpages; the DMA
 * reset empties the free FIFOs (the host takes back what it posted).
 */
#define SIM_DMA_CONTROL                                                                            \
	0x1000u			     /* rw 32: enable 0, irq_enable 1, pulsed 2, header_only 3,    \
					variable_size 4 */
#define SIM_DMA_STATUS	     0x1004u /* ro 32: running 0 (filling or flushing) */
#define SIM_DMA_RATE	     0x1008u /* rw 64: bytes per second, all links; 0: as fast as taken */
#define SIM_DMA_PAGE_SIZE    0x1010u /* rw 32: DMA page slot in bytes, 64..8192, multiple of 8 */
#define SIM_DMA_IRQ_COALESCE 0x1014u /* rw 32: completions per interrupt */
#define SIM_DMA_DROPPED	     0x1018u /* ro 64: pages dropped at the source, all links */
#define SIM_DMA_IRQ_HOLDOFF  0x1020u /* rw 32: longest delay of an interrupt, microseconds */
#define SIM_DMA_FIFO_DEPTH   0x1024u /* ro 32: free FIFO entries per link */
#define SIM_DMA_PULSE_HZ     0x1028u /* rw 32: pulses per second in pulsed mode */
#define SIM_DMA_PULSE_BYTES  0x102cu /* rw 32: bytes per link per pulse */
#define SIM_DMA_IRQ_COUNT    0x1030u /* ro 64: interrupts signalled */
#define SIM_DMA_OVERFLOWS    0x1038u /* ro 32: data FIFO overflows */

#define SIM_DMA_ENABLE	      0x1u
#define SIM_DMA_IRQ_ENABLE    0x2u
#define SIM_DMA_PULSED	      0x4u
#define SIM_DMA_HEADER_ONLY   0x8u
#define SIM_DMA_VARIABLE_SIZE 0x10u
#define SIM_DMA_RUNNING	      0x1u

/* Per link registers: bank dma_link<N> at SIM_LINK_BASE + N * SIM_LINK_STRIDE. */
#define SIM_LINK_BASE	       0x2000u
#define SIM_LINK_STRIDE	       0x40u
#define SIM_LINK_FREE_ADDR     0x00u /* rw 64: bus address of the next free superpage */
#define SIM_LINK_FREE_PUSH     0x08u /* wo 32: its size in bytes; posts free_addr and size */
#define SIM_LINK_FREE_LEVEL    0x0cu /* ro 32: superpages posted and not yet being filled */
#define SIM_LINK_COMPL_ADDR    0x10u /* rw 64: bus address of the completion ring */
#define SIM_LINK_READY	       0x18u /* ro 32: superpages completed since the DMA reset */
#define SIM_LINK_PAGES	       0x20u /* ro 64: pages generated (delivered and dropped) */
#define SIM_LINK_DROPPED       0x28u /* ro 64: pages dropped at the source */
#define SIM_LINK_DROPPED_BYTES 0x30u /* ro 64: bytes of those pages */

#define SIM_FIFO_DEPTH 128u
#define SIM_BUS_BASE   0x100000000000ull /* where the emulator puts DMA memory in bus space */

/* Completion descriptors are struct rdo_dma_completion (card/superpage_proto.h). */

#define SIM_ERR_POWER_ON  0x1u
#define SIM_ERR_LINK_DOWN 0x2u
#define SIM_ERR_DMA_FAULT 0x4u /* a posted bus address is not DMA memory */
#define SIM_ERR_FIFO_FULL 0x8u /* a post to a full free FIFO was lost */
#define SIM_RESET_CARD	  0x1u
#define SIM_RESET_DMA	  0x2u

#endif
