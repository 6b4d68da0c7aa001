/*
 * Security on real sockets in one process: a ROUTER bound through
 * rdo_zsock_bind_all on a public address (CURVE) and on loopback (plain),
 * clients with and without keys, and the ZAP handler served from the test's
 * own poll loop, as the daemon's control loop serves it. Key files go to a
 * mkdtemp folder; what the server logs is captured and checked.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/keys.h"
#include "common/log.h"
#include "common/util.h"
#include "core/zsock.h"
#include "unit/log_capture.h"
#include "net/auth.h"

#define ACCEPT_MS 5000 /* a message that must arrive */
#define REFUSE_MS 700  /* how long one that must not is waited for */

struct pair {
	char pub[41], sec[41];
};

static char dir[64], server_key[PATH_MAX], keys_file[PATH_MAX];
static struct pair server, alice, bob, eve;
static void *zctx, *router;
static struct rdo_auth *auth;
static char curve_ep[RDO_ENDPOINT_MAX], plain_ep[RDO_ENDPOINT_MAX]; /* to connect to */
static void *clients[16];
static unsigned nclients;

static void keypair(struct pair *k)
{
	cr_assert_eq(zmq_curve_keypair(k->pub, k->sec), 0, "no CURVE in this libzmq");
}

static void write_file(const char *path, mode_t mode, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void write_file(const char *path, mode_t mode, const char *fmt, ...)
{
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	va_list ap;
	va_start(ap, fmt);
	vfprintf(f, fmt, ap);
	va_end(ap);
	cr_assert_eq(fclose(f), 0);
	cr_assert_eq(chmod(path, mode), 0);
}

static void write_server_key(mode_t mode)
{
	write_file(server_key, mode,
		   "#   readoutd test key pair\nmetadata\n    name = \"server\"\ncurve\n"
		   "    public-key = \"%s\"\n    secret-key = \"%s\"\n",
		   server.pub, server.sec);
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rdo-test-auth-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(server_key, sizeof(server_key), "%s/server.key", dir);
	snprintf(keys_file, sizeof(keys_file), "%s/authorized_keys", dir);
	keypair(&server);
	keypair(&alice);
	keypair(&bob);
	keypair(&eve);
	write_server_key(0600);
	write_file(keys_file, 0644,
		   "# who may connect\n\noperator %s alice@daq01\nmonitor  %s bob\n", alice.pub,
		   bob.pub);
	log_capture_start(dir);
	zctx = zmq_ctx_new();
	cr_assert_not_null(zctx);
}

static void teardown(void)
{
	for (unsigned i = 0; i < nclients; i++)
		zmq_close(clients[i]);
	nclients = 0;
	if (router)
		zmq_close(router);
	router = NULL;
	rdo_auth_destroy(&auth);
	if (zctx)
		zmq_ctx_term(zctx);
	zctx = NULL;
	log_capture_stop();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(auth, .init = setup, .fini = teardown);

static struct rdo_auth_opts curve_opts(void)
{
	struct rdo_auth_opts o;
	rdo_auth_opts_init(&o);
	rdo_strlcpy(o.server_key, server_key, sizeof(o.server_key));
	rdo_strlcpy(o.authorized_keys, keys_file, sizeof(o.authorized_keys));
	return o;
}

/* "tcp://0.0.0.0:PORT" as bound to what a client connects to. */
static void connect_address(const char *bound, char *out)
{
	const char *port = strrchr(bound, ':');
	cr_assert_not_null(port, "%s", bound);
	snprintf(out, RDO_ENDPOINT_MAX, "tcp://127.0.0.1%s", port);
}

/*
 * The auth from `o` and a ROUTER on a public address and loopback: the
 * public one listed first, so rdo_zsock_bind_all must reorder.
 */
static void start(const struct rdo_auth_opts *o)
{
	auth = rdo_auth_create(zctx, o);
	cr_assert_not_null(auth, "%s", logged());
	router = zmq_socket(zctx, ZMQ_ROUTER);
	cr_assert_not_null(router);
	int zero = 0;
	zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof(zero));
	struct rdo_endpoints in = {0}, out;
	rdo_endpoints_add(&in, "tcp://0.0.0.0:*");
	rdo_endpoints_add(&in, "tcp://127.0.0.1:*");
	cr_assert_eq(rdo_zsock_bind_all(router, rdo_auth_policy(auth), "control", &in, &out), 0,
		     "%s", logged());
	cr_assert_eq(out.n, 2);
	cr_assert(strncmp(out.ep[0], "tcp://0.0.0.0:", 14) == 0, "%s", out.ep[0]);
	cr_assert(strncmp(out.ep[1], "tcp://127.0.0.1:", 16) == 0, "%s", out.ep[1]);
	connect_address(out.ep[0], curve_ep);
	connect_address(out.ep[1], plain_ep);
}

static void start_default(void)
{
	struct rdo_auth_opts o = curve_opts();
	start(&o);
}

/* A DEALER with CURVE key pair `k`, or plain when NULL. */
static void *dealer(const struct pair *k)
{
	void *s = zmq_socket(zctx, ZMQ_DEALER);
	cr_assert_not_null(s);
	cr_assert_lt(nclients, RDO_ARRAY_SIZE(clients));
	clients[nclients++] = s;
	int zero = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	if (k) {
		cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server.pub, 40), 0);
		cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, k->pub, 40), 0);
		cr_assert_eq(zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, k->sec, 40), 0);
	}
	return s;
}

static void connect_send(void *s, const char *ep, const char *text)
{
	cr_assert_eq(zmq_connect(s, ep), 0);
	cr_assert_eq(zmq_send(s, text, strlen(text), 0), (int)strlen(text));
}

/* A DEALER (CURVE with `k`, plain when NULL) connected to `ep`, having sent `text`. */
static void *client(const struct pair *k, const char *ep, const char *text)
{
	void *s = dealer(k);
	connect_send(s, ep, text);
	return s;
}

/*
 * Serve ZAP and wait up to `ms` for a message on the router: true with its
 * payload in `text` and its sender in `p`.
 */
static bool receive(int ms, char *text, size_t cap, struct rdo_peer *p)
{
	uint64_t end = rdo_now_ns() + (uint64_t)ms * 1000000u;
	for (;;) {
		uint64_t now = rdo_now_ns();
		if (now >= end)
			return false;
		zmq_pollitem_t items[] = {
		    {.socket = router, .events = ZMQ_POLLIN},
		    {.socket = rdo_auth_socket(auth), .events = ZMQ_POLLIN},
		};
		cr_assert_geq(zmq_poll(items, 2, (long)((end - now) / 1000000u) + 1), 0);
		if (items[1].revents)
			rdo_auth_serve(auth);
		if (!items[0].revents)
			continue;
		zmq_msg_t id, payload;
		zmq_msg_init(&id);
		zmq_msg_init(&payload);
		cr_assert_geq(zmq_msg_recv(&id, router, 0), 0);
		cr_assert(zmq_msg_more(&id));
		cr_assert_geq(zmq_msg_recv(&payload, router, 0), 0);
		size_t n = zmq_msg_size(&payload) < cap - 1 ? zmq_msg_size(&payload) : cap - 1;
		memcpy(text, zmq_msg_data(&payload), n);
		text[n] = '\0';
		rdo_auth_peer(auth, &payload, p);
		zmq_msg_close(&id);
		zmq_msg_close(&payload);
		return true;
	}
}

/* The next message must be `want_text` from a client of `role`: CURVE with key `k` and `name`, or
 * local. */
static void expect_peer(const char *want_text, enum rdo_role role, const struct pair *k,
			const char *name)
{
	char text[64];
	struct rdo_peer p;
	cr_assert(receive(ACCEPT_MS, text, sizeof(text), &p), "no message \"%s\"; log:\n%s",
		  want_text, logged());
	cr_assert_str_eq(text, want_text);
	cr_assert_eq(p.role, role, "role %s, expected %s", rdo_role_name(p.role),
		     rdo_role_name(role));
	cr_assert_eq(p.curve, k != NULL);
	cr_assert_str_eq(p.name, name);
	char id[96] = "local";
	if (k)
		snprintf(id, sizeof(id), "%s (%.8s)", name, k->pub);
	cr_assert_str_eq(p.id, id);
}

static void expect_nothing(void)
{
	char text[64];
	struct rdo_peer p;
	cr_assert_not(receive(REFUSE_MS, text, sizeof(text), &p), "\"%s\" came through from %s",
		      text, p.id);
}

Test(auth, operator_key_accepted)
{
	start_default();
	client(&alice, curve_ep, "from alice");
	expect_peer("from alice", RDO_ROLE_OPERATOR, &alice, "alice@daq01");
	char line[160];
	snprintf(line, sizeof(line),
		 "audit: CURVE client alice@daq01 (%.8s, operator) connected to control from "
		 "127.0.0.1",
		 alice.pub);
	assert_logged(line);
	assert_logged("security: 2 authorised keys (1 operator, 1 monitor) from ");
	uint64_t accepted, refused;
	rdo_auth_counters(auth, &accepted, &refused);
	cr_assert_eq(accepted, 1);
	cr_assert_eq(refused, 0);
}

Test(auth, monitor_key_accepted)
{
	start_default();
	client(&bob, curve_ep, "from bob");
	expect_peer("from bob", RDO_ROLE_MONITOR, &bob, "bob");
	assert_logged(", monitor) connected to control from 127.0.0.1");
}

/* A monitor of `sock`'s handshake failures; attach it before connecting, not to miss one. */
static void *watch(void *sock, const char *name)
{
	char ep[64];
	snprintf(ep, sizeof(ep), "inproc://monitor-%s", name);
	cr_assert_eq(zmq_socket_monitor(sock, ep,
					ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
					    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
					    ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL),
		     0);
	void *mon = zmq_socket(zctx, ZMQ_PAIR);
	cr_assert_not_null(mon);
	clients[nclients++] = mon;
	cr_assert_eq(zmq_connect(mon, ep), 0);
	return mon;
}

/* The first handshake failure `mon` reports while ZAP is served; 0 when none comes. */
static unsigned handshake_failure(void *mon, uint32_t *value)
{
	uint64_t end = rdo_now_ns() + (uint64_t)ACCEPT_MS * 1000000u;
	while (rdo_now_ns() < end) {
		zmq_pollitem_t items[] = {
		    {.socket = mon, .events = ZMQ_POLLIN},
		    {.socket = rdo_auth_socket(auth), .events = ZMQ_POLLIN},
		};
		zmq_poll(items, 2, 50);
		if (items[1].revents)
			rdo_auth_serve(auth);
		if (!items[0].revents)
			continue;
		uint8_t ev[6];
		char addr[256];
		cr_assert_eq(zmq_recv(mon, ev, sizeof(ev), 0), 6);
		zmq_recv(mon, addr, sizeof(addr), 0);
		uint16_t event;
		memcpy(&event, ev, 2);
		memcpy(value, ev + 2, 4);
		return event;
	}
	return 0;
}

Test(auth, unknown_key_refused)
{
	start_default();
	void *c = dealer(&eve);
	void *mon = watch(c, "eve");
	connect_send(c, curve_ep, "from eve");
	uint32_t value = 0;
	cr_assert_eq(handshake_failure(mon, &value), ZMQ_EVENT_HANDSHAKE_FAILED_AUTH, "log:\n%s",
		     logged());
	cr_assert_eq(value, 400, "ZAP status %u", value);
	expect_nothing();
	char line[160];
	snprintf(line, sizeof(line),
		 "audit: refused CURVE connection to control from 127.0.0.1: unknown key %.8s",
		 eve.pub);
	assert_logged(line);
	cr_assert(strstr(logged(), "<4>"), "the refusal is not a warning:\n%s", logged());
}

/* A client retrying, or many at once, must not flood the log: one line, every refusal counted. */
Test(auth, refusals_counted_not_each_logged)
{
	start_default();
	for (int i = 0; i < 5; i++)
		client(&eve, curve_ep, "from eve");
	char text[64];
	struct rdo_peer p;
	cr_assert_not(receive(1500, text, sizeof(text), &p));
	uint64_t accepted, refused;
	rdo_auth_counters(auth, &accepted, &refused);
	cr_assert_eq(accepted, 0);
	cr_assert_geq(refused, 5, "only %llu refusals", (unsigned long long)refused);
	cr_assert_eq(count(logged(), "audit: refused"), 1, "%s", logged());
}

Test(auth, plain_client_refused_on_curve_endpoint)
{
	start_default();
	void *c = dealer(NULL);
	void *mon = watch(c, "plain");
	connect_send(c, curve_ep, "plain");
	uint32_t value;
	unsigned ev = handshake_failure(mon, &value);
	cr_assert(ev == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ||
		      ev == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL,
		  "event %u", ev);
	expect_nothing();
}

/* One socket, two endpoints: libzmq takes the security options per bind. */
Test(auth, plain_loopback_endpoint_is_local)
{
	start_default();
	client(NULL, plain_ep, "plain");
	expect_peer("plain", RDO_ROLE_OPERATOR, NULL, "");
	client(&alice, curve_ep, "curve");
	expect_peer("curve", RDO_ROLE_OPERATOR, &alice, "alice@daq01");
	client(NULL, plain_ep, "plain again");
	expect_peer("plain again", RDO_ROLE_OPERATOR, NULL, "");
	cr_assert_not(strstr(logged(), "refused"), "%s", logged());
}

Test(auth, local_role_configurable)
{
	struct rdo_auth_opts o = curve_opts();
	o.local_role = RDO_ROLE_MONITOR;
	start(&o);
	client(NULL, plain_ep, "plain");
	expect_peer("plain", RDO_ROLE_MONITOR, NULL, "");
}

/* Raw ZMTP 3.0 over NULL: a client announcing whatever metadata it likes. */
static int forge(const char *ep, const char *const (*props)[2], size_t nprops)
{
	int port = atoi(strrchr(ep, ':') + 1);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(fd, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	uint8_t greeting[64] = {0xff, 0, 0, 0, 0, 0, 0, 0, 1, 0x7f, 3, 0, 'N', 'U', 'L', 'L'};
	cr_assert_eq(write(fd, greeting, sizeof(greeting)), (ssize_t)sizeof(greeting));
	uint8_t theirs[64];
	for (size_t have = 0; have < sizeof(theirs);) {
		ssize_t n = read(fd, theirs + have, sizeof(theirs) - have);
		cr_assert_gt(n, 0, "the server closed during the greeting");
		have += (size_t)n;
	}
	uint8_t cmd[512] = {0x04, 0, 5, 'R', 'E', 'A', 'D', 'Y'};
	size_t n = 8;
	for (size_t i = 0; i < nprops; i++) {
		size_t nl = strlen(props[i][0]), vl = strlen(props[i][1]);
		cmd[n++] = (uint8_t)nl;
		memcpy(cmd + n, props[i][0], nl);
		n += nl;
		uint32_t be = htonl((uint32_t)vl);
		memcpy(cmd + n, &be, 4);
		n += 4;
		memcpy(cmd + n, props[i][1], vl);
		n += vl;
	}
	cmd[1] = (uint8_t)(n - 2);
	cr_assert_eq(write(fd, cmd, n), (ssize_t)n);
	uint8_t msg[] = {0x00, 6, 'f', 'o', 'r', 'g', 'e', 'd'};
	cr_assert_eq(write(fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	return fd;
}

Test(auth, forged_user_id_stays_local)
{
	struct rdo_auth_opts o = curve_opts();
	o.local_role = RDO_ROLE_MONITOR;
	start(&o);
	const char *const props[][2] = {
	    {"Socket-Type", "DEALER"},
	    {"User-Id", "alice@daq01"},
	    {"X-Rdo-Key", alice.pub},
	    {"X-Rdo-Token", "00000000000000000000000000000000"},
	};
	int fd = forge(plain_ep, props, RDO_ARRAY_SIZE(props));
	expect_peer("forged", RDO_ROLE_MONITOR, NULL, "");
	close(fd);
}

/* A CURVE client announcing another client's key: what the ZAP handler set wins. */
Test(auth, curve_client_metadata_cannot_override)
{
	start_default();
	void *c = dealer(&bob);
	char meta[64];
	snprintf(meta, sizeof(meta), "X-Rdo-Key:%s", alice.pub);
	if (zmq_setsockopt(c, 95 /* ZMQ_METADATA, a draft option */, meta, strlen(meta)) != 0)
		cr_skip_test("this libzmq cannot send metadata (ZMQ_METADATA)");
	connect_send(c, curve_ep, "from bob");
	expect_peer("from bob", RDO_ROLE_MONITOR, &bob, "bob");
}

static void write_keys(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void write_keys(const char *fmt, ...)
{
	char text[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	write_file(keys_file, 0644, "%s", text);
}

Test(auth, reload_adds_a_key)
{
	start_default();
	client(&eve, curve_ep, "refused");
	expect_nothing();
	write_keys("operator %s alice@daq01\nmonitor %s bob\noperator %s eve\n", alice.pub, bob.pub,
		   eve.pub);
	cr_assert_eq(rdo_auth_reload(auth), 0, "%s", logged());
	assert_logged("security: 3 authorised keys (2 operator, 1 monitor) from ");
	client(&eve, curve_ep, "accepted");
	/* The refused client retries too: its message may come first. */
	char text[64] = "";
	struct rdo_peer p;
	for (int i = 0; i < 2 && strcmp(text, "accepted") != 0; i++) {
		cr_assert(receive(ACCEPT_MS, text, sizeof(text), &p), "%s", logged());
		cr_assert_eq(p.role, RDO_ROLE_OPERATOR);
		cr_assert_str_eq(p.name, "eve");
	}
	cr_assert_str_eq(text, "accepted");
}

Test(auth, reload_removes_a_key)
{
	start_default();
	void *c = client(&alice, curve_ep, "before");
	expect_peer("before", RDO_ROLE_OPERATOR, &alice, "alice@daq01");
	write_keys("monitor %s bob\n", bob.pub);
	cr_assert_eq(rdo_auth_reload(auth), 0, "%s", logged());
	cr_assert_eq(zmq_send(c, "after", 5, 0), 5);
	expect_peer("after", RDO_ROLE_NONE, &alice, "alice@daq01");
}

/* A name given another key by a reload does not pass its role to the old key's connections. */
Test(auth, reload_gives_a_name_another_key)
{
	start_default();
	void *c = client(&alice, curve_ep, "before");
	expect_peer("before", RDO_ROLE_OPERATOR, &alice, "alice@daq01");
	write_keys("operator %s alice@daq01\n", eve.pub);
	cr_assert_eq(rdo_auth_reload(auth), 0, "%s", logged());
	cr_assert_eq(zmq_send(c, "after", 5, 0), 5);
	expect_peer("after", RDO_ROLE_NONE, &alice, "alice@daq01");
}

Test(auth, reload_of_a_broken_file_keeps_the_table)
{
	start_default();
	write_keys("monitor %s bob\nadmin %s alice@daq01\n", bob.pub, alice.pub);
	cr_assert_eq(rdo_auth_reload(auth), -EINVAL);
	char line[PATH_MAX + 80];
	snprintf(line, sizeof(line), "%s:2:1: expected a role (operator or monitor), got \"admin\"",
		 keys_file);
	assert_logged(line);
	assert_logged("security: keeping the 2 authorised keys loaded before");
	client(&alice, curve_ep, "still");
	expect_peer("still", RDO_ROLE_OPERATOR, &alice, "alice@daq01");
	unlink(keys_file);
	cr_assert_eq(rdo_auth_reload(auth), -ENOENT);
	client(&bob, curve_ep, "still bob");
	expect_peer("still bob", RDO_ROLE_MONITOR, &bob, "bob");
}

/* rdo_auth_create must refuse the authorised keys file and log every line of `needles`. */
static void expect_keys_refused(const char *const *needles, size_t n)
{
	struct rdo_auth_opts o = curve_opts();
	cr_assert_null(rdo_auth_create(zctx, &o), "accepted:\n%s", logged());
	for (size_t i = 0; i < n; i++) {
		char line[PATH_MAX + 256];
		snprintf(line, sizeof(line), "%s:%s", keys_file, needles[i]);
		assert_logged(line);
	}
}

Test(auth, keys_file_errors_with_line_and_column)
{
	char bad_z85[41];
	memcpy(bad_z85, bob.pub, 41);
	bad_z85[7] = '~'; /* not in the Z85 alphabet */
	write_keys("# role key name\n"
		   "operator %s alice\n"
		   "admin %s bob\n"
		   "monitor abc carol\n"
		   "monitor %s carol\n"
		   "monitor %s alice\n"
		   "monitor %s dave\n"
		   "operator %s\n"
		   "operator %s erin extra\n"
		   "  operator\t%s frank  # a comment\n"
		   "monitor %s # no name\n",
		   alice.pub, bob.pub, bad_z85, bob.pub, alice.pub, eve.pub, server.pub, bob.pub,
		   server.pub);
	const char *const needles[] = {
	    "3:1: expected a role (operator or monitor), got \"admin\"",
	    "4:9: expected a 40-character Z85 public key (readoutctl keygen makes one), got "
	    "\"abc\"",
	    "5:9: expected a 40-character Z85 public key",
	    "6:50: the name \"alice\" is already used on line 2",
	    "7:9: this key is already authorised on line 2 (as alice)",
	    "8:50: expected a client name after the key (printable, no spaces), got end of line",
	    "9:56: expected the end of the line after the client name",
	    "11:50: expected a client name after the key (printable, no spaces), got \"#\"",
	};
	expect_keys_refused(needles, RDO_ARRAY_SIZE(needles));
	cr_assert_not(strstr(logged(), ":10:"), "a valid line refused:\n%s", logged());
}

Test(auth, keys_file_name_too_long)
{
	char name[80];
	memset(name, 'n', 64);
	name[64] = '\0';
	write_keys("monitor %s %s\n", bob.pub, name);
	const char *const needles[] = {"1:50: a client name has at most 63 characters, got 64"};
	expect_keys_refused(needles, RDO_ARRAY_SIZE(needles));
	name[63] = '\0';
	write_keys("monitor %s %s\n", bob.pub, name);
	struct rdo_auth_opts o = curve_opts();
	auth = rdo_auth_create(zctx, &o);
	cr_assert_not_null(auth, "%s", logged());
}

Test(auth, keys_file_world_writable_refused)
{
	cr_assert_eq(chmod(keys_file, 0666), 0);
	struct rdo_auth_opts o = curve_opts();
	cr_assert_null(rdo_auth_create(zctx, &o));
	assert_logged("mode 0666 lets any user authorise a key: chmod o-w ");
}

Test(auth, empty_keys_file_valid_but_warned)
{
	write_keys("# nobody yet\n\n");
	struct rdo_auth_opts o = curve_opts();
	auth = rdo_auth_create(zctx, &o);
	cr_assert_not_null(auth, "%s", logged());
	assert_logged("authorises no client: every CURVE connection will be refused");
	cr_assert(strstr(logged(), "<4>"), "not a warning:\n%s", logged());
}

Test(auth, loose_server_key_refused)
{
	write_server_key(0644);
	struct rdo_auth_opts o = curve_opts();
	cr_assert_null(rdo_auth_create(zctx, &o), "started with a readable secret key");
	assert_logged("security.server_key: ");
	assert_logged("chmod 600");
}

Test(auth, half_configured_refused)
{
	struct rdo_auth_opts o = curve_opts();
	o.authorized_keys[0] = '\0';
	cr_assert_null(rdo_auth_create(zctx, &o));
	assert_logged("security.server_key is set but security.authorized_keys is not");
	o = curve_opts();
	o.server_key[0] = '\0';
	cr_assert_null(rdo_auth_create(zctx, &o));
	assert_logged("security.authorized_keys is set but security.server_key is not");
}

static int bind_one(const char *ep, char *bound)
{
	void *s = zmq_socket(zctx, ZMQ_ROUTER);
	cr_assert_not_null(s);
	clients[nclients++] = s;
	int zero = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	struct rdo_endpoints in = {0}, out;
	rdo_endpoints_add(&in, ep);
	int rc = rdo_zsock_bind_all(s, rdo_auth_policy(auth), "control", &in, &out);
	if (rc == 0)
		rdo_strlcpy(bound, out.ep[0], RDO_ENDPOINT_MAX);
	return rc;
}

Test(auth, public_bind_without_server_key_refused)
{
	char bound[RDO_ENDPOINT_MAX];
	cr_assert_eq(bind_one("tcp://0.0.0.0:*", bound), -EPERM, "no auth: bound");
	assert_logged("control: binding tcp://0.0.0.0:* needs CURVE: set security.server_key and "
		      "security.authorized_keys in the config (readoutctl keygen makes keys)");
	struct rdo_auth_opts o;
	rdo_auth_opts_init(&o);
	auth = rdo_auth_create(zctx, &o);
	cr_assert_not_null(auth);
	cr_assert_eq(bind_one("tcp://*:*", bound), -EPERM, "auth without key: bound");
	assert_logged("control: binding tcp://*:* needs CURVE");
	cr_assert_eq(bind_one("tcp://127.0.0.1:*", bound), 0, "%s", logged());
}

Test(auth, curve_loopback)
{
	struct rdo_auth_opts o = curve_opts();
	o.curve_loopback = true;
	auth = rdo_auth_create(zctx, &o);
	cr_assert_not_null(auth);
	cr_assert(rdo_zsock_needs_curve(rdo_auth_policy(auth), "tcp://127.0.0.1:5570"));
	cr_assert_not(rdo_zsock_needs_curve(rdo_auth_policy(auth), "ipc:///tmp/x"));
	o.server_key[0] = o.authorized_keys[0] = '\0';
	cr_assert_null(rdo_auth_create(zctx, &o), "curve_loopback without a key");
}

Test(auth, ipc_socket_mode)
{
	char ep[128], bound[RDO_ENDPOINT_MAX];
	snprintf(ep, sizeof(ep), "ipc://%s/ctl", dir);
	umask(022);
	cr_assert_eq(bind_one(ep, bound), 0, "%s", logged());
	struct stat st;
	cr_assert_eq(stat(bound + 6, &st), 0, "%s", bound);
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %04o", st.st_mode & 07777);

	struct rdo_auth_opts o;
	rdo_auth_opts_init(&o);
	o.ipc_mode = 0600;
	auth = rdo_auth_create(zctx, &o);
	cr_assert_not_null(auth);
	snprintf(ep, sizeof(ep), "ipc://%s/status", dir);
	cr_assert_eq(bind_one(ep, bound), 0, "%s", logged());
	cr_assert_eq(stat(bound + 6, &st), 0, "%s", bound);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %04o", st.st_mode & 07777);

	/* Knock first: a live server's path is refused, not taken. */
	cr_assert_eq(bind_one(ep, bound), -EADDRINUSE);
	assert_logged("is in use by another running server");
}

/* libzmq cannot clear a ZAP domain, so a plain bind after a CURVE one must be refused. */
Test(auth, plain_after_curve_on_one_socket_refused)
{
	struct rdo_auth_opts o = curve_opts();
	auth = rdo_auth_create(zctx, &o);
	cr_assert_not_null(auth);
	void *s = zmq_socket(zctx, ZMQ_ROUTER);
	clients[nclients++] = s;
	char bound[RDO_ENDPOINT_MAX];
	cr_assert_eq(rdo_zsock_bind(s, rdo_auth_policy(auth), "control", "tcp://0.0.0.0:*", bound,
				    sizeof(bound)),
		     0);
	cr_assert_eq(rdo_zsock_bind(s, rdo_auth_policy(auth), "control", "tcp://127.0.0.1:*", bound,
				    sizeof(bound)),
		     -EINVAL);
	assert_logged("bind the local endpoints first");
}

/* Without the ZAP handler libzmq would admit any CURVE client; ZAP_ENFORCE_DOMAIN stops that. */
Test(auth, no_handler_admits_nobody)
{
	start_default();
	rdo_auth_destroy(&auth);
	client(&alice, curve_ep, "unchecked");
	zmq_pollitem_t item = {.socket = router, .events = ZMQ_POLLIN};
	cr_assert_eq(zmq_poll(&item, 1, REFUSE_MS), 0, "a CURVE client came in unchecked");
}

Test(auth, malformed_zap_request_gets_500)
{
	struct rdo_auth_opts o;
	rdo_auth_opts_init(&o);
	auth = rdo_auth_create(zctx, &o);
	cr_assert_not_null(auth);
	void *req = zmq_socket(zctx, ZMQ_REQ);
	clients[nclients++] = req;
	cr_assert_eq(zmq_connect(req, "inproc://zeromq.zap.01"), 0);
	zmq_send(req, "1.0", 3, ZMQ_SNDMORE);
	zmq_send(req, "7", 1, ZMQ_SNDMORE);
	zmq_send(req, "control", 7, 0);
	zmq_pollitem_t item = {.socket = rdo_auth_socket(auth), .events = ZMQ_POLLIN};
	cr_assert_eq(zmq_poll(&item, 1, ACCEPT_MS), 1);
	rdo_auth_serve(auth);
	char f[6][64];
	int n[6];
	for (int i = 0; i < 6; i++) {
		n[i] = zmq_recv(req, f[i], sizeof(f[i]), 0);
		cr_assert_geq(n[i], 0);
		int more;
		size_t len = sizeof(more);
		zmq_getsockopt(req, ZMQ_RCVMORE, &more, &len);
		cr_assert_eq(more, i < 5, "frame %d", i);
	}
	cr_assert(n[0] == 3 && memcmp(f[0], "1.0", 3) == 0);
	cr_assert(n[1] == 1 && f[1][0] == '7');
	cr_assert(n[2] == 3 && memcmp(f[2], "500", 3) == 0);
	assert_logged("malformed ZAP request");
}

Test(auth, roles)
{
	cr_assert_str_eq(rdo_role_name(RDO_ROLE_NONE), "none");
	cr_assert_str_eq(rdo_role_name(RDO_ROLE_MONITOR), "monitor");
	cr_assert_str_eq(rdo_role_name(RDO_ROLE_OPERATOR), "operator");
	cr_assert_eq(rdo_role_parse("operator"), RDO_ROLE_OPERATOR);
	cr_assert_eq(rdo_role_parse("monitor"), RDO_ROLE_MONITOR);
	cr_assert_eq(rdo_role_parse("none"), RDO_ROLE_NONE);
	cr_assert_eq(rdo_role_parse("admin"), -EINVAL);
	cr_assert_eq(rdo_role_parse("Operator"), -EINVAL);
	struct rdo_auth_opts o;
	rdo_auth_opts_init(&o);
	cr_assert_eq(o.local_role, RDO_ROLE_OPERATOR);
	cr_assert_eq(o.ipc_mode, 0660);
	cr_assert_not(o.curve_loopback);
	cr_assert_str_eq(o.server_key, "");
}
