/*
 * readoutctl's insides, shared by its files: the table of commands
 * (readoutctl.c) and what a command's handler gets. A family of commands
 * lives in its own file: readoutctl_acq.c (list-cards, info, start, stop,
 * reset, status), readoutctl_reg.c (reg ...), readoutctl_file.c (file ...),
 * readoutctl_keys.c (keygen).
 *
 * A new command is one row in readoutctl.c's table and one handler,
 * declared here. The row says which options the command takes; readoutctl.c
 * refuses the others before the handler runs, and prints the row in --help.
 * A handler checks its arguments, sends its request with ctl_call() (or
 * reads its file) and returns the exit status.
 *
 * readoutctl runs on one thread; nothing here is thread-safe.
 */
#ifndef RDO_READOUTCTL_H
#define RDO_READOUTCTL_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/rdoclient.h"
#include "tools/cli.h"

#define CTL_EXIT_REFUSED   1
#define CTL_EXIT_BAD_FILE  1 /* file commands: the file has a problem, or cannot be read */
#define CTL_EXIT_NO_ANSWER 3
#define CTL_EXIT_DENIED	   4 /* the server refused the command to this client's role */

/*
 * readoutctl's options by group, for a row's `opts`; in the order refusals
 * name them. -e and -t every command takes.
 */
enum {
	CTL_OPT_DIR = 1u << 0,	  /* --dir */
	CTL_OPT_JSON = 1u << 1,	  /* --json */
	CTL_OPT_LINK = 1u << 2,	  /* --link */
	CTL_OPT_PAGES = 1u << 3,  /* --pages */
	CTL_OPT_DEFINE = 1u << 4, /* --width, --access, --reset, --desc, --field, --bar, --base */
	CTL_OPT_RUN = 1u << 5,	  /* --run */
	CTL_OPT_WATCH = 1u << 6,  /* --watch, --interval */
	CTL_OPT_CARD = 1u << 7,	  /* --card */
	CTL_OPT_KEYS = 1u << 8,	  /* --server-key, --key: the command talks to the server */
};

/*
 * What every command that talks to the server takes. --pages too: those
 * commands have always let it by, unused.
 */
#define CTL_OPTS_SERVER (CTL_OPT_JSON | CTL_OPT_CARD | CTL_OPT_KEYS | CTL_OPT_PAGES)

/* reg define's options. Plain value. */
struct ctl_define_opts {
	uint64_t width, reset, bar, base;
	const char *access, *desc;
	const char *fields[32];
	size_t nfields;
	bool has_bank; /* --bar or --base: a new bank */
};

/* start's and status's. Plain value. */
struct ctl_acq_opts {
	uint64_t run;
	double interval;
	bool watch;
};

/* The file commands'. Plain value. */
struct ctl_file_opts {
	uint64_t link;
	bool has_link;
	bool pages; /* verify: every DMA page too */
};

struct ctl;

/* A row of the table. */
struct ctl_command {
	const char *name;  /* the words that select it: "reg read" */
	const char *usage; /* what follows them in --help; '\n' breaks a long one */
	const char *help;  /* what it does, for --help; '\n' between lines */
	unsigned opts;	   /* the CTL_OPT_* it takes (-e and -t: every command) */
	int (*run)(struct ctl *c);
};

/* What a handler gets: the command line, parsed, and the connection. */
struct ctl {
	const struct ctl_command *cmd;
	int nargs; /* the arguments after the command's words */
	char **args;
	struct rdo_cli cli;
	const char *endpoint; /* -e, else $READOUTD_ENDPOINT, else the default */
	const char *card;     /* --card, else $RDO_CARD; NULL: none */
	double timeout;	      /* -t, seconds */
	const char *dir;      /* keygen --dir; NULL: the current directory */
	struct ctl_define_opts define;
	struct ctl_acq_opts acq;
	struct ctl_file_opts file;
	/* Opened by the first ctl_call(), closed by main. */
	struct rdo_client *client;
};

/* A reply's printer, for ctl_call(). */
typedef void ctl_print_fn(const struct ctl *c, const Rdo__Reply *rep);

/* A request for `cmd` (the caller sets its body), to the command's card if it takes --card. */
Rdo__Request ctl_request(const struct ctl *c, Rdo__Request__CmdCase cmd);

/*
 * Send `req` (connecting first, with the keys of the command line), print
 * a successful reply with `print`, a refusal on stderr (and as JSON with
 * --json). The exit status: 0, CTL_EXIT_REFUSED, CTL_EXIT_DENIED,
 * CTL_EXIT_NO_ANSWER, or RDO_EXIT_USAGE for keys that do not load.
 */
int ctl_call(struct ctl *c, Rdo__Request *req, ctl_print_fn *print);

/* 0, or a usage error (RDO_EXIT_USAGE) when the command was given arguments. */
int ctl_no_args(const struct ctl *c);

/* A byte count for people, in powers of 1000: "2.34 GB". Returns `buf`. */
const char *ctl_bytes(char buf[32], double bytes);

/* The handlers, by family. */
int ctl_list_cards(struct ctl *c);
int ctl_info(struct ctl *c);
int ctl_start(struct ctl *c);
int ctl_stop(struct ctl *c);
int ctl_reset(struct ctl *c);
int ctl_status(struct ctl *c);

int ctl_reg_read(struct ctl *c);
int ctl_reg_write(struct ctl *c);
int ctl_reg_modify(struct ctl *c);
int ctl_reg_list(struct ctl *c);
int ctl_reg_define(struct ctl *c);

int ctl_file_info(struct ctl *c);
int ctl_file_verify(struct ctl *c);
int ctl_file_cat(struct ctl *c);
int ctl_file_recover(struct ctl *c);

int ctl_keygen(struct ctl *c);

#endif
