#include "core/sink.h"

#include <errno.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <zmq.h>

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

bool rdo_squeue_push(struct rdo_squeue *q, uint32_t index)
{
	if (!rdo_ring_push(&q->ring, index))
		return false;
	/* seq_cst: our push before our look at `sleeping`, against the consumer's mirror image */
	atomic_thread_fence(memory_order_seq_cst);
	/* fenced above; the exchange lets only the first pusher pay for the wake-up */
	if (atomic_exchange_explicit(&q->sleeping, false, memory_order_relaxed)) {
		uint64_t one = 1;
		ssize_t n = write(q->fd, &one, sizeof(one));
		(void)n; /* EAGAIN: the counter is already non-zero, the wake-up stands */
	}
	return true;
}

bool rdo_squeue_pop(struct rdo_squeue *q, uint32_t *index)
{
	return rdo_ring_pop(&q->ring, index);
}

bool rdo_squeue_sleep(struct rdo_squeue *q)
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
