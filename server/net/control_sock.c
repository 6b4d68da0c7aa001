/*
 * The control's sockets: the ROUTER requests come in on and replies go out
 * of, with each sender's role from auth, and the ROUTER's monitor, whose
 * failed handshakes become audit lines.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "core/zsock.h"
#include "net/control_internal.h"

#define MAX_FRAMES 9 /* routing envelope and payload of one request */

int control_sock_open(struct rdo_control *ctl, void *zctx)
{
	ctl->router = zmq_socket(zctx, ZMQ_ROUTER);
	if (!ctl->router) {
		rdo_err("control: cannot create the ROUTER socket: %s", zmq_strerror(errno));
		return -1;
	}
	int zero = 0;
	zmq_setsockopt(ctl->router, ZMQ_LINGER, &zero, sizeof(zero));
	/*
	 * A client that fails the handshake (no CURVE on a CURVE endpoint, the
	 * wrong server key) never reaches the ZAP handler; the socket monitor is
	 * where it shows, for the audit log.
	 */
	char ep[64];
	snprintf(ep, sizeof(ep), "inproc://rdo-control-monitor-%p", (void *)ctl);
	if (zmq_socket_monitor(ctl->router, ep,
			       ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
				   ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) == 0 &&
	    (ctl->monitor = zmq_socket(zctx, ZMQ_PAIR)) != NULL) {
		zmq_setsockopt(ctl->monitor, ZMQ_LINGER, &zero, sizeof(zero));
		if (zmq_connect(ctl->monitor, ep) != 0) {
			zmq_close(ctl->monitor);
			ctl->monitor = NULL;
		}
	}
	if (!ctl->monitor)
		rdo_warn("control: no socket monitor (%s): failed handshakes will not be logged",
			 zmq_strerror(errno));
	return 0;
}

void control_sock_close(struct rdo_control *ctl)
{
	if (ctl->monitor) {
		zmq_socket_monitor(ctl->router, NULL, 0);
		zmq_close(ctl->monitor);
	}
	zmq_close(ctl->router);
}

/* Through the security policy of the control's auth (core/zsock.h). */
int rdo_control_bind(struct rdo_control *ctl, const struct rdo_endpoints *in,
		     struct rdo_endpoints *bound)
{
	return rdo_zsock_bind_all(ctl->router, rdo_auth_policy(ctl->auth), "control", in, bound);
}

void *rdo_control_socket(struct rdo_control *ctl)
{
	return ctl->router;
}

void *rdo_control_monitor(struct rdo_control *ctl)
{
	return ctl->monitor;
}

/*
 * Receive one message, answer it. Envelope frames go back in front of the
 * reply. False when no message was waiting.
 */
static bool serve_one(struct rdo_control *ctl)
{
	zmq_msg_t frames[MAX_FRAMES];
	bool oversized;
	size_t n = rdo_zsock_recv_frames(ctl->router, frames, MAX_FRAMES, &oversized);
	if (n == 0)
		return false;
	if (n < 2 || oversized) {
		/* No routing envelope, or more frames than any client sends: drop, count. */
		atomic_fetch_add_explicit(&ctl->refused, 1, memory_order_relaxed); /* a counter */
		for (size_t i = 0; i < n; i++)
			zmq_msg_close(&frames[i]);
		return true;
	}
	zmq_msg_t *payload = &frames[n - 1];
	struct rdo_peer peer = control_local_operator;
	if (ctl->auth)
		rdo_auth_peer(ctl->auth, payload, &peer);
	const void *reply;
	size_t len =
	    rdo_control_handle_as(ctl, &peer, zmq_msg_data(payload), zmq_msg_size(payload), &reply);
	for (size_t i = 0; i + 1 < n; i++)
		zmq_msg_send(&frames[i], ctl->router, ZMQ_SNDMORE);
	zmq_send(ctl->router, reply, len, 0);
	zmq_msg_close(payload);
	return true;
}

/* A monitor event: [u16 event, u32 value][endpoint]. False when none was waiting. */
static bool audit_one(struct rdo_control *ctl)
{
	uint8_t ev[6];
	char ep[RDO_ENDPOINT_MAX] = "";
	if (!ctl->monitor || zmq_recv(ctl->monitor, ev, sizeof(ev), ZMQ_DONTWAIT) < 0)
		return false;
	int more = 0;
	size_t ml = sizeof(more);
	zmq_getsockopt(ctl->monitor, ZMQ_RCVMORE, &more, &ml);
	int n = more ? zmq_recv(ctl->monitor, ep, sizeof(ep) - 1, 0) : 0;
	ep[n > 0 && (size_t)n < sizeof(ep) ? n : 0] = '\0';
	uint16_t event;
	memcpy(&event, ev, sizeof(event));
	rdo_warn(
	    "audit: refused a connection to control at %s: the handshake failed (%s)", ep,
	    event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
		? "a protocol error: a client without CURVE on a CURVE endpoint, or the reverse"
		: "the client hung up: a client without CURVE, or with a wrong server key");
	return true;
}

void rdo_control_serve(struct rdo_control *ctl)
{
	while (serve_one(ctl))
		;
	while (audit_one(ctl))
		;
}
