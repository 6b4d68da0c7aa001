/*
 * core/zsock: binding through a policy on real ZeroMQ sockets in one
 * process. Which endpoints need CURVE, the order of a bind list, ipc socket
 * files (mode, a live server's path refused), CURVE binds with and without a
 * key, and receiving multipart messages of bounded size. What zsock logs is
 * captured and checked.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#include "common/log.h"
#include "common/util.h"
#include "core/zsock.h"
#include "unit/log_capture.h"

static char dir[64];
static void *zctx;
static void *socks[8];
static unsigned nsocks;

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rdo-test-zsock-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	log_capture_start(dir);
	zctx = zmq_ctx_new();
	cr_assert_not_null(zctx);
}

static void teardown(void)
{
	for (unsigned i = 0; i < nsocks; i++)
		zmq_close(socks[i]);
	nsocks = 0;
	zmq_ctx_term(zctx);
	log_capture_stop();
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(zsock, .init = setup, .fini = teardown);

static void *new_socket(int type)
{
	void *s = zmq_socket(zctx, type);
	cr_assert_not_null(s);
	int zero = 0;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	socks[nsocks++] = s;
	return s;
}

/* A policy with a real server key, as net/auth.c fills it from security.server_key. */
static struct rdo_zsock_policy curve_policy(void)
{
	struct rdo_zsock_policy p;
	rdo_zsock_policy_init(&p);
	char pub[41], sec[41];
	cr_assert_eq(zmq_curve_keypair(pub, sec), 0, "no CURVE in this libzmq");
	cr_assert_not_null(zmq_z85_decode(p.secret, sec));
	p.curve = true;
	return p;
}

static int mechanism(void *s)
{
	int mech = -1;
	size_t len = sizeof(mech);
	cr_assert_eq(zmq_getsockopt(s, ZMQ_MECHANISM, &mech, &len), 0);
	return mech;
}

Test(zsock, which_endpoints_need_curve)
{
	const char *local[] = {
	    "ipc:///run/readoutd/readoutd.ctl",
	    "ipc://@abstract",
	    "inproc://x",
	    "tcp://127.0.0.1:5570",
	    "tcp://127.1.2.3:*",
	    "tcp://[::1]:5570",
	    "tcp://localhost:5570",
	    "tcp://[::ffff:127.0.0.1]:1",
	};
	const char *remote[] = {
	    "tcp://0.0.0.0:5570",	 "tcp://*:5570",
	    "tcp://10.1.2.3:5570",	 "tcp://[::]:5570",
	    "tcp://eth0:5570",		 "tcp://lo:5570",
	    "tcp://daq01.example.org:1", "tcp://127.0.0.1.example.org:1",
	    "udp://127.0.0.1:1",	 "tcp://128.0.0.1:5570",
	};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(local); i++)
		cr_assert_not(rdo_zsock_needs_curve(NULL, local[i]), "%s", local[i]);
	for (size_t i = 0; i < RDO_ARRAY_SIZE(remote); i++)
		cr_assert(rdo_zsock_needs_curve(NULL, remote[i]), "%s", remote[i]);
}

Test(zsock, curve_loopback_makes_loopback_tcp_curve_but_not_ipc)
{
	struct rdo_zsock_policy p;
	rdo_zsock_policy_init(&p);
	p.curve_loopback = true;
	cr_assert(rdo_zsock_needs_curve(&p, "tcp://127.0.0.1:5570"));
	cr_assert(rdo_zsock_needs_curve(&p, "tcp://localhost:1"));
	cr_assert_not(rdo_zsock_needs_curve(&p, "ipc:///tmp/x"));
	cr_assert_not(rdo_zsock_needs_curve(&p, "inproc://x"));
}

Test(zsock, plain_policy_binds_local_and_refuses_public)
{
	void *s = new_socket(ZMQ_ROUTER);
	char bound[RDO_ENDPOINT_MAX];
	cr_assert_eq(
	    rdo_zsock_bind(s, NULL, "status stream", "tcp://0.0.0.0:*", bound, sizeof(bound)),
	    -EPERM);
	assert_logged("status stream: binding tcp://0.0.0.0:* needs CURVE: set "
		      "security.server_key and security.authorized_keys in the config");
	cr_assert_eq(
	    rdo_zsock_bind(s, NULL, "status stream", "tcp://127.0.0.1:*", bound, sizeof(bound)), 0,
	    "%s", logged());
	cr_assert(strncmp(bound, "tcp://127.0.0.1:", 16) == 0, "%s", bound);
	cr_assert_neq(strcmp(bound, "tcp://127.0.0.1:*"), 0, "the wildcard port was not resolved");
	cr_assert_eq(mechanism(s), ZMQ_NULL);
}

/* Local endpoints first, whatever the list's order, and `out` in the order of `in`. */
Test(zsock, bind_all_binds_local_first_and_reports_in_order)
{
	struct rdo_zsock_policy p = curve_policy();
	void *s = new_socket(ZMQ_ROUTER);
	struct rdo_endpoints in = {0}, out;
	char ipc[128];
	snprintf(ipc, sizeof(ipc), "ipc://%s/ctl", dir);
	rdo_endpoints_add(&in, "tcp://0.0.0.0:*");
	rdo_endpoints_add(&in, ipc);
	rdo_endpoints_add(&in, "tcp://127.0.0.1:*");
	cr_assert_eq(rdo_zsock_bind_all(s, &p, "control", &in, &out), 0, "%s", logged());
	cr_assert_eq(out.n, 3);
	cr_assert(strncmp(out.ep[0], "tcp://0.0.0.0:", 14) == 0, "%s", out.ep[0]);
	cr_assert_str_eq(out.ep[1], ipc);
	cr_assert(strncmp(out.ep[2], "tcp://127.0.0.1:", 16) == 0, "%s", out.ep[2]);
	cr_assert_eq(mechanism(s), ZMQ_CURVE, "the CURVE endpoint was bound last");
	char joined[3 * RDO_ENDPOINT_MAX];
	rdo_endpoints_join(&out, joined, sizeof(joined));
	char expect[3 * RDO_ENDPOINT_MAX];
	snprintf(expect, sizeof(expect), "%s %s %s", out.ep[0], out.ep[1], out.ep[2]);
	cr_assert_str_eq(joined, expect);
}

Test(zsock, bind_all_failure_leaves_out_empty)
{
	void *s = new_socket(ZMQ_ROUTER);
	struct rdo_endpoints in = {0}, out = {.n = 5};
	rdo_endpoints_add(&in, "tcp://127.0.0.1:*");
	rdo_endpoints_add(&in, "tcp://0.0.0.0:*");
	cr_assert_eq(rdo_zsock_bind_all(s, NULL, "live stream", &in, &out), -EPERM);
	cr_assert_eq(out.n, 0);
}

/* libzmq cannot clear a ZAP domain, so a plain bind after a CURVE one must be refused. */
Test(zsock, plain_after_curve_on_one_socket_refused)
{
	struct rdo_zsock_policy p = curve_policy();
	void *s = new_socket(ZMQ_ROUTER);
	char bound[RDO_ENDPOINT_MAX];
	cr_assert_eq(rdo_zsock_bind(s, &p, "control", "tcp://0.0.0.0:*", bound, sizeof(bound)), 0,
		     "%s", logged());
	char domain[64];
	size_t len = sizeof(domain);
	cr_assert_eq(zmq_getsockopt(s, ZMQ_ZAP_DOMAIN, domain, &len), 0);
	cr_assert_str_eq(domain, "control");
	cr_assert_eq(rdo_zsock_bind(s, &p, "control", "tcp://127.0.0.1:*", bound, sizeof(bound)),
		     -EINVAL);
	assert_logged("bind the local endpoints first");
}

/* The ZAP domain is the surface's first word, which the audit lines name. */
Test(zsock, zap_domain_is_the_surfaces_first_word)
{
	struct rdo_zsock_policy p = curve_policy();
	void *s = new_socket(ZMQ_XPUB);
	char bound[RDO_ENDPOINT_MAX];
	cr_assert_eq(
	    rdo_zsock_bind(s, &p, "lossless stream", "tcp://0.0.0.0:*", bound, sizeof(bound)), 0,
	    "%s", logged());
	char domain[64];
	size_t len = sizeof(domain);
	cr_assert_eq(zmq_getsockopt(s, ZMQ_ZAP_DOMAIN, domain, &len), 0);
	cr_assert_str_eq(domain, "lossless");
}

Test(zsock, ipc_socket_gets_the_policys_mode)
{
	struct rdo_zsock_policy p;
	rdo_zsock_policy_init(&p);
	cr_assert_eq(p.ipc_mode, 0660);
	umask(022);
	char ep[128], bound[RDO_ENDPOINT_MAX];
	struct stat st;
	snprintf(ep, sizeof(ep), "ipc://%s/a", dir);
	cr_assert_eq(rdo_zsock_bind(new_socket(ZMQ_PUB), NULL, "status", ep, bound, sizeof(bound)),
		     0, "%s", logged());
	cr_assert_eq(stat(bound + 6, &st), 0, "%s", bound);
	cr_assert_eq(st.st_mode & 07777, 0660, "mode %04o", st.st_mode & 07777);
	p.ipc_mode = 0600;
	snprintf(ep, sizeof(ep), "ipc://%s/b", dir);
	cr_assert_eq(rdo_zsock_bind(new_socket(ZMQ_PUB), &p, "status", ep, bound, sizeof(bound)), 0,
		     "%s", logged());
	cr_assert_eq(stat(bound + 6, &st), 0, "%s", bound);
	cr_assert_eq(st.st_mode & 07777, 0600, "mode %04o", st.st_mode & 07777);
}

/* libzmq would unlink a live server's socket file and take the path; zsock knocks first. */
Test(zsock, ipc_path_of_a_live_server_refused)
{
	char ep[128], bound[RDO_ENDPOINT_MAX];
	snprintf(ep, sizeof(ep), "ipc://%s/ctl", dir);
	cr_assert_eq(
	    rdo_zsock_bind(new_socket(ZMQ_ROUTER), NULL, "control", ep, bound, sizeof(bound)), 0,
	    "%s", logged());
	cr_assert_eq(
	    rdo_zsock_bind(new_socket(ZMQ_ROUTER), NULL, "control", ep, bound, sizeof(bound)),
	    -EADDRINUSE);
	assert_logged("is in use by another running server: stop it, or bind another path");
}

Test(zsock, tcp_port_in_use_explained)
{
	char bound[RDO_ENDPOINT_MAX];
	cr_assert_eq(rdo_zsock_bind(new_socket(ZMQ_ROUTER), NULL, "control", "tcp://127.0.0.1:*",
				    bound, sizeof(bound)),
		     0, "%s", logged());
	char taken[RDO_ENDPOINT_MAX];
	rdo_strlcpy(taken, bound, sizeof(taken));
	cr_assert_eq(
	    rdo_zsock_bind(new_socket(ZMQ_ROUTER), NULL, "control", taken, bound, sizeof(bound)),
	    -EADDRINUSE);
	assert_logged("another readoutd running? choose another port");
}

Test(zsock, recv_frames_keeps_at_most_max_and_says_so)
{
	void *pull = new_socket(ZMQ_PULL), *push = new_socket(ZMQ_PUSH);
	cr_assert_eq(zmq_bind(pull, "inproc://frames"), 0);
	cr_assert_eq(zmq_connect(push, "inproc://frames"), 0);
	zmq_msg_t f[3];
	bool oversized = true;
	cr_assert_eq(rdo_zsock_recv_frames(pull, f, 3, &oversized), 0, "nothing was sent");
	cr_assert_not(oversized);

	zmq_send(push, "a", 1, ZMQ_SNDMORE);
	zmq_send(push, "bb", 2, 0);
	zmq_pollitem_t item = {.socket = pull, .events = ZMQ_POLLIN};
	cr_assert_eq(zmq_poll(&item, 1, 5000), 1);
	cr_assert_eq(rdo_zsock_recv_frames(pull, f, 3, &oversized), 2);
	cr_assert_not(oversized);
	cr_assert_eq(zmq_msg_size(&f[1]), 2);
	zmq_msg_close(&f[0]);
	zmq_msg_close(&f[1]);

	for (int i = 0; i < 5; i++)
		zmq_send(push, "x", 1, i < 4 ? ZMQ_SNDMORE : 0);
	zmq_send(push, "next", 4, 0);
	cr_assert_eq(zmq_poll(&item, 1, 5000), 1);
	cr_assert_eq(rdo_zsock_recv_frames(pull, f, 3, &oversized), 3);
	cr_assert(oversized, "5 frames into 3 without a word");
	for (int i = 0; i < 3; i++)
		zmq_msg_close(&f[i]);
	/* The rest of the oversized message was dropped, not left for the next call. */
	cr_assert_eq(zmq_poll(&item, 1, 5000), 1);
	cr_assert_eq(rdo_zsock_recv_frames(pull, f, 3, &oversized), 1);
	cr_assert_not(oversized);
	cr_assert_eq(zmq_msg_size(&f[0]), 4);
	zmq_msg_close(&f[0]);
}
