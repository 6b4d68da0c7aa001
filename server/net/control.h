/*
 * The control surface: a ZeroMQ ROUTER socket that takes a protobuf Request
 * per message and answers with a Reply (proto/readout.proto), and the
 * protobuf glue behind it. One control serves every card of the server; a
 * request names its card (Request.card), or may leave it empty when there is
 * one. Serving is done by one thread, one request at a time, so the register
 * maps and the cards see no concurrent control access.
 *
 * Every request is checked against the role of the client that sent it
 * (auth.h): monitor may read (info, reg_read, reg_list, status, list_cards),
 * operator may also write and control acquisition. Every accepted write and
 * every refused request is an audit line in the log, naming the client.
 *
 * A request that cannot be served is answered with an error code and a
 * message saying what was wrong, and changes nothing on the card: every
 * name, value and range of a request is checked before the first write.
 */
#ifndef RDO_CONTROL_H
#define RDO_CONTROL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "card/card.h"
#include "card/regmap.h"
#include "common/util.h"
#include "net/auth.h"

/* The default binds: RDO_DEFAULT_CONTROL_TCP (common/util.h) and this. */
#define RDO_DEFAULT_CONTROL_IPC "ipc://{runtime}/readoutd.ctl"

struct rdo_control;
struct rdo_dma;
struct rdo_status;

/* One card the control serves. Plain value; what it points at is borrowed. */
struct rdo_control_card {
	struct rdo_card *card;
	struct rdo_regmap *map;
	const char *backend;
	bool forced;		   /* started despite an identity or firmware mismatch */
	const uint8_t *map_sha256; /* 32 bytes: SHA-256 of the map file; NULL: unknown */
	struct rdo_dma *dma;	   /* start, stop, reset; NULL: no acquisition */
	int numa_node;		   /* -1: unknown or one node */
};

/*
 * Serve the `n` cards of `cards` (copied) over a ROUTER of `zctx`, their
 * status (card i of the control is card i of `status`; NULL: no acquisition)
 * to clients whose roles `auth` tells (NULL: every client is a local
 * operator). Everything pointed at is borrowed and must outlive the control.
 * Logs why and returns NULL on failure.
 */
struct rdo_control *rdo_control_create(void *zctx, const struct rdo_control_card *cards, unsigned n,
				       struct rdo_status *status, struct rdo_auth *auth);
void rdo_control_destroy(struct rdo_control **ctl);

/*
 * Bind the endpoints of `in` (tcp:// or ipc://), as rdo_zsock_bind_all():
 * wildcard ports resolved into `bound`, an ipc path another live server
 * answers on refused rather than stolen. 0 or -errno, logged.
 */
int rdo_control_bind(struct rdo_control *ctl, const struct rdo_endpoints *in,
		     struct rdo_endpoints *bound);

/*
 * The ROUTER and its monitor (NULL when libzmq gave none), for the serving
 * thread's poll; and: answer every request waiting and log every failed
 * handshake (an audit line), without blocking.
 */
void *rdo_control_socket(struct rdo_control *ctl);
void *rdo_control_monitor(struct rdo_control *ctl);
void rdo_control_serve(struct rdo_control *ctl);

/*
 * A reloaded register map for card `card` (SIGHUP), in the serving thread:
 * requests from now on use `map` (borrowed, as at create). Returns the map it
 * replaces, for the caller to destroy.
 */
struct rdo_regmap *rdo_control_swap_map(struct rdo_control *ctl, unsigned card,
					struct rdo_regmap *map, const uint8_t *sha256);

/*
 * Handle one request frame without sockets (the loop and the tests use it),
 * from `peer`, or from a local operator. The reply is valid until the next
 * call; `*reply` points into the control.
 */
size_t rdo_control_handle_as(struct rdo_control *ctl, const struct rdo_peer *peer, const void *req,
			     size_t len, const void **reply);
size_t rdo_control_handle(struct rdo_control *ctl, const void *req, size_t len, const void **reply);

/* Requests served and refused since creation. Any thread. */
void rdo_control_counters(const struct rdo_control *ctl, uint64_t *served, uint64_t *refused);

#endif
