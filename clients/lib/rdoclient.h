/*
 * The client library readoutctl and the consumers share: a connection to a
 * readoutd control endpoint and a synchronous request/reply call on it.
 * A client is used by one thread at a time.
 */
#ifndef RDO_CLIENT_H
#define RDO_CLIENT_H

#include <stddef.h>

#include "proto/readout.pb-c.h"

struct rdo_client;
struct rdo_client_keys; /* keys.h */

/*
 * Connect to `endpoint` (tcp://HOST:PORT or ipc://PATH); `timeout_ms` bounds
 * each call. With `keys` enabled (keys.h: rdo_client_keys_init) the
 * connection speaks CURVE; NULL or disabled: plain. The keys are set on the
 * socket here and not kept. NULL with the reason in `err`; caller owns the
 * result. Connecting does not wait for the server: an absent server, and a
 * CURVE handshake the server refuses, show as a call timing out
 * (rdo_client_error() then says which it saw).
 */
struct rdo_client *rdo_client_open(const char *endpoint, int timeout_ms,
				   const struct rdo_client_keys *keys, char *err, size_t errlen);

/* rdo_client_open() without keys: plain. */
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

/*
 * Why the last rdo_client_call() failed, for a person: "no reply from
 * ENDPOINT within N ms: is readoutd running there, and if it needs CURVE, is
 * your key authorised (--server-key, --key)?", plus what the handshake showed
 * when it failed. "" after a call that succeeded. Valid until the next call.
 */
const char *rdo_client_error(const struct rdo_client *client);

/* The endpoint the client talks to. */
const char *rdo_client_endpoint(const struct rdo_client *client);

/* A short name for an error code: "unknown register". */
const char *rdo_client_error_name(Rdo__ErrorCode code);

#endif
