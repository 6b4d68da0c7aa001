/*
 * CURVE keys for readoutd and its clients: key files in czmq's certificate
 * format (what czmq's zmakecert writes, so its certificates work too), key
 * pairs made with libzmq, and what a client sets on its sockets.
 *
 * A key file is ZPL text; only the `curve` section counts, `metadata` and
 * '#' comments are ignored:
 *
 *   #   readoutd key pair "alice", made on node1 at 2024-05-01 12:00:00 UTC
 *   metadata
 *       name = "alice"
 *   curve
 *       public-key = "Z85: 40 characters"
 *       secret-key = "Z85: 40 characters"
 *
 * A key pair file (NAME.key) holds both and is mode 0600; a public file
 * (NAME.pub) holds only the public key and may be read by anyone.
 *
 * Shared by the server and the clients: nothing here logs, every error comes
 * back as -errno with a message in `err` that names the file (and line) and
 * the fix. Thread-safe: no state of its own.
 */
#ifndef RDO_KEYS_H
#define RDO_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define RDO_KEY_Z85_LEN 40

/* A CURVE key pair, Z85-encoded. Plain value; it carries a secret: do not log it. */
struct rdo_keypair {
	char public_z85[RDO_KEY_Z85_LEN + 1];
	char secret_z85[RDO_KEY_Z85_LEN + 1]; /* "" when public only */
};

/*
 * Read a key file in czmq's certificate format (lines `public-key = "Z85"`,
 * `secret-key = "Z85"`, in a `curve` section; `metadata` section and '#'
 * comments ignored), so certificates made by czmq's zmakecert work too.
 *
 * With `want_secret` the file must hold a secret key, be a regular file of
 * mode 0600 or 0400 (no group/other bits) owned by the caller's uid, else it
 * is refused naming the mode and the fix (chmod 600 FILE). A file holding
 * only a secret key gets its public key derived.
 *
 * Without `want_secret` only the public key is returned (secret_z85 is ""),
 * whatever else the file holds and whatever its mode.
 *
 * Keys are validated with zmq_z85_decode; the public key must match the
 * secret (zmq_curve_public). 0, or -errno with "FILE:LINE: ..." or
 * "FILE: ..." in `err`: -EPERM for a mode or owner refused, -EINVAL for what
 * the file says, else what open or read said.
 */
int rdo_key_load(const char *file, bool want_secret, struct rdo_keypair *k, char *err,
		 size_t errlen);

/*
 * A public key given as 40 Z85 characters, or as the path of a key file
 * holding one (a public file or a key pair file). A path that exists is read
 * as a file. 0, or -errno with `err`.
 */
int rdo_key_public(const char *text_or_file, char out[RDO_KEY_Z85_LEN + 1], char *err,
		   size_t errlen);

/* A short printable id of a public key for logs: its first 8 Z85 characters. Returns `out`. */
const char *rdo_key_id(const char *public_z85, char out[9]);

/*
 * Make a key pair (zmq_curve_keypair) and write BASE.key (mode 0600: public
 * + secret) and BASE.pub (0644: public only), czmq format with a comment
 * naming `name`, host and UTC date. Refuses to overwrite an existing file
 * (-EEXIST, naming it); writes neither when it cannot write both. `name`
 * must be printable without '"'. `*k` gets the pair. 0, or -errno with `err`.
 */
int rdo_key_generate(const char *base, const char *name, struct rdo_keypair *k, char *err,
		     size_t errlen);

/*
 * What a client uses to talk CURVE to a readoutd: the server's public key
 * and its own pair. Plain value (it carries a secret); enabled false: plain.
 */
struct rdo_client_keys {
	bool enabled;
	char server_public[RDO_KEY_Z85_LEN + 1];
	struct rdo_keypair own;
};

/*
 * From options, falling back to the environment (RDO_SERVER_KEY: key or
 * file; RDO_CLIENT_KEY: key pair file); NULL or "" options are not given.
 * Neither set: plain (enabled false, 0). A server key without an own key
 * pair is an error saying: "--server-key needs --key FILE, your key pair
 * (readoutctl keygen NAME makes one, and the server's operator adds
 * NAME.pub's key to its authorized_keys)"; an own key pair without a server
 * key is one too. 0, or -errno with `err` naming the option or variable.
 */
int rdo_client_keys_init(struct rdo_client_keys *ck, const char *server_key_opt,
			 const char *key_file_opt, char *err, size_t errlen);

/*
 * Set ZMQ_CURVE_SERVERKEY/PUBLICKEY/SECRETKEY on a socket before connect;
 * no-op when !enabled (or `ck` is NULL). 0 or -errno.
 */
int rdo_client_keys_apply(const struct rdo_client_keys *ck, void *sock);

#endif
