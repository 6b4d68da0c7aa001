/*
 * Inside the control surface: what its files share. Private to
 * server/net/control*.c.
 *   control.c       create and destroy, one request from frame to reply,
 *                   the table of commands and the commands not about registers;
 *   control_reg.c   the register commands: read, write, modify, list, define;
 *   control_sock.c  the ROUTER and its monitor: messages in and out, peers'
 *                   roles from auth, failed handshakes as audit lines.
 * Everything here runs on the serving thread, but for the counters.
 */
#ifndef RDO_CONTROL_INTERNAL_H
#define RDO_CONTROL_INTERNAL_H

#include <stdatomic.h>
#include <stdint.h>

#include "net/arena.h"
#include "net/control.h"
#include "proto/readout.pb-c.h"

struct rdo_control {
	void *router;
	void *monitor; /* the router's handshake failures (a PAIR on its monitor); NULL: none */
	struct rdo_status *status;
	struct rdo_auth *auth;	/* NULL: every client is local */
	struct rdo_arena arena; /* the request being served and its reply */
	uint8_t *out;		/* the packed reply */
	size_t out_cap;
	_Atomic uint64_t served, refused; /* written by the control thread, read by metrics */
	unsigned ncards;
	struct rdo_control_card cards[];
};

/* Plain clients of a control made without auth: local, trusted as operators. */
extern const struct rdo_peer control_local_operator;

/* One request being served: by whom, for which card. */
struct control_call {
	struct rdo_control *ctl;
	const struct rdo_peer *peer;
	/* The card the request names; NULL until then (list_cards names none). */
	struct rdo_control_card *cc;
	unsigned card_index;
	Rdo__Reply *rep;
};

/*
 * A command: fill c->rep's body and return 0, or refuse (control_refuse)
 * and return -1. The request's card is selected and its sender's role
 * checked before.
 */
typedef int control_handler(struct control_call *c, const Rdo__Request *rq);

control_handler control_reg_read, control_reg_write, control_reg_modify, control_reg_list,
    control_reg_define;

/*
 * Refuse the request: `code` and the message (at most 511 bytes) go in the
 * reply, which carries no body. Returns -1, for `return control_refuse(...)`.
 */
int control_refuse(struct control_call *c, Rdo__ErrorCode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuse for want of memory. Returns -1. */
int control_oom(struct control_call *c);

/* A string in the request's arena; "out of memory" when there is none. */
char *control_printf(struct control_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An audit line (notice): "audit: <peer> as <role> <what fmt says>". */
void control_audit(struct control_call *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Append `item`, the `i`th, to the list in `list` ("a, b, c"), cut to fit in `size` bytes. */
void control_join(char *list, size_t size, size_t i, const char *item);

/* `n` zeroed items of `size` bytes in the request's arena; NULL when out of memory. */
static inline void *control_new(struct control_call *c, size_t n, size_t size)
{
	return rdo_arena_calloc(&c->ctl->arena, n, size);
}

/* The ROUTER and its monitor of a new control (0, or -1 logged), and their end. */
int control_sock_open(struct rdo_control *ctl, void *zctx);
void control_sock_close(struct rdo_control *ctl);

#endif
