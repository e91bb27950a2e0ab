/* cmd_dataset.c: `empq dataset synth|check`. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "empq/dataset.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq dataset synth --prompts N [--seed S] --out FILE\n"
               "       empq dataset check FILE [--format F]\n"
               "  synth   writes a synthetic dataset (JSONL) over the 32 emotions\n"
               "  check   loads FILE and reports the dialogues per emotion, or the first\n"
               "          error with its file and line (exit 1)\n"
               "  --format F   welivita-pu | empatheticdialogues | jsonl | auto (default)\n");
}

static int synth(int argc, char **argv)
{
    enum { PROMPTS = CLI_OPT, SEED, OUT };
    static const struct option opts[] = {{"prompts", required_argument, NULL, PROMPTS},
                                         {"seed", required_argument, NULL, SEED},
                                         {"out", required_argument, NULL, OUT},
                                         CLI_OPT_HELP_ENTRY,
                                         {0}};
    cli__args a = {.cmd = "dataset synth", .opts = opts, .usage = usage};
    uint64_t n = 0, seed = 1;
    int have_n = 0, c;
    const char *out = NULL;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case PROMPTS:
            cli__opt_u64(&a, 100000000ull, &n);
            have_n = 1;
            break;
        case SEED: cli__opt_u64(&a, UINT64_MAX, &seed); break;
        case OUT: out = optarg; break;
        }
    }
    if (c == 0)
        return a.code;
    if (!have_n || out == NULL) {
        cli__err("dataset synth: %s is required", !have_n ? "--prompts N" : "--out FILE");
        return CLI_USAGE;
    }
    empq_dataset *ds = NULL;
    empq_error err = {0};
    int rc = empq_dataset_synth((size_t)n, seed, &ds, &err);
    if (rc == EMPQ_OK)
        rc = empq_dataset_write_jsonl(ds, out, &err);
    empq_dataset_free(&ds);
    if (rc != EMPQ_OK) {
        cli__err("dataset synth: %s", err.msg);
        return CLI_FAIL;
    }
    fprintf(stderr, "empq: wrote %llu synthetic dialogues (seed %llu) to %s\n",
            (unsigned long long)n, (unsigned long long)seed, out);
    return CLI_OK;
}

static int check(int argc, char **argv)
{
    enum { FORMAT = CLI_OPT };
    static const struct option opts[] = {{"format", required_argument, NULL, FORMAT}, CLI_OPT_HELP_ENTRY, {0}};
    cli__args a = {.cmd = "dataset check", .opts = opts, .usage = usage, .max_args = 1, .too_many = "one file at a time"};
    const char *format = NULL;
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0)
        format = optarg; /* FORMAT */
    if (c == 0)
        return a.code;
    const char *path = a.args[0];
    if (path == NULL) {
        cli__err("dataset check: which file? (empq dataset check FILE)");
        return CLI_USAGE;
    }
    empq_dataset *ds = NULL;
    empq_error err = {0};
    int rc = empq_dataset_load(path, format, &ds, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg[0] != '\0' ? err.msg : empq_strerror(rc));
        return rc == EMPQ_EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    size_t counts[EMPQ_N_EMOTIONS] = {0};
    size_t with_human = 0, present = 0;
    for (size_t i = 0; i < ds->n; i++) {
        int e = empq_emotion_index(ds->items[i].emotion);
        if (e >= 0)
            counts[e]++;
        if (ds->items[i].human != NULL)
            with_human++;
    }
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        present += counts[e] > 0;
    printf("%s: %zu dialogues, %zu emotions, %zu with a human response\n", path, ds->n, present,
           with_human);
    for (int e = 0; e < EMPQ_N_EMOTIONS; e++)
        printf("  %-14s %zu\n", empq_emotion_name(e), counts[e]);
    empq_dataset_free(&ds);
    return CLI_OK;
}

int cli__cmd_dataset(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_USAGE : CLI_OK;
    }
    if (strcmp(argv[1], "synth") == 0)
        return synth(argc - 1, argv + 1);
    if (strcmp(argv[1], "check") == 0)
        return check(argc - 1, argv + 1);
    cli__err("dataset: unknown subcommand '%s' (synth or check)", argv[1]);
    return CLI_USAGE;
}
