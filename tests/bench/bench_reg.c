/*
 * Register-read latency and throughput of readoutd over tcp loopback, next to
 * a baseline of plain libzmq.
 *
 * One client sends reg_read{names=["id.scratch"]} requests to a real readoutd
 * on the emulated card, one at a time on a REQ socket, and unpacks every
 * reply. The baseline is a forked REP echo server that answers each request
 * with a copy of readoutd's reply bytes, so the client runs the same code
 * against both (pack, send, receive, unpack, check) over messages of the same
 * sizes: what is left in the ratio is the server's own cost (parsing, map
 * lookup, card read, reply packing, its socket loop) over the least a zmq
 * server can do.
 *
 * A shared 2-core machine is noisy, so the two sides run in short alternating
 * blocks and each side's latencies are pooled over all its blocks: a burst of
 * other load lands on both sides alike.
 *
 * The same readoutd also binds a non-loopback endpoint, which speaks CURVE:
 * a third client reads over it with an operator key, and its latencies are
 * printed against the plain readoutd ones (reg_read_curve_*), so the ratio
 * is what encryption and authentication add to a register read.
 *
 * Prints, per figure: "bench <name> <value> <unit> baseline <value> ratio <value>".
 * RDO_BENCH_N overrides the number of requests per side (default 100000).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bench/benchlib.h"
#include "common/keys.h"
#include "common/util.h"
#include "lib/rdoclient.h"

#define DEFAULT_N  100000
#define WARMUP	   1000
#define BLOCKS	   50 /* of N/50 requests a side: about 0.2 s each, shorter than most load swings */
#define TIMEOUT_MS 10000
#define REG_NAME   "id.scratch"

/*
 * Request ids start here so that every id packs to the same varint length
 * (5 bytes up to 2^35): request and reply keep one size for the whole run.
 */
#define ID_BASE (UINT64_C(1) << 28)

/* One side of the comparison: a REQ socket and the latencies measured on it. */
struct side {
	const char *name;
	void *sock;
	uint64_t *lat_ns; /* one per timed request */
	size_t nlat;
	uint64_t total_ns; /* wall time of the timed blocks */
};

static int read_full(int fd, void *buf, size_t len)
{
	for (size_t got = 0; got < len;) {
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int write_full(int fd, const void *buf, size_t len)
{
	for (size_t put = 0; put < len;) {
		ssize_t n = write(fd, (const char *)buf + put, len - put);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		put += (size_t)n;
	}
	return 0;
}

/*
 * The baseline server, in the forked child: bind REP on an ephemeral loopback
 * port, send the endpoint up `ep_fd`, read the reply to give (length, then
 * bytes) from `reply_fd`, then answer every request with it. An empty request
 * is answered and ends the child. Never returns.
 */
static void echo_server(int ep_fd, int reply_fd)
{
	prctl(PR_SET_PDEATHSIG, SIGTERM); /* do not outlive a bench that crashed */
	void *ctx = zmq_ctx_new();
	void *rep = ctx ? zmq_socket(ctx, ZMQ_REP) : NULL;
	if (!rep || zmq_bind(rep, "tcp://127.0.0.1:*") != 0) {
		fprintf(stderr, "bench_reg: baseline server: cannot bind: %s\n",
			zmq_strerror(errno));
		_exit(1);
	}
	char ep[256] = "";
	size_t eplen = sizeof(ep);
	zmq_getsockopt(rep, ZMQ_LAST_ENDPOINT, ep, &eplen);
	uint32_t len;
	if (write_full(ep_fd, ep, sizeof(ep)) || read_full(reply_fd, &len, sizeof(len)))
		_exit(1);
	char *reply = malloc(len ? len : 1);
	if (!reply || read_full(reply_fd, reply, len))
		_exit(1);
	char req[4096];
	for (;;) {
		int n = zmq_recv(rep, req, sizeof(req), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			_exit(1);
		zmq_send(rep, reply, n == 0 ? 0 : len, 0);
		if (n == 0)
			break;
	}
	zmq_close(rep);
	zmq_ctx_term(ctx);
	_exit(0);
}

static void *req_socket(void *ctx, const char *endpoint, const struct rdo_client_keys *keys)
{
	void *s = zmq_socket(ctx, ZMQ_REQ);
	if (!s)
		return NULL;
	if (keys && rdo_client_keys_apply(keys, s)) {
		fprintf(stderr, "bench_reg: cannot set CURVE keys: %s\n", zmq_strerror(errno));
		zmq_close(s);
		return NULL;
	}
	int zero = 0, timeout = TIMEOUT_MS;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	zmq_setsockopt(s, ZMQ_SNDTIMEO, &timeout, sizeof(timeout));
	if (zmq_connect(s, endpoint) != 0) {
		fprintf(stderr, "bench_reg: cannot connect to %s: %s\n", endpoint,
			zmq_strerror(errno));
		zmq_close(s);
		return NULL;
	}
	return s;
}

/*
 * One register read as a client does it: pack the request, send it, receive
 * the reply, unpack it and check it is a successful read of one register.
 * The raw reply is copied to `raw` (of `*rawlen` bytes) when given.
 */
static int round_trip(void *sock, uint64_t id, uint8_t *raw, size_t *rawlen)
{
	char *names[] = {REG_NAME};
	Rdo__RegReadRequest rr = RDO__REG_READ_REQUEST__INIT;
	rr.n_names = 1;
	rr.names = names;
	Rdo__Request req = RDO__REQUEST__INIT;
	req.version = RDO_PROTOCOL_VERSION;
	req.id = id;
	req.cmd_case = RDO__REQUEST__CMD_REG_READ;
	req.reg_read = &rr;
	uint8_t buf[256]; /* the request packs to a few dozen bytes */
	size_t n = rdo__request__pack(&req, buf);
	if (zmq_send(sock, buf, n, 0) < 0) {
		fprintf(stderr, "bench_reg: send: %s\n", zmq_strerror(errno));
		return -1;
	}
	zmq_msg_t msg;
	zmq_msg_init(&msg);
	if (zmq_msg_recv(&msg, sock, 0) < 0) {
		fprintf(stderr, "bench_reg: no reply within %d ms: %s\n", TIMEOUT_MS,
			zmq_strerror(errno));
		zmq_msg_close(&msg);
		return -1;
	}
	Rdo__Reply *rep = rdo__reply__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
	int rc = 0;
	if (!rep) {
		fprintf(stderr, "bench_reg: a %zu-byte reply is not a Reply protobuf\n",
			zmq_msg_size(&msg));
		rc = -1;
	} else if (rep->error != RDO__ERROR_CODE__OK) {
		fprintf(stderr, "bench_reg: reg_read %s failed: %s: %s\n", REG_NAME,
			rdo_client_error_name(rep->error), rep->message);
		rc = -1;
	} else if (rep->body_case != RDO__REPLY__BODY_VALUES || rep->values->n_regs != 1) {
		fprintf(stderr, "bench_reg: reg_read %s: the reply carries no value\n", REG_NAME);
		rc = -1;
	}
	if (rc == 0 && raw) {
		if (zmq_msg_size(&msg) > *rawlen) {
			fprintf(stderr, "bench_reg: reply of %zu bytes is too large\n",
				zmq_msg_size(&msg));
			rc = -1;
		} else {
			*rawlen = zmq_msg_size(&msg);
			memcpy(raw, zmq_msg_data(&msg), *rawlen);
		}
	}
	rdo__reply__free_unpacked(rep, NULL);
	zmq_msg_close(&msg);
	return rc;
}

/* `count` untimed round trips, to settle connections, caches and allocators. */
static int warm_up(struct side *s, uint64_t *id, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (round_trip(s->sock, (*id)++, NULL, NULL))
			return -1;
	return 0;
}

/* `count` timed round trips, appended to the side's latencies and wall time. */
static int run_block(struct side *s, uint64_t *id, size_t count)
{
	uint64_t start = rdo_now_ns();
	for (size_t i = 0; i < count; i++) {
		uint64_t t0 = rdo_now_ns();
		if (round_trip(s->sock, (*id)++, NULL, NULL)) {
			fprintf(stderr, "bench_reg: %s: request %zu failed\n", s->name, s->nlat);
			return -1;
		}
		s->lat_ns[s->nlat++] = rdo_now_ns() - t0;
	}
	s->total_ns += rdo_now_ns() - start;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* Nearest-rank percentile of sorted latencies, in microseconds. */
static double percentile_us(const uint64_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)ceil(p / 100.0 * (double)n);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return (double)sorted[rank - 1] / 1000.0;
}

static size_t bench_count(void)
{
	const char *s = getenv("RDO_BENCH_N");
	if (!s || !*s)
		return DEFAULT_N;
	char *end;
	unsigned long long n = strtoull(s, &end, 10);
	if (*end || n < BLOCKS) {
		fprintf(stderr, "bench_reg: RDO_BENCH_N=%s: expected a count of at least %d\n", s,
			BLOCKS);
		return 0;
	}
	return (size_t)n;
}

int main(void)
{
	int status = 1;
	struct rdo_daemon d = {.pid = -1};
	struct side rdo = {.name = "readoutd"}, base = {.name = "baseline"};
	struct side curve = {.name = "readoutd over CURVE"};
	char keydir[] = "/tmp/rdo-bench-keys-XXXXXX";
	bool keys_made = false;
	void *ctx = NULL;
	int ep_pipe[2], reply_pipe[2];

	size_t n = bench_count();
	if (n == 0)
		return 1;
	size_t per_block = n / BLOCKS;
	n = per_block * BLOCKS;

	/*
	 * The baseline forks before this process has a zmq context: contexts do
	 * not survive fork. The pipes are close-on-exec so that readoutd does not
	 * hold them open.
	 */
	if (pipe2(ep_pipe, O_CLOEXEC) || pipe2(reply_pipe, O_CLOEXEC)) {
		perror("bench_reg: pipe");
		return 1;
	}
	pid_t child = fork();
	if (child < 0) {
		perror("bench_reg: fork");
		return 1;
	}
	if (child == 0) {
		close(ep_pipe[0]);
		close(reply_pipe[1]);
		echo_server(ep_pipe[1], reply_pipe[0]);
	}
	close(ep_pipe[1]);
	close(reply_pipe[0]);
	char echo_ep[256];
	if (read_full(ep_pipe[0], echo_ep, sizeof(echo_ep))) {
		fprintf(stderr, "bench_reg: the baseline server did not start\n");
		goto out_child;
	}
	echo_ep[sizeof(echo_ep) - 1] = '\0';

	/* The server's and the client's key pairs, the client authorised as an operator. */
	struct rdo_keypair server_kp, client_kp;
	char err[512], path[PATH_MAX], curve_ep[256] = "";
	if (!mkdtemp(keydir)) {
		perror("bench_reg: mkdtemp");
		goto out_child;
	}
	keys_made = true;
	snprintf(path, sizeof(path), "%s/server", keydir);
	int krc = rdo_key_generate(path, "bench-server", &server_kp, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/client", keydir);
	if (krc == 0)
		krc = rdo_key_generate(path, "bench-client", &client_kp, err, sizeof(err));
	snprintf(path, sizeof(path), "%s/authorized_keys", keydir);
	FILE *af = krc ? NULL : fopen(path, "w");
	if (!af) {
		fprintf(stderr, "bench_reg: cannot make keys: %s\n", krc ? err : strerror(errno));
		goto out_child;
	}
	fprintf(af, "operator %s bench-client\n", client_kp.public_z85);
	fclose(af);
	char set_key[PATH_MAX + 32], set_auth[PATH_MAX + 32];
	snprintf(set_key, sizeof(set_key), "security.server_key=\"%s/server.key\"", keydir);
	snprintf(set_auth, sizeof(set_auth), "security.authorized_keys=\"%s/authorized_keys\"",
		 keydir);
	const char *const set[] = {"control.bind=[\"tcp://127.0.0.1:*\", \"tcp://0.0.0.0:*\"]",
				   set_key, set_auth, NULL};
	struct rdo_daemon_opts dopts = {.set = set};
	if (rdo_daemon_start_opts(&d, &dopts) != 0) {
		fprintf(stderr, "bench_reg: readoutd did not start (exit status %d, log in %s)\n",
			d.exit_status, d.log);
		goto out_daemon;
	}
	/* The CURVE endpoint, as bound on every address, dialled on loopback. */
	char *log = rdo_daemon_log(&d);
	const char *pub = log ? strstr(log, " tcp://0.0.0.0:") : NULL;
	if (pub)
		snprintf(curve_ep, sizeof(curve_ep), "tcp://127.0.0.1:%.*s",
			 (int)strcspn(pub + 15, " ,\n"), pub + 15);
	free(log);
	struct rdo_client_keys ck = {.enabled = true, .own = client_kp};
	memcpy(ck.server_public, server_kp.public_z85, sizeof(ck.server_public));
	rdo.lat_ns = malloc(n * sizeof(*rdo.lat_ns));
	base.lat_ns = malloc(n * sizeof(*base.lat_ns));
	curve.lat_ns = malloc(n * sizeof(*curve.lat_ns));
	ctx = zmq_ctx_new();
	if (!rdo.lat_ns || !base.lat_ns || !curve.lat_ns || !ctx || !curve_ep[0]) {
		fprintf(stderr, "bench_reg: out of memory, or no CURVE endpoint in the log\n");
		goto out_sockets;
	}
	rdo.sock = req_socket(ctx, d.tcp, NULL);
	base.sock = req_socket(ctx, echo_ep, NULL);
	curve.sock = req_socket(ctx, curve_ep, &ck);
	if (!rdo.sock || !base.sock || !curve.sock)
		goto out_sockets;

	/* One real reply, handed to the baseline server as the one it gives. */
	uint64_t id = ID_BASE;
	uint8_t reply[4096];
	size_t reply_len = sizeof(reply);
	if (round_trip(rdo.sock, id++, reply, &reply_len))
		goto out_sockets;
	uint32_t len32 = (uint32_t)reply_len;
	if (write_full(reply_pipe[1], &len32, sizeof(len32)) ||
	    write_full(reply_pipe[1], reply, reply_len)) {
		fprintf(stderr, "bench_reg: the baseline server went away\n");
		goto out_sockets;
	}

	if (warm_up(&rdo, &id, WARMUP) || warm_up(&base, &id, WARMUP) ||
	    warm_up(&curve, &id, WARMUP))
		goto out_sockets;
	for (int b = 0; b < BLOCKS; b++) {
		/* Rotate which side goes first, so none always follows another. */
		struct side *order[3] = {&rdo, &base, &curve};
		for (int k = 0; k < 3; k++)
			if (run_block(order[(b + k) % 3], &id, per_block))
				goto out_sockets;
	}

	qsort(rdo.lat_ns, n, sizeof(*rdo.lat_ns), cmp_u64);
	qsort(base.lat_ns, n, sizeof(*base.lat_ns), cmp_u64);
	bench_print_figure("reg_read_median_us", percentile_us(rdo.lat_ns, n, 50), "us",
			   percentile_us(base.lat_ns, n, 50), 2);
	bench_print_figure("reg_read_p99_us", percentile_us(rdo.lat_ns, n, 99), "us",
			   percentile_us(base.lat_ns, n, 99), 2);
	/* For ops/s higher is better: a ratio below 1 means readoutd is slower. */
	bench_print_figure("reg_read_ops", (double)n * 1e9 / (double)rdo.total_ns, "ops/s",
			   (double)n * 1e9 / (double)base.total_ns, 0);
	/* CURVE against the same readoutd in plain: what encryption and ZAP add. */
	qsort(curve.lat_ns, n, sizeof(*curve.lat_ns), cmp_u64);
	bench_print_figure("reg_read_curve_median_us", percentile_us(curve.lat_ns, n, 50), "us",
			   percentile_us(rdo.lat_ns, n, 50), 2);
	bench_print_figure("reg_read_curve_p99_us", percentile_us(curve.lat_ns, n, 99), "us",
			   percentile_us(rdo.lat_ns, n, 99), 2);

	/* An empty request ends the baseline server. */
	char empty;
	if (zmq_send(base.sock, "", 0, 0) < 0 || zmq_recv(base.sock, &empty, 1, 0) < 0) {
		fprintf(stderr, "bench_reg: the baseline server did not stop\n");
		goto out_sockets;
	}
	status = 0;
out_sockets:
	if (curve.sock)
		zmq_close(curve.sock);
	if (base.sock)
		zmq_close(base.sock);
	if (rdo.sock)
		zmq_close(rdo.sock);
	if (ctx)
		zmq_ctx_term(ctx);
	free(curve.lat_ns);
	free(base.lat_ns);
	free(rdo.lat_ns);
out_daemon:
	if (rdo_daemon_stop(&d) != 0) {
		fprintf(stderr, "bench_reg: readoutd did not exit cleanly (log in %s)\n", d.log);
		status = 1;
	}
out_child:
	close(reply_pipe[1]);
	close(ep_pipe[0]);
	if (status != 0)
		kill(child, SIGTERM); /* it may be waiting for a request that never comes */
	int cst;
	if (waitpid(child, &cst, 0) != child || !WIFEXITED(cst) || WEXITSTATUS(cst) != 0) {
		if (status == 0)
			fprintf(stderr, "bench_reg: the baseline server failed\n");
		status = 1;
	}
	if (keys_made) {
		static const char *const files[] = {"server.key", "server.pub", "client.key",
						    "client.pub", "authorized_keys"};
		for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
			snprintf(path, sizeof(path), "%s/%s", keydir, files[i]);
			unlink(path);
		}
		rmdir(keydir);
	}
	return status;
}
