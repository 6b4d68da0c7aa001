/*
 * The client library readoutctl and the consumers share: a connection to a
 * readoutd control endpoint and a synchronous request/reply call on it.
 * A client is used by one thread at a time.
 */
#ifndef RDO_CLIENT_H
#define RDO_CLIENT_H

#include <stddef.h>

#include "readout.pb-c.h"

struct rdo_client;

/*
 * Connect to `endpoint` (tcp://HOST:PORT or ipc://PATH); `timeout_ms` bounds
 * each call. NULL with the reason in `err`. Connecting does not wait for the
 * server: an absent server shows as a call timing out.
 */
struct rdo_client *rdo_client_create(const char *endpoint, int timeout_ms, char *err,
				     size_t errlen);
void rdo_client_destroy(struct rdo_client **client);

/*
 * Send `req` (the call fills in version and id) and wait for its reply.
 * 0 with `*reply` set (caller frees it with rdo__reply__free_unpacked(reply,
 * NULL)); -ETIMEDOUT when no reply came in time; another -errno on a socket or
 * decoding failure. The reply may carry an error code: check (*reply)->error.
 */
int rdo_client_call(struct rdo_client *client, Rdo__Request *req, Rdo__Reply **reply);

/* The endpoint the client talks to. */
const char *rdo_client_endpoint(const struct rdo_client *client);

/* A short name for an error code: "unknown register". */
const char *rdo_client_error_name(Rdo__ErrorCode code);

#endif
