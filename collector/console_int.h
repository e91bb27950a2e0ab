/* console_int.h: what the study console's files share (not a public API). */
#ifndef EMPQ_COLLECTOR_CONSOLE_INT_H
#define EMPQ_COLLECTOR_CONSOLE_INT_H

#include <microhttpd.h>
#include <stdint.h>

#include "console.h"
#include "empq.pb-c.h"
#include "empq/store.h"
#include "empq/util.h"

#define CONSOLE__PROMPT_CACHE 4 /* runs whose prompts are kept in memory */

/* A run's prompts, read once (they never change after submit). */
typedef struct console__prompts {
    char run[128];
    Empq__Prompt **v;
    size_t n;
    const char **emotions; /* the distinct emotions, sorted (strings owned by v) */
    size_t n_emotions;
    uint32_t *emo_of; /* [n]: index into emotions of prompt i's */
    uint64_t used;    /* last use, for eviction */
} console__prompts;

/* A run's results and dead letters as last read, with the HLEN counts
 * taken just before: reused while both counts are unchanged (results are
 * written once; a dead letter is only deleted by a rerun, which changes
 * the counts). */
typedef struct console__snapshot {
    char run[128];
    uint64_t results, dead;
    Empq__Result **res;
    size_t nres;
    Empq__DeadLetter **dl;
    size_t ndl;
} console__snapshot;

struct console {
    struct MHD_Daemon *daemon;
    empq_store *store; /* the polling thread's only */
    void *zctx;        /* ZeroMQ context of the control requests */
    unsigned port;
    char *token;       /* NULL: none needed */
    char bind[64];
    char *control;
    char *out_dir;
    int store_down;         /* the last store call failed: logged once, and once when it works again */
    int req_failed;         /* the request in progress hit a store failure */
    uint64_t control_retry; /* the broker did not answer: no control request before this (mono ms) */
    console__prompts prompts[CONSOLE__PROMPT_CACHE];
    console__snapshot snap;
    uint64_t uses;
};

/* One page being answered. */
typedef struct console__req {
    console *c;
    struct MHD_Connection *conn;
    empq_buf b;
    char timing[64]; /* a Server-Timing header value, or "" */
} console__req;

/* HTML escaping into r's buffer. */
void console__esc(empq_buf *b, const char *s);
/* Query-string escaping (for links). */
void console__url(empq_buf *b, const char *s);
/* The page's head and navigation (run may be NULL; tab the current tab). */
void console__head(empq_buf *b, const char *title, const char *run, const char *tab);
void console__tail(empq_buf *b);
/* Sends b (freed) with status. */
enum MHD_Result console__send(console__req *r, unsigned status, const char *type);
/* An error page. */
enum MHD_Result console__error(console__req *r, unsigned status, const char *title, const char *msg);
/* The store failed: 503 page, logged once until it works again. */
enum MHD_Result console__store_error(console__req *r);
/* A query argument, NULL when absent or empty. */
const char *console__arg(console__req *r, const char *name);
/* The run's prompts (cached; one HGETALL on first use). NULL on a store
 * failure. Owned by c. */
const console__prompts *console__prompts_of(console *c, const char *run);
/* The run's results and dead letters: two HLEN, and when either changed
 * since the last read (or another run was read), one pipeline of two
 * HGETALL. NULL on a store failure. Owned by c, valid until the next call. */
const console__snapshot *console__finished_of(console *c, const char *run);
/* A broker status of every run ("") or of one run; NULL when no broker is
 * configured or it did not answer. Caller frees. */
Empq__ControlReply *console__control(console *c, Empq__ControlRequest *req);

/* pages (console_pages.c, console_responses.c) */
enum MHD_Result console__runs(console__req *r);
enum MHD_Result console__progress(console__req *r);
enum MHD_Result console__run(console__req *r, const char *run);
enum MHD_Result console__dead(console__req *r, const char *run);
enum MHD_Result console__raters(console__req *r, const char *run);
enum MHD_Result console__responses(console__req *r, const char *run);

extern const char console__css[];
extern const char console__js[];

#endif
