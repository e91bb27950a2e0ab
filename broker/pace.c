/* pace.c: one model's limits, 429 slow-down and cost. See pace.h. */
#include "pace.h"

#include <stdio.h>
#include <string.h>

#include "empq/batchwire.h"

void bk__pace_opts_default(bk__pace_opts *o)
{
    o->slack_ms = 1000;
    o->min_factor = 1.0 / 16;
    o->increase = 1.0 / 32;
    o->max_pause_ms = 60000;
    o->decrease_share = 0.3;
    o->ghost_max_ms = 30000;
    o->est_in_default = 1024;
    o->est_out_default = 1024;
}

void bk__pace_init(bk__pace *p, const Empq__ModelSpec *spec, const bk__pace_opts *o)
{
    memset(p, 0, sizeof *p);
    if (o != NULL)
        p->o = *o;
    else
        bk__pace_opts_default(&p->o);
    if (p->o.slack_ms > 2000)
        p->o.slack_ms = 2000;
    if (p->o.decrease_share < 0)
        p->o.decrease_share = 0;
    if (p->o.min_factor <= 0 || p->o.min_factor > 1)
        p->o.min_factor = 1.0 / 16;
    p->factor = 1.0;
    p->ghost_ms = p->o.ghost_max_ms;
    if (spec == NULL)
        return;
    uint32_t tmo = spec->has_timeout_ms ? spec->timeout_ms : 120000;
    if (tmo < p->ghost_ms)
        p->ghost_ms = tmo;
    const Empq__ModelLimits *l = spec->limits;
    if (l != NULL) {
        p->max_conc = l->has_max_concurrency ? l->max_concurrency : 0;
        p->rpm = l->has_requests_per_minute ? l->requests_per_minute : 0;
        p->tpm = l->has_tokens_per_minute ? l->tokens_per_minute : 0;
    }
    const Empq__ModelPrices *c = spec->prices;
    if (c != NULL) {
        /* batch mode: cost and max_cost at the batch price, so jobs a
         * batch could not pay for are never leased into one */
        empq_model_prices(spec, &p->price_in, &p->price_out, &p->price_cached);
        p->max_cost = c->has_max_cost ? c->max_cost : 0;
    }
    if (spec->params != NULL && spec->params->has_max_tokens && spec->params->max_tokens > 0)
        p->max_tokens = (uint32_t)spec->params->max_tokens;
    if (spec->params != NULL && spec->params->has_max_completion_tokens && spec->params->max_completion_tokens > 0)
        p->max_tokens = (uint32_t)spec->params->max_completion_tokens;
}

int bk__pace_active(const bk__pace *p)
{
    return p->max_conc || p->rpm || p->tpm || p->max_cost > 0 || p->learned_conc || p->pause_until || p->stopped;
}

uint32_t bk__pace_estimate(const bk__pace *p)
{
    uint64_t in = p->seen_in ? p->seen_in + p->seen_in / 4 : p->o.est_in_default; /* 25% over the largest seen */
    uint64_t out = p->max_tokens ? p->max_tokens : (p->seen_out ? p->seen_out : p->o.est_out_default);
    uint64_t e = in + out;
    return e > UINT32_MAX ? UINT32_MAX : (uint32_t)(e ? e : 1);
}

static uint32_t scaled(uint32_t limit, double factor)
{
    if (limit == 0)
        return BK_PACE_UNLIMITED;
    double v = (double)limit * factor;
    return v < 1 ? 1 : (uint32_t)v;
}

uint32_t bk__pace_conc(const bk__pace *p)
{
    return scaled(p->max_conc ? p->max_conc : p->learned_conc, p->factor);
}

/* ---- ghosts ---- */

/* Forgets the ghosts expired at now; returns how many are alive. */
static uint32_t ghosts(bk__pace *p, uint64_t now)
{
    while (p->ghost_n > 0 && p->ghost[p->ghost_head] <= now) {
        p->ghost_head = (p->ghost_head + 1) % BK_PACE_GHOSTS;
        p->ghost_n--;
    }
    return p->ghost_n;
}

static void ghost_add(bk__pace *p, uint64_t now)
{
    ghosts(p, now);
    if (p->ghost_n == BK_PACE_GHOSTS) { /* full: the oldest goes first */
        p->ghost_head = (p->ghost_head + 1) % BK_PACE_GHOSTS;
        p->ghost_n--;
    }
    p->ghost[(p->ghost_head + p->ghost_n) % BK_PACE_GHOSTS] = now + p->ghost_ms;
    p->ghost_n++;
}

/* ---- the sliding window ---- */

static uint64_t span_ms(const bk__pace *p) { return (uint64_t)BK_PACE_WINDOW_MS + p->o.slack_ms; }

/* The oldest bucket index still counted at now. */
static uint64_t low_bucket(const bk__pace *p, uint64_t now)
{
    uint64_t s = span_ms(p);
    return now > s ? (now - s) / BK_PACE_BUCKET_MS : 0;
}

static bk__pace_bucket *slot(bk__pace *p, uint64_t bi) { return &p->b[bi % BK_PACE_BUCKETS]; }

/* Moves the window to now: new buckets are emptied, old ones leave the sums. */
static void advance(bk__pace *p, uint64_t now)
{
    uint64_t nb = now / BK_PACE_BUCKET_MS;
    uint64_t lo = low_bucket(p, now);
    if (!p->started) {
        p->started = 1;
        p->head = nb;
        p->tail = lo;
        memset(p->b, 0, sizeof p->b);
        return;
    }
    if (nb < p->head)
        nb = p->head; /* time never goes back here */
    if (lo > p->head) {
        /* every counted bucket is gone */
        memset(p->b, 0, sizeof p->b);
        p->win_req = p->win_tok = 0;
        p->head = nb;
        p->tail = lo;
        return;
    }
    while (p->tail < lo) {
        bk__pace_bucket *b = slot(p, p->tail);
        p->win_req -= b->req;
        p->win_tok -= b->tok;
        memset(b, 0, sizeof *b);
        p->tail++;
    }
    while (p->head < nb) {
        p->head++;
        memset(slot(p, p->head), 0, sizeof(bk__pace_bucket));
    }
}

void bk__pace_charge(bk__pace *p, uint32_t n, uint64_t now)
{
    if (n == 0)
        return;
    advance(p, now);
    bk__pace_bucket *b = slot(p, p->head);
    if (b->req == 0)
        b->est = bk__pace_estimate(p);
    b->req += n;
    b->tok += (uint64_t)n * b->est;
    p->win_req += n;
    p->win_tok += (uint64_t)n * b->est;
}

/* The dispatch at time `dispatched` (still in the window) used `actual`
 * tokens instead of its estimate. */
static void correct(bk__pace *p, uint64_t dispatched, uint64_t actual, uint64_t now)
{
    advance(p, now);
    uint64_t bi = dispatched / BK_PACE_BUCKET_MS;
    if (bi < p->tail || bi > p->head)
        return;
    bk__pace_bucket *b = slot(p, bi);
    if (b->req == 0)
        return;
    uint64_t minus = b->est < b->tok ? b->est : b->tok;
    b->tok = b->tok - minus + actual;
    p->win_tok = p->win_tok - minus + actual;
}

/* ---- cost ---- */

static double cost_of(const bk__pace *p, uint64_t in, uint64_t out)
{
    return ((double)in * p->price_in + (double)out * p->price_out) / 1e6;
}

/* Estimated cost of one job: the prompt estimate and the completion estimate. */
static double job_cost(const bk__pace *p)
{
    uint64_t in = p->seen_in ? p->seen_in : p->o.est_in_default;
    uint64_t out = p->max_tokens ? p->max_tokens : (p->seen_out ? p->seen_out : p->o.est_out_default);
    return cost_of(p, in, out);
}

/* A fresh call's usage: tokens, cost, the estimates; stops the model when
 * max_cost is reached. */
static void spend(bk__pace *p, uint64_t in, uint64_t out)
{
    p->tok_in += in;
    p->tok_out += out;
    p->cost += cost_of(p, in, out);
    if (in > p->seen_in)
        p->seen_in = in > UINT32_MAX ? UINT32_MAX : (uint32_t)in;
    if (out > p->seen_out)
        p->seen_out = out > UINT32_MAX ? UINT32_MAX : (uint32_t)out;
    if (p->max_cost > 0 && p->cost >= p->max_cost)
        bk__pace_stop(p, "max_cost");
}

int bk__pace_stop(bk__pace *p, const char *reason)
{
    if (p->stopped)
        return 0;
    p->stopped = 1;
    snprintf(p->stop_reason, sizeof p->stop_reason, "%s", reason != NULL && reason[0] != '\0' ? reason : "stopped");
    return 1;
}

int bk__pace_unusable(bk__pace *p, uint32_t reporting, uint32_t serving, const char *reason, uint64_t now,
                      uint64_t hold_ms)
{
    p->unusable_workers = reporting;
    p->serving_workers = serving;
    if (reporting == 0) {
        p->unusable[0] = '\0';
        p->unusable_since = 0;
        return 0;
    }
    snprintf(p->unusable, sizeof p->unusable, "%s", reason != NULL && reason[0] != '\0' ? reason : "unusable");
    if (reporting < serving) {
        p->unusable_since = 0;
        return 0;
    }
    if (p->unusable_since == 0)
        p->unusable_since = now > 0 ? now : 1;
    if (p->stopped || now - p->unusable_since < hold_ms)
        return 0;
    char why[BK_PACE_REASON_MAX];
    snprintf(why, sizeof why, "unusable: %.*s", (int)(sizeof why - 16), p->unusable);
    return bk__pace_stop(p, why);
}

void bk__pace_cached(bk__pace *p, uint64_t cached)
{
    /* the difference comes off before spend() adds the input at price_in */
    if (cached > 0 && p->price_cached != p->price_in)
        p->cost -= (double)cached * (p->price_in - p->price_cached) / 1e6;
}

void bk__pace_restore(bk__pace *p, uint64_t in, uint64_t out, uint64_t ago_ms, uint64_t now)
{
    spend(p, in, out);
    if (!(p->rpm || p->tpm) || ago_ms >= span_ms(p) || ago_ms > now)
        return;
    advance(p, now);
    uint64_t bi = (now - ago_ms) / BK_PACE_BUCKET_MS;
    if (bi < p->tail || bi > p->head)
        return;
    bk__pace_bucket *b = slot(p, bi);
    b->req++;
    b->tok += in + out;
    p->win_req++;
    p->win_tok += in + out;
}

uint32_t bk__pace_allow(bk__pace *p, uint32_t leased, uint64_t now)
{
    if (p->stopped)
        return 0;
    uint32_t n = BK_PACE_UNLIMITED;
    if (p->max_cost > 0) {
        if (p->cost >= p->max_cost) {
            bk__pace_stop(p, "max_cost");
            return 0;
        }
        double per = job_cost(p);
        if (per > 0) {
            double room = (p->max_cost - p->cost - per * leased) / per;
            if (room < 1) {
                if (leased == 0)
                    bk__pace_stop(p, "max_cost"); /* not one more job fits, and nothing will come back */
                return 0;
            }
            if (room < (double)n)
                n = (uint32_t)room;
        }
    }
    if (now < p->pause_until)
        return 0;
    uint32_t c = bk__pace_conc(p);
    if (c != BK_PACE_UNLIMITED) {
        leased += ghosts(p, now);
        if (leased >= c)
            return 0;
        if (c - leased < n)
            n = c - leased;
    }
    if (p->rpm || p->tpm) {
        advance(p, now);
        uint32_t r = scaled(p->rpm, p->factor);
        if (r != BK_PACE_UNLIMITED) {
            if (p->win_req >= r)
                return 0;
            if (r - p->win_req < n)
                n = (uint32_t)(r - p->win_req);
        }
        uint32_t t = scaled(p->tpm, p->factor);
        if (t != BK_PACE_UNLIMITED) {
            uint64_t est = bk__pace_estimate(p);
            uint64_t k = p->win_tok < t ? (t - p->win_tok) / est : 0;
            if (k == 0 && p->win_tok == 0)
                k = 1; /* one request larger than the whole limit goes alone */
            if (k < n)
                n = (uint32_t)k;
        }
    }
    return n;
}

uint64_t bk__pace_next(bk__pace *p, uint32_t leased, uint64_t now)
{
    if (p->stopped)
        return UINT64_MAX;
    if (now < p->pause_until)
        return p->pause_until;
    uint32_t c = bk__pace_conc(p);
    if (c != BK_PACE_UNLIMITED && leased + ghosts(p, now) >= c)
        return leased < c && p->ghost_n > 0 ? p->ghost[p->ghost_head] : UINT64_MAX; /* a ghost ends, or an outcome */
    if (!p->rpm && !p->tpm)
        return UINT64_MAX;
    advance(p, now);
    uint32_t r = scaled(p->rpm, p->factor);
    uint32_t t = scaled(p->tpm, p->factor);
    uint64_t est = bk__pace_estimate(p);
    uint64_t req = p->win_req, tok = p->win_tok;
    for (uint64_t bi = p->tail;; bi++) {
        int fits_r = r == BK_PACE_UNLIMITED || req < r;
        int fits_t = t == BK_PACE_UNLIMITED || tok + est <= t || tok == 0;
        if (fits_r && fits_t)
            return bi == p->tail ? UINT64_MAX : (bi * BK_PACE_BUCKET_MS + span_ms(p));
        if (bi > p->head)
            return UINT64_MAX; /* cannot happen: an empty window fits */
        const bk__pace_bucket *b = &p->b[bi % BK_PACE_BUCKETS];
        req -= b->req;
        tok -= b->tok;
    }
}

int bk__pace_outcome(bk__pace *p, const Empq__Outcome *o, uint64_t dispatched, uint32_t leased, uint64_t now)
{
    if (o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY && o->has_local_failure && o->local_failure)
        return 0; /* the worker's trouble, not a reply of the provider: nothing to learn */
    int fresh_done = o->kind == EMPQ__OUTCOME_KIND__OUTCOME_DONE && !(o->has_cache_hit && o->cache_hit);
    if (o->kind == EMPQ__OUTCOME_KIND__OUTCOME_DONE && !fresh_done && dispatched != 0 && (p->rpm || p->tpm)) {
        /* a cache hit never reached the provider: give its place back */
        advance(p, now);
        uint64_t bi = dispatched / BK_PACE_BUCKET_MS;
        if (bi >= p->tail && bi <= p->head && slot(p, bi)->req > 0) {
            bk__pace_bucket *b = slot(p, bi);
            uint64_t minus = b->est < b->tok ? b->est : b->tok;
            b->req--;
            b->tok -= minus;
            p->win_req--;
            p->win_tok -= minus;
        }
        return 0;
    }
    int is429 = o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY && o->has_http_status && o->http_status == 429;
    if (fresh_done || o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY || o->kind == EMPQ__OUTCOME_KIND__OUTCOME_DEAD)
        p->share429 += ((is429 ? 1.0 : 0.0) - p->share429) / 16;
    if (o->has_tokens_cached && (o->has_tokens_in || o->has_tokens_out) && !(o->has_cache_hit && o->cache_hit))
        bk__pace_cached(p, o->tokens_cached);
    if (!fresh_done && o->kind != EMPQ__OUTCOME_KIND__OUTCOME_DONE && (o->has_tokens_in || o->has_tokens_out))
        /* a reply that was no answer (reasoning used the budget, a block)
         * was billed all the same */
        spend(p, o->has_tokens_in ? o->tokens_in : 0, o->has_tokens_out ? o->tokens_out : 0);
    if (fresh_done) {
        uint64_t in = o->has_tokens_in ? o->tokens_in : 0;
        uint64_t out = o->has_tokens_out ? o->tokens_out : 0;
        if (!o->has_tokens_in && !o->has_tokens_out && o->has_tokens)
            in = o->tokens; /* an older worker: the total only */
        spend(p, in, out);
        if (dispatched != 0 && (p->rpm || p->tpm) && (o->has_tokens || o->has_tokens_in || o->has_tokens_out))
            correct(p, dispatched, o->has_tokens ? o->tokens : in + out, now);
        if (p->factor < 1) {
            p->factor += p->o.increase;
            if (p->factor >= 1) {
                p->factor = 1;
                p->learned_conc = 0;
            }
        }
        return 0;
    }
    if ((o->kind == EMPQ__OUTCOME_KIND__OUTCOME_RETRY || o->kind == EMPQ__OUTCOME_KIND__OUTCOME_DEAD) &&
        (!o->has_http_status || o->http_status == 0) && dispatched != 0 && (p->max_conc || p->learned_conc) &&
        p->ghost_ms > 0)
        ghost_add(p, now); /* no reply: it may still run at the provider */
    if (!is429)
        return 0;
    p->limited++;
    if (dispatched == 0)
        return 0;
    if (p->rpm || p->tpm)
        correct(p, dispatched, 0, now); /* refused: no tokens used */
    if (dispatched < p->epoch)
        return 0; /* sent before the last slow-down: the same episode */
    p->epoch = now;
    if (p->share429 >= p->o.decrease_share) {
        if (p->max_conc == 0 && p->rpm == 0 && p->tpm == 0 && p->learned_conc == 0)
            p->learned_conc = leased ? leased : 1; /* nothing else to scale down: learn a concurrency */
        p->factor /= 2;
        if (p->factor < p->o.min_factor)
            p->factor = p->o.min_factor;
    }
    if (o->has_retry_after_ms && o->retry_after_ms > 0) {
        uint64_t ra = o->retry_after_ms < p->o.max_pause_ms ? o->retry_after_ms : p->o.max_pause_ms;
        if (now + ra > p->pause_until)
            p->pause_until = now + ra;
    }
    return 1;
}
