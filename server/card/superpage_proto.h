/*
 * The superpage DMA protocol's memory format: what a card that speaks it
 * writes into host memory. Both sides include it: the emulated firmware
 * (card_sim.c) and the protocol's driver (dma/dma_superpage.c). Its
 * registers are named by the card's map (dma_link<N>.*, dma/dma_proto.h).
 *
 * For every superpage it has filled, the card writes one completion
 * descriptor into the link's completion ring, then bumps the link's ready
 * count. Superpages complete in the order they were posted.
 */
#ifndef RDO_SUPERPAGE_PROTO_H
#define RDO_SUPERPAGE_PROTO_H

#include <stdint.h>

struct rdo_dma_completion {
	uint64_t bus;	 /* the superpage's bus address, as posted */
	uint32_t length; /* bytes written: whole DMA pages */
	uint32_t flags;	 /* RDO_SP_* (card/card.h), the same bits as SuperpageFlag in proto/ */
};

#endif
