/*
 * A minimal JSON writer for --json output: objects, arrays, strings (escaped
 * per RFC 8259), integers and booleans, with commas placed for the caller.
 * Writes to a FILE; not thread-safe.
 */
#ifndef RDO_JSON_H
#define RDO_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define RDO_JSON_DEPTH 16

struct rdo_json {
	FILE *f;
	int depth;
	bool first[RDO_JSON_DEPTH];
};

void rdo_json_init(struct rdo_json *j, FILE *f);
/* `key` is NULL inside arrays and at the top. */
void rdo_json_open(struct rdo_json *j, const char *key, char bracket);
void rdo_json_close(struct rdo_json *j, char bracket);
void rdo_json_str(struct rdo_json *j, const char *key, const char *value);
void rdo_json_u64(struct rdo_json *j, const char *key, uint64_t value);
void rdo_json_bool(struct rdo_json *j, const char *key, bool value);

#endif
