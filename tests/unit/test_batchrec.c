/* test_batchrec.c: the durable batch records against a real
 * redis-server: a job goes in at most one open batch, states move forward
 * one step at a time and refuse the rest, an owner holds a record until its
 * time passes and another takes it over, a record left half-way (a crash)
 * is still listed open with what it knew, and finishing frees its jobs. */
#include "check.h"
#include "realredis.h"

#include "empq/batchrec.h"
#include "empq/store.h"

static realredis redis;

static empq_store *open_store(void)
{
    empq_store *s = NULL;
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    return s;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int has(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return 1;
    return 0;
}

static void test_prepare_one_batch_per_job(void)
{
    empq_store *s = open_store();
    empq_error err = {0};
    uint32_t jobs[] = {1, 4, 9}, att[] = {1, 1, 2};
    empq_batchrec a = {0}, b = {0};
    CHECK_INT(empq_batchrec_prepare(s, "r1", 2, jobs, att, 3, "w1", 60000, &a, &err), EMPQ_OK);
    CHECK_STR(a.key, "r1:2:1");
    CHECK_INT(a.state, EMPQ_BATCHREC_PREPARED);
    CHECK_INT(a.n, 3);
    CHECK(a.jobs[2] == 9 && a.attempts[2] == 2);
    /* 4 and 9 are in batch a: only 5 goes in b */
    uint32_t jobs2[] = {4, 5, 9}, att2[] = {1, 1, 1};
    CHECK_INT(empq_batchrec_prepare(s, "r1", 2, jobs2, att2, 3, "w2", 60000, &b, &err), EMPQ_OK);
    CHECK_STR(b.key, "r1:2:2");
    CHECK_INT(b.n, 1);
    CHECK_INT(b.jobs[0], 5);
    empq_batchrec_clear(&b);
    /* all taken: no record at all */
    CHECK_INT(empq_batchrec_prepare(s, "r1", 2, jobs, att, 3, "w2", 60000, &b, &err), EMPQ_OK);
    CHECK_INT(b.n, 0);
    char **keys = NULL;
    size_t n = 0;
    CHECK_INT(empq_batchrec_open_keys(s, &keys, &n, &err), EMPQ_OK);
    CHECK_INT(n, 2);
    CHECK(has(keys, n, "r1:2:1") && has(keys, n, "r1:2:2") && !has(keys, n, b.key));
    empq_store_free_strings(keys, n);
    /* the same job numbers of another run are free */
    empq_batchrec_clear(&b);
    CHECK_INT(empq_batchrec_prepare(s, "r2", 0, jobs, att, 3, "w2", 60000, &b, &err), EMPQ_OK);
    CHECK_INT(b.n, 3);
    empq_batchrec_clear(&b);
    CHECK_INT(empq_batchrec_prepare(s, NULL, 0, jobs, att, 3, "w2", 60000, &b, &err), EMPQ_EINVAL);
    CHECK_INT(empq_batchrec_prepare(s, "r1", 0, jobs, att, 0, "w2", 60000, &b, &err), EMPQ_EINVAL);
    empq_batchrec_clear(&a);
    empq_store_close(&s);
}

static void test_states_forward_only(void)
{
    empq_store *s = open_store();
    empq_error err = {0};
    uint32_t jobs[] = {7}, att[] = {1};
    empq_batchrec a = {0}, r = {0};
    CHECK_INT(empq_batchrec_prepare(s, "r3", 0, jobs, att, 1, "w1", 60000, &a, &err), EMPQ_OK);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_SUBMITTED, "batch_id", "batch_x", &err), EMPQ_ESTATE);
    CHECK_CONTAINS(err.msg, "not uploaded, cannot move to submitted");
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_UPLOADED, "file_id", "file-1", &err), EMPQ_OK);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_UPLOADED, "file_id", "file-2", &err), EMPQ_ESTATE);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_UPLOADED, "created_ms", "1700000000123", &err), EMPQ_OK);
    /* a crash here: the record says what is known, and is open */
    CHECK_INT(empq_batchrec_load(s, a.key, &r, &err), EMPQ_OK);
    CHECK_INT(r.state, EMPQ_BATCHREC_UPLOADED);
    CHECK_STR(r.file_id, "file-1");
    CHECK_STR(r.batch_id, "");
    CHECK(r.created_ms == 1700000000123ull);
    CHECK_STR(r.run, "r3");
    CHECK(r.n == 1 && r.jobs[0] == 7 && r.attempts[0] == 1);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_SUBMITTED, "batch_id", "batch_x", &err), EMPQ_OK);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_PREPARED, NULL, NULL, &err), EMPQ_EINVAL);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_SUBMITTED, "created_ms", "1", &err), EMPQ_EINVAL);
    char **ids = NULL;
    size_t n = 0;
    CHECK_INT(empq_batchrec_taken_ids(s, NULL, &ids, &n, &err), EMPQ_OK);
    CHECK(has(ids, n, "batch_x"));
    empq_store_free_strings(ids, n);
    CHECK_INT(empq_batchrec_taken_ids(s, a.key, &ids, &n, &err), EMPQ_OK);
    CHECK(!has(ids, n, "batch_x"));
    empq_store_free_strings(ids, n);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_ENDED, NULL, NULL, &err), EMPQ_OK);
    CHECK_INT(empq_batchrec_advance(s, a.key, EMPQ_BATCHREC_DONE, NULL, NULL, &err), EMPQ_OK);
    CHECK_INT(empq_batchrec_advance(s, "r3:0:999", EMPQ_BATCHREC_UPLOADED, NULL, NULL, &err), EMPQ_ENOTFOUND);
    CHECK_INT(empq_batchrec_load(s, "r3:0:999", &r, &err), EMPQ_ENOTFOUND);
    CHECK_STR(empq_batchrec_state_name(EMPQ_BATCHREC_ENDED), "ended");
    empq_batchrec_clear(&a);
    empq_batchrec_clear(&r);
    empq_store_close(&s);
}

static void test_owner_and_finish(void)
{
    empq_store *s = open_store();
    empq_error err = {0};
    uint32_t jobs[] = {3, 8}, att[] = {1, 1};
    empq_batchrec a = {0}, b = {0};
    CHECK_INT(empq_batchrec_prepare(s, "r4", 1, jobs, att, 2, "w1", 300, &a, &err), EMPQ_OK);
    CHECK_INT(empq_batchrec_claim(s, a.key, "w2", 300, &err), 0);  /* w1 holds it */
    CHECK_INT(empq_batchrec_claim(s, a.key, "w1", 300, &err), 1);  /* renewed */
    nap_ms(450);                                                    /* w1 died: its time passed */
    CHECK_INT(empq_batchrec_claim(s, a.key, "w2", 60000, &err), 1); /* taken over */
    CHECK_INT(empq_batchrec_claim(s, a.key, "w1", 60000, &err), 0);
    /* finish: closed, out of the open set, its jobs free for a new batch */
    CHECK_INT(empq_batchrec_finish(s, a.key, &err), EMPQ_OK);
    CHECK_INT(empq_batchrec_finish(s, a.key, &err), EMPQ_OK); /* again: no harm */
    char **keys = NULL;
    size_t n = 0;
    CHECK_INT(empq_batchrec_open_keys(s, &keys, &n, &err), EMPQ_OK);
    CHECK(!has(keys, n, a.key));
    empq_store_free_strings(keys, n);
    empq_batchrec r = {0};
    CHECK_INT(empq_batchrec_load(s, a.key, &r, &err), EMPQ_OK);
    CHECK_INT(r.state, EMPQ_BATCHREC_DONE);
    empq_batchrec_clear(&r);
    CHECK_INT(empq_batchrec_prepare(s, "r4", 1, jobs, att, 2, "w2", 60000, &b, &err), EMPQ_OK);
    CHECK_INT(b.n, 2);
    CHECK_INT(empq_batchrec_finish(s, "r4:1:999", &err), EMPQ_ENOTFOUND);
    empq_batchrec_clear(&a);
    empq_batchrec_clear(&b);
    empq_store_close(&s);
}

static void test_redis_down(void)
{
    empq_store *s = NULL;
    empq_error err = {0};
    CHECK_INT(empq_store_open(&s, redis.url, 2000, NULL), EMPQ_OK);
    realredis_stop(&redis);
    uint32_t jobs[] = {1}, att[] = {1};
    empq_batchrec a = {0};
    CHECK_INT(empq_batchrec_prepare(s, "r5", 0, jobs, att, 1, "w1", 1000, &a, &err), EMPQ_ESTORE);
    CHECK_CONTAINS(err.msg, "batch records: Redis");
    CHECK_INT(a.n, 0);
    empq_store_close(&s);
}

int main(void)
{
    realredis_start(&redis);
    RUN(test_prepare_one_batch_per_job);
    RUN(test_states_forward_only);
    RUN(test_owner_and_finish);
    RUN(test_redis_down);
    realredis_stop(&redis);
    CHECK_DONE();
}
