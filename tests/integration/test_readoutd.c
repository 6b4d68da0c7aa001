/*
 * Integration: a real readoutd on the emulated card, driven by readoutctl and
 * by raw ZeroMQ sockets over tcp and ipc. Every refused request is followed by
 * a check that the server still answers and that the card did not change.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "harness.h"
#include "proto/readout.pb-c.h"

static struct rdo_daemon d;
static struct rdo_output o;

static void start(void)
{
	cr_assert_eq(rdo_daemon_start(&d, NULL, NULL), 0, "readoutd did not start: %s",
		     rdo_daemon_log(&d));
	cr_assert(d.tcp[0] && d.ipc[0], "ready line lacks endpoints");
}

static void stop(void)
{
	int status = rdo_daemon_stop(&d);
	cr_assert_eq(status, 0, "readoutd exited with %d; log:\n%s", status, rdo_daemon_log(&d));
}

/* readoutctl against the tcp endpoint; returns its exit status. */
#define ctl(...) rdo_run(&o, "readoutctl -t 5 -e %s " __VA_ARGS__)

static void expect_scratch(const char *value)
{
	cr_assert_eq(ctl("reg read id.scratch", d.tcp), 0, "server stopped answering: %s", o.err);
	cr_assert(strstr(o.out, value), "scratch changed: %s (expected %s)", o.out, value);
}

/* Refused with exit 1, `why` on stderr, and nothing changed on the card. */
static void expect_refused(const char *why)
{
	cr_assert_eq(o.status, 1, "exit %d, stderr: %s", o.status, o.err);
	cr_assert(strstr(o.err, why), "stderr lacks \"%s\": %s", why, o.err);
	cr_assert(strchr(o.err, '\n') == o.err + strlen(o.err) - 1, "reason not one line: %s",
		  o.err);
	expect_scratch("0x12345678");
}

TestSuite(readoutd, .init = start, .fini = stop, .timeout = 60);

Test(readoutd, info_over_tcp_and_ipc)
{
	cr_assert_eq(ctl("info", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "sim0"));
	cr_assert(strstr(o.out, "firmware  1.2.3"), "%s", o.out);
	cr_assert(strstr(o.out, "rdo-sim"));
	cr_assert_eq(ctl("--json info", d.ipc), 0, "%s", o.err);
	cr_assert(strstr(o.out, "\"identity\":1380208433"), "%s", o.out);
	cr_assert(strstr(o.out, "\"links\":12"), "%s", o.out);
}

Test(readoutd, write_read_modify_by_name)
{
	cr_assert_eq(ctl("reg write id.scratch 0xcafe", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "0x00000000 -> 0x0000cafe"), "%s", o.out);
	cr_assert_eq(ctl("reg read id.scratch", d.ipc), 0);
	cr_assert(strstr(o.out, "0x0000cafe"), "ipc client does not see the tcp write: %s", o.out);
	cr_assert_eq(ctl("reg modify ctrl.config.led=on ctrl.config.data_source=counter", d.tcp), 0,
		     "%s", o.err);
	cr_assert(strstr(o.out, "led=on"), "%s", o.out);
	cr_assert(strstr(o.out, "data_source=counter"), "%s", o.out);
	cr_assert_eq(ctl("reg read ctrl.config.data_source", d.tcp), 0);
	cr_assert(strstr(o.out, "counter"), "%s", o.out);
	cr_assert_eq(ctl("reg modify ctrl.config=0x2/0x2", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "loopback=1"), "masked modify: %s", o.out);
	cr_assert(strstr(o.out, "led=on"), "masked modify touched other bits: %s", o.out);
	cr_assert_eq(ctl("reg write bar0:0x10 7", d.tcp), 0, "%s", o.err);
	cr_assert_eq(ctl("--json reg read id.scratch", d.tcp), 0);
	cr_assert(strstr(o.out, "\"value\":7"), "raw write not seen by name: %s", o.out);
}

Test(readoutd, list_with_pattern_and_json)
{
	cr_assert_eq(ctl("reg list 'link.*'", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "link.enable"));
	cr_assert(strstr(o.out, "Link enable mask."), "no description: %s", o.out);
	cr_assert_null(strstr(o.out, "id.scratch"));
	cr_assert_eq(ctl("--json reg list", d.tcp), 0);
	cr_assert(strstr(o.out, "\"name\":\"mon.temperature\""), "%s", o.out);
	cr_assert(strstr(o.out, "\"access\":\"w1c\""), "%s", o.out);
	cr_assert_eq(ctl("reg list 'nothing.*'", d.tcp), 1);
	cr_assert(strstr(o.err, "matches"), "%s", o.err);
}

Test(readoutd, refused_requests_change_nothing)
{
	cr_assert_eq(ctl("reg write id.scratch 0x12345678", d.tcp), 0);
	ctl("reg read id.nosuch", d.tcp);
	expect_refused("no register \"id.nosuch\"");
	ctl("--json reg read id.nosuch", d.tcp);
	cr_assert(strstr(o.out, "\"error\":\"unknown register\",\"code\":4"),
		  "--json refusal on stdout: %s", o.out);
	expect_refused("no register \"id.nosuch\"");
	ctl("reg write id.scratch.nosuch 1", d.tcp);
	expect_refused("has no field");
	ctl("reg write id.identity 1", d.tcp);
	expect_refused("read-only");
	ctl("reg read ctrl.reset", d.tcp);
	expect_refused("write-only");
	ctl("reg write ctrl.config.data_source 4", d.tcp);
	expect_refused("does not fit in 2 bits");
	ctl("reg write id.scratch 0x100000000", d.tcp);
	expect_refused("does not fit in 32 bits");
	ctl("reg read bar0:0x10000", d.tcp);
	expect_refused("outside BAR 0");
	ctl("reg write bar0:0x11 1", d.tcp);
	expect_refused("not aligned");
	ctl("reg read bar4:0", d.tcp);
	expect_refused("no BAR 4");
	ctl("reg write ctrl.config.data_source nosuch", d.tcp);
	expect_refused("one of: links, pattern, counter");
	ctl("reg modify id.scratch=1 id.identity=2", d.tcp);
	expect_refused("read-only"); /* the first, valid change was not applied either */
	ctl("reg modify ctrl.config.led=1 ctrl.config=1/1", d.tcp);
	expect_refused("same bits");
}

Test(readoutd, define_register_at_run_time)
{
	cr_assert_eq(ctl("reg define dbg.counter 0x10 --bar 0 --base 0x8000 --field lo=15:0 "
			 "--field hi=31:16 --desc 'debug counter'",
			 d.tcp),
		     0, "%s", o.err);
	cr_assert_eq(ctl("reg list 'dbg.*'", d.ipc), 0, "%s", o.err);
	cr_assert(strstr(o.out, "bar0:0x8010"), "%s", o.out);
	cr_assert(strstr(o.out, "debug counter"), "%s", o.out);
	cr_assert_eq(ctl("reg define dbg.counter 0x20", d.tcp), 1);
	cr_assert(strstr(o.err, "defined twice"), "%s", o.err);
	cr_assert_eq(ctl("reg define id.alias 0x10", d.tcp), 1);
	cr_assert(strstr(o.err, "overlaps id.scratch"), "%s", o.err);
	cr_assert_eq(ctl("reg define far.away 0 --bar 0 --base 0x20000", d.tcp), 1);
	cr_assert(strstr(o.err, "outside BAR"), "%s", o.err);
	cr_assert_eq(ctl("reg define dbg.bad 0x20 --field a=3:0 --field b=4:2", d.tcp), 1);
	cr_assert(strstr(o.err, "overlaps field a"), "%s", o.err);
	cr_assert_eq(ctl("reg read dbg.counter.hi", d.tcp), 0, "%s", o.err);
}

Test(readoutd, usage_and_transport_errors)
{
	cr_assert_eq(rdo_run(&o, "readoutctl frobnicate"), 2);
	cr_assert(strstr(o.err, "unknown command"), "%s", o.err);
	cr_assert_eq(rdo_run(&o, "readoutctl reg write id.scratch"), 2);
	cr_assert_eq(rdo_run(&o, "readoutctl --help"), 0);
	cr_assert(strstr(o.out, "reg modify"));
	cr_assert_eq(rdo_run(&o, "readoutctl -t 0.3 -e ipc://%s/nobody info", d.dir), 3);
	cr_assert(strstr(o.err, "no reply"), "%s", o.err);
}

/*
 * --card takes a card name, one rule for every tool: not empty, no '/', no
 * longer than a card name. A name that breaks it is a usage error (exit 2)
 * with the same message from each tool, before it connects anywhere: a
 * server that could answer (unknown card, exit 1) does not get the chance.
 */
static const char *const bad_cards[] = {
    "a/b", "", "sim0/", "c123456789012345678901234567890123456789012345678901234567890123", /* 64 */
};

static void expect_card_refused(const char *tool, const char *card)
{
	char want[512];
	snprintf(want, sizeof(want),
		 "%s: --card: expected a card name (1 to 63 characters, no '/'), got \"%s\" "
		 "(%s --help)\n",
		 tool, card, tool);
	cr_assert_eq(o.status, 2, "%s --card '%s': exit %d: %s", tool, card, o.status, o.err);
	cr_assert_str_eq(o.err, want, "%s --card '%s'", tool, card);
	cr_assert_str_eq(o.out, "", "%s --card '%s' printed: %s", tool, card, o.out);
}

Test(readoutd, readoutctl_refuses_a_card_that_is_no_name)
{
	for (size_t i = 0; i < sizeof(bad_cards) / sizeof(bad_cards[0]); i++) {
		ctl("--card '%s' info", d.tcp, bad_cards[i]);
		expect_card_refused("readoutctl", bad_cards[i]);
	}
	cr_assert_eq(ctl("--card sim0 info", d.tcp), 0, "%s", o.err);
}

Test(readoutd, readout_sub_refuses_a_card_that_is_no_name)
{
	for (size_t i = 0; i < sizeof(bad_cards) / sizeof(bad_cards[0]); i++) {
		rdo_run(&o, "readout-sub -e %s --card '%s' -q -n 1 -t 2", d.tcp, bad_cards[i]);
		expect_card_refused("readout-sub", bad_cards[i]);
		rdo_run(&o, "readout-sub -e %s --lossless --card '%s' -q -n 1 -t 2", d.tcp,
			bad_cards[i]);
		expect_card_refused("readout-sub", bad_cards[i]);
	}
}

Test(readoutd, readout_writer_refuses_a_card_that_is_no_name)
{
	for (size_t i = 0; i < sizeof(bad_cards) / sizeof(bad_cards[0]); i++) {
		/* Were the name let by, --seconds would end the writer with status 0 or 3. */
		rdo_run(&o, "readout-writer --control %s -e %s -d %s --card '%s' --seconds 1",
			d.tcp, d.tcp, d.dir, bad_cards[i]);
		expect_card_refused("readout-writer", bad_cards[i]);
	}
}

/* A DEALER socket for raw frames. */
static void *raw_socket(void *ctx, const char *endpoint)
{
	void *s = zmq_socket(ctx, ZMQ_DEALER);
	int zero = 0, timeout = 5000;
	zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof(timeout));
	cr_assert_eq(zmq_connect(s, endpoint), 0);
	return s;
}

static Rdo__Reply *raw_call(void *s, const void *data, size_t len)
{
	cr_assert_eq(zmq_send(s, data, len, 0), (int)len);
	char buf[65536];
	int n = zmq_recv(s, buf, sizeof(buf), 0);
	cr_assert_gt(n, 0, "no reply to a %zu-byte frame", len);
	Rdo__Reply *r = rdo__reply__unpack(NULL, (size_t)n, (uint8_t *)buf);
	cr_assert_not_null(r, "the reply is not a Reply protobuf");
	cr_assert_eq(r->version, 1);
	cr_assert(r->message && r->message[0], "reply without a message");
	return r;
}

static size_t pack_read(uint8_t *buf, uint32_t version, const char *name)
{
	Rdo__Request req = RDO__REQUEST__INIT;
	Rdo__RegReadRequest rd = RDO__REG_READ_REQUEST__INIT;
	char *names[] = {(char *)name};
	req.version = version;
	req.id = 42;
	req.cmd_case = RDO__REQUEST__CMD_REG_READ;
	req.reg_read = &rd;
	rd.n_names = 1;
	rd.names = names;
	return rdo__request__pack(&req, buf);
}

Test(readoutd, malformed_frames_get_error_replies)
{
	cr_assert_eq(ctl("reg write id.scratch 0x12345678", d.tcp), 0);
	void *ctx = zmq_ctx_new();
	void *s = raw_socket(ctx, d.tcp);
	static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x42, 0x13};
	Rdo__Reply *r = raw_call(s, garbage, sizeof(garbage));
	cr_assert_eq(r->error, RDO__ERROR_CODE__ERR_MALFORMED, "garbage: %s", r->message);
	rdo__reply__free_unpacked(r, NULL);

	uint8_t buf[256];
	size_t n = pack_read(buf, 1, "id.scratch");
	r = raw_call(s, buf, n - 3);
	cr_assert_eq(r->error, RDO__ERROR_CODE__ERR_MALFORMED, "truncated: %s", r->message);
	rdo__reply__free_unpacked(r, NULL);

	n = pack_read(buf, 7, "id.scratch");
	r = raw_call(s, buf, n);
	cr_assert_eq(r->error, RDO__ERROR_CODE__ERR_VERSION, "%s", r->message);
	cr_assert_eq(r->id, 42);
	cr_assert(strstr(r->message, "version 1"), "%s", r->message);
	rdo__reply__free_unpacked(r, NULL);

	/* version 1, id 43, and field 99 (a command from the future): varint 1. */
	static const uint8_t future[] = {0x08, 0x01, 0x10, 0x2b, 0x98, 0x06, 0x01};
	r = raw_call(s, future, sizeof(future));
	cr_assert_eq(r->error, RDO__ERROR_CODE__ERR_UNKNOWN_COMMAND, "%s", r->message);
	cr_assert_eq(r->id, 43);
	rdo__reply__free_unpacked(r, NULL);

	n = pack_read(buf, 1, "id.scratch");
	r = raw_call(s, buf, n);
	cr_assert_eq(r->error, RDO__ERROR_CODE__OK, "%s", r->message);
	cr_assert_eq(r->values->regs[0]->value, 0x12345678);
	rdo__reply__free_unpacked(r, NULL);
	zmq_close(s);
	zmq_ctx_term(ctx);
	cr_assert(rdo_daemon_alive(&d));
}

/* Several clients at once: interleaved requests on many connections, all answered. */
Test(readoutd, many_clients_at_once)
{
	enum { CLIENTS = 16, ROUNDS = 50 };
	void *ctx = zmq_ctx_new();
	void *s[CLIENTS];
	for (int i = 0; i < CLIENTS; i++)
		s[i] = raw_socket(ctx, i % 2 ? d.tcp : d.ipc);
	uint8_t buf[256];
	size_t n = pack_read(buf, 1, "mon.temperature");
	for (int round = 0; round < ROUNDS; round++) {
		for (int i = 0; i < CLIENTS; i++)
			cr_assert_eq(zmq_send(s[i], buf, n, 0), (int)n);
		for (int i = 0; i < CLIENTS; i++) {
			char rep[4096];
			int got = zmq_recv(s[i], rep, sizeof(rep), 0);
			cr_assert_gt(got, 0, "client %d got no reply in round %d", i, round);
			Rdo__Reply *r = rdo__reply__unpack(NULL, (size_t)got, (uint8_t *)rep);
			cr_assert_not_null(r);
			cr_assert_eq(r->error, RDO__ERROR_CODE__OK);
			rdo__reply__free_unpacked(r, NULL);
		}
	}
	for (int i = 0; i < CLIENTS; i++)
		zmq_close(s[i]);
	zmq_ctx_term(ctx);

	/* And separate readoutctl processes in parallel. */
	pid_t pids[8];
	for (int i = 0; i < 8; i++) {
		pids[i] = fork();
		if (pids[i] == 0) {
			struct rdo_output mine;
			_exit(rdo_run(&mine, "readoutctl -e %s reg read mon.temperature",
				      i % 2 ? d.tcp : d.ipc));
		}
	}
	for (int i = 0; i < 8; i++) {
		int status;
		waitpid(pids[i], &status, 0);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client %d failed", i);
	}
}

Test(readoutd, temperature_moves)
{
	cr_assert_eq(ctl("--json reg read mon.temperature", d.tcp), 0);
	char *first = strdup(o.out);
	usleep(1200 * 1000);
	cr_assert_eq(ctl("--json reg read mon.temperature", d.tcp), 0);
	cr_assert_str_neq(first, o.out, "temperature did not move");
	free(first);
}

Test(readoutd, second_server_on_the_same_ipc_path_is_refused)
{
	/* A card of its own, so that only the ipc path is shared. */
	char config[2048];
	snprintf(config, sizeof(config),
		 "card: { address: \"@DIR@\", regmap: @MAP@/rdo-sim.yaml }\n"
		 "control: { bind: [ \"ipc://%s/ctl\" ] }\n",
		 d.dir);
	struct rdo_daemon second;
	cr_assert_eq(rdo_daemon_start(&second, config, NULL), -1, "second server started");
	cr_assert_eq(second.exit_status, 1);
	char *log = rdo_daemon_log(&second);
	cr_assert(strstr(log, "in use by another running server"), "%s", log);
	free(log);
	rdo_daemon_cleanup(&second);
	cr_assert_eq(ctl("info", d.ipc), 0, "first server lost its ipc endpoint: %s", o.err);
}
