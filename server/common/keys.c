#include "common/keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "common/util.h"

/* A certificate is a few hundred bytes; anything this big is not one. */
#define KEY_FILE_MAX (64 * 1024)
#define KEY_BIN_LEN  32
#define NAME_MAX_LEN 128

/* A key as found in a file: its text and the line it came from (0: none). */
struct found_key {
	char z85[RDO_KEY_Z85_LEN + 1];
	unsigned line;
};

/*
 * Is `s` a CURVE key in Z85? zmq_z85_decode refuses characters outside the
 * alphabet and groups above 2^32; encoding back catches what it lets through.
 */
static bool z85_valid(const char *s, size_t len)
{
	if (len != RDO_KEY_Z85_LEN)
		return false;
	char text[RDO_KEY_Z85_LEN + 1], back[RDO_KEY_Z85_LEN + 1];
	uint8_t bin[KEY_BIN_LEN];
	memcpy(text, s, len);
	text[len] = '\0';
	bool ok = zmq_z85_decode(bin, text) && zmq_z85_encode(back, bin, sizeof(bin)) &&
		  memcmp(back, text, RDO_KEY_Z85_LEN) == 0;
	explicit_bzero(bin, sizeof(bin));
	explicit_bzero(text, sizeof(text));
	explicit_bzero(back, sizeof(back));
	return ok;
}

static const char *skip_blank(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/*
 * One `name = value` line of the curve section (`p` past the indentation).
 * Sets `*name`/`*nlen` and `*value`/`*vlen`; false with `*why` when the line
 * is not of that form. Values are quoted ("..." or '...') as czmq writes
 * them, or a bare word; a '#' comment may follow.
 */
static bool split_property(const char *p, const char **name, size_t *nlen, const char **value,
			   size_t *vlen, const char **why)
{
	*name = p;
	while (*p && *p != '=' && *p != ' ' && *p != '\t')
		p++;
	*nlen = (size_t)(p - *name);
	p = skip_blank(p);
	if (*nlen == 0 || *p != '=') {
		*why = "expected NAME = \"VALUE\"";
		return false;
	}
	p = skip_blank(p + 1);
	if (*p == '"' || *p == '\'') {
		const char *end = strchr(p + 1, *p);
		if (!end) {
			*why = "the value's closing quote is missing";
			return false;
		}
		*value = p + 1;
		*vlen = (size_t)(end - p - 1);
		p = end + 1;
	} else {
		*value = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		*vlen = (size_t)(p - *value);
	}
	p = skip_blank(p);
	if (*p && *p != '#') {
		*why = "unexpected text after the value";
		return false;
	}
	return true;
}

/* Parse the text of `file`: the curve section's keys, validated, into `pub` and `sec`. */
static int parse_cert(const char *file, char *text, struct found_key *pub, struct found_key *sec,
		      char *err, size_t errlen)
{
	bool in_curve = false;
	unsigned line = 0;
	char *save = NULL;
	/* strtok_r would merge empty lines and shift the numbers: split by hand. */
	for (char *s = text; s; s = save) {
		char *nl = strchr(s, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		line++;
		size_t n = strlen(s);
		if (n && s[n - 1] == '\r')
			s[n - 1] = '\0';
		const char *p = skip_blank(s);
		if (!*p || *p == '#')
			continue;
		if (p == s) { /* a section: curve, metadata, or something else we ignore */
			size_t w = strcspn(p, " \t=#");
			in_curve = w == 5 && memcmp(p, "curve", 5) == 0;
			continue;
		}
		if (!in_curve)
			continue;
		const char *name, *value, *why;
		size_t nlen, vlen;
		if (!split_property(p, &name, &nlen, &value, &vlen, &why)) {
			snprintf(err, errlen,
				 "%s:%u: %s (a czmq certificate line: public-key = \"Z85\")", file,
				 line, why);
			return -EINVAL;
		}
		struct found_key *k = NULL;
		const char *what = NULL;
		if (nlen == 10 && memcmp(name, "public-key", 10) == 0) {
			k = pub;
			what = "public-key";
		} else if (nlen == 10 && memcmp(name, "secret-key", 10) == 0) {
			k = sec;
			what = "secret-key";
		} else {
			continue; /* czmq ignores what it does not know, and so do we */
		}
		if (k->line) {
			snprintf(err, errlen, "%s:%u: a second %s (the first is on line %u)", file,
				 line, what, k->line);
			return -EINVAL;
		}
		if (!z85_valid(value, vlen)) {
			if (vlen != RDO_KEY_Z85_LEN)
				snprintf(
				    err, errlen,
				    "%s:%u: %s: expected 40 Z85 characters, got %zu: the key "
				    "was cut or edited (make a new pair: readoutctl keygen NAME)",
				    file, line, what, vlen);
			else
				snprintf(
				    err, errlen,
				    "%s:%u: %s: not a valid Z85 key (a character outside the "
				    "Z85 alphabet, or edited): make a new pair (readoutctl keygen "
				    "NAME)",
				    file, line, what);
			return -EINVAL;
		}
		memcpy(k->z85, value, vlen);
		k->z85[vlen] = '\0';
		k->line = line;
	}
	return 0;
}

/*
 * A secret key file must be ours alone: a regular file, 0600 or 0400,
 * owned by us. `st` is of the open descriptor, so it is the file read.
 */
static int check_private(const char *file, const struct stat *st, char *err, size_t errlen)
{
	unsigned mode = st->st_mode & 07777;
	if (st->st_uid != geteuid()) {
		snprintf(err, errlen,
			 "%s: owned by uid %u, not by this user (uid %u): a secret key file must "
			 "be its user's own (chown %u %s; chmod 600 %s)",
			 file, (unsigned)st->st_uid, (unsigned)geteuid(), (unsigned)geteuid(), file,
			 file);
		return -EPERM;
	}
	if (mode != 0600 && mode != 0400) {
		snprintf(err, errlen,
			 "%s: mode %04o %s: a secret key file must be mode 0600 or 0400 "
			 "(chmod 600 %s)",
			 file, mode,
			 mode & 077 ? "lets other users read or change the secret key"
				    : "is not a plain private file",
			 file);
		return -EPERM;
	}
	return 0;
}

/* Read all of `file` (at most KEY_FILE_MAX bytes) into `buf`, NUL-terminated. */
static int read_file(const char *file, char *buf, size_t cap, struct stat *st, char *err,
		     size_t errlen)
{
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		int e = errno;
		snprintf(err, errlen, "%s: %s", file, strerror(e));
		return -e;
	}
	int rc = 0;
	if (fstat(fd, st) != 0) {
		rc = -errno;
		snprintf(err, errlen, "%s: %s", file, strerror(-rc));
		goto close_fd;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file (expected a key file)", file);
		rc = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
		goto close_fd;
	}
	size_t len = 0;
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			snprintf(err, errlen, "%s: %s", file, strerror(-rc));
			goto close_fd;
		}
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == cap - 1) {
			snprintf(err, errlen, "%s: more than %d bytes: not a key file", file,
				 KEY_FILE_MAX);
			rc = -EFBIG;
			goto close_fd;
		}
	}
	buf[len] = '\0';
	if (memchr(buf, '\0', len)) {
		snprintf(err, errlen, "%s: binary data: not a key file", file);
		rc = -EINVAL;
	}
close_fd:
	close(fd);
	return rc;
}

int rdo_key_load(const char *file, bool want_secret, struct rdo_keypair *k, char *err,
		 size_t errlen)
{
	memset(k, 0, sizeof(*k));
	char *buf = malloc(KEY_FILE_MAX);
	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", file);
		return -ENOMEM;
	}
	struct stat st;
	struct found_key pub = {0}, sec = {0};
	int rc = read_file(file, buf, KEY_FILE_MAX, &st, err, errlen);
	if (rc == 0)
		rc = parse_cert(file, buf, &pub, &sec, err, errlen);
	if (rc)
		goto out;
	rc = -EINVAL;
	if (!pub.line && !sec.line) {
		snprintf(err, errlen,
			 "%s: no key: expected public-key = \"Z85\" in a curve section (a key "
			 "file from readoutctl keygen, or a czmq certificate)",
			 file);
		goto out;
	}
	if (want_secret && !sec.line) {
		snprintf(err, errlen,
			 "%s: holds no secret-key: it is a public key file; give the key pair file "
			 "(NAME.key from readoutctl keygen, or zmakecert's NAME_secret)",
			 file);
		goto out;
	}
	if (sec.line) {
		char derived[RDO_KEY_Z85_LEN + 1];
		if (zmq_curve_public(derived, sec.z85) != 0) {
			rc = -errno;
			snprintf(err, errlen,
				 "%s:%u: cannot derive the public key: %s (is libzmq built with "
				 "CURVE?)",
				 file, sec.line, zmq_strerror(-rc));
			goto out;
		}
		if (!pub.line) {
			memcpy(pub.z85, derived, sizeof(pub.z85));
		} else if (strcmp(pub.z85, derived) != 0) {
			snprintf(err, errlen,
				 "%s:%u: public-key does not belong to the secret-key on line %u: "
				 "the file was edited or mixed up (make a new pair: readoutctl "
				 "keygen NAME)",
				 file, pub.line, sec.line);
			goto out;
		}
	}
	if (want_secret && (rc = check_private(file, &st, err, errlen)))
		goto out;
	memcpy(k->public_z85, pub.z85, sizeof(k->public_z85));
	if (want_secret)
		memcpy(k->secret_z85, sec.z85, sizeof(k->secret_z85));
	rc = 0;
out:
	explicit_bzero(&sec, sizeof(sec));
	explicit_bzero(buf, KEY_FILE_MAX);
	free(buf);
	return rc;
}

int rdo_key_public(const char *text_or_file, char out[RDO_KEY_Z85_LEN + 1], char *err,
		   size_t errlen)
{
	out[0] = '\0';
	const char *t = text_or_file ? text_or_file : "";
	if (!t[0]) {
		snprintf(err, errlen,
			 "expected a 40-character Z85 public key or a key file, got "
			 "nothing");
		return -EINVAL;
	}
	struct stat st;
	if (stat(t, &st) == 0) {
		struct rdo_keypair k;
		int rc = rdo_key_load(t, false, &k, err, errlen);
		if (rc == 0)
			memcpy(out, k.public_z85, RDO_KEY_Z85_LEN + 1);
		return rc;
	}
	int e = errno;
	size_t len = strlen(t);
	if (len == RDO_KEY_Z85_LEN && z85_valid(t, len)) {
		memcpy(out, t, RDO_KEY_Z85_LEN + 1);
		return 0;
	}
	/* Forty characters are meant as a key: do not echo them, they may be a secret one. */
	if (len == RDO_KEY_Z85_LEN)
		snprintf(err, errlen,
			 "the 40-character key given is not valid Z85 (a character outside the "
			 "Z85 alphabet, or mistyped), and no file has that name");
	else
		snprintf(err, errlen,
			 "%s: %s (expected a key file, or a public key of 40 Z85 characters)", t,
			 strerror(e));
	return len == RDO_KEY_Z85_LEN ? -EINVAL : -e;
}

const char *rdo_key_id(const char *public_z85, char out[9])
{
	size_t n = strnlen(public_z85, 8);
	memcpy(out, public_z85, n);
	out[n] = '\0';
	return out;
}

/* The text of BASE.key (`secret`) or BASE.pub, czmq's layout; the size written, or -1. */
static int format_cert(char *buf, size_t len, bool secret, const char *name, const char *pub_file,
		       const struct rdo_keypair *k)
{
	char host[256] = "unknown", when[32], iso[32];
	if (gethostname(host, sizeof(host) - 1) != 0)
		rdo_strlcpy(host, "unknown", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S UTC", &tm);
	strftime(iso, sizeof(iso), "%Y-%m-%dT%H:%M:%SZ", &tm);
	int n;
	if (secret)
		n = snprintf(
		    buf, len,
		    "#   readoutd CURVE key pair \"%s\", made on %s at %s\n"
		    "#   SECRET: keep this file mode 0600 and give it to no one. Its public\n"
		    "#   half is in %s, for the other side (authorized_keys, --server-key).\n"
		    "\n"
		    "metadata\n"
		    "    name = \"%s\"\n"
		    "    host = \"%s\"\n"
		    "    created = \"%s\"\n"
		    "curve\n"
		    "    public-key = \"%s\"\n"
		    "    secret-key = \"%s\"\n",
		    name, host, when, pub_file, name, host, iso, k->public_z85, k->secret_z85);
	else
		n = snprintf(
		    buf, len,
		    "#   readoutd CURVE public key \"%s\", made on %s at %s\n"
		    "#   Public: give it to the other side (authorized_keys, --server-key).\n"
		    "\n"
		    "metadata\n"
		    "    name = \"%s\"\n"
		    "    host = \"%s\"\n"
		    "    created = \"%s\"\n"
		    "curve\n"
		    "    public-key = \"%s\"\n",
		    name, host, when, name, host, iso, k->public_z85);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

/* Create `path` (never over an existing file) with exactly `mode`, holding `text`. */
static int write_new(const char *path, unsigned mode, const char *text, size_t len, char *err,
		     size_t errlen)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
	if (fd < 0) {
		int e = errno;
		if (e == EEXIST)
			snprintf(err, errlen,
				 "%s exists: not overwritten (remove it first, or pick another "
				 "name)",
				 path);
		else
			snprintf(err, errlen, "%s: cannot create: %s", path, strerror(e));
		return -e;
	}
	int rc = 0;
	/* The umask may have taken bits off a public file: set the mode exactly. */
	if (fchmod(fd, mode) != 0)
		rc = -errno;
	for (size_t off = 0; rc == 0 && off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			rc = -errno;
		else
			off += (size_t)n;
	}
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (close(fd) != 0 && rc == 0)
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "%s: cannot write: %s", path, strerror(-rc));
		unlink(path);
	}
	return rc;
}

static bool name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > NAME_MAX_LEN)
		return false;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '"')
			return false;
	return true;
}

int rdo_key_generate(const char *base, const char *name, struct rdo_keypair *k, char *err,
		     size_t errlen)
{
	memset(k, 0, sizeof(*k));
	if (!name_ok(name)) {
		snprintf(err, errlen,
			 "key name \"%s\": expected 1 to %d printable characters without '\"'",
			 name, NAME_MAX_LEN);
		return -EINVAL;
	}
	char key_path[PATH_MAX], pub_path[PATH_MAX];
	if ((size_t)snprintf(key_path, sizeof(key_path), "%s.key", base) >= sizeof(key_path) ||
	    (size_t)snprintf(pub_path, sizeof(pub_path), "%s.pub", base) >= sizeof(pub_path)) {
		snprintf(err, errlen, "%.64s...: path too long", base);
		return -ENAMETOOLONG;
	}
	/* Both are checked before either is written, so a refusal leaves nothing behind. */
	const char *paths[] = {key_path, pub_path};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(paths); i++) {
		struct stat st;
		if (lstat(paths[i], &st) == 0) {
			snprintf(err, errlen,
				 "%s exists: not overwritten (remove it first, or pick another "
				 "name)",
				 paths[i]);
			return -EEXIST;
		}
	}
	if (zmq_curve_keypair(k->public_z85, k->secret_z85) != 0) {
		int e = errno;
		snprintf(err, errlen, "cannot make a key pair: %s (is libzmq built with CURVE?)",
			 zmq_strerror(e));
		memset(k, 0, sizeof(*k));
		return -e;
	}
	const char *slash = strrchr(pub_path, '/');
	char text[2048];
	int rc = -EOVERFLOW;
	int n = format_cert(text, sizeof(text), true, name, slash ? slash + 1 : pub_path, k);
	if (n < 0) {
		snprintf(err, errlen, "key name \"%s\": too long for the key file", name);
		goto fail;
	}
	rc = write_new(key_path, 0600, text, (size_t)n, err, errlen);
	if (rc)
		goto fail;
	n = format_cert(text, sizeof(text), false, name, NULL, k);
	rc = n < 0 ? -EOVERFLOW : write_new(pub_path, 0644, text, (size_t)n, err, errlen);
	if (rc)
		goto remove_key;
	explicit_bzero(text, sizeof(text));
	return 0;
remove_key:
	unlink(key_path);
fail:
	explicit_bzero(text, sizeof(text));
	memset(k, 0, sizeof(*k));
	return rc;
}

int rdo_client_keys_init(struct rdo_client_keys *ck, const char *server_key_opt,
			 const char *key_file_opt, char *err, size_t errlen)
{
	memset(ck, 0, sizeof(*ck));
	bool server_env = false, key_env = false;
	const char *server = server_key_opt, *key = key_file_opt;
	if (!server || !server[0]) {
		server = getenv("RDO_SERVER_KEY");
		server_env = true;
	}
	if (!key || !key[0]) {
		key = getenv("RDO_CLIENT_KEY");
		key_env = true;
	}
	bool have_server = server && server[0], have_key = key && key[0];
	if (!have_server && !have_key)
		return 0;
	if (!have_key) {
		snprintf(
		    err, errlen,
		    "--server-key needs --key FILE, your key pair (readoutctl keygen NAME makes "
		    "one, and the server's operator adds NAME.pub's key to its "
		    "authorized_keys)%s",
		    server_env ? " (the server key came from RDO_SERVER_KEY; RDO_CLIENT_KEY "
				 "may name the key pair file instead of --key)"
			       : "");
		return -EINVAL;
	}
	if (!have_server) {
		snprintf(err, errlen,
			 "--key needs --server-key KEY|FILE, the server's public key (readoutd's "
			 "operator gives it out: the .pub file of the server's key pair)%s",
			 key_env ? " (the key pair came from RDO_CLIENT_KEY; RDO_SERVER_KEY may "
				   "give the server key instead of --server-key)"
				 : "");
		return -EINVAL;
	}
	char why[768];
	int rc = rdo_key_public(server, ck->server_public, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s: %s", server_env ? "RDO_SERVER_KEY" : "--server-key",
			 why);
		goto fail;
	}
	rc = rdo_key_load(key, true, &ck->own, why, sizeof(why));
	if (rc) {
		snprintf(err, errlen, "%s: %s", key_env ? "RDO_CLIENT_KEY" : "--key", why);
		goto fail;
	}
	ck->enabled = true;
	return 0;
fail:
	explicit_bzero(ck, sizeof(*ck));
	return rc;
}

int rdo_client_keys_apply(const struct rdo_client_keys *ck, void *sock)
{
	if (!ck || !ck->enabled)
		return 0;
	/* Z85 keys go in as 41 bytes, the terminating NUL included (zmq_setsockopt(3)). */
	if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, ck->server_public, RDO_KEY_Z85_LEN + 1) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, ck->own.public_z85, RDO_KEY_Z85_LEN + 1) ||
	    zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, ck->own.secret_z85, RDO_KEY_Z85_LEN + 1))
		return -errno;
	return 0;
}
