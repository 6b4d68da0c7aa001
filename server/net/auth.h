/*
 * Security on every ZeroMQ surface (control, live, lossless, status): who may
 * connect, and with which role.
 *
 * Policy: local endpoints (ipc://, inproc://, loopback tcp: 127.0.0.0/8,
 * [::1], "localhost") are plain (ZeroMQ's NULL mechanism); their clients get
 * the configured local role, the ipc file's permissions and the loopback
 * interface being the trust boundary. Any other tcp address (0.0.0.0, *, a
 * NIC's address, a host or interface name) needs CURVE: the server's key
 * pair, and a ZAP handler (RFC 27) that lets in only the clients listed in
 * the authorised keys file, each with a role. With curve_loopback, loopback
 * tcp needs CURVE too (hosts with untrusted local users); ipc stays plain.
 *
 * The authorised keys file, like ssh's authorized_keys: one client a line,
 * `ROLE KEY NAME`, blank lines and lines starting with '#' ignored, and a
 * '#' comment allowed after NAME:
 *
 *   # role    public key (Z85, readoutctl keygen)          name
 *   operator  rq:rM>}U?@Lns47E1%kR.o@n%FcmmsL/@{H8]yf7     alice@daq01
 *   monitor   Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID     grafana
 *
 * ROLE is operator or monitor; KEY is 40 Z85 characters; NAME is printable,
 * without spaces, at most 63 characters, and unique like KEY.
 *
 * Thread-safety: one owner thread (the daemon's control loop) calls
 * rdo_auth_create, _serve, _reload, _peer and _destroy, and binds every
 * surface (rdo_zsock_bind_all with rdo_auth_policy) before that loop starts; nothing else touches
 * the object, so the table needs no lock. rdo_auth_counters may be called
 * from any thread.
 *
 * Lifetime: create the auth before binding any surface, and destroy it after
 * closing every surface's socket. libzmq lets a CURVE client in unchecked
 * when no ZAP handler is bound, unless ZMQ_ZAP_ENFORCE_DOMAIN (a libzmq draft
 * option, set by zsock.c's binds when the library has it) says otherwise.
 */
#ifndef RDO_AUTH_H
#define RDO_AUTH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

struct rdo_zsock_policy;

enum rdo_role { RDO_ROLE_NONE = 0, RDO_ROLE_MONITOR, RDO_ROLE_OPERATOR };

/* "none", "monitor", "operator". */
const char *rdo_role_name(enum rdo_role r);
/* The role `s` names (as rdo_role_name), or -EINVAL. */
int rdo_role_parse(const char *s);

/* The config's security section. Plain value; service/config.c fills it. */
struct rdo_auth_opts {
	char server_key[PATH_MAX];	/* key pair file, mode 0600; "": no CURVE, local only */
	char authorized_keys[PATH_MAX]; /* authorised clients; required with server_key */
	bool curve_loopback;		/* CURVE on loopback tcp too (untrusted local users) */
	enum rdo_role local_role;	/* role of plain-endpoint clients */
	unsigned ipc_mode;		/* ipc socket file mode after bind */
};

/* Defaults: no server key, curve_loopback false, local_role operator, ipc_mode 0660. */
void rdo_auth_opts_init(struct rdo_auth_opts *o);

/* Who sent a message. Plain value. */
struct rdo_peer {
	enum rdo_role role;
	bool curve;    /* authenticated by CURVE; false: a client of a plain endpoint */
	char id[96];   /* for logs: "local", or "NAME (KEYID)" */
	char name[64]; /* the authorised key's NAME; "" for a local client */
};

struct rdo_auth;

/*
 * Load the server key pair (refused unless its file is mode 0600 or 0400
 * and ours) and the authorised keys, and bind the ZAP handler (a REP socket
 * on inproc://zeromq.zap.01) in `zctx`; copies `o`. Without a server key the
 * object still serves: every endpoint must then be local. Logs why and
 * returns NULL on failure; caller owns the result.
 */
struct rdo_auth *rdo_auth_create(void *zctx, const struct rdo_auth_opts *o);
/* Wipes the secret key, closes the ZAP socket; accepts NULL, sets `*a` to NULL. */
void rdo_auth_destroy(struct rdo_auth **a);

/* The ZAP socket, for the owner thread's zmq_poll (ZMQ_POLLIN). Never NULL. */
void *rdo_auth_socket(struct rdo_auth *a);

/*
 * Answer every pending ZAP request, without blocking. A CURVE handshake
 * waits for this, so the owner thread must call it whenever the socket is
 * readable. Every refused connection and every accepted CURVE client is
 * logged ("audit: ..."); repeats of one refusal (same surface, address and
 * reason) within 10 s are counted into the next such line, so a client that
 * keeps retrying cannot flood the journal.
 */
void rdo_auth_serve(struct rdo_auth *a);

/*
 * SIGHUP: re-read the authorised keys file. On any error the old table
 * stays, every error is logged with FILE:LINE:COLUMN, and -errno comes back
 * (-EINVAL for what the file says). A key that is gone loses its role at the
 * next message of its connections (rdo_auth_peer). 0 without CURVE.
 */
int rdo_auth_reload(struct rdo_auth *a);

/*
 * Who sent `msg`, any frame received on a socket bound through zsock.h: a
 * CURVE client (the User-Id its ZAP reply set) gets the role its NAME has in
 * the current table, RDO_ROLE_NONE when a reload took it away or gave the
 * name another key; any other client is local and gets local_role. User-Id
 * alone is not trusted: a plain client may send any metadata property, so
 * the ZAP reply also carries a per-process secret only the handler knows.
 */
void rdo_auth_peer(const struct rdo_auth *a, zmq_msg_t *msg, struct rdo_peer *p);

/* CURVE connections accepted and refused by the ZAP handler since creation. Any thread. */
void rdo_auth_counters(const struct rdo_auth *a, uint64_t *accepted, uint64_t *refused);

/*
 * The policy every surface binds through (core/zsock.h): CURVE with the
 * server key when there is one, curve_loopback and ipc_mode as configured.
 * NULL when `a` is NULL (zsock's plain policy). Valid while `a` lives.
 */
const struct rdo_zsock_policy *rdo_auth_policy(const struct rdo_auth *a);

#endif
