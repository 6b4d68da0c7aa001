/*
 * Integration: readoutd bound to a non-loopback address speaks CURVE only.
 * Keys are made with readoutctl keygen; clients without a key, with one the
 * server does not know, and with a monitor key trying to write are refused
 * and logged; an operator key writes, and the write is in the audit log. A
 * loose secret key file, or a public address without keys, refuses start-up.
 * SIGHUP adds a key while a consumer checks every superpage.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct rdo_output o;
static char keys[] = "/tmp/rdo-test-keys-XXXXXX";

/* readoutctl keygen NAME into the keys folder; NAME's public key into `pub` (41 bytes). */
static void keygen(const char *name, char *pub)
{
	cr_assert_eq(rdo_run(&o, "readoutctl keygen %s --dir %s", name, keys), 0, "%s", o.err);
	cr_assert_eq(
	    rdo_run(&o, "sed -n 's/.*public-key = \"\\(.*\\)\"/\\1/p' %s/%s.pub", keys, name), 0);
	cr_assert_eq(strlen(o.out), 41u, "%s.pub: %s", name, o.out);
	snprintf(pub, 41, "%s", o.out);
}

static char server_pub[41], op_pub[41], mon_pub[41], stranger_pub[41];

static void make_keys(void)
{
	cr_assert_not_null(mkdtemp(keys));
	keygen("server", server_pub);
	keygen("op", op_pub);
	keygen("mon", mon_pub);
	keygen("stranger", stranger_pub);
}

static void write_authorized(const char *text)
{
	char path[PATH_MAX];
	snprintf(path, sizeof(path), "%s/authorized_keys", keys);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
}

static void cleanup(void)
{
	rdo_harness_cleanup();
	rdo_run(&o, "rm -rf %s", keys);
}

TestSuite(security, .init = make_keys, .fini = cleanup, .timeout = 120);

/*
 * Control on every address (CURVE) and on loopback (plain); streams on every
 * address too. make tsan's daemon is several times slower: a lower rate keeps
 * its card from dropping.
 */
static const char *secure_config(char *buf, size_t cap)
{
	snprintf(buf, cap,
		 "card: { regmap: \"@MAP@/rdo-sim.yaml\", sim: { links: 2, rate: %s } }\n"
		 "dma: { superpage_size: 256KiB, superpages: 32, autostart: true }\n"
		 "control: { bind: [\"tcp://127.0.0.1:*\", \"tcp://0.0.0.0:*\"] }\n"
		 "lossless: { bind: [\"tcp://0.0.0.0:*\"] }\n"
		 "security: { server_key: \"%s/server.key\", authorized_keys: "
		 "\"%s/authorized_keys\" }\n",
		 getenv("TSAN_OPTIONS") ? "2MB/s" : "16MB/s", keys, keys);
	return buf;
}

/* The endpoint of `what` bound on 0.0.0.0, from the ready line, as a client dials it. */
static void public_endpoint(const struct rdo_daemon *d, const char *what, char *ep, size_t cap)
{
	char *log = rdo_daemon_log(d), key[64];
	snprintf(key, sizeof(key), " %s on ", what);
	const char *p = strstr(log, key);
	p = p ? strstr(p, "tcp://0.0.0.0:") : NULL;
	cr_assert_not_null(p, "no public %s endpoint: %s", what, log);
	p += strlen("tcp://0.0.0.0:");
	snprintf(ep, cap, "tcp://127.0.0.1:%.*s", (int)strcspn(p, " ,\n"), p);
	free(log);
}

/* readoutctl over the public endpoint as `who` (NULL: no key). */
static int ctl_as(const char *ep, const char *who, const char *cmd)
{
	if (!who)
		return rdo_run(&o, "readoutctl -t 2 -e %s %s", ep, cmd);
	return rdo_run(&o, "readoutctl -t 5 -e %s --server-key %s/server.pub --key %s/%s.key %s",
		       ep, keys, keys, who, cmd);
}

static bool log_has(const struct rdo_daemon *d, const char *text, int timeout_ms)
{
	uint64_t deadline = rdo_now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		char *log = rdo_daemon_log(d);
		bool found = strstr(log, text) != NULL;
		free(log);
		if (found || rdo_now_ms() >= deadline)
			return found;
		rdo_sleep_ms(50);
	}
}

Test(security, roles_and_refusals_over_curve)
{
	char auth[256], cfg[2048], ep[256];
	snprintf(auth, sizeof(auth), "operator %s op\nmonitor %s mon\n", op_pub, mon_pub);
	write_authorized(auth);
	struct rdo_daemon d;
	cr_assert_eq(rdo_daemon_start(&d, secure_config(cfg, sizeof(cfg)), NULL), 0, "%s",
		     rdo_daemon_log(&d));
	public_endpoint(&d, "control", ep, sizeof(ep));

	/* No key at all: the CURVE handshake fails, nothing is answered, and it is logged. */
	cr_assert_neq(ctl_as(ep, NULL, "info"), 0, "answered without a key: %s", o.out);
	cr_assert(log_has(&d, "audit: refused a connection to control at tcp://", 3000), "%s",
		  rdo_daemon_log(&d));

	/* A key the server does not know: refused by the ZAP handler, and logged. */
	cr_assert_neq(ctl_as(ep, "stranger", "info"), 0, "answered an unknown key: %s", o.out);
	char id[16];
	snprintf(id, sizeof(id), "%.8s", stranger_pub);
	cr_assert(log_has(&d, "audit: refused CURVE connection to control", 3000), "%s",
		  rdo_daemon_log(&d));
	cr_assert(log_has(&d, id, 0), "the refusal does not name key %s", id);

	/* A monitor reads, and may not write; the refusal is logged. */
	cr_assert_eq(ctl_as(ep, "mon", "reg read id.scratch"), 0, "%s", o.err);
	cr_assert_eq(ctl_as(ep, "mon", "reg write id.scratch 7"), 4, "%s %s", o.out, o.err);
	cr_assert(strstr(o.err, "reg_write needs the operator role"), "%s", o.err);
	cr_assert(log_has(&d, "audit: refused mon", 3000), "%s", rdo_daemon_log(&d));
	cr_assert_eq(ctl_as(ep, "mon", "stop"), 4, "a monitor stopped acquisition");
	cr_assert_eq(ctl_as(ep, "mon", "reg read id.scratch"), 0, "%s", o.err);
	cr_assert(strstr(o.out, "0x00000000"), "the monitor's write went through: %s", o.out);

	/* An operator writes; the audit line names the key, the register, old and new value. */
	cr_assert_eq(ctl_as(ep, "op", "reg write id.scratch 0x2a"), 0, "%s", o.err);
	char op_id[64];
	snprintf(op_id, sizeof(op_id), "audit: op (%.8s) as operator wrote", op_pub);
	cr_assert(log_has(&d, op_id, 3000), "%s", rdo_daemon_log(&d));
	cr_assert(log_has(&d, "wrote 0x2a to card sim0 id.scratch (bar0:0x10), was 0x0", 0), "%s",
		  rdo_daemon_log(&d));

	/* The loopback endpoint stays plain: a local client is an operator without keys. */
	cr_assert_eq(rdo_run(&o, "readoutctl -t 5 -e %s reg read id.scratch", d.tcp), 0, "%s",
		     o.err);
	cr_assert(strstr(o.out, "(42)"), "%s", o.out);

	/* A monitor key takes data from the public lossless stream. */
	char lossless[256];
	public_endpoint(&d, "lossless", lossless, sizeof(lossless));
	int rc = rdo_run(&o,
			 "readout-sub -e %s --lossless --check --json -q -n 8 --server-key "
			 "%s/server.pub --key %s/mon.key",
			 lossless, keys, keys);
	cr_assert_eq(rc, 0, "readout-sub exit %d: %s %s", rc, o.out, o.err);
	cr_assert_eq(rdo_daemon_stop(&d), 0, "%s", rdo_daemon_log(&d));
}

Test(security, start_up_refusals)
{
	char cfg[2048], path[PATH_MAX];
	write_authorized("");
	snprintf(path, sizeof(path), "%s/server.key", keys);
	struct rdo_daemon d;

	/* A secret key others can read. */
	cr_assert_eq(chmod(path, 0644), 0);
	cr_assert_neq(rdo_daemon_start(&d, secure_config(cfg, sizeof(cfg)), NULL), 0);
	cr_assert_eq(d.exit_status, 1);
	char *log = rdo_daemon_log(&d);
	cr_assert(strstr(log, "chmod 600"), "%s", log);
	free(log);
	rdo_daemon_cleanup(&d);
	cr_assert_eq(chmod(path, 0600), 0);

	/* A public address without keys. */
	const char *const set[] = {"control.bind=[\"tcp://0.0.0.0:*\"]", NULL};
	struct rdo_daemon_opts opts = {.set = set};
	cr_assert_neq(rdo_daemon_start_opts(&d, &opts), 0);
	cr_assert_eq(d.exit_status, 1);
	log = rdo_daemon_log(&d);
	cr_assert(strstr(log, "needs CURVE"), "%s", log);
	free(log);
	rdo_daemon_cleanup(&d);
}

/* SIGHUP rereads the authorised keys; acquisition and a checking consumer go on untouched. */
Test(security, sighup_adds_a_key_without_losing_a_superpage)
{
	char auth[256], cfg[2048], ep[256], lossless[256];
	snprintf(auth, sizeof(auth), "operator %s op\n", op_pub);
	write_authorized(auth);
	struct rdo_daemon d;
	cr_assert_eq(rdo_daemon_start(&d, secure_config(cfg, sizeof(cfg)), NULL), 0, "%s",
		     rdo_daemon_log(&d));
	public_endpoint(&d, "control", ep, sizeof(ep));
	public_endpoint(&d, "lossless", lossless, sizeof(lossless));
	cr_assert_neq(ctl_as(ep, "mon", "info"), 0, "mon answered before it was added");

	struct rdo_proc sub;
	cr_assert_eq(rdo_spawn(&sub,
			       "exec readout-sub -e %s --lossless --check --json -q -s 5 "
			       "--server-key %s/server.pub --key %s/op.key",
			       lossless, keys, keys),
		     0);
	rdo_sleep_ms(1500);
	snprintf(auth, sizeof(auth), "operator %s op\nmonitor %s mon\n", op_pub, mon_pub);
	write_authorized(auth);
	kill(d.pid, SIGHUP);
	cr_assert(log_has(&d, "security: 2 authorised keys", 5000), "%s", rdo_daemon_log(&d));
	cr_assert_eq(ctl_as(ep, "mon", "info"), 0, "mon refused after SIGHUP: %s", o.err);

	int rc = rdo_proc_wait(&sub, &o, 20000);
	cr_assert_eq(rc, 0, "readout-sub exit %d: %s %s", rc, o.out, o.err);
	cr_assert(strstr(o.out, "\"result\":\"clean\""), "%s", o.out);
	cr_assert(strstr(o.out, "\"sequence_gaps\":0,"), "%s", o.out);
	/* Nothing dropped at the card while it consumed, across the reload. */
	cr_assert(strstr(o.out, "\"card_pages_dropped\":0,"), "%s", o.out);
	cr_assert(strstr(o.out, "\"pages_missing\":0,"), "%s", o.out);
	cr_assert_eq(rdo_daemon_stop(&d), 0, "%s", rdo_daemon_log(&d));
}
