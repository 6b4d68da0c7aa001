#include "net/status.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "card/card.h"
#include "card/regmap.h"
#include "common/log.h"
#include "common/writer.h"
#include "core/events.h"
#include "core/sink.h"
#include "core/zsock.h"

/* Rates over the last interval, kept by the status thread for any reader. */
struct rates {
	_Atomic uint64_t bytes, superpages; /* per second */
	_Atomic uint64_t link[RDO_DMA_MAX_LINKS];
	_Atomic uint64_t sink[RDO_DMA_MAX_SINKS];
};

/* One card's sources, rates and topics. */
struct status_card {
	struct rdo_status_sources src;
	bool has_temperature;
	unsigned temp_bar, temp_width;
	uint64_t temp_off;
	struct rates rates;
	char status_topic[RDO_CARD_NAME_MAX + 8], event_topic[RDO_CARD_NAME_MAX + 8];
	/* The status thread's: the previous sample, for rates. */
	uint64_t prev_ns, prev_bytes, prev_superpages;
	uint64_t prev_link[RDO_DMA_MAX_LINKS], prev_sink[RDO_DMA_MAX_SINKS];
};

struct rdo_status {
	struct rdo_status_opts o;
	void *sock; /* the status thread's, after create */
	struct rdo_endpoints bound;
	pthread_t thread;
	_Atomic bool quit;
	uint64_t next_log_ns; /* the status thread's */
	unsigned ncards;
	struct status_card card[];
};

void rdo_status_opts_init(struct rdo_status_opts *o)
{
	memset(o, 0, sizeof(*o));
	rdo_endpoints_add(&o->bind, RDO_DEFAULT_STATUS_TCP);
	rdo_endpoints_add(&o->bind, RDO_DEFAULT_STATUS_IPC);
	o->interval_ms = 1000;
	o->log_interval_s = 5;
}

static double rate(const _Atomic uint64_t *r)
{
	return (double)atomic_load_explicit(r, memory_order_relaxed); /* a statistic */
}

/* The rates of the last interval into a filled message. */
static void fill_rates(struct status_card *s, struct rdo_status_msg *m)
{
	m->st.rate_bytes = rate(&s->rates.bytes);
	m->st.rate_superpages = rate(&s->rates.superpages);
	for (size_t i = 0; i < m->st.n_links; i++)
		m->link[i].rate_bytes = rate(&s->rates.link[i]);
	for (size_t i = 0; i < m->st.n_sinks; i++)
		m->sink[i].rate_bytes = rate(&s->rates.sink[i]);
}

unsigned rdo_status_cards(const struct rdo_status *st)
{
	return st->ncards;
}

void rdo_status_fill(struct rdo_status *status, unsigned card, struct rdo_status_msg *m)
{
	struct status_card *s = &status->card[card];
	memset(m, 0, sizeof(*m));
	struct rdo_dma_stats *d = &m->dma;
	rdo_dma_stats(s->src.dma, d);
	Rdo__Status *st = &m->st;
	rdo__status__init(st);
	rdo_strlcpy(m->card, s->src.card->name, sizeof(m->card));
	rdo_strlcpy(m->last_error, d->last_error, sizeof(m->last_error));
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	st->card = m->card;
	st->state = (Rdo__State)d->state;
	st->time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	st->run = d->run;
	st->superpages = d->superpages;
	st->bytes = d->bytes;
	st->pages_dropped = d->pages_dropped;
	st->bytes_dropped = d->bytes_dropped;
	st->pool_total = d->pool_total;
	st->pool_free = d->pool_free;
	st->pool_in_card = d->pool_in_card;
	st->pool_in_sinks = d->pool_in_sinks;
	st->superpage_size = d->superpage_size;
	st->pool_memory = (char *)(d->pool_memory ? d->pool_memory : "");
	st->errors = d->errors;
	st->last_error = m->last_error;
	st->fifo_overflows = d->fifo_overflows;
	st->unclaimed = d->unclaimed;
	st->events_lost = rdo_events_lost(s->src.events);
	st->uptime_s = d->started_ns && d->state != RDO_DMA_IDLE
			   ? (rdo_now_ns() - d->started_ns) / 1000000000u
			   : 0;
	if (s->has_temperature)
		st->temperature_mc = (int32_t)s->src.card->ops->read(s->src.card, s->temp_bar,
								     s->temp_off, s->temp_width);
	for (unsigned i = 0; i < d->links; i++) {
		Rdo__LinkStatus *l = &m->link[i];
		const struct rdo_dma_link_stats *ls = &d->link[i];
		rdo__link_status__init(l);
		l->link = i;
		l->enabled = ls->enabled;
		l->up = ls->up;
		l->stalled = ls->stalled;
		l->superpages = ls->superpages;
		l->bytes = ls->bytes;
		l->pages = ls->pages;
		l->pages_dropped = ls->pages_dropped;
		l->bytes_dropped = ls->bytes_dropped;
		l->in_card = ls->in_card;
		m->linkp[i] = l;
	}
	st->n_links = d->links;
	st->links = m->linkp;
	for (unsigned i = 0; i < s->src.nsinks; i++) {
		struct rdo_sink_stats *ss = &m->sink_stats[i];
		s->src.sinks[i]->ops->stats(s->src.sinks[i], ss);
		Rdo__SinkStatus *k = &m->sink[i];
		rdo__sink_status__init(k);
		k->name = (char *)ss->name;
		k->superpages = ss->superpages;
		k->bytes = ss->bytes;
		k->dropped = ss->dropped;
		k->queued = ss->queued;
		k->consumers = ss->consumers;
		for (size_t e = 0; ss->endpoints && e < ss->endpoints->n; e++)
			m->endpoints[i][e] = (char *)ss->endpoints->ep[e];
		k->n_endpoints = ss->endpoints ? ss->endpoints->n : 0;
		if (ss->kind == RDO_SINK_WRITER) {
			k->state = (char *)rdo_writer_state_name(ss->writer.state);
			k->file = ss->writer.file;
			k->files = ss->writer.files;
			k->errors = ss->writer.errors;
			k->last_error = ss->writer.last_error;
		}
		k->endpoints = m->endpoints[i];
		m->sinkp[i] = k;
	}
	st->n_sinks = s->src.nsinks;
	st->sinks = m->sinkp;
	fill_rates(s, m);
}

static void set_rate(_Atomic uint64_t *r, uint64_t now, uint64_t *prev, double dt)
{
	uint64_t v = now >= *prev && dt > 0 ? (uint64_t)llround((double)(now - *prev) / dt) : 0;
	atomic_store_explicit(r, v, memory_order_relaxed); /* a statistic */
	*prev = now;
}

static void update_rates(struct status_card *s, const struct rdo_status_msg *m, uint64_t now)
{
	double dt = s->prev_ns ? (double)(now - s->prev_ns) / 1e9 : 0;
	s->prev_ns = now;
	set_rate(&s->rates.bytes, m->dma.bytes, &s->prev_bytes, dt);
	set_rate(&s->rates.superpages, m->dma.superpages, &s->prev_superpages, dt);
	for (unsigned i = 0; i < m->dma.links; i++)
		set_rate(&s->rates.link[i], m->dma.link[i].bytes, &s->prev_link[i], dt);
	for (unsigned i = 0; i < s->src.nsinks; i++)
		set_rate(&s->rates.sink[i], m->sink[i].bytes, &s->prev_sink[i], dt);
}

static void publish(struct rdo_status *s, const char *topic, const void *buf, size_t len)
{
	if (zmq_send(s->sock, topic, strlen(topic), ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
		zmq_send(s->sock, buf, len, ZMQ_DONTWAIT);
}

static void publish_status(struct rdo_status *s, const struct status_card *c,
			   const struct rdo_status_msg *m)
{
	size_t len = rdo__status__get_packed_size(&m->st);
	uint8_t *buf = malloc(len);
	if (!buf)
		return;
	rdo__status__pack(&m->st, buf);
	publish(s, c->status_topic, buf, len);
	free(buf);
}

static void publish_events(struct rdo_status *s, const struct status_card *c)
{
	struct rdo_event e;
	while (rdo_events_next(c->src.events, &e)) {
		Rdo__Event ev = RDO__EVENT__INIT;
		ev.time_ns = e.time_ns;
		ev.card = c->src.card->name;
		ev.severity = (Rdo__Severity)e.severity;
		ev.kind = e.kind;
		ev.message = e.message;
		ev.state = (Rdo__State)e.state;
		uint8_t buf[512];
		if (rdo__event__get_packed_size(&ev) <= sizeof(buf))
			publish(s, c->event_topic, buf, rdo__event__pack(&ev, buf));
	}
}

/* "running 98.2 MB/s, 1234 superpages, 0 pages dropped at the card, pool 12/256 free, ..." */
static void log_line(const struct rdo_status_msg *m)
{
	char sinks[256] = "";
	size_t len = 0;
	for (size_t i = 0; i < m->st.n_sinks && len < sizeof(sinks); i++) {
		const Rdo__SinkStatus *k = m->st.sinks[i];
		len += (size_t)snprintf(
		    sinks + len, sizeof(sinks) - len, ", %s %llu sent %llu dropped (%u %s)",
		    k->name, (unsigned long long)k->superpages, (unsigned long long)k->dropped,
		    k->consumers, strcmp(k->name, "live") ? "consumers" : "topics subscribed");
	}
	rdo_info(
	    "status: card %s %s, %.1f MB/s, %llu superpages, %llu pages dropped at the card, pool "
	    "of %u: %u in card, %u in sinks, %u free%s",
	    m->card, rdo_dma_state_name(m->dma.state), m->st.rate_bytes / 1e6,
	    (unsigned long long)m->st.superpages, (unsigned long long)m->st.pages_dropped,
	    m->st.pool_total, m->st.pool_in_card, m->st.pool_in_sinks, m->st.pool_free, sinks);
}

static void *status_thread(void *arg)
{
	struct rdo_status *s = arg;
	uint64_t next = rdo_now_ns();
	struct rdo_status_msg *m = malloc(sizeof(*m));
	if (!m) {
		rdo_err("status: out of memory; no status stream");
		return NULL;
	}
	/* acquire: nothing but the flag itself */
	while (!atomic_load_explicit(&s->quit, memory_order_acquire)) {
		for (unsigned i = 0; i < s->ncards; i++)
			publish_events(s, &s->card[i]);
		uint64_t now = rdo_now_ns();
		if (now >= next) {
			next = now + (uint64_t)s->o.interval_ms * 1000000u;
			bool log = s->o.log_interval_s && now >= s->next_log_ns;
			for (unsigned i = 0; i < s->ncards; i++) {
				struct status_card *c = &s->card[i];
				rdo_status_fill(s, i, m);
				update_rates(c, m, now);
				fill_rates(c, m);
				publish_status(s, c, m);
				if (log && s->next_log_ns)
					log_line(m);
			}
			if (log)
				s->next_log_ns = now + (uint64_t)s->o.log_interval_s * 1000000000u;
		}
		struct timespec ts = {0, 20000000};
		nanosleep(&ts, NULL);
	}
	for (unsigned i = 0; i < s->ncards; i++)
		publish_events(s, &s->card[i]);
	free(m);
	return NULL;
}

struct rdo_status *rdo_status_create(void *zctx, const struct rdo_zsock_policy *policy,
				     const struct rdo_status_sources *src, unsigned n,
				     const struct rdo_status_opts *o)
{
	struct rdo_status *s = calloc(1, sizeof(*s) + n * sizeof(s->card[0]));
	if (!s) {
		rdo_err("status: out of memory");
		return NULL;
	}
	s->o = *o;
	s->ncards = n;
	for (unsigned i = 0; i < n; i++) {
		struct status_card *c = &s->card[i];
		c->src = src[i];
		snprintf(c->status_topic, sizeof(c->status_topic), "status/%s", src[i].card->name);
		snprintf(c->event_topic, sizeof(c->event_topic), "event/%s", src[i].card->name);
		struct rdo_target t;
		char err[128];
		if (rdo_regmap_resolve(src[i].map, "mon.temperature", &t, err, sizeof(err)) == 0 &&
		    rdo_card_check(src[i].card, t.bar, t.offset, t.width) == 0) {
			c->has_temperature = true;
			c->temp_bar = t.bar;
			c->temp_off = t.offset;
			c->temp_width = t.width;
		}
	}
	s->sock = zmq_socket(zctx, ZMQ_PUB);
	int linger = 0;
	if (!s->sock || zmq_setsockopt(s->sock, ZMQ_LINGER, &linger, sizeof(linger))) {
		rdo_err("status: cannot create its socket: %s", zmq_strerror(errno));
		goto fail;
	}
	if (rdo_zsock_bind_all(s->sock, policy, "status stream", &o->bind, &s->bound))
		goto fail_sock;
	int rc = pthread_create(&s->thread, NULL, status_thread, s);
	if (rc) {
		rdo_err("status: cannot start its thread: %s", strerror(rc));
		goto fail_sock;
	}
	pthread_setname_np(s->thread, "rdo-status");
	return s;
fail_sock:
	zmq_close(s->sock);
fail:
	free(s);
	return NULL;
}

void rdo_status_destroy(struct rdo_status **st)
{
	struct rdo_status *s = *st;
	if (!s)
		return;
	atomic_store_explicit(&s->quit, true, memory_order_release); /* a flag */
	pthread_join(s->thread, NULL);
	zmq_close(s->sock);
	free(s);
	*st = NULL;
}

const struct rdo_endpoints *rdo_status_endpoints(const struct rdo_status *st)
{
	return &st->bound;
}
