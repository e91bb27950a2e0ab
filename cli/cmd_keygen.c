/* cmd_keygen.c: `empq keygen`: a CURVE keypair for the broker, a worker or
 * the CLI (see docs/security.md). */
#include <stdio.h>

#include "cli.h"
#include "empq/curve.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: empq keygen --out DIR [--name NAME]\n"
               "  writes DIR/NAME.key (the secret key, mode 0600) and DIR/NAME.pub (the public key);\n"
               "  NAME defaults to 'broker'. Existing files are never overwritten.\n"
               "  Put each worker's and CLI user's NAME.pub in the broker's --curve-allow folder;\n"
               "  give workers and the CLI the broker's broker.pub (--curve-server-pub).\n");
}

int cli__cmd_keygen(int argc, char **argv)
{
    enum { OUT = CLI_OPT, NAME };
    static const struct option opts[] = {
        {"out", required_argument, NULL, OUT}, {"name", required_argument, NULL, NAME}, CLI_OPT_HELP_ENTRY, {0}};
    cli__args a = {.cmd = "keygen", .opts = opts, .usage = usage};
    const char *out = NULL, *name = "broker";
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0) {
        switch (c) {
        case OUT: out = optarg; break;
        case NAME: name = optarg; break;
        }
    }
    if (c == 0)
        return a.code;
    if (out == NULL) {
        cli__err("keygen: --out DIR is required");
        usage(stderr);
        return CLI_USAGE;
    }
    char pub[EMPQ_CURVE_KEY_LEN + 1];
    empq_error err = {0};
    int rc = empq_curve_keygen(out, name, pub, &err);
    if (rc != EMPQ_OK) {
        cli__err("keygen: %s", err.msg);
        return rc == EMPQ_EINVAL ? CLI_USAGE : CLI_FAIL;
    }
    printf("%s/%s.key (secret, keep private)\n%s/%s.pub %s\n", out, name, out, name, pub);
    return CLI_OK;
}
