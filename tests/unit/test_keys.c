#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/keys.h"
#include "common/util.h"
#include "lib/rdoclient.h"
#include "lib/rdodata.h"
#include "proto/readout.pb-c.h"

static char dir[] = "/tmp/rdo-test-keys-XXXXXX";

static void make_dir(void)
{
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
	unsetenv("RDO_SERVER_KEY");
	unsetenv("RDO_CLIENT_KEY");
}

static void remove_dir(void)
{
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(keys, .init = make_dir, .fini = remove_dir, .timeout = 30);

/* DIR/NAME into `out`. */
static const char *path_of(char out[PATH_MAX], const char *name)
{
	snprintf(out, PATH_MAX, "%s/%s", dir, name);
	return out;
}

/* Write `text` to DIR/NAME with `mode`; the path in `out`. */
static const char *write_file(char out[PATH_MAX], const char *name, unsigned mode, const char *text)
{
	path_of(out, name);
	int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, mode);
	cr_assert_geq(fd, 0, "%s: %s", out, strerror(errno));
	cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	cr_assert_eq(fchmod(fd, mode), 0);
	close(fd);
	return out;
}

/* A fresh pair as DIR/NAME.key and DIR/NAME.pub. */
static void generate(const char *name, struct rdo_keypair *k)
{
	char base[PATH_MAX], err[1024];
	cr_assert_eq(rdo_key_generate(path_of(base, name), name, k, err, sizeof(err)), 0, "%s",
		     err);
}

static unsigned mode_of(const char *path)
{
	struct stat st;
	cr_assert_eq(stat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

Test(keys, generate_then_load)
{
	struct rdo_keypair made, k;
	char path[PATH_MAX], err[1024];
	generate("alice", &made);
	cr_assert_eq(strlen(made.public_z85), RDO_KEY_Z85_LEN);
	cr_assert_eq(strlen(made.secret_z85), RDO_KEY_Z85_LEN);

	cr_assert_eq(rdo_key_load(path_of(path, "alice.key"), true, &k, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(k.public_z85, made.public_z85);
	cr_assert_str_eq(k.secret_z85, made.secret_z85);

	/* Without want_secret only the public half comes back, also from the pair file. */
	cr_assert_eq(rdo_key_load(path, false, &k, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(k.public_z85, made.public_z85);
	cr_assert_str_empty(k.secret_z85);

	cr_assert_eq(rdo_key_load(path_of(path, "alice.pub"), false, &k, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(k.public_z85, made.public_z85);
	cr_assert_str_empty(k.secret_z85);

	/* The public file holds no secret, and says who and where. */
	FILE *f = fopen(path, "r");
	char text[2048] = "";
	cr_assert_gt(fread(text, 1, sizeof(text) - 1, f), 0);
	fclose(f);
	cr_assert_null(strstr(text, made.secret_z85));
	cr_assert_null(strstr(text, "secret-key"));
	cr_assert(strstr(text, "\"alice\""), "%s", text);
	cr_assert(strstr(text, "UTC"), "%s", text);
}

Test(keys, file_modes_whatever_the_umask)
{
	struct rdo_keypair k;
	char path[PATH_MAX];
	mode_t old = umask(077);
	generate("bob", &k);
	umask(old);
	cr_assert_eq(mode_of(path_of(path, "bob.key")), 0600);
	cr_assert_eq(mode_of(path_of(path, "bob.pub")), 0644);
}

Test(keys, refuses_overwrite)
{
	struct rdo_keypair k, first;
	char base[PATH_MAX], path[PATH_MAX], err[1024];
	generate("carol", &first);
	cr_assert_eq(rdo_key_generate(path_of(base, "carol"), "carol", &k, err, sizeof(err)),
		     -EEXIST);
	cr_assert(strstr(err, "carol.key"), "%s", err);
	cr_assert(strstr(err, "not overwritten"), "%s", err);
	/* The first pair is untouched. */
	cr_assert_eq(rdo_key_load(path_of(path, "carol.key"), true, &k, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(k.secret_z85, first.secret_z85);

	/* Only the public file in the way: refused, and no key file left behind. */
	write_file(path, "dave.pub", 0644, "# someone else's\n");
	cr_assert_eq(rdo_key_generate(path_of(base, "dave"), "dave", &k, err, sizeof(err)),
		     -EEXIST);
	cr_assert(strstr(err, "dave.pub"), "%s", err);
	cr_assert_neq(access(path_of(path, "dave.key"), F_OK), 0);
}

Test(keys, refuses_bad_names)
{
	struct rdo_keypair k;
	char base[PATH_MAX], err[1024];
	cr_assert_eq(rdo_key_generate(path_of(base, "x"), "", &k, err, sizeof(err)), -EINVAL);
	cr_assert_eq(rdo_key_generate(base, "a\"b", &k, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "key name"), "%s", err);
	cr_assert_neq(access(path_of(base, "x.key"), F_OK), 0);
}

Test(keys, loose_secret_file_refused)
{
	struct rdo_keypair k;
	char path[PATH_MAX], err[1024];
	generate("erin", &k);
	path_of(path, "erin.key");
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "chmod 600"), "%s", err);
	cr_assert(strstr(err, "0644"), "%s", err);
	cr_assert(strstr(err, path), "%s", err);
	cr_assert_str_empty(k.secret_z85);

	cr_assert_eq(chmod(path, 0640), 0);
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "chmod 600"), "%s", err);

	/* Someone else's file (testable as root only: chown needs it). */
	if (geteuid() == 0) {
		cr_assert_eq(chmod(path, 0600), 0);
		cr_assert_eq(chown(path, 65534, 65534), 0);
		cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), -EPERM);
		cr_assert(strstr(err, "owned by uid 65534"), "%s", err);
		cr_assert_eq(chown(path, 0, 0), 0);
	}

	/* Read-only for its owner is fine; and the public half needs no care. */
	cr_assert_eq(chmod(path, 0400), 0);
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(chmod(path, 0666), 0);
	cr_assert_eq(rdo_key_load(path, false, &k, err, sizeof(err)), 0, "%s", err);
}

Test(keys, corrupt_key_names_its_line)
{
	char pub[RDO_KEY_Z85_LEN + 1], sec[RDO_KEY_Z85_LEN + 1], text[1024], path[PATH_MAX],
	    err[1024], needle[PATH_MAX + 64];
	struct rdo_keypair k;
	cr_assert_eq(zmq_curve_keypair(pub, sec), 0);

	/* A character outside the Z85 alphabet (a space is not in it; ',' neither). */
	char bad[RDO_KEY_Z85_LEN + 1];
	memcpy(bad, sec, sizeof(bad));
	bad[7] = ',';
	snprintf(text, sizeof(text),
		 "# a key file\n\ncurve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n", pub,
		 bad);
	write_file(path, "bad.key", 0600, text);
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), -EINVAL);
	snprintf(needle, sizeof(needle), "%s:5: secret-key", path);
	cr_assert(strstr(err, needle), "%s", err);

	/* Cut short. */
	snprintf(text, sizeof(text), "curve\n    public-key = \"%.30s\"\n", pub);
	write_file(path, "short.pub", 0644, text);
	cr_assert_eq(rdo_key_load(path, false, &k, err, sizeof(err)), -EINVAL);
	snprintf(needle, sizeof(needle), "%s:2: public-key", path);
	cr_assert(strstr(err, needle), "%s", err);
	cr_assert(strstr(err, "got 30"), "%s", err);

	/* A public key of another pair. */
	char pub2[RDO_KEY_Z85_LEN + 1], sec2[RDO_KEY_Z85_LEN + 1];
	cr_assert_eq(zmq_curve_keypair(pub2, sec2), 0);
	snprintf(text, sizeof(text), "curve\n    public-key = \"%s\"\n    secret-key = \"%s\"\n",
		 pub2, sec);
	write_file(path, "mixed.key", 0600, text);
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), -EINVAL);
	snprintf(needle, sizeof(needle), "%s:2: public-key does not belong", path);
	cr_assert(strstr(err, needle), "%s", err);

	/* Not NAME = VALUE, and an unterminated quote. */
	write_file(path, "syntax.pub", 0644, "curve\n    public-key\n");
	cr_assert_eq(rdo_key_load(path, false, &k, err, sizeof(err)), -EINVAL);
	snprintf(needle, sizeof(needle), "%s:2:", path);
	cr_assert(strstr(err, needle), "%s", err);
	write_file(path, "quote.pub", 0644, "metadata\ncurve\n\n    public-key = \"abc\n");
	cr_assert_eq(rdo_key_load(path, false, &k, err, sizeof(err)), -EINVAL);
	snprintf(needle, sizeof(needle), "%s:4: the value's closing quote", path);
	cr_assert(strstr(err, needle), "%s", err);

	/* No key at all, and no such file. */
	write_file(path, "empty.pub", 0644, "# nothing\nmetadata\n    name = \"x\"\n");
	cr_assert_eq(rdo_key_load(path, false, &k, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "no key"), "%s", err);
	cr_assert_eq(rdo_key_load(path_of(path, "absent"), false, &k, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, path), "%s", err);
}

Test(keys, public_file_is_no_key_pair)
{
	struct rdo_keypair k;
	char path[PATH_MAX], err[1024];
	generate("frank", &k);
	path_of(path, "frank.pub");
	cr_assert_eq(chmod(path, 0600), 0); /* not the mode: the content is what is wrong */
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "no secret-key"), "%s", err);
	cr_assert(strstr(err, path), "%s", err);
}

Test(keys, public_from_text_or_file)
{
	struct rdo_keypair made;
	char out[RDO_KEY_Z85_LEN + 1], path[PATH_MAX], err[1024];
	generate("grace", &made);
	cr_assert_eq(rdo_key_public(made.public_z85, out, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(out, made.public_z85);
	cr_assert_eq(rdo_key_public(path_of(path, "grace.pub"), out, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(out, made.public_z85);
	cr_assert_eq(rdo_key_public(path_of(path, "grace.key"), out, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(out, made.public_z85);

	/* Forty characters that are not Z85: refused without echoing them (a secret, maybe). */
	char bad[] = "0123456789012345678901234567890123456 ~~";
	cr_assert_eq(strlen(bad), RDO_KEY_Z85_LEN);
	cr_assert_eq(rdo_key_public(bad, out, err, sizeof(err)), -EINVAL);
	cr_assert_null(strstr(err, bad), "%s", err);
	cr_assert(strstr(err, "not valid Z85"), "%s", err);
	cr_assert_eq(rdo_key_public(path_of(path, "nope.pub"), out, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "nope.pub"), "%s", err);
	cr_assert_eq(rdo_key_public("", out, err, sizeof(err)), -EINVAL);

	char id[9];
	cr_assert_eq(strlen(rdo_key_id(made.public_z85, id)), 8);
	cr_assert_eq(strncmp(id, made.public_z85, 8), 0);
}

Test(keys, czmq_certificates_load)
{
	char pub[RDO_KEY_Z85_LEN + 1], sec[RDO_KEY_Z85_LEN + 1], text[2048], path[PATH_MAX],
	    err[1024];
	struct rdo_keypair k;
	cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
	/* As czmq's zcert_save writes them: NAME_secret, and NAME with the public key only. */
	snprintf(text, sizeof(text),
		 "#   ****  Generated on 2024-05-01 12:00:00 by CZMQ  ****\n"
		 "#   ZeroMQ CURVE **Secret** Certificate\n"
		 "#   DO NOT PROVIDE THIS FILE TO OTHER USERS nor change its permissions.\n"
		 "\n"
		 "metadata\n"
		 "    name = \"henry\"\n"
		 "    email = 'henry@example.org'\n"
		 "    public-key = \"this is metadata, not the key\"\n"
		 "curve\n"
		 "    public-key = \"%s\"\n"
		 "    secret-key = \"%s\"\n",
		 pub, sec);
	write_file(path, "henry_secret", 0600, text);
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(k.public_z85, pub);
	cr_assert_str_eq(k.secret_z85, sec);

	snprintf(text, sizeof(text),
		 "#   ****  Generated on 2024-05-01 12:00:00 by CZMQ  ****\r\n"
		 "#   ZeroMQ CURVE Public Certificate\r\n"
		 "#   Exchange securely, or use a secure mechanism to verify the contents\r\n"
		 "\r\n"
		 "metadata\r\n"
		 "curve\r\n"
		 "\tpublic-key = %s   # unquoted, with a comment, CRLF and a tab\r\n",
		 pub);
	write_file(path, "henry", 0644, text);
	cr_assert_eq(rdo_key_load(path, false, &k, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(k.public_z85, pub);
	char out[RDO_KEY_Z85_LEN + 1];
	cr_assert_eq(rdo_key_public(path, out, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(out, pub);

	/* A secret key alone: the public key is derived. */
	snprintf(text, sizeof(text), "curve\n    secret-key = \"%s\"\n", sec);
	write_file(path, "only_secret", 0600, text);
	cr_assert_eq(rdo_key_load(path, true, &k, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(k.public_z85, pub);
}

Test(keys, client_keys_from_options_and_environment)
{
	struct rdo_keypair server, client;
	struct rdo_client_keys ck;
	char path[PATH_MAX], spath[PATH_MAX], err[1024];
	generate("server", &server);
	generate("client", &client);
	path_of(path, "client.key");
	path_of(spath, "server.pub");

	/* Nothing given: plain. */
	cr_assert_eq(rdo_client_keys_init(&ck, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert_not(ck.enabled);
	cr_assert_eq(rdo_client_keys_init(&ck, "", "", err, sizeof(err)), 0, "%s", err);
	cr_assert_not(ck.enabled);

	/* Options. */
	cr_assert_eq(rdo_client_keys_init(&ck, spath, path, err, sizeof(err)), 0, "%s", err);
	cr_assert(ck.enabled);
	cr_assert_str_eq(ck.server_public, server.public_z85);
	cr_assert_str_eq(ck.own.public_z85, client.public_z85);
	cr_assert_str_eq(ck.own.secret_z85, client.secret_z85);

	/* The environment: a key as text, a pair as a file. */
	setenv("RDO_SERVER_KEY", server.public_z85, 1);
	setenv("RDO_CLIENT_KEY", path, 1);
	cr_assert_eq(rdo_client_keys_init(&ck, NULL, NULL, err, sizeof(err)), 0, "%s", err);
	cr_assert(ck.enabled);
	cr_assert_str_eq(ck.server_public, server.public_z85);
	cr_assert_str_eq(ck.own.secret_z85, client.secret_z85);

	/* Options win over the environment. */
	cr_assert_eq(rdo_client_keys_init(&ck, client.public_z85, NULL, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_str_eq(ck.server_public, client.public_z85);

	/* A server key without a pair of one's own. */
	unsetenv("RDO_CLIENT_KEY");
	cr_assert_eq(rdo_client_keys_init(&ck, NULL, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "--server-key needs --key FILE, your key pair (readoutctl keygen "
			      "NAME makes one, and the server's operator adds NAME.pub's key to "
			      "its authorized_keys)"),
		  "%s", err);
	cr_assert(strstr(err, "RDO_SERVER_KEY"), "%s", err);
	cr_assert_not(ck.enabled);
	unsetenv("RDO_SERVER_KEY");
	cr_assert_eq(rdo_client_keys_init(&ck, spath, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "--server-key needs --key FILE"), "%s", err);

	/* A pair without the server's key. */
	cr_assert_eq(rdo_client_keys_init(&ck, NULL, path, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "--key needs --server-key"), "%s", err);

	/* Bad files say which setting named them. */
	setenv("RDO_CLIENT_KEY", path_of(path, "client.pub"), 1);
	cr_assert_eq(rdo_client_keys_init(&ck, spath, NULL, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "RDO_CLIENT_KEY: "), "%s", err);
	cr_assert(strstr(err, "no secret-key"), "%s", err);
	cr_assert_eq(chmod(path_of(path, "client.key"), 0644), 0);
	cr_assert_eq(rdo_client_keys_init(&ck, spath, path, err, sizeof(err)), -EPERM);
	cr_assert(strstr(err, "--key: "), "%s", err);
	cr_assert(strstr(err, "chmod 600"), "%s", err);
	cr_assert_eq(rdo_client_keys_init(&ck, "not-a-key", path, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "--server-key: "), "%s", err);

	/* Disabled keys leave a socket alone. */
	void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
	memset(&ck, 0, sizeof(ck));
	cr_assert_eq(rdo_client_keys_apply(&ck, s), 0);
	cr_assert_eq(rdo_client_keys_apply(NULL, s), 0);
	int mechanism = -1;
	size_t len = sizeof(mechanism);
	zmq_getsockopt(s, ZMQ_MECHANISM, &mechanism, &len);
	cr_assert_eq(mechanism, ZMQ_NULL);
	zmq_close(s);
	zmq_ctx_term(ctx);
}

/*
 * A CURVE server on a free loopback port: a ROUTER that answers every
 * Request with an InfoReply, in its own thread, and optionally a ZAP handler
 * that refuses every client. Without one libzmq accepts any client key.
 */
struct server {
	void *ctx, *router, *zap;
	char ep[256];
	struct rdo_keypair k;
	pthread_t thread, zap_thread;
	bool refuse;
	int requests; /* read after stop */
};

static void *serve(void *arg)
{
	struct server *s = arg;
	for (;;) {
		zmq_msg_t id, body;
		zmq_msg_init(&id);
		zmq_msg_init(&body);
		if (zmq_msg_recv(&id, s->router, 0) < 0 || zmq_msg_recv(&body, s->router, 0) < 0) {
			zmq_msg_close(&id);
			zmq_msg_close(&body);
			break; /* the context is shutting down */
		}
		Rdo__Request *req =
		    rdo__request__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
		Rdo__Reply rep;
		rdo__reply__init(&rep);
		Rdo__InfoReply info;
		rdo__info_reply__init(&info);
		info.card = "sim0";
		rep.version = RDO_PROTOCOL_VERSION;
		rep.id = req ? req->id : 0;
		rep.body_case = RDO__REPLY__BODY_INFO;
		rep.info = &info;
		uint8_t buf[256];
		size_t n = rdo__reply__pack(&rep, buf);
		zmq_send(s->router, zmq_msg_data(&id), zmq_msg_size(&id), ZMQ_SNDMORE);
		zmq_send(s->router, buf, n, 0);
		s->requests++;
		if (req)
			rdo__request__free_unpacked(req, NULL);
		zmq_msg_close(&id);
		zmq_msg_close(&body);
	}
	zmq_close(s->router);
	return NULL;
}

/* ZAP (RFC 27): [version, request id, domain, address, identity, mechanism, key] in. */
static void *zap_refuse(void *arg)
{
	struct server *s = arg;
	for (;;) {
		zmq_msg_t f[8];
		int n = 0, more = 1;
		while (more && n < 8) {
			zmq_msg_init(&f[n]);
			if (zmq_msg_recv(&f[n], s->zap, 0) < 0) {
				for (int i = 0; i <= n; i++)
					zmq_msg_close(&f[i]);
				zmq_close(s->zap);
				return NULL;
			}
			more = zmq_msg_more(&f[n]);
			n++;
		}
		zmq_send(s->zap, "1.0", 3, ZMQ_SNDMORE);
		zmq_send(s->zap, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
		zmq_send(s->zap, "400", 3, ZMQ_SNDMORE);
		zmq_send(s->zap, "not authorised", 14, ZMQ_SNDMORE);
		zmq_send(s->zap, "", 0, ZMQ_SNDMORE);
		zmq_send(s->zap, "", 0, 0);
		for (int i = 0; i < n; i++)
			zmq_msg_close(&f[i]);
	}
}

static void server_start(struct server *s, bool curve, bool refuse)
{
	memset(s, 0, sizeof(*s));
	s->ctx = zmq_ctx_new();
	cr_assert_eq(zmq_curve_keypair(s->k.public_z85, s->k.secret_z85), 0);
	if (refuse) {
		s->zap = zmq_socket(s->ctx, ZMQ_REP);
		cr_assert_eq(zmq_bind(s->zap, "inproc://zeromq.zap.01"), 0);
		cr_assert_eq(pthread_create(&s->zap_thread, NULL, zap_refuse, s), 0);
		s->refuse = true;
	}
	s->router = zmq_socket(s->ctx, ZMQ_ROUTER);
	int zero = 0, one = 1;
	zmq_setsockopt(s->router, ZMQ_LINGER, &zero, sizeof(zero));
	if (curve) {
		cr_assert_eq(zmq_setsockopt(s->router, ZMQ_CURVE_SERVER, &one, sizeof(one)), 0);
		cr_assert_eq(zmq_setsockopt(s->router, ZMQ_CURVE_SECRETKEY, s->k.secret_z85,
					    RDO_KEY_Z85_LEN + 1),
			     0);
	}
	cr_assert_eq(zmq_bind(s->router, "tcp://127.0.0.1:*"), 0, "%s", zmq_strerror(errno));
	size_t len = sizeof(s->ep);
	cr_assert_eq(zmq_getsockopt(s->router, ZMQ_LAST_ENDPOINT, s->ep, &len), 0);
	cr_assert_eq(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(struct server *s)
{
	zmq_ctx_shutdown(
	    s->ctx); /* blocked receives return ETERM; the threads close their sockets */
	pthread_join(s->thread, NULL);
	if (s->refuse)
		pthread_join(s->zap_thread, NULL);
	zmq_ctx_term(s->ctx);
}

/* Client keys that talk to `s`: its public key and a fresh pair of our own. */
static void client_keys_for(struct rdo_client_keys *ck, const char *server_public)
{
	memset(ck, 0, sizeof(*ck));
	ck->enabled = true;
	rdo_strlcpy(ck->server_public, server_public, sizeof(ck->server_public));
	cr_assert_eq(zmq_curve_keypair(ck->own.public_z85, ck->own.secret_z85), 0);
}

Test(keys, curve_socket_exchange)
{
	struct rdo_keypair server;
	cr_assert_eq(zmq_curve_keypair(server.public_z85, server.secret_z85), 0);
	void *ctx = zmq_ctx_new();
	void *router = zmq_socket(ctx, ZMQ_ROUTER), *dealer = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, one = 1, timeout = 5000;
	zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(dealer, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(router, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	zmq_setsockopt(dealer, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	cr_assert_eq(zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof(one)), 0);
	cr_assert_eq(zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, server.secret_z85, 41), 0);
	cr_assert_eq(zmq_bind(router, "tcp://127.0.0.1:*"), 0);
	char ep[256];
	size_t len = sizeof(ep);
	zmq_getsockopt(router, ZMQ_LAST_ENDPOINT, ep, &len);

	struct rdo_client_keys ck;
	client_keys_for(&ck, server.public_z85);
	cr_assert_eq(rdo_client_keys_apply(&ck, dealer), 0);
	int mechanism = -1;
	len = sizeof(mechanism);
	zmq_getsockopt(dealer, ZMQ_MECHANISM, &mechanism, &len);
	cr_assert_eq(mechanism, ZMQ_CURVE);
	cr_assert_eq(zmq_connect(dealer, ep), 0);
	cr_assert_eq(zmq_send(dealer, "hello", 5, 0), 5);

	char id[256], buf[16];
	int idlen = zmq_recv(router, id, sizeof(id), 0);
	cr_assert_gt(idlen, 0, "nothing over CURVE: %s", zmq_strerror(errno));
	cr_assert_eq(zmq_recv(router, buf, sizeof(buf), 0), 5);
	cr_assert_eq(memcmp(buf, "hello", 5), 0);
	zmq_send(router, id, (size_t)idlen, ZMQ_SNDMORE);
	cr_assert_eq(zmq_send(router, "back", 4, 0), 4);
	cr_assert_eq(zmq_recv(dealer, buf, sizeof(buf), 0), 4);
	cr_assert_eq(memcmp(buf, "back", 4), 0);
	zmq_close(router);
	zmq_close(dealer);
	zmq_ctx_term(ctx);
}

static Rdo__Request info_request(Rdo__InfoRequest *info)
{
	Rdo__Request req;
	rdo__request__init(&req);
	rdo__info_request__init(info);
	req.cmd_case = RDO__REQUEST__CMD_INFO;
	req.info = info;
	return req;
}

Test(keys, client_open_with_curve)
{
	struct server s;
	server_start(&s, true, false);
	struct rdo_client_keys ck;
	client_keys_for(&ck, s.k.public_z85);
	char err[1024];
	struct rdo_client *c = rdo_client_open(s.ep, 5000, &ck, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	Rdo__InfoRequest info;
	Rdo__Request req = info_request(&info);
	Rdo__Reply *rep = NULL;
	cr_assert_eq(rdo_client_call(c, &req, &rep), 0, "%s", rdo_client_error(c));
	cr_assert_str_eq(rep->info->card, "sim0");
	cr_assert_str_empty(rdo_client_error(c));
	rdo__reply__free_unpacked(rep, NULL);
	rdo_client_destroy(&c);
	server_stop(&s);
}

/*
 * A call to `s` that must time out; rdo_client_error() must contain `needle`
 * or, when not NULL, `or_needle`: libzmq does not always report a mechanism
 * mismatch as one (the server may hang up before the client reads its
 * greeting), and the client then says less.
 */
static void expect_no_reply(struct server *s, const struct rdo_client_keys *ck, const char *needle,
			    const char *or_needle)
{
	char err[1024];
	struct rdo_client *c = rdo_client_open(s->ep, 700, ck, err, sizeof(err));
	cr_assert_not_null(c, "%s", err);
	Rdo__InfoRequest info;
	Rdo__Request req = info_request(&info);
	Rdo__Reply *rep = NULL;
	cr_assert_eq(rdo_client_call(c, &req, &rep), -ETIMEDOUT);
	const char *why = rdo_client_error(c);
	char head[512];
	snprintf(head, sizeof(head),
		 "no reply from %s within 700 ms: is readoutd running there, and if it needs "
		 "CURVE, is your key authorised (--server-key, --key)?",
		 s->ep);
	cr_assert(strstr(why, head), "%s", why);
	cr_assert(strstr(why, needle) || (or_needle && strstr(why, or_needle)),
		  "\"%s\" lacks \"%s\"", why, needle);
	rdo_client_destroy(&c);
}

Test(keys, refused_handshakes_time_out_saying_why)
{
	struct server s;
	struct rdo_client_keys ck;

	/* A ZAP handler that refuses every key. */
	server_start(&s, true, true);
	client_keys_for(&ck, s.k.public_z85);
	expect_no_reply(&s, &ck, "refused this client's key (CURVE handshake, ZAP status 400)",
			NULL);
	server_stop(&s);
	cr_assert_eq(s.requests, 0);

	/* A plain client to a CURVE server. */
	server_start(&s, true, false);
	expect_no_reply(&s, NULL, "The server requires CURVE there",
			"closed the connection during the handshake: does it require CURVE");
	/* A CURVE client with the wrong server key: the server cannot read its hello. */
	char other[RDO_KEY_Z85_LEN + 1];
	memcpy(other, ck.own.public_z85, sizeof(other));
	client_keys_for(&ck, other);
	expect_no_reply(
	    &s, &ck, "closed the connection during the handshake: is --server-key its public key",
	    NULL);
	server_stop(&s);
	cr_assert_eq(s.requests, 0);

	/* A CURVE client to a plain server. */
	server_start(&s, false, false);
	client_keys_for(&ck, s.k.public_z85);
	expect_no_reply(&s, &ck, "The server does not speak CURVE there",
			"does it speak CURVE there");
	server_stop(&s);
	cr_assert_eq(s.requests, 0);
}

Test(keys, data_stream_over_curve)
{
	struct rdo_keypair server;
	cr_assert_eq(zmq_curve_keypair(server.public_z85, server.secret_z85), 0);
	void *ctx = zmq_ctx_new(), *pub = zmq_socket(ctx, ZMQ_XPUB);
	int zero = 0, one = 1, timeout = 5000;
	zmq_setsockopt(pub, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(pub, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	cr_assert_eq(zmq_setsockopt(pub, ZMQ_CURVE_SERVER, &one, sizeof(one)), 0);
	cr_assert_eq(zmq_setsockopt(pub, ZMQ_CURVE_SECRETKEY, server.secret_z85, 41), 0);
	cr_assert_eq(zmq_bind(pub, "tcp://127.0.0.1:*"), 0);
	char ep[256];
	size_t len = sizeof(ep);
	zmq_getsockopt(pub, ZMQ_LAST_ENDPOINT, ep, &len);

	struct rdo_client_keys ck;
	client_keys_for(&ck, server.public_z85);
	struct rdo_data_opts o;
	rdo_data_opts_init(&o);
	o.endpoint = ep;
	o.topic = "sim0/";
	o.keys = &ck;
	char err[512];
	struct rdo_data *d = rdo_data_open(&o, err, sizeof(err));
	cr_assert_not_null(d, "%s", err);

	/* The subscription comes through only once the CURVE handshake is done. */
	char sub[16];
	cr_assert_eq(zmq_recv(pub, sub, sizeof(sub), 0), 6, "no subscription over CURVE");
	cr_assert_eq(memcmp(sub, "\001sim0/", 6), 0);

	Rdo__SuperpageHeader h;
	rdo__superpage_header__init(&h);
	h.version = RDO_PROTOCOL_VERSION;
	h.card = "sim0";
	h.link = 3;
	h.sequence = 7;
	h.size = 64;
	uint8_t hdr[128], payload[64];
	memset(payload, 0xa5, sizeof(payload));
	size_t n = rdo__superpage_header__pack(&h, hdr);
	zmq_send(pub, "sim0/03", 7, ZMQ_SNDMORE);
	zmq_send(pub, hdr, n, ZMQ_SNDMORE);
	zmq_send(pub, payload, sizeof(payload), 0);

	struct rdo_data_view v;
	cr_assert_eq(rdo_data_wait(d, &v, 5000), 0, "%s", rdo_data_error(d));
	cr_assert_eq(v.link, 3);
	cr_assert_eq(v.sequence, 7);
	cr_assert_eq(v.size, sizeof(payload));
	cr_assert_eq(memcmp(v.data, payload, sizeof(payload)), 0);
	cr_assert_eq(rdo_data_ack(d, &v), 0);
	rdo_data_close(&d);
	zmq_close(pub);
	zmq_ctx_term(ctx);
}
