/* cmd_control.c: `empq cancel|pause|resume RUN`: one control request to the
 * broker, which writes the run's new state to Redis first. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

static void usage_of(FILE *f, const char *cmd)
{
    fprintf(f, "usage: empq %s RUN [--broker ENDPOINT]\n", cmd);
    if (strcmp(cmd, "cancel") == 0)
        fprintf(f, "  stops dispatching the run's jobs for good (jobs in flight still finish)\n");
    else if (strcmp(cmd, "pause") == 0)
        fprintf(f, "  stops dispatching the run's jobs until `empq resume RUN` (jobs in flight finish)\n");
    else
        fprintf(f, "  dispatches a paused run again (refused for a done or cancelled run)\n");
    fprintf(f, "  --broker EP   broker control endpoint (default $EMPQ_BROKER_CONTROL or " CLI_DEFAULT_CONTROL ")\n");
}

static void usage_cancel(FILE *f) { usage_of(f, "cancel"); }
static void usage_pause(FILE *f) { usage_of(f, "pause"); }
static void usage_resume(FILE *f) { usage_of(f, "resume"); }

static int control_cmd(int argc, char **argv, Empq__ControlRequest__BodyCase body, void (*usage)(FILE *f))
{
    enum { BROKER = CLI_OPT };
    static const struct option opts[] = {{"broker", required_argument, NULL, BROKER}, CLI_OPT_HELP_ENTRY, {0}};
    const char *cmd = argv[0], *control = cli__default_control();
    cli__args a = {.cmd = cmd, .opts = opts, .usage = usage, .max_args = 1, .too_many = "one run at a time"};
    int c;
    while ((c = cli__getopt(&a, argc, argv)) > 0)
        control = optarg; /* BROKER */
    if (c == 0)
        return a.code;
    const char *run = a.args[0];
    if (run == NULL) {
        cli__err("%s: which run? (empq %s RUN)", cmd, cmd);
        usage(stderr);
        return CLI_USAGE;
    }
    Empq__ControlRequest req = EMPQ__CONTROL_REQUEST__INIT;
    req.body_case = body;
    if (body == EMPQ__CONTROL_REQUEST__BODY_CANCEL)
        req.cancel = (char *)run;
    else if (body == EMPQ__CONTROL_REQUEST__BODY_PAUSE)
        req.pause = (char *)run;
    else
        req.resume = (char *)run;
    Empq__ControlReply *reply = NULL;
    empq_error err = {0};
    int rc = cli__control(control, &req, CLI_CONTROL_TIMEOUT_MS, &reply, &err);
    if (rc != EMPQ_OK) {
        cli__err("%s", err.msg);
        return CLI_SERVICE;
    }
    int ok = reply->ok;
    if (!ok)
        cli__err("%s %s: %s", cmd, run, reply->error != NULL ? reply->error : "refused by the broker");
    else
        fprintf(stderr, "empq: run %s %s\n", run,
                body == EMPQ__CONTROL_REQUEST__BODY_CANCEL  ? "cancelled"
                : body == EMPQ__CONTROL_REQUEST__BODY_PAUSE ? "paused"
                                                            : "resumed");
    empq__control_reply__free_unpacked(reply, NULL);
    return ok ? CLI_OK : CLI_FAIL;
}

int cli__cmd_cancel(int argc, char **argv)
{
    return control_cmd(argc, argv, EMPQ__CONTROL_REQUEST__BODY_CANCEL, usage_cancel);
}

int cli__cmd_pause(int argc, char **argv)
{
    return control_cmd(argc, argv, EMPQ__CONTROL_REQUEST__BODY_PAUSE, usage_pause);
}

int cli__cmd_resume(int argc, char **argv)
{
    return control_cmd(argc, argv, EMPQ__CONTROL_REQUEST__BODY_RESUME, usage_resume);
}
