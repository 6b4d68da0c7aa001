/*
 * The disk writer: records into .rdo files (rdofile.h) on Linux AIO, the
 * engine under readoutd's writer sink and readout-writer.
 *
 * Payloads go to disk straight from the caller's memory, with O_DIRECT: a
 * record is its header block (written by the writer) and the payload padded
 * to RDO_FILE_ALIGN, so the payload's memory must be aligned to
 * RDO_FILE_ALIGN and readable up to its padded size (a superpage is). Records
 * are gathered into writes of up to `block_size` (one pwritev each) and
 * `depth` writes are in flight at once. Files are preallocated in chunks of
 * `prealloc` ahead of the writes, with room for the footer always reserved,
 * so that a write never waits on the file system's allocator and a full disk
 * shows at fallocate, before any record is lost: the writer then closes the
 * file cleanly and refuses records until space is back.
 *
 * A file opens with the first record of a run, rotates by size or age, and
 * closes (index and trailer written, synced) at rdo_writer_end_file(), at a
 * new run number, and at destroy.
 *
 *   struct rdo_writer_opts o;
 *   rdo_writer_opts_init(&o);
 *   struct rdo_writer *w = rdo_writer_create(&o, &ident, done, arg, err, sizeof(err));
 *   rdo_writer_put(w, &rec);    -EAGAIN: rdo_writer_reap() first
 *   rdo_writer_flush(w);        when nothing more comes for now
 *   poll rdo_writer_fd(w), then rdo_writer_reap(w, 0)
 *
 * Ownership: a record's memory stays the caller's; the writer reads it until
 * it calls done(cookie) for it, once per record taken, from rdo_writer_reap,
 * rdo_writer_end_file or rdo_writer_destroy.
 *
 * Thread-safety: one thread drives a writer; rdo_writer_stats() may be
 * called from any thread.
 */
#ifndef RDO_WRITER_H
#define RDO_WRITER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/rdofile.h"

#define RDO_WRITER_NAME_MAX 256

/* What config sets. Plain value; rdo_writer_opts_init() fills the defaults. */
struct rdo_writer_opts {
	bool enabled;			/* readoutd's sink; default false */
	char directory[PATH_MAX];	/* default "." */
	char name[RDO_WRITER_NAME_MAX]; /* template, rdo_file_name(); default
					   run{run}_{card}_{seq}.rdo */
	size_t block_size;		/* bytes per write; default 4 MiB */
	unsigned depth;			/* writes in flight; default 8 */
	size_t prealloc;		/* fallocate chunk; default 256 MiB */
	uint64_t rotate_bytes;		/* a file's largest size; default 2 GiB */
	unsigned rotate_s;		/* a file's longest life; 0 (default): no limit */
	bool direct;			/* O_DIRECT; default true */
};

void rdo_writer_opts_init(struct rdo_writer_opts *o);

/*
 * One record to write. Plain value. `h` is its header as the file will hold
 * it: the caller sets what it knows of the superpage (link, flags, size,
 * sequence, timestamp_ns, run, card_pages_dropped, and payload_crc when
 * have_crc); the writer sets the rest (magic, header_size, index, reserved,
 * the payload's CRC32C otherwise, crc).
 */
struct rdo_writer_record {
	const void *data; /* RDO_FILE_ALIGN-aligned, readable to rdo_file_padded(h.size) */
	struct rdo_record_header h;
	bool have_crc; /* h.payload_crc already holds the payload's CRC32C */
	void *cookie;  /* handed back to done() */
};

/* A record is on disk (status 0) or will never be (-errno). */
typedef void (*rdo_writer_done_fn)(void *cookie, int status, void *arg);

enum rdo_writer_state {
	RDO_WRITER_IDLE,      /* no file open */
	RDO_WRITER_WRITING,   /* a file open */
	RDO_WRITER_DISK_FULL, /* refusing records: no space for the next chunk */
	RDO_WRITER_ERROR,     /* refusing records: a write or open failed; the last */
};

const char *rdo_writer_state_name(enum rdo_writer_state s);

/* A writer's counters. Plain value. */
struct rdo_writer_stats {
	enum rdo_writer_state state;
	uint64_t files;	     /* closed, with their footer */
	uint64_t records;    /* written and completed */
	uint64_t bytes;	     /* payload bytes in them */
	uint64_t errors;     /* failed writes, opens, syncs; disk-full events */
	unsigned in_flight;  /* records submitted, not yet completed */
	char file[PATH_MAX]; /* the open file, or the last one; "" before any */
	char last_error[256];
};

/*
 * Check `o` and its directory (exists, writable, O_DIRECT works there when
 * `direct`) and set up the AIO context. `ident` fills every file header
 * (card, backend, address, identity, firmware, serial, links,
 * superpage_size, map_name, map_sha256, host, writer; the writer sets run,
 * file_seq and start_ns). NULL with the reason and its fix in `err`; caller
 * owns the result.
 */
struct rdo_writer *rdo_writer_create(const struct rdo_writer_opts *o,
				     const struct rdo_file_header *ident, rdo_writer_done_fn done,
				     void *arg, char *err, size_t errlen);

/*
 * What rdo_writer_create() checks of `o` and its directory, for a program to
 * refuse a bad config at start before it knows its source: the superpage
 * size's checks are left out when `superpage_size` is 0. 0, or -errno with
 * the reason and its fix in `err`.
 */
int rdo_writer_check(const struct rdo_writer_opts *o, uint32_t superpage_size, char *err,
		     size_t errlen);

/*
 * Take a record: opens, rotates or closes files as the record's run and the
 * limits say, then gathers it into the current write. Returns
 *   0        taken (done() comes later)
 *   -EAGAIN  every write is in flight: rdo_writer_reap() and try again
 *   -ENOSPC  the disk is full; -EIO: a write, open or sync failed. The record
 *            is not taken. The writer retries with a new file at most once a
 *            second, on a later put.
 *   -EINVAL  the record does not fit the writer (misaligned, too large)
 */
int rdo_writer_put(struct rdo_writer *w, const struct rdo_writer_record *r);

/* Submit the records gathered so far, without waiting for a full block. */
int rdo_writer_flush(struct rdo_writer *w);

/*
 * Collect completed writes, waiting up to `timeout_ms` (0: do not wait) for
 * the first: calls done() for their records; returns how many records.
 */
int rdo_writer_reap(struct rdo_writer *w, int timeout_ms);

/* Readable when writes have completed (an eventfd): then rdo_writer_reap(). */
int rdo_writer_fd(const struct rdo_writer *w);

/* Close the open file, if any: wait for its writes, write its footer, sync. 0 or -errno. */
int rdo_writer_end_file(struct rdo_writer *w);

void rdo_writer_stats(struct rdo_writer *w, struct rdo_writer_stats *st);

/* Close the open file as rdo_writer_end_file() does, then free. Accepts NULL. */
void rdo_writer_destroy(struct rdo_writer **w);

#endif
