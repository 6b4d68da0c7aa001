/*
 * Events: things an operator should hear about as they happen (state
 * changes, errors, faults). Any thread raises one; it is logged at once and
 * queued for the status stream, which publishes it. Raising never blocks: if
 * the queue is full the event is still logged and counted as unpublished.
 */
#ifndef RDO_EVENTS_H
#define RDO_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

enum rdo_severity { RDO_SEV_INFO, RDO_SEV_WARNING, RDO_SEV_ERROR };

struct rdo_event {
	uint64_t time_ns; /* CLOCK_REALTIME */
	enum rdo_severity severity;
	char kind[16]; /* state | error | fault | sink */
	int state;     /* enum rdo_dma_state when kind is "state" */
	char message[240];
};

struct rdo_events;

struct rdo_events *rdo_events_create(void);
void rdo_events_destroy(struct rdo_events **ev);

/* Log and queue an event. Any thread; `ev` may be NULL (log only). */
void rdo_event(struct rdo_events *ev, enum rdo_severity sev, const char *kind, int state,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* The oldest queued event, for the one thread that publishes them. */
bool rdo_events_next(struct rdo_events *ev, struct rdo_event *out);

/* Events logged but not published because the queue was full. */
uint64_t rdo_events_lost(const struct rdo_events *ev);

#endif
