#include "lib/rdodata.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/util.h"
#include "lib/rdosocket.h"
#include "proto/readout.pb-c.h"

/* Half the server's "something every second" rule, so one late call is harmless. */
#define HEARTBEAT_NS 500000000ull
/* Longest single poll in lossless mode, so heartbeats go out during a long wait. */
#define POLL_SLICE_MS 100
/* Frames kept of a message (a live superpage has three); more are counted and dropped. */
#define MAX_FRAMES    3
#define BYE_LINGER_MS 200

struct slot {
	zmq_msg_t msg; /* the payload frame while `used` */
	bool used;
	unsigned gen; /* bumped on every use, so a stale handle is caught */
};

struct rdo_data {
	enum rdo_data_mode mode;
	void *ctx;
	void *sock;
	unsigned credits;
	uint64_t silence_ns;
	struct slot *slots; /* `credits` of them; never moves, views point into it */
	unsigned next_slot;
	unsigned owed; /* lossless: credits acked but not yet sent back */
	uint64_t last_send_ns;
	uint64_t last_recv_ns;
	bool refused;
	bool run_ends; /* the consumer asked for RDO_DATA_RUN_END */
	struct rdo_data_stats st;
	char endpoint[RDO_ENDPOINT_MAX];
	char error[512];
};

void rdo_data_opts_init(struct rdo_data_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->mode = RDO_DATA_LIVE;
	o->topic = "";
	o->credits = 8;
	o->name = "rdodata";
	o->silence_ms = 5000;
}

const char *rdo_data_mode_name(enum rdo_data_mode m)
{
	return m == RDO_DATA_LOSSLESS ? "lossless" : "live";
}

/* Send a StreamRequest without blocking: a full or absent pipe is -EAGAIN. */
static int send_request(struct rdo_data *d, Rdo__StreamRequest *req)
{
	req->version = RDO_PROTOCOL_VERSION;
	uint8_t buf[256]; /* a credit is a few bytes; a hello carries a name of at most 64 */
	size_t n = rdo__stream_request__get_packed_size(req);
	if (n > sizeof(buf))
		return -EMSGSIZE;
	rdo__stream_request__pack(req, buf);
	int rc = zmq_send(d->sock, buf, n, ZMQ_DONTWAIT);
	if (rc < 0)
		return -errno;
	d->last_send_ns = rdo_now_ns();
	return 0;
}

static int send_hello(struct rdo_data *d, const char *name)
{
	char shown[64]; /* what the server keeps of it */
	rdo_strlcpy(shown, name, sizeof(shown));
	Rdo__StreamHello hello;
	rdo__stream_hello__init(&hello);
	hello.credits = d->credits;
	hello.name = shown;
	Rdo__StreamRequest req;
	rdo__stream_request__init(&req);
	req.msg_case = RDO__STREAM_REQUEST__MSG_HELLO;
	req.hello = &hello;
	return send_request(d, &req);
}

static int stopped(const struct rdo_data *d)
{
	if (d->refused)
		return -ECONNREFUSED;
	if (d->st.ended || d->st.silent)
		return -EPIPE;
	return 0;
}

/* Return owed credits, or send credit=0 as a heartbeat when it is time. */
static void keep_alive(struct rdo_data *d, uint64_t now)
{
	if (d->mode != RDO_DATA_LOSSLESS || !d->st.welcomed || stopped(d))
		return;
	if (d->owed == 0 && now - d->last_send_ns < HEARTBEAT_NS)
		return;
	Rdo__StreamRequest req;
	rdo__stream_request__init(&req);
	req.msg_case = RDO__STREAM_REQUEST__MSG_CREDIT;
	req.credit = d->owed;
	/* On failure the credits stay owed and go with the next try. */
	if (send_request(d, &req) == 0)
		d->owed = 0;
}

struct rdo_data *rdo_data_open(const struct rdo_data_opts *o, char *err, size_t errlen)
{
	const char *ep = o->endpoint && o->endpoint[0]	? o->endpoint
			 : o->mode == RDO_DATA_LOSSLESS ? RDO_DEFAULT_LOSSLESS_TCP
							: RDO_DEFAULT_LIVE_TCP;
	if (o->credits < 1 || o->credits > RDO_DATA_MAX_CREDITS) {
		snprintf(err, errlen, "credits: %u is out of range (1 to %u)", o->credits,
			 RDO_DATA_MAX_CREDITS);
		return NULL;
	}
	struct rdo_data *d = calloc(1, sizeof(*d));
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	d->mode = o->mode;
	d->credits = o->credits;
	d->run_ends = o->run_ends;
	d->silence_ns = (uint64_t)(o->silence_ms ? o->silence_ms : 5000) * 1000000u;
	rdo_strlcpy(d->endpoint, ep, sizeof(d->endpoint));
	d->slots = calloc(d->credits, sizeof(*d->slots));
	if (!d->slots) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	d->ctx = zmq_ctx_new();
	d->sock =
	    d->ctx ? zmq_socket(d->ctx, d->mode == RDO_DATA_LOSSLESS ? ZMQ_DEALER : ZMQ_SUB) : NULL;
	if (!d->sock) {
		snprintf(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
		goto fail;
	}
	int zero = 0, hwm = (int)d->credits;
	zmq_setsockopt(d->sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* Live: a lagging consumer should make the server drop (and count), not queue here. */
	if (d->mode == RDO_DATA_LIVE)
		zmq_setsockopt(d->sock, ZMQ_RCVHWM, &hwm, sizeof(hwm));
	if (rdo_socket_connect(d->sock, ep, o->keys, err, errlen))
		goto fail;
	if (d->mode == RDO_DATA_LIVE) {
		const char *topic = o->topic ? o->topic : "";
		if (zmq_setsockopt(d->sock, ZMQ_SUBSCRIBE, topic, strlen(topic)) != 0) {
			snprintf(err, errlen, "cannot subscribe to \"%s\": %s", topic,
				 zmq_strerror(errno));
			goto fail;
		}
	} else {
		/* Queued by ZeroMQ until the connection is up. */
		int rc = send_hello(d, o->name && o->name[0] ? o->name : "rdodata");
		if (rc) {
			snprintf(err, errlen, "cannot send hello to \"%s\": %s", ep,
				 zmq_strerror(-rc));
			goto fail;
		}
	}
	d->last_recv_ns = rdo_now_ns();
	return d;
fail:
	rdo_data_close(&d);
	return NULL;
}

void rdo_data_close(struct rdo_data **pd)
{
	struct rdo_data *d = *pd;
	if (!d)
		return;
	for (unsigned i = 0; d->slots && i < d->credits; i++)
		if (d->slots[i].used)
			zmq_msg_close(&d->slots[i].msg);
	if (d->sock && d->mode == RDO_DATA_LOSSLESS && d->st.welcomed && !d->refused) {
		Rdo__StreamRequest req;
		rdo__stream_request__init(&req);
		req.msg_case = RDO__STREAM_REQUEST__MSG_BYE;
		req.bye = true;
		/* Give the bye a moment to leave; a gone server must not hold us up long. */
		int linger = BYE_LINGER_MS;
		zmq_setsockopt(d->sock, ZMQ_LINGER, &linger, sizeof(linger));
		keep_alive(d, rdo_now_ns()); /* the credits owed go first */
		send_request(d, &req);
	}
	if (d->sock)
		zmq_close(d->sock);
	if (d->ctx)
		zmq_ctx_term(d->ctx);
	free(d->slots);
	free(d);
	*pd = NULL;
}

static int malformed(struct rdo_data *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int malformed(struct rdo_data *d, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(d->error, sizeof(d->error), fmt, ap);
	va_end(ap);
	d->st.malformed++;
	return -EPROTO;
}

/*
 * A one-frame lossless message: a notice. -EAGAIN when the caller should go
 * on waiting; RDO_DATA_RUN_END with `*v` filled.
 */
static int take_notice(struct rdo_data *d, zmq_msg_t *frame, struct rdo_data_view *v)
{
	Rdo__StreamNotice *n =
	    rdo__stream_notice__unpack(NULL, zmq_msg_size(frame), zmq_msg_data(frame));
	if (!n)
		return malformed(d, "a %zu-byte one-frame message that is not a StreamNotice",
				 zmq_msg_size(frame));
	int rc = -EAGAIN;
	switch (n->kind) {
	case RDO__NOTICE_KIND__NOTICE_PING:
		d->st.pings++;
		break;
	case RDO__NOTICE_KIND__NOTICE_WELCOME:
		d->st.welcomed = true;
		rdo_strlcpy(d->st.card, n->card, sizeof(d->st.card));
		d->st.superpage_size = n->superpage_size;
		break;
	case RDO__NOTICE_KIND__NOTICE_RUN_END:
		d->st.run_ends++;
		if (d->run_ends) {
			memset(v, 0, sizeof(*v));
			rdo_strlcpy(v->card, d->st.card, sizeof(v->card));
			v->handle = UINT32_MAX;
			rc = RDO_DATA_RUN_END;
		}
		break;
	case RDO__NOTICE_KIND__NOTICE_END:
		d->st.ended = true;
		snprintf(d->error, sizeof(d->error), "%s: the server ended the stream%s%s",
			 d->endpoint, n->message[0] ? ": " : "", n->message);
		rc = -EPIPE;
		break;
	case RDO__NOTICE_KIND__NOTICE_REFUSED:
		d->refused = true;
		snprintf(d->error, sizeof(d->error), "%s: the server refused this consumer: %s",
			 d->endpoint, n->message[0] ? n->message : "no reason given");
		rc = -ECONNREFUSED;
		break;
	default:
		rc = malformed(d, "a notice of unknown kind %d", (int)n->kind);
	}
	rdo__stream_notice__free_unpacked(n, NULL);
	return rc;
}

/* Take the superpage in `hdr` + `payload` into a free slot and describe it in `v`. */
static int take_superpage(struct rdo_data *d, zmq_msg_t *topic, zmq_msg_t *hdr, zmq_msg_t *payload,
			  struct rdo_data_view *v)
{
	Rdo__SuperpageHeader *h =
	    rdo__superpage_header__unpack(NULL, zmq_msg_size(hdr), zmq_msg_data(hdr));
	if (!h)
		return malformed(d, "a %zu-byte header frame that is not a SuperpageHeader",
				 zmq_msg_size(hdr));
	int rc = 0;
	char want[RDO_DATA_CARD_MAX + 16];
	snprintf(want, sizeof(want), "%s/%02u", h->card, h->link);
	if (h->version > RDO_PROTOCOL_VERSION)
		rc =
		    malformed(d, "a superpage header of protocol version %u; this client speaks %u",
			      h->version, RDO_PROTOCOL_VERSION);
	else if (h->size != zmq_msg_size(payload))
		rc = malformed(d, "%s sequence %llu: header says %u payload bytes, %zu came", want,
			       (unsigned long long)h->sequence, h->size, zmq_msg_size(payload));
	else if (topic && (zmq_msg_size(topic) != strlen(want) ||
			   memcmp(zmq_msg_data(topic), want, strlen(want)) != 0))
		rc = malformed(d, "topic \"%.*s\" does not match the header's %s",
			       (int)(zmq_msg_size(topic) < 64 ? zmq_msg_size(topic) : 64),
			       (const char *)zmq_msg_data(topic), want);
	if (rc) {
		rdo__superpage_header__free_unpacked(h, NULL);
		return rc;
	}
	/* wait checked that one is free; next_slot makes the search short. */
	unsigned i = d->next_slot;
	while (d->slots[i].used)
		i = (i + 1) % d->credits;
	d->next_slot = (i + 1) % d->credits;
	struct slot *s = &d->slots[i];
	zmq_msg_init(&s->msg);
	zmq_msg_move(&s->msg, payload);
	s->used = true;
	s->gen = (s->gen + 1) & 0xffff;
	d->st.held++;
	d->st.superpages++;
	d->st.bytes += h->size;

	memset(v, 0, sizeof(*v));
	v->data = zmq_msg_data(&s->msg);
	v->size = zmq_msg_size(&s->msg);
	rdo_strlcpy(v->card, h->card, sizeof(v->card));
	v->link = h->link;
	v->sequence = h->sequence;
	v->timestamp_ns = h->timestamp_ns;
	v->flags = h->flags;
	v->dropped_before = h->dropped_before;
	v->run = h->run;
	v->card_pages_dropped = h->card_pages_dropped;
	v->handle = s->gen << 16 | i;
	rdo__superpage_header__free_unpacked(h, NULL);
	return 0;
}

/*
 * Receive one whole message (its frames are all there once the first is).
 * 0 with `*v` filled, -EAGAIN for a notice that asks the caller to go on
 * waiting, or the error wait returns.
 */
static int receive(struct rdo_data *d, struct rdo_data_view *v)
{
	zmq_msg_t f[MAX_FRAMES], extra;
	size_t frames = 0;
	int more = 1;
	while (more) {
		zmq_msg_t *m = frames < MAX_FRAMES ? &f[frames] : &extra;
		zmq_msg_init(m);
		if (zmq_msg_recv(m, d->sock, frames ? 0 : ZMQ_DONTWAIT) < 0) {
			int e = errno;
			zmq_msg_close(m);
			for (size_t k = 0; k < frames && k < MAX_FRAMES; k++)
				zmq_msg_close(&f[k]);
			return -e;
		}
		more = zmq_msg_more(m);
		if (m == &extra)
			zmq_msg_close(&extra);
		frames++;
	}
	d->last_recv_ns = rdo_now_ns();
	int rc;
	if (d->mode == RDO_DATA_LIVE && frames == 3) {
		rc = take_superpage(d, &f[0], &f[1], &f[2], v);
	} else if (d->mode == RDO_DATA_LOSSLESS && frames == 2) {
		rc = take_superpage(d, NULL, &f[0], &f[1], v);
	} else if (d->mode == RDO_DATA_LOSSLESS && frames == 1) {
		rc = take_notice(d, &f[0], v);
	} else {
		rc = malformed(d, "a message of %zu frames; the %s stream sends %s", frames,
			       rdo_data_mode_name(d->mode),
			       d->mode == RDO_DATA_LIVE ? "3 (topic, header, payload)"
							: "2 (header, payload) or 1 (notice)");
	}
	/* The server spent a credit on every multi-frame message: give back the bad ones. */
	if (rc == -EPROTO && d->mode == RDO_DATA_LOSSLESS && frames >= 2)
		d->owed++;
	for (size_t k = 0; k < frames && k < MAX_FRAMES; k++)
		zmq_msg_close(&f[k]);
	return rc;
}

int rdo_data_wait(struct rdo_data *d, struct rdo_data_view *v, int timeout_ms)
{
	uint64_t start = rdo_now_ns();
	for (;;) {
		int rc = stopped(d);
		if (rc)
			return rc;
		uint64_t now = rdo_now_ns();
		keep_alive(d, now); /* also for a consumer that holds every credit */
		if (d->st.held + d->st.uncredited >= d->credits)
			return -ENOBUFS;
		uint64_t elapsed_ms = (now - start) / 1000000u;
		long slice = -1;
		if (timeout_ms >= 0)
			slice = elapsed_ms >= (uint64_t)timeout_ms
				    ? 0
				    : (long)(timeout_ms - elapsed_ms);
		if (d->mode == RDO_DATA_LOSSLESS && (slice < 0 || slice > POLL_SLICE_MS))
			slice = POLL_SLICE_MS;
		zmq_pollitem_t item = {.socket = d->sock, .events = ZMQ_POLLIN};
		rc = zmq_poll(&item, 1, slice);
		if (rc < 0)
			return -errno;
		if (rc > 0) {
			rc = receive(d, v);
			if (rc != -EAGAIN)
				return rc;
			continue;
		}
		/* Only an empty socket is silence: a consumer busy elsewhere left it unread. */
		now = rdo_now_ns();
		if (d->mode == RDO_DATA_LOSSLESS && d->st.welcomed &&
		    now - d->last_recv_ns >= d->silence_ns) {
			d->st.silent = true;
			snprintf(d->error, sizeof(d->error),
				 "%s: nothing from the server for %.1f s (it pings every second): "
				 "it stopped or the network is down",
				 d->endpoint, (double)(now - d->last_recv_ns) / 1e9);
			return -EPIPE;
		}
		if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms * 1000000u)
			return -ETIMEDOUT;
	}
}

/* Free a held view's message: 0, or -EINVAL when `v` is not one. */
static int free_view(struct rdo_data *d, struct rdo_data_view *v)
{
	unsigned i = v->handle & 0xffff;
	if (i >= d->credits || !d->slots[i].used || d->slots[i].gen != v->handle >> 16)
		return -EINVAL;
	zmq_msg_close(&d->slots[i].msg);
	d->slots[i].used = false;
	d->st.held--;
	memset(v, 0, sizeof(*v));
	v->handle = UINT32_MAX;
	return 0;
}

int rdo_data_ack(struct rdo_data *d, struct rdo_data_view *v)
{
	int rc = free_view(d, v);
	if (rc == 0 && d->mode == RDO_DATA_LOSSLESS) {
		d->owed++;
		keep_alive(d, rdo_now_ns());
	}
	return rc;
}

int rdo_data_release(struct rdo_data *d, struct rdo_data_view *v)
{
	if (d->mode != RDO_DATA_LOSSLESS)
		return rdo_data_ack(d, v);
	int rc = free_view(d, v);
	if (rc == 0)
		d->st.uncredited++;
	return rc;
}

int rdo_data_credit(struct rdo_data *d, unsigned n)
{
	if (n > d->st.uncredited)
		return -EINVAL;
	d->st.uncredited -= n;
	d->owed += n;
	keep_alive(d, rdo_now_ns());
	return stopped(d);
}

void rdo_data_stats(const struct rdo_data *d, struct rdo_data_stats *s)
{
	*s = d->st;
}

const char *rdo_data_endpoint(const struct rdo_data *d)
{
	return d->endpoint;
}

const char *rdo_data_error(const struct rdo_data *d)
{
	return d->error;
}

const char *rdo_data_format_bytes(char *buf, size_t len, double bytes)
{
	static const char *const units[] = {"B", "kB", "MB", "GB", "TB", "PB"};
	size_t u = 0;
	while (bytes >= 999.995 && u + 1 < RDO_ARRAY_SIZE(units)) {
		bytes /= 1000;
		u++;
	}
	snprintf(buf, len, u ? "%.2f %s" : "%.0f %s", bytes, units[u]);
	return buf;
}
