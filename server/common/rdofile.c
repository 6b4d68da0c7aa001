#include "common/rdofile.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/util.h"

#define CRC_OF(p, type) rdo_crc32c(0, (p), offsetof(type, crc))

struct rdo_file_reader {
	int fd;
	uint64_t size;
	uint64_t end;	 /* where the records end: the index of a closed file, else its end */
	uint64_t offset; /* of the next record */
	uint64_t index;	 /* its number */
	bool closed;	 /* `trailer` checked */
	bool trailer_damaged;
	char why[RDO_FILE_ERR_MAX]; /* why not closed */
	struct rdo_file_header header;
	struct rdo_file_trailer trailer;
	unsigned char *buf; /* the last payload */
	size_t cap;
};

/* Put a message in `err` (when there is one) and return `rc`. */
__attribute__((format(printf, 4, 5))) static int say(int rc, char *err, size_t errlen,
						     const char *fmt, ...)
{
	if (err && errlen) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return rc;
}

/* 8 bytes as a C string literal, as `head -c 8` would show them: "\x7fELF\x02...". */
static const char *quoted(char buf[40], const char *magic)
{
	char *o = buf;
	*o++ = '"';
	for (int i = 0; i < 8; i++) {
		unsigned char c = (unsigned char)magic[i];
		if (c == '\n')
			o += sprintf(o, "\\n");
		else if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\')
			*o++ = (char)c;
		else
			o += sprintf(o, "\\x%02x", c);
	}
	*o++ = '"';
	*o = '\0';
	return buf;
}

void rdo_file_header_seal(struct rdo_file_header *h)
{
	memcpy(h->magic, RDO_FILE_MAGIC, sizeof(h->magic));
	h->version = RDO_FILE_VERSION;
	h->header_size = sizeof(*h);
	h->align = RDO_FILE_ALIGN;
	h->crc = CRC_OF(h, struct rdo_file_header);
}

void rdo_record_header_seal(struct rdo_record_header *h)
{
	h->magic = RDO_RECORD_MAGIC;
	h->header_size = sizeof(*h);
	h->crc = CRC_OF(h, struct rdo_record_header);
}

void rdo_file_trailer_seal(struct rdo_file_trailer *t)
{
	memcpy(t->magic, RDO_TRAILER_MAGIC, sizeof(t->magic));
	t->version = RDO_FILE_VERSION;
	t->trailer_size = sizeof(*t);
	t->crc = CRC_OF(t, struct rdo_file_trailer);
}

static int crc_mismatch(const char *what, uint32_t stored, uint32_t computed, char *err,
			size_t errlen)
{
	return say(-EBADMSG, err, errlen, "%s CRC mismatch: stored 0x%08x, computed 0x%08x", what,
		   stored, computed);
}

/* The header or the trailer: what the two have in common. */
struct versioned {
	const char *name;    /* "header" */
	const char *what;    /* "a readoutd data file" */
	const char *magic;   /* RDO_FILE_MAGIC */
	const char *version; /* what "format version" follows: "" for the file's own */
};

/*
 * Magic, then version, then CRC: a newer format may change everything after
 * the version, the CRC's span too.
 */
static int check_versioned(const struct versioned *k, const char *magic, uint32_t version,
			   uint32_t stored, uint32_t computed, char *err, size_t errlen)
{
	char q[40], want[40];
	if (memcmp(magic, k->magic, 8) != 0)
		return say(-EBADMSG, err, errlen, "not %s (magic %s, expected %s)", k->what,
			   quoted(q, magic), quoted(want, k->magic));
	if (version != RDO_FILE_VERSION)
		return say(-EBADMSG, err, errlen, "%sformat version %u, this readoutctl reads %u",
			   k->version, version, RDO_FILE_VERSION);
	if (stored != computed)
		return crc_mismatch(k->name, stored, computed, err, errlen);
	return 0;
}

/* The name of a string field without its NUL, or NULL: printing them must stay in bounds. */
static const char *unterminated(const struct rdo_file_header *h)
{
	const struct {
		const char *name, *s;
		size_t len;
	} f[] = {
	    {"card", h->card, sizeof(h->card)},
	    {"backend", h->backend, sizeof(h->backend)},
	    {"address", h->address, sizeof(h->address)},
	    {"map_name", h->map_name, sizeof(h->map_name)},
	    {"host", h->host, sizeof(h->host)},
	    {"writer", h->writer, sizeof(h->writer)},
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(f); i++)
		if (!memchr(f[i].s, '\0', f[i].len))
			return f[i].name;
	return NULL;
}

int rdo_file_header_check(const struct rdo_file_header *h, char *err, size_t errlen)
{
	static const struct versioned k = {"header", "a readoutd data file", RDO_FILE_MAGIC, ""};
	int rc = check_versioned(&k, h->magic, h->version, h->crc,
				 CRC_OF(h, struct rdo_file_header), err, errlen);
	if (rc)
		return rc;
	if (h->header_size != sizeof(*h) || h->align != RDO_FILE_ALIGN)
		return say(-EBADMSG, err, errlen,
			   "header size %u and alignment %u, version %u has %zu and %u",
			   h->header_size, h->align, RDO_FILE_VERSION, sizeof(*h), RDO_FILE_ALIGN);
	const char *field = unterminated(h);
	if (field)
		return say(-EBADMSG, err, errlen, "header field %s has no terminating NUL", field);
	return 0;
}

int rdo_record_header_check(const struct rdo_record_header *h, char *err, size_t errlen)
{
	static const struct rdo_record_header zeros;
	if (h->magic != RDO_RECORD_MAGIC && memcmp(h, &zeros, sizeof(zeros)) == 0)
		return say(-EBADMSG, err, errlen,
			   "zeros where a record header should be (space the writer reserved "
			   "and never filled)");
	if (h->magic != RDO_RECORD_MAGIC)
		return say(-EBADMSG, err, errlen,
			   "not a record header (magic 0x%08x, expected 0x%08x \"RDOR\")", h->magic,
			   RDO_RECORD_MAGIC);
	uint32_t crc = CRC_OF(h, struct rdo_record_header);
	if (crc != h->crc)
		return crc_mismatch("record header", h->crc, crc, err, errlen);
	if (h->header_size != sizeof(*h))
		return say(-EBADMSG, err, errlen, "record header size %u, version %u has %zu",
			   h->header_size, RDO_FILE_VERSION, sizeof(*h));
	return 0;
}

int rdo_file_trailer_check(const struct rdo_file_trailer *t, char *err, size_t errlen)
{
	static const struct versioned k = {"trailer", "a trailer", RDO_TRAILER_MAGIC, "trailer "};
	int rc = check_versioned(&k, t->magic, t->version, t->crc,
				 CRC_OF(t, struct rdo_file_trailer), err, errlen);
	if (rc)
		return rc;
	if (t->trailer_size != sizeof(*t) || t->links > RDO_FILE_MAX_LINKS)
		return say(-EBADMSG, err, errlen,
			   "trailer size %u and %u links, version %u has %zu and at most %u",
			   t->trailer_size, t->links, RDO_FILE_VERSION, sizeof(*t),
			   RDO_FILE_MAX_LINKS);
	return 0;
}

/*
 * `last_sequence` is the highest seen, and only a step forward counts as
 * missing: a repeated or earlier sequence changes neither.
 */
void rdo_file_totals_add(struct rdo_file_trailer *t, const struct rdo_record_header *h)
{
	t->records++;
	t->payload_bytes += h->size;
	if (h->link >= RDO_FILE_MAX_LINKS)
		return;
	if (h->link >= t->links)
		t->links = h->link + 1;
	struct rdo_link_totals *l = &t->link[h->link];
	if (l->records == 0) {
		l->first_sequence = l->last_sequence = h->sequence;
	} else if (h->sequence > l->last_sequence) {
		l->missing += h->sequence - l->last_sequence - 1;
		l->last_sequence = h->sequence;
	}
	l->records++;
}

/* pwrite or pread all of it: 0, -ENODATA when a read meets the end of the file, or -errno. */
static int transfer(int fd, bool writing, void *buf, uint64_t len, uint64_t off)
{
	unsigned char *p = buf;
	while (len) {
		ssize_t n =
		    writing ? pwrite(fd, p, len, (off_t)off) : pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : writing ? -EIO : -ENODATA;
		p += n;
		off += (uint64_t)n;
		len -= (uint64_t)n;
	}
	return 0;
}

static int read_at(int fd, void *buf, uint64_t len, uint64_t off)
{
	return transfer(fd, false, buf, len, off);
}

/* One write of whole aligned blocks from aligned memory: what O_DIRECT needs. */
int rdo_file_write_footer(int fd, uint64_t offset, void *index, uint64_t records,
			  struct rdo_file_trailer *t)
{
	if (offset % RDO_FILE_ALIGN || (uintptr_t)index % RDO_FILE_ALIGN)
		return -EINVAL;
	unsigned char *p = index;
	uint64_t ilen = records * sizeof(struct rdo_index_entry);
	uint64_t len = rdo_file_footer_len(records);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	t->index_offset = offset;
	t->index_crc = rdo_crc32c(0, p, ilen);
	t->end_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	rdo_file_trailer_seal(t);
	memset(p + ilen, 0, len - ilen);
	memcpy(p + len - RDO_FILE_ALIGN, t, sizeof(*t));
	int rc = transfer(fd, true, p, len, offset);
	if (rc)
		return rc;
	/* Drops the space the writer reserved beyond the footer. */
	if (ftruncate(fd, (off_t)(offset + len)) || fdatasync(fd))
		return -errno;
	return 0;
}

static const char *const name_keys[] = {"run", "card", "seq", "host", "date", "time"};

/* The value of template key `k` (an index into name_keys). */
static const char *name_value(char *buf, size_t k, uint64_t run, const char *card, uint64_t seq,
			      const char *host, const struct tm *tm)
{
	switch (k) {
	case 0:
		snprintf(buf, 32, "%06" PRIu64, run);
		return buf;
	case 1:
		return card;
	case 2:
		snprintf(buf, 32, "%04" PRIu64, seq);
		return buf;
	case 3:
		return host;
	case 4:
		strftime(buf, 32, "%Y%m%d", tm);
		return buf;
	default:
		strftime(buf, 32, "%H%M%S", tm);
		return buf;
	}
}

int rdo_file_name(char *buf, size_t len, const char *tmpl, uint64_t run, const char *card,
		  uint64_t seq, const char *host, uint64_t start_ns, char *err, size_t errlen)
{
	time_t secs = (time_t)(start_ns / 1000000000u);
	struct tm tm;
	gmtime_r(&secs, &tm);
	size_t n = 0;
	if (len == 0)
		return say(-ENAMETOOLONG, err, errlen, "no room for a file name");
	buf[0] = '\0';
	for (const char *p = tmpl; *p;) {
		char num[32], one[2] = {*p, '\0'};
		const char *v = one;
		size_t vlen = 1;
		if (*p == '{') {
			const char *close = strchr(p, '}');
			if (!close)
				return say(-EINVAL, err, errlen,
					   "file name template \"%s\": a '{' without its '}'",
					   tmpl);
			size_t klen = (size_t)(close - p - 1), k = 0;
			while (k < RDO_ARRAY_SIZE(name_keys) &&
			       (strlen(name_keys[k]) != klen || strncmp(p + 1, name_keys[k], klen)))
				k++;
			if (k == RDO_ARRAY_SIZE(name_keys))
				return say(
				    -EINVAL, err, errlen,
				    "file name template \"%s\": unknown key %.*s (known: {run} "
				    "{card} {seq} {host} {date} {time})",
				    tmpl, (int)klen + 2, p);
			v = name_value(num, k, run, card, seq, host, &tm);
			vlen = strlen(v);
			p = close + 1;
		} else {
			p++;
		}
		if (vlen >= len - n || n + vlen > NAME_MAX)
			return say(-ENAMETOOLONG, err, errlen,
				   "a file name longer than %zu bytes from template \"%s\"",
				   len - 1 < NAME_MAX ? len - 1 : (size_t)NAME_MAX, tmpl);
		memcpy(buf + n, v, vlen);
		n += vlen;
		buf[n] = '\0';
	}
	if (n == 0 || strcmp(buf, ".") == 0 || strcmp(buf, "..") == 0 || strchr(buf, '/'))
		return say(-EINVAL, err, errlen,
			   "file name template \"%s\" makes \"%s\": a file name needs at least "
			   "one character and no '/' (from the template, the card or the host "
			   "name): files stay in the writer's directory",
			   tmpl, n ? buf : "");
	return 0;
}

/* The header of a file that has at least one byte. */
static int read_header(struct rdo_file_reader *r, char *err, size_t errlen)
{
	char msg[RDO_FILE_ERR_MAX];
	uint64_t n = r->size < sizeof(r->header) ? r->size : sizeof(r->header);
	int rc = read_at(r->fd, &r->header, n, 0);
	if (rc)
		return say(rc == -ENODATA ? -EBADMSG : rc, err, errlen,
			   "offset 0: cannot read the header: %s", strerror(-rc));
	if (memcmp(r->header.magic, RDO_FILE_MAGIC, sizeof(r->header.magic)) == 0 &&
	    r->size < RDO_FILE_ALIGN)
		return say(-EBADMSG, err, errlen,
			   "offset %" PRIu64 ": the file ends inside its %u-byte header block "
			   "(cut short)",
			   r->size, RDO_FILE_ALIGN);
	if (rdo_file_header_check(&r->header, msg, sizeof(msg)))
		return say(-EBADMSG, err, errlen, "offset 0: %s", msg);
	return 0;
}

/* Does the file end in a valid trailer? Sets `closed`, or `why` not. */
static void find_trailer(struct rdo_file_reader *r)
{
	uint64_t at = r->size - RDO_FILE_ALIGN;
	char msg[RDO_FILE_ERR_MAX - 32];
	struct rdo_file_trailer *t = &r->trailer;
	r->end = r->size;
	if (r->size % RDO_FILE_ALIGN || r->size < 2 * RDO_FILE_ALIGN ||
	    read_at(r->fd, t, sizeof(*t), at) ||
	    memcmp(t->magic, RDO_TRAILER_MAGIC, sizeof(t->magic)) != 0) {
		snprintf(r->why, sizeof(r->why), "not closed");
		return;
	}
	r->trailer_damaged = true;
	if (rdo_file_trailer_check(t, msg, sizeof(msg))) {
		snprintf(r->why, sizeof(r->why), "offset %" PRIu64 ": %s", at, msg);
		return;
	}
	if (t->index_offset % RDO_FILE_ALIGN || t->index_offset < RDO_FILE_ALIGN ||
	    t->records > r->size / sizeof(struct rdo_index_entry) ||
	    t->index_offset + rdo_file_footer_len(t->records) != r->size) {
		snprintf(r->why, sizeof(r->why),
			 "offset %" PRIu64 ": trailer: an index of %" PRIu64
			 " records at offset %" PRIu64 " does not end where the trailer starts",
			 at, t->records, t->index_offset);
		return;
	}
	r->trailer_damaged = false;
	r->closed = true;
	r->end = t->index_offset;
}

struct rdo_file_reader *rdo_file_reader_open(const char *path, char *err, size_t errlen)
{
	struct stat st;
	int rc;
	struct rdo_file_reader *r = calloc(1, sizeof(*r));
	if (!r) {
		rc = say(-ENOMEM, err, errlen, "out of memory");
		goto err;
	}
	r->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (r->fd < 0) {
		rc = say(-errno, err, errlen, "cannot open: %s", strerror(errno));
		goto err_free;
	}
	if (fstat(r->fd, &st)) {
		rc = say(-errno, err, errlen, "cannot stat: %s", strerror(errno));
		goto err_close;
	}
	if (!S_ISREG(st.st_mode)) {
		rc =
		    say(S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL, err, errlen, "%s, not a data file",
			S_ISDIR(st.st_mode) ? "a directory" : "a device, pipe or socket");
		goto err_close;
	}
	r->size = (uint64_t)st.st_size;
	if (r->size == 0) {
		rc = say(-EBADMSG, err, errlen,
			 "offset 0: empty file (its writer died before writing the header?)");
		goto err_close;
	}
	if ((rc = read_header(r, err, errlen)))
		goto err_close;
	find_trailer(r);
	r->offset = RDO_FILE_ALIGN;
	return r;

err_close:
	close(r->fd);
err_free:
	free(r);
err:
	errno = -rc;
	return NULL;
}

void rdo_file_reader_close(struct rdo_file_reader **rp)
{
	struct rdo_file_reader *r = *rp;
	if (!r)
		return;
	close(r->fd);
	free(r->buf);
	free(r);
	*rp = NULL;
}

const struct rdo_file_header *rdo_file_reader_header(const struct rdo_file_reader *r)
{
	return &r->header;
}

uint64_t rdo_file_reader_size(const struct rdo_file_reader *r)
{
	return r->size;
}

const struct rdo_file_trailer *rdo_file_reader_trailer(const struct rdo_file_reader *r,
						       const char **why)
{
	if (why)
		*why = r->closed ? "" : r->why;
	return r->closed ? &r->trailer : NULL;
}

/* "offset N: record K: " and the problem: -EBADMSG. */
__attribute__((format(printf, 5, 6))) static int
bad_record(const struct rdo_file_reader *r, int rc, char *err, size_t errlen, const char *fmt, ...)
{
	char msg[RDO_FILE_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return say(rc, err, errlen, "offset %" PRIu64 ": record %" PRIu64 ": %s", r->offset,
		   r->index, msg);
}

int rdo_file_reader_next(struct rdo_file_reader *r, struct rdo_file_record *rec, char *err,
			 size_t errlen)
{
	char msg[RDO_FILE_ERR_MAX];
	struct rdo_record_header h;
	const char *end_name = r->closed ? "the index" : "the end of the file";
	if (r->offset == r->end)
		return 0;
	if (r->end - r->offset < RDO_FILE_ALIGN)
		return bad_record(r, -EBADMSG, err, errlen,
				  "%s is %" PRIu64 " bytes into the record's %u-byte header block "
				  "(cut short)",
				  end_name, r->end - r->offset, RDO_FILE_ALIGN);
	int rc = read_at(r->fd, &h, sizeof(h), r->offset);
	if (rc)
		return bad_record(r, rc == -ENODATA ? -EBADMSG : rc, err, errlen,
				  "cannot read the header: %s", strerror(-rc));
	if (rdo_record_header_check(&h, msg, sizeof(msg)))
		return bad_record(r, -EBADMSG, err, errlen, "%s", msg);
	if (h.index != r->index)
		return bad_record(r, -EBADMSG, err, errlen,
				  "its index field says %" PRIu64 " (a record from another file?)",
				  h.index);
	if (r->header.superpage_size && h.size > r->header.superpage_size)
		return bad_record(r, -EBADMSG, err, errlen,
				  "payload of %u bytes, more than the file's superpage size %u",
				  h.size, r->header.superpage_size);
	if (!rdo_range_fits(r->end, r->offset, rdo_file_record_len(h.size)))
		return bad_record(r, -EBADMSG, err, errlen,
				  "its %u-byte payload runs past %s at offset %" PRIu64
				  " (cut short)",
				  h.size, end_name, r->end);
	if (h.size > r->cap) {
		unsigned char *buf = realloc(r->buf, h.size);
		if (!buf)
			return bad_record(r, -ENOMEM, err, errlen,
					  "no memory for its %u-byte payload", h.size);
		r->buf = buf;
		r->cap = h.size;
	}
	rc = read_at(r->fd, r->buf, h.size, r->offset + RDO_FILE_ALIGN);
	if (rc)
		return bad_record(r, rc == -ENODATA ? -EBADMSG : rc, err, errlen,
				  "cannot read the payload: %s", strerror(-rc));
	uint32_t crc = rdo_crc32c(0, r->buf, h.size);
	if (crc != h.payload_crc)
		rc = bad_record(r, -EBADMSG, err, errlen,
				"payload CRC mismatch: stored 0x%08x, computed 0x%08x (link %u, "
				"sequence %" PRIu64 ", %u bytes)",
				h.payload_crc, crc, h.link, h.sequence, h.size);
	*rec = (struct rdo_file_record){
	    .h = h, .offset = r->offset, .payload = r->buf ? (const void *)r->buf : ""};
	r->offset += rdo_file_record_len(h.size);
	r->index++;
	return rc ? rc : 1;
}

struct verify {
	struct rdo_file_verify_report *rep;
	const struct rdo_file_verify_cb *cb;
	struct rdo_file_reader *r;
	struct rdo_index_entry *index; /* of a closed file, when it checks */
};

__attribute__((format(printf, 2, 3))) static void problem(struct verify *v, const char *fmt, ...)
{
	char line[2 * RDO_FILE_ERR_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	v->rep->problems++;
	if (v->cb && v->cb->problem)
		v->cb->problem(v->cb->arg, line);
}

/* The index of a closed file, when its CRC checks. */
static void load_index(struct verify *v)
{
	const struct rdo_file_trailer *t = &v->r->trailer;
	uint64_t len = t->records * sizeof(struct rdo_index_entry); /* less than the file */
	v->index = malloc(len ? len : 1);
	int rc = v->index ? read_at(v->r->fd, v->index, len, t->index_offset) : -ENOMEM;
	uint32_t crc = rc ? 0 : rdo_crc32c(0, v->index, len);
	if (rc)
		problem(v, "offset %" PRIu64 ": cannot read the index: %s", t->index_offset,
			strerror(-rc));
	else if (crc != t->index_crc)
		problem(v, "offset %" PRIu64 ": index CRC mismatch: stored 0x%08x, computed 0x%08x",
			t->index_offset, t->index_crc, crc);
	if (rc || crc != t->index_crc) {
		free(v->index);
		v->index = NULL;
	}
}

/* Count a record whose header checked: gaps, order, run, index entry, totals. */
static void count(struct verify *v, const struct rdo_file_record *rec)
{
	const struct rdo_record_header *h = &rec->h;
	struct rdo_file_trailer *found = &v->rep->found;
	/* Links past the trailer's are counted, not followed (rdo_file_totals_add). */
	const struct rdo_link_totals *l =
	    h->link < RDO_FILE_MAX_LINKS ? &found->link[h->link] : NULL;
	bool seen = l && l->records;
	if (seen && h->sequence > l->last_sequence && h->sequence - l->last_sequence > 1) {
		v->rep->gaps++;
		if (v->cb && v->cb->gap)
			v->cb->gap(v->cb->arg, h->link, l->last_sequence + 1, h->sequence - 1);
	} else if (seen && h->sequence <= l->last_sequence) {
		problem(v,
			"offset %" PRIu64 ": record %" PRIu64 ": link %u: sequence %" PRIu64
			" after %" PRIu64 " (repeated or out of order)",
			rec->offset, h->index, h->link, h->sequence, l->last_sequence);
	}
	if (h->run != v->r->header.run)
		problem(v,
			"offset %" PRIu64 ": record %" PRIu64 ": run %" PRIu64
			", the file's is %" PRIu64,
			rec->offset, h->index, h->run, v->r->header.run);
	const struct rdo_index_entry *e =
	    v->index && h->index < v->r->trailer.records ? &v->index[h->index] : NULL;
	if (e && (e->offset != rec->offset || e->sequence != h->sequence ||
		  e->timestamp_ns != h->timestamp_ns || e->link != h->link || e->size != h->size))
		problem(v,
			"offset %" PRIu64 ": record %" PRIu64
			": its index entry says offset %" PRIu64 ", link %u, sequence %" PRIu64
			", %u bytes; the record: link %u, "
			"sequence %" PRIu64 ", %u bytes",
			rec->offset, h->index, e->offset, e->link, e->sequence, e->size, h->link,
			h->sequence, h->size);
	rdo_file_totals_add(found, h);
}

/*
 * Past a record whose header is bad, only the index of a closed file says
 * where the next one starts. Only forward, so the scan ends.
 */
static bool skip_by_index(struct verify *v)
{
	struct rdo_file_reader *r = v->r;
	if (!v->index || r->index + 1 >= r->trailer.records)
		return false;
	uint64_t next = v->index[r->index + 1].offset;
	if (next <= r->offset || next % RDO_FILE_ALIGN || next >= r->end)
		return false;
	r->offset = next;
	r->index++;
	return true;
}

/* Every record; true when the scan got to the end of them. */
static bool scan(struct verify *v)
{
	char err[RDO_FILE_ERR_MAX];
	struct rdo_file_record rec;
	for (;;) {
		uint64_t at = v->r->offset;
		int rc = rdo_file_reader_next(v->r, &rec, err, sizeof(err));
		if (rc == 0)
			return true;
		if (rc < 0)
			problem(v, "%s", err);
		else if (v->cb && v->cb->record)
			v->cb->record(v->cb->arg, &v->r->header, &rec);
		if (rc > 0 || v->r->offset != at)
			count(v, &rec);
		else if (!skip_by_index(v))
			return false;
	}
}

static void compare(struct verify *v, const char *what, uint64_t trailer, uint64_t found)
{
	if (trailer != found)
		problem(v, "trailer: %s %" PRIu64 ", the records say %" PRIu64, what, trailer,
			found);
}

static void compare_totals(struct verify *v)
{
	const struct rdo_file_trailer *t = &v->rep->trailer, *f = &v->rep->found;
	char what[64];
	compare(v, "records", t->records, f->records);
	compare(v, "payload bytes", t->payload_bytes, f->payload_bytes);
	compare(v, "links", t->links, f->links);
	for (uint32_t i = 0; i < RDO_FILE_MAX_LINKS; i++) {
		const struct rdo_link_totals *a = &t->link[i], *b = &f->link[i];
		snprintf(what, sizeof(what), "link %u records", i);
		compare(v, what, a->records, b->records);
		if (!a->records || !b->records)
			continue;
		snprintf(what, sizeof(what), "link %u first sequence", i);
		compare(v, what, a->first_sequence, b->first_sequence);
		snprintf(what, sizeof(what), "link %u last sequence", i);
		compare(v, what, a->last_sequence, b->last_sequence);
		snprintf(what, sizeof(what), "link %u missing", i);
		compare(v, what, a->missing, b->missing);
	}
}

int rdo_file_verify(const char *path, struct rdo_file_verify_report *rep,
		    const struct rdo_file_verify_cb *cb)
{
	char err[RDO_FILE_ERR_MAX];
	struct verify v = {.rep = rep, .cb = cb};
	memset(rep, 0, sizeof(*rep));
	v.r = rdo_file_reader_open(path, err, sizeof(err));
	if (!v.r) {
		int rc = -errno;
		problem(&v, "%s", err);
		return rc;
	}
	rep->size = v.r->size;
	rep->closed = v.r->closed;
	if (v.r->closed) {
		rep->trailer = v.r->trailer;
		load_index(&v);
	} else if (v.r->trailer_damaged) {
		problem(&v, "%s", v.r->why);
	}
	if (scan(&v) && rep->closed)
		compare_totals(&v);
	free(v.index);
	rdo_file_reader_close(&v.r);
	return rep->problems || !rep->closed ? -EBADMSG : 0;
}

/*
 * The records up to the first bad one: their index entries (caller frees)
 * and totals, where they end, and why the scan stopped. 0, or -errno when
 * reading failed: that says nothing about the records, so nothing is cut.
 */
static int scan_good(struct rdo_file_reader *r, struct rdo_index_entry **index,
		     struct rdo_file_trailer *t, uint64_t *end, char *stopped, size_t len)
{
	struct rdo_file_record rec;
	size_t cap = 0;
	int rc;
	*index = NULL;
	*end = RDO_FILE_ALIGN;
	while ((rc = rdo_file_reader_next(r, &rec, stopped, len)) == 1) {
		if (t->records == cap) {
			cap = cap ? 2 * cap : 1024;
			struct rdo_index_entry *grown = realloc(*index, cap * sizeof(**index));
			if (!grown)
				return -ENOMEM;
			*index = grown;
		}
		(*index)[t->records] = (struct rdo_index_entry){
		    .offset = rec.offset,
		    .sequence = rec.h.sequence,
		    .timestamp_ns = rec.h.timestamp_ns,
		    .link = rec.h.link,
		    .size = rec.h.size,
		};
		rdo_file_totals_add(t, &rec.h);
		*end = rec.offset + rdo_file_record_len(rec.h.size);
	}
	if (rc == 0)
		stopped[0] = '\0';
	return rc == 0 || rc == -EBADMSG ? 0 : rc;
}

int rdo_file_recover(const char *path, struct rdo_file_recover_report *rep, char *err,
		     size_t errlen)
{
	struct rdo_file_trailer t = {0};
	struct rdo_file_reader *r = NULL;
	struct rdo_index_entry *index = NULL;
	void *footer = NULL;
	uint64_t end;
	int rc;
	memset(rep, 0, sizeof(*rep));
	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return say(-errno, err, errlen, "cannot open for writing: %s", strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		rc = say(-errno, err, errlen, "cannot lock: %s",
			 errno == EWOULDBLOCK ? "another process holds it (a writer still writing?)"
					      : strerror(errno));
		goto out_fd;
	}
	r = rdo_file_reader_open(path, err, errlen);
	if (!r) {
		rc = -errno;
		goto out_fd;
	}
	if (r->closed) {
		rep->was_closed = true;
		rep->records = r->trailer.records;
		rep->payload_bytes = r->trailer.payload_bytes;
		rep->end = r->trailer.index_offset;
		rep->size = r->size;
		rc = 0;
		goto out_reader;
	}
	rc = scan_good(r, &index, &t, &end, rep->stopped, sizeof(rep->stopped));
	if (rc) {
		say(rc, err, errlen, "%s", rc == -ENOMEM ? "out of memory" : rep->stopped);
		goto out_index;
	}
	uint64_t len = rdo_file_footer_len(t.records);
	if (posix_memalign(&footer, RDO_FILE_ALIGN, len)) {
		rc = say(-ENOMEM, err, errlen, "out of memory for an index of %" PRIu64 " records",
			 t.records);
		goto out_index;
	}
	if (t.records)
		memcpy(footer, index, t.records * sizeof(*index));
	t.flags |= RDO_TRAILER_RECOVERED;
	rc = rdo_file_write_footer(fd, end, footer, t.records, &t);
	if (rc) {
		say(rc, err, errlen, "writing the index and trailer at offset %" PRIu64 ": %s", end,
		    strerror(-rc));
		goto out_footer;
	}
	rep->records = t.records;
	rep->payload_bytes = t.payload_bytes;
	rep->end = end;
	rep->cut = r->size > end ? r->size - end : 0;
	rep->size = end + len;
out_footer:
	free(footer);
out_index:
	free(index);
out_reader:
	rdo_file_reader_close(&r);
out_fd:
	close(fd);
	return rc;
}
