/*
 * readout-writer: write readoutd's lossless stream to .rdo files, on the
 * readout node or on another host. The same writer engine and file format as
 * readoutd's own writer sink (common/writer.h, common/rdofile.h).
 *
 * Data path: each superpage arrives as a ZeroMQ message, which is not
 * aligned for O_DIRECT; it is copied once into a page-aligned receive buffer,
 * with its CRC32C computed in the same pass, and the writer writes that
 * buffer to disk without touching it again. The message is freed at once,
 * but the superpage's credit goes back to readoutd only when its record is
 * on disk: readoutd never has more superpages out to this writer than it has
 * buffers, and whatever the writer loses by dying is counted as dropped at
 * readoutd.
 *
 * It runs headless: a config file, a status line in the log every
 * status_interval_s, and signals (SIGTERM/SIGINT stop, SIGHUP closes the
 * current file and starts a new one, SIGUSR1 prints the status line now).
 * When readoutd is not there, or goes away, it waits and attaches again.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/crc32c.h"
#include "common/hostmem.h"
#include "common/keys.h"
#include "common/log.h"
#include "common/util.h"
#include "common/writer.h"
#include "lib/rdoclient.h"
#include "lib/rdodata.h"
#include "tools/cli.h"
#include "tools/json.h"
#include "tools/writer_config.h"

#define EXIT_LOST   1 /* superpages were received and not written */
#define EXIT_CANNOT 3 /* the directory or readoutd refused us */

#define NS		1000000000ull
#define INFO_TIMEOUT_MS 2000
#define RETRY_MS	1000
/* Stopping: in-flight superpages have all come once the stream was quiet this long. */
#define DRAIN_QUIET_MS 300
/* Attached and no welcome after this long: say what may be wrong. */
#define WELCOME_HINT_NS (5 * NS)

static const char usage_text[] =
    "usage: readout-writer [-c FILE] [-d DIR] [--control EP] [-e EP] [--card NAME]\n"
    "                      [--server-key KEY|FILE --key FILE] [--buffers N]\n"
    "                      [--seconds S] [--json] [-h]\n"
    "\n"
    "Write readoutd's lossless stream to .rdo files (readoutctl file verify|info|cat|\n"
    "recover reads them). Runs until SIGTERM or SIGINT; when readoutd is not there or\n"
    "goes away, it waits for it and attaches again.\n"
    "\n"
    "options:\n"
    "  -c, --config FILE   the config (config/readout-writer.yaml shows every key);\n"
    "                      without one: readoutd on this host's loopback, files in\n"
    "                      the current directory\n"
    "  -d, --directory DIR where the files go (writer.directory)\n"
    "      --control EP    readoutd's control endpoint, for the card's identity\n"
    "                      (source.control; default " RDO_DEFAULT_CONTROL_TCP ")\n"
    "  -e, --endpoint EP   readoutd's lossless stream (source.lossless; default\n"
    "                      " RDO_DEFAULT_LOSSLESS_TCP ")\n"
    "      --card NAME     the card whose lossless stream -e is, when readoutd reads\n"
    "                      out several (its name in readoutd's config)\n"
    "      --server-key KEY\n"
    "                      talk CURVE to both endpoints: readoutd's public key, as\n"
    "                      40 Z85 characters or a key file holding it (its .pub);\n"
    "                      default $RDO_SERVER_KEY. Needs --key\n"
    "      --key FILE      this writer's key pair file (readoutctl keygen makes one;\n"
    "                      mode 0600), in readoutd's authorized_keys as monitor or\n"
    "                      operator; default $RDO_CLIENT_KEY\n"
    "  -b, --buffers N     superpages received and not yet on disk (source.buffers)\n"
    "  -s, --seconds S     stop after S seconds, as SIGTERM does\n"
    "  -j, --json          print a summary as one JSON object on stdout at the end\n"
    "  -h, --help          this text\n"
    "\n"
    "A readoutd bound to a non-loopback address speaks CURVE only; one that refuses\n"
    "the key does not answer, and the writer keeps waiting for it, saying so.\n"
    "\n"
    "signals: SIGTERM or SIGINT write what is in flight, close the file and exit;\n"
    "SIGHUP closes the current file (the next superpage opens a new one); SIGUSR1\n"
    "prints the status line now.\n"
    "\n"
    "JSON summary keys: seconds, sessions (attachments to readoutd), superpages\n"
    "(received), bytes (received), records and record_bytes (written), files (closed\n"
    "with their footer), file (the last one), run_ends, lost (received and not\n"
    "written), errors, last_error, exit_status.\n"
    "\n"
    "exit status: 0 stopped with everything received written, 1 superpages were lost\n"
    "(a failed write, or a full disk at the stop), 2 usage or config error, 3 it\n"
    "could not run: the directory, readoutd refused this writer, or no memory for\n"
    "its buffers.\n";

static volatile sig_atomic_t stop_signal, new_file_signal, status_signal;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		new_file_signal = 1;
	else if (sig == SIGUSR1)
		status_signal = 1;
	else
		stop_signal = sig;
}

/* A receive buffer: one superpage's copy, from the stream until its record is on disk. */
struct buffer {
	void *mem;
	struct buffer *next; /* on the free list */
};

/* Totals over every attachment. Plain value. */
struct totals {
	uint64_t superpages, bytes; /* received */
	uint64_t records, record_bytes, files, errors;
	uint64_t lost, run_ends, sessions;
	char file[PATH_MAX], last_error[256], state[16];
};

struct rw {
	struct rdo_remote_writer_opts o;
	struct rdo_client_keys keys; /* CURVE for the control and the stream; or plain */
	struct rdo_cli cli;	     /* cli.card: named in the info request; NULL: none */
	double seconds;		     /* --seconds; 0: until a signal */
	/* Receive buffers, for superpages of buf_size bytes. */
	void *mem;
	size_t mapped;
	uint32_t buf_size;
	struct buffer *buf, *free;
	/* The attachment: */
	struct rdo_data *data;
	struct rdo_writer *w;
	struct rdo_file_header ident;
	unsigned to_credit; /* records done, credit not yet returned */
	bool draining;	    /* stopping: no credit goes back until the end */
	bool have_pending;  /* a record the writer refused (disk full, failing): retried */
	struct rdo_writer_record pending;
	/* Totals; the writer's counters of closed attachments are added at their end. */
	struct totals t;
	uint64_t start_ns, stop_ns;
	uint64_t next_status_ns, status_bytes, status_ns;
};

static bool stopping(const struct rw *rw)
{
	return stop_signal || (rw->stop_ns && rdo_now_ns() >= rw->stop_ns);
}

/* The writer's counters of this attachment added to the totals of those before. */
static void totals(const struct rw *rw, struct totals *t)
{
	*t = rw->t;
	if (!rw->w)
		return;
	struct rdo_writer_stats ws;
	rdo_writer_stats(rw->w, &ws);
	t->records += ws.records;
	t->record_bytes += ws.bytes;
	t->files += ws.files;
	t->errors += ws.errors;
	rdo_strlcpy(t->state, rdo_writer_state_name(ws.state), sizeof(t->state));
	if (ws.file[0])
		rdo_strlcpy(t->file, ws.file, sizeof(t->file));
	if (ws.last_error[0])
		rdo_strlcpy(t->last_error, ws.last_error, sizeof(t->last_error));
}

static unsigned busy_buffers(const struct rw *rw)
{
	if (!rw->buf)
		return 0;
	unsigned n = rw->o.buffers;
	for (const struct buffer *b = rw->free; b; b = b->next)
		n--;
	return n;
}

static void status_line(struct rw *rw)
{
	struct totals t;
	totals(rw, &t);
	uint64_t now = rdo_now_ns();
	double dt = (double)(now - rw->status_ns) / 1e9;
	char bytes[32], rate[32];
	rdo_data_format_bytes(bytes, sizeof(bytes), (double)t.record_bytes);
	rdo_data_format_bytes(rate, sizeof(rate),
			      dt > 0 ? (double)(t.record_bytes - rw->status_bytes) / dt : 0);
	rdo_notice("status: %s%s%s: %llu records, %s (%s/s), %llu files closed, buffers %u of %u "
		   "busy, %llu lost, %llu errors%s%s",
		   rw->w ? t.state : "detached", t.file[0] ? " " : "", t.file,
		   (unsigned long long)t.records, bytes, rate, (unsigned long long)t.files,
		   busy_buffers(rw), rw->o.buffers, (unsigned long long)t.lost,
		   (unsigned long long)t.errors, t.last_error[0] ? "; last error: " : "",
		   t.last_error);
	rw->status_bytes = t.record_bytes;
	rw->status_ns = now;
}

static void housekeeping(struct rw *rw)
{
	uint64_t now = rdo_now_ns();
	if (status_signal || (rw->o.status_s && now >= rw->next_status_ns)) {
		status_signal = 0;
		rw->next_status_ns = now + rw->o.status_s * NS;
		status_line(rw);
	}
	if (new_file_signal) {
		new_file_signal = 0;
		if (rw->w) {
			rdo_writer_flush(rw->w);
			rdo_writer_end_file(rw->w);
		}
		rdo_notice("SIGHUP: file closed; the next superpage opens a new one");
	}
}

/* Ask readoutd's control for the card's identity, for the file headers. */
static int fetch_ident(struct rw *rw, char *err, size_t errlen)
{
	struct rdo_client *c =
	    rdo_client_open(rw->o.control, INFO_TIMEOUT_MS, &rw->keys, err, errlen);
	if (!c)
		return -EINVAL;
	Rdo__Request req;
	rdo__request__init(&req);
	if (rw->cli.card)
		req.card = (char *)rw->cli.card;
	Rdo__InfoRequest info;
	rdo__info_request__init(&info);
	req.cmd_case = RDO__REQUEST__CMD_INFO;
	req.info = &info;
	Rdo__Reply *r = NULL;
	int rc = rdo_client_call(c, &req, &r);
	if (rc) {
		snprintf(err, errlen, "%s", rdo_client_error(c));
	} else if (r->error || r->body_case != RDO__REPLY__BODY_INFO) {
		snprintf(err, errlen, "%s: info refused: %s%s", rw->o.control, r->message,
			 r->error == RDO__ERROR_CODE__ERR_UNKNOWN_CARD
			     ? (rw->cli.card
				    ? " (readoutctl list-cards names the cards)"
				    : " (readout-writer --card NAME: the card of the lossless "
				      "stream)")
			     : "");
		rc = -EPROTO;
	} else {
		const Rdo__InfoReply *i = r->info;
		struct rdo_file_header *h = &rw->ident;
		memset(h, 0, sizeof(*h));
		h->serial = i->serial;
		h->identity = i->identity;
		h->firmware = i->firmware;
		h->links = i->links;
		if (i->map_sha256.len == sizeof(h->map_sha256))
			memcpy(h->map_sha256, i->map_sha256.data, sizeof(h->map_sha256));
		rdo_strlcpy(h->card, i->card, sizeof(h->card));
		rdo_strlcpy(h->backend, i->backend, sizeof(h->backend));
		rdo_strlcpy(h->address, i->address, sizeof(h->address));
		rdo_strlcpy(h->map_name, i->map_name, sizeof(h->map_name));
		if (gethostname(h->host, sizeof(h->host) - 1))
			rdo_strlcpy(h->host, "unknown", sizeof(h->host));
		rdo_strlcpy(h->writer, "readout-writer " RDO_VERSION, sizeof(h->writer));
	}
	if (r)
		rdo__reply__free_unpacked(r, NULL);
	rdo_client_destroy(&c);
	return rc;
}

/* Receive buffers for superpages of `size` bytes; those of another size are let go first. */
static int ensure_buffers(struct rw *rw, uint32_t size)
{
	if (rw->mem && rw->buf_size == size)
		return 0;
	if (rw->mem) /* every buffer is free between attachments */
		rdo_hostmem_free(rw->mem, rw->mapped);
	free(rw->buf);
	rw->mem = NULL;
	rw->buf = NULL;
	rw->free = NULL;
	size_t len = (size_t)rdo_file_padded(size);
	const char *kind;
	int rc =
	    rdo_hostmem_alloc("receive buffers", len * rw->o.buffers, &rw->mem, &rw->mapped, &kind);
	if (rc)
		return rc;
	rw->buf = calloc(rw->o.buffers, sizeof(*rw->buf));
	if (!rw->buf)
		return -ENOMEM;
	for (unsigned i = rw->o.buffers; i-- > 0;) {
		rw->buf[i].mem = (char *)rw->mem + i * len;
		rw->buf[i].next = rw->free;
		rw->free = &rw->buf[i];
	}
	rw->buf_size = size;
	char total[32];
	rdo_notice("%u receive buffers of %u bytes (%s, %s)", rw->o.buffers, size,
		   rdo_data_format_bytes(total, sizeof(total), (double)(len * rw->o.buffers)),
		   kind);
	return 0;
}

static void buffer_put(struct rw *rw, struct buffer *b)
{
	b->next = rw->free;
	rw->free = b;
}

/*
 * From the writer: a record is on disk (0) or never will be. Its credit goes
 * back either way: each loss is counted once, where it is known. What
 * readout-writer received and could not write is its `lost`; readoutd counts
 * as dropped only what never reached it (in flight when it died or left).
 */
static void written(void *cookie, int status, void *arg)
{
	struct rw *rw = arg;
	if (status)
		rw->t.lost++;
	buffer_put(rw, cookie);
	rw->to_credit++;
}

/* Return the credits of what is on disk; also keeps the connection alive. */
static void give_credit(struct rw *rw)
{
	unsigned n = rw->draining ? 0 : rw->to_credit;
	rw->to_credit -= n;
	rdo_data_credit(rw->data, n);
}

/*
 * Hand a record to the writer, waiting for a free write when all are in
 * flight. false when the writer refused it (disk full, failing): it is then
 * held as pending and retried.
 */
static bool put(struct rw *rw, const struct rdo_writer_record *r)
{
	int rc;
	while ((rc = rdo_writer_put(rw->w, r)) == -EAGAIN) {
		rdo_writer_reap(rw->w, 100);
		give_credit(rw);
	}
	if (rc == -EINVAL) { /* take() checked the size: cannot happen */
		rdo_err("%s/%02u sequence %llu: the writer refused its %u bytes: lost (report it)",
			rw->ident.card, r->h.link, (unsigned long long)r->h.sequence, r->h.size);
		written(r->cookie, rc, rw);
	} else if (rc) {
		rw->pending = *r;
		rw->have_pending = true;
		return false;
	}
	return true;
}

/* Buffers and a writer for superpages of `superpage_size` bytes. */
static int prepare(struct rw *rw, uint32_t superpage_size)
{
	if (rw->w)
		return 0;
	int rc = ensure_buffers(rw, superpage_size);
	if (rc) {
		rdo_err("cannot allocate %u receive buffers of %u bytes: %s: lower source.buffers",
			rw->o.buffers, superpage_size, strerror(-rc));
		return rc;
	}
	if ((uint64_t)rw->o.buffers * superpage_size < 2 * (uint64_t)rw->o.writer.block_size)
		rdo_warn("%u buffers of %u bytes hold less than two writes of %zu bytes: the disk "
			 "waits for the network and back; raise source.buffers",
			 rw->o.buffers, superpage_size, rw->o.writer.block_size);
	rw->ident.superpage_size = superpage_size;
	char err[512];
	rw->w = rdo_writer_create(&rw->o.writer, &rw->ident, written, rw, err, sizeof(err));
	if (!rw->w) {
		rdo_err("%s", err);
		return -EINVAL;
	}
	return 0;
}

/* Copy a superpage into a buffer, computing its CRC on the way, and hand it to the writer. */
static void take(struct rw *rw, struct rdo_data_view *v)
{
	if (v->size > rw->buf_size) {
		rdo_err("%s/%02u sequence %llu: %zu bytes, more than the %u readoutd announced: "
			"lost (a protocol error: report it with both versions)",
			v->card, v->link, (unsigned long long)v->sequence, v->size, rw->buf_size);
		rw->t.lost++;
		rdo_data_ack(rw->data, v);
		return;
	}
	struct buffer *b = rw->free;
	rw->free = b->next;
	struct rdo_writer_record r = {
	    .data = b->mem,
	    .h = {.link = v->link,
		  .flags = v->flags,
		  .size = (uint32_t)v->size,
		  .sequence = v->sequence,
		  .timestamp_ns = v->timestamp_ns,
		  .run = v->run,
		  .card_pages_dropped = v->card_pages_dropped,
		  .payload_crc = rdo_crc32c_copy(0, b->mem, v->data, v->size)},
	    .have_crc = true,
	    .cookie = b,
	};
	rw->t.superpages++;
	rw->t.bytes += v->size;
	rdo_data_release(rw->data, v);
	put(rw, &r);
}

/* The end of an attachment: write what can be written, close the file, count the rest. */
static void detach(struct rw *rw)
{
	if (rw->w) {
		if (rw->have_pending && !put(rw, &rw->pending)) {
			rdo_err("1 superpage not written at the stop: %s",
				"the disk is full or failing (see above): free space in "
				"writer.directory or point it elsewhere");
			written(rw->pending.cookie, -ENOSPC, rw);
		}
		rw->have_pending = false;
		rdo_writer_flush(rw->w);
		rdo_writer_end_file(rw->w);
		struct totals t;
		totals(rw, &t);
		rw->t = t;
		rdo_writer_destroy(&rw->w);
	}
	rw->draining = false;
	give_credit(rw);
	struct rdo_data_stats st;
	rdo_data_stats(rw->data, &st);
	rw->t.lost += st.malformed;
	rdo_data_close(&rw->data);
}

enum outcome { RECONNECT, STOP, FATAL };

/* Wait for readoutd's control to answer `info`; false when stopped first. */
static bool identify(struct rw *rw)
{
	char err[512], said[512] = "";
	for (;;) {
		if (fetch_ident(rw, err, sizeof(err)) == 0)
			return true;
		if (strcmp(err, said) != 0) {
			rdo_warn("waiting for readoutd (trying again every second): %s", err);
			rdo_strlcpy(said, err, sizeof(said));
		}
		for (int i = 0; i < RETRY_MS / 100; i++) {
			housekeeping(rw);
			if (stopping(rw))
				return false;
			poll(NULL, 0, 100);
		}
	}
}

/*
 * Once readoutd welcomed us: buffers and a writer for its superpages, ready
 * before the first one comes. 0, -EAGAIN before the welcome, or another
 * -errno (logged).
 */
static int welcome(struct rw *rw)
{
	struct rdo_data_stats st;
	rdo_data_stats(rw->data, &st);
	if (!st.welcomed)
		return -EAGAIN;
	rdo_notice("attached to %s: card %s, superpages of %llu bytes", rw->o.lossless, st.card,
		   (unsigned long long)st.superpage_size);
	if (strcmp(st.card, rw->ident.card) != 0 && rw->cli.card) {
		rdo_err("the lossless stream %s is card %s's, not %s's (--card): point -e at card "
			"%s's lossless endpoint, or give --card %s",
			rw->o.lossless, st.card, rw->cli.card, rw->cli.card, st.card);
		return -EINVAL;
	}
	if (strcmp(st.card, rw->ident.card) != 0) {
		rdo_err("the lossless stream %s is card %s's, the control %s card %s's: point "
			"source.control and source.lossless at the same readoutd",
			rw->o.lossless, st.card, rw->o.control, rw->ident.card);
		return -EINVAL;
	}
	return prepare(rw, (uint32_t)st.superpage_size);
}

/* What a stream wait returned that ends the attachment, or -1 to go on. */
static int handle(struct rw *rw, int rc, struct rdo_data_view *v)
{
	switch (rc) {
	case 0:
		if (!rw->w && welcome(rw)) {	   /* the welcome came in the same wait */
			rdo_data_ack(rw->data, v); /* received and not written: ours to count */
			rw->t.lost++;
			return FATAL;
		}
		take(rw, v);
		return -1;
	case RDO_DATA_RUN_END:
		rw->t.run_ends++;
		if (rw->w) {
			rdo_writer_flush(rw->w);
			rdo_writer_end_file(rw->w);
		}
		rdo_notice("the run stopped: file closed");
		return -1;
	case -ETIMEDOUT:
		if (rw->w)
			rdo_writer_flush(rw->w);
		return rw->draining ? STOP : -1;
	case -ENOBUFS: /* every buffer on its way to disk: do not wait for a full block */
		rdo_writer_flush(rw->w);
		rdo_writer_reap(rw->w, 100);
		return rw->draining ? STOP : -1; /* draining: none can come any more */
	case -EINTR:
		return -1;
	case -EPROTO: /* counted as lost at the detach, with the stream's malformed count */
		rdo_warn("skipped a malformed message (counted as lost): %s",
			 rdo_data_error(rw->data));
		return -1;
	case -EPIPE:
		rdo_notice("%s; waiting for readoutd to come back", rdo_data_error(rw->data));
		return RECONNECT;
	case -ECONNREFUSED:
		if (rw->w) { /* welcomed before: readoutd restarted, or timed us out */
			rdo_warn("%s; readoutd no longer knows this writer (it restarted, or "
				 "timed it out): attaching again",
				 rdo_data_error(rw->data));
			return RECONNECT;
		}
		rdo_err("%s", rdo_data_error(rw->data));
		return FATAL;
	default:
		rdo_err("%s: %s: attaching again in a second", rdo_data_endpoint(rw->data),
			strerror(-rc));
		poll(NULL, 0, RETRY_MS);
		return RECONNECT;
	}
}

/* One attachment to readoutd: from its identity to the end of its stream or our stop. */
static enum outcome attach(struct rw *rw)
{
	if (!identify(rw))
		return STOP;
	struct rdo_data_opts o;
	rdo_data_opts_init(&o);
	o.mode = RDO_DATA_LOSSLESS;
	o.endpoint = rw->o.lossless;
	o.credits = rw->o.buffers;
	o.name = rw->o.name;
	o.run_ends = true;
	o.keys = &rw->keys;
	char err[512];
	rw->data = rdo_data_open(&o, err, sizeof(err));
	if (!rw->data) {
		rdo_err("%s", err);
		return FATAL;
	}
	rw->t.sessions++;
	uint64_t opened = rdo_now_ns();
	bool hinted = false;
	int out = -1;
	while (out < 0) {
		housekeeping(rw);
		if (stopping(rw) && !rw->draining) {
			rw->draining = true;
			rdo_notice("stopping: writing the superpages in flight");
		}
		if (rw->w)
			rdo_writer_reap(rw->w, 0);
		give_credit(rw);
		if (rw->have_pending) {
			if (put(rw, &rw->pending)) {
				rw->have_pending = false;
			} else if (rw->draining) {
				out = STOP; /* the disk takes nothing: what is held is lost */
				break;
			} else {
				poll(&(struct pollfd){rdo_writer_fd(rw->w), POLLIN, 0}, 1, 100);
				continue;
			}
		}
		int rc = rw->w ? 0 : welcome(rw);
		if (rc && rc != -EAGAIN) {
			out = FATAL;
			break;
		}
		if (!rw->w && !hinted && rdo_now_ns() - opened > WELCOME_HINT_NS) {
			hinted = true;
			rdo_warn("no welcome from %s yet: is readoutd's lossless stream enabled "
				 "and bound there?",
				 rw->o.lossless);
		}
		int timeout = rw->draining ? DRAIN_QUIET_MS : rw->w ? 20 : 100;
		struct rdo_data_view v;
		out = handle(rw, rdo_data_wait(rw->data, &v, timeout), &v);
	}
	detach(rw);
	return (enum outcome)out;
}

static void summary_json(struct rw *rw, int status)
{
	struct totals t;
	totals(rw, &t);
	struct rdo_json j;
	rdo_json_init(&j, stdout);
	rdo_json_open(&j, NULL, '{');
	rdo_json_u64(&j, "seconds", (rdo_now_ns() - rw->start_ns) / NS);
	rdo_json_u64(&j, "sessions", t.sessions);
	rdo_json_u64(&j, "superpages", t.superpages);
	rdo_json_u64(&j, "bytes", t.bytes);
	rdo_json_u64(&j, "records", t.records);
	rdo_json_u64(&j, "record_bytes", t.record_bytes);
	rdo_json_u64(&j, "files", t.files);
	rdo_json_str(&j, "file", t.file);
	rdo_json_u64(&j, "run_ends", t.run_ends);
	rdo_json_u64(&j, "lost", t.lost);
	rdo_json_u64(&j, "errors", t.errors);
	rdo_json_str(&j, "last_error", t.last_error);
	rdo_json_u64(&j, "exit_status", (uint64_t)status);
	rdo_json_close(&j, '}');
	fputc('\n', stdout);
}

static void print_usage(FILE *f)
{
	fputs(usage_text, f);
}

/* Copy an option's value into a config string, refusing what does not fit. */
static int set_str(char *dst, size_t cap, const char *value, const char *opt)
{
	if (strlen(value) >= cap)
		return rdo_cli_usage_error("%s: too long", opt);
	rdo_strlcpy(dst, value, cap);
	return 0;
}

/* set_str for an endpoint to connect to: tcp://HOST:PORT or ipc://PATH. */
static int set_endpoint(char *dst, size_t cap, const char *value, const char *opt)
{
	if (!rdo_endpoint_valid(value))
		return rdo_cli_usage_error("%s: expected tcp://HOST:PORT or ipc://PATH, got \"%s\"",
					   opt, value);
	return set_str(dst, cap, value, opt);
}

static int parse_args(int argc, char **argv, struct rw *rw)
{
	static const struct option longopts[] = {
	    RDO_CLI_OPTIONS /* then readout-writer's own */
	    {"config", required_argument, NULL, 'c'},
	    {"directory", required_argument, NULL, 'd'},
	    {"control", required_argument, NULL, 'K'},
	    {"buffers", required_argument, NULL, 'b'},
	    {"seconds", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	static const char shortopts[] = RDO_CLI_SHORT "c:d:b:s:";
	rdo_cli_init(&rw->cli, "readout-writer", print_usage);
	struct rdo_remote_writer_opts *o = &rw->o;
	rdo_remote_writer_opts_init(o);
	/* The config first, wherever it is given: the other options override it. */
	int c, rc = 0;
	opterr = 0;
	while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		char err[1024];
		if (c == 'c' && rdo_config_load_remote_writer(optarg, o, err, sizeof(err))) {
			fprintf(stderr, "readout-writer: %s\n", err);
			return RDO_EXIT_USAGE;
		}
	}
	optind = 0;
	opterr = 1;
	uint64_t u;
	while (rc == 0 && (c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
		switch (c) {
		case 'c':
			break;
		case 'd':
			rc = set_str(o->writer.directory, sizeof(o->writer.directory), optarg,
				     "--directory");
			break;
		case 'K':
			rc = set_endpoint(o->control, sizeof(o->control), optarg, "--control");
			break;
		case 'e': /* the lossless stream: source.lossless */
			rc = set_endpoint(o->lossless, sizeof(o->lossless), optarg, "--endpoint");
			break;
		case 'b':
			if (rdo_parse_u64(optarg, &u) || u < 2 || u > RDO_DATA_MAX_CREDITS)
				return rdo_cli_usage_error("--buffers: expected 2 to 4096, got %s",
							   optarg);
			o->buffers = (unsigned)u;
			break;
		case 's':
			rw->seconds = strtod(optarg, NULL);
			if (!(rw->seconds > 0))
				return rdo_cli_usage_error(
				    "--seconds: expected a positive number, got %s", optarg);
			break;
		case '?': /* getopt_long said what; the help would bury it in a log */
			return RDO_EXIT_USAGE;
		default:
			rc = rdo_cli_option(&rw->cli, c, optarg);
		}
	}
	if (rc)
		return rc;
	if (optind < argc)
		return rdo_cli_usage_error("unexpected argument %s", argv[optind]);
	if ((rc = rdo_cli_keys(&rw->cli, &rw->keys)))
		return rc;
	if (!o->name[0]) {
		char host[48];
		if (gethostname(host, sizeof(host) - 1))
			rdo_strlcpy(host, "unknown", sizeof(host));
		host[sizeof(host) - 1] = '\0';
		snprintf(o->name, sizeof(o->name), "readout-writer@%s", host);
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct rw rw;
	rdo_log_set_name("readout-writer");
	int rc = parse_args(argc, argv, &rw);
	if (rc)
		return rc;
	rdo_log_set_level(rw.o.log_level);
	char err[1024];
	if (rdo_writer_check(&rw.o.writer, 0, err, sizeof(err))) {
		rdo_err("%s", err);
		return EXIT_CANNOT;
	}
	struct sigaction sa = {.sa_handler = on_signal}; /* no SA_RESTART: waits return EINTR */
	sigemptyset(&sa.sa_mask);
	const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};
	for (size_t i = 0; i < RDO_ARRAY_SIZE(sigs); i++)
		sigaction(sigs[i], &sa, NULL);
	rw.start_ns = rw.status_ns = rdo_now_ns();
	rw.next_status_ns = rw.start_ns + rw.o.status_s * NS;
	if (rw.seconds > 0)
		rw.stop_ns = rw.start_ns + (uint64_t)(rw.seconds * 1e9);
	char own_id[9], server_id[9];
	if (rw.keys.enabled)
		rdo_notice("CURVE: this writer is key %s, readoutd key %s",
			   rdo_key_id(rw.keys.own.public_z85, own_id),
			   rdo_key_id(rw.keys.server_public, server_id));
	rdo_notice("readout-writer " RDO_VERSION ": %s to %s as %s (%s, %zu-byte writes, %u in "
		   "flight, %u buffers)",
		   rw.o.lossless, rw.o.writer.directory, rw.o.writer.name,
		   rw.o.writer.direct ? "O_DIRECT" : "buffered", rw.o.writer.block_size,
		   rw.o.writer.depth, rw.o.buffers);
	enum outcome out;
	while ((out = attach(&rw)) == RECONNECT)
		;
	struct totals t;
	totals(&rw, &t);
	int status = out == FATAL ? EXIT_CANNOT : t.lost ? EXIT_LOST : 0;
	status_line(&rw);
	if (rw.cli.json)
		summary_json(&rw, status);
	if (rw.mem)
		rdo_hostmem_free(rw.mem, rw.mapped);
	free(rw.buf);
	explicit_bzero(&rw.keys, sizeof(rw.keys));
	return status;
}
