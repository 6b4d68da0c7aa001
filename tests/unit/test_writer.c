#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/rdofile.h"
#include "common/util.h"
#include "common/writer.h"

#define SP_SIZE	 (64u * 1024u)
#define SP_COUNT 64u

static char dir[64];
static unsigned char *mem; /* SP_COUNT superpages, aligned */
static unsigned done_ok, done_err;

static void done(void *cookie, int status, void *arg)
{
	(void)cookie;
	(void)arg;
	if (status == 0)
		done_ok++;
	else
		done_err++;
}

static void setup(void)
{
	rdo_log_set_level(LOG_CRIT); /* the refusals below log errors on purpose */
	snprintf(dir, sizeof(dir), "/tmp/test_writer.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(posix_memalign((void **)&mem, RDO_FILE_ALIGN, (size_t)SP_SIZE * SP_COUNT), 0);
	for (size_t i = 0; i < (size_t)SP_SIZE * SP_COUNT; i++)
		mem[i] = (unsigned char)(i * 7 + i / 4096);
	done_ok = done_err = 0;
}

static void teardown(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
	free(mem);
}

TestSuite(writer, .init = setup, .fini = teardown);

static struct rdo_file_header ident(void)
{
	struct rdo_file_header h;
	memset(&h, 0, sizeof(h));
	h.superpage_size = SP_SIZE;
	h.links = 4;
	h.identity = 0x5244;
	rdo_strlcpy(h.card, "sim0", sizeof(h.card));
	rdo_strlcpy(h.host, "testhost", sizeof(h.host));
	rdo_strlcpy(h.writer, "test_writer", sizeof(h.writer));
	return h;
}

static struct rdo_writer *make(struct rdo_writer_opts *o)
{
	struct rdo_file_header h = ident();
	char err[512];
	struct rdo_writer *w = rdo_writer_create(o, &h, done, NULL, err, sizeof(err));
	cr_assert_not_null(w, "rdo_writer_create: %s", err);
	return w;
}

static struct rdo_writer_opts opts(void)
{
	struct rdo_writer_opts o;
	rdo_writer_opts_init(&o);
	rdo_strlcpy(o.directory, dir, sizeof(o.directory));
	o.block_size = 256u * 1024u;
	o.prealloc = 1u << 20;
	return o;
}

/* Record `i`: superpage i % SP_COUNT, a size that varies, link i % 4. */
static struct rdo_writer_record record(unsigned i, uint64_t run)
{
	return (struct rdo_writer_record){
	    .data = mem + (size_t)(i % SP_COUNT) * SP_SIZE,
	    .h = {.size = SP_SIZE - (i % 5) * 4100u, /* some not a multiple of 4096 */
		  .link = i % 4,
		  .sequence = i / 4,
		  .timestamp_ns = 1000u + i,
		  .run = run},
	};
}

static void put(struct rdo_writer *w, const struct rdo_writer_record *r)
{
	int rc;
	while ((rc = rdo_writer_put(w, r)) == -EAGAIN)
		rdo_writer_reap(w, 100);
	cr_assert_eq(rc, 0, "rdo_writer_put: %s", strerror(-rc));
}

/* Read `len` bytes at `off` of `path`. */
static void read_at(const char *path, uint64_t off, void *buf, size_t len)
{
	int fd = open(path, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s: %s", path, strerror(errno));
	cr_assert_eq(pread(fd, buf, len, (off_t)off), (ssize_t)len, "read %zu at %llu of %s", len,
		     (unsigned long long)off, path);
	close(fd);
}

static off_t file_size(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "stat %s", path);
	return st.st_size;
}

/*
 * Check a closed file record by record against records first..first+n-1:
 * header, each record header and payload, the trailer's totals.
 */
static void check_file(const char *path, unsigned first, unsigned n, uint64_t run)
{
	char err[256];
	struct rdo_file_header fh;
	read_at(path, 0, &fh, sizeof(fh));
	cr_assert_eq(rdo_file_header_check(&fh, err, sizeof(err)), 0, "%s: %s", path, err);
	cr_assert_eq(fh.run, run);
	cr_assert_str_eq(fh.card, "sim0");
	cr_assert_eq(fh.identity, 0x5244);
	uint64_t off = RDO_FILE_ALIGN;
	unsigned char *buf = malloc(SP_SIZE);
	for (unsigned i = first; i < first + n; i++) {
		struct rdo_writer_record r = record(i, run);
		struct rdo_record_header h;
		read_at(path, off, &h, sizeof(h));
		cr_assert_eq(rdo_record_header_check(&h, err, sizeof(err)), 0, "record %u: %s", i,
			     err);
		cr_assert_eq(h.size, r.h.size, "record %u size", i);
		cr_assert_eq(h.link, r.h.link);
		cr_assert_eq(h.sequence, r.h.sequence);
		cr_assert_eq(h.index, i - first);
		read_at(path, off + RDO_FILE_ALIGN, buf, h.size);
		cr_assert_eq(memcmp(buf, r.data, h.size), 0, "record %u payload", i);
		cr_assert_eq(h.payload_crc, rdo_crc32c(0, buf, h.size));
		off += rdo_file_record_len(h.size);
	}
	free(buf);
	cr_assert_eq((uint64_t)file_size(path), off + rdo_file_footer_len(n),
		     "%s ends right after its footer", path);
	struct rdo_file_trailer t;
	read_at(path, (uint64_t)file_size(path) - RDO_FILE_ALIGN, &t, sizeof(t));
	cr_assert_eq(rdo_file_trailer_check(&t, err, sizeof(err)), 0, "%s: %s", path, err);
	cr_assert_eq(t.records, n);
	cr_assert_eq(t.index_offset, off);
	cr_assert_eq(t.flags & RDO_TRAILER_RECOVERED, 0u);
}

static void path_of(char *buf, size_t len, uint64_t run, unsigned seq)
{
	snprintf(buf, len, "%s/run%06llu_sim0_%04u.rdo", dir, (unsigned long long)run, seq);
}

Test(writer, records_land_in_place_with_their_footer)
{
	struct rdo_writer_opts o = opts();
	struct rdo_writer *w = make(&o);
	for (unsigned i = 0; i < 200; i++)
		put(w, &(struct rdo_writer_record){.data = NULL, .h = {.run = 7, .size = 0}});
	cr_assert_eq(rdo_writer_end_file(w), 0);
	cr_assert_eq(done_ok, 200u, "every empty record done");
	rdo_writer_destroy(&w);
	done_ok = 0;

	w = make(&o);
	for (unsigned i = 0; i < 300; i++) {
		struct rdo_writer_record r = record(i, 8);
		put(w, &r);
	}
	struct rdo_writer_stats st;
	rdo_writer_stats(w, &st);
	cr_assert_eq(st.state, RDO_WRITER_WRITING);
	cr_assert_eq(rdo_writer_end_file(w), 0);
	rdo_writer_stats(w, &st);
	cr_assert_eq(st.state, RDO_WRITER_IDLE);
	cr_assert_eq(st.records, 300u);
	cr_assert_eq(st.files, 1u);
	cr_assert_eq(st.in_flight, 0u);
	cr_assert_eq(done_ok, 300u);
	cr_assert_eq(done_err, 0u);
	char path[128];
	path_of(path, sizeof(path), 8, 0);
	cr_assert_str_eq(st.file, path);
	check_file(path, 0, 300, 8);
	rdo_writer_destroy(&w);
}

Test(writer, buffered_writes_make_the_same_file)
{
	struct rdo_writer_opts o = opts();
	o.direct = false;
	struct rdo_writer *w = make(&o);
	for (unsigned i = 0; i < 50; i++) {
		struct rdo_writer_record r = record(i, 1);
		put(w, &r);
	}
	rdo_writer_destroy(&w); /* closes the file */
	cr_assert_eq(done_ok, 50u);
	char path[128];
	path_of(path, sizeof(path), 1, 0);
	check_file(path, 0, 50, 1);
}

Test(writer, rotates_by_size_and_starts_a_new_run_at_seq_0)
{
	struct rdo_writer_opts o = opts();
	o.rotate_bytes = 1u << 20; /* about 15 records of 64 KiB each */
	struct rdo_writer *w = make(&o);
	for (unsigned i = 0; i < 100; i++) {
		struct rdo_writer_record r = record(i, 3);
		put(w, &r);
	}
	for (unsigned i = 0; i < 10; i++) {
		struct rdo_writer_record r = record(i, 4);
		put(w, &r);
	}
	rdo_writer_destroy(&w);
	cr_assert_eq(done_ok, 110u);
	unsigned first = 0, seq = 0;
	char path[128];
	for (;; seq++) {
		path_of(path, sizeof(path), 3, seq);
		if (access(path, F_OK) != 0)
			break;
		cr_assert_leq(file_size(path), (off_t)o.rotate_bytes, "%s within rotate_bytes",
			      path);
		struct rdo_file_trailer t;
		read_at(path, (uint64_t)file_size(path) - RDO_FILE_ALIGN, &t, sizeof(t));
		cr_assert_gt(t.records, 0u);
		check_file(path, first, (unsigned)t.records, 3);
		struct rdo_file_header fh;
		read_at(path, 0, &fh, sizeof(fh));
		cr_assert_eq(fh.file_seq, seq);
		first += (unsigned)t.records;
	}
	cr_assert_geq(seq, 6u, "100 records of up to 64 KiB in files of 1 MiB");
	cr_assert_eq(first, 100u, "every record in one of the run's files");
	path_of(path, sizeof(path), 4, 0);
	check_file(path, 0, 10, 4);
}

Test(writer, rotates_by_age)
{
	struct rdo_writer_opts o = opts();
	o.rotate_s = 1;
	struct rdo_writer *w = make(&o);
	for (unsigned i = 0; i < 3; i++) {
		struct rdo_writer_record r = record(i, 6);
		put(w, &r);
	}
	usleep(1100000);
	for (unsigned i = 3; i < 5; i++) {
		struct rdo_writer_record r = record(i, 6);
		put(w, &r);
	}
	rdo_writer_destroy(&w);
	char path[128];
	path_of(path, sizeof(path), 6, 0);
	check_file(path, 0, 3, 6);
	path_of(path, sizeof(path), 6, 1);
	check_file(path, 3, 2, 6);
}

Test(writer, an_existing_file_is_never_overwritten)
{
	struct rdo_writer_opts o = opts();
	char path[128];
	path_of(path, sizeof(path), 5, 0);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("someone else's", f);
	fclose(f);
	struct rdo_writer *w = make(&o);
	struct rdo_writer_record r = record(0, 5);
	put(w, &r);
	rdo_writer_destroy(&w);
	cr_assert_eq(file_size(path), 14, "the old file untouched");
	path_of(path, sizeof(path), 5, 1);
	check_file(path, 0, 1, 5);
}

Test(writer, refuses_what_it_cannot_write)
{
	struct rdo_writer_opts o = opts();
	struct rdo_writer *w = make(&o);
	struct rdo_writer_record r = record(0, 1);
	r.data = mem + 512;
	cr_assert_eq(rdo_writer_put(w, &r), -EINVAL, "misaligned payload");
	r = record(0, 1);
	r.h.size = SP_SIZE + 4096;
	cr_assert_eq(rdo_writer_put(w, &r), -EINVAL, "larger than a superpage");
	rdo_writer_destroy(&w);
	cr_assert_eq(done_ok + done_err, 0u);
}

static void create_fails(struct rdo_writer_opts *o, uint32_t sp_size, const char *needle)
{
	struct rdo_file_header h = ident();
	h.superpage_size = sp_size;
	char err[512] = "";
	struct rdo_writer *w = rdo_writer_create(o, &h, done, NULL, err, sizeof(err));
	cr_assert_null(w);
	cr_assert(strstr(err, needle), "\"%s\" in \"%s\"", needle, err);
}

Test(writer, bad_options_say_what_to_fix)
{
	struct rdo_writer_opts o = opts();
	rdo_strlcpy(o.directory, "/nonexistent/readoutd", sizeof(o.directory));
	create_fails(&o, SP_SIZE, "create it");
	o = opts();
	char file[128];
	snprintf(file, sizeof(file), "%s/plain", dir);
	fclose(fopen(file, "w"));
	rdo_strlcpy(o.directory, file, sizeof(o.directory));
	create_fails(&o, SP_SIZE, "not a directory");
	o = opts();
	rdo_strlcpy(o.name, "run{run}.rdo", sizeof(o.name));
	create_fails(&o, SP_SIZE, "add {seq}");
	o = opts();
	create_fails(&o, SP_SIZE + 100, "multiple of 4096");
	o = opts();
	o.rotate_bytes = SP_SIZE;
	create_fails(&o, SP_SIZE, "rotate_size");
	o = opts();
	o.depth = 0;
	create_fails(&o, SP_SIZE, "writer.depth");
}

/* A file system of `mib` MiB at `path`, or false (not root, no tmpfs): the test then skips. */
static bool small_fs(const char *path, unsigned mib)
{
	char opt[32];
	snprintf(opt, sizeof(opt), "size=%um", mib);
	if (mkdir(path, 0755) != 0 || mount("tmpfs", path, "tmpfs", 0, opt) != 0) {
		cr_log_warn("cannot mount a %u MiB tmpfs at %s (%s): needs root", mib, path,
			    strerror(errno));
		return false;
	}
	return true;
}

Test(writer, disk_full_closes_the_file_cleanly_and_refuses_records)
{
	char full[128];
	snprintf(full, sizeof(full), "%s/full", dir);
	if (!small_fs(full, 8))
		cr_skip_test(
		    "a disk-full test needs a small file system: run as root to mount one");
	/* 2 MiB that an operator can free later. */
	char filler[256];
	snprintf(filler, sizeof(filler), "%s/filler", full);
	FILE *f = fopen(filler, "w");
	cr_assert_not_null(f);
	for (unsigned i = 0; i < 32; i++)
		cr_assert_eq(fwrite(mem, 1, SP_SIZE, f), SP_SIZE);
	fclose(f);
	struct rdo_writer_opts o = opts();
	rdo_strlcpy(o.directory, full, sizeof(o.directory));
	struct rdo_writer *w = make(&o);
	unsigned taken = 0;
	int rc = 0;
	for (unsigned i = 0; i < 1000; i++) {
		struct rdo_writer_record r = record(i, 2);
		while ((rc = rdo_writer_put(w, &r)) == -EAGAIN)
			rdo_writer_reap(w, 100);
		if (rc)
			break;
		taken++;
	}
	cr_assert_eq(rc, -ENOSPC, "8 MiB fill up: %s", strerror(-rc));
	struct rdo_writer_stats st;
	rdo_writer_stats(w, &st);
	cr_assert_eq(st.state, RDO_WRITER_DISK_FULL);
	cr_assert(strstr(st.last_error, "disk full"), "%s", st.last_error);
	cr_assert_gt(taken, 50u);
	cr_assert_eq(done_ok, taken, "every record taken is on disk");
	cr_assert_eq(done_err, 0u);
	struct rdo_writer_record r = record(taken, 2);
	cr_assert_eq(rdo_writer_put(w, &r), -ENOSPC, "still refused");
	char path[256];
	snprintf(path, sizeof(path), "%s/run000002_sim0_0000.rdo", full);
	check_file(path, 0, taken, 2);
	uint64_t errors = st.errors;

	/* Space comes back: within a second the writer takes records again, in a new file. */
	unlink(filler);
	usleep(1100000);
	cr_assert_eq(rdo_writer_put(w, &r), 0, "writing again once space is back");
	rdo_writer_stats(w, &st);
	cr_assert_eq(st.state, RDO_WRITER_WRITING);
	cr_assert_leq(st.errors, errors + 1, "a full disk is said once, not once a retry");
	rdo_writer_destroy(&w);
	snprintf(path, sizeof(path), "%s/run000002_sim0_0001.rdo", full);
	check_file(path, taken, 1, 2);
	umount(full);
}

Test(writer, every_write_in_flight_then_eagain)
{
	struct rdo_writer_opts o = opts();
	o.depth = 1;
	o.block_size = 4096; /* one record a write */
	struct rdo_writer *w = make(&o);
	unsigned taken = 0;
	int rc;
	for (unsigned i = 0;
	     i < 10 && (rc = rdo_writer_put(w, &(struct rdo_writer_record){.data = mem,
							.h = {.size = 100, .run = 1}})) == 0;
	     i++)
		taken++;
	cr_assert_eq(rc, -EAGAIN, "one write in flight at most");
	cr_assert_eq(taken, 1u);
	while (done_ok < 1)
		rdo_writer_reap(w, 100);
	cr_assert_eq(rdo_writer_put(
			 w, &(struct rdo_writer_record){.data = mem, .h = {.size = 100, .run = 1}}),
		     0);
	rdo_writer_destroy(&w);
	cr_assert_eq(done_ok, 2u);
}
