/*
 * The .rdo file format: sealing and checking its structures, the totals,
 * the footer, file names; then files written here by hand, read back,
 * damaged in every way a disk or a killed writer damages them, verified and
 * recovered, through the library and through `readoutctl file`.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/rdofile.h"

#define SP_SIZE	 65536u
#define RUN	 42u
#define START_NS 1700000000123456789ull /* 2023-11-14T22:13:20.123Z */

/* A record the fixture writes: payload bytes follow from link, sequence and position. */
struct rec {
	uint32_t link;
	uint64_t seq;
	uint32_t size;
};

/* Sizes around the alignment; link 0 misses 3-5, link 1 misses 2-4. */
static const struct rec recs[] = {
    {0, 0, 4096},    {1, 0, 1},	   {0, 1, 10000}, {1, 1, 0},
    {0, 2, SP_SIZE}, {1, 5, 4095}, {2, 7, 4097},  {0, 6, 123},
};
#define NRECS (sizeof(recs) / sizeof(recs[0]))

static char dir[64], path[128];
static uint64_t offsets[NRECS + 1]; /* of each record the fixture wrote, then of their end */
/* Run on the trailer before the fixture writes it, to make it lie. */
static void (*tamper)(struct rdo_file_trailer *t);

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/test_rdofile.XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/run000042_sim0_0003.rdo", dir);
	tamper = NULL;
}

static void teardown(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[PATH_MAX];
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && snprintf(p, sizeof(p), "%s/%s", dir, e->d_name) > 0)
			unlink(p);
	if (d)
		closedir(d);
	rmdir(dir);
}

TestSuite(rdofile, .init = setup, .fini = teardown);
TestSuite(readoutctl_file, .init = setup, .fini = teardown);

static unsigned char payload_byte(const struct rec *r, size_t i)
{
	return (unsigned char)(i * 31 + r->seq * 7 + r->link);
}

static void *aligned(size_t len)
{
	void *p = NULL;
	cr_assert_eq(posix_memalign(&p, RDO_FILE_ALIGN, len), 0);
	memset(p, 0, len);
	return p;
}

static void fill_header(struct rdo_file_header *h)
{
	memset(h, 0, sizeof(*h));
	h->superpage_size = SP_SIZE;
	h->run = RUN;
	h->file_seq = 3;
	h->start_ns = START_NS;
	h->serial = 0xabcd;
	h->identity = 0x52444f31;
	h->firmware = 0x01020003;
	h->links = 12;
	for (int i = 0; i < 32; i++)
		h->map_sha256[i] = (uint8_t)(0xa0 + i);
	strcpy(h->card, "sim0");
	strcpy(h->backend, "sim");
	strcpy(h->address, "/dev/rdo0");
	strcpy(h->map_name, "rdo-sim");
	strcpy(h->host, "daq01");
	strcpy(h->writer, "test_rdofile");
	rdo_file_header_seal(h);
}

static struct rdo_record_header record_header(const struct rec *r, uint64_t index)
{
	struct rdo_record_header h = {
	    .index = index,
	    .sequence = r->seq,
	    .timestamp_ns = 1000 + index,
	    .run = RUN,
	    .link = r->link,
	    .size = r->size,
	};
	unsigned char *p = malloc(r->size + 1);
	for (size_t i = 0; i < r->size; i++)
		p[i] = payload_byte(r, i);
	h.payload_crc = rdo_crc32c(0, p, r->size);
	free(p);
	rdo_record_header_seal(&h);
	return h;
}

/*
 * Write `path` as a writer would: header, the `n` records `rs` (at most
 * NRECS), then the footer when `closed` (over 1 MiB of reserved space, which
 * the footer cuts), else `zero_tail` bytes of reserved space never written.
 */
static void write_records(const struct rec *rs, size_t n, bool closed, uint64_t zero_tail)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert_geq(fd, 0);
	unsigned char *block = aligned(RDO_FILE_ALIGN + rdo_file_padded(SP_SIZE));
	fill_header((struct rdo_file_header *)block);
	cr_assert_eq(pwrite(fd, block, RDO_FILE_ALIGN, 0), RDO_FILE_ALIGN);
	struct rdo_index_entry *index = aligned(rdo_file_footer_len(n));
	struct rdo_file_trailer t = {0};
	uint64_t off = RDO_FILE_ALIGN;
	for (size_t k = 0; k < n; k++) {
		const struct rec *r = &rs[k];
		size_t len = rdo_file_record_len(r->size);
		memset(block, 0xee, len); /* the padding's bytes are undefined */
		struct rdo_record_header h = record_header(r, k);
		memcpy(block, &h, sizeof(h));
		for (size_t i = 0; i < r->size; i++)
			block[RDO_FILE_ALIGN + i] = payload_byte(r, i);
		cr_assert_eq(pwrite(fd, block, len, (off_t)off), (ssize_t)len);
		index[k] = (struct rdo_index_entry){off, r->seq, h.timestamp_ns, r->link, r->size};
		rdo_file_totals_add(&t, &h);
		offsets[k] = off;
		off += len;
	}
	offsets[n] = off;
	if (closed && tamper)
		tamper(&t);
	cr_assert_eq(ftruncate(fd, (off_t)(off + (closed ? 1 << 20 : zero_tail))), 0);
	if (closed)
		cr_assert_eq(rdo_file_write_footer(fd, off, index, n, &t), 0);
	close(fd);
	free(index);
	free(block);
}

/* The first `n` of recs. */
static void write_file(size_t n, bool closed, uint64_t zero_tail)
{
	write_records(recs, n, closed, zero_tail);
}

static uint64_t file_size(void)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

static void flip(uint64_t off)
{
	unsigned char c;
	int fd = open(path, O_RDWR);
	cr_assert_eq(pread(fd, &c, 1, (off_t)off), 1);
	c ^= 0x10;
	cr_assert_eq(pwrite(fd, &c, 1, (off_t)off), 1);
	close(fd);
}

static void cut_at(uint64_t size)
{
	cr_assert_eq(truncate(path, (off_t)size), 0);
}

static void write_bytes(const void *p, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(p, 1, len, f), len);
	fclose(f);
}

/* What rdo_file_verify told. */
static char problems[16][2 * RDO_FILE_ERR_MAX], gaps[16][128];
static size_t nproblems, ngaps;

static void on_problem(void *arg, const char *line)
{
	(void)arg;
	cr_log_info("problem: %s", line);
	if (nproblems < 16)
		snprintf(problems[nproblems++], sizeof(problems[0]), "%s", line);
}

static void on_gap(void *arg, uint32_t link, uint64_t first, uint64_t last)
{
	(void)arg;
	if (ngaps < 16)
		snprintf(gaps[ngaps++], sizeof(gaps[0]), "link %u: %llu-%llu", link,
			 (unsigned long long)first, (unsigned long long)last);
}

static int verify(struct rdo_file_verify_report *rep)
{
	static const struct rdo_file_verify_cb cb = {.problem = on_problem, .gap = on_gap};
	nproblems = ngaps = 0;
	return rdo_file_verify(path, rep, &cb);
}

/* Did verify tell a problem that contains `s`? */
static bool told(const char *s)
{
	for (size_t i = 0; i < nproblems; i++)
		if (strstr(problems[i], s))
			return true;
	return false;
}

#define ASSERT_TOLD(...)                                                                           \
	do {                                                                                       \
		char want_[256];                                                                   \
		snprintf(want_, sizeof(want_), __VA_ARGS__);                                       \
		cr_assert(told(want_), "no problem told contains \"%s\" (%zu told%s%s)", want_,    \
			  nproblems, nproblems ? ", first: " : "", nproblems ? problems[0] : "");  \
	} while (0)

static void expect_clean_verify(uint64_t records)
{
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), 0, "%s", nproblems ? problems[0] : "not closed");
	cr_assert(rep.closed);
	cr_assert_eq(rep.problems, 0);
	cr_assert_eq(rep.found.records, records);
	cr_assert_eq(rep.trailer.records, records);
}

Test(rdofile, header_seal_then_check)
{
	struct rdo_file_header h;
	fill_header(&h);
	cr_assert_eq(memcmp(h.magic, "RDOFILE\n", 8), 0);
	cr_assert_eq(h.version, 1);
	cr_assert_eq(h.header_size, 1024);
	cr_assert_eq(h.align, 4096);
	cr_assert_eq(h.crc, rdo_crc32c(0, &h, 1020));
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_header_check(&h, err, sizeof(err)), 0, "%s", err);
}

Test(rdofile, header_check_names_each_corruption)
{
	struct rdo_file_header good, h;
	char err[RDO_FILE_ERR_MAX];
	fill_header(&good);

	h = good;
	memcpy(h.magic,
	       "\x7f"
	       "ELF\x02\x01\x01\x00",
	       8);
	cr_assert_eq(rdo_file_header_check(&h, err, sizeof(err)), -EBADMSG);
	cr_assert_str_eq(err, "not a readoutd data file (magic \"\\x7fELF\\x02\\x01\\x01\\x00\", "
			      "expected \"RDOFILE\\n\")");

	h = good;
	h.version = 7;
	cr_assert_eq(rdo_file_header_check(&h, err, sizeof(err)), -EBADMSG);
	cr_assert_str_eq(err, "format version 7, this readoutctl reads 1");

	h = good;
	h.host[2] ^= 1;
	cr_assert_eq(rdo_file_header_check(&h, err, sizeof(err)), -EBADMSG);
	char want[128];
	snprintf(want, sizeof(want), "header CRC mismatch: stored 0x%08x, computed 0x%08x",
		 good.crc, rdo_crc32c(0, &h, 1020));
	cr_assert_str_eq(err, want);

	h = good;
	h.align = 512;
	h.crc = rdo_crc32c(0, &h, 1020);
	cr_assert_eq(rdo_file_header_check(&h, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "alignment 512"), "%s", err);

	h = good;
	memset(h.card, 'x', sizeof(h.card));
	h.crc = rdo_crc32c(0, &h, 1020);
	cr_assert_eq(rdo_file_header_check(&h, err, sizeof(err)), -EBADMSG);
	cr_assert_str_eq(err, "header field card has no terminating NUL");
}

Test(rdofile, record_header_check_names_each_corruption)
{
	char err[RDO_FILE_ERR_MAX] = "";
	struct rdo_record_header good = record_header(&recs[2], 2), h = good;
	cr_assert_eq(good.magic, RDO_RECORD_MAGIC);
	cr_assert_eq(good.header_size, 72);
	cr_assert_eq(memcmp(&good, "RDOR", 4), 0);
	cr_assert_eq(rdo_record_header_check(&good, err, sizeof(err)), 0, "%s", err);

	h.sequence++;
	cr_assert_eq(rdo_record_header_check(&h, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "record header CRC mismatch: stored 0x"), "%s", err);

	memset(&h, 0, sizeof(h));
	cr_assert_eq(rdo_record_header_check(&h, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "zeros where a record header should be"), "%s", err);

	h = good;
	h.magic = 0x11223344;
	cr_assert_eq(rdo_record_header_check(&h, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "not a record header (magic 0x11223344"), "%s", err);
}

Test(rdofile, trailer_check_names_each_corruption)
{
	char err[RDO_FILE_ERR_MAX] = "";
	struct rdo_file_trailer good = {.records = 3, .links = 2}, t;
	rdo_file_trailer_seal(&good);
	cr_assert_eq(memcmp(good.magic, "RDOEND\n\n", 8), 0);
	cr_assert_eq(good.trailer_size, 1280);
	cr_assert_eq(rdo_file_trailer_check(&good, err, sizeof(err)), 0, "%s", err);

	t = good;
	t.records++;
	cr_assert_eq(rdo_file_trailer_check(&t, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "trailer CRC mismatch"), "%s", err);

	t = good;
	t.magic[0] = 'X';
	cr_assert_eq(rdo_file_trailer_check(&t, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "not a trailer (magic \"XDOEND\\n\\n\""), "%s", err);

	t = good;
	t.links = 33;
	t.crc = rdo_crc32c(0, &t, 1276);
	cr_assert_eq(rdo_file_trailer_check(&t, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "33 links"), "%s", err);
}

static void add(struct rdo_file_trailer *t, uint32_t link, uint64_t seq, uint32_t size)
{
	struct rdo_record_header h = {.link = link, .sequence = seq, .size = size};
	rdo_file_totals_add(t, &h);
}

static void expect_link(const struct rdo_file_trailer *t, uint32_t link, uint64_t records,
			uint64_t first, uint64_t last, uint64_t missing)
{
	const struct rdo_link_totals *l = &t->link[link];
	cr_assert(l->records == records && l->first_sequence == first && l->last_sequence == last &&
		      l->missing == missing,
		  "link %u: %llu records, sequences %llu-%llu, %llu missing; expected %llu, "
		  "%llu-%llu, %llu",
		  link, (unsigned long long)l->records, (unsigned long long)l->first_sequence,
		  (unsigned long long)l->last_sequence, (unsigned long long)l->missing,
		  (unsigned long long)records, (unsigned long long)first, (unsigned long long)last,
		  (unsigned long long)missing);
}

Test(rdofile, totals_count_records_bytes_and_gaps_per_link)
{
	struct rdo_file_trailer t = {0};
	add(&t, 3, 100, 10);
	add(&t, 0, 5, 20);
	add(&t, 3, 101, 30);
	add(&t, 3, 110, 40); /* 102-109 missing */
	add(&t, 0, 7, 50);   /* 6 missing */
	cr_assert_eq(t.records, 5);
	cr_assert_eq(t.payload_bytes, 150);
	cr_assert_eq(t.links, 4);
	expect_link(&t, 3, 3, 100, 110, 8);
	expect_link(&t, 0, 2, 5, 7, 1);
	expect_link(&t, 1, 0, 0, 0, 0);
}

Test(rdofile, totals_count_repeated_and_earlier_sequences_as_no_gap)
{
	struct rdo_file_trailer t = {0};
	add(&t, 1, 10, 1);
	add(&t, 1, 10, 1);
	add(&t, 1, 4, 1);
	add(&t, 1, 12, 1);
	expect_link(&t, 1, 4, 10, 12, 1);
}

Test(rdofile, totals_clip_links_beyond_the_trailer_but_count_their_records)
{
	struct rdo_file_trailer t = {0};
	add(&t, 31, 0, 8);
	add(&t, 32, 0, 16);
	add(&t, 0xffffffffu, 0, 32);
	cr_assert_eq(t.records, 3);
	cr_assert_eq(t.payload_bytes, 56);
	cr_assert_eq(t.links, 32);
	expect_link(&t, 31, 1, 0, 0, 0);
}

Test(rdofile, footer_pads_the_index_and_cuts_the_reserved_space)
{
	write_file(3, true, 0);
	uint64_t end = offsets[3];
	cr_assert_eq(file_size(), end + rdo_file_footer_len(3));
	cr_assert_eq(rdo_file_footer_len(3), 2 * RDO_FILE_ALIGN);
	unsigned char *f = malloc(2 * RDO_FILE_ALIGN);
	int fd = open(path, O_RDONLY);
	cr_assert_eq(pread(fd, f, 2 * RDO_FILE_ALIGN, (off_t)end), 2 * RDO_FILE_ALIGN);
	close(fd);
	struct rdo_index_entry e[3];
	memcpy(e, f, sizeof(e));
	cr_assert_eq(e[0].offset, RDO_FILE_ALIGN);
	cr_assert_eq(e[2].offset, offsets[2]);
	cr_assert_eq(e[2].size, 10000);
	for (size_t i = sizeof(e); i < RDO_FILE_ALIGN; i++)
		cr_assert_eq(f[i], 0, "index padding byte %zu", i);
	struct rdo_file_trailer t;
	memcpy(&t, f + RDO_FILE_ALIGN, sizeof(t));
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_trailer_check(&t, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(t.index_offset, end);
	cr_assert_eq(t.index_crc, rdo_crc32c(0, e, sizeof(e)));
	cr_assert_eq(t.records, 3);
	cr_assert_eq(t.flags, 0);
	cr_assert_gt(t.end_ns, START_NS);
	free(f);
}

Test(rdofile, footer_goes_through_o_direct)
{
	write_file(2, false, 0);
	int fd = open(path, O_WRONLY | O_DIRECT);
	if (fd < 0 && errno == EINVAL)
		cr_skip_test("the file system under /tmp refuses O_DIRECT");
	cr_assert_geq(fd, 0);
	struct rdo_index_entry *index = aligned(rdo_file_footer_len(2));
	struct rdo_file_trailer t = {0};
	for (size_t k = 0; k < 2; k++) {
		struct rdo_record_header h = record_header(&recs[k], k);
		index[k] = (struct rdo_index_entry){offsets[k], h.sequence, h.timestamp_ns, h.link,
						    h.size};
		rdo_file_totals_add(&t, &h);
	}
	cr_assert_eq(rdo_file_write_footer(fd, offsets[2], index, 2, &t), 0);
	close(fd);
	free(index);
	expect_clean_verify(2);
}

Test(rdofile, footer_refuses_unaligned_offset_or_memory)
{
	struct rdo_file_trailer t = {0};
	unsigned char *index = aligned(2 * RDO_FILE_ALIGN);
	int fd = open(path, O_WRONLY | O_CREAT, 0644);
	cr_assert_eq(rdo_file_write_footer(fd, RDO_FILE_ALIGN + 512, index, 0, &t), -EINVAL);
	cr_assert_eq(rdo_file_write_footer(fd, RDO_FILE_ALIGN, index + 8, 0, &t), -EINVAL);
	cr_assert_eq(file_size(), 0);
	close(fd);
	free(index);
}

Test(rdofile, reader_hands_out_every_record_with_its_payload)
{
	write_file(NRECS, true, 0);
	char err[RDO_FILE_ERR_MAX] = "";
	struct rdo_file_reader *r = rdo_file_reader_open(path, err, sizeof(err));
	cr_assert_not_null(r, "%s", err);
	cr_assert_eq(rdo_file_reader_header(r)->run, RUN);
	cr_assert_str_eq(rdo_file_reader_header(r)->card, "sim0");
	cr_assert_eq(rdo_file_reader_size(r), file_size());
	const struct rdo_file_trailer *t = rdo_file_reader_trailer(r, NULL);
	cr_assert_not_null(t);
	cr_assert_eq(t->records, NRECS);
	struct rdo_file_record rec;
	for (size_t k = 0; k < NRECS; k++) {
		cr_assert_eq(rdo_file_reader_next(r, &rec, err, sizeof(err)), 1, "%s", err);
		cr_assert_eq(rec.offset, offsets[k]);
		cr_assert_eq(rec.h.index, k);
		cr_assert_eq(rec.h.link, recs[k].link);
		cr_assert_eq(rec.h.sequence, recs[k].seq);
		cr_assert_eq(rec.h.size, recs[k].size);
		const unsigned char *p = rec.payload;
		cr_assert_not_null(p);
		for (size_t i = 0; i < rec.h.size; i++)
			cr_assert_eq(p[i], payload_byte(&recs[k], i), "record %zu byte %zu", k, i);
	}
	cr_assert_eq(rdo_file_reader_next(r, &rec, err, sizeof(err)), 0);
	cr_assert_eq(rdo_file_reader_next(r, &rec, err, sizeof(err)), 0, "the end stays the end");
	rdo_file_reader_close(&r);
	cr_assert_null(r);
	rdo_file_reader_close(&r);
}

Test(rdofile, verify_passes_a_good_file_and_tells_its_gaps)
{
	write_file(NRECS, true, 0);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), 0, "%s", nproblems ? problems[0] : "not closed");
	cr_assert(rep.closed);
	cr_assert_eq(rep.size, file_size());
	cr_assert_eq(rep.found.records, NRECS);
	cr_assert_eq(rep.found.payload_bytes, 4096 + 1 + 10000 + SP_SIZE + 4095 + 4097 + 123);
	cr_assert_eq(rep.found.links, 3);
	cr_assert_eq(rep.found.link[0].missing, 3);
	cr_assert_eq(rep.found.link[1].last_sequence, 5);
	cr_assert_eq(rep.gaps, 2);
	cr_assert_eq(ngaps, 2);
	cr_assert_str_eq(gaps[0], "link 1: 2-4");
	cr_assert_str_eq(gaps[1], "link 0: 3-5");
}

Test(rdofile, verify_names_the_offset_of_a_flipped_payload_byte)
{
	write_file(NRECS, true, 0);
	flip(offsets[2] + RDO_FILE_ALIGN + 9999);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	cr_assert_eq(rep.problems, 1);
	ASSERT_TOLD("offset %llu: record 2: payload CRC mismatch: stored 0x",
		    (unsigned long long)offsets[2]);
	cr_assert_eq(rep.found.records, NRECS, "the records after it were checked too");
}

Test(rdofile, verify_names_the_offset_of_a_flipped_record_header_byte)
{
	write_file(NRECS, true, 0);
	flip(offsets[3] + 16); /* its sequence */
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset %llu: record 3: record header CRC mismatch",
		    (unsigned long long)offsets[3]);
	cr_assert_eq(rep.found.records, NRECS - 1, "the index leads past it");
	ASSERT_TOLD("trailer: records 8, the records say 7");
}

Test(rdofile, verify_names_a_flipped_file_header_byte)
{
	write_file(NRECS, true, 0);
	flip(200);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset 0: header CRC mismatch: stored 0x");
	cr_assert_not(rep.closed);
}

Test(rdofile, verify_names_where_a_truncated_file_ends)
{
	write_file(NRECS, true, 0);
	cut_at(offsets[5] + RDO_FILE_ALIGN + 100);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	cr_assert_not(rep.closed);
	ASSERT_TOLD("offset %llu: record 5: its 4095-byte payload runs past the end of the file at "
		    "offset %llu (cut short)",
		    (unsigned long long)offsets[5],
		    (unsigned long long)(offsets[5] + RDO_FILE_ALIGN + 100));
	cr_assert_eq(rep.found.records, 5);

	cut_at(offsets[3] + 100);
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset %llu: record 3: the end of the file is 100 bytes into the record's "
		    "4096-byte header block",
		    (unsigned long long)offsets[3]);

	cut_at(2000);
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset 2000: the file ends inside its 4096-byte header block");
}

Test(rdofile, verify_refuses_a_foreign_file)
{
	unsigned char junk[10000];
	srand(7);
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (unsigned char)rand();
	write_bytes(junk, sizeof(junk));
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset 0: not a readoutd data file (magic \"");
	write_bytes("RDO", 3);
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset 0: not a readoutd data file (magic \"RDO\\x00");
}

Test(rdofile, verify_refuses_an_empty_file_a_directory_and_no_file)
{
	struct rdo_file_verify_report rep;
	write_bytes("", 0);
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset 0: empty file");
	snprintf(path, sizeof(path), "%s", dir);
	cr_assert_eq(verify(&rep), -EISDIR);
	ASSERT_TOLD("a directory, not a data file");
	snprintf(path, sizeof(path), "%s/none.rdo", dir);
	cr_assert_eq(verify(&rep), -ENOENT);
	ASSERT_TOLD("cannot open: No such file or directory");
}

Test(rdofile, verify_finds_a_damaged_trailer_and_index)
{
	write_file(NRECS, true, 0);
	uint64_t size = file_size();
	flip(size - RDO_FILE_ALIGN + 40);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	cr_assert_not(rep.closed);
	ASSERT_TOLD("offset %llu: trailer CRC mismatch",
		    (unsigned long long)(size - RDO_FILE_ALIGN));
	flip(size - RDO_FILE_ALIGN + 40);
	flip(offsets[NRECS] + 40);
	cr_assert_eq(verify(&rep), -EBADMSG);
	ASSERT_TOLD("offset %llu: index CRC mismatch", (unsigned long long)offsets[NRECS]);
}

Test(rdofile, verify_finds_sequences_out_of_order)
{
	static const struct rec back[] = {{0, 5, 1}, {1, 9, 1}, {0, 3, 1}, {0, 8, 1}};
	write_records(back, 4, true, 0);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	cr_assert_eq(rep.problems, 1);
	ASSERT_TOLD("offset %llu: record 2: link 0: sequence 3 after 5 (repeated or out of order)",
		    (unsigned long long)offsets[2]);
	cr_assert_eq(ngaps, 1);
	cr_assert_str_eq(gaps[0], "link 0: 6-7");
}

static void lie(struct rdo_file_trailer *t)
{
	t->payload_bytes += 1;
	t->link[1].missing = 2;
}

Test(rdofile, verify_finds_trailer_totals_that_disagree_with_the_records)
{
	tamper = lie;
	write_file(NRECS, true, 0);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	cr_assert(rep.closed);
	cr_assert_eq(rep.problems, 2);
	ASSERT_TOLD("trailer: payload bytes %llu, the records say %llu",
		    (unsigned long long)rep.found.payload_bytes + 1,
		    (unsigned long long)rep.found.payload_bytes);
	ASSERT_TOLD("trailer: link 1 missing 2, the records say 3");
}

Test(rdofile, verify_fails_an_unclosed_file_without_a_problem)
{
	write_file(NRECS, false, 0);
	struct rdo_file_verify_report rep;
	cr_assert_eq(verify(&rep), -EBADMSG);
	cr_assert_not(rep.closed);
	cr_assert_eq(rep.problems, 0);
	cr_assert_eq(rep.found.records, NRECS);
}

Test(rdofile, recover_keeps_the_records_before_a_zero_tail)
{
	write_file(NRECS, false, 1 << 20);
	struct rdo_file_recover_report rep;
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(rep.was_closed);
	cr_assert_eq(rep.records, NRECS);
	cr_assert_eq(rep.end, offsets[NRECS]);
	cr_assert_eq(rep.cut, 1 << 20);
	cr_assert_eq(rep.size, offsets[NRECS] + rdo_file_footer_len(NRECS));
	cr_assert_eq(file_size(), rep.size);
	cr_assert(strstr(rep.stopped, "zeros where a record header should be"), "%s", rep.stopped);
	expect_clean_verify(NRECS);

	struct rdo_file_reader *r = rdo_file_reader_open(path, err, sizeof(err));
	const struct rdo_file_trailer *t = rdo_file_reader_trailer(r, NULL);
	cr_assert_eq(t->flags, RDO_TRAILER_RECOVERED);
	cr_assert_eq(t->payload_bytes, rep.payload_bytes);
	cr_assert_eq(t->link[0].missing, 3);
	rdo_file_reader_close(&r);
}

Test(rdofile, recover_cuts_a_record_cut_in_the_middle)
{
	write_file(NRECS, false, 0);
	cut_at(offsets[6] + RDO_FILE_ALIGN + 10);
	struct rdo_file_recover_report rep;
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rep.records, 6);
	cr_assert_eq(rep.end, offsets[6]);
	cr_assert_eq(rep.cut, RDO_FILE_ALIGN + 10);
	cr_assert(strstr(rep.stopped, "record 6: its 4097-byte payload runs past"), "%s",
		  rep.stopped);
	expect_clean_verify(6);
}

Test(rdofile, recover_stops_at_a_bad_payload)
{
	write_file(NRECS, false, 8192);
	flip(offsets[4] + RDO_FILE_ALIGN);
	struct rdo_file_recover_report rep;
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rep.records, 4);
	cr_assert_eq(rep.end, offsets[4]);
	cr_assert(strstr(rep.stopped, "record 4: payload CRC mismatch"), "%s", rep.stopped);
	expect_clean_verify(4);
}

Test(rdofile, recover_closes_a_file_with_no_records)
{
	write_file(0, false, 3 * RDO_FILE_ALIGN);
	struct rdo_file_recover_report rep;
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(rep.records, 0);
	cr_assert_eq(rep.end, RDO_FILE_ALIGN);
	cr_assert_eq(file_size(), 2 * RDO_FILE_ALIGN);
	expect_clean_verify(0);
}

Test(rdofile, recover_replaces_a_damaged_trailer)
{
	write_file(NRECS, true, 0);
	uint64_t size = file_size();
	flip(size - RDO_FILE_ALIGN + 1000);
	struct rdo_file_recover_report rep;
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(rep.was_closed);
	cr_assert_eq(rep.records, NRECS);
	cr_assert_eq(rep.cut, size - offsets[NRECS]);
	expect_clean_verify(NRECS);
}

static char *contents(size_t *len)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	char *buf = malloc(1 << 20);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

Test(rdofile, recover_leaves_a_closed_file_alone)
{
	write_file(NRECS, true, 0);
	size_t n0, n1;
	char *before = contents(&n0);
	struct rdo_file_recover_report rep;
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), 0, "%s", err);
	cr_assert(rep.was_closed);
	cr_assert_eq(rep.records, NRECS);
	char *after = contents(&n1);
	cr_assert_eq(n0, n1);
	cr_assert_eq(memcmp(before, after, n0), 0);
	free(before);
	free(after);
}

Test(rdofile, recover_refuses_a_damaged_header_or_a_locked_file)
{
	write_file(NRECS, false, 8192);
	uint64_t size = file_size();
	flip(100);
	struct rdo_file_recover_report rep;
	char err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), -EBADMSG);
	cr_assert(strstr(err, "offset 0: header CRC mismatch"), "%s", err);
	cr_assert_eq(file_size(), size);

	flip(100);
	int fd = open(path, O_RDONLY);
	cr_assert_eq(flock(fd, LOCK_EX), 0);
	cr_assert_eq(rdo_file_recover(path, &rep, err, sizeof(err)), -EWOULDBLOCK);
	cr_assert(strstr(err, "a writer still writing?"), "%s", err);
	cr_assert_eq(file_size(), size);
	close(fd);
}

static int name(char *buf, size_t len, const char *tmpl, uint64_t run, const char *card, char *err)
{
	return rdo_file_name(buf, len, tmpl, run, card, 7, "daq01", START_NS, err,
			     RDO_FILE_ERR_MAX);
}

Test(rdofile, name_fills_every_key)
{
	char buf[NAME_MAX + 1], err[RDO_FILE_ERR_MAX] = "";
	cr_assert_eq(name(buf, sizeof(buf), "run{run}_{card}_{seq}_{host}_{date}T{time}.rdo", 42,
			  "sim0", err),
		     0, "%s", err);
	cr_assert_str_eq(buf, "run000042_sim0_0007_daq01_20231114T221320.rdo");
	cr_assert_eq(rdo_file_name(buf, sizeof(buf), "{run}-{seq}", 12345678, "sim0", 123456, "h",
				   0, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(buf, "12345678-123456");
	cr_assert_eq(name(buf, sizeof(buf), "plain.rdo", 1, "sim0", err), 0);
	cr_assert_str_eq(buf, "plain.rdo");
}

Test(rdofile, name_refuses_unknown_keys_slashes_and_empty_names)
{
	char buf[NAME_MAX + 1], err[RDO_FILE_ERR_MAX];
	cr_assert_eq(name(buf, sizeof(buf), "{run}_{runn}.rdo", 1, "sim0", err), -EINVAL);
	cr_assert(strstr(err, "unknown key {runn} (known: {run} {card}"), "%s", err);
	cr_assert_eq(name(buf, sizeof(buf), "{run", 1, "sim0", err), -EINVAL);
	cr_assert(strstr(err, "'{' without its '}'"), "%s", err);
	cr_assert_eq(name(buf, sizeof(buf), "sub/{run}.rdo", 1, "sim0", err), -EINVAL);
	cr_assert(strstr(err, "no '/'"), "%s", err);
	cr_assert_eq(name(buf, sizeof(buf), "{card}.rdo", 1, "../x", err), -EINVAL);
	cr_assert(strstr(err, "makes \"../x.rdo\""), "%s", err);
	cr_assert_eq(name(buf, sizeof(buf), "", 1, "sim0", err), -EINVAL);
	cr_assert_eq(name(buf, sizeof(buf), "{card}", 1, "..", err), -EINVAL);
}

Test(rdofile, name_refuses_names_too_long)
{
	char small[12], buf[2 * NAME_MAX], err[RDO_FILE_ERR_MAX];
	cr_assert_eq(name(small, sizeof(small), "{card}-{run}", 1, "sim0", err), 0);
	cr_assert_str_eq(small, "sim0-000001");
	cr_assert_eq(name(small, sizeof(small), "{card}-{run}x", 1, "sim0", err), -ENAMETOOLONG);
	char tmpl[NAME_MAX + 2];
	memset(tmpl, 'a', sizeof(tmpl) - 1);
	tmpl[sizeof(tmpl) - 1] = '\0';
	cr_assert_eq(name(buf, sizeof(buf), tmpl, 1, "sim0", err), -ENAMETOOLONG);
	cr_assert(strstr(err, "longer than 255 bytes"), "%s", err);
	tmpl[NAME_MAX] = '\0';
	cr_assert_eq(name(buf, sizeof(buf), tmpl, 1, "sim0", err), 0, "%s", err);
}

/* `readoutctl file ...`: the exit status, stdout (`out`, `outlen` bytes) and stderr. */
struct ctl {
	int status;
	char *out;
	size_t outlen;
	char err[8192];
};

static struct ctl ctl_result;

static void read_all(const char *p, char **buf, size_t *len)
{
	FILE *f = fopen(p, "rb");
	cr_assert_not_null(f);
	*buf = malloc(1 << 20);
	*len = fread(*buf, 1, (1 << 20) - 1, f);
	(*buf)[*len] = '\0';
	fclose(f);
}

/* Run `readoutctl ARGS FILE`, which must exit with `status`. */
static const struct ctl *ctl(const char *args, int status)
{
	const char *bin = getenv("RDO_BIN_DIR");
	char cmd[PATH_MAX + 1024], out[128], err[128];
	snprintf(out, sizeof(out), "%s/stdout", dir);
	snprintf(err, sizeof(err), "%s/stderr", dir);
	snprintf(cmd, sizeof(cmd), "%s/readoutctl %s '%s' >%s 2>%s",
		 bin && bin[0] ? bin : RDO_BIN_DIR, args, path, out, err);
	int st = system(cmd);
	cr_assert(WIFEXITED(st), "%s did not exit", cmd);
	struct ctl *c = &ctl_result;
	free(c->out);
	c->status = WEXITSTATUS(st);
	read_all(out, &c->out, &c->outlen);
	char *e;
	size_t elen;
	read_all(err, &e, &elen);
	snprintf(c->err, sizeof(c->err), "%s", e);
	free(e);
	cr_log_info("readoutctl %s: exit %d\n%s%s", args, c->status,
		    strstr(args, "cat") ? "" : c->out, c->err);
	cr_assert_neq(c->status, 127, "no readoutctl in %s: build it (make)",
		      bin && bin[0] ? bin : RDO_BIN_DIR);
	cr_assert_eq(c->status, status, "readoutctl %s: exit %d, expected %d; stderr:\n%s", args,
		     c->status, status, c->err);
	return c;
}

#define ASSERT_IN(hay, ...)                                                                        \
	do {                                                                                       \
		char want_[512];                                                                   \
		snprintf(want_, sizeof(want_), __VA_ARGS__);                                       \
		cr_assert(strstr(hay, want_), "no \"%s\" in:\n%s", want_, hay);                    \
	} while (0)

Test(readoutctl_file, verify_passes_a_good_file_and_lists_gaps)
{
	write_file(NRECS, true, 0);
	const struct ctl *c = ctl("file verify", 0);
	ASSERT_IN(c->out, "link 1: sequences 2-4 missing (3)\n");
	ASSERT_IN(c->out, "link 0: sequences 3-5 missing (3)\n");
	ASSERT_IN(c->out, "records     8,");
	ASSERT_IN(c->out, "link 00     4 records, sequences 0-6, 3 missing\n");
	ASSERT_IN(c->out, "verify      OK");
	cr_assert_str_eq(c->err, "");

	c = ctl("--json file verify", 0);
	ASSERT_IN(c->out, "\"ok\":true,\"closed\":true,");
	ASSERT_IN(c->out, "\"gaps\":[{\"link\":1,\"first\":2,\"last\":4,\"count\":3},");
	ASSERT_IN(c->out, "\"records\":8,");
}

Test(readoutctl_file, verify_names_the_offset_of_a_bad_record)
{
	write_file(NRECS, true, 0);
	flip(offsets[2] + RDO_FILE_ALIGN + 5);
	const struct ctl *c = ctl("file verify", 1);
	ASSERT_IN(c->err, "readoutctl: %s: offset %llu: record 2: payload CRC mismatch", path,
		  (unsigned long long)offsets[2]);
	ASSERT_IN(c->out, "verify      FAILED: 1 problem\n");

	c = ctl("--json file verify", 1);
	ASSERT_IN(c->out, "\"ok\":false,");
	ASSERT_IN(c->out, "\"problems\":[\"offset %llu: record 2: payload CRC mismatch",
		  (unsigned long long)offsets[2]);
}

Test(readoutctl_file, verify_fails_foreign_and_unclosed_files)
{
	write_bytes("hello, world\n", 13);
	const struct ctl *c = ctl("file verify", 1);
	ASSERT_IN(c->err, "offset 0: not a readoutd data file (magic \"hello, w\"");

	write_file(NRECS, false, 0);
	c = ctl("file verify", 1);
	ASSERT_IN(c->err, "not closed (run `readoutctl file recover %s`)", path);
}

Test(readoutctl_file, info_prints_the_header_and_the_totals)
{
	write_file(NRECS, true, 0);
	const struct ctl *c = ctl("file info", 0);
	static const char *const lines[] = {
	    "run         42, file 3 of the run\n",
	    "started     2023-11-14T22:13:20.123Z\n",
	    "card        sim0 (backend sim, address /dev/rdo0)\n",
	    "identity    0x52444f31\n",
	    "firmware    1.2.3 (0x01020003)\n",
	    "serial      0x000000000000abcd\n",
	    "map         rdo-sim, sha256 "
	    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf\n",
	    "host        daq01\n",
	    "writer      test_rdofile\n",
	    "superpage   65536 bytes\n",
	    ": 8 records, ",
	};
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		ASSERT_IN(c->out, "%s", lines[i]);
	ASSERT_IN(c->out, "link 02     1 record, sequences 7-7, 0 missing\n");

	c = ctl("--json file info", 0);
	ASSERT_IN(c->out, "\"run\":42,\"file_seq\":3,\"start_ns\":1700000000123456789,");
	ASSERT_IN(c->out, "\"closed\":true,\"trailer\":{");

	write_file(NRECS, false, 0);
	c = ctl("file info", 0);
	ASSERT_IN(c->out, "trailer     not closed (run `readoutctl file recover %s`)", path);
}

Test(readoutctl_file, cat_writes_the_payloads_in_file_order)
{
	write_file(NRECS, true, 0);
	const struct ctl *c = ctl("file cat", 0);
	size_t at = 0;
	for (size_t k = 0; k < NRECS; k++)
		for (size_t i = 0; i < recs[k].size; i++, at++)
			cr_assert(at < c->outlen &&
				      (unsigned char)c->out[at] == payload_byte(&recs[k], i),
				  "record %zu byte %zu", k, i);
	cr_assert_eq(c->outlen, at);

	c = ctl("file cat --link 1", 0);
	cr_assert_eq(c->outlen, 1 + 0 + 4095);
	cr_assert_eq((unsigned char)c->out[1], payload_byte(&recs[5], 0));
}

Test(readoutctl_file, cat_stops_at_a_bad_record)
{
	write_file(NRECS, true, 0);
	flip(offsets[4] + 40);
	const struct ctl *c = ctl("file cat", 1);
	cr_assert_eq(c->outlen, 4096 + 1 + 10000 + 0);
	ASSERT_IN(c->err, "offset %llu: record 4: record header CRC mismatch",
		  (unsigned long long)offsets[4]);
}

Test(readoutctl_file, cat_of_an_unclosed_file_warns_or_stops_at_its_zeros)
{
	write_file(3, false, 0);
	const struct ctl *c = ctl("file cat", 0);
	cr_assert_eq(c->outlen, 4096 + 1 + 10000);
	ASSERT_IN(c->err, "not closed (`readoutctl file recover %s` closes it)", path);

	write_file(3, false, 8192);
	c = ctl("file cat", 1);
	cr_assert_eq(c->outlen, 4096 + 1 + 10000);
	ASSERT_IN(c->err, "offset %llu: record 3: zeros where a record header should be",
		  (unsigned long long)offsets[3]);
}

Test(readoutctl_file, recover_then_verify)
{
	write_file(NRECS, false, 1 << 20);
	const struct ctl *c = ctl("file recover", 0);
	ASSERT_IN(c->out, "kept 8 records (87.95 kB), cut 1048576 bytes after offset %llu\n",
		  (unsigned long long)offsets[NRECS]);
	ASSERT_IN(c->out, "the first record cut: offset %llu: record 8: zeros",
		  (unsigned long long)offsets[NRECS]);
	c = ctl("file verify", 0);
	ASSERT_IN(c->out, "by readoutctl file recover");

	c = ctl("file recover", 0);
	ASSERT_IN(c->out, "already closed (8 records, 87.95 kB of payload): nothing changed");
}

Test(readoutctl_file, usage_errors)
{
	write_file(1, true, 0);
	ctl("file", 2);
	ctl("file frobnicate", 2);
	ctl("file verify --link 1", 2);
	ctl("--json file cat", 2);
	ctl("file cat --link x", 2);
}
