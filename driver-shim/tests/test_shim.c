/*
 * test_shim: the readout_shim module against QEMU's edu device, inside the
 * test VM, as root (driver-shim/tests/guest-shim.sh runs it).
 *
 *   RSHIM_DEV=/dev/readout/0000:00:04.0 test_shim --jobs 1
 *
 * RSHIM_EXPECT_IRQ (msi, the default, msix or intx) is the interrupt kind the
 * module was loaded for; every test runs with any of them. Suite shim_unbind
 * unbinds the device through sysfs and binds it again.
 *
 * edu (QEMU hw/misc/edu.c): BAR0 of 1 MiB; 0x00 identification, 0x04
 * liveness (reads back ~written), 0x24 interrupt status, 0x60 raise, 0x64
 * acknowledge, DMA at 0x80 source, 0x88 destination, 0x90 count, 0x98
 * command; a 4 KiB buffer at device address 0x40000; 28-bit DMA addresses;
 * a DMA completes about 100 ms after it starts.
 */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "uapi/readout_shim.h"

#define EDU_ID	       0x00
#define EDU_LIVE       0x04
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_RAISE  0x60
#define EDU_IRQ_ACK    0x64
#define EDU_DMA_SRC    0x80
#define EDU_DMA_DST    0x88
#define EDU_DMA_CNT    0x90
#define EDU_DMA_CMD    0x98
#define EDU_CMD_RUN    0x1
#define EDU_CMD_TO_RAM 0x2
#define EDU_CMD_IRQ    0x4
#define EDU_DMA_IRQ    0x100
#define EDU_BUF	       0x40000
#define EDU_IDENT      0x010000edu
#define BAR0_SIZE      (1u << 20)
#define PAGE	       4096u
#define WAIT_MS	       2000
#define MAX_CHUNKS     64

typedef volatile uint8_t *bar_t;

static const char *dev_path(void)
{
	const char *p = getenv("RSHIM_DEV");

	cr_assert(p && *p, "RSHIM_DEV is not set (e.g. /dev/readout/0000:00:04.0)");
	return p;
}

static int open_dev(void)
{
	int fd = open(dev_path(), O_RDWR | O_CLOEXEC);

	cr_assert(fd >= 0, "open %s: %s", dev_path(), strerror(errno));
	return fd;
}

/* 0 or the errno of the ioctl. */
static int ioc(int fd, unsigned long req, void *arg)
{
	return ioctl(fd, req, arg) ? errno : 0;
}

static int ioc_u32(int fd, unsigned long req, uint32_t v)
{
	return ioc(fd, req, &v);
}

static void ok(int err, const char *what)
{
	cr_assert(err == 0, "%s: %s", what, strerror(err));
}

static void expect_err(int err, int want, const char *what)
{
	cr_assert(err == want, "%s: got %s, want %s", what, err ? strerror(err) : "success",
		  strerror(want));
}

static uint32_t expected_irq(void)
{
	const char *k = getenv("RSHIM_EXPECT_IRQ");

	if (!k || !strcmp(k, "msi"))
		return RSHIM_IRQ_MSI;
	if (!strcmp(k, "msix"))
		return RSHIM_IRQ_MSIX;
	if (!strcmp(k, "intx"))
		return RSHIM_IRQ_INTX;
	cr_assert_fail("RSHIM_EXPECT_IRQ=%s: want msi, msix or intx", k);
	return 0;
}

static struct rshim_info info_of(int fd)
{
	struct rshim_info info;

	memset(&info, 0xa5, sizeof(info));
	ok(ioc(fd, RSHIM_IOC_INFO, &info), "RSHIM_IOC_INFO");
	return info;
}

static bar_t map_bar0(int fd)
{
	void *p = mmap(NULL, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, RSHIM_MMAP_BAR(0));

	cr_assert(p != MAP_FAILED, "mmap BAR0: %s", strerror(errno));
	return p;
}

static uint32_t rd32(bar_t bar, unsigned int off)
{
	return *(volatile uint32_t *)(bar + off);
}

static void wr32(bar_t bar, unsigned int off, uint32_t v)
{
	*(volatile uint32_t *)(bar + off) = v;
}

static void wr64(bar_t bar, unsigned int off, uint64_t v)
{
	*(volatile uint64_t *)(bar + off) = v;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The eventfd's count after at most timeout_ms, 0 if it was not signalled. */
static uint64_t wait_event(int efd, int timeout_ms)
{
	struct pollfd p = {.fd = efd, .events = POLLIN};
	uint64_t n = 0;

	if (poll(&p, 1, timeout_ms) != 1)
		return 0;
	if (read(efd, &n, sizeof(n)) != sizeof(n))
		return 0;
	return n;
}

static int bind_eventfd(int fd, uint32_t vector)
{
	int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	struct rshim_irq_eventfd b = {.vector = vector, .fd = efd};

	cr_assert(efd >= 0, "eventfd: %s", strerror(errno));
	ok(ioc(fd, RSHIM_IOC_IRQ_EVENTFD, &b), "bind an eventfd to vector 0");
	return efd;
}

/* Acknowledges whatever edu has raised (a previous test's, a dead process's). */
static void ack_stale(int fd, bar_t bar)
{
	uint32_t st = rd32(bar, EDU_IRQ_STATUS);

	if (st) {
		wr32(bar, EDU_IRQ_ACK, st);
		if (expected_irq() == RSHIM_IRQ_INTX)
			ok(ioc(fd, RSHIM_IOC_IRQ_UNMASK, NULL),
			   "IRQ_UNMASK after a stale interrupt");
	}
}

/* Waits for bits in edu's interrupt status through the eventfd, acknowledges. */
static void wait_irq(int fd, int efd, bar_t bar, uint32_t bits, const char *what)
{
	uint64_t n = wait_event(efd, WAIT_MS);
	uint32_t st;

	cr_assert(n > 0, "%s: no interrupt on the eventfd within %d ms (edu status %#x)", what,
		  WAIT_MS, rd32(bar, EDU_IRQ_STATUS));
	st = rd32(bar, EDU_IRQ_STATUS);
	cr_assert((st & bits) == bits, "%s: edu interrupt status %#x lacks %#x", what, st, bits);
	wr32(bar, EDU_IRQ_ACK, st);
	cr_assert(rd32(bar, EDU_IRQ_STATUS) == 0, "%s: status %#x after the acknowledge", what,
		  rd32(bar, EDU_IRQ_STATUS));
	if (expected_irq() == RSHIM_IRQ_INTX)
		ok(ioc(fd, RSHIM_IOC_IRQ_UNMASK, NULL), "IRQ_UNMASK");
}

static void edu_dma_start(bar_t bar, uint64_t src, uint64_t dst, uint64_t cnt, uint32_t cmd)
{
	wr64(bar, EDU_DMA_SRC, src);
	wr64(bar, EDU_DMA_DST, dst);
	wr64(bar, EDU_DMA_CNT, cnt);
	wr32(bar, EDU_DMA_CMD, cmd | EDU_CMD_RUN | EDU_CMD_IRQ);
}

static void edu_dma(int fd, int efd, bar_t bar, uint64_t src, uint64_t dst, uint64_t cnt,
		    uint32_t cmd, const char *what)
{
	cr_assert((rd32(bar, EDU_DMA_CMD) & EDU_CMD_RUN) == 0, "%s: edu DMA engine busy", what);
	edu_dma_start(bar, src, dst, cnt, cmd);
	wait_irq(fd, efd, bar, EDU_DMA_IRQ, what);
	cr_assert((rd32(bar, EDU_DMA_CMD) & EDU_CMD_RUN) == 0,
		  "%s: interrupt came but the DMA engine still runs", what);
}

struct shim_buf {
	uint32_t id;
	size_t size;
	unsigned int n;
	struct rshim_dma_chunk ch[MAX_CHUNKS];
	uint8_t *map;
};

static int try_alloc(int fd, struct shim_buf *b, uint64_t size, uint64_t chunk, uint32_t max)
{
	struct rshim_dma_alloc a = {
	    .size = size,
	    .chunk_size = chunk,
	    .chunks = (uintptr_t)b->ch,
	    .max_chunks = max,
	};
	int err;

	memset(b, 0, sizeof(*b));
	err = ioc(fd, RSHIM_IOC_DMA_ALLOC, &a);
	if (!err) {
		b->id = a.id;
		b->size = size;
		b->n = size / chunk;
	}
	return err;
}

/* Allocates and maps every chunk, in order, into one reserved range. */
static void alloc_map(int fd, struct shim_buf *b, size_t size, size_t chunk)
{
	void *base;
	unsigned int i;

	ok(try_alloc(fd, b, size, chunk, MAX_CHUNKS), "DMA_ALLOC");
	cr_assert(b->id != 0, "DMA_ALLOC gave buffer id 0");
	base = mmap(NULL, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(base != MAP_FAILED, "reserve %zu bytes: %s", size, strerror(errno));
	for (i = 0; i < b->n; i++) {
		struct rshim_dma_chunk *c = &b->ch[i];
		void *p;

		cr_assert(c->offset == i * chunk && c->len == chunk,
			  "chunk %u: offset %llu len %llu, want %zu and %zu", i,
			  (unsigned long long)c->offset, (unsigned long long)c->len, i * chunk,
			  chunk);
		cr_assert(c->bus != 0 && c->bus % PAGE == 0, "chunk %u: bus address %#llx", i,
			  (unsigned long long)c->bus);
		p = mmap((uint8_t *)base + c->offset, c->len, PROT_READ | PROT_WRITE,
			 MAP_SHARED | MAP_FIXED, fd, (off_t)c->mmap_offset);
		cr_assert(p == (uint8_t *)base + c->offset, "mmap chunk %u at %#llx: %s", i,
			  (unsigned long long)c->mmap_offset, strerror(errno));
	}
	b->map = base;
}

static void unmap_free(int fd, struct shim_buf *b)
{
	cr_assert(munmap(b->map, b->size) == 0, "munmap: %s", strerror(errno));
	ok(ioc_u32(fd, RSHIM_IOC_DMA_FREE, b->id), "DMA_FREE");
}

static void fill(uint8_t *p, size_t n, uint32_t seed)
{
	uint32_t x = seed | 1;
	size_t i;

	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)(x >> 7) | 1; /* never 0: a zero byte means untouched */
	}
}

/* The first offset in [from, to) whose byte is not zero, or to. */
static size_t first_nonzero(const uint8_t *p, size_t from, size_t to)
{
	while (from < to && p[from] == 0)
		from++;
	return from;
}

/* The pattern goes to the device and back into another place, byte exact. */
static void round_trip(int fd, int efd, bar_t bar, uint8_t *src_cpu, uint64_t src_bus,
		       uint8_t *dst_cpu, size_t dst_len, uint64_t dst_bus, uint32_t seed)
{
	const size_t n_in = 4000, dev_off = 96, n_out = 3000, dst_off = 1000;
	uint8_t want[4000];
	size_t i;

	fill(src_cpu, n_in, seed);
	memcpy(want, src_cpu, n_in);
	edu_dma(fd, efd, bar, src_bus, EDU_BUF, n_in, 0, "DMA RAM to device");
	edu_dma(fd, efd, bar, EDU_BUF + dev_off, dst_bus + dst_off, n_out, EDU_CMD_TO_RAM,
		"DMA device to RAM");
	for (i = 0; i < n_out; i++)
		cr_assert(dst_cpu[dst_off + i] == want[dev_off + i],
			  "byte %zu of the DMA back: %#x, want %#x", i, dst_cpu[dst_off + i],
			  want[dev_off + i]);
	i = first_nonzero(dst_cpu, 0, dst_off);
	cr_assert(i == dst_off, "byte %zu before the DMA target was written (%#x)", i, dst_cpu[i]);
	i = first_nonzero(dst_cpu, dst_off + n_out, dst_len);
	cr_assert(i == dst_len, "byte %zu after the DMA target was written (%#x)", i, dst_cpu[i]);
	cr_assert(memcmp(src_cpu, want, n_in) == 0, "the DMA source changed");
}

/* A number from /sys/bus/pci/devices/ADDR/NAME (hex with 0x, or decimal). */
static unsigned int sysfs_hex(const char *addr, const char *name)
{
	char path[256];
	long v = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/%s", addr, name);
	f = fopen(path, "re");
	cr_assert(f, "open %s: %s", path, strerror(errno));
	cr_assert(fscanf(f, "%li", &v) == 1, "no number in %s", path);
	fclose(f);
	return (unsigned int)v;
}

TestSuite(shim, .timeout = 30);

Test(shim, info)
{
	int fd = open_dev();
	struct rshim_info info = info_of(fd);
	const char *addr = strrchr(dev_path(), '/') + 1;
	unsigned int dom, bus, slot, fn;
	int i;

	cr_assert(info.abi_version == RSHIM_ABI_VERSION, "abi_version %u, want %u",
		  info.abi_version, RSHIM_ABI_VERSION);
	cr_assert(info.vendor == 0x1234 && info.device == 0x11e8, "ids %04x:%04x, want 1234:11e8",
		  info.vendor, info.device);
	cr_assert(sscanf(addr, "%x:%x:%x.%x", &dom, &bus, &slot, &fn) == 4,
		  "RSHIM_DEV does not end in DDDD:BB:DD.F: %s", dev_path());
	cr_assert(info.domain == dom && info.bus == bus && info.slot == slot && info.function == fn,
		  "address %04x:%02x:%02x.%x, want %s", info.domain, info.bus, info.slot,
		  info.function, addr);
	/* What the PCI core read from the configuration space. */
	cr_assert(info.revision == sysfs_hex(addr, "revision"), "revision %#x, want %#x",
		  info.revision, sysfs_hex(addr, "revision"));
	cr_assert(info.class_code == sysfs_hex(addr, "class"), "class %#x, want %#x",
		  info.class_code, sysfs_hex(addr, "class"));
	cr_assert(info.subsystem_vendor == sysfs_hex(addr, "subsystem_vendor") &&
		      info.subsystem_device == sysfs_hex(addr, "subsystem_device"),
		  "subsystem %04x:%04x, want %04x:%04x", info.subsystem_vendor,
		  info.subsystem_device, sysfs_hex(addr, "subsystem_vendor"),
		  sysfs_hex(addr, "subsystem_device"));
	cr_assert(info.numa_node == (int)sysfs_hex(addr, "numa_node"), "numa_node %d, want %d",
		  info.numa_node, (int)sysfs_hex(addr, "numa_node"));
	cr_assert(info.revision == 0x10, "revision %#x, edu has 0x10", info.revision);
	cr_assert(info.bar[0].size == BAR0_SIZE, "BAR0 size %llu, want 1 MiB",
		  (unsigned long long)info.bar[0].size);
	cr_assert((info.bar[0].flags & RSHIM_BAR_MEM) && !(info.bar[0].flags & RSHIM_BAR_IO),
		  "BAR0 flags %#x, want a memory BAR", info.bar[0].flags);
	for (i = 1; i < RSHIM_MAX_BARS; i++)
		cr_assert(info.bar[i].size == 0 && info.bar[i].flags == 0,
			  "BAR%d: size %llu flags %#x, want none", i,
			  (unsigned long long)info.bar[i].size, info.bar[i].flags);
	cr_assert(info.irq_type == expected_irq(), "irq_type %u, want %u", info.irq_type,
		  expected_irq());
	cr_assert(info.irq_vectors >= 1, "irq_vectors %u", info.irq_vectors);
	cr_assert(info.owner_pid == 0, "owner_pid %d before any claim", info.owner_pid);
	cr_assert(info.link_speed == 0 && info.link_width == 0,
		  "link %u MT/s x%u on conventional PCI", info.link_speed, info.link_width);
	cr_assert(info.dma_mask_bits == 64, "dma_mask_bits %u with no owner, want 64",
		  info.dma_mask_bits);
	cr_assert(info.reserved == 0 && info.bar[0].reserved == 0, "reserved fields not zero");
	cr_log_info("%s: irq %u x%u, numa %d, subsystem %04x:%04x", addr, info.irq_type,
		    info.irq_vectors, info.numa_node, info.subsystem_vendor, info.subsystem_device);
	close(fd);
}

Test(shim, bar_mapping)
{
	static const uint32_t vals[] = {0, 0xffffffffu, 0x12345678u, 0xdeadbeefu, 0xa5a55a5au};
	int fd = open_dev();
	bar_t bar = map_bar0(fd);
	void *p;
	size_t i;

	cr_assert(rd32(bar, EDU_ID) == EDU_IDENT, "identification %#x, want %#x", rd32(bar, EDU_ID),
		  EDU_IDENT);
	for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		wr32(bar, EDU_LIVE, vals[i]);
		cr_assert(rd32(bar, EDU_LIVE) == ~vals[i], "liveness: wrote %#x, read %#x", vals[i],
			  rd32(bar, EDU_LIVE));
	}
	/* A window further in, through a second mapping. */
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, RSHIM_MMAP_BAR(0) + PAGE);
	cr_assert(p != MAP_FAILED, "mmap BAR0 page 1: %s", strerror(errno));
	munmap(p, PAGE);

	errno = 0;
	p = mmap(NULL, BAR0_SIZE + PAGE, PROT_READ, MAP_SHARED, fd, RSHIM_MMAP_BAR(0));
	cr_assert(p == MAP_FAILED && errno == EINVAL, "mapping past BAR0's end: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, RSHIM_MMAP_BAR(0) + BAR0_SIZE);
	cr_assert(p == MAP_FAILED && errno == EINVAL, "mapping at BAR0's end: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	for (i = 1; i <= RSHIM_MAX_BARS; i++) {
		p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, RSHIM_MMAP_BAR(i));
		cr_assert(p == MAP_FAILED && errno == EINVAL, "mapping missing BAR%zu: %s", i,
			  p == MAP_FAILED ? strerror(errno) : "mapped");
	}
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, RSHIM_MMAP_BAR(0));
	cr_assert(p == MAP_FAILED && errno == EINVAL, "a private BAR0 mapping: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, RSHIM_MMAP_DMA + PAGE);
	cr_assert(p == MAP_FAILED && errno == EINVAL, "mapping a DMA buffer that is not: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	munmap((void *)bar, BAR0_SIZE);
	close(fd);
}

/* Test 3: an interrupt raised through edu reaches the eventfd. */
Test(shim, interrupt)
{
	int fd = open_dev(), efd;
	bar_t bar = map_bar0(fd);
	struct rshim_info info;
	struct rshim_irq_eventfd b;
	int other;

	ok(ioc(fd, RSHIM_IOC_CLAIM, NULL), "CLAIM");
	info = info_of(fd);
	efd = bind_eventfd(fd, 0);
	/* MSI is a memory write by the device: it needs bus mastering. */
	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 1), "BUS_MASTER 1");
	ack_stale(fd, bar);
	wait_event(efd, 0);

	wr32(bar, EDU_IRQ_RAISE, 0x5);
	cr_assert(wait_event(efd, WAIT_MS) >= 1, "no interrupt on the eventfd within %d ms",
		  WAIT_MS);
	cr_assert(rd32(bar, EDU_IRQ_STATUS) == 0x5, "interrupt status %#x, want 0x5",
		  rd32(bar, EDU_IRQ_STATUS));
	wr32(bar, EDU_IRQ_ACK, 0x5);
	cr_assert(rd32(bar, EDU_IRQ_STATUS) == 0, "interrupt status %#x after the acknowledge",
		  rd32(bar, EDU_IRQ_STATUS));
	if (info.irq_type == RSHIM_IRQ_INTX)
		ok(ioc(fd, RSHIM_IOC_IRQ_UNMASK, NULL), "IRQ_UNMASK");
	else
		expect_err(ioc(fd, RSHIM_IOC_IRQ_UNMASK, NULL), EINVAL, "IRQ_UNMASK without INTx");
	cr_assert(wait_event(efd, 200) == 0, "a second event with nothing raised");

	/* A second raise, a second event. */
	wr32(bar, EDU_IRQ_RAISE, 0x2);
	wait_irq(fd, efd, bar, 0x2, "second raise");

	/* Unbound: nothing reaches the old eventfd. */
	b = (struct rshim_irq_eventfd){.vector = 0, .fd = -1};
	ok(ioc(fd, RSHIM_IOC_IRQ_EVENTFD, &b), "unbind the eventfd");
	wr32(bar, EDU_IRQ_RAISE, 0x1);
	cr_assert(wait_event(efd, 300) == 0, "the unbound eventfd was signalled");
	ack_stale(fd, bar);

	b = (struct rshim_irq_eventfd){.vector = info.irq_vectors, .fd = efd};
	expect_err(ioc(fd, RSHIM_IOC_IRQ_EVENTFD, &b), EINVAL, "bind vector irq_vectors");
	b = (struct rshim_irq_eventfd){.vector = 0, .fd = fd};
	expect_err(ioc(fd, RSHIM_IOC_IRQ_EVENTFD, &b), EINVAL, "bind a file that is no eventfd");
	b = (struct rshim_irq_eventfd){.vector = 0, .fd = -2};
	expect_err(ioc(fd, RSHIM_IOC_IRQ_EVENTFD, &b), EINVAL, "bind fd -2");
	other = dup(efd);
	close(other);
	b = (struct rshim_irq_eventfd){.vector = 0, .fd = other};
	expect_err(ioc(fd, RSHIM_IOC_IRQ_EVENTFD, &b), EBADF, "bind a closed fd");
	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 0), "BUS_MASTER 0");
	close(efd);
	munmap((void *)bar, BAR0_SIZE);
	close(fd);
}

/* INTx is level triggered: masked by the driver until user space unmasks. */
Test(shim, intx_level)
{
	int fd, efd, efd2;
	bar_t bar;
	struct rshim_irq_eventfd b = {.vector = 0, .fd = -1};

	if (expected_irq() != RSHIM_IRQ_INTX)
		cr_skip_test("the module runs with MSI (irq_mode=intx tests this)");
	fd = open_dev();
	bar = map_bar0(fd);
	ok(ioc(fd, RSHIM_IOC_CLAIM, NULL), "CLAIM");
	efd = bind_eventfd(fd, 0);
	ack_stale(fd, bar);
	wait_event(efd, 0);

	wr32(bar, EDU_IRQ_RAISE, 0x1);
	cr_assert(wait_event(efd, WAIT_MS) >= 1, "no INTx event within %d ms", WAIT_MS);
	cr_assert(wait_event(efd, 300) == 0, "events go on while the line is masked");
	/* Still asserted: unmasking it signals again at once. */
	ok(ioc(fd, RSHIM_IOC_IRQ_UNMASK, NULL), "IRQ_UNMASK");
	cr_assert(wait_event(efd, WAIT_MS) >= 1, "unmasked while asserted, but no event");
	wr32(bar, EDU_IRQ_ACK, 0x1);
	ok(ioc(fd, RSHIM_IOC_IRQ_UNMASK, NULL), "IRQ_UNMASK");
	cr_assert(wait_event(efd, 300) == 0, "an event after the acknowledge and unmask");

	/* Asserted with no eventfd bound: binding one delivers it. */
	ok(ioc(fd, RSHIM_IOC_IRQ_EVENTFD, &b), "unbind");
	wr32(bar, EDU_IRQ_RAISE, 0x2);
	sleep_ms(100);
	efd2 = bind_eventfd(fd, 0);
	cr_assert(wait_event(efd2, WAIT_MS) >= 1, "binding while asserted gave no event");
	wait_event(efd, 0);
	wr32(bar, EDU_IRQ_ACK, 0x2);
	ok(ioc(fd, RSHIM_IOC_IRQ_UNMASK, NULL), "IRQ_UNMASK");

	/* And the normal flow goes on. */
	wr32(bar, EDU_IRQ_RAISE, 0x4);
	wait_irq(fd, efd2, bar, 0x4, "raise after rebinding");
	cr_assert(wait_event(efd, 200) == 0, "the old eventfd was signalled");
	close(efd);
	close(efd2);
	munmap((void *)bar, BAR0_SIZE);
	close(fd);
}

/* Test 4: through the device and back, byte exact, in two mapped chunks. */
Test(shim, dma_round_trip)
{
	int fd = open_dev(), efd;
	bar_t bar = map_bar0(fd);
	struct shim_buf b;
	unsigned int i;

	ok(ioc(fd, RSHIM_IOC_CLAIM, NULL), "CLAIM");
	ok(ioc_u32(fd, RSHIM_IOC_SET_DMA_MASK, 28), "SET_DMA_MASK 28");
	cr_assert(info_of(fd).dma_mask_bits == 28, "INFO dma_mask_bits %u after setting 28",
		  info_of(fd).dma_mask_bits);
	alloc_map(fd, &b, 2 * PAGE, PAGE);
	for (i = 0; i < b.n; i++)
		cr_assert(b.ch[i].bus + b.ch[i].len <= (1ull << 28),
			  "chunk %u at bus %#llx is beyond the 28-bit mask", i,
			  (unsigned long long)b.ch[i].bus);
	cr_assert(first_nonzero(b.map, 0, b.size) == b.size, "a new buffer is not zeroed");
	efd = bind_eventfd(fd, 0);
	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 1), "BUS_MASTER 1");
	ack_stale(fd, bar);
	wait_event(efd, 0);

	round_trip(fd, efd, bar, b.map, b.ch[0].bus, b.map + PAGE, PAGE, b.ch[1].bus, 42);

	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 0), "BUS_MASTER 0");
	unmap_free(fd, &b);
	close(efd);
	munmap((void *)bar, BAR0_SIZE);
	close(fd);
}

/* Windows into chunks of two pages; a split mapping still counts as mapped. */
Test(shim, dma_partial_mappings)
{
	int fd = open_dev();
	struct shim_buf b;
	uint8_t *whole, *page1, *next;
	size_t i;

	ok(ioc(fd, RSHIM_IOC_CLAIM, NULL), "CLAIM");
	ok(try_alloc(fd, &b, 4 * PAGE, 2 * PAGE, MAX_CHUNKS), "DMA_ALLOC 2 chunks of 2 pages");
	whole = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		     (off_t)b.ch[0].mmap_offset);
	cr_assert(whole != MAP_FAILED, "mmap chunk 0: %s", strerror(errno));
	page1 = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		     (off_t)(b.ch[0].mmap_offset + PAGE));
	cr_assert(page1 != MAP_FAILED, "mmap page 1 of chunk 0: %s", strerror(errno));
	next = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		    (off_t)(b.ch[0].mmap_offset + 2 * PAGE));
	cr_assert(next != MAP_FAILED, "mmap at chunk 0 + 2 pages (chunk 1): %s", strerror(errno));
	cr_assert(b.ch[1].mmap_offset == b.ch[0].mmap_offset + 2 * PAGE,
		  "chunk 1's mmap_offset is not chunk 0's + its length");

	fill(page1, PAGE, 5);
	for (i = 0; i < PAGE; i++)
		cr_assert(whole[PAGE + i] == page1[i],
			  "byte %zu of page 1 differs between mappings", i);
	cr_assert(first_nonzero(whole, 0, PAGE) == PAGE, "page 0 of chunk 0 was written");
	cr_assert(first_nonzero(next, 0, PAGE) == PAGE, "chunk 1 was written");

	munmap(page1, PAGE);
	munmap(next, PAGE);
	/* Split in two vmas: both count until both are gone. */
	cr_assert(munmap(whole, PAGE) == 0, "munmap half: %s", strerror(errno));
	expect_err(ioc_u32(fd, RSHIM_IOC_DMA_FREE, b.id), EBUSY, "DMA_FREE with half mapped");
	cr_assert(munmap(whole + PAGE, PAGE) == 0, "munmap the other half: %s", strerror(errno));
	ok(ioc_u32(fd, RSHIM_IOC_DMA_FREE, b.id), "DMA_FREE once unmapped");
	close(fd);
}

/* Test 5: one owner; the others and bad arguments are refused. */
Test(shim, ownership_and_bad_input)
{
	int fd = open_dev(), fd2 = open_dev(), efd;
	struct rshim_irq_eventfd b;
	struct shim_buf buf, junk;
	void *p;

	ok(ioc(fd, RSHIM_IOC_CLAIM, NULL), "CLAIM");
	ok(ioc(fd, RSHIM_IOC_CLAIM, NULL), "CLAIM again by the owner");
	expect_err(ioc(fd2, RSHIM_IOC_CLAIM, NULL), EBUSY, "CLAIM by a second open");
	cr_assert(info_of(fd2).owner_pid == getpid(), "INFO owner_pid %d, want %d",
		  info_of(fd2).owner_pid, getpid());

	/* The owner-only ioctls from the other file. */
	expect_err(ioc_u32(fd2, RSHIM_IOC_SET_DMA_MASK, 32), EPERM, "SET_DMA_MASK by a non-owner");
	expect_err(try_alloc(fd2, &junk, PAGE, PAGE, 1), EPERM, "DMA_ALLOC by a non-owner");
	efd = eventfd(0, EFD_CLOEXEC);
	b = (struct rshim_irq_eventfd){.vector = 0, .fd = efd};
	expect_err(ioc(fd2, RSHIM_IOC_IRQ_EVENTFD, &b), EPERM, "IRQ_EVENTFD by a non-owner");
	expect_err(ioc(fd2, RSHIM_IOC_IRQ_UNMASK, NULL), EPERM, "IRQ_UNMASK by a non-owner");
	expect_err(ioc_u32(fd2, RSHIM_IOC_BUS_MASTER, 1), EPERM, "BUS_MASTER by a non-owner");

	ok(try_alloc(fd, &buf, 2 * PAGE, PAGE, MAX_CHUNKS), "DMA_ALLOC");
	expect_err(ioc_u32(fd2, RSHIM_IOC_DMA_FREE, buf.id), EPERM, "DMA_FREE by a non-owner");
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd2, (off_t)buf.ch[0].mmap_offset);
	cr_assert(p == MAP_FAILED && errno == EPERM,
		  "mmap of the owner's chunk by another file: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");

	/* Bad arguments. */
	expect_err(ioc_u32(fd, RSHIM_IOC_DMA_FREE, 0xbad), EINVAL, "DMA_FREE of no buffer");
	expect_err(try_alloc(fd, &junk, 3 * PAGE, 2 * PAGE, MAX_CHUNKS), EINVAL,
		   "DMA_ALLOC size not a multiple of the chunk size");
	expect_err(try_alloc(fd, &junk, 8u << 20, 8u << 20, MAX_CHUNKS), EINVAL,
		   "DMA_ALLOC chunks of 8 MiB");
	expect_err(try_alloc(fd, &junk, 2 * (PAGE + 512), PAGE + 512, MAX_CHUNKS), EINVAL,
		   "DMA_ALLOC chunk size not page aligned");
	expect_err(try_alloc(fd, &junk, 0, PAGE, MAX_CHUNKS), EINVAL, "DMA_ALLOC of 0 bytes");
	expect_err(try_alloc(fd, &junk, 4 * PAGE, PAGE, 3), EINVAL, "DMA_ALLOC beyond max_chunks");
	expect_err(ioc_u32(fd, RSHIM_IOC_SET_DMA_MASK, 12), EINVAL, "SET_DMA_MASK 12");
	expect_err(ioc_u32(fd, RSHIM_IOC_SET_DMA_MASK, 65), EINVAL, "SET_DMA_MASK 65");
	expect_err(ioc_u32(fd, RSHIM_IOC_SET_DMA_MASK, 32), EBUSY, "SET_DMA_MASK with a buffer");
	expect_err(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 2), EINVAL, "BUS_MASTER 2");
	expect_err(ioc(fd, _IO(RSHIM_IOC_MAGIC, 0x3f), NULL), ENOTTY, "an unknown ioctl");
	p = mmap(NULL, 2 * PAGE, PROT_READ, MAP_SHARED, fd, (off_t)buf.ch[0].mmap_offset);
	cr_assert(p == MAP_FAILED && errno == EINVAL, "a mapping over two chunks: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	p = mmap(NULL, PAGE, PROT_READ, MAP_PRIVATE, fd, (off_t)buf.ch[0].mmap_offset);
	cr_assert(p == MAP_FAILED && errno == EINVAL, "a private chunk mapping: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");

	/* DMA_FREE while mapped, while bus mastering is on. */
	p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)buf.ch[1].mmap_offset);
	cr_assert(p != MAP_FAILED, "mmap chunk 1: %s", strerror(errno));
	expect_err(ioc_u32(fd, RSHIM_IOC_DMA_FREE, buf.id), EBUSY, "DMA_FREE while mapped");
	cr_assert(munmap(p, PAGE) == 0, "munmap: %s", strerror(errno));
	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 1), "BUS_MASTER 1");
	expect_err(ioc_u32(fd, RSHIM_IOC_DMA_FREE, buf.id), EBUSY,
		   "DMA_FREE with bus mastering on");
	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 0), "BUS_MASTER 0");
	ok(ioc_u32(fd, RSHIM_IOC_DMA_FREE, buf.id), "DMA_FREE");
	expect_err(ioc_u32(fd, RSHIM_IOC_DMA_FREE, buf.id), EINVAL, "DMA_FREE twice");
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, (off_t)buf.ch[0].mmap_offset);
	cr_assert(p == MAP_FAILED && errno == EINVAL, "mmap of a freed buffer: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	ok(ioc_u32(fd, RSHIM_IOC_SET_DMA_MASK, 32), "SET_DMA_MASK 32 once no buffer is left");

	/* The owner goes: the other file may claim, and the mask is back. */
	close(fd);
	cr_assert(info_of(fd2).owner_pid == 0, "owner_pid %d after the owner closed",
		  info_of(fd2).owner_pid);
	cr_assert(info_of(fd2).dma_mask_bits == 64, "dma_mask_bits %u after the owner closed",
		  info_of(fd2).dma_mask_bits);
	ok(ioc(fd2, RSHIM_IOC_CLAIM, NULL), "CLAIM once the owner closed");
	close(efd);
	close(fd2);
}

/* Test 6 child: owns the device and has a DMA into its buffer in flight. */
static void child_dma_then_wait(int wfd)
{
	struct rshim_dma_alloc a = {.size = PAGE, .chunk_size = PAGE, .max_chunks = 1};
	struct rshim_dma_chunk ch;
	struct rshim_irq_eventfd b = {.vector = 0};
	char msg[128] = "child: ";
	const char *err = NULL;
	uint32_t on = 1, bits = 28;
	uint8_t *p = NULL;
	bar_t bar;
	int fd;

	a.chunks = (uintptr_t)&ch;
	fd = open(dev_path(), O_RDWR | O_CLOEXEC);
	bar = mmap(NULL, BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, RSHIM_MMAP_BAR(0));
	b.fd = eventfd(0, EFD_CLOEXEC);
	if (fd < 0 || bar == MAP_FAILED || b.fd < 0)
		err = "open, mmap BAR0 or eventfd";
	else if (ioctl(fd, RSHIM_IOC_CLAIM) || ioctl(fd, RSHIM_IOC_SET_DMA_MASK, &bits) ||
		 ioctl(fd, RSHIM_IOC_DMA_ALLOC, &a) || ioctl(fd, RSHIM_IOC_IRQ_EVENTFD, &b) ||
		 ioctl(fd, RSHIM_IOC_BUS_MASTER, &on))
		err = "CLAIM, SET_DMA_MASK, DMA_ALLOC, IRQ_EVENTFD or BUS_MASTER";
	else if ((p = mmap(NULL, PAGE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
			   (off_t)ch.mmap_offset)) == MAP_FAILED)
		err = "mmap the chunk";
	if (!err) {
		/* The pattern into the device. */
		wr32(bar, EDU_IRQ_ACK, rd32(bar, EDU_IRQ_STATUS));
		fill(p, 4000, 7);
		edu_dma_start(bar, ch.bus, EDU_BUF, 4000, 0);
		if (!wait_event(b.fd, WAIT_MS) || rd32(bar, EDU_DMA_CMD) & EDU_CMD_RUN)
			err = "the DMA into the device did not complete";
		wr32(bar, EDU_IRQ_ACK, rd32(bar, EDU_IRQ_STATUS));
		if (expected_irq() == RSHIM_IRQ_INTX)
			ioctl(fd, RSHIM_IOC_IRQ_UNMASK);
	}
	if (!err) {
		/* And back into the buffer: the parent kills us before it lands. */
		edu_dma_start(bar, EDU_BUF, ch.bus, 4000, EDU_CMD_TO_RAM);
		snprintf(msg, sizeof(msg), "ok %#llx", (unsigned long long)ch.bus);
	} else {
		snprintf(msg, sizeof(msg), "child: %s: %s", err, strerror(errno));
	}
	if (write(wfd, msg, strlen(msg) + 1) < 0)
		_exit(1);
	for (;;)
		pause();
}

/* Test 6: a killed owner's in-flight DMA never lands in freed memory. */
Test(shim, release_safety)
{
	struct shim_buf b;
	char msg[128] = "";
	int pfd[2], fd, efd, status, err, reused = -1;
	unsigned long long child_bus;
	unsigned int i;
	int64_t t0;
	bool in_flight;
	bar_t bar;
	pid_t pid;

	cr_assert(pipe(pfd) == 0, "pipe: %s", strerror(errno));
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		close(pfd[0]);
		child_dma_then_wait(pfd[1]);
	}
	close(pfd[1]);
	/*
	 * Everything that allocates pages is done before the kill, so that
	 * the child's freed DMA page is still hot when we allocate.
	 */
	fd = open_dev();
	bar = map_bar0(fd);
	cr_assert(rd32(bar, EDU_ID) == EDU_IDENT, "identification");
	cr_assert(read(pfd[0], msg, sizeof(msg) - 1) > 0, "no word from the child");
	kill(pid, SIGKILL);
	cr_assert(waitpid(pid, &status, 0) == pid && WIFSIGNALED(status), "reaping the child");
	in_flight = rd32(bar, EDU_DMA_CMD) & EDU_CMD_RUN;
	close(pfd[0]);
	cr_assert(!strncmp(msg, "ok ", 3), "%s", msg);

	t0 = now_ms();
	while ((err = ioc(fd, RSHIM_IOC_CLAIM, NULL)) == EBUSY && now_ms() - t0 < 2000)
		sleep_ms(10);
	ok(err, "CLAIM after the owner was killed");
	ok(ioc_u32(fd, RSHIM_IOC_SET_DMA_MASK, 28), "SET_DMA_MASK 28");
	/* Many pages, so that the child's freed one is likely among them. */
	alloc_map(fd, &b, MAX_CHUNKS * PAGE, PAGE);
	child_bus = strtoull(msg + 3, NULL, 0);
	for (i = 0; i < b.n; i++)
		if (b.ch[i].bus == child_bus)
			reused = (int)i;
	cr_log_info("the child's DMA was %s in flight when it was reaped; its page %#llx is %s",
		    in_flight ? "still" : "no longer", child_bus,
		    reused >= 0 ? "in our buffer" : "not in our buffer");
	sleep_ms(500);
	cr_assert((rd32(bar, EDU_DMA_CMD) & EDU_CMD_RUN) == 0,
		  "edu's DMA engine still runs 500 ms later");
	cr_assert(first_nonzero(b.map, 0, b.size) == b.size,
		  "byte %zu of the new buffer is %#x: the dead owner's DMA landed in it",
		  first_nonzero(b.map, 0, b.size), b.map[first_nonzero(b.map, 0, b.size)]);

	efd = bind_eventfd(fd, 0);
	ack_stale(fd, bar);
	wait_event(efd, 0);
	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 1), "BUS_MASTER 1");
	round_trip(fd, efd, bar, b.map, b.ch[0].bus, b.map + PAGE, PAGE, b.ch[1].bus, 99);
	cr_assert((rd32(bar, EDU_DMA_CMD) & EDU_CMD_RUN) == 0, "edu's DMA engine is not idle");
	ok(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 0), "BUS_MASTER 0");
	unmap_free(fd, &b);
	close(efd);
	munmap((void *)bar, BAR0_SIZE);
	close(fd);
}

static void sysfs_write(const char *file, const char *val)
{
	char path[256];
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/drivers/readout_shim/%s", file);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert(fd >= 0, "open %s: %s", path, strerror(errno));
	cr_assert(write(fd, val, strlen(val)) == (ssize_t)strlen(val), "write %s to %s: %s", val,
		  path, strerror(errno));
	close(fd);
}

#define SIGBUS_EXIT 42

static void exit_on_sigbus(int sig)
{
	(void)sig;
	_exit(SIGBUS_EXIT);
}

TestSuite(shim_unbind, .timeout = 30);

/* The device goes while open, mapped and owned, then comes back. */
Test(shim_unbind, removal_while_open)
{
	const char *addr = strrchr(dev_path(), '/') + 1;
	int fd = open_dev(), fd2, status;
	struct rshim_info info;
	bar_t bar = map_bar0(fd);
	struct shim_buf b, junk;
	struct stat st;
	int64_t t0;
	pid_t pid;
	size_t i;
	void *p;

	ok(ioc(fd, RSHIM_IOC_CLAIM, NULL), "CLAIM");
	alloc_map(fd, &b, 2 * PAGE, PAGE);
	memset(b.map, 0x5a, b.size);
	cr_assert(rd32(bar, EDU_ID) == EDU_IDENT, "identification before the unbind");

	sysfs_write("unbind", addr);
	cr_assert(stat(dev_path(), &st) != 0, "%s is still there after the unbind", dev_path());
	expect_err(ioc(fd, RSHIM_IOC_INFO, &info), ENODEV, "INFO after removal");
	expect_err(ioc(fd, RSHIM_IOC_CLAIM, NULL), ENODEV, "CLAIM after removal");
	expect_err(ioc_u32(fd, RSHIM_IOC_BUS_MASTER, 1), ENODEV, "BUS_MASTER after removal");
	expect_err(try_alloc(fd, &junk, PAGE, PAGE, 1), ENODEV, "DMA_ALLOC after removal");
	p = mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, RSHIM_MMAP_BAR(0));
	cr_assert(p == MAP_FAILED && errno == ENODEV, "mmap BAR0 after removal: %s",
		  p == MAP_FAILED ? strerror(errno) : "mapped");
	/* The register mapping is revoked: a read gets SIGBUS. */
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		/* Our own handler: AddressSanitizer's would exit 1 as for any crash. */
		struct sigaction sa = {.sa_handler = exit_on_sigbus};

		sigaction(SIGBUS, &sa, NULL);
		_exit(rd32(bar, EDU_ID) == EDU_IDENT ? 0 : 1);
	}
	cr_assert(waitpid(pid, &status, 0) == pid, "waitpid");
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == SIGBUS_EXIT,
		  "reading a BAR mapping after removal: status %#x, want SIGBUS", status);
	/* The DMA memory stays until the file goes. */
	for (i = 0; i < b.size; i++)
		cr_assert(b.map[i] == 0x5a, "byte %zu of the DMA buffer changed after removal", i);
	munmap(b.map, b.size);
	munmap((void *)bar, BAR0_SIZE);
	close(fd);

	sysfs_write("bind", addr);
	t0 = now_ms();
	while (stat(dev_path(), &st) != 0 && now_ms() - t0 < 2000)
		sleep_ms(10);
	fd2 = open_dev();
	info = info_of(fd2);
	cr_assert(info.vendor == 0x1234 && info.owner_pid == 0, "INFO after binding again");
	ok(ioc(fd2, RSHIM_IOC_CLAIM, NULL), "CLAIM after binding again");
	close(fd2);
}
