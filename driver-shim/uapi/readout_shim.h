/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * readout_shim: the user-space ABI of readoutd's thin PCI driver.
 *
 * One character device per bound PCI function, /dev/readout/DDDD:BB:DD.F.
 * Any number of processes may open it, read the information and map the
 * BARs; one of them at a time owns the DMA side (claim): it alone sets the
 * DMA mask, allocates DMA buffers, binds interrupts and switches bus
 * mastering. When the owner's file is released (close, exit or kill), the
 * driver switches bus mastering off, waits for the interrupt handlers, and
 * only then frees the owner's DMA buffers: a dying process never lets the
 * card write into freed memory.
 *
 * mmap offsets (MAP_SHARED only; whole pages):
 *   RSHIM_MMAP_BAR(n) + k pages  BAR n from page k, uncached; memory BARs that
 *                                are page-aligned and at least a page (a
 *                                smaller one could share its page with
 *                                another device's registers)
 *   rshim_dma_chunk.mmap_offset  a chunk of a DMA buffer (owner only), cached,
 *                                or a window of whole pages inside one chunk;
 *                                not inherited across fork
 *
 * The DMA mask returns to the driver's default (64 bits) when the owner
 * releases. MSI needs bus mastering on. With INTx, the driver masks the line
 * on each interrupt; UNMASK after acknowledging in the device (while the
 * device still asserts it, the line stays masked and the eventfd is
 * signalled again).
 *
 * Every ioctl returns 0 or -1 with errno; the kernel log (dev_err) says why
 * when the reason is not obvious from errno.
 */
#ifndef _UAPI_READOUT_SHIM_H
#define _UAPI_READOUT_SHIM_H

#include <linux/ioctl.h>
#include <linux/types.h>

/* Incompatible changes bump it; readoutd refuses to run on another. */
#define RSHIM_ABI_VERSION 1

#define RSHIM_MAX_BARS 6

#define RSHIM_BAR_MEM	     0x1 /* memory BAR: can be mapped */
#define RSHIM_BAR_IO	     0x2 /* I/O port BAR: cannot be mapped */
#define RSHIM_BAR_64	     0x4
#define RSHIM_BAR_PREFETCH   0x8

struct rshim_bar {
	__u64 size; /* 0: BAR not present */
	__u32 flags;
	__u32 reserved;
};

#define RSHIM_IRQ_NONE 0
#define RSHIM_IRQ_INTX 1 /* legacy: masked by the driver on each interrupt, see UNMASK */
#define RSHIM_IRQ_MSI  2
#define RSHIM_IRQ_MSIX 3

struct rshim_info {
	__u32 abi_version;    /* RSHIM_ABI_VERSION of the driver */
	__u32 domain;
	__u8 bus, slot, function, revision;
	__u16 vendor, device;
	__u16 subsystem_vendor, subsystem_device;
	__u32 class_code;     /* base class, subclass, prog-if: 0x00ff0000 = 0xff... */
	__s32 numa_node;      /* -1: none */
	__u32 irq_type;       /* RSHIM_IRQ_* */
	__u32 irq_vectors;    /* eventfd vectors 0..irq_vectors-1 */
	__u32 link_speed;     /* PCIe current link speed in MT/s per lane, 0 if not PCIe */
	__u32 link_width;     /* lanes, 0 if not PCIe */
	__u32 dma_mask_bits;  /* the DMA mask in force */
	__s32 owner_pid;      /* pid (in the caller's namespace) owning the DMA side, 0 if none */
	__u32 reserved;
	struct rshim_bar bar[RSHIM_MAX_BARS];
};

/* One bus-contiguous, coherent chunk of a DMA buffer. */
struct rshim_dma_chunk {
	__u64 offset;	   /* from the buffer's start */
	__u64 len;
	__u64 bus;	   /* where the device sees it */
	__u64 mmap_offset; /* mmap the chunk (len bytes) at this file offset */
};

struct rshim_dma_alloc {
	__u64 size;	  /* in: bytes, a multiple of chunk_size */
	__u64 chunk_size; /* in: bytes, a multiple of the page size, at most 4 MiB */
	__u64 chunks;	  /* in: user pointer to max_chunks struct rshim_dma_chunk */
	__u32 max_chunks; /* in: at least size / chunk_size */
	__u32 id;	  /* out: the buffer, for RSHIM_IOC_DMA_FREE */
};

struct rshim_irq_eventfd {
	__u32 vector; /* 0..irq_vectors-1 */
	__s32 fd;     /* an eventfd, signalled once per interrupt; -1 unbinds */
};

#define RSHIM_IOC_MAGIC 0xB7

/* Identity, BARs, IRQs, link; anyone. */
#define RSHIM_IOC_INFO _IOR(RSHIM_IOC_MAGIC, 0x00, struct rshim_info)
/* Own the DMA side: 0, or EBUSY (owner_pid in INFO says who). */
#define RSHIM_IOC_CLAIM _IO(RSHIM_IOC_MAGIC, 0x01)
/* Owner: the DMA mask, 24..64 bits; EBUSY once buffers exist. */
#define RSHIM_IOC_SET_DMA_MASK _IOW(RSHIM_IOC_MAGIC, 0x02, __u32)
/* Owner: allocate a DMA buffer of coherent chunks, zeroed. */
#define RSHIM_IOC_DMA_ALLOC _IOWR(RSHIM_IOC_MAGIC, 0x03, struct rshim_dma_alloc)
/* Owner: free buffer `id`; EBUSY while bus mastering is on or the buffer is mapped. */
#define RSHIM_IOC_DMA_FREE _IOW(RSHIM_IOC_MAGIC, 0x04, __u32)
/* Owner: bind an eventfd to an interrupt vector. */
#define RSHIM_IOC_IRQ_EVENTFD _IOW(RSHIM_IOC_MAGIC, 0x05, struct rshim_irq_eventfd)
/* Owner, INTx only: unmask the interrupt after acknowledging it in the device. */
#define RSHIM_IOC_IRQ_UNMASK _IO(RSHIM_IOC_MAGIC, 0x06)
/* Owner: bus mastering on (1) or off (0). */
#define RSHIM_IOC_BUS_MASTER _IOW(RSHIM_IOC_MAGIC, 0x07, __u32)

#define RSHIM_MMAP_BAR(n) ((__u64)(n) << 40)
#define RSHIM_MMAP_DMA	  ((__u64)0x100 << 40) /* chunk offsets start here */

#endif
