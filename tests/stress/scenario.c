#include "stress/scenario.h"

#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "card/card.h"
#include "common/hostmem.h"
#include "core/pool.h"
#include "core/ring.h"

#define MAX_HOLD   64
#define DEADLINE_S 30
#define SENTINEL   UINT32_MAX /* on a sink's ring: no more superpages */

/* The first failed check of a run, written to the caller's buffer. */
struct failure {
	atomic_bool failed;
	char *why;
	size_t len;
};

static void fail(struct failure *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct failure *f, const char *fmt, ...)
{
	/* relaxed: the flag only elects one writer; pthread_join orders `why` for the reader */
	if (atomic_exchange_explicit(&f->failed, true, memory_order_relaxed))
		return;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(f->why, f->len, fmt, ap);
	va_end(ap);
}

static bool failed(struct failure *f)
{
	/* relaxed: a hint to stop early; nothing is read on its strength */
	return atomic_load_explicit(&f->failed, memory_order_relaxed);
}

struct worker {
	pthread_t thread;
	void *(*fn)(void *);
	void *run;
	unsigned id;	/* among the workers of its kind */
	uint64_t count; /* values popped, superpages put: read after join */
	uint64_t sum;
};

/*
 * Run every worker to its end. A thread that cannot start fails the run,
 * which stops the others (every wait loop checks). A run past its deadline
 * aborts the process: a lost value leaves consumers waiting forever, and a
 * broken ring can spin inside push or pop where no check reaches.
 */
static int run_workers(struct worker *w, unsigned n, struct failure *f)
{
	unsigned started;
	for (started = 0; started < n; started++) {
		int rc = pthread_create(&w[started].thread, NULL, w[started].fn, &w[started]);
		if (rc) {
			fail(f, "cannot start thread %u of %u: %s", started, n, strerror(rc));
			break;
		}
	}
	struct timespec deadline;
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += DEADLINE_S;
	for (unsigned i = 0; i < started; i++) {
		if (pthread_timedjoin_np(w[i].thread, NULL, &deadline)) {
			fprintf(stderr,
				"threads still running after %d s: a value was lost or a "
				"thread is stuck\n",
				DEADLINE_S);
			abort();
		}
	}
	return failed(f) ? -1 : 0;
}

struct ring_run {
	struct rdo_ring ring;
	unsigned producers;
	uint32_t per_producer;
	uint64_t total;
	_Atomic uint64_t popped;
	_Atomic(unsigned char) *seen; /* times each value was popped */
	struct failure fail;
};

static void *ring_producer(void *arg)
{
	struct worker *w = arg;
	struct ring_run *run = w->run;
	for (uint32_t i = 0; i < run->per_producer; i++) {
		uint32_t v = i * run->producers + w->id;
		while (!rdo_ring_push(&run->ring, v)) {
			if (failed(&run->fail))
				return NULL;
			sched_yield();
		}
	}
	return NULL;
}

static void ring_take(struct worker *w, uint32_t v, uint32_t *next)
{
	struct ring_run *run = w->run;
	if (v >= run->total) {
		fail(&run->fail, "consumer %u popped %u, which no producer pushed", w->id, v);
		return;
	}
	unsigned p = v % run->producers;
	uint32_t i = v / run->producers;
	if (i < next[p]) {
		fail(&run->fail, "consumer %u popped producer %u's value %u after its value %u",
		     w->id, p, v, (next[p] - 1) * run->producers + p);
		return;
	}
	next[p] = i + 1;
	/* relaxed: a tally, read after pthread_join */
	if (atomic_fetch_add_explicit(&run->seen[v], 1, memory_order_relaxed)) {
		fail(&run->fail, "value %u popped twice (the second time by consumer %u)", v,
		     w->id);
		return;
	}
	w->count++;
	w->sum += v;
}

static void *ring_consumer(void *arg)
{
	struct worker *w = arg;
	struct ring_run *run = w->run;
	uint32_t next[SCENARIO_MAX_THREADS] = {0}; /* per producer: lowest index still to come */
	/* relaxed: only says when to stop; the ring orders the values themselves */
	while (atomic_load_explicit(&run->popped, memory_order_relaxed) < run->total &&
	       !failed(&run->fail)) {
		uint32_t v;
		if (!rdo_ring_pop(&run->ring, &v)) {
			sched_yield();
			continue;
		}
		/* relaxed: as above */
		atomic_fetch_add_explicit(&run->popped, 1, memory_order_relaxed);
		ring_take(w, v, next);
	}
	return NULL;
}

static void ring_check(struct ring_run *run, const struct worker *consumers, unsigned n)
{
	uint64_t count = 0, sum = 0;
	for (unsigned i = 0; i < n; i++) {
		count += consumers[i].count;
		sum += consumers[i].sum;
	}
	if (count != run->total)
		fail(&run->fail, "popped %llu values, pushed %llu", (unsigned long long)count,
		     (unsigned long long)run->total);
	if (sum != run->total * (run->total - 1) / 2)
		fail(&run->fail, "popped values sum to %llu, pushed ones to %llu",
		     (unsigned long long)sum,
		     (unsigned long long)(run->total * (run->total - 1) / 2));
	for (uint64_t v = 0; v < run->total; v++) {
		/* relaxed: the consumers' writes are ordered by pthread_join */
		unsigned seen = atomic_load_explicit(&run->seen[v], memory_order_relaxed);
		if (seen != 1) {
			fail(&run->fail, "value %llu popped %u times", (unsigned long long)v, seen);
			break;
		}
	}
	uint32_t v;
	if (rdo_ring_count(&run->ring) != 0 || rdo_ring_pop(&run->ring, &v))
		fail(&run->fail, "the ring is not empty after every value was popped");
}

int scenario_ring_mpmc(const struct scenario_ring_opts *o, char *why, size_t len)
{
	struct ring_run run = {
	    .producers = o->producers,
	    .per_producer = o->per_producer,
	    .total = (uint64_t)o->producers * o->per_producer,
	    .fail = {.why = why, .len = len},
	};
	unsigned n = o->producers + o->consumers;
	if (!o->producers || !o->consumers || n > SCENARIO_MAX_THREADS || !run.total ||
	    run.total > UINT32_MAX) {
		snprintf(why, len,
			 "ring scenario: %u producers and %u consumers (at most %u "
			 "threads) of %u values each (at most 2^32 in all)",
			 o->producers, o->consumers, SCENARIO_MAX_THREADS, o->per_producer);
		return -1;
	}
	if (rdo_ring_init(&run.ring, o->capacity)) {
		snprintf(why, len, "ring scenario: no memory for a ring of %zu", o->capacity);
		return -1;
	}
	int rc = -1;
	run.seen = calloc(run.total, sizeof(*run.seen));
	if (!run.seen) {
		snprintf(why, len, "ring scenario: no memory to tally %llu values",
			 (unsigned long long)run.total);
		goto out_ring;
	}
	struct worker w[SCENARIO_MAX_THREADS] = {0};
	for (unsigned i = 0; i < n; i++) {
		bool producer = i < o->producers;
		w[i].fn = producer ? ring_producer : ring_consumer;
		w[i].run = &run;
		w[i].id = producer ? i : i - o->producers;
	}
	if (run_workers(w, n, &run.fail) == 0)
		ring_check(&run, w + o->producers, o->consumers);
	rc = failed(&run.fail) ? -1 : 0;
	free(run.seen);
out_ring:
	rdo_ring_fini(&run.ring);
	return rc;
}

struct pool_run {
	struct rdo_pool *pool;
	size_t size;
	struct rdo_ring to_sink[SCENARIO_MAX_THREADS];
	unsigned sinks;
	uint64_t handoffs;
	unsigned hold_max;
	struct failure fail;
};

struct held {
	struct rdo_superpage *sp;
	uint64_t sequence; /* when the sink got it */
};

static uint64_t xorshift(uint64_t *state)
{
	uint64_t x = *state;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

/* First, middle and last word of the data: a reuse anywhere in between shows in one. */
static void stamp(struct rdo_superpage *sp, size_t size, uint64_t sequence)
{
	uint64_t *d = sp->data;
	size_t n = size / sizeof(*d);
	sp->sequence = sequence;
	d[0] = sequence;
	d[n / 2] = ~sequence;
	d[n - 1] = sequence ^ sp->index;
}

static bool stamped(const struct rdo_superpage *sp, size_t size, uint64_t sequence)
{
	const uint64_t *d = sp->data;
	size_t n = size / sizeof(*d);
	return sp->sequence == sequence && d[0] == sequence && d[n / 2] == ~sequence &&
	       d[n - 1] == (sequence ^ sp->index);
}

static bool hand_to_sinks(struct pool_run *run, struct rdo_superpage *sp)
{
	for (unsigned k = 0; k < run->sinks; k++) {
		rdo_pool_ref(sp);
		if (!rdo_ring_push(&run->to_sink[k], sp->index)) {
			fail(&run->fail,
			     "sink %u's ring is full at superpage %u: a superpage went out twice",
			     k, sp->index);
			return false;
		}
	}
	return true;
}

static void *pool_dma(void *arg)
{
	struct worker *w = arg;
	struct pool_run *run = w->run;
	for (uint64_t seq = 1; seq <= run->handoffs && !failed(&run->fail);) {
		struct rdo_superpage *sp = rdo_pool_get(run->pool);
		if (!sp) {
			sched_yield();
			continue;
		}
		/* relaxed: the reference is ours alone, nothing to order against */
		uint32_t refs = atomic_load_explicit(&sp->refs, memory_order_relaxed);
		if (refs != 1) {
			fail(&run->fail, "superpage %u came from the pool with %u references",
			     sp->index, refs);
			break;
		}
		stamp(sp, run->size, seq);
		if (!hand_to_sinks(run, sp))
			break;
		rdo_pool_put(run->pool, sp);
		w->count++;
		seq++;
	}
	for (unsigned k = 0; k < run->sinks; k++) {
		while (!rdo_ring_push(&run->to_sink[k], SENTINEL) && !failed(&run->fail))
			sched_yield();
	}
	return NULL;
}

static void sink_take(struct worker *w, uint32_t index, struct held *h, uint64_t *last)
{
	struct pool_run *run = w->run;
	struct rdo_superpage *sp = rdo_pool_at(run->pool, index);
	if (!sp) {
		fail(&run->fail, "sink %u got superpage %u, beyond the pool", w->id, index);
		return;
	}
	uint64_t seq = sp->sequence;
	if (seq <= *last)
		fail(&run->fail, "sink %u got sequence %llu after %llu", w->id,
		     (unsigned long long)seq, (unsigned long long)*last);
	if (!stamped(sp, run->size, seq))
		fail(&run->fail, "sink %u got superpage %u whose data does not match sequence %llu",
		     w->id, index, (unsigned long long)seq);
	/* relaxed: we hold a reference, so the count includes ours whatever others do */
	uint32_t refs = atomic_load_explicit(&sp->refs, memory_order_relaxed);
	if (refs == 0 || refs > run->sinks + 1)
		fail(&run->fail, "sink %u got superpage %u with %u references", w->id, index, refs);
	*last = seq;
	h->sp = sp;
	h->sequence = seq;
}

static void sink_put(struct worker *w, const struct held *h)
{
	struct pool_run *run = w->run;
	if (!stamped(h->sp, run->size, h->sequence))
		fail(&run->fail,
		     "superpage %u was stamped again (sequence %llu) while sink %u held it as %llu",
		     h->sp->index, (unsigned long long)h->sp->sequence, w->id,
		     (unsigned long long)h->sequence);
	rdo_pool_put(run->pool, h->sp);
	w->count++;
}

/*
 * Each turn, a coin says whether to take the next superpage or put back a
 * random one it holds; a sink with nothing to take puts one back, so no sink
 * sits on superpages the DMA thread waits for.
 */
static void *pool_sink(void *arg)
{
	struct worker *w = arg;
	struct pool_run *run = w->run;
	struct rdo_ring *ring = &run->to_sink[w->id];
	struct held held[MAX_HOLD];
	unsigned n = 0;
	uint64_t last = 0, rng = 0x9e3779b97f4a7c15ull * (w->id + 1);
	bool done = false;
	while ((!done || n > 0) && !failed(&run->fail)) {
		uint64_t r = xorshift(&rng);
		uint32_t index;
		if (!done && n < run->hold_max && (n == 0 || (r & 1)) &&
		    rdo_ring_pop(ring, &index)) {
			if (index == SENTINEL)
				done = true;
			else
				sink_take(w, index, &held[n++], &last);
		} else if (n > 0) {
			unsigned k = (unsigned)((r >> 8) % n);
			sink_put(w, &held[k]);
			held[k] = held[--n];
		} else {
			sched_yield();
		}
	}
	return NULL;
}

static void pool_check(struct pool_run *run, const struct worker *sinks)
{
	uint64_t puts = 0;
	for (unsigned k = 0; k < run->sinks; k++)
		puts += sinks[k].count;
	if (puts != run->handoffs * run->sinks)
		fail(&run->fail, "sinks put %llu superpages back, were handed %llu",
		     (unsigned long long)puts, (unsigned long long)(run->handoffs * run->sinks));
	unsigned count = rdo_pool_count(run->pool);
	if (rdo_pool_free(run->pool) != count)
		fail(&run->fail, "%u of %u superpages free at the end", rdo_pool_free(run->pool),
		     count);
	for (unsigned i = 0; i < count; i++) {
		/* relaxed: every thread's puts are ordered by pthread_join */
		uint32_t refs =
		    atomic_load_explicit(&rdo_pool_at(run->pool, i)->refs, memory_order_relaxed);
		if (refs)
			fail(&run->fail, "superpage %u has %u references at the end", i, refs);
	}
}

static int pool_opts_ok(const struct scenario_pool_opts *o, char *why, size_t len)
{
	if (o->sinks && o->sinks < SCENARIO_MAX_THREADS && o->superpages && o->handoffs &&
	    o->superpage_size >= sizeof(uint64_t) && o->superpage_size % sizeof(uint64_t) == 0 &&
	    o->hold_max && o->hold_max <= MAX_HOLD)
		return 0;
	snprintf(why, len,
		 "pool scenario: 1 to %u sinks holding 1 to %u superpages each, "
		 "superpages a multiple of 8 bytes",
		 SCENARIO_MAX_THREADS - 1, MAX_HOLD);
	return -1;
}

int scenario_pool_sinks(const struct scenario_pool_opts *o, char *why, size_t len)
{
	if (pool_opts_ok(o, why, len))
		return -1;
	struct pool_run run = {
	    .size = o->superpage_size,
	    .sinks = o->sinks,
	    .handoffs = o->handoffs,
	    .hold_max = o->hold_max,
	    .fail = {.why = why, .len = len},
	};
	struct rdo_dma_seg seg = {.bus = 0x40000000};
	struct rdo_dma_buf mem = {.nsegs = 1, .seg = &seg};
	int rc = rdo_hostmem_alloc("pool scenario", o->superpage_size * o->superpages, &mem.va,
				   &mem.len, &mem.memory);
	seg.len = mem.len;
	if (rc) {
		snprintf(why, len, "pool scenario: no DMA memory: %s", strerror(-rc));
		return -1;
	}
	rc = -1;
	run.pool = rdo_pool_create(&mem, o->superpage_size, o->superpages);
	if (!run.pool) {
		snprintf(why, len, "pool scenario: cannot create the pool (see the log)");
		goto out_mem;
	}
	unsigned rings;
	for (rings = 0; rings < o->sinks; rings++) {
		if (rdo_ring_init(&run.to_sink[rings], o->superpages + 1)) {
			snprintf(why, len, "pool scenario: no memory for sink rings");
			goto out_rings;
		}
	}
	struct worker w[SCENARIO_MAX_THREADS] = {0};
	for (unsigned i = 0; i <= o->sinks; i++) {
		w[i].fn = i == 0 ? pool_dma : pool_sink;
		w[i].run = &run;
		w[i].id = i == 0 ? 0 : i - 1;
	}
	if (run_workers(w, o->sinks + 1, &run.fail) == 0)
		pool_check(&run, w + 1);
	rc = failed(&run.fail) ? -1 : 0;
out_rings:
	while (rings--)
		rdo_ring_fini(&run.to_sink[rings]);
	rdo_pool_destroy(&run.pool);
out_mem:
	rdo_hostmem_free(mem.va, mem.len);
	return rc;
}

double scenario_now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + t.tv_nsec / 1e9;
}

void scenario_assert(int rc, const char *name, const char *why)
{
	if (rc == 0)
		return;
	fprintf(stderr, "%s: %s\n", name, why);
	abort();
}
