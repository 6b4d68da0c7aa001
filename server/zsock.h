/*
 * Binding ZeroMQ sockets the way every readoutd surface (control, live,
 * lossless, status) does: refuse an ipc path another live server answers on
 * (libzmq would silently unlink it), explain EADDRINUSE, and report the
 * endpoint as bound (a tcp wildcard port resolved).
 */
#ifndef RDO_ZSOCK_H
#define RDO_ZSOCK_H

#include <stddef.h>

#include "util.h"

/* Bind `sock` to `endpoint`: 0 with the bound endpoint in `bound`, or -errno, logged with `what`.
 */
int rdo_zsock_bind(void *sock, const char *what, const char *endpoint, char *bound, size_t cap);

/* Bind every endpoint of `in`, collecting them as bound in `out`: 0 or the first -errno. */
int rdo_zsock_bind_all(void *sock, const char *what, const struct rdo_endpoints *in,
		       struct rdo_endpoints *out);

/* The endpoints of `e` separated by spaces, into `buf`. */
const char *rdo_endpoints_join(const struct rdo_endpoints *e, char *buf, size_t cap);

#endif
