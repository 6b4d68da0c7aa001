/*
 * The control surface: a ZeroMQ ROUTER socket that takes a protobuf Request
 * per message and answers with a Reply (proto/readout.proto), and the
 * protobuf glue behind it. One thread serves any number of clients, one
 * request at a time, so the register map and the card see no concurrent
 * control access.
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

#include "card.h"
#include "regmap.h"
#include "util.h"

struct rdo_control;
struct rdo_dma;
struct rdo_status;

/* What card info reports beyond the card and map themselves. Plain value. */
struct rdo_control_info {
	const char *backend;
	bool forced;
	const uint8_t *map_sha256; /* 32 bytes: SHA-256 of the map file; NULL: unknown */
	struct rdo_dma *dma;	   /* start, stop, reset; NULL: no acquisition */
	struct rdo_status *status; /* status; NULL with dma */
};

/*
 * Serve `card` with `map` over sockets of `zctx`. Borrows all three; they must
 * outlive the control. Logs why and returns NULL on failure.
 */
struct rdo_control *rdo_control_create(void *zctx, struct rdo_card *card, struct rdo_regmap *map,
				       const struct rdo_control_info *info);
void rdo_control_destroy(struct rdo_control **ctl);

/*
 * Bind the endpoints of `in` (tcp:// or ipc://), as rdo_zsock_bind_all():
 * wildcard ports resolved into `bound`, an ipc path another live server
 * answers on refused rather than stolen. 0 or -errno, logged.
 */
int rdo_control_bind(struct rdo_control *ctl, const struct rdo_endpoints *in,
		     struct rdo_endpoints *bound);

/* Serve until `stop_fd` becomes readable (a signalfd, an eventfd). 0 or -errno. */
int rdo_control_run(struct rdo_control *ctl, int stop_fd);

/*
 * Handle one request frame without sockets (the loop and the tests use it).
 * The reply is valid until the next call; `*reply` points into the control.
 */
size_t rdo_control_handle(struct rdo_control *ctl, const void *req, size_t len, const void **reply);

/* Requests served and refused since creation. */
void rdo_control_counters(const struct rdo_control *ctl, uint64_t *served, uint64_t *refused);

#endif
