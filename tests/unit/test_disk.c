#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/rdofile.h"
#include "common/writer.h"
#include "core/pool.h"
#include "core/sink.h"
#include "sinks/disk.h"
#include "unit/sink_fixture.h"

#define SP_SIZE	 (16u * 1024u)
#define SP_COUNT 16u

static struct fixture_pool fp;
static char dir[64];
static struct rdo_sink *sink; /* destroyed by the test, or by the teardown after a failure */

static void setup(void)
{
	rdo_log_set_level(LOG_WARNING);
	fixture_pool_create(&fp, SP_SIZE, SP_COUNT);
	snprintf(dir, sizeof(dir), "/tmp/test_disk.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
	rdo_sink_destroy(&sink);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	fixture_pool_destroy(&fp);
}

TestSuite(disk, .init = setup, .fini = teardown);

static struct rdo_sink *make_disk(void)
{
	struct rdo_writer_opts o;
	rdo_writer_opts_init(&o);
	o.enabled = true;
	rdo_strlcpy(o.directory, dir, sizeof(o.directory));
	o.block_size = 64u * 1024u;
	o.prealloc = 1u << 20;
	struct rdo_file_header ident;
	memset(&ident, 0, sizeof(ident));
	ident.superpage_size = SP_SIZE;
	ident.links = 4;
	rdo_strlcpy(ident.card, "sim0", sizeof(ident.card));
	rdo_strlcpy(ident.host, "testhost", sizeof(ident.host));
	rdo_strlcpy(ident.writer, "test_disk", sizeof(ident.writer));
	sink = rdo_disk_create(fp.pool, &o, &ident);
	cr_assert_not_null(sink);
	return sink;
}

/* The size of superpage `seq`: some not a multiple of the file's alignment. */
static uint32_t size_of(uint64_t seq)
{
	return SP_SIZE - (uint32_t)(seq % 4) * 3000u;
}

/* Offer superpages `first` to `last - 1` of `link` in run `run`: each must be taken. */
static void offer_run(struct rdo_sink *s, uint32_t link, uint64_t first, uint64_t last,
		      uint64_t run)
{
	for (uint64_t seq = first; seq < last; seq++)
		cr_assert(fixture_offer(s, fixture_fill(fp.pool, link, seq, run, size_of(seq))),
			  "superpage %llu refused", (unsigned long long)seq);
}

/* The data files in the directory, sorted by name: how many. */
static unsigned files(char names[][PATH_MAX], unsigned cap)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	unsigned n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".rdo") && n < cap)
			snprintf(names[n++], PATH_MAX, "%s/%s", dir, e->d_name);
	closedir(d);
	qsort(names, n, PATH_MAX, (int (*)(const void *, const void *))strcmp);
	return n;
}

/*
 * `path` is closed and checks whole, of run `run`, and holds superpages
 * `first` to `last - 1` of `link` as the fixture filled them, in order.
 */
static void expect_file(const char *path, uint64_t run, uint32_t link, uint64_t first,
			uint64_t last)
{
	struct rdo_file_verify_report rep;
	cr_assert_eq(rdo_file_verify(path, &rep, NULL), 0, "%s: %llu problems", path,
		     (unsigned long long)rep.problems);
	cr_assert(rep.closed, "%s has no trailer", path);
	cr_assert_eq(rep.trailer.records, last - first);
	char err[RDO_FILE_ERR_MAX];
	struct rdo_file_reader *r = rdo_file_reader_open(path, err, sizeof(err));
	cr_assert_not_null(r, "%s: %s", path, err);
	const struct rdo_file_header *fh = rdo_file_reader_header(r);
	cr_assert_eq(fh->run, run);
	cr_assert_str_eq(fh->card, "sim0");
	cr_assert_eq(fh->superpage_size, SP_SIZE);
	struct rdo_file_record rec;
	for (uint64_t seq = first; seq < last; seq++) {
		cr_assert_eq(rdo_file_reader_next(r, &rec, err, sizeof(err)), 1, "%s: %s", path,
			     err);
		cr_assert_eq(rec.h.index, seq - first);
		cr_assert_eq(rec.h.sequence, seq);
		cr_assert_eq(rec.h.link, link);
		cr_assert_eq(rec.h.run, run);
		cr_assert_eq(rec.h.size, size_of(seq));
		cr_assert_eq(rec.h.flags, seq % 3 == 0 ? RDO_SP_PARTIAL : 0u);
		cr_assert_eq(rec.h.timestamp_ns, 1700000000000000000ull + seq * 1000u + link);
		cr_assert_eq(rec.h.card_pages_dropped, seq / 2);
		cr_assert(fixture_payload_ok(rec.payload, rec.h.size, link, seq),
			  "payload of sequence %llu", (unsigned long long)seq);
	}
	cr_assert_eq(rdo_file_reader_next(r, &rec, err, sizeof(err)), 0, "more records");
	rdo_file_reader_close(&r);
}

Test(disk, writes_every_superpage_and_closes_the_file_at_run_end)
{
	struct rdo_sink *s = make_disk();
	offer_run(s, 1, 0, 10, 5);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.superpages == 10, 5000);
	cr_assert_str_eq(st.name, "writer");
	cr_assert_eq(st.kind, RDO_SINK_WRITER);
	cr_assert_eq(st.writer.state, RDO_WRITER_WRITING);
	cr_assert_eq(st.consumers, 1, "writing counts as one consumer");
	cr_assert(strncmp(st.writer.file, dir, strlen(dir)) == 0, "file \"%s\"", st.writer.file);
	cr_assert_eq(st.writer.files, 0, "closed before the run ended");
	cr_assert_null(st.endpoints);
	uint64_t bytes = 0;
	for (uint64_t seq = 0; seq < 10; seq++)
		bytes += size_of(seq);
	cr_assert_eq(st.bytes, bytes);
	fixture_wait_pool_full(fp.pool, 2000);

	s->ops->run_end(s, 5);
	FIXTURE_WAIT_STATS(s, st, st.writer.files == 1, 5000);
	cr_assert_eq(st.writer.state, RDO_WRITER_IDLE);
	cr_assert_eq(st.consumers, 0);
	cr_assert_eq(st.dropped + st.writer.errors + st.queued, 0);
	cr_assert_str_eq(st.writer.last_error, "");
	char names[4][PATH_MAX];
	cr_assert_eq(files(names, 4), 1);
	cr_assert_str_eq(names[0], st.writer.file);
	expect_file(names[0], 5, 1, 0, 10);
	rdo_sink_destroy(&sink);
	cr_assert_eq(files(names, 4), 1, "destroy wrote another file");
}

Test(disk, a_new_run_starts_a_new_file)
{
	struct rdo_sink *s = make_disk();
	offer_run(s, 0, 0, 3, 1);
	offer_run(s, 0, 0, 4, 2);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.superpages == 7 && st.writer.files == 1, 5000);
	rdo_sink_destroy(&sink); /* closes the second file cleanly */
	char names[4][PATH_MAX];
	cr_assert_eq(files(names, 4), 2);
	expect_file(names[0], 1, 0, 0, 3);
	expect_file(names[1], 2, 0, 0, 4);
	fixture_wait_pool_full(fp.pool, 0);
}

/* Destroyed at once: what is queued is written first, and the file closed. */
Test(disk, destroy_writes_what_is_queued)
{
	struct rdo_sink *s = make_disk();
	offer_run(s, 2, 0, SP_COUNT, 3);
	rdo_sink_destroy(&sink);
	fixture_wait_pool_full(fp.pool, 0);
	char names[4][PATH_MAX];
	cr_assert_eq(files(names, 4), 1);
	expect_file(names[0], 3, 2, 0, SP_COUNT);
}

/*
 * A writer that cannot write holds the superpages, so the pool fills and the
 * card would drop at the source: none is dropped in the sink, and once the
 * disk takes them again every one is written.
 */
Test(disk, a_failing_disk_holds_superpages_and_drops_none)
{
	struct rdo_sink *s = make_disk();
	cr_assert_eq(rmdir(dir), 0);
	rdo_log_set_level(LOG_CRIT); /* the failure logs an error on purpose */
	offer_run(s, 0, 0, 6, 9);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.writer.state == RDO_WRITER_ERROR, 5000);
	cr_assert_geq(st.writer.errors, 1);
	cr_assert(strstr(st.writer.last_error, dir), "last_error \"%s\"", st.writer.last_error);
	cr_assert_eq(st.superpages + st.dropped, 0);
	FIXTURE_WAIT_STATS(s, st, st.queued == 5, 2000); /* and one held */
	cr_assert_eq(rdo_pool_free(fp.pool), SP_COUNT - 6, "the sink let go of superpages");

	cr_assert_eq(mkdir(dir, 0700), 0);
	/* the writer retries once a second */
	FIXTURE_WAIT_STATS(s, st, st.superpages == 6, 5000);
	cr_assert_eq(st.dropped, 0);
	cr_assert_eq(st.writer.state, RDO_WRITER_WRITING);
	s->ops->run_end(s, 9);
	FIXTURE_WAIT_STATS(s, st, st.writer.files == 1, 5000);
	char names[4][PATH_MAX];
	cr_assert_eq(files(names, 4), 1);
	expect_file(names[0], 9, 0, 0, 6);
	fixture_wait_pool_full(fp.pool, 2000);
}

/* Destroyed while the disk refuses: what it held goes back to the pool. */
Test(disk, destroy_returns_what_the_disk_refused)
{
	struct rdo_sink *s = make_disk();
	cr_assert_eq(rmdir(dir), 0);
	rdo_log_set_level(LOG_CRIT); /* the failure and the loss log on purpose */
	offer_run(s, 0, 0, 4, 1);
	struct rdo_sink_stats st;
	FIXTURE_WAIT_STATS(s, st, st.writer.state == RDO_WRITER_ERROR && st.queued == 3, 5000);
	rdo_sink_destroy(&sink);
	fixture_wait_pool_full(fp.pool, 0);
	cr_assert_eq(mkdir(dir, 0700), 0, "destroy made the directory");
}

Test(disk, create_refuses_a_missing_directory)
{
	cr_assert_eq(rmdir(dir), 0);
	struct rdo_writer_opts o;
	rdo_writer_opts_init(&o);
	rdo_strlcpy(o.directory, dir, sizeof(o.directory));
	struct rdo_file_header ident;
	memset(&ident, 0, sizeof(ident));
	ident.superpage_size = SP_SIZE;
	rdo_log_set_level(LOG_CRIT); /* the refusal logs an error on purpose */
	cr_assert_null(rdo_disk_create(fp.pool, &o, &ident));
	cr_assert_eq(mkdir(dir, 0700), 0);
}
