/*
 * Binding ZeroMQ sockets the way every readoutd surface (control, live,
 * lossless, status) does: through the security policy (auth.h: local
 * endpoints plain, any other CURVE or refused), refusing an ipc path another
 * live server answers on (libzmq would silently unlink it), giving an ipc
 * socket file the configured mode, explaining EADDRINUSE, and reporting the
 * endpoint as bound (a tcp wildcard port resolved).
 *
 * Thread-safety: binds happen in the main thread before the surfaces' threads
 * start; rdo_zsock_set_auth before any of them.
 */
#ifndef RDO_ZSOCK_H
#define RDO_ZSOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

#include "common/util.h"

struct rdo_auth;

/*
 * The security policy every later bind follows; NULL (the initial value): no
 * CURVE available, so only local endpoints bind. Process-wide because a
 * process has one security policy, and so that the surfaces' modules bind
 * through it without each carrying it; set it once, before any surface
 * binds. `a` must outlive every socket bound through it.
 */
void rdo_zsock_set_auth(struct rdo_auth *a);

/*
 * Bind `sock` to `endpoint` as the policy says: 0 with the bound endpoint in
 * `bound`, or -errno, logged with `what` (-EPERM: the endpoint needs CURVE
 * and there is no server key). A socket's local endpoints must be bound
 * before its CURVE ones (rdo_auth_prepare_bind says why).
 */
int rdo_zsock_bind(void *sock, const char *what, const char *endpoint, char *bound, size_t cap);

/*
 * Bind every endpoint of `in`, local ones first, collecting them as bound in
 * `out` in the order of `in`: 0, or the first -errno with `out` empty.
 * `what` names the surface in messages; its first word is the surface's ZAP
 * domain, which the audit lines name ("live stream" -> "live").
 */
int rdo_zsock_bind_all(void *sock, const char *what, const struct rdo_endpoints *in,
		       struct rdo_endpoints *out);

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
