#include "rdoclient.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "util.h"

struct rdo_client {
	void *ctx;
	void *sock;
	int timeout_ms;
	uint64_t next_id;
	char endpoint[256];
	uint8_t *buf;
	size_t cap;
};

struct rdo_client *rdo_client_create(const char *endpoint, int timeout_ms, char *err, size_t errlen)
{
	struct rdo_client *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	c->timeout_ms = timeout_ms;
	c->next_id = 1;
	rdo_strlcpy(c->endpoint, endpoint, sizeof(c->endpoint));
	c->ctx = zmq_ctx_new();
	c->sock = c->ctx ? zmq_socket(c->ctx, ZMQ_DEALER) : NULL;
	if (!c->sock) {
		snprintf(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
		goto fail;
	}
	int zero = 0;
	zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero));
	if (zmq_connect(c->sock, endpoint) != 0) {
		snprintf(err, errlen,
			 "cannot connect to \"%s\": %s (expected tcp://HOST:PORT or "
			 "ipc://PATH)",
			 endpoint, zmq_strerror(errno));
		goto fail;
	}
	return c;
fail:
	rdo_client_destroy(&c);
	return NULL;
}

void rdo_client_destroy(struct rdo_client **pc)
{
	struct rdo_client *c = *pc;
	if (!c)
		return;
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

int rdo_client_call(struct rdo_client *c, Rdo__Request *req, Rdo__Reply **reply)
{
	req->version = RDO_PROTOCOL_VERSION;
	req->id = c->next_id++;
	size_t n = rdo__request__get_packed_size(req);
	if (n > c->cap) {
		uint8_t *buf = realloc(c->buf, n);
		if (!buf)
			return -ENOMEM;
		c->buf = buf;
		c->cap = n;
	}
	rdo__request__pack(req, c->buf);
	if (zmq_send(c->sock, c->buf, n, 0) < 0)
		return -errno;
	uint64_t deadline = rdo_now_ns() + (uint64_t)c->timeout_ms * 1000000u;
	for (;;) {
		uint64_t now = rdo_now_ns();
		if (now >= deadline)
			return -ETIMEDOUT;
		zmq_pollitem_t item = {.socket = c->sock, .events = ZMQ_POLLIN};
		int rc = zmq_poll(&item, 1, (long)((deadline - now + 999999) / 1000000));
		if (rc < 0 && errno != EINTR)
			return -errno;
		if (rc <= 0)
			continue;
		zmq_msg_t msg;
		zmq_msg_init(&msg);
		if (zmq_msg_recv(&msg, c->sock, 0) < 0) {
			zmq_msg_close(&msg);
			return -errno;
		}
		Rdo__Reply *r = rdo__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
		zmq_msg_close(&msg);
		if (!r)
			return -EBADMSG;
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
	};
	return (unsigned)code < RDO_ARRAY_SIZE(names) && names[code] ? names[code] : "error";
}
