#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"
#include "core/events.h"

#define SLOTS 64 /* EVENT_SLOTS in events.c: what the queue holds */

static struct rdo_events *ev;

static void setup(void)
{
	rdo_log_set_level(LOG_WARNING);
	ev = rdo_events_create();
	cr_assert_not_null(ev);
}

static void teardown(void)
{
	rdo_events_destroy(&ev);
}

TestSuite(events, .init = setup, .fini = teardown);

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

Test(events, empty_after_create)
{
	struct rdo_event e;
	cr_assert(!rdo_events_next(ev, &e));
	cr_assert_eq(rdo_events_lost(ev), 0);
}

Test(events, queued_in_order_with_fields)
{
	uint64_t before = wall_ns();
	rdo_event(ev, RDO_SEV_INFO, "state", 1, "card %s: acquisition %s", "sim0", "running");
	rdo_event(ev, RDO_SEV_WARNING, "fault", 0, "link %u is down", 3u);
	rdo_event(ev, RDO_SEV_ERROR, "error", 0, "plain");
	uint64_t after = wall_ns();

	struct rdo_event e;
	cr_assert(rdo_events_next(ev, &e));
	cr_assert_eq(e.severity, RDO_SEV_INFO);
	cr_assert_str_eq(e.kind, "state");
	cr_assert_eq(e.state, 1);
	cr_assert_str_eq(e.message, "card sim0: acquisition running");
	cr_assert(e.time_ns >= before && e.time_ns <= after, "time %llu outside [%llu, %llu]",
		  (unsigned long long)e.time_ns, (unsigned long long)before,
		  (unsigned long long)after);
	uint64_t t0 = e.time_ns;

	cr_assert(rdo_events_next(ev, &e));
	cr_assert_eq(e.severity, RDO_SEV_WARNING);
	cr_assert_str_eq(e.kind, "fault");
	cr_assert_str_eq(e.message, "link 3 is down");
	cr_assert_geq(e.time_ns, t0);

	cr_assert(rdo_events_next(ev, &e));
	cr_assert_eq(e.severity, RDO_SEV_ERROR);
	cr_assert_str_eq(e.kind, "error");
	cr_assert_str_eq(e.message, "plain");

	cr_assert(!rdo_events_next(ev, &e));
	cr_assert_eq(rdo_events_lost(ev), 0);
}

Test(events, long_kind_and_message_are_truncated)
{
	char msg[1000];
	memset(msg, 'm', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	rdo_event(ev, RDO_SEV_INFO, "a-kind-far-longer-than-sixteen", 0, "%s", msg);
	struct rdo_event e;
	cr_assert(rdo_events_next(ev, &e));
	cr_assert_eq(strlen(e.kind), sizeof(e.kind) - 1);
	cr_assert_eq(strncmp(e.kind, "a-kind-far-longer", sizeof(e.kind) - 1), 0);
	cr_assert_eq(strlen(e.message), sizeof(e.message) - 1);
}

Test(events, overflow_counts_lost_and_keeps_the_oldest)
{
	for (int i = 0; i < SLOTS + 10; i++)
		rdo_event(ev, RDO_SEV_INFO, "state", 0, "event %d", i);
	cr_assert_eq(rdo_events_lost(ev), 10);
	struct rdo_event e;
	for (int i = 0; i < SLOTS; i++) {
		cr_assert(rdo_events_next(ev, &e), "only %d of %d queued", i, SLOTS);
		char want[32];
		snprintf(want, sizeof(want), "event %d", i);
		cr_assert_str_eq(e.message, want);
	}
	cr_assert(!rdo_events_next(ev, &e));

	/* Reading frees the slots: events queue again, lost stays counted. */
	rdo_event(ev, RDO_SEV_ERROR, "error", 0, "after");
	cr_assert(rdo_events_next(ev, &e));
	cr_assert_str_eq(e.message, "after");
	cr_assert_eq(rdo_events_lost(ev), 10);
}

Test(events, full_queue_never_blocks)
{
	/* Many times the slot count with no reader: must return at once every time. */
	uint64_t t0 = wall_ns();
	for (int i = 0; i < 100 * SLOTS; i++)
		rdo_event(ev, RDO_SEV_INFO, "state", 0, "flood %d", i);
	cr_assert_lt(wall_ns() - t0, 5000000000ull);
	cr_assert_eq(rdo_events_lost(ev), 100 * SLOTS - SLOTS);
}

Test(events, null_only_logs)
{
	rdo_event(NULL, RDO_SEV_INFO, "state", 0, "nobody queues this");
	rdo_event(NULL, RDO_SEV_ERROR, "error", 0, "nor this %d", 1);
	struct rdo_event e;
	cr_assert(!rdo_events_next(ev, &e), "an event for NULL reached a queue");
	cr_assert_eq(rdo_events_lost(ev), 0);
}

#define WRITERS	   4
#define PER_WRITER 5000

static _Atomic int writers_done;

static void *write_events(void *arg)
{
	int id = (int)(intptr_t)arg;
	for (int i = 0; i < PER_WRITER; i++)
		rdo_event(ev, RDO_SEV_INFO, "state", id, "%d %d", id, i);
	atomic_fetch_add(&writers_done, 1);
	return NULL;
}

Test(events, concurrent_writers_one_reader)
{
	atomic_store(&writers_done, 0);
	pthread_t t[WRITERS];
	for (int i = 0; i < WRITERS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, write_events, (void *)(intptr_t)i), 0);
	int next[WRITERS] = {0};
	uint64_t read = 0;
	struct rdo_event e;
	for (;;) {
		bool finished = atomic_load(&writers_done) == WRITERS; /* before the last look */
		if (!rdo_events_next(ev, &e)) {
			if (finished)
				break;
			continue;
		}
		int id = -1, seq = -1;
		cr_assert_eq(sscanf(e.message, "%d %d", &id, &seq), 2, "garbled \"%s\"", e.message);
		cr_assert(id >= 0 && id < WRITERS, "writer %d", id);
		cr_assert_eq(e.state, id, "state %d in an event of writer %d", e.state, id);
		cr_assert_geq(seq, next[id], "writer %d: event %d after %d", id, seq, next[id] - 1);
		next[id] = seq + 1;
		read++;
	}
	for (int i = 0; i < WRITERS; i++)
		pthread_join(t[i], NULL);
	cr_assert_eq(read + rdo_events_lost(ev), (uint64_t)WRITERS * PER_WRITER,
		     "%llu read + %llu lost", (unsigned long long)read,
		     (unsigned long long)rdo_events_lost(ev));
}

Test(events, destroy_null)
{
	struct rdo_events *none = NULL;
	rdo_events_destroy(&none);
	cr_assert_null(none);
	rdo_events_destroy(&ev);
	cr_assert_null(ev);
}
