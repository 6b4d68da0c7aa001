/*
 * The `shim` backend: a real PCIe card through driver-shim's character device
 * /dev/readout/DDDD:BB:DD.F (driver-shim/uapi/readout_shim.h).
 *
 * Open checks the driver's ABI version, maps every memory BAR, takes the DMA
 * side of the card (one owner at a time, kept by the driver) and binds an
 * eventfd to the card's first interrupt vector. DMA memory is the driver's
 * coherent chunks, mapped back to back into one reserved range of virtual
 * memory, so the pool sees one region; each chunk is one bus segment.
 *
 * Bus mastering is on while DMA memory exists. Freeing DMA memory switches it
 * off first, so the card can never write into memory being given back; the
 * driver does the same when readoutd dies.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "card/card.h"
#include "common/log.h"
#include "common/util.h"
#include "uapi/readout_shim.h"

#define SHIM_CHUNK_MAX (4u << 20) /* the driver's largest coherent chunk */
#define SHIM_PAGE      4096u

struct shim_buf {
	uint32_t id;
	unsigned nsegs;
	struct rdo_dma_seg *seg;
};

struct shim_card {
	struct rdo_card base;
	int fd;
	struct rshim_info info;
	volatile void *bar[RDO_CARD_MAX_BARS];
	int irq_fd;	       /* eventfd bound to vector 0, or -1 */
	unsigned address_bits; /* the DMA mask set in the driver, 0 before the first buffer */
	unsigned nbufs;
};

static struct shim_card *to_shim(struct rdo_card *card)
{
	return container_of(card, struct shim_card, base);
}

static uint64_t shim_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width)
{
	volatile char *p = (volatile char *)to_shim(card)->bar[bar] + off;
	switch (width) {
	case 8:
		return *(volatile uint8_t *)p;
	case 16:
		return *(volatile uint16_t *)p;
	case 32:
		return *(volatile uint32_t *)p;
	default:
		return *(volatile uint64_t *)p;
	}
}

static void shim_write(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		       uint64_t val)
{
	volatile char *p = (volatile char *)to_shim(card)->bar[bar] + off;
	switch (width) {
	case 8:
		*(volatile uint8_t *)p = (uint8_t)val;
		break;
	case 16:
		*(volatile uint16_t *)p = (uint16_t)val;
		break;
	case 32:
		*(volatile uint32_t *)p = (uint32_t)val;
		break;
	default:
		*(volatile uint64_t *)p = val;
		break;
	}
}

static int bus_master(struct shim_card *s, bool on)
{
	uint32_t v = on;
	if (ioctl(s->fd, RSHIM_IOC_BUS_MASTER, &v) == 0)
		return 0;
	int rc = -errno;
	rdo_err("card %s: cannot switch bus mastering %s: %s", s->base.name, on ? "on" : "off",
		strerror(errno));
	return rc;
}

/* The largest chunk of whole granules, at most the driver's, that divides `len`. */
static size_t chunk_size(size_t len, size_t granule)
{
	size_t best = granule;
	for (size_t k = 2; granule * k <= SHIM_CHUNK_MAX && granule * k <= len; k++)
		if (len % (granule * k) == 0)
			best = granule * k;
	return best;
}

static int shim_dma_alloc(struct rdo_card *card, size_t len, size_t granule, unsigned address_bits,
			  struct rdo_dma_buf *buf)
{
	struct shim_card *s = to_shim(card);
	if (granule % SHIM_PAGE || granule > SHIM_CHUNK_MAX) {
		rdo_err(
		    "card %s: DMA memory in pieces of %zu bytes that must stay bus-contiguous: "
		    "the shim gives chunks of whole 4 KiB pages up to 4 MiB; for the pool, make "
		    "dma.superpage_size a multiple of 4 KiB, at most 4 MiB",
		    card->name, granule);
		return -EINVAL;
	}
	if (s->address_bits == 0) {
		uint32_t bits = address_bits;
		if (ioctl(s->fd, RSHIM_IOC_SET_DMA_MASK, &bits) != 0) {
			int rc = -errno;
			rdo_err("card %s: the driver refused a %u-bit DMA mask: %s (see the kernel "
				"log)",
				card->name, address_bits, strerror(errno));
			return rc;
		}
		s->address_bits = address_bits;
	} else if (address_bits != s->address_bits) {
		rdo_err("card %s: DMA memory for %u address bits, but the card's mask is %u",
			card->name, address_bits, s->address_bits);
		return -EINVAL;
	}
	size_t chunk = chunk_size(len, granule);
	unsigned n = (unsigned)(len / chunk);
	struct shim_buf *b = calloc(1, sizeof(*b));
	struct rshim_dma_chunk *c = calloc(n, sizeof(*c));
	if (b)
		b->seg = calloc(n, sizeof(*b->seg));
	if (!b || !c || !b->seg) {
		rdo_err("card %s: out of memory for a DMA chunk list", card->name);
		goto fail_mem;
	}
	struct rshim_dma_alloc req = {
	    .size = len, .chunk_size = chunk, .chunks = (uint64_t)(uintptr_t)c, .max_chunks = n};
	if (ioctl(s->fd, RSHIM_IOC_DMA_ALLOC, &req) != 0) {
		rdo_err("card %s: the driver cannot allocate %zu bytes of DMA memory in %u chunks "
			"of %zu below 2^%u: %s (see the kernel log; lower dma.superpages)",
			card->name, len, n, chunk, address_bits, strerror(errno));
		goto fail_mem;
	}
	b->id = req.id;
	b->nsegs = n;
	char *va = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (va == MAP_FAILED) {
		rdo_err("card %s: cannot reserve %zu bytes of address space: %s", card->name, len,
			strerror(errno));
		goto fail_alloc;
	}
	for (unsigned i = 0; i < n; i++) {
		void *at = mmap(va + c[i].offset, c[i].len, PROT_READ | PROT_WRITE,
				MAP_SHARED | MAP_FIXED, s->fd, (off_t)c[i].mmap_offset);
		if (at == MAP_FAILED) {
			rdo_err("card %s: cannot map DMA chunk %u: %s", card->name, i,
				strerror(errno));
			goto fail_map;
		}
		b->seg[i] =
		    (struct rdo_dma_seg){.off = c[i].offset, .len = c[i].len, .bus = c[i].bus};
	}
	if (s->nbufs == 0 && bus_master(s, true))
		goto fail_map;
	s->nbufs++;
	free(c);
	*buf = (struct rdo_dma_buf){
	    .va = va, .len = len, .nsegs = n, .seg = b->seg, .memory = "coherent", .priv = b};
	return 0;
fail_map:
	munmap(va, len);
fail_alloc:
	if (ioctl(s->fd, RSHIM_IOC_DMA_FREE, &b->id) != 0)
		rdo_err("card %s: cannot give DMA buffer %u back: %s", card->name, b->id,
			strerror(errno));
fail_mem:
	if (b)
		free(b->seg);
	free(b);
	free(c);
	return -ENOMEM;
}

/*
 * Bus mastering goes off before the memory goes back, and comes on again for
 * what is left: the channel has stopped the engine before it frees anything.
 */
static void shim_dma_free(struct rdo_card *card, struct rdo_dma_buf *buf)
{
	struct shim_card *s = to_shim(card);
	struct shim_buf *b = buf->priv;
	bus_master(s, false);
	munmap(buf->va, buf->len);
	if (ioctl(s->fd, RSHIM_IOC_DMA_FREE, &b->id) != 0)
		rdo_err("card %s: cannot give DMA buffer %u back: %s; the driver frees it when "
			"readoutd exits",
			card->name, b->id, strerror(errno));
	if (--s->nbufs)
		bus_master(s, true);
	free(b->seg);
	free(b);
}

static int shim_irq_fd(struct rdo_card *card)
{
	return to_shim(card)->irq_fd;
}

/* INTx: the driver masked the line on the interrupt; the device is acknowledged now. */
static void shim_irq_done(struct rdo_card *card)
{
	struct shim_card *s = to_shim(card);
	if (s->info.irq_type == RSHIM_IRQ_INTX && ioctl(s->fd, RSHIM_IOC_IRQ_UNMASK) != 0)
		rdo_err("card %s: cannot unmask the interrupt: %s", card->name, strerror(errno));
}

static void unmap_bars(struct shim_card *s)
{
	for (unsigned i = 0; i < RDO_CARD_MAX_BARS; i++)
		if (s->bar[i])
			munmap((void *)s->bar[i], s->base.bar_size[i]);
}

/* Why the device file did not open, and what to do about it. */
static void open_error(const char *name, const char *path, int err)
{
	if (err == ENOENT)
		rdo_err("card %s: no %s: load driver-shim for the card (modprobe readout_shim "
			"ids=VVVV:DDDD, or echo 'VVVV DDDD' > "
			"/sys/bus/pci/drivers/readout_shim/new_id) and check card.address",
			name, path);
	else if (err == EACCES)
		rdo_err("card %s: %s: permission denied: install config/99-readout-shim.rules and "
			"add this user to group readout",
			name, path);
	else
		rdo_err("card %s: cannot open %s: %s", name, path, strerror(err));
}

static bool pci_address_valid(const char *a)
{
	unsigned dom, bus, dev, fn;
	char end;
	return strlen(a) == 12 &&
	       sscanf(a, "%4x:%2x:%2x.%1x%c", &dom, &bus, &dev, &fn, &end) == 4 && dev < 32 &&
	       fn < 8;
}

static int bind_irq(struct shim_card *s)
{
	if (s->info.irq_vectors == 0) {
		rdo_warn("card %s: the driver has no interrupt for the card: the DMA channel polls",
			 s->base.name);
		return 0;
	}
	s->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct rshim_irq_eventfd req = {.vector = 0, .fd = s->irq_fd};
	if (s->irq_fd < 0 || ioctl(s->fd, RSHIM_IOC_IRQ_EVENTFD, &req) != 0) {
		rdo_err("card %s: cannot bind the interrupt to an eventfd: %s", s->base.name,
			strerror(errno));
		return -1;
	}
	return 0;
}

static struct rdo_card *shim_open(const struct rdo_card_opts *o)
{
	if (!pci_address_valid(o->address)) {
		rdo_err("card %s: card.address \"%s\" is not a PCI address: expected "
			"DDDD:BB:DD.F, as lspci -D prints it",
			o->name, o->address);
		return NULL;
	}
	if (o->links < 1 || o->links > 32) {
		rdo_err("card %s: the register map does not say how many links the card has: add "
			"dma: {links: N} to it",
			o->name);
		return NULL;
	}
	struct shim_card *s = calloc(1, sizeof(*s));
	if (!s) {
		rdo_err("card %s: out of memory", o->name);
		return NULL;
	}
	s->irq_fd = -1;
	char path[160];
	snprintf(path, sizeof(path), "/dev/readout/%s", o->address);
	s->fd = open(path, O_RDWR | O_CLOEXEC);
	if (s->fd < 0) {
		open_error(o->name, path, errno);
		goto fail;
	}
	if (ioctl(s->fd, RSHIM_IOC_INFO, &s->info) != 0) {
		rdo_err("card %s: %s does not answer the shim's information request: %s; is it a "
			"driver-shim device?",
			o->name, path, strerror(errno));
		goto fail_fd;
	}
	if (s->info.abi_version != RSHIM_ABI_VERSION) {
		rdo_err("card %s: driver-shim speaks ABI version %u, this readoutd version %u: "
			"build and load the module from the same source as readoutd",
			o->name, s->info.abi_version, RSHIM_ABI_VERSION);
		goto fail_fd;
	}
	if (ioctl(s->fd, RSHIM_IOC_CLAIM) != 0) {
		struct rshim_info now = {0};
		ioctl(s->fd, RSHIM_IOC_INFO, &now);
		rdo_err("card %s: the DMA side of %s is owned by pid %d: one owner per card; stop "
			"that process first",
			o->name, o->address, now.owner_pid);
		goto fail_fd;
	}
	s->base.links = o->links;
	for (unsigned i = 0; i < RDO_CARD_MAX_BARS && i < RSHIM_MAX_BARS; i++) {
		const struct rshim_bar *b = &s->info.bar[i];
		if (!(b->flags & RSHIM_BAR_MEM) || b->size == 0)
			continue;
		if (b->size < SHIM_PAGE) {
			rdo_warn(
			    "card %s: BAR%u is %llu bytes, less than a page: the driver does not "
			    "map it, so its registers are out of reach",
			    o->name, i, (unsigned long long)b->size);
			continue;
		}
		void *p = mmap(NULL, b->size, PROT_READ | PROT_WRITE, MAP_SHARED, s->fd,
			       (off_t)RSHIM_MMAP_BAR(i));
		if (p == MAP_FAILED) {
			rdo_err("card %s: cannot map BAR%u (%llu bytes): %s", o->name, i,
				(unsigned long long)b->size, strerror(errno));
			goto fail_bars;
		}
		s->bar[i] = p;
		s->base.bar_size[i] = b->size;
		s->base.nbars = i + 1;
	}
	if (s->base.nbars == 0) {
		rdo_err("card %s: %s has no memory BAR to map", o->name, o->address);
		goto fail_fd;
	}
	if (bind_irq(s))
		goto fail_bars;
	static const char *const irq_kind[] = {"no interrupt", "INTx", "MSI", "MSI-X"};
	char link[48] = "not PCIe";
	if (s->info.link_width)
		snprintf(link, sizeof(link), "PCIe %u MT/s x%u", s->info.link_speed,
			 s->info.link_width);
	rdo_info("card %s: %s (%04x:%04x rev %u) through driver-shim ABI %u: BAR0 %llu KiB, %s "
		 "(%u vectors), %s, NUMA node %d, %u links",
		 o->name, o->address, s->info.vendor, s->info.device, s->info.revision,
		 s->info.abi_version, (unsigned long long)s->info.bar[0].size >> 10,
		 irq_kind[s->info.irq_type & 3], s->info.irq_vectors, link, s->info.numa_node,
		 o->links);
	s->base.numa_node = s->info.numa_node;
	return &s->base;
fail_bars:
	unmap_bars(s);
	if (s->irq_fd >= 0)
		close(s->irq_fd);
fail_fd:
	close(s->fd);
fail:
	free(s);
	return NULL;
}

/* The driver switches bus mastering off and frees what is left when the file closes. */
static void shim_close(struct rdo_card *card)
{
	struct shim_card *s = to_shim(card);
	unmap_bars(s);
	close(s->fd);
	if (s->irq_fd >= 0)
		close(s->irq_fd);
	free(s);
}

const struct rdo_card_ops rdo_card_shim_ops = {
    .name = "shim",
    .open = shim_open,
    .close = shim_close,
    .read = shim_read,
    .write = shim_write,
    .dma_alloc = shim_dma_alloc,
    .dma_free = shim_dma_free,
    .irq_fd = shim_irq_fd,
    .irq_done = shim_irq_done,
};
