/*
 * The YAML toolkit under every config file readoutd and its tools read: the
 * server config, register maps and readout-writer's config. The only module
 * that includes libyaml, and none of its types shows here: a document and its
 * nodes are opaque handles.
 *
 * Every getter checks a node's form and limits. When it is wrong it writes
 * "file:line:col: PATH: what was expected, what was given" into the error
 * buffer given at load and returns -EINVAL:
 *   readoutd.yaml:7:12: card.sim.links: expected an integer, got "twelve"
 * A mapping is walked against the keys it may hold, so that an unknown or
 * repeated key is an error and a typo never silently means a default. A
 * section of plain values is an option table (struct rdo_yopt): each key, how
 * to read it and where in an options struct it goes; the same table prints
 * the section back as YAML (readoutd --check-config).
 *
 *   struct rdo_ydoc *y;
 *   int rc = rdo_yaml_load(file, &y, err, sizeof(err));
 *   if (rc == 0)
 *           rc = rdo_yaml_walk_opts(y, rdo_yaml_root(y), "", keys, &opts, NULL);
 *   rdo_yaml_destroy(&y);
 *
 * Ownership: the caller owns the document, and the file name and error
 * buffer it was loaded with, which must outlive it. Nodes, and the strings
 * rdo_yaml_scalar() and rdo_yaml_get_text() return, belong to the document
 * and live until it is destroyed.
 * Thread-safety: a document is used by one thread at a time; documents are
 * independent of each other.
 */
#ifndef RDO_YAML_H
#define RDO_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/util.h"

struct rdo_ydoc;
struct rdo_ynode; /* never defined: a handle on a node of a document */

enum rdo_ykind { RDO_YSCALAR, RDO_YLIST, RDO_YMAP };

/*
 * Load the document of `file`, which must have a root node: 0, or -errno
 * with "file: cannot open: ..." or "file:line:col: ..." in `err`, which later
 * failures on this document are written to as well.
 */
int rdo_yaml_load(const char *file, struct rdo_ydoc **out, char *err, size_t errlen);
void rdo_yaml_destroy(struct rdo_ydoc **y);

const struct rdo_ynode *rdo_yaml_root(struct rdo_ydoc *y);
/* The file name given to rdo_yaml_load(), for messages and relative paths. */
const char *rdo_yaml_file(const struct rdo_ydoc *y);

/* Write "file:line:col: " (of `n`) and the message into the error buffer: -EINVAL. */
int rdo_yaml_fail(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

enum rdo_ykind rdo_yaml_kind(const struct rdo_ynode *n);
/* "a scalar", "a list" or "a mapping", for messages: "expected an integer, got a list". */
const char *rdo_yaml_kind_name(const struct rdo_ynode *n);
/* A scalar's text; NULL for a list or a mapping. */
const char *rdo_yaml_scalar(const struct rdo_ynode *n);
/* Where `n` starts in the file, from 1. */
unsigned rdo_yaml_line(const struct rdo_ynode *n);
unsigned rdo_yaml_column(const struct rdo_ynode *n);
/* The items of a list, the pairs of a mapping; 0 for a scalar. */
size_t rdo_yaml_count(const struct rdo_ynode *n);
/* Item `i` (< rdo_yaml_count) of a list. */
const struct rdo_ynode *rdo_yaml_item(struct rdo_ydoc *y, const struct rdo_ynode *list, size_t i);
/* Pair `i` (< rdo_yaml_count) of a mapping, for keys that are not known in advance. */
void rdo_yaml_pair(struct rdo_ydoc *y, const struct rdo_ynode *map, size_t i,
		   const struct rdo_ynode **key, const struct rdo_ynode **value);

/*
 * The getters: `path` names the node in messages ("card.sim.links"). Each
 * returns 0, or -EINVAL with the message in the error buffer; what it stores
 * is then unchanged, but for rdo_yaml_get_path and rdo_yaml_get_endpoints,
 * which may have stored part.
 */
int rdo_yaml_expect(struct rdo_ydoc *y, const struct rdo_ynode *n, enum rdo_ykind kind,
		    const char *path);
/* A scalar's text, kept in the document: register maps point into it until they copy. */
int rdo_yaml_get_text(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		      const char **out);
/* An integer: decimal, 0x hex or 0b binary, '_' between digits allowed (rdo_parse_u64). */
int rdo_yaml_get_u64(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		     uint64_t *out);
/* An integer in min..max (max at most UINT_MAX). */
int rdo_yaml_get_uint(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, uint64_t min,
		      uint64_t max, unsigned *out);
/* A size in bytes: "4096", "8KiB", "1M" (rdo_parse_size); a rate ("/s") is refused. */
int rdo_yaml_get_size(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		      uint64_t *out);
/* A rate in bytes per second: "100MB/s", "1GiB/s", "0"; the "/s" is optional. */
int rdo_yaml_get_rate(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		      uint64_t *out);
/* true, yes, on or false, no, off. */
int rdo_yaml_get_bool(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, bool *out);
/* A scalar copied into `dst` of `cap` bytes; a longer one is refused. */
int rdo_yaml_get_str(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, char *dst,
		     size_t cap);
/* A file's path, resolved against the document's folder unless absolute; "" stays "". */
int rdo_yaml_get_path(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path, char *dst,
		      size_t cap);
/*
 * The endpoints a socket binds, replacing what `e` held: a list of 1 to
 * RDO_MAX_ENDPOINTS tcp:// or ipc:// addresses, none twice.
 */
int rdo_yaml_get_endpoints(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
			   struct rdo_endpoints *e);
/* err, warning, notice, info or debug, to a LOG_* priority. */
int rdo_yaml_get_log_level(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
			   int *out);

/* `rel` resolved against the folder of the file `base`, unless absolute: 0 or -ENAMETOOLONG. */
int rdo_yaml_path_relative(char *dst, size_t cap, const char *base, const char *rel);

/*
 * Walk a mapping: hand each value to `visit` with the index of its key in
 * `keys` (NULL-terminated, at most 64) and its path ("PATH.KEY"; "" is the
 * top level). An unknown key is an error that lists the allowed ones, and
 * so is a key given twice. The first error `visit` returns ends the walk.
 */
typedef int (*rdo_yaml_visit_fn)(struct rdo_ydoc *y, void *ctx, int key,
				 const struct rdo_ynode *value, const char *path);
int rdo_yaml_walk_map(struct rdo_ydoc *y, const struct rdo_ynode *map, const char *path,
		      const char *const *keys, rdo_yaml_visit_fn visit, void *ctx);

/* How an option table reads a key, and into what member. */
enum rdo_yopt_type {
	RDO_YOPT_BOOL,	    /* bool */
	RDO_YOPT_UINT,	    /* an integer in min..max, a multiple of step */
	RDO_YOPT_SIZE,	    /* rdo_yaml_get_size, in min..max, a multiple of step */
	RDO_YOPT_RATE,	    /* rdo_yaml_get_rate, in min..max */
	RDO_YOPT_ENDPOINTS, /* struct rdo_endpoints */
	RDO_YOPT_STRING,    /* a char array */
	RDO_YOPT_PATH,	    /* a char array: rdo_yaml_get_path */
	RDO_YOPT_CUSTOM,    /* an integer read and printed by `custom` */
};

/* A key type of the table's user: a node to a number and back. Plain value. */
struct rdo_ytype {
	int (*parse)(struct rdo_ydoc *y, const struct rdo_ynode *n, const char *path,
		     uint64_t *out);
	void (*print)(FILE *f, uint64_t v);
};

/*
 * One key of a section. Integer members (UINT, SIZE, RATE, CUSTOM) are 32
 * or 64 bits wide. A table ends with {NULL} and holds at most RDO_YOPT_MAX
 * keys. Plain value.
 */
struct rdo_yopt {
	const char *name;
	enum rdo_yopt_type type;
	size_t offset, width;	 /* of the member */
	uint64_t min, max, step; /* UINT, SIZE and RATE; step 0 or 1: any */
	bool size;		 /* in messages, as a size: "3GiB is too large" */
	bool hex;		 /* print it in hex: serials, ids, versions */
	const struct rdo_ytype *custom;
};

#define RDO_YOPT_MAX 16

/*
 * The key `key` of member `member` of struct `st`, and what else it sets:
 *   RDO_YOPT(struct rdo_dma_opts, "superpages", superpages, RDO_YOPT_UINT, .min = 2, .max = 64)
 */
#define RDO_YOPT(st, key, member, type_, ...)                                                      \
	{                                                                                          \
		.name = key, .type = type_, .offset = offsetof(st, member),                        \
		.width = sizeof(((st *)0)->member), __VA_ARGS__                                    \
	}

/*
 * Walk a section whose keys are all in `keys`, storing each at `base` plus
 * its offset. `nodes` (RDO_YOPT_MAX entries, NULL-initialised) is NULL, or
 * receives where each key was given, for checks that span keys.
 */
int rdo_yaml_walk_opts(struct rdo_ydoc *y, const struct rdo_ynode *map, const char *path,
		       const struct rdo_yopt *keys, void *base, const struct rdo_ynode **nodes);

/*
 * Print a section as YAML that sets every key of `keys` to its value in
 * `base`, `indent` spaces in, under "section:" unless `section` is NULL.
 */
void rdo_yaml_print_opts(FILE *f, int indent, const char *section, const struct rdo_yopt *keys,
			 const void *base);
/* A double-quoted YAML string. */
void rdo_yaml_print_str(FILE *f, const char *s);
/* A path, made absolute when it exists, so that it means the same read from anywhere. */
void rdo_yaml_print_path(FILE *f, const char *path);
/* `v` as configs write it: "256MiB" when a whole number of KiB, MiB or GiB, else decimal. */
const char *rdo_yaml_fmt_size(char *buf, size_t cap, uint64_t v);

#endif
