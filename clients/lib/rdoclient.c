#include "lib/rdoclient.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/keys.h"
#include "common/util.h"
#include "lib/rdosocket.h"

/* Where the socket's handshake events go; one context per client, so one name serves. */
#define MONITOR_ENDPOINT "inproc://rdoclient.monitor"
#define HANDSHAKE_EVENTS                                                                           \
	(ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |                    \
	 ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)

struct rdo_client {
	void *ctx;
	void *sock;
	void *monitor; /* PAIR receiving the socket's handshake events; NULL: none */
	bool curve;
	int timeout_ms;
	uint64_t next_id;
	/* The last handshake event and its value (a ZAP status, a protocol error, an errno). */
	unsigned handshake_event;
	uint32_t handshake_value;
	char endpoint[256];
	char error[768];
	uint8_t *buf;
	size_t cap;
};

/*
 * Watch the socket's handshakes, so a timeout can say whether the server
 * refused our key, speaks another mechanism, or never answered. Without it
 * the client works the same, with a vaguer message.
 */
static void watch_handshakes(struct rdo_client *c)
{
	if (zmq_socket_monitor(c->sock, MONITOR_ENDPOINT, HANDSHAKE_EVENTS) != 0)
		return;
	c->monitor = zmq_socket(c->ctx, ZMQ_PAIR);
	int zero = 0;
	if (c->monitor && zmq_setsockopt(c->monitor, ZMQ_LINGER, &zero, sizeof(zero)) == 0 &&
	    zmq_connect(c->monitor, MONITOR_ENDPOINT) == 0)
		return;
	zmq_socket_monitor(c->sock, NULL, 0);
	if (c->monitor)
		zmq_close(c->monitor);
	c->monitor = NULL;
}

/* How much a handshake failure tells: a refused key most, a bare hang-up least. */
static int failure_rank(unsigned event)
{
	switch (event) {
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		return 3;
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		return 2;
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		return 1;
	default:
		return 0;
	}
}

/* Take every event waiting on the monitor: [u16 event, u32 value][endpoint]. */
static void read_handshakes(struct rdo_client *c)
{
	while (c->monitor) {
		zmq_msg_t m;
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, c->monitor, ZMQ_DONTWAIT) < 0) {
			zmq_msg_close(&m);
			return;
		}
		if (zmq_msg_size(&m) == 6) {
			const uint8_t *d = zmq_msg_data(&m);
			uint16_t ev;
			uint32_t value;
			memcpy(&ev, d, sizeof(ev));
			memcpy(&value, d + 2, sizeof(value));
			/*
			 * The client retries every 100 ms, and a retry may say less (the
			 * server can hang up before its greeting is read): keep the most
			 * telling failure since the last success.
			 */
			if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
				c->handshake_event = 0;
			} else if (failure_rank(ev) >= failure_rank(c->handshake_event)) {
				c->handshake_event = ev;
				c->handshake_value = value;
			}
		}
		int more = zmq_msg_more(&m);
		zmq_msg_close(&m);
		while (more) { /* the endpoint frame */
			zmq_msg_init(&m);
			if (zmq_msg_recv(&m, c->monitor, 0) < 0)
				more = 0;
			else
				more = zmq_msg_more(&m);
			zmq_msg_close(&m);
		}
	}
}

/* What the handshake showed, as a sentence to follow the timeout's question; "" if nothing. */
static void handshake_detail(const struct rdo_client *c, char *out, size_t len)
{
	uint32_t v = c->handshake_value;
	out[0] = '\0';
	switch (c->handshake_event) {
	case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
		snprintf(out, len,
			 " The server refused this client's key (CURVE handshake, ZAP status %u): "
			 "its operator adds the public key of --key to its authorized_keys.",
			 v);
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
		if (v == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH && c->curve)
			snprintf(out, len,
				 " The server does not speak CURVE there: connect "
				 "without --server-key and --key (and RDO_SERVER_KEY, "
				 "RDO_CLIENT_KEY).");
		else if (v == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH)
			snprintf(out, len,
				 " The server requires CURVE there: give its public "
				 "key and your key pair (--server-key, --key).");
		else
			snprintf(out, len, " The handshake failed with protocol error 0x%x%s.", v,
				 c->curve ? ": is --server-key the server's public key?" : "");
		break;
	case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
		snprintf(out, len, " The server closed the connection during the handshake: %s",
			 c->curve ? "is --server-key its public key, does it speak CURVE there, "
				    "and is your key authorised?"
				  : "does it require CURVE (--server-key, --key)?");
		break;
	default:
		break;
	}
}

struct rdo_client *rdo_client_open(const char *endpoint, int timeout_ms,
				   const struct rdo_client_keys *keys, char *err, size_t errlen)
{
	struct rdo_client *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	c->next_id = 1;
	c->curve = keys && keys->enabled;
	rdo_strlcpy(c->endpoint, endpoint, sizeof(c->endpoint));
	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
	if (!c->sock) {
		snprintf(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
		goto fail;
	}
	int zero = 0;
	zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero));
	/* Before the connect, so the first handshake is seen too. */
	watch_handshakes(c);
	if (rdo_socket_connect(c->sock, endpoint, keys, err, errlen))
		goto fail;
	return c;
fail:
	rdo_client_destroy(&c);
	return NULL;
}

struct rdo_client *rdo_client_create(const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
	return rdo_client_open(endpoint, timeout_ms, NULL, err, errlen);
}

void rdo_client_destroy(struct rdo_client **pc)
{
	struct rdo_client *c = *pc;
	if (!c)
		return;
	if (c->monitor) {
		zmq_socket_monitor(c->sock, NULL, 0);
		zmq_close(c->monitor);
	}
	if (c->sock)
		zmq_close(c->sock);
	if (c->ctx)
		zmq_ctx_term(c->ctx);
	free(c->buf);
	free(c);
	*pc = NULL;
}

const char *rdo_client_endpoint(const struct rdo_client *c)
{
	return c->endpoint;
}

const char *rdo_client_error(const struct rdo_client *c)
{
	return c->error;
}

static int failed(struct rdo_client *c, int rc)
{
	if (rc == -ETIMEDOUT) {
		char detail[384];
		read_handshakes(c);
		handshake_detail(c, detail, sizeof(detail));
		snprintf(c->error, sizeof(c->error),
			 "no reply from %s within %d ms: is readoutd running there, and if it "
			 "needs CURVE, is your key authorised (--server-key, --key)?%s",
			 c->endpoint, c->timeout_ms, detail);
	} else {
		snprintf(c->error, sizeof(c->error), "talking to %s failed: %s", c->endpoint,
			 rc == -EBADMSG ? "a reply that is not a Reply protobuf"
					: zmq_strerror(-rc));
	}
	return rc;
}

int rdo_client_call(struct rdo_client *c, Rdo__Request *req, Rdo__Reply **reply)
{
	c->error[0] = '\0';
	req->version = RDO_PROTOCOL_VERSION;
	req->id = c->next_id++;
	size_t n = rdo__request__get_packed_size(req);
	if (n > c->cap) {
		uint8_t *buf = realloc(c->buf, n);
		if (!buf)
			return failed(c, -ENOMEM);
		c->buf = buf;
		c->cap = n;
	}
	rdo__request__pack(req, c->buf);
	if (zmq_send(c->sock, c->buf, n, 0) < 0)
		return failed(c, -errno);
	uint64_t deadline = rdo_now_ns() + (uint64_t)c->timeout_ms * 1000000u;
	for (;;) {
		uint64_t now = rdo_now_ns();
		if (now >= deadline)
			return failed(c, -ETIMEDOUT);
		zmq_pollitem_t items[2] = {{.socket = c->sock, .events = ZMQ_POLLIN},
					   {.socket = c->monitor, .events = ZMQ_POLLIN}};
		int rc = zmq_poll(items, c->monitor ? 2 : 1,
				  (long)((deadline - now + 999999) / 1000000));
		if (rc < 0 && errno != EINTR)
			return failed(c, -errno);
		if (rc <= 0)
			continue;
		if (c->monitor && items[1].revents & ZMQ_POLLIN)
			read_handshakes(c);
		if (!(items[0].revents & ZMQ_POLLIN))
			continue;
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
			zmq_msg_close(&msg);
			return failed(c, -errno);
		}
		Rdo__Reply *r = rdo__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
		zmq_msg_close(&msg);
		if (!r)
			return failed(c, -EBADMSG);
		/* A late reply to an earlier, timed-out call: not ours. */
		if (r->id != req->id && r->error != RDO__ERROR_CODE__ERR_MALFORMED) {
			rdo__reply__free_unpacked(r, NULL);
			continue;
		}
		*reply = r;
		return 0;
	}
}

const char *rdo_client_error_name(Rdo__ErrorCode code)
{
	static const char *const names[] = {
	    [RDO__ERROR_CODE__OK] = "ok",
	    [RDO__ERROR_CODE__ERR_MALFORMED] = "malformed request",
	    [RDO__ERROR_CODE__ERR_VERSION] = "protocol version",
	    [RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND] = "unknown command",
	    [RDO__ERROR_CODE__ERR_UNKNOWN_REGISTER] = "unknown register",
	    [RDO__ERROR_CODE__ERR_READ_ONLY] = "read-only",
	    [RDO__ERROR_CODE__ERR_WRITE_ONLY] = "write-only",
	    [RDO__ERROR_CODE__ERR_VALUE_RANGE] = "value out of range",
	    [RDO__ERROR_CODE__ERR_OUT_OF_BOUNDS] = "out of bounds",
	    [RDO__ERROR_CODE__ERR_INVALID] = "invalid argument",
	    [RDO__ERROR_CODE__ERR_EXISTS] = "already defined",
	    [RDO__ERROR_CODE__ERR_CARD] = "card error",
	    [RDO__ERROR_CODE__ERR_STATE] = "not in this state",
	    [RDO__ERROR_CODE__ERR_DENIED] = "denied",
	    [RDO__ERROR_CODE__ERR_UNKNOWN_CARD] = "unknown card",
	};
	return (unsigned)code < RDO_ARRAY_SIZE(names) && names[code] ? names[code] : "error";
}
