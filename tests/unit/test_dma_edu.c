/*
 * The edu DMA protocol (server/dma/dma_edu.c) against a fake edu card in this
 * file: the registers of config/regmaps/edu.yaml, a copy engine between host
 * DMA memory and a 4 KiB device buffer that checks every transfer as QEMU 7.2
 * would, and an eventfd for its interrupt. The real device runs in a VM
 * (make shim-test); this checks the protocol's logic in milliseconds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "card/card.h"
#include "card/regmap.h"
#include "card/regmap_load.h"
#include "common/log.h"
#include "common/page.h"
#include "common/util.h"
#include "core/pool.h"
#include "core/sink.h"
#include "dma/dma.h"
#include "unit/refusal.h"

#define REGMAP_FILE RDO_SOURCE_DIR "/config/regmaps/edu.yaml"
#define PAGE	    2048u
#define SP_SIZE	    8192u
#define SP_PAGES    (SP_SIZE / PAGE)
#define SUPERPAGES  8u

#define EDU_IDENTITY	0x010000edu
#define EDU_REG_ID	0x00u
#define EDU_REG_IRQ	0x24u
#define EDU_REG_RAISE	0x60u
#define EDU_REG_ACK	0x64u
#define EDU_REG_SRC	0x80u
#define EDU_REG_DST	0x88u
#define EDU_REG_COUNT	0x90u
#define EDU_REG_CMD	0x98u
#define EDU_CMD_START	0x1u
#define EDU_CMD_TO_RAM	0x2u
#define EDU_CMD_IRQ	0x4u
#define EDU_IRQ_DMA	0x100u
#define EDU_BUFFER	0x40000u
#define EDU_BUFFER_SIZE 4096u
#define EDU_COUNT_MAX	4095u /* QEMU 7.2 aborts on a transfer reaching the buffer's last byte */
#define EDU_DRIVER_MAX	4088u /* what dma_edu.c promises to stay under */
#define EDU_DMA_BITS	28u   /* edu masks bus addresses to 28 bits */
#define FAKE_BUS_BASE	0x1000000ull
#define FAKE_REGIONS	8
#define NO_HOLD		UINT64_MAX

struct fake_region {
	bool used;
	void *va;
	size_t len;
	struct rdo_dma_seg seg;
};

/* What the fake saw, for the test thread. Plain value. */
struct fake_seen {
	uint64_t commands, loads, stores, acks, max_count, max_dev_end;
	uint32_t irq_status; /* as the test looks */
	bool running;
	unsigned faults;
	char fault[256];
};

/*
 * The fake edu card. Register access comes from the DMA thread and the test
 * reads what the fake saw from its own, so everything is under `lock`. A
 * bad transfer is not asserted where it happens (criterion cannot assert off
 * the test thread): the first is kept in `fault` for the test to report.
 */
struct fake_edu {
	struct rdo_card base;
	pthread_mutex_t lock;
	int irq_fd;
	uint8_t buffer[EDU_BUFFER_SIZE];
	struct fake_region region[FAKE_REGIONS];
	uint64_t next_bus;
	/* The engine. */
	uint64_t src, dst, count, cmd;
	uint32_t irq_status;
	bool running, copy_ok;
	unsigned busy_left;
	/* Test switches. */
	unsigned busy_reads;   /* the start bit reads 1 this many times after a command */
	uint64_t hold_at;      /* the command (numbered from 0) that gets stuck; NO_HOLD: none */
	bool stuck;	       /* the running command never finishes until fake_unstick() */
	struct rdo_pool *pool; /* the channel's: a store must land in a superpage taken from it */
	struct fake_seen seen;
};

static struct fake_edu fake;

static struct fake_edu *to_fake(struct rdo_card *card)
{
	return container_of(card, struct fake_edu, base);
}

static void fake_fault(struct fake_edu *f, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void fake_fault(struct fake_edu *f, const char *fmt, ...)
{
	if (f->seen.faults++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(f->seen.fault, sizeof(f->seen.fault), fmt, ap);
		va_end(ap);
	}
}

/* The host memory behind `len` bytes at bus address `bus`, NULL if not all in one region. */
static uint8_t *fake_host(struct fake_edu *f, uint64_t bus, uint64_t len)
{
	for (int i = 0; i < FAKE_REGIONS; i++) {
		const struct fake_region *r = &f->region[i];
		if (r->used && bus >= r->seg.bus && len <= r->len &&
		    bus - r->seg.bus <= r->len - len)
			return (uint8_t *)r->va + (bus - r->seg.bus);
	}
	return NULL;
}

/* A store must land in one superpage the channel took from its pool and not yet gave back. */
static void fake_check_store(struct fake_edu *f, uint64_t bus, uint64_t len)
{
	if (!f->pool) {
		fake_fault(f, "store to 0x%llx before the test named the pool",
			   (unsigned long long)bus);
		return;
	}
	size_t size = rdo_pool_superpage_size(f->pool);
	for (unsigned i = 0; i < rdo_pool_count(f->pool); i++) {
		struct rdo_superpage *sp = rdo_pool_at(f->pool, i);
		if (bus < sp->bus || bus - sp->bus >= size)
			continue;
		if (len > size - (bus - sp->bus))
			fake_fault(f, "store of %llu bytes at 0x%llx runs past superpage %u",
				   (unsigned long long)len, (unsigned long long)bus, i);
		else if ((bus - sp->bus) % PAGE)
			fake_fault(f, "store at offset %llu of superpage %u: not a page boundary",
				   (unsigned long long)(bus - sp->bus), i);
		/* relaxed: the channel took its reference on this thread */
		else if (atomic_load_explicit(&sp->refs, memory_order_relaxed) == 0)
			fake_fault(f, "store into superpage %u, which is free in the pool", i);
		return;
	}
	fake_fault(f, "store to 0x%llx: not in any superpage of the pool", (unsigned long long)bus);
}

/* Check a transfer as it starts, as QEMU's edu_check_range and edu_clamp_addr would. */
static void fake_check(struct fake_edu *f)
{
	bool to_ram = f->cmd & EDU_CMD_TO_RAM;
	uint64_t dev = to_ram ? f->src : f->dst;
	uint64_t host = to_ram ? f->dst : f->src;
	f->copy_ok = false;
	if (f->count > f->seen.max_count)
		f->seen.max_count = f->count;
	if (f->count == 0 || f->count > EDU_COUNT_MAX) {
		fake_fault(f, "transfer of %llu bytes", (unsigned long long)f->count);
		return;
	}
	if (dev < EDU_BUFFER || dev - EDU_BUFFER + f->count > EDU_BUFFER_SIZE) {
		fake_fault(f, "device range 0x%llx+%llu outside the buffer",
			   (unsigned long long)dev, (unsigned long long)f->count);
		return;
	}
	if (dev - EDU_BUFFER + f->count > f->seen.max_dev_end)
		f->seen.max_dev_end = dev - EDU_BUFFER + f->count;
	if (host >> EDU_DMA_BITS) {
		fake_fault(f, "bus address 0x%llx above edu's 28 bits", (unsigned long long)host);
		return;
	}
	if (!fake_host(f, host, f->count)) {
		fake_fault(f, "%s 0x%llx+%llu: not in an allocated DMA region",
			   to_ram ? "destination" : "source", (unsigned long long)host,
			   (unsigned long long)f->count);
		return;
	}
	if (to_ram)
		fake_check_store(f, host, f->count);
	f->copy_ok = true;
}

static void fake_irq(struct fake_edu *f, uint32_t bits)
{
	f->irq_status |= bits;
	uint64_t one = 1;
	ssize_t n = write(f->irq_fd, &one, sizeof(one));
	(void)n; /* EAGAIN: an interrupt is already pending */
}

static void fake_finish(struct fake_edu *f)
{
	if (f->copy_ok) {
		bool to_ram = f->cmd & EDU_CMD_TO_RAM;
		uint8_t *dev = f->buffer + ((to_ram ? f->src : f->dst) - EDU_BUFFER);
		uint8_t *host = fake_host(f, to_ram ? f->dst : f->src, f->count);
		if (to_ram)
			memcpy(host, dev, f->count);
		else
			memcpy(dev, host, f->count);
	}
	f->running = false;
	f->cmd &= ~(uint64_t)EDU_CMD_START;
	if (f->cmd & EDU_CMD_IRQ)
		fake_irq(f, EDU_IRQ_DMA);
}

static void fake_command(struct fake_edu *f, uint64_t val)
{
	if (!(val & EDU_CMD_START))
		return; /* edu ignores a command without start */
	f->cmd = val;
	if (val & EDU_CMD_TO_RAM)
		f->seen.stores++;
	else
		f->seen.loads++;
	if (!(val & EDU_CMD_IRQ))
		fake_fault(f, "command 0x%llx without irq: the driver waits for the interrupt",
			   (unsigned long long)val);
	if (f->seen.commands++ == f->hold_at)
		f->stuck = true;
	fake_check(f);
	f->running = true;
	f->busy_left = f->busy_reads;
	if (f->busy_left == 0 && !f->stuck)
		fake_finish(f);
}

static uint64_t fake_read(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width)
{
	(void)bar;
	(void)width;
	struct fake_edu *f = to_fake(card);
	uint64_t v = 0;
	pthread_mutex_lock(&f->lock);
	switch (off) {
	case EDU_REG_ID:
		v = EDU_IDENTITY;
		break;
	case EDU_REG_IRQ:
		v = f->irq_status;
		break;
	case EDU_REG_SRC:
		v = f->src;
		break;
	case EDU_REG_DST:
		v = f->dst;
		break;
	case EDU_REG_COUNT:
		v = f->count;
		break;
	case EDU_REG_CMD:
		if (f->running && !f->stuck) {
			if (f->busy_left > 0)
				f->busy_left--;
			else
				fake_finish(f);
		}
		v = f->cmd;
		break;
	}
	pthread_mutex_unlock(&f->lock);
	return v;
}

static void fake_write(struct rdo_card *card, unsigned bar, uint64_t off, unsigned width,
		       uint64_t val)
{
	(void)bar;
	(void)width;
	struct fake_edu *f = to_fake(card);
	pthread_mutex_lock(&f->lock);
	bool engine_reg = off >= EDU_REG_SRC && off <= EDU_REG_CMD;
	if (engine_reg && f->running) {
		/* edu ignores them: the transfer in flight keeps its addresses */
		fake_fault(f, "register 0x%llx written while a transfer runs",
			   (unsigned long long)off);
	} else {
		switch (off) {
		case EDU_REG_RAISE:
			fake_irq(f, (uint32_t)val);
			break;
		case EDU_REG_ACK:
			f->irq_status &= ~(uint32_t)val;
			f->seen.acks++;
			break;
		case EDU_REG_SRC:
			f->src = val;
			break;
		case EDU_REG_DST:
			f->dst = val;
			break;
		case EDU_REG_COUNT:
			f->count = val;
			break;
		case EDU_REG_CMD:
			fake_command(f, val);
			break;
		}
	}
	pthread_mutex_unlock(&f->lock);
}

static int fake_dma_alloc(struct rdo_card *card, size_t len, size_t granule, unsigned address_bits,
			  struct rdo_dma_buf *buf)
{
	(void)granule; /* one segment holds every granule */
	struct fake_edu *f = to_fake(card);
	pthread_mutex_lock(&f->lock);
	struct fake_region *r = NULL;
	for (int i = 0; i < FAKE_REGIONS && !r; i++)
		if (!f->region[i].used)
			r = &f->region[i];
	size_t rounded = (len + 4095) / 4096 * 4096;
	int rc = -ENOSPC;
	if (r && address_bits < 64 && f->next_bus + rounded > (1ull << address_bits))
		rc = -ERANGE;
	else if (r && (r->va = aligned_alloc(4096, rounded)) != NULL) {
		memset(r->va, 0, rounded);
		r->used = true;
		r->len = len;
		r->seg = (struct rdo_dma_seg){.off = 0, .len = len, .bus = f->next_bus};
		f->next_bus += (rounded + (1u << 20) - 1) / (1u << 20) * (1u << 20) + (1u << 20);
		*buf = (struct rdo_dma_buf){.va = r->va,
					    .len = len,
					    .nsegs = 1,
					    .seg = &r->seg,
					    .memory = "unlocked",
					    .priv = r};
		rc = 0;
	}
	pthread_mutex_unlock(&f->lock);
	return rc;
}

static void fake_dma_free(struct rdo_card *card, struct rdo_dma_buf *buf)
{
	struct fake_edu *f = to_fake(card);
	struct fake_region *r = buf->priv;
	pthread_mutex_lock(&f->lock);
	free(r->va);
	memset(r, 0, sizeof(*r));
	pthread_mutex_unlock(&f->lock);
}

static int fake_irq_fd(struct rdo_card *card)
{
	return to_fake(card)->irq_fd;
}

static const struct rdo_card_ops fake_edu_ops = {
    .name = "fake-edu",
    .read = fake_read,
    .write = fake_write,
    .dma_alloc = fake_dma_alloc,
    .dma_free = fake_dma_free,
    .irq_fd = fake_irq_fd,
};

static void fake_init(struct fake_edu *f, unsigned links)
{
	memset(f, 0, sizeof(*f));
	pthread_mutex_init(&f->lock, NULL);
	f->irq_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	cr_assert_geq(f->irq_fd, 0);
	f->next_bus = FAKE_BUS_BASE;
	f->hold_at = NO_HOLD;
	f->base.ops = &fake_edu_ops;
	rdo_strlcpy(f->base.name, "edu0", sizeof(f->base.name));
	rdo_strlcpy(f->base.address, "0000:00:04.0", sizeof(f->base.address));
	f->base.links = links;
	f->base.nbars = 1;
	f->base.bar_size[0] = 1u << 20;
	f->base.lock_fd = -1;
}

static void fake_fini(struct fake_edu *f)
{
	close(f->irq_fd);
	pthread_mutex_destroy(&f->lock);
}

static struct fake_seen fake_snapshot(void)
{
	pthread_mutex_lock(&fake.lock);
	struct fake_seen seen = fake.seen;
	seen.irq_status = fake.irq_status;
	seen.running = fake.running;
	pthread_mutex_unlock(&fake.lock);
	return seen;
}

static void fake_set(unsigned busy_reads, uint64_t hold_at)
{
	pthread_mutex_lock(&fake.lock);
	fake.busy_reads = busy_reads;
	fake.hold_at = hold_at;
	pthread_mutex_unlock(&fake.lock);
}

static void fake_stick(void)
{
	pthread_mutex_lock(&fake.lock);
	fake.stuck = true;
	pthread_mutex_unlock(&fake.lock);
}

/* The stuck transfer completes now, and the engine runs normally again. */
static void fake_unstick(void)
{
	pthread_mutex_lock(&fake.lock);
	fake.stuck = false;
	fake.hold_at = NO_HOLD;
	if (fake.running)
		fake_finish(&fake);
	pthread_mutex_unlock(&fake.lock);
}

static unsigned fake_regions_used(void)
{
	unsigned n = 0;
	pthread_mutex_lock(&fake.lock);
	for (int i = 0; i < FAKE_REGIONS; i++)
		n += fake.region[i].used;
	pthread_mutex_unlock(&fake.lock);
	return n;
}

static void fake_assert_clean(void)
{
	struct fake_seen f = fake_snapshot();
	cr_assert_eq(f.faults, 0, "the fake edu saw %u faults, the first: %s", f.faults, f.fault);
}

#define MAX_SEEN 64

struct seen {
	uint64_t sequence, run;
	uint32_t size, flags, link;
};

/*
 * A sink that records what it is offered and checks every page: valid, on
 * link 0, payload intact, counters consecutive from 0 within the run. Offers
 * come on the DMA thread: the first problem is kept for the test thread.
 * With `hold` it keeps every superpage until sink_release().
 */
struct rec_sink {
	struct rdo_sink base;
	struct rdo_pool *pool;
	pthread_mutex_t lock;
	bool hold;
	struct rdo_superpage *held[MAX_SEEN];
	unsigned nheld;
	struct seen seen[MAX_SEEN];
	unsigned nseen;
	uint64_t next_counter;
	unsigned problems;
	char problem[256];
};

static struct rec_sink sink;

static void sink_problem(struct rec_sink *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void sink_problem(struct rec_sink *t, const char *fmt, ...)
{
	if (t->problems++ == 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(t->problem, sizeof(t->problem), fmt, ap);
		va_end(ap);
	}
}

static void sink_check_pages(struct rec_sink *t, const struct rdo_superpage *sp)
{
	for (uint32_t off = 0; off + PAGE <= sp->size; off += PAGE) {
		const uint8_t *p = (const uint8_t *)sp->data + off;
		size_t bad = 0;
		enum rdo_page_verdict v = rdo_page_check(p, sp->size - off, 0, true, &bad);
		if (v != RDO_PAGE_OK) {
			sink_problem(t, "seq %llu page at %u: %s (byte %zu)",
				     (unsigned long long)sp->sequence, off,
				     rdo_page_verdict_name(v), bad);
			return;
		}
		struct rdo_page_header h;
		memcpy(&h, p, sizeof(h));
		if (h.counter != t->next_counter)
			sink_problem(t, "seq %llu page at %u: counter %llu, expected %llu",
				     (unsigned long long)sp->sequence, off,
				     (unsigned long long)h.counter,
				     (unsigned long long)t->next_counter);
		if (h.slot != PAGE)
			sink_problem(t, "seq %llu page at %u: slot %u",
				     (unsigned long long)sp->sequence, off, h.slot);
		t->next_counter = h.counter + 1;
	}
}

static bool rec_offer(struct rdo_sink *s, struct rdo_superpage *sp)
{
	struct rec_sink *t = container_of(s, struct rec_sink, base);
	pthread_mutex_lock(&t->lock);
	if (t->nseen < MAX_SEEN)
		t->seen[t->nseen++] = (struct seen){.sequence = sp->sequence,
						    .run = sp->run,
						    .size = sp->size,
						    .flags = sp->flags,
						    .link = sp->link};
	else
		sink_problem(t, "more than %d superpages", MAX_SEEN);
	if (sp->size % PAGE)
		sink_problem(t, "seq %llu: %u bytes, not whole pages",
			     (unsigned long long)sp->sequence, sp->size);
	sink_check_pages(t, sp);
	rdo_pool_ref(sp);
	bool keep = t->hold && t->nheld < MAX_SEEN;
	if (keep)
		t->held[t->nheld++] = sp;
	else
		rdo_pool_put(t->pool, sp); /* a consumer that is done at once */
	pthread_mutex_unlock(&t->lock);
	return true;
}

static void rec_stats(struct rdo_sink *s, struct rdo_sink_stats *st)
{
	(void)s;
	memset(st, 0, sizeof(*st));
	st->name = "rec";
}

static void rec_destroy(struct rdo_sink *s)
{
	(void)s; /* static storage: the test owns it */
}

static const struct rdo_sink_ops rec_sink_ops = {
    .name = "rec",
    .offer = rec_offer,
    .stats = rec_stats,
    .destroy = rec_destroy,
};

static void sink_rearm(void)
{
	pthread_mutex_lock(&sink.lock);
	sink.nseen = 0;
	sink.next_counter = 0;
	pthread_mutex_unlock(&sink.lock);
}

static void sink_release(void)
{
	pthread_mutex_lock(&sink.lock);
	sink.hold = false;
	for (unsigned i = 0; i < sink.nheld; i++)
		rdo_pool_put(sink.pool, sink.held[i]);
	sink.nheld = 0;
	pthread_mutex_unlock(&sink.lock);
}

static unsigned sink_count(void)
{
	pthread_mutex_lock(&sink.lock);
	unsigned n = sink.nseen;
	pthread_mutex_unlock(&sink.lock);
	return n;
}

static void sink_assert_clean(void)
{
	pthread_mutex_lock(&sink.lock);
	unsigned n = sink.problems;
	char msg[256];
	rdo_strlcpy(msg, sink.problem, sizeof(msg));
	pthread_mutex_unlock(&sink.lock);
	cr_assert_eq(n, 0, "the sink saw %u problems, the first: %s", n, msg);
}

/* The superpages of one run, in order from sequence 0, full but for a PARTIAL last one. */
static void sink_assert_run(uint64_t run)
{
	pthread_mutex_lock(&sink.lock);
	struct seen seen[MAX_SEEN];
	unsigned n = sink.nseen;
	memcpy(seen, sink.seen, sizeof(seen));
	pthread_mutex_unlock(&sink.lock);
	for (unsigned i = 0; i < n; i++) {
		cr_assert_eq(seen[i].sequence, i, "superpage %u has sequence %llu", i,
			     (unsigned long long)seen[i].sequence);
		cr_assert_eq(seen[i].run, run);
		cr_assert_eq(seen[i].link, 0);
		bool last = i + 1 == n;
		if (!last || !(seen[i].flags & RDO_SP_PARTIAL)) {
			cr_assert_eq(seen[i].size, SP_SIZE, "seq %u: %u bytes", i, seen[i].size);
			cr_assert_eq(seen[i].flags, 0, "seq %u: flags 0x%x", i, seen[i].flags);
		}
	}
}

static struct rdo_regmap *map;

static void setup(void)
{
	rdo_log_set_level(LOG_CRIT);
	fake_init(&fake, 1);
	char err[512] = "";
	map = rdo_regmap_load(REGMAP_FILE, err, sizeof(err));
	cr_assert_not_null(map, "%s", err);
	memset(&sink, 0, sizeof(sink));
	sink.base.ops = &rec_sink_ops;
	pthread_mutex_init(&sink.lock, NULL);
}

static void teardown(void)
{
	rdo_regmap_destroy(&map);
	pthread_mutex_destroy(&sink.lock);
	fake_fini(&fake);
}

TestSuite(dma_edu, .init = setup, .fini = teardown);

static void edu_opts(struct rdo_dma_opts *o)
{
	rdo_dma_opts_init(o);
	o->superpage_size = SP_SIZE;
	o->superpages = SUPERPAGES;
	o->page_size = PAGE;
	o->link_mask = 0x1;
}

static struct rdo_dma *make_dma(void)
{
	struct rdo_dma_opts o;
	edu_opts(&o);
	struct rdo_dma *dma = rdo_dma_create(&fake.base, map, &o, NULL);
	cr_assert_not_null(dma);
	sink.pool = rdo_dma_pool(dma);
	pthread_mutex_lock(&fake.lock);
	fake.pool = sink.pool;
	pthread_mutex_unlock(&fake.lock);
	cr_assert_eq(rdo_dma_add_sink(dma, &sink.base), 0);
	return dma;
}

static void destroy_dma(struct rdo_dma **dma)
{
	rdo_dma_destroy(dma);
	cr_assert_null(*dma);
	pthread_mutex_lock(&fake.lock);
	fake.pool = NULL;
	pthread_mutex_unlock(&fake.lock);
	cr_assert_eq(fake_regions_used(), 0, "DMA memory left allocated after destroy");
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

static void start(struct rdo_dma *dma, uint64_t run)
{
	sink_rearm();
	char err[256] = "";
	int rc = rdo_dma_start(dma, run, err, sizeof(err));
	cr_assert_eq(rc, 0, "start: %d %s", rc, err);
}

static void wait_superpages(unsigned n)
{
	for (int i = 0; i < 3000 && sink_count() < n; i++)
		sleep_ms(1);
	cr_assert_geq(sink_count(), n, "%u superpages after 3 s, expected %u", sink_count(), n);
}

/* Wait until the fake has seen command number `index` (from 0). */
static void wait_command(uint64_t index)
{
	for (int i = 0; i < 3000 && fake_snapshot().commands <= index; i++)
		sleep_ms(1);
	cr_assert_gt(fake_snapshot().commands, index, "command %llu never came",
		     (unsigned long long)index);
}

struct releaser {
	struct rdo_dma *dma;
	pthread_t thread;
};

/* Once the channel is stopping (its engine disabled), let the stuck transfer finish. */
static void *release_when_stopping(void *arg)
{
	struct releaser *r = arg;
	struct rdo_dma_stats st;
	for (int i = 0; i < 5000; i++) {
		rdo_dma_stats(r->dma, &st);
		if (st.state == RDO_DMA_STOPPING)
			break;
		sleep_ms(1);
	}
	fake_unstick();
	return NULL;
}

/*
 * Stop while a transfer is stuck in the fake: the stop disables the engine
 * first, then the transfer completes, so what was filled is known exactly.
 */
static void stop_releasing(struct rdo_dma *dma)
{
	struct releaser r = {.dma = dma};
	cr_assert_eq(pthread_create(&r.thread, NULL, release_when_stopping, &r), 0);
	char err[256] = "";
	int rc = rdo_dma_stop(dma, err, sizeof(err));
	pthread_join(r.thread, NULL);
	cr_assert_eq(rc, 0, "stop: %d %s", rc, err);
}

Test(dma_edu, superpages_arrive_full_and_in_order)
{
	struct rdo_dma *dma = make_dma();
	/* Command 2k loads page k: hold the load of page 12, the first after 3 superpages. */
	fake_set(2, 2 * 3 * SP_PAGES);
	start(dma, 5);
	wait_command(2 * 3 * SP_PAGES);
	sink_assert_clean();
	cr_assert_eq(sink_count(), 3);
	sink_assert_run(5);
	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_RUNNING, "state %s", rdo_dma_state_name(st.state));
	cr_assert_eq(st.link[0].pages, 3 * SP_PAGES, "link 0 counted %llu pages",
		     (unsigned long long)st.link[0].pages);
	cr_assert_eq(st.link[0].superpages, 3);
	cr_assert_eq(st.link[0].bytes, 3 * SP_SIZE);
	cr_assert_eq(st.superpages, 3);
	cr_assert_eq(st.bytes, 3 * SP_SIZE);
	cr_assert_eq(st.unclaimed, 0);
	cr_assert_eq(st.errors, 0, "error: %s", st.last_error);
	/* The store of page 11 raised the interrupt; the next collect acknowledges it. */
	struct fake_seen f = fake_snapshot();
	for (int i = 0; i < 1000 && (f.irq_status & EDU_IRQ_DMA); i++) {
		sleep_ms(1);
		f = fake_snapshot();
	}
	cr_assert_eq(f.irq_status & EDU_IRQ_DMA, 0, "a DMA interrupt is left raised");
	cr_assert_eq(f.stores, 3 * SP_PAGES);
	cr_assert_geq(f.acks, 2 * 3 * SP_PAGES, "the driver acknowledged %llu DMA interrupts",
		      (unsigned long long)f.acks);

	stop_releasing(dma);
	sink_assert_clean();
	sink_assert_run(5);
	fake_assert_clean();
	destroy_dma(&dma);
}

Test(dma_edu, stop_delivers_the_partial_superpage)
{
	struct rdo_dma *dma = make_dma();
	sink.hold = true;
	/* Stuck at the load of page 6: superpage 0 full, superpage 1 holds pages 4 and 5. */
	fake_set(0, 2 * 6);
	start(dma, 9);
	wait_command(2 * 6);
	cr_assert_eq(sink_count(), 1);
	stop_releasing(dma); /* page 6 completes after the engine was disabled */
	sink_assert_clean();
	sink_assert_run(9);

	pthread_mutex_lock(&sink.lock);
	unsigned n = sink.nseen;
	struct seen last = sink.seen[n - 1];
	uint64_t pages = sink.next_counter;
	pthread_mutex_unlock(&sink.lock);
	cr_assert_eq(n, 2, "%u superpages delivered", n);
	cr_assert_eq(last.sequence, 1);
	cr_assert(last.flags & RDO_SP_PARTIAL, "flags 0x%x", last.flags);
	cr_assert_eq(last.size % PAGE, 0);
	cr_assert_eq(last.size, 3 * PAGE, "the partial superpage has %u bytes", last.size);
	cr_assert_eq(pages, SP_PAGES + 3);

	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_IDLE, "state %s", rdo_dma_state_name(st.state));
	cr_assert_eq(st.superpages, 2);
	cr_assert_eq(st.bytes, SP_SIZE + 3 * PAGE);
	cr_assert_eq(st.pool_in_card, 0);
	cr_assert_eq(st.pool_in_sinks, 2, "%u in sinks", st.pool_in_sinks);
	cr_assert_eq(st.pool_free, SUPERPAGES - 2);
	sink_release();
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.pool_free, st.pool_total, "pool: %u free of %u", st.pool_free,
		     st.pool_total);
	cr_assert_eq(st.pool_total, SUPERPAGES);
	sleep_ms(30);
	cr_assert_eq(sink_count(), 2, "delivered after stop");
	fake_assert_clean();
	destroy_dma(&dma);
}

Test(dma_edu, every_transfer_fits_edu)
{
	struct rdo_dma *dma = make_dma();
	fake_set(1, NO_HOLD);
	start(dma, 1);
	wait_superpages(3);
	char err[256] = "";
	cr_assert_eq(rdo_dma_stop(dma, err, sizeof(err)), 0, "stop: %s", err);
	sink_assert_clean();
	sink_assert_run(1);
	fake_assert_clean();
	struct fake_seen f = fake_snapshot();
	cr_assert_geq(f.stores, 3 * SP_PAGES);
	cr_assert_eq(f.loads, f.stores, "%llu loads, %llu stores", (unsigned long long)f.loads,
		     (unsigned long long)f.stores);
	cr_assert_eq(f.commands, f.loads + f.stores);
	cr_assert_leq(f.max_count, EDU_DRIVER_MAX, "a transfer of %llu bytes",
		      (unsigned long long)f.max_count);
	cr_assert_eq(f.max_count, PAGE);
	cr_assert_leq(f.max_dev_end, EDU_DRIVER_MAX);
	cr_assert_eq(f.running, false, "a transfer still runs after stop");
	cr_assert_eq(f.irq_status & EDU_IRQ_DMA, 0, "a DMA interrupt is left raised after stop");

	struct rdo_dma_stats st;
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.bytes, f.stores * PAGE, "every page stored was delivered");
	cr_assert_eq(st.pool_free, st.pool_total);
	destroy_dma(&dma);
}

/* Capture what rdo_dma_create logs to stderr while it refuses `o` on `card`. */
static void expect_refused(struct rdo_card *card, const struct rdo_dma_opts *o, const char *needle)
{
	int level = rdo_log_get_level();
	rdo_log_set_level(LOG_ERR);
	expect_dma_refused(card, map, o, needle);
	rdo_log_set_level(level);
	cr_assert_eq(fake_regions_used(), 0, "the refused channel left DMA memory allocated");
}

Test(dma_edu, create_refuses_what_edu_cannot_do)
{
	struct rdo_dma_opts o;
	edu_opts(&o);
	o.page_size = 4096;
	o.superpage_size = 4 * 4096;
	expect_refused(&fake.base, &o, "4088");
	o.page_size = 4096 + 8; /* the core allows up to 8192: only edu refuses */
	o.superpage_size = 4 * o.page_size;
	expect_refused(&fake.base, &o, "4088");

	edu_opts(&o);
	o.link_mask = 0x2; /* the one-link card has no link 1 */
	expect_refused(&fake.base, &o, "links");

	/* A two-link card speaking edu: only link 0 is edu's. */
	fake.base.links = 2;
	o.link_mask = 0x3;
	expect_refused(&fake.base, &o, "one link");
	o.link_mask = 0x2;
	expect_refused(&fake.base, &o, "one link");
	fake.base.links = 1;

	edu_opts(&o);
	o.page_size = EDU_DRIVER_MAX;
	o.superpage_size = 2 * EDU_DRIVER_MAX;
	struct rdo_dma *dma = rdo_dma_create(&fake.base, map, &o, NULL);
	cr_assert_not_null(dma, "page_size 4088 is refused");
	destroy_dma(&dma);
}

Test(dma_edu, stuck_engine_is_an_error_until_reset)
{
	struct rdo_dma *dma = make_dma();
	fake_stick();
	uint64_t t0 = rdo_now_ns();
	start(dma, 1);
	struct rdo_dma_stats st;
	for (int i = 0; i < 400; i++) {
		rdo_dma_stats(dma, &st);
		if (st.state == RDO_DMA_ERROR)
			break;
		sleep_ms(10);
	}
	uint64_t took_ms = (rdo_now_ns() - t0) / 1000000;
	cr_assert_eq(st.state, RDO_DMA_ERROR, "state %s after %llu ms",
		     rdo_dma_state_name(st.state), (unsigned long long)took_ms);
	cr_assert_geq(took_ms, 1900, "the 2 s timeout fired after %llu ms",
		      (unsigned long long)took_ms);
	cr_assert(strstr(st.last_error, "did not finish"), "last error \"%s\"", st.last_error);
	cr_assert_geq(st.errors, 1);
	cr_assert_eq(sink_count(), 0);
	char err[256] = "";
	cr_assert_eq(rdo_dma_start(dma, 2, err, sizeof(err)), -EBUSY);

	fake_unstick();
	fake_set(1, NO_HOLD); /* paced, so that the sink is not flooded before the stop */
	err[0] = '\0';
	uint64_t t1 = rdo_now_ns();
	int rc = rdo_dma_reset(dma, err, sizeof(err));
	uint64_t reset_ms = (rdo_now_ns() - t1) / 1000000;
	/* expect, not assert: whatever reset answers, the channel must recover */
	cr_expect_eq(rc, 0, "reset of an idle engine: %d \"%s\" after %llu ms", rc, err,
		     (unsigned long long)reset_ms);
	cr_expect_lt(reset_ms, 1000, "reset of an idle engine took %llu ms",
		     (unsigned long long)reset_ms);
	rdo_dma_stats(dma, &st);
	cr_assert_eq(st.state, RDO_DMA_IDLE, "state %s", rdo_dma_state_name(st.state));
	cr_assert_eq(st.errors, 0);
	cr_assert_str_eq(st.last_error, "");
	cr_assert_eq(st.pool_free, st.pool_total, "the reset took back every superpage");
	cr_assert_eq(st.pool_in_card, 0);

	start(dma, 3);
	wait_superpages(2);
	char stop_err[256] = "";
	cr_assert_eq(rdo_dma_stop(dma, stop_err, sizeof(stop_err)), 0, "stop: %s", stop_err);
	sink_assert_clean();
	sink_assert_run(3);
	fake_assert_clean();
	destroy_dma(&dma);
}
