#include "common/writer.h"

#include <errno.h>
#include <fcntl.h>
#include <libaio.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/log.h"
#include "common/util.h"

#define MAX_PER_WRITE  256 /* records gathered into one write: two iovecs each */
#define MAX_DEPTH      64
#define RETRY_NS       1000000000ull
#define MAX_NAME_TRIES 10000

/* One write in flight or being gathered: consecutive records of the open file. */
struct batch {
	struct iocb cb;
	uint64_t off, len;
	unsigned n;
	struct rdo_record_header *hdr;	     /* MAX_PER_WRITE blocks of RDO_FILE_ALIGN, aligned */
	struct iovec iov[2 * MAX_PER_WRITE]; /* header blocks and payloads, in file order */
	struct iovec payload[MAX_PER_WRITE];
	void *cookie[MAX_PER_WRITE];
	uint32_t size[MAX_PER_WRITE];
};

struct rdo_writer {
	struct rdo_writer_opts o;
	struct rdo_file_header ident;
	rdo_writer_done_fn done;
	void *arg;
	io_context_t ctx;
	int efd;
	struct batch *batch; /* depth of them */
	unsigned *free_batch, nfree;
	struct batch *cur; /* gathering, not yet submitted */
	unsigned per_write;
	void *hdr_mem;
	/* The open file (fd >= 0): */
	int fd;
	char path[PATH_MAX];
	uint64_t run, seq; /* run of the open or last file; next file number in it */
	bool have_run;
	uint64_t off, alloc_end, opened_ns;
	bool prealloc;		       /* the file system takes fallocate */
	bool failed;		       /* a write of this file failed: no footer */
	struct rdo_file_header *fh;    /* one aligned block */
	struct rdo_index_entry *index; /* aligned, rdo_file_footer_len(index_cap) bytes */
	uint64_t nindex, index_cap;
	struct rdo_file_trailer trailer;
	uint64_t retry_ns; /* refusing records until then (disk full, error) */
	/* Read by rdo_writer_stats() from any thread: */
	_Atomic int state;
	_Atomic uint64_t files, records, bytes, errors;
	_Atomic unsigned in_flight;
	pthread_mutex_t lock; /* the two strings */
	char st_file[PATH_MAX];
	char st_error[256];
};

void rdo_writer_opts_init(struct rdo_writer_opts *o)
{
	memset(o, 0, sizeof(*o));
	rdo_strlcpy(o->directory, ".", sizeof(o->directory));
	rdo_strlcpy(o->name, "run{run}_{card}_{seq}.rdo", sizeof(o->name));
	o->block_size = 4u << 20;
	o->depth = 8;
	o->prealloc = 256u << 20;
	o->rotate_bytes = 2ull << 30;
	o->direct = true;
}

const char *rdo_writer_state_name(enum rdo_writer_state s)
{
	static const char *const names[] = {
	    [RDO_WRITER_IDLE] = "idle",
	    [RDO_WRITER_WRITING] = "writing",
	    [RDO_WRITER_DISK_FULL] = "disk_full",
	    [RDO_WRITER_ERROR] = "error",
	};
	return (unsigned)s < RDO_ARRAY_SIZE(names) ? names[s] : "unknown";
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void set_state(struct rdo_writer *w, enum rdo_writer_state s)
{
	atomic_store_explicit(&w->state, s, memory_order_relaxed); /* a level for stats */
}

static enum rdo_writer_state get_state(const struct rdo_writer *w)
{
	return atomic_load_explicit(&w->state, memory_order_relaxed); /* ours */
}

/* A failure: logged, counted, kept for status, and the writer refuses records for a while. */
__attribute__((format(printf, 3, 4))) static void
fail(struct rdo_writer *w, enum rdo_writer_state s, const char *fmt, ...)
{
	char msg[sizeof(w->st_error)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	w->retry_ns = rdo_now_ns() + RETRY_NS;
	if (get_state(w) == s && strcmp(msg, w->st_error) == 0)
		return; /* the same failure again, at a retry: said and counted once */
	rdo_err("writer: %s", msg);
	pthread_mutex_lock(&w->lock);
	rdo_strlcpy(w->st_error, msg, sizeof(w->st_error));
	pthread_mutex_unlock(&w->lock);
	atomic_fetch_add_explicit(&w->errors, 1, memory_order_relaxed); /* a counter */
	set_state(w, s);
}

/* Can files in `dir` be opened with O_DIRECT and written? 0, or -errno. */
static int probe_direct(const char *dir)
{
	char path[PATH_MAX];
	if (snprintf(path, sizeof(path), "%s/.readoutd-probe-XXXXXX", dir) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	int fd = mkostemp(path, O_DIRECT | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	unlink(path);
	void *block;
	int rc = posix_memalign(&block, RDO_FILE_ALIGN, RDO_FILE_ALIGN);
	if (rc) {
		close(fd);
		return -rc;
	}
	memset(block, 0, RDO_FILE_ALIGN);
	rc = pwrite(fd, block, RDO_FILE_ALIGN, 0) == (ssize_t)RDO_FILE_ALIGN ? 0 : -errno;
	free(block);
	close(fd);
	return rc;
}

static int check_opts(const struct rdo_writer_opts *o, uint32_t sp, bool sp_known, char *err,
		      size_t errlen)
{
	if (sp_known && (sp == 0 || sp % RDO_FILE_ALIGN)) {
		snprintf(err, errlen,
			 "superpages of %llu bytes cannot be written in place: the writer needs "
			 "them a multiple of %u bytes (set dma.superpage_size so)",
			 (unsigned long long)sp, RDO_FILE_ALIGN);
		return -EINVAL;
	}
	if (o->block_size < RDO_FILE_ALIGN || o->block_size % RDO_FILE_ALIGN) {
		snprintf(err, errlen,
			 "writer.block_size: %zu is not a positive multiple of %u: use e.g. 4MiB",
			 o->block_size, RDO_FILE_ALIGN);
		return -EINVAL;
	}
	if (o->depth < 1 || o->depth > MAX_DEPTH) {
		snprintf(err, errlen, "writer.depth: %u is not between 1 and %d", o->depth,
			 MAX_DEPTH);
		return -EINVAL;
	}
	uint64_t least = RDO_FILE_ALIGN + rdo_file_record_len(sp) + rdo_file_footer_len(1);
	if (sp_known && o->rotate_bytes < least) {
		snprintf(err, errlen,
			 "writer.rotate_size: %llu bytes do not hold one superpage's record "
			 "(%llu with the file's header and footer): raise it",
			 (unsigned long long)o->rotate_bytes, (unsigned long long)least);
		return -EINVAL;
	}
	if (!strstr(o->name, "{seq}")) {
		snprintf(err, errlen,
			 "writer.name \"%s\": has no {seq}, so a rotated file would take the "
			 "name of the one before: add {seq}",
			 o->name);
		return -EINVAL;
	}
	if (o->prealloc < RDO_FILE_ALIGN) {
		snprintf(err, errlen, "writer.prealloc: %zu is less than %u bytes", o->prealloc,
			 RDO_FILE_ALIGN);
		return -EINVAL;
	}
	return 0;
}

/* The directory exists, is writable, and takes O_DIRECT when asked. */
static int check_directory(const struct rdo_writer_opts *o, char *err, size_t errlen)
{
	struct stat st;
	bool exists = stat(o->directory, &st) == 0;
	if (!exists || !S_ISDIR(st.st_mode)) {
		snprintf(err, errlen,
			 "writer.directory %s: %s: create it, or point writer.directory at an "
			 "existing directory",
			 o->directory, exists ? "not a directory" : strerror(errno));
		return -ENOTDIR;
	}
	if (access(o->directory, W_OK | X_OK) != 0) {
		snprintf(err, errlen,
			 "writer.directory %s: not writable by this user (uid %u): give it write "
			 "access (chown, chmod) or point writer.directory elsewhere",
			 o->directory, (unsigned)geteuid());
		return -EACCES;
	}
	if (!o->direct)
		return 0;
	int rc = probe_direct(o->directory);
	if (rc == -EINVAL || rc == -EOPNOTSUPP) {
		snprintf(err, errlen,
			 "writer.directory %s: its file system does not support O_DIRECT: put it "
			 "on ext4 or xfs, or set writer.direct: false (buffered writes, slower)",
			 o->directory);
		return rc;
	}
	if (rc) {
		snprintf(err, errlen, "writer.directory %s: cannot write a test file there: %s",
			 o->directory, strerror(-rc));
		return rc;
	}
	return 0;
}

static unsigned records_per_write(const struct rdo_writer_opts *o, uint32_t superpage_size)
{
	/* Whole records until a write holds at least block_size bytes. */
	uint64_t len = rdo_file_record_len(superpage_size);
	uint64_t n = (o->block_size + len - 1) / len;
	return n > MAX_PER_WRITE ? MAX_PER_WRITE : (unsigned)n;
}

int rdo_writer_check(const struct rdo_writer_opts *o, uint32_t superpage_size, char *err,
		     size_t errlen)
{
	int rc = check_opts(o, superpage_size, superpage_size != 0, err, errlen);
	return rc ? rc : check_directory(o, err, errlen);
}

struct rdo_writer *rdo_writer_create(const struct rdo_writer_opts *o,
				     const struct rdo_file_header *ident, rdo_writer_done_fn done,
				     void *arg, char *err, size_t errlen)
{
	if (check_opts(o, ident->superpage_size, true, err, errlen) ||
	    check_directory(o, err, errlen))
		return NULL;
	struct rdo_writer *w = calloc(1, sizeof(*w));
	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->o = *o;
	w->ident = *ident;
	w->done = done;
	w->arg = arg;
	w->fd = -1;
	w->per_write = records_per_write(o, ident->superpage_size);
	w->index_cap = o->rotate_bytes / (2 * RDO_FILE_ALIGN) + 1;
	pthread_mutex_init(&w->lock, NULL);
	int rc = io_setup((int)o->depth, &w->ctx);
	if (rc) {
		snprintf(err, errlen, "cannot set up Linux AIO for %u writes: %s%s", o->depth,
			 strerror(-rc),
			 rc == -EAGAIN ? ": raise /proc/sys/fs/aio-max-nr or lower writer.depth"
				       : "");
		goto out_free;
	}
	w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	w->batch = calloc(o->depth, sizeof(*w->batch));
	w->free_batch = calloc(o->depth, sizeof(*w->free_batch));
	size_t hdr_len = (size_t)o->depth * w->per_write * RDO_FILE_ALIGN;
	if (w->efd < 0 || !w->batch || !w->free_batch ||
	    posix_memalign(&w->hdr_mem, RDO_FILE_ALIGN, hdr_len) ||
	    posix_memalign((void **)&w->fh, RDO_FILE_ALIGN, RDO_FILE_ALIGN) ||
	    posix_memalign((void **)&w->index, RDO_FILE_ALIGN, rdo_file_footer_len(w->index_cap))) {
		snprintf(err, errlen, "out of memory for the writer's buffers");
		goto out_bufs;
	}
	memset(w->hdr_mem, 0, hdr_len);
	for (unsigned i = 0; i < o->depth; i++) {
		w->batch[i].hdr =
		    (struct rdo_record_header *)((char *)w->hdr_mem +
						 (size_t)i * w->per_write * RDO_FILE_ALIGN);
		w->free_batch[w->nfree++] = i;
	}
	return w;

out_bufs:
	free(w->index);
	free(w->fh);
	free(w->hdr_mem);
	free(w->free_batch);
	free(w->batch);
	if (w->efd >= 0)
		close(w->efd);
	io_destroy(w->ctx);
out_free:
	pthread_mutex_destroy(&w->lock);
	free(w);
	return NULL;
}

/* The record header block `i` of batch `b`. */
static struct rdo_record_header *header_block(struct batch *b, unsigned i)
{
	return (struct rdo_record_header *)((char *)b->hdr + (size_t)i * RDO_FILE_ALIGN);
}

/* Writes submitted and not yet completed: every batch but the free ones and the one gathering. */
static unsigned writes_in_flight(const struct rdo_writer *w)
{
	return w->o.depth - w->nfree - (w->cur != NULL);
}

/* Hand the records of `b` back with `status` and free the batch. */
static void finish_batch(struct rdo_writer *w, struct batch *b, int status)
{
	uint64_t bytes = 0;
	for (unsigned i = 0; i < b->n; i++) {
		bytes += b->size[i];
		w->done(b->cookie[i], status, w->arg);
	}
	if (status == 0) {
		/* relaxed: counters */
		atomic_fetch_add_explicit(&w->records, b->n, memory_order_relaxed);
		atomic_fetch_add_explicit(&w->bytes, bytes, memory_order_relaxed);
	}
	atomic_fetch_sub_explicit(&w->in_flight, b->n, memory_order_relaxed); /* a level */
	b->n = 0;
	b->len = 0;
	w->free_batch[w->nfree++] = (unsigned)(b - w->batch);
}

static int submit(struct rdo_writer *w)
{
	struct batch *b = w->cur;
	if (!b)
		return 0;
	w->cur = NULL;
	unsigned niov = 0;
	for (unsigned i = 0; i < b->n; i++) {
		b->iov[niov++] = (struct iovec){header_block(b, i), RDO_FILE_ALIGN};
		if (b->payload[i].iov_len)
			b->iov[niov++] = b->payload[i];
	}
	io_prep_pwritev(&b->cb, w->fd, b->iov, (int)niov, (long long)b->off);
	io_set_eventfd(&b->cb, w->efd);
	b->cb.data = b;
	struct iocb *cbp = &b->cb;
	int rc = io_submit(w->ctx, 1, &cbp);
	if (rc != 1) {
		rc = rc < 0 ? rc : -EIO;
		w->failed = true;
		fail(w, RDO_WRITER_ERROR, "cannot submit a write of %llu bytes to %s: %s",
		     (unsigned long long)b->len, w->path, strerror(-rc));
		finish_batch(w, b, rc);
		return rc;
	}
	return 0;
}

int rdo_writer_flush(struct rdo_writer *w)
{
	return submit(w);
}

int rdo_writer_fd(const struct rdo_writer *w)
{
	return w->efd;
}

int rdo_writer_reap(struct rdo_writer *w, int timeout_ms)
{
	uint64_t v;
	if (read(w->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		rdo_warn("writer: reading its eventfd: %s", strerror(errno));
	if (!writes_in_flight(w))
		return 0;
	struct io_event ev[MAX_DEPTH];
	struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000};
	int n = io_getevents(w->ctx, timeout_ms ? 1 : 0, (long)w->o.depth, ev,
			     timeout_ms < 0 ? NULL : &ts);
	if (n < 0) {
		if (n != -EINTR)
			rdo_warn("writer: collecting completions: %s", strerror(-n));
		return 0;
	}
	int records = 0;
	for (int i = 0; i < n; i++) {
		struct batch *b = ev[i].data;
		long res = (long)ev[i].res;
		int status = 0;
		if (res != (long)b->len) {
			status = res < 0 ? (int)res : -EIO;
			w->failed = true;
			fail(w, status == -ENOSPC ? RDO_WRITER_DISK_FULL : RDO_WRITER_ERROR,
			     "writing %llu bytes at offset %llu of %s: %s",
			     (unsigned long long)b->len, (unsigned long long)b->off, w->path,
			     res < 0 ? strerror((int)-res) : "short write");
		}
		records += (int)b->n;
		finish_batch(w, b, status);
	}
	return records;
}

/* Wait for every write in flight. */
static void drain(struct rdo_writer *w)
{
	submit(w);
	while (writes_in_flight(w))
		rdo_writer_reap(w, 1000);
}

static void fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		fsync(fd);
		close(fd);
	}
}

int rdo_writer_end_file(struct rdo_writer *w)
{
	if (w->fd < 0)
		return 0;
	drain(w);
	int rc = 0;
	if (!w->failed) {
		rc = rdo_file_write_footer(w->fd, w->off, w->index, w->nindex, &w->trailer);
		if (rc) {
			w->failed = true;
			fail(w, RDO_WRITER_ERROR,
			     "writing the footer of %s: %s; `readoutctl file recover` makes it "
			     "readable",
			     w->path, strerror(-rc));
		}
	}
	close(w->fd);
	w->fd = -1;
	if (!w->failed) {
		atomic_fetch_add_explicit(&w->files, 1, memory_order_relaxed); /* a counter */
		rdo_notice("writer: closed %s: %llu records, %llu payload bytes", w->path,
			   (unsigned long long)w->trailer.records,
			   (unsigned long long)w->trailer.payload_bytes);
		if (get_state(w) == RDO_WRITER_WRITING)
			set_state(w, RDO_WRITER_IDLE);
	}
	return w->failed ? (rc ? rc : -EIO) : 0;
}

/* Grow the file's allocation to hold `need` bytes: 0, or -errno (-ENOSPC: disk full). */
static int reserve(struct rdo_writer *w, uint64_t need)
{
	if (need <= w->alloc_end)
		return 0;
	if (!w->prealloc) {
		w->alloc_end = need;
		return 0;
	}
	uint64_t len = need - w->alloc_end > w->o.prealloc ? need - w->alloc_end : w->o.prealloc;
	if (fallocate(w->fd, 0, (off_t)w->alloc_end, (off_t)len) == 0) {
		w->alloc_end += len;
		return 0;
	}
	if (errno == EOPNOTSUPP) { /* the file system cannot: writes allocate as they go */
		w->prealloc = false;
		w->alloc_end = need;
		return 0;
	}
	int rc = -errno;
	if (rc == -ENOSPC &&
	    fallocate(w->fd, 0, (off_t)w->alloc_end, (off_t)(need - w->alloc_end)) == 0) {
		w->alloc_end = need; /* the last of the space, exactly */
		return 0;
	}
	return rc;
}

/* Open the next file of run `run`: 0, or -errno with the writer failed. */
static int open_file(struct rdo_writer *w, uint64_t run)
{
	if (!w->have_run || run != w->run) {
		w->run = run;
		w->seq = 0;
		w->have_run = true;
	}
	uint64_t start = wall_ns();
	char name[RDO_WRITER_NAME_MAX], err[256];
	int fd = -1;
	for (unsigned tries = 0; fd < 0 && tries < MAX_NAME_TRIES; tries++, w->seq++) {
		if (rdo_file_name(name, sizeof(name), w->o.name, run, w->ident.card, w->seq,
				  w->ident.host, start, err, sizeof(err))) {
			fail(w, RDO_WRITER_ERROR, "writer.name \"%s\": %s", w->o.name, err);
			return -EINVAL;
		}
		if (snprintf(w->path, sizeof(w->path), "%s/%s", w->o.directory, name) >=
		    (int)sizeof(w->path)) {
			fail(w, RDO_WRITER_ERROR, "file name %s/%s is too long", w->o.directory,
			     name);
			return -ENAMETOOLONG;
		}
		fd = open(w->path,
			  O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | (w->o.direct ? O_DIRECT : 0),
			  0644);
		if (fd < 0 && errno != EEXIST) {
			int rc = -errno;
			fail(w, rc == -ENOSPC ? RDO_WRITER_DISK_FULL : RDO_WRITER_ERROR,
			     "cannot create %s: %s", w->path, strerror(-rc));
			return rc;
		}
		if (fd >= 0)
			break;
	}
	if (fd < 0) {
		fail(w, RDO_WRITER_ERROR, "no free file name for run %llu in %s after %d tries",
		     (unsigned long long)run, w->o.directory, MAX_NAME_TRIES);
		return -EEXIST;
	}
	/* `readoutctl file recover` refuses a file that is being written. */
	flock(fd, LOCK_EX | LOCK_NB);
	w->fd = fd;
	w->failed = false;
	w->prealloc = true;
	w->alloc_end = 0;
	w->off = RDO_FILE_ALIGN;
	w->nindex = 0;
	w->opened_ns = rdo_now_ns();
	memset(&w->trailer, 0, sizeof(w->trailer));
	/* Room for one whole record at least: a full disk must not leave a trail of empty files. */
	int rc = reserve(w, RDO_FILE_ALIGN + rdo_file_record_len(w->ident.superpage_size) +
				rdo_file_footer_len(1));
	if (rc == 0) {
		memset(w->fh, 0, RDO_FILE_ALIGN);
		*w->fh = w->ident;
		w->fh->run = run;
		w->fh->file_seq = w->seq;
		w->fh->start_ns = start;
		rdo_file_header_seal(w->fh);
		if (pwrite(fd, w->fh, RDO_FILE_ALIGN, 0) != (ssize_t)RDO_FILE_ALIGN)
			rc = errno ? -errno : -EIO;
	}
	if (rc) {
		close(fd);
		w->fd = -1;
		unlink(w->path);
		if (rc == -ENOSPC)
			fail(w, RDO_WRITER_DISK_FULL,
			     "disk full on %s: no room for a new file; refusing records until "
			     "space is freed (or writer.directory points at another disk)",
			     w->o.directory);
		else
			fail(w, RDO_WRITER_ERROR, "cannot start %s: %s", w->path, strerror(-rc));
		return rc;
	}
	fsync_dir(w->o.directory);
	w->seq++;
	pthread_mutex_lock(&w->lock);
	rdo_strlcpy(w->st_file, w->path, sizeof(w->st_file));
	pthread_mutex_unlock(&w->lock);
	set_state(w, RDO_WRITER_WRITING);
	rdo_notice("writer: writing %s (run %llu)", w->path, (unsigned long long)run);
	return 0;
}

/* Does a record of `len` bytes from run `run` belong in a new file? */
static bool rotate_due(const struct rdo_writer *w, uint64_t run, uint64_t len)
{
	if (run != w->run)
		return true;
	if (w->nindex == 0)
		return false;
	if (w->nindex == w->index_cap ||
	    w->off + len + rdo_file_footer_len(w->nindex + 1) > w->o.rotate_bytes)
		return true;
	return w->o.rotate_s &&
	       rdo_now_ns() - w->opened_ns >= (uint64_t)w->o.rotate_s * 1000000000u;
}

/* An open file with room for a record of `len`: 0, or -errno. */
static int make_room(struct rdo_writer *w, uint64_t run, uint64_t len)
{
	enum rdo_writer_state st = get_state(w);
	if (st == RDO_WRITER_DISK_FULL || st == RDO_WRITER_ERROR) {
		if (rdo_now_ns() < w->retry_ns)
			return st == RDO_WRITER_DISK_FULL ? -ENOSPC : -EIO;
		if (w->fd >= 0)
			rdo_writer_end_file(w);
	}
	if (w->fd >= 0 && rotate_due(w, run, len))
		rdo_writer_end_file(w);
	if (w->fd < 0) {
		int rc = open_file(w, run);
		if (rc)
			return rc == -ENOSPC ? -ENOSPC : -EIO;
		if (st == RDO_WRITER_DISK_FULL || st == RDO_WRITER_ERROR)
			rdo_notice("writer: writing again after: %s", w->st_error);
	}
	int rc = reserve(w, w->off + len + rdo_file_footer_len(w->nindex + 1));
	if (rc == 0)
		return 0;
	uint64_t records = w->nindex;
	rdo_writer_end_file(w); /* the footer's room was reserved with the last record */
	fail(w, rc == -ENOSPC ? RDO_WRITER_DISK_FULL : RDO_WRITER_ERROR,
	     "%s on %s: closed %s with its %llu records; refusing records until %s",
	     rc == -ENOSPC ? "disk full" : strerror(-rc), w->o.directory, w->path,
	     (unsigned long long)records,
	     rc == -ENOSPC ? "space is freed (or writer.directory points at another disk)"
			   : "the error is fixed");
	return rc == -ENOSPC ? -ENOSPC : -EIO;
}

int rdo_writer_put(struct rdo_writer *w, const struct rdo_writer_record *r)
{
	if ((uintptr_t)r->data % RDO_FILE_ALIGN || r->h.size > w->ident.superpage_size)
		return -EINVAL;
	uint64_t len = rdo_file_record_len(r->h.size);
	int rc = make_room(w, r->h.run, len);
	if (rc)
		return rc;
	if (!w->cur) {
		if (!w->nfree)
			return -EAGAIN;
		w->cur = &w->batch[w->free_batch[--w->nfree]];
		w->cur->off = w->off;
	}
	struct batch *b = w->cur;
	unsigned i = b->n;
	struct rdo_record_header *h = header_block(b, i);
	*h = r->h;
	h->index = w->nindex;
	h->reserved = 0;
	if (!r->have_crc)
		h->payload_crc = rdo_crc32c(0, r->data, h->size);
	rdo_record_header_seal(h);
	rdo_file_totals_add(&w->trailer, h);
	w->index[w->nindex++] = (struct rdo_index_entry){
	    .offset = w->off,
	    .sequence = h->sequence,
	    .timestamp_ns = h->timestamp_ns,
	    .link = h->link,
	    .size = h->size,
	};
	b->payload[i] = (struct iovec){(void *)r->data, rdo_file_padded(h->size)};
	b->cookie[i] = r->cookie;
	b->size[i] = h->size;
	b->n++;
	b->len += len;
	w->off += len;
	atomic_fetch_add_explicit(&w->in_flight, 1, memory_order_relaxed); /* a level */
	if (b->n == w->per_write || b->len >= w->o.block_size)
		submit(w); /* taken either way: a failed submit calls done() with the error */
	return 0;
}

void rdo_writer_stats(struct rdo_writer *w, struct rdo_writer_stats *st)
{
	/* relaxed: counters and levels */
	*st = (struct rdo_writer_stats){
	    .state = get_state(w),
	    .files = atomic_load_explicit(&w->files, memory_order_relaxed),
	    .records = atomic_load_explicit(&w->records, memory_order_relaxed),
	    .bytes = atomic_load_explicit(&w->bytes, memory_order_relaxed),
	    .errors = atomic_load_explicit(&w->errors, memory_order_relaxed),
	    .in_flight = atomic_load_explicit(&w->in_flight, memory_order_relaxed),
	};
	pthread_mutex_lock(&w->lock);
	rdo_strlcpy(st->file, w->st_file, sizeof(st->file));
	rdo_strlcpy(st->last_error, w->st_error, sizeof(st->last_error));
	pthread_mutex_unlock(&w->lock);
}

void rdo_writer_destroy(struct rdo_writer **wp)
{
	struct rdo_writer *w = *wp;
	if (!w)
		return;
	rdo_writer_end_file(w); /* writes exist only for an open file: none are left */
	io_destroy(w->ctx);
	close(w->efd);
	free(w->index);
	free(w->fh);
	free(w->hdr_mem);
	free(w->free_batch);
	free(w->batch);
	pthread_mutex_destroy(&w->lock);
	free(w);
	*wp = NULL;
}
