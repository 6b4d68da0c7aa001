#include "core/events.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "core/ring.h"

#define EVENT_SLOTS 64

struct rdo_events {
	struct rdo_ring free, queued; /* indices into slot */
	struct rdo_event slot[EVENT_SLOTS];
	_Atomic uint64_t lost;
};

struct rdo_events *rdo_events_create(void)
{
	struct rdo_events *ev = calloc(1, sizeof(*ev));
	if (!ev)
		goto fail;
	if (rdo_ring_init(&ev->free, EVENT_SLOTS))
		goto fail_ev;
	if (rdo_ring_init(&ev->queued, EVENT_SLOTS))
		goto fail_free;
	for (uint32_t i = 0; i < EVENT_SLOTS; i++)
		rdo_ring_push(&ev->free, i);
	return ev;
fail_free:
	rdo_ring_fini(&ev->free);
fail_ev:
	free(ev);
fail:
	rdo_err("events: out of memory");
	return NULL;
}

void rdo_events_destroy(struct rdo_events **ev)
{
	if (!*ev)
		return;
	rdo_ring_fini(&(*ev)->queued);
	rdo_ring_fini(&(*ev)->free);
	free(*ev);
	*ev = NULL;
}

void rdo_event(struct rdo_events *ev, enum rdo_severity sev, const char *kind, int state,
	       const char *fmt, ...)
{
	struct rdo_event e = {.severity = sev, .state = state};
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	e.time_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	rdo_strlcpy(e.kind, kind, sizeof(e.kind));
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.message, sizeof(e.message), fmt, ap);
	va_end(ap);
	static const int level[] = {LOG_NOTICE, LOG_WARNING, LOG_ERR};
	rdo_log(level[sev], "%s", e.message);
	if (!ev)
		return;
	uint32_t i;
	if (!rdo_ring_pop(&ev->free, &i)) {
		atomic_fetch_add_explicit(&ev->lost, 1, memory_order_relaxed); /* a counter */
		return;
	}
	ev->slot[i] = e;
	rdo_ring_push(&ev->queued, i); /* the ring's release publishes the slot */
}

bool rdo_events_next(struct rdo_events *ev, struct rdo_event *out)
{
	uint32_t i;
	if (!rdo_ring_pop(&ev->queued, &i))
		return false;
	*out = ev->slot[i];
	rdo_ring_push(&ev->free, i);
	return true;
}

uint64_t rdo_events_lost(const struct rdo_events *ev)
{
	return atomic_load_explicit(&ev->lost, memory_order_relaxed); /* a counter */
}
