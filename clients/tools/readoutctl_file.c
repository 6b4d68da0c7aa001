/*
 * readoutctl's file commands: file info, verify, cat and recover read the
 * .rdo files of readoutd's writers (common/rdofile.h) and need no server
 * (readoutctl.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/rdofile.h"
#include "common/util.h"
#include "lib/verify.h"
#include "tools/json.h"
#include "tools/readoutctl.h"

/* "2023-11-14T22:13:20.123Z": UTC, ISO 8601. */
static const char *iso_time(char buf[40], uint64_t ns)
{
	time_t secs = (time_t)(ns / 1000000000u);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = strftime(buf, 40, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, 40 - n, ".%03uZ", (unsigned)(ns / 1000000u % 1000));
	return buf;
}

static const char *plural(uint64_t n)
{
	return n == 1 ? "" : "s";
}

static int file_problem(const char *path, const char *what)
{
	fprintf(stderr, "readoutctl: %s: %s\n", path, what);
	return CTL_EXIT_BAD_FILE;
}

static void print_link_totals(const struct rdo_file_trailer *t)
{
	for (uint32_t i = 0; i < t->links; i++) {
		const struct rdo_link_totals *l = &t->link[i];
		if (l->records)
			printf("link %02u     %llu record%s, sequences %llu-%llu, %llu missing\n",
			       i, (unsigned long long)l->records, plural(l->records),
			       (unsigned long long)l->first_sequence,
			       (unsigned long long)l->last_sequence,
			       (unsigned long long)l->missing);
	}
}

static void json_link_totals(struct rdo_json *j, const struct rdo_file_trailer *t)
{
	rdo_json_open(j, "links", '[');
	for (uint32_t i = 0; i < t->links; i++) {
		const struct rdo_link_totals *l = &t->link[i];
		if (!l->records)
			continue;
		rdo_json_open(j, NULL, '{');
		rdo_json_u64(j, "link", i);
		rdo_json_u64(j, "records", l->records);
		rdo_json_u64(j, "first_sequence", l->first_sequence);
		rdo_json_u64(j, "last_sequence", l->last_sequence);
		rdo_json_u64(j, "missing", l->missing);
		rdo_json_close(j, '}');
	}
	rdo_json_close(j, ']');
}

static void json_file_info(const char *path, uint64_t size, const struct rdo_file_header *h,
			   const struct rdo_file_trailer *t, const char *why)
{
	char sha[65], when[40];
	for (int i = 0; i < 32; i++)
		sprintf(sha + 2 * i, "%02x", h->map_sha256[i]);
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_str(&j, "file", path);
	rdo_json_u64(&j, "size", size);
	rdo_json_u64(&j, "version", h->version);
	rdo_json_u64(&j, "run", h->run);
	rdo_json_u64(&j, "file_seq", h->file_seq);
	rdo_json_u64(&j, "start_ns", h->start_ns);
	rdo_json_str(&j, "start", iso_time(when, h->start_ns));
	rdo_json_str(&j, "card", h->card);
	rdo_json_str(&j, "backend", h->backend);
	rdo_json_str(&j, "address", h->address);
	rdo_json_u64(&j, "identity", h->identity);
	rdo_json_u64(&j, "firmware", h->firmware);
	rdo_json_u64(&j, "serial", h->serial);
	rdo_json_u64(&j, "links", h->links);
	rdo_json_str(&j, "map", h->map_name);
	rdo_json_str(&j, "map_sha256", sha);
	rdo_json_str(&j, "host", h->host);
	rdo_json_str(&j, "writer", h->writer);
	rdo_json_u64(&j, "superpage_size", h->superpage_size);
	rdo_json_bool(&j, "closed", t != NULL);
	if (t) {
		rdo_json_open(&j, "trailer", '{');
		rdo_json_u64(&j, "end_ns", t->end_ns);
		rdo_json_str(&j, "end", iso_time(when, t->end_ns));
		rdo_json_bool(&j, "recovered", t->flags & RDO_TRAILER_RECOVERED);
		rdo_json_u64(&j, "records", t->records);
		rdo_json_u64(&j, "payload_bytes", t->payload_bytes);
		rdo_json_u64(&j, "index_offset", t->index_offset);
		json_link_totals(&j, t);
		rdo_json_close(&j, '}');
	} else {
		rdo_json_str(&j, "not_closed", why);
	}
	rdo_json_close(&j, '}');
}

static void print_file_info(const char *path, uint64_t size, const struct rdo_file_header *h,
			    const struct rdo_file_trailer *t, const char *why)
{
	char b[32], when[40];
	printf("file        %s, %s (%llu bytes), format version %u\n", path,
	       ctl_bytes(b, (double)size), (unsigned long long)size, h->version);
	printf("run         %llu, file %llu of the run\n", (unsigned long long)h->run,
	       (unsigned long long)h->file_seq);
	printf("started     %s\n", iso_time(when, h->start_ns));
	printf("card        %s (backend %s, address %s)\n", h->card, h->backend, h->address);
	printf("identity    0x%08x\n", h->identity);
	printf("firmware    %u.%u.%u (0x%08x)\n", h->firmware >> 24, (h->firmware >> 16) & 0xff,
	       h->firmware & 0xffff, h->firmware);
	printf("serial      0x%016llx\n", (unsigned long long)h->serial);
	printf("links       %u\n", h->links);
	printf("map         %s, sha256 ", h->map_name);
	for (int i = 0; i < 32; i++)
		printf("%02x", h->map_sha256[i]);
	printf("\n");
	printf("host        %s\n", h->host);
	printf("writer      %s\n", h->writer);
	printf("superpage   %u bytes\n", h->superpage_size);
	if (!t) {
		printf("trailer     %s (run `readoutctl file recover %s`)\n", why, path);
		return;
	}
	printf("trailer     closed %s%s: %llu record%s, %s of payload\n", iso_time(when, t->end_ns),
	       t->flags & RDO_TRAILER_RECOVERED ? " by readoutctl file recover" : "",
	       (unsigned long long)t->records, plural(t->records),
	       ctl_bytes(b, (double)t->payload_bytes));
	print_link_totals(t);
}

static int file_info(const char *path, bool json)
{
	char err[RDO_FILE_ERR_MAX];
	const char *why;
	struct rdo_file_reader *r = rdo_file_reader_open(path, err, sizeof(err));
	if (!r)
		return file_problem(path, err);
	const struct rdo_file_trailer *t = rdo_file_reader_trailer(r, &why);
	if (json)
		json_file_info(path, rdo_file_reader_size(r), rdo_file_reader_header(r), t, why);
	else
		print_file_info(path, rdo_file_reader_size(r), rdo_file_reader_header(r), t, why);
	rdo_file_reader_close(&r);
	return 0;
}

/* What file verify prints as it goes, or keeps for --json (the first VERIFY_KEEP of each). */
#define VERIFY_KEEP 1000
struct verify_out {
	const char *path;
	char *problems[VERIFY_KEEP];
	uint64_t gaps[VERIFY_KEEP][3]; /* link, first, last */
	size_t nproblems, ngaps;
	struct rdo_verify *pages; /* --pages: checks every DMA page; NULL: off */
	bool json;
};

static void on_problem(void *arg, const char *line)
{
	struct verify_out *o = arg;
	if (!o->json)
		fprintf(stderr, "readoutctl: %s: %s\n", o->path, line);
	else if (o->nproblems < VERIFY_KEEP)
		o->problems[o->nproblems++] = strdup(line);
}

static void on_gap(void *arg, uint32_t link, uint64_t first, uint64_t last)
{
	struct verify_out *o = arg;
	if (!o->json)
		printf("link %u: sequences %llu-%llu missing (%llu)\n", link,
		       (unsigned long long)first, (unsigned long long)last,
		       (unsigned long long)(last - first + 1));
	else if (o->ngaps < VERIFY_KEEP)
		memcpy(o->gaps[o->ngaps++], (uint64_t[3]){link, first, last}, sizeof(o->gaps[0]));
}

static void json_verify(const struct verify_out *o, const struct rdo_file_verify_report *rep,
			bool ok)
{
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_str(&j, "file", o->path);
	rdo_json_bool(&j, "ok", ok);
	rdo_json_bool(&j, "closed", rep->closed);
	rdo_json_bool(&j, "recovered", rep->closed && rep->trailer.flags & RDO_TRAILER_RECOVERED);
	rdo_json_u64(&j, "size", rep->size);
	rdo_json_u64(&j, "records", rep->found.records);
	rdo_json_u64(&j, "payload_bytes", rep->found.payload_bytes);
	rdo_json_u64(&j, "problem_count", rep->problems);
	rdo_json_open(&j, "problems", '[');
	for (size_t i = 0; i < o->nproblems; i++)
		rdo_json_str(&j, NULL, o->problems[i]);
	rdo_json_close(&j, ']');
	rdo_json_u64(&j, "gap_count", rep->gaps);
	rdo_json_open(&j, "gaps", '[');
	for (size_t i = 0; i < o->ngaps; i++) {
		rdo_json_open(&j, NULL, '{');
		rdo_json_u64(&j, "link", o->gaps[i][0]);
		rdo_json_u64(&j, "first", o->gaps[i][1]);
		rdo_json_u64(&j, "last", o->gaps[i][2]);
		rdo_json_u64(&j, "count", o->gaps[i][2] - o->gaps[i][1] + 1);
		rdo_json_close(&j, '}');
	}
	rdo_json_close(&j, ']');
	json_link_totals(&j, &rep->found);
	rdo_json_close(&j, '}');
}

static void print_verify(const char *path, const struct rdo_file_verify_report *rep, bool ok)
{
	char a[32], b[32], when[40];
	printf("file        %s, %s", path, ctl_bytes(a, (double)rep->size));
	if (rep->closed)
		printf(", closed %s%s\n", iso_time(when, rep->trailer.end_ns),
		       rep->trailer.flags & RDO_TRAILER_RECOVERED ? " by readoutctl file recover"
								  : "");
	else
		printf(", not closed\n");
	printf("records     %llu, %s of payload; %llu sequence gaps\n",
	       (unsigned long long)rep->found.records,
	       ctl_bytes(b, (double)rep->found.payload_bytes), (unsigned long long)rep->gaps);
	print_link_totals(&rep->found);
	if (ok)
		printf("verify      OK: every record and CRC, the index and the totals check\n");
	else if (rep->problems)
		printf("verify      FAILED: %llu problem%s%s\n", (unsigned long long)rep->problems,
		       plural(rep->problems), rep->closed ? "" : ", not closed");
	else
		printf("verify      FAILED: not closed\n");
}

static void on_page_problem(void *arg, enum rdo_verify_problem p, const char *line)
{
	(void)p;
	fprintf(stderr, "readoutctl: %s: %s\n", (const char *)arg, line);
}

/* A record's DMA pages, as readout-sub --check checks a superpage of the stream. */
static void on_record(void *arg, const struct rdo_file_header *fh,
		      const struct rdo_file_record *rec)
{
	struct verify_out *o = arg;
	struct rdo_data_view view = {
	    .data = rec->payload,
	    .size = rec->h.size,
	    .link = rec->h.link,
	    .sequence = rec->h.sequence,
	    .timestamp_ns = rec->h.timestamp_ns,
	    .flags = rec->h.flags,
	    .run = rec->h.run,
	    .card_pages_dropped = rec->h.card_pages_dropped,
	};
	rdo_strlcpy(view.card, fh->card, sizeof(view.card));
	rdo_verify_superpage(o->pages, &view, 0);
}

/*
 * What the page check found: page headers, page counters continuous per
 * link, every payload byte. The number of pages that fail.
 */
static uint64_t pages_verdict(const struct verify_out *o)
{
	struct rdo_verify_totals t;
	rdo_verify_totals(o->pages, &t);
	/* Pages the card dropped at the source, and said so in its counter, are not the file's
	 * fault. */
	uint64_t unexplained = t.c.pages_missing > t.c.card_pages_dropped
				   ? t.c.pages_missing - t.c.card_pages_dropped
				   : 0;
	if (!o->json)
		printf("pages       %llu checked, %llu corrupt, %llu dropped by the card (counted "
		       "there), %llu missing otherwise\n",
		       (unsigned long long)t.c.pages, (unsigned long long)t.c.corrupt_pages,
		       (unsigned long long)t.c.card_pages_dropped, (unsigned long long)unexplained);
	return t.c.corrupt_pages + unexplained + t.c.out_of_order;
}

static int file_verify(const char *path, const struct ctl_file_opts *f, bool json)
{
	struct verify_out o = {.path = path, .json = json};
	struct rdo_file_verify_cb cb = {.problem = on_problem, .gap = on_gap, .arg = &o};
	if (f->pages) {
		struct rdo_verify_opts vo;
		rdo_verify_opts_init(&vo);
		vo.check_payload = true;
		vo.report = on_page_problem;
		vo.arg = (void *)path;
		vo.silent_ns = UINT64_MAX;
		if (!(o.pages = rdo_verify_create(&vo))) {
			fprintf(stderr, "readoutctl: out of memory\n");
			return CTL_EXIT_BAD_FILE;
		}
		cb.record = on_record;
	}
	struct rdo_file_verify_report rep;
	int rc = rdo_file_verify(path, &rep, &cb);
	if (json)
		json_verify(&o, &rep, rc == 0);
	else if (rep.size)
		print_verify(path, &rep, rc == 0);
	if (rep.size && !rep.closed)
		fprintf(stderr, "readoutctl: %s: not closed (run `readoutctl file recover %s`)\n",
			path, path);
	for (size_t i = 0; i < o.nproblems; i++)
		free(o.problems[i]);
	if (o.pages && pages_verdict(&o) != 0)
		rc = -EBADMSG;
	rdo_verify_destroy(&o.pages);
	return rc ? CTL_EXIT_BAD_FILE : 0;
}

static int file_cat(const char *path, const struct ctl_file_opts *f)
{
	char err[RDO_FILE_ERR_MAX];
	struct rdo_file_record rec;
	struct rdo_file_reader *r = rdo_file_reader_open(path, err, sizeof(err));
	if (!r)
		return file_problem(path, err);
	int rc;
	while ((rc = rdo_file_reader_next(r, &rec, err, sizeof(err))) == 1) {
		if (f->has_link && rec.h.link != f->link)
			continue;
		if (fwrite(rec.payload, 1, rec.h.size, stdout) != rec.h.size)
			break;
	}
	const char *why;
	if (fflush(stdout) || ferror(stdout)) {
		fprintf(stderr, "readoutctl: writing %s to stdout: %s\n", path, strerror(errno));
		rc = -EIO;
	} else if (rc < 0) {
		fprintf(stderr,
			"readoutctl: %s: %s; the payloads before it were written (`readoutctl file "
			"verify %s` lists every problem)\n",
			path, err, path);
	} else if (!rdo_file_reader_trailer(r, &why)) {
		fprintf(stderr, "readoutctl: %s: %s (`readoutctl file recover %s` closes it)\n",
			path, why, path);
	}
	rdo_file_reader_close(&r);
	return rc < 0 ? CTL_EXIT_BAD_FILE : 0;
}

static int file_recover(const char *path, bool json)
{
	char err[RDO_FILE_ERR_MAX], b[32];
	struct rdo_file_recover_report rep;
	int rc = rdo_file_recover(path, &rep, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "readoutctl: %s: cannot recover: %s\n", path, err);
		return CTL_EXIT_BAD_FILE;
	}
	if (json) {
		struct rdo_json j;
		rdo_json_init(&j, stdout);
		rdo_json_open(&j, NULL, '{');
		rdo_json_str(&j, "file", path);
		rdo_json_bool(&j, "was_closed", rep.was_closed);
		rdo_json_u64(&j, "records", rep.records);
		rdo_json_u64(&j, "payload_bytes", rep.payload_bytes);
		rdo_json_u64(&j, "end", rep.end);
		rdo_json_u64(&j, "cut", rep.cut);
		rdo_json_u64(&j, "size", rep.size);
		rdo_json_str(&j, "stopped", rep.stopped);
		rdo_json_close(&j, '}');
	} else if (rep.was_closed) {
		printf("%s: already closed (%llu record%s, %s of payload): nothing changed\n", path,
		       (unsigned long long)rep.records, plural(rep.records),
		       ctl_bytes(b, (double)rep.payload_bytes));
	} else {
		printf("kept %llu record%s (%s), cut %llu bytes after offset %llu\n",
		       (unsigned long long)rep.records, plural(rep.records),
		       ctl_bytes(b, (double)rep.payload_bytes), (unsigned long long)rep.cut,
		       (unsigned long long)rep.end);
		if (rep.stopped[0])
			printf("the first record cut: %s\n", rep.stopped);
		printf("closed %s: index and trailer written, %llu bytes now\n", path,
		       (unsigned long long)rep.size);
	}
	return 0;
}

/* `file SUB FILE`: one argument after the command's words. */
static const char *file_arg(const struct ctl *c)
{
	if (c->nargs != 1) {
		rdo_cli_usage_error("file: expected info, verify, cat or recover, then FILE");
		return NULL;
	}
	return c->args[0];
}

int ctl_file_info(struct ctl *c)
{
	const char *path = file_arg(c);
	return path ? file_info(path, c->cli.json) : RDO_EXIT_USAGE;
}

int ctl_file_verify(struct ctl *c)
{
	const char *path = file_arg(c);
	return path ? file_verify(path, &c->file, c->cli.json) : RDO_EXIT_USAGE;
}

int ctl_file_cat(struct ctl *c)
{
	const char *path = file_arg(c);
	if (!path)
		return RDO_EXIT_USAGE;
	if (c->cli.json)
		return rdo_cli_usage_error("--json: file cat writes the payloads as they are");
	return file_cat(path, &c->file);
}

int ctl_file_recover(struct ctl *c)
{
	const char *path = file_arg(c);
	return path ? file_recover(path, c->cli.json) : RDO_EXIT_USAGE;
}
