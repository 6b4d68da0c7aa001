/*
 * Binding ZeroMQ sockets the way every readoutd surface (control, live,
 * lossless, status) does: through a security policy (local endpoints plain,
 * any other CURVE or refused), refusing an ipc path another live server
 * answers on (libzmq would silently unlink it), giving an ipc socket file
 * the policy's mode, explaining EADDRINUSE, and reporting the endpoint as
 * bound (a tcp wildcard port resolved).
 *
 * Thread-safety: no state of its own; a socket is bound by the thread that
 * owns it.
 */
#ifndef RDO_ZSOCK_H
#define RDO_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "common/util.h"

#define RDO_ZSOCK_KEY_BYTES 32

/*
 * How every surface binds: what the security config decides (net/auth.h
 * fills it from security.*). Plain value; `secret` is the server's CURVE
 * secret key: never log it. A NULL policy wherever one is taken means
 * rdo_zsock_policy_init's: only local endpoints bind.
 */
struct rdo_zsock_policy {
	bool curve;			     /* `secret` is set: CURVE endpoints may bind */
	bool curve_loopback;		     /* loopback tcp needs CURVE too */
	uint8_t secret[RDO_ZSOCK_KEY_BYTES]; /* the server's secret key when `curve` */
	unsigned ipc_mode;		     /* what an ipc socket file's mode becomes */
};

/* No CURVE (local endpoints only), ipc socket files mode 0660. */
void rdo_zsock_policy_init(struct rdo_zsock_policy *p);

/* Does binding `endpoint` under policy `p` need CURVE? ipc and loopback tcp do not. */
bool rdo_zsock_needs_curve(const struct rdo_zsock_policy *p, const char *endpoint);

/*
 * Bind `sock` to `endpoint` as policy `p` says: plain for a local endpoint,
 * CURVE server otherwise, with the surface's ZAP domain. 0 with the bound
 * endpoint in `bound`, or -errno, logged with `what` naming the endpoint and
 * the fix (-EPERM: the endpoint needs CURVE and `p` has no key). libzmq
 * copies the options into each endpoint at bind, so one socket may have both
 * kinds, but it cannot clear a ZAP domain once set: a socket's local
 * endpoints must be bound before its CURVE ones (-EINVAL otherwise).
 */
int rdo_zsock_bind(void *sock, const struct rdo_zsock_policy *p, const char *what,
		   const char *endpoint, char *bound, size_t cap);

/*
 * Bind every endpoint of `in`, local ones first, collecting them as bound in
 * `out` in the order of `in`: 0, or the first -errno with `out` empty.
 * `what` names the surface in messages; its first word is the surface's ZAP
 * domain, which the audit lines name ("live stream" -> "live").
 */
int rdo_zsock_bind_all(void *sock, const struct rdo_zsock_policy *p, const char *what,
		       const struct rdo_endpoints *in, struct rdo_endpoints *out);

/*
 * Receive one multipart message without blocking, its first `max` frames
 * into `frames` (initialised here; the caller closes them) and the rest
 * dropped, `*oversized` set when there were more. The number kept: 0 when
 * nothing was waiting.
 */
size_t rdo_zsock_recv_frames(void *sock, zmq_msg_t *frames, size_t max, bool *oversized);

/* The endpoints of `e` separated by spaces, into `buf`. */
const char *rdo_endpoints_join(const struct rdo_endpoints *e, char *buf, size_t cap);

#endif
