/*
 * The status stream: for every card, a Status message on topic
 * "status/CARD" every interval and an Event on topic "event/CARD" whenever
 * something happens, on one ZeroMQ PUB socket; and a one-line summary per
 * card in the log every log_interval. Subscribing to "status" gets every
 * card's; a message's card field says whose it is. The control socket's
 * status command and the metrics endpoint serve the same Status.
 *
 * One status thread publishes and computes the rates; rdo_status_fill() may
 * be called from any other thread too (it reads counters, rates and the
 * card's temperature register).
 */
#ifndef RDO_STATUS_H
#define RDO_STATUS_H

#include "common/util.h"
#include "core/sink.h"
#include "dma/dma.h"
#include "proto/readout.pb-c.h"

/* The default binds: RDO_DEFAULT_STATUS_TCP (common/util.h) and this. */
#define RDO_DEFAULT_STATUS_IPC "ipc://{runtime}/readoutd.status"

/* What config sets. Plain value. */
struct rdo_status_opts {
	struct rdo_endpoints bind; /* default loopback tcp and ipc */
	unsigned interval_ms;	   /* default 1000 */
	unsigned log_interval_s;   /* one-line status in the log; 0: never; default 5 */
};

void rdo_status_opts_init(struct rdo_status_opts *o);

struct rdo_card;
struct rdo_events;
struct rdo_regmap;
struct rdo_sink;

/* What the status reports on, per card. Borrowed: all must outlive the status. */
struct rdo_status_sources {
	struct rdo_card *card;
	const struct rdo_regmap *map; /* read at create only: the temperature register */
	struct rdo_dma *dma;
	struct rdo_sink *const *sinks;
	unsigned nsinks;
	struct rdo_events *events;
};

/* A Status protobuf with the storage of its repeated fields: no allocation. */
struct rdo_status_msg {
	Rdo__Status st;
	Rdo__LinkStatus link[RDO_DMA_MAX_LINKS];
	Rdo__LinkStatus *linkp[RDO_DMA_MAX_LINKS];
	Rdo__SinkStatus sink[RDO_DMA_MAX_SINKS];
	Rdo__SinkStatus *sinkp[RDO_DMA_MAX_SINKS];
	char *endpoints[RDO_DMA_MAX_SINKS][RDO_MAX_ENDPOINTS];
	struct rdo_sink_stats sink_stats[RDO_DMA_MAX_SINKS]; /* the strings the sinks point at */
	char card[64];
	char last_error[256];
	struct rdo_dma_stats dma;
};

struct rdo_status;
struct rdo_zsock_policy;

/*
 * Bind the status stream of the `n` cards of `src` (copied) through
 * `policy` (core/zsock.h; NULL: local endpoints only) and start its thread.
 * Logs why and returns NULL on failure.
 */
struct rdo_status *rdo_status_create(void *zctx, const struct rdo_zsock_policy *policy,
				     const struct rdo_status_sources *src, unsigned n,
				     const struct rdo_status_opts *o);
void rdo_status_destroy(struct rdo_status **st);

const struct rdo_endpoints *rdo_status_endpoints(const struct rdo_status *st);

/* How many cards it reports on. */
unsigned rdo_status_cards(const struct rdo_status *st);

/* Fill `m` with card `card`'s current status (card < rdo_status_cards); valid while `m` lives. */
void rdo_status_fill(struct rdo_status *st, unsigned card, struct rdo_status_msg *m);

#endif
