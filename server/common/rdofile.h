/*
 * The .rdo data file: what readoutd's disk writer and readout-writer write,
 * and what `readoutctl file` reads. Built to be read years later by someone
 * who has only the file and this header.
 *
 * Layout. Every structure is little-endian, and every part starts on a
 * multiple of RDO_FILE_ALIGN, so that the writer can put payloads on disk
 * straight from superpage memory with O_DIRECT.
 *
 *   0                       file header (struct rdo_file_header), in one block
 *   RDO_FILE_ALIGN          record 0: a header block (struct rdo_record_header),
 *                           then `size` payload bytes, padded to the alignment
 *                           (the padding's bytes are undefined)
 *   ...                     record 1, 2, ... back to back
 *   index_offset            on clean close: the index, one rdo_index_entry per
 *                           record, zero-padded to the alignment
 *   file size - ALIGN       the trailer (struct rdo_file_trailer), the last block
 *
 * A file without a valid trailer was not closed (the writer died, the power
 * went): its records are still there, each checkable by itself, and `recover`
 * makes it whole up to the last complete record. Every structure ends with a
 * CRC32C of the bytes before it; a record header also holds the CRC32C of
 * its payload.
 *
 * Thread-safety: the functions keep no state; a struct rdo_file_reader
 * belongs to one thread at a time.
 */
#ifndef RDO_RDOFILE_H
#define RDO_RDOFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the .rdo format is little-endian, and so are the hosts readoutd runs on"
#endif

#define RDO_FILE_ALIGN	   4096u
#define RDO_FILE_MAGIC	   "RDOFILE\n" /* 8 bytes, no NUL: `head -c 8` shows it */
#define RDO_FILE_VERSION   1u
#define RDO_RECORD_MAGIC   0x524f4452u	/* "RDOR" on disk */
#define RDO_TRAILER_MAGIC  "RDOEND\n\n" /* 8 bytes, no NUL */
#define RDO_FILE_MAX_LINKS 32u

/* The first block of a file. */
struct rdo_file_header {
	char magic[8];		 /* RDO_FILE_MAGIC */
	uint32_t version;	 /* RDO_FILE_VERSION */
	uint32_t header_size;	 /* sizeof(struct rdo_file_header) */
	uint32_t align;		 /* RDO_FILE_ALIGN */
	uint32_t superpage_size; /* of the writer's source; a record's size is at most this */
	uint64_t run;		 /* run number given at start (0: none) */
	uint64_t file_seq;	 /* this file's number within the run, from 0 */
	uint64_t start_ns;	 /* CLOCK_REALTIME when the file was opened */
	uint64_t serial;	 /* the card's serial number */
	uint32_t identity;	 /* the card's identity register */
	uint32_t firmware;	 /* the card's firmware version */
	uint32_t links;		 /* links the card has */
	uint32_t reserved0;
	uint8_t map_sha256[32]; /* SHA-256 of the register map file's bytes (`sha256sum`) */
	char card[64];		/* NUL-terminated strings from here on */
	char backend[16];
	char address[64];
	char map_name[64];
	char host[64];	 /* the host that wrote the file */
	char writer[64]; /* "readoutd 0.4.0" or "readout-writer 0.4.0" */
	uint8_t reserved[580];
	uint32_t crc; /* CRC32C of every byte before it */
};

/* The first block of every record. */
struct rdo_record_header {
	uint32_t magic;	      /* RDO_RECORD_MAGIC */
	uint32_t header_size; /* sizeof(struct rdo_record_header) */
	uint64_t index;	      /* this record's number in the file, from 0 */
	uint64_t sequence;    /* per link, as SuperpageHeader.sequence: from 0 at run start */
	uint64_t timestamp_ns;
	uint64_t run;
	uint64_t card_pages_dropped; /* pages the card dropped on this link so far */
	uint32_t link;
	uint32_t flags;	      /* SuperpageFlag bits */
	uint32_t size;	      /* payload bytes; the payload takes rdo_file_padded(size) */
	uint32_t payload_crc; /* CRC32C of the `size` payload bytes */
	uint32_t reserved;
	uint32_t crc; /* CRC32C of every byte before it */
};

/* One record in the index. */
struct rdo_index_entry {
	uint64_t offset; /* of the record's header block */
	uint64_t sequence;
	uint64_t timestamp_ns;
	uint32_t link;
	uint32_t size;
};

/* Per link in the trailer. */
struct rdo_link_totals {
	uint64_t records;
	uint64_t first_sequence, last_sequence; /* meaningful when records > 0 */
	uint64_t missing; /* sequence numbers skipped between first and last */
};

#define RDO_TRAILER_RECOVERED 1u /* written by `readoutctl file recover`, not the writer */

/* The last block of a closed file. */
struct rdo_file_trailer {
	char magic[8];	       /* RDO_TRAILER_MAGIC */
	uint32_t version;      /* RDO_FILE_VERSION */
	uint32_t trailer_size; /* sizeof(struct rdo_file_trailer) */
	uint64_t index_offset;
	uint64_t records;
	uint64_t payload_bytes;
	uint64_t end_ns;    /* CLOCK_REALTIME at close */
	uint32_t index_crc; /* CRC32C of the records * sizeof(entry) index bytes */
	uint32_t flags;	    /* RDO_TRAILER_* */
	uint32_t links;	    /* entries used in `link`: the highest link seen + 1 */
	uint32_t reserved0;
	struct rdo_link_totals link[RDO_FILE_MAX_LINKS];
	uint8_t reserved[188];
	uint32_t crc; /* CRC32C of every byte before it */
};

_Static_assert(sizeof(struct rdo_file_header) == 1024, "file header layout");
_Static_assert(sizeof(struct rdo_record_header) == 72, "record header layout");
_Static_assert(sizeof(struct rdo_index_entry) == 32, "index entry layout");
_Static_assert(sizeof(struct rdo_file_trailer) == 1280, "trailer layout");

/* `n` rounded up to RDO_FILE_ALIGN. */
static inline uint64_t rdo_file_padded(uint64_t n)
{
	return (n + RDO_FILE_ALIGN - 1) / RDO_FILE_ALIGN * RDO_FILE_ALIGN;
}

/* Bytes a record of `size` payload bytes takes in the file. */
static inline uint64_t rdo_file_record_len(uint32_t size)
{
	return RDO_FILE_ALIGN + rdo_file_padded(size);
}

/* Bytes the footer (index and trailer) of a file of `records` takes. */
static inline uint64_t rdo_file_footer_len(uint64_t records)
{
	return rdo_file_padded(records * sizeof(struct rdo_index_entry)) + RDO_FILE_ALIGN;
}

/* Set the magic, version and size fields and the CRC: ready to write. */
void rdo_file_header_seal(struct rdo_file_header *h);
void rdo_record_header_seal(struct rdo_record_header *h);
void rdo_file_trailer_seal(struct rdo_file_trailer *t);

/*
 * Check a structure read from disk: 0, or -EBADMSG with what is wrong in
 * `err` (bad magic, foreign file, version, size field, CRC mismatch).
 * The caller adds the offset.
 */
int rdo_file_header_check(const struct rdo_file_header *h, char *err, size_t errlen);
int rdo_record_header_check(const struct rdo_record_header *h, char *err, size_t errlen);
int rdo_file_trailer_check(const struct rdo_file_trailer *t, char *err, size_t errlen);

/*
 * Count record `h` into the totals of `t` (records, payload_bytes, links,
 * per link records, first and last sequence, missing sequence numbers).
 * The writer and recover keep their trailers with it.
 */
void rdo_file_totals_add(struct rdo_file_trailer *t, const struct rdo_record_header *h);

/*
 * Write the footer at `offset` of `fd` (opened for writing, with or without
 * O_DIRECT): the index of `records` entries from `index`, which must be
 * RDO_FILE_ALIGN-aligned memory of at least rdo_file_footer_len(records)
 * bytes (the function pads it and puts the trailer after it), then the
 * trailer `t` with index_offset, index_crc and end_ns filled in and sealed.
 * Then truncates the file to its end and syncs it. 0 or -errno.
 */
int rdo_file_write_footer(int fd, uint64_t offset, void *index, uint64_t records,
			  struct rdo_file_trailer *t);

/*
 * A file name from `tmpl`: {run} (run number, at least 6 digits), {card},
 * {seq} (file number in the run, at least 4 digits), {host}, {date}
 * (UTC, YYYYMMDD) and {time} (UTC, HHMMSS, at `start_ns`). 0, or -EINVAL
 * with the unknown key or a '/' in `err` (names stay in the writer's
 * directory), -ENAMETOOLONG.
 */
int rdo_file_name(char *buf, size_t len, const char *tmpl, uint64_t run, const char *card,
		  uint64_t seq, const char *host, uint64_t start_ns, char *err, size_t errlen);

/*
 * Reading, for readoutctl and the tests. A reader reads one file with plain
 * pread (no O_DIRECT): it checks the header at open and the trailer when the
 * file has one, then hands out the records one at a time, each checked
 * (header, bounds, payload CRC). A problem is -EBADMSG with a message that
 * starts with its byte offset, "offset 1052672: record 3: payload CRC
 * mismatch: ..."; the caller adds the file's name. No file, however cut,
 * damaged or foreign, makes these functions crash or read out of bounds.
 */
#define RDO_FILE_ERR_MAX 256 /* enough for any message below */

struct rdo_file_reader;

/* A record as rdo_file_reader_next hands it out. Plain value. */
struct rdo_file_record {
	struct rdo_record_header h;
	uint64_t offset;     /* of its header block */
	const void *payload; /* h.size bytes, owned by the reader, valid until its next call */
};

/*
 * Open `path` and check its header, and its trailer if it has one: the
 * reader, or NULL with why in `err` ("offset 0: not a readoutd data file
 * (magic ...)", "a directory, not a data file") and errno set (EBADMSG for
 * what the file holds). Caller owns the result.
 */
struct rdo_file_reader *rdo_file_reader_open(const char *path, char *err, size_t errlen);
void rdo_file_reader_close(struct rdo_file_reader **rp);

/* The file's header, checked. */
const struct rdo_file_header *rdo_file_reader_header(const struct rdo_file_reader *r);

/* The file's size when it was opened. */
uint64_t rdo_file_reader_size(const struct rdo_file_reader *r);

/*
 * The trailer of a closed file, checked, or NULL when the file has no valid
 * one; then `*why` (when `why` is not NULL) says why: "not closed" when
 * the file has no trailer, else what is wrong with it ("offset 8392704:
 * trailer CRC mismatch: ..."). The string lives as long as the reader.
 */
const struct rdo_file_trailer *rdo_file_reader_trailer(const struct rdo_file_reader *r,
						       const char **why);

/*
 * The next record, in file order: 1 with it in `rec`, 0 after the last one
 * (at the index of a closed file, at the end of an unclosed one), -EBADMSG
 * with what and where in `err`, or -errno when reading fails. When only the
 * payload is bad (its CRC), `rec` still holds the record and the reader has
 * moved past it; after any other problem it stays where it is, and every
 * later call returns the same problem.
 */
int rdo_file_reader_next(struct rdo_file_reader *r, struct rdo_file_record *rec, char *err,
			 size_t errlen);

/* What rdo_file_verify tells as it goes. Either function may be NULL. */
struct rdo_file_verify_cb {
	/* A problem, one line that starts with its offset, or "trailer:" for its totals. */
	void (*problem)(void *arg, const char *line);
	/* Sequences `first` to `last` of `link` are not in the file, between two of its records. */
	void (*gap)(void *arg, uint32_t link, uint64_t first, uint64_t last);
	/* Each record whose header and payload check, in file order: for checks of the payload's
	 * own. */
	void (*record)(void *arg, const struct rdo_file_header *fh,
		       const struct rdo_file_record *rec);
	void *arg;
};

/* What rdo_file_verify found. Plain value. */
struct rdo_file_verify_report {
	uint64_t size;	   /* of the file */
	uint64_t problems; /* told to cb->problem */
	uint64_t gaps;	   /* told to cb->gap */
	bool closed;	   /* the file has a valid trailer, copied to `trailer` */
	/*
	 * The records found (headers that check, whatever their payload), totalled
	 * by rdo_file_totals_add: records, payload_bytes, links and per link.
	 */
	struct rdo_file_trailer found;
	struct rdo_file_trailer trailer;
};

/*
 * Check `path` whole: the header, every record and its payload CRC, the
 * index against the records, the trailer's totals against the records; tell
 * each problem and each gap in a link's sequence numbers to `cb` (may be
 * NULL). 0 when everything checks and the file is closed, -EBADMSG when not,
 * or -errno when the file cannot be read (told as a problem too).
 */
int rdo_file_verify(const char *path, struct rdo_file_verify_report *rep,
		    const struct rdo_file_verify_cb *cb);

/* What rdo_file_recover did. Plain value. */
struct rdo_file_recover_report {
	bool was_closed;		/* the file had a valid trailer: nothing was changed */
	uint64_t records;		/* records kept */
	uint64_t payload_bytes;		/* their payload */
	uint64_t end;			/* where they end: the index starts there now */
	uint64_t cut;			/* bytes from `end` to the old end of the file, dropped */
	uint64_t size;			/* of the file now */
	char stopped[RDO_FILE_ERR_MAX]; /* the record the scan stopped at; "" at the file's end */
};

/*
 * Close a file whose writer died: keep its records up to the first that is
 * not complete and valid, write the index and a trailer flagged
 * RDO_TRAILER_RECOVERED right after them, and truncate the file there. A
 * file with a valid trailer is left as it is (was_closed). Holds an
 * exclusive flock(2) on the file meanwhile, and refuses a file someone else
 * holds one on. 0, or -errno with why in `err` (-EBADMSG: the file header is
 * damaged, -EWOULDBLOCK: a writer holds the file).
 */
int rdo_file_recover(const char *path, struct rdo_file_recover_report *rep, char *err,
		     size_t errlen);

#endif
