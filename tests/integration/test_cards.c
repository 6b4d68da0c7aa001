/*
 * Integration: one readoutd reading out two emulated cards, each acquiring
 * and addressed by name over the one control socket; SIGTERM in the middle
 * of acquisition with both writers on; SIGHUP reloading a register map while
 * a lossless consumer checks every superpage.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static struct rdo_output o;

/* Two cards, each with its own streams: ipc paths named after the card, any free tcp port. */
#define TWO_CARDS                                                                                  \
	"dma: { superpage_size: 256KiB, superpages: 32, autostart: true }\n"                       \
	"live: { bind: [\"tcp://127.0.0.1:*\", \"ipc://@DIR@/{card}.live\"] }\n"                   \
	"lossless: { bind: [\"tcp://127.0.0.1:*\", \"ipc://@DIR@/{card}.lossless\"] }\n"           \
	"cards:\n"                                                                                 \
	"  - { name: a, address: \"@DIR@/a\", regmap: \"@MAP@/rdo-sim.yaml\",\n"                   \
	"      sim: { links: 4, serial: 0xaaaa, rate: 16MB/s } }\n"                                \
	"  - { name: b, address: \"@DIR@/b\", regmap: \"@MAP@/rdo-sim.yaml\",\n"                   \
	"      sim: { links: 2, serial: 0xbbbb, rate: 8MB/s }, dma: { superpages: 16 } }\n"

static void start(struct rdo_daemon *d, const char *config)
{
	cr_assert_eq(rdo_daemon_start(d, config, NULL), 0, "readoutd did not start (exit %d): %s",
		     d->exit_status, rdo_daemon_log(d));
}

/* The first tcp endpoint of `what` (live, lossless) in card `card`'s ready line. */
static void card_endpoint(const struct rdo_daemon *d, const char *card, const char *what, char *ep,
			  size_t cap)
{
	char *log = rdo_daemon_log(d), key[64];
	snprintf(key, sizeof(key), "card %s ready:", card);
	const char *line = strstr(log, key);
	cr_assert_not_null(line, "no \"%s\" line: %s", key, log);
	snprintf(key, sizeof(key), " %s on tcp://", what);
	const char *p = strstr(line, key);
	cr_assert(p && p < strchr(line, '\n'), "no %s endpoint for card %s: %s", what, card, line);
	p += strlen(key) - strlen("tcp://");
	snprintf(ep, cap, "%.*s", (int)strcspn(p, " ,\n"), p);
	free(log);
}

/* The number after "key": in `json`, past the first `scope` if given. */
static uint64_t jnum(const char *json, const char *scope, const char *key)
{
	const char *p = scope ? strstr(json, scope) : json;
	cr_assert_not_null(p, "no %s in %s", scope, json);
	char k[64];
	snprintf(k, sizeof(k), "\"%s\":", key);
	const char *v = strstr(p, k);
	cr_assert_not_null(v, "no \"%s\" in %s", key, json);
	return strtoull(v + strlen(k), NULL, 10);
}

/* `readoutctl --card CARD --json status`'s value of `key` after `scope`. */
static uint64_t status_num(const struct rdo_daemon *d, const char *card, const char *scope,
			   const char *key)
{
	cr_assert_eq(rdo_run(&o, "readoutctl -t 10 -e %s --card %s --json status", d->tcp, card), 0,
		     "status of %s: %s", card, o.err);
	return jnum(o.out, scope, key);
}

static uint64_t wait_status(const struct rdo_daemon *d, const char *card, const char *scope,
			    const char *key, uint64_t min, int timeout_ms)
{
	uint64_t deadline = rdo_now_ms() + (uint64_t)timeout_ms, v;
	while ((v = status_num(d, card, scope, key)) < min && rdo_now_ms() < deadline)
		rdo_sleep_ms(100);
	return v;
}

TestSuite(cards, .fini = rdo_harness_cleanup, .timeout = 120);

Test(cards, two_cards_acquire_and_are_addressed_by_name)
{
	struct rdo_daemon d;
	start(&d, TWO_CARDS);

	cr_assert_eq(rdo_run(&o, "readoutctl -e %s list-cards", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "aaaa") && strstr(o.out, "bbbb"), "%s", o.out);
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s --json list-cards", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "\"card\":\"a\"") && strstr(o.out, "\"card\":\"b\""), "%s", o.out);

	/* Each name reaches its own card: the serials differ, the links too. */
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s --card b info", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "bbbb") && !strstr(o.out, "aaaa"), "%s", o.out);
	cr_assert_eq(rdo_run(&o, "RDO_CARD=a readoutctl -e %s info", d.tcp), 0, "%s", o.err);
	cr_assert(strstr(o.out, "aaaa"), "%s", o.out);

	/* A write to one card leaves the other as it was. */
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s --card a reg write id.scratch 0x1111", d.tcp), 0,
		     "%s", o.err);
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s --card b reg read id.scratch", d.tcp), 0, "%s",
		     o.err);
	cr_assert(!strstr(o.out, "(4369)"), "card b's scratch changed with a's: %s", o.out);
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s --card a reg read id.scratch", d.tcp), 0, "%s",
		     o.err);
	cr_assert(strstr(o.out, "(4369)"), "%s", o.out);

	/* No card named, or an unknown one: refused, naming the cards there are. */
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s reg read id.scratch", d.tcp), 1);
	cr_assert(strstr(o.err, "reads out 2 cards (a, b)"), "%s", o.err);
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s --card c info", d.tcp), 1);
	cr_assert(strstr(o.err, "no card \"c\""), "%s", o.err);

	/* Both acquire; each card's lossless stream delivers its own card's superpages. */
	const char *cards[] = {"a", "b"};
	for (unsigned i = 0; i < 2; i++) {
		char ep[256];
		card_endpoint(&d, cards[i], "lossless", ep, sizeof(ep));
		int rc =
		    rdo_run(&o, "readout-sub -e %s --lossless --card %s --check --json -q -n 12",
			    ep, cards[i]);
		cr_assert_eq(rc, 0, "card %s: readout-sub exit %d: %s %s", cards[i], rc, o.out,
			     o.err);
		cr_assert(strstr(o.out, "\"result\":\"clean\""), "%s", o.out);
		cr_assert_eq(jnum(o.out, NULL, "links_seen"), i == 0 ? 4u : 2u, "%s", o.out);
		cr_assert_eq(jnum(o.out, NULL, "superpages"), 12u, "%s", o.out);
		cr_assert_gt(status_num(&d, cards[i], NULL, "superpages"), 0u);
	}

	/* The other card's stream is not this card's. */
	char ep[256];
	card_endpoint(&d, "a", "lossless", ep, sizeof(ep));
	int rc = rdo_run(&o, "readout-sub -e %s --lossless --card b --json -q -n 2 -t 3", ep);
	cr_assert_neq(rc, 0, "card a's stream taken as b's: %s", o.out);

	cr_assert_eq(rdo_daemon_stop(&d), 0, "%s", rdo_daemon_log(&d));
}

/* The .rdo files in `dir`: how many, their paths in `names`. */
static unsigned rdo_files(const char *dir, char names[][PATH_MAX], unsigned max)
{
	DIR *dp = opendir(dir);
	cr_assert_not_null(dp, "%s", dir);
	unsigned k = 0;
	for (struct dirent *e; (e = readdir(dp));) {
		size_t len = strlen(e->d_name);
		if (k < max && len > 4 && strcmp(e->d_name + len - 4, ".rdo") == 0)
			snprintf(names[k++], PATH_MAX, "%s/%s", dir, e->d_name);
	}
	closedir(dp);
	return k;
}

/*
 * SIGTERM while both cards acquire and both writers write: readoutd stops the
 * channels, drains them into the writers, closes the files and exits 0; every
 * file then verifies page by page.
 */
Test(cards, sigterm_mid_acquisition_leaves_every_file_verifiable)
{
	char dir[] = "/tmp/rdo-test-sigterm-XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char config[4096];
	snprintf(config, sizeof(config),
		 TWO_CARDS
		 "writer: { enabled: true, directory: \"%s\", name: \"run{run}_{card}_{seq}.rdo\","
		 " prealloc: 16MiB }\n",
		 dir);
	struct rdo_daemon d;
	start(&d, config);
	const char *writer = "\"name\":\"writer\"";
	cr_assert_geq(wait_status(&d, "a", writer, "bytes", 4u << 20, 20000), 4u << 20);
	cr_assert_geq(wait_status(&d, "b", writer, "bytes", 2u << 20, 20000), 2u << 20);

	uint64_t t0 = rdo_now_ms();
	int status = rdo_daemon_stop(&d);
	cr_assert_eq(status, 0, "exit %d after SIGTERM", status);
	cr_log_info("SIGTERM to exit: %llu ms", (unsigned long long)(rdo_now_ms() - t0));

	static char files[16][PATH_MAX];
	unsigned n = rdo_files(dir, files, 16);
	unsigned per_card[2] = {0, 0};
	for (unsigned i = 0; i < n; i++) {
		per_card[strstr(files[i], "_b_") ? 1 : 0]++;
		int rc = rdo_run(&o, "readoutctl file verify --pages %s", files[i]);
		cr_assert_eq(rc, 0, "%s does not verify: %s %s", files[i], o.out, o.err);
		cr_assert(strstr(o.out, "closed"), "%s was not closed: %s", files[i], o.out);
		unlink(files[i]);
	}
	cr_assert(per_card[0] >= 1 && per_card[1] >= 1, "files of both cards: %u of a, %u of b",
		  per_card[0], per_card[1]);
	rmdir(dir);
}

/* Copy the repository's map to `dst` and append `extra` to it. */
static void write_map(const char *dst, const char *extra)
{
	cr_assert_eq(rdo_run(&o, "cp %s/config/regmaps/rdo-sim.yaml %s && printf '%%s' '%s' >> %s",
			     RDO_SOURCE_DIR, dst, extra, dst),
		     0, "%s", o.err);
}

/*
 * SIGHUP reloads the register map while a lossless consumer checks every
 * superpage: the new register answers, acquisition goes on, nothing is lost;
 * a broken map is refused and the old one kept.
 */
Test(cards, sighup_reloads_the_map_without_losing_a_superpage)
{
	/* make tsan's daemon is several times slower: a lower rate keeps its card from dropping. */
	bool tsan = getenv("TSAN_OPTIONS") != NULL;
	char dir[] = "/tmp/rdo-test-sighup-XXXXXX", map[64], config[4096];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(map, sizeof(map), "%s/map.yaml", dir);
	write_map(map, "");
	snprintf(config, sizeof(config),
		 "card: { regmap: \"%s\", sim: { links: 2, rate: %s } }\n"
		 "dma: { superpage_size: 256KiB, superpages: 32, autostart: true }\n",
		 map, tsan ? "2MB/s" : "16MB/s");
	struct rdo_daemon d;
	start(&d, config);
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s reg read extra.marker", d.tcp), 1);

	struct rdo_proc sub;
	cr_assert_eq(rdo_spawn(&sub, "exec readout-sub -e %s --lossless --check --json -q -s 4",
			       d.lossless_tcp),
		     0);
	rdo_sleep_ms(1000);
	write_map(map, "\n  - name: extra\n    bar: 0\n    base: 0x0e00\n    registers:\n"
		       "      - { name: marker, offset: 0x0, access: rw }\n");
	kill(d.pid, SIGHUP);
	uint64_t deadline = rdo_now_ms() + 5000;
	while (rdo_run(&o, "readoutctl -e %s reg read extra.marker", d.tcp) != 0 &&
	       rdo_now_ms() < deadline)
		rdo_sleep_ms(100);
	cr_assert_eq(o.status, 0, "the reloaded map's register: %s", o.err);

	/* A broken map is refused; the one loaded before stays. */
	write_map(map, "\n  - name: broken\n    bar: nine\n");
	kill(d.pid, SIGHUP);
	deadline = rdo_now_ms() + 5000;
	char *log = NULL;
	do {
		free(log);
		rdo_sleep_ms(100);
		log = rdo_daemon_log(&d);
	} while (!strstr(log, "keeping register map") && rdo_now_ms() < deadline);
	cr_assert(strstr(log, "keeping register map rdo-sim as it was"), "%s", log);
	free(log);
	cr_assert_eq(rdo_run(&o, "readoutctl -e %s reg read extra.marker", d.tcp), 0, "%s", o.err);

	int rc = rdo_proc_wait(&sub, &o, 20000);
	cr_assert_eq(rc, 0, "readout-sub exit %d: %s %s", rc, o.out, o.err);
	cr_assert(strstr(o.out, "\"result\":\"clean\""), "%s", o.out);
	cr_assert_eq(jnum(o.out, NULL, "sequence_gaps"), 0u, "%s", o.out);
	cr_assert_gt(jnum(o.out, NULL, "superpages"), tsan ? 10u : 100u, "%s", o.out);
	/* Nothing dropped at the card while it consumed, across both reloads. */
	cr_assert_eq(jnum(o.out, NULL, "card_pages_dropped"), 0u, "%s", o.out);
	cr_assert_eq(jnum(o.out, NULL, "pages_missing"), 0u, "%s", o.out);
	cr_assert_eq(rdo_daemon_stop(&d), 0, "%s", rdo_daemon_log(&d));
	unlink(map);
	rmdir(dir);
}
