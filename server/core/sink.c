#include "core/sink.h"

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq.h>

#include "common/log.h"
#include "proto/readout.pb-c.h"

void rdo_sink_destroy(struct rdo_sink **sink)
{
	if (!*sink)
		return;
	(*sink)->ops->destroy(*sink);
	*sink = NULL;
}

int rdo_squeue_init(struct rdo_squeue *q, size_t capacity)
{
	int rc = rdo_ring_init(&q->ring, capacity);
	if (rc)
		return rc;
	q->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->fd < 0) {
		rc = -errno;
		rdo_ring_fini(&q->ring);
		return rc;
	}
	atomic_init(&q->sleeping, false);
	return 0;
}

void rdo_squeue_fini(struct rdo_squeue *q)
{
	if (q->fd >= 0)
		close(q->fd);
	q->fd = -1;
	rdo_ring_fini(&q->ring);
}

/*
 * The two functions with a fence stay out of line, as they were while only
 * the sinks called them: GCC's ThreadSanitizer build warns (-Wtsan, an error
 * here) about a fence wherever it is inlined. TSan does not model the fence
 * either way; what it checks is the ring's release and acquire.
 */
__attribute__((noinline)) bool rdo_squeue_push(struct rdo_squeue *q, uint32_t index)
{
	if (!rdo_ring_push(&q->ring, index))
		return false;
	/* seq_cst: our push before our look at `sleeping`, against the consumer's mirror image */
	atomic_thread_fence(memory_order_seq_cst);
	/* fenced above; the exchange lets only the first pusher pay for the wake-up */
	if (atomic_exchange_explicit(&q->sleeping, false, memory_order_relaxed))
		rdo_squeue_wake(q);
	return true;
}

void rdo_squeue_wake(struct rdo_squeue *q)
{
	uint64_t one = 1;
	ssize_t n = write(q->fd, &one, sizeof(one));
	(void)n; /* EAGAIN: the counter is already non-zero, the wake-up stands */
}

bool rdo_squeue_pop(struct rdo_squeue *q, uint32_t *index)
{
	return rdo_ring_pop(&q->ring, index);
}

__attribute__((noinline)) bool rdo_squeue_sleep(struct rdo_squeue *q)
{
	atomic_store_explicit(&q->sleeping, true, memory_order_relaxed); /* fenced below */
	/* seq_cst: `sleeping` before our look at the ring, against the producer's mirror image */
	atomic_thread_fence(memory_order_seq_cst);
	if (rdo_ring_count(&q->ring) == 0)
		return true;
	atomic_store_explicit(&q->sleeping, false, memory_order_relaxed); /* only a hint */
	return false;
}

void rdo_squeue_woken(struct rdo_squeue *q)
{
	uint64_t v;
	ssize_t n = read(q->fd, &v, sizeof(v));
	(void)n; /* EAGAIN: no wake-up was written */
	atomic_store_explicit(&q->sleeping, false, memory_order_relaxed); /* only a hint */
}

int rdo_squeue_fd(const struct rdo_squeue *q)
{
	return q->fd;
}

size_t rdo_squeue_count(const struct rdo_squeue *q)
{
	return rdo_ring_count(&q->ring);
}

size_t rdo_sink_pack_header(const char *card, const struct rdo_superpage *sp, uint64_t dropped,
			    uint8_t *buf, size_t cap)
{
	Rdo__SuperpageHeader h = RDO__SUPERPAGE_HEADER__INIT;
	h.version = RDO_PROTOCOL_VERSION;
	h.card = (char *)card;
	h.link = sp->link;
	h.sequence = sp->sequence;
	h.size = sp->size;
	h.timestamp_ns = sp->timestamp_ns;
	h.flags = sp->flags;
	h.dropped_before = dropped;
	h.run = sp->run;
	h.card_pages_dropped = sp->card_pages_dropped;
	if (rdo__superpage_header__get_packed_size(&h) > cap)
		return 0;
	return rdo__superpage_header__pack(&h, buf);
}

size_t rdo_sink_send(void *sock, const char *card, struct rdo_superpage *sp, uint64_t dropped)
{
	uint8_t header[256];
	size_t hlen = rdo_sink_pack_header(card, sp, dropped, header, sizeof(header));
	/* Once the first frame is in, the rest of the message is too: ZeroMQ sends it whole. */
	zmq_send(sock, header, hlen, ZMQ_SNDMORE);
	size_t size = sp->size;
	rdo_pool_handoff(sp);
	zmq_msg_t m;
	zmq_msg_init_data(&m, sp->data, size, rdo_pool_release, sp);
	if (zmq_msg_send(&m, sock, 0) < 0)
		zmq_msg_close(
		    &m); /* cannot happen after the first frame; releases it all the same */
	return size;
}

uint64_t rdo_squeue_release_all(struct rdo_squeue *q, struct rdo_pool *pool)
{
	uint32_t idx;
	uint64_t n = 0;
	while (rdo_squeue_pop(q, &idx))
		if (idx != RDO_SQUEUE_RUN_END) {
			rdo_pool_put(pool, rdo_pool_at(pool, idx));
			n++;
		}
	return n;
}

int rdo_sink_thread_init(struct rdo_sink_thread *t, const char *name,
			 const struct rdo_sink_thread_ops *ops, struct rdo_pool *pool,
			 size_t capacity)
{
	*t = (struct rdo_sink_thread){.ops = ops, .name = name, .pool = pool, .q.fd = -1, .fd = -1};
	int rc = rdo_squeue_init(&t->q, capacity);
	if (rc)
		rdo_err("%s: cannot create its queue: %s (out of file descriptors? raise "
			"LimitNOFILE)",
			name, strerror(-rc));
	atomic_init(&t->quit, false);
	atomic_init(&t->superpages, 0);
	atomic_init(&t->bytes, 0);
	atomic_init(&t->dropped, 0);
	return rc;
}

/*
 * Hand what is queued to the sink in order until the queue is empty (true)
 * or the sink holds a superpage back (false).
 */
static bool drain(struct rdo_sink_thread *t)
{
	for (;;) {
		if (!t->held) {
			uint32_t idx;
			if (!rdo_squeue_pop(&t->q, &idx))
				return true;
			if (idx == RDO_SQUEUE_RUN_END) {
				if (t->ops->run_end)
					t->ops->run_end(t);
				continue;
			}
			t->held = rdo_pool_at(t->pool, idx);
		}
		if (!t->ops->superpage(t, t->held))
			return false;
		t->held = NULL;
	}
}

/*
 * Sleep up to a tick on the first `n` of what the thread waits on: the sink's
 * own socket or fd first, if it has one, then the queue's eventfd.
 */
static void wait_on(const struct rdo_sink_thread *t, zmq_pollitem_t *zi, struct pollfd *pi, int n)
{
	if (t->sock)
		zmq_poll(zi, n, RDO_SINK_TICK_MS);
	else
		poll(pi, (nfds_t)n, RDO_SINK_TICK_MS);
}

static void *sink_thread(void *arg)
{
	struct rdo_sink_thread *t = arg;
	const struct rdo_sink_thread_ops *ops = t->ops;
	int qfd = rdo_squeue_fd(&t->q);
	zmq_pollitem_t zi[2] = {{t->sock, t->fd, ZMQ_POLLIN, 0}, {NULL, qfd, ZMQ_POLLIN, 0}};
	struct pollfd pi[2] = {{t->fd, POLLIN, 0}, {qfd, POLLIN, 0}};
	int own = t->sock || t->fd >= 0; /* the sink's own item comes first, if it has one */
	zmq_pollitem_t *zw = own ? zi : zi + 1;
	struct pollfd *pw = own ? pi : pi + 1;
	/* acquire: nothing but the flag itself */
	while (!atomic_load_explicit(&t->quit, memory_order_acquire)) {
		if (ops->before_queue)
			ops->before_queue(t);
		bool held = !drain(t);
		if (ops->after_queue)
			ops->after_queue(t);
		if (held) { /* only the sink's own I/O (a credit, a completion) can free it */
			wait_on(t, zw, pw, own);
			continue;
		}
		if (!rdo_squeue_sleep(&t->q))
			continue;
		wait_on(t, zw, pw, own + 1);
		rdo_squeue_woken(&t->q);
	}
	return NULL;
}

int rdo_sink_thread_start(struct rdo_sink_thread *t, const char *thread_name, void *sock, int fd)
{
	t->sock = sock;
	t->fd = fd;
	int rc = pthread_create(&t->thread, NULL, sink_thread, t);
	if (rc) {
		rdo_err("%s: cannot start its thread: %s", t->name, strerror(rc));
		return -rc;
	}
	pthread_setname_np(t->thread, thread_name);
	t->started = true;
	return 0;
}

void rdo_sink_thread_stop(struct rdo_sink_thread *t)
{
	if (!t->started)
		return;
	atomic_store_explicit(&t->quit, true, memory_order_release); /* a flag */
	rdo_squeue_wake(&t->q); /* whether it sleeps or not: it looks at `quit` next */
	pthread_join(t->thread, NULL);
	t->started = false;
}

void rdo_sink_thread_drain(struct rdo_sink_thread *t)
{
	drain(t);
}

uint64_t rdo_sink_thread_release_all(struct rdo_sink_thread *t)
{
	uint64_t n = rdo_squeue_release_all(&t->q, t->pool);
	if (t->held) {
		rdo_pool_put(t->pool, t->held);
		t->held = NULL;
		n++;
	}
	rdo_sink_thread_count_dropped(t, n);
	return n;
}

void rdo_sink_thread_fini(struct rdo_sink_thread *t)
{
	rdo_sink_thread_release_all(t);
	rdo_squeue_fini(&t->q);
}

bool rdo_sink_thread_offer(struct rdo_sink_thread *t, struct rdo_superpage *sp)
{
	rdo_pool_ref(sp);
	if (rdo_squeue_push(&t->q, sp->index))
		return true;
	rdo_pool_put(sp->pool, sp);
	rdo_sink_thread_count_dropped(t, 1);
	return false;
}

bool rdo_sink_thread_run_end(struct rdo_sink_thread *t)
{
	return rdo_squeue_push(&t->q, RDO_SQUEUE_RUN_END);
}

void rdo_sink_thread_count_delivered(struct rdo_sink_thread *t, uint64_t bytes)
{
	/* relaxed: counters */
	atomic_fetch_add_explicit(&t->superpages, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&t->bytes, bytes, memory_order_relaxed);
}

void rdo_sink_thread_count_dropped(struct rdo_sink_thread *t, uint64_t n)
{
	if (n)
		atomic_fetch_add_explicit(&t->dropped, n, memory_order_relaxed); /* a counter */
}

uint64_t rdo_sink_thread_drops(const struct rdo_sink_thread *t)
{
	/* relaxed: the queue's release/acquire orders the DMA thread's drops before the superpage
	 * popped */
	return atomic_load_explicit(&t->dropped, memory_order_relaxed);
}

void rdo_sink_thread_stats(const struct rdo_sink_thread *t, struct rdo_sink_stats *st)
{
	/* relaxed: counters */
	st->superpages = atomic_load_explicit(&t->superpages, memory_order_relaxed);
	st->bytes = atomic_load_explicit(&t->bytes, memory_order_relaxed);
	st->dropped = atomic_load_explicit(&t->dropped, memory_order_relaxed);
	st->queued = (uint32_t)rdo_squeue_count(&t->q);
}
