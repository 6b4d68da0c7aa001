/*
 * What the control connection (rdoclient.h) and the data streams
 * (rdodata.h) share: connecting a client's ZeroMQ socket to a readoutd
 * endpoint, with the client's CURVE keys when it has them. No state of its
 * own; the socket is the caller's, and belongs to one thread at a time.
 */
#ifndef RDO_SOCKET_H
#define RDO_SOCKET_H

#include <stddef.h>

struct rdo_client_keys; /* keys.h */

/*
 * Set `keys` on `sock` (keys.h: rdo_client_keys_apply; NULL or disabled:
 * plain) and connect it to `endpoint`, after every other option the socket
 * needs. The keys are not kept. 0, or -errno with the reason in `err`,
 * naming the endpoint and the form it takes.
 */
int rdo_socket_connect(void *sock, const char *endpoint, const struct rdo_client_keys *keys,
		       char *err, size_t errlen);

#endif
