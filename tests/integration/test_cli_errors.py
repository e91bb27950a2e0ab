"""Bad input to the empq command line: every error names what and where,
and the exit status is non-zero. Nothing here may hang: every command has a
deadline."""

import os
import re
import shutil
import subprocess
import sys
import time

from empqtest import Cluster, demo_like_spec, free_port, main, program

GOOD = demo_like_spec("errors", 32, models=("fake-warm",))


def expect_fail(c, args, *needles, code=None, timeout=20):
    t0 = time.monotonic()
    r = c.cli(args, check=False, timeout=timeout)
    took = time.monotonic() - t0
    assert r.returncode != 0, f"empq {' '.join(args)} succeeded:\n{r.stdout}{r.stderr}"
    if code is not None:
        assert r.returncode == code, f"exit {r.returncode}, want {code}: {r.stderr}"
    err = r.stderr
    assert err.startswith("empq: "), f"error not on stderr as 'empq: ...': {err!r}"
    for n in needles:
        if isinstance(n, re.Pattern):
            assert n.search(err), f"stderr does not match {n.pattern!r}:\n{err}"
        else:
            assert n in err, f"stderr does not name {n!r}:\n{err}"
    return r, took


def test_bad_spec():
    with Cluster() as c:
        dead_redis = f"redis://127.0.0.1:{free_port()}"
        # an unknown key, nested: names the key path and its line
        lines = GOOD.splitlines()
        at = next(i for i, l in enumerate(lines) if "max_tokens" in l)
        lines.insert(at + 1, "    temprature: 0.5")
        bad = c.write("unknown.yaml", "\n".join(lines) + "\n")
        expect_fail(c, ["submit", bad, "--redis", dead_redis], "unknown.yaml:", "temprature",
                    f"unknown.yaml:{at + 2}:", code=2)
        # a wrong type: selection.prompts is a number
        bad = c.write("type.yaml", GOOD.replace("  prompts: 32\n  seed: 42", "  prompts: abc\n  seed: 42"))
        line = GOOD.splitlines().index("selection:") + 2
        expect_fail(c, ["submit", bad, "--redis", dead_redis], "type.yaml:", "prompts",
                    f"type.yaml:{line}:", code=2)
        # a missing file
        expect_fail(c, ["submit", os.path.join(c.tmp, "nope.yaml")], "nope.yaml", code=2)
        # usage errors
        expect_fail(c, ["submit"], "spec", code=2)
        expect_fail(c, ["submit", bad, "--prompts", "many"], "--prompts", "many", code=2)
        expect_fail(c, ["frobnicate"], "frobnicate", code=2)
        expect_fail(c, ["demo", "--workers", "0"], "workers", code=2)


def test_bad_dataset():
    with Cluster() as c:
        # EmpatheticDialogues CSV with a line of 10 fields (line 3)
        ed = ("conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"
              "hit:0_conv:1,1,afraid,I heard a noise,1,Did you hear that?,5|5|5_2|2|5,\n"
              "hit:0_conv:1,2,afraid,I heard a noise,0,Yes_comma_ I did.,5|5|5_2|2|5,,x,y\n")
        p = c.write("ed.csv", ed)
        expect_fail(c, ["dataset", "check", p, "--format", "empatheticdialogues"], "ed.csv:3:",
                    "fields", code=1)
        # Welivita & Pu CSV with a quote that never closes (record on line 3)
        wp = ("part_no,dialog_id,emotion,sentiment,situation,speaker_uttr,response_human\r\n"
              "0,hit:1_conv:2,afraid,negative,\"a noise, at night\",Did you hear that?,Yes\r\n"
              "0,hit:3_conv:4,joyful,positive,\"I won,Great news!,Congrats\r\n")
        p = c.write("wp.csv", wp)
        expect_fail(c, ["dataset", "check", p, "--format", "welivita-pu"], "wp.csv:3:",
                    "unterminated", code=1)
        # JSONL with an unknown emotion on line 2
        js = ('{"id": "a", "emotion": "afraid", "situation": "s", "prompt": "p", "human": "h"}\n'
              '{"id": "b", "emotion": "grumpy", "situation": "s", "prompt": "p", "human": "h"}\n')
        bad_ds = c.write("ds.jsonl", js)
        expect_fail(c, ["dataset", "check", bad_ds], "ds.jsonl:2:", "grumpy", code=1)
        # the good line alone loads and is reported
        p = c.write("ok.jsonl", js.splitlines()[0] + "\n")
        r = c.cli(["dataset", "check", p])
        assert "1 dialogues" in r.stdout and "afraid" in r.stdout, r.stdout
        # a submit over a bad dataset names the file and line too
        spec = c.write("badds.yaml", GOOD.replace("  format: synth\n  prompts: 32\n  seed: 7",
                                                  f"  format: jsonl\n  path: {bad_ds}"))
        expect_fail(c, ["submit", spec, "--redis", f"redis://127.0.0.1:{free_port()}"],
                    "ds.jsonl:2:", "grumpy", code=2)


def test_unreachable_services():
    with Cluster() as c:
        port = free_port()
        url = f"redis://127.0.0.1:{port}"
        spec = c.write("good.yaml", GOOD)
        expect_fail(c, ["export", "r-x", "--out", os.path.join(c.tmp, "x.jsonl"), "--redis", url],
                    f"127.0.0.1:{port}", code=3)
        expect_fail(c, ["submit", spec, "--redis", url], f"127.0.0.1:{port}", code=3)
        # a real Redis but no broker: the run is saved, submit says the broker did not answer
        c.start_redis()
        ep = f"tcp://127.0.0.1:{free_port()}"
        r, took = expect_fail(c, ["submit", spec, "--broker", ep], ep, "did not answer", code=3)
        assert took < 10, f"submit took {took:.1f} s with no broker"
        assert r.stdout.strip().startswith("r-"), f"no run id on stdout: {r.stdout!r}"
        expect_fail(c, ["status", "--broker", ep], ep, code=3)
        # export of a run that does not exist names it
        expect_fail(c, ["export", "r-nope", "--out", os.path.join(c.tmp, "x.jsonl")], "r-nope",
                    code=1)


def test_options():
    """getopt_long: --opt=value, options before or after the positional
    argument, and the same errors as always for a missing value, an unknown
    option or a second positional argument."""
    with Cluster() as c:
        dead = f"redis://127.0.0.1:{free_port()}"
        out = os.path.join(c.tmp, "x.jsonl")
        # --out=FILE and --redis=URL, the run after the options: it gets as far as Redis
        expect_fail(c, ["export", f"--out={out}", f"--redis={dead}", "r-x"], dead.split("//")[1], code=3)
        expect_fail(c, ["export", "r-x", "--out"], "export: option '--out' needs a value", code=2)
        r, _ = expect_fail(c, ["export", "r-x", "--bogus", "x"], "export: unknown option '--bogus'", code=2)
        assert "usage: empq export" in r.stderr, r.stderr
        expect_fail(c, ["export", "--json=1", "r-x"], "unknown option '--json=1'", code=2)
        expect_fail(c, ["export", "-x", "r-x"], "export: unknown option '-x'", code=2)
        expect_fail(c, ["export", "r-1", "--out", out, "r-2"], "one run at a time (got 'r-1' and 'r-2')", code=2)
        expect_fail(c, ["submit", "--prompts=many", "s.yaml"], "--prompts must be a whole number, got 'many'",
                    code=2)
        expect_fail(c, ["keygen", "--out"], "keygen: option '--out' needs a value", code=2)
        expect_fail(c, ["demo", "--fast", "1"], "demo: unknown option '--fast'", code=2)
        expect_fail(c, ["--curve-secret"], "empq: option '--curve-secret' needs a value", code=2)
        # status --watch [SECONDS]: the next argument when it starts with a digit, or --watch=S
        expect_fail(c, ["status", "r-x", "--watch", "9999"], "--watch wants seconds in 0.05..3600, got '9999'",
                    code=2)
        expect_fail(c, ["status", "--watch=0", "r-x"], "got '0'", code=2)
        expect_fail(c, ["status", "--watch", "r-1", "r-2"], "one run at a time (got 'r-1' and 'r-2')", code=2)
        # a whole command both ways round: the file before or after its options
        ds = os.path.join(c.tmp, "synth.jsonl")
        c.cli(["dataset", "synth", f"--out={ds}", "--prompts", "3"])
        for args in (["dataset", "check", ds, "--format", "jsonl"], ["dataset", "check", "--format=jsonl", ds]):
            r = c.cli(args)
            assert "3 dialogues" in r.stdout, r.stdout
        expect_fail(c, ["dataset", "check", ds, "--format"], "dataset check: option '--format' needs a value", code=2)
        expect_fail(c, ["dataset", "synth", "extra", "--prompts", "3"], "dataset synth: unexpected argument 'extra'",
                    code=2)
        for args in (["export", "--help"], ["dataset", "check", "-h"], ["--help"]):
            r = c.cli(args)
            assert r.stdout.startswith("usage: empq"), r.stdout
        # the broker and the collector: usage errors exit 2 before they touch Redis
        for prog, args, needle in (
                ("empq-broker", ["--bogus"], "empq-broker: unknown option '--bogus'"),
                ("empq-broker", ["--redis"], "empq-broker: option '--redis' needs a value"),
                ("empq-broker", ["--lease-ms=0"], "--lease-ms wants milliseconds in 1..86400000, got '0'"),
                ("empq-broker", ["extra"], "empq-broker: unexpected argument 'extra'"),
                ("empq-collector", ["--bogus", "x"], "empq-collector: unknown option '--bogus'"),
                ("empq-collector", ["--out"], "empq-collector: option '--out' needs a value"),
                ("empq-collector", ["extra"], "empq-collector: unexpected argument 'extra'")):
            r = subprocess.run([program(prog)] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=20, cwd=c.tmp)
            assert r.returncode == 2, f"{prog} {args}: exit {r.returncode}: {r.stderr}"
            assert needle in r.stderr, f"{prog} {args}: stderr does not name {needle!r}:\n{r.stderr}"


PROGRAMS = ("empq", "empq-broker", "empq-worker", "empq-collector", "empq-fakellm")
# every empq command, with what comes before its options
COMMANDS = (["submit"], ["status"], ["rerun"], ["cancel"], ["pause"], ["resume"], ["workers"], ["export"],
            ["dataset", "synth"], ["dataset", "check"], ["demo"], ["analyze"], ["assign"],
            ["ratings", "export"], ["ratings", "status"], ["ratings", "reclaim"], ["keygen"])


def run_prog(prog, args, cwd):
    return subprocess.run([program(prog)] + args, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=20, cwd=cwd)


def test_one_wording():
    """--version on the five programs (the version and the git commit); an
    unknown option, a missing value and a stray argument read the same in
    every program and every empq command, name the program (not its path)
    and exit 2, before any service is touched."""
    with Cluster() as c:
        versions = set()
        for prog in PROGRAMS:
            r = run_prog(prog, ["--version"], c.tmp)
            assert r.returncode == 0 and r.stderr == "", f"{prog} --version: exit {r.returncode}: {r.stderr}"
            m = re.fullmatch(rf"{prog} (\d+\.\d+\.\d+) \(commit ([0-9a-f]{{7,40}}(?:-dirty)?|unknown)\)\n", r.stdout)
            assert m, f"{prog} --version printed {r.stdout!r}"
            versions.add(m.groups())
        assert len(versions) == 1, f"the five programs disagree on the version: {versions}"
        in_git = shutil.which("git") and subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)),
                                                         "rev-parse"], capture_output=True).returncode == 0
        if in_git:
            assert versions.pop()[1] != "unknown", "built from a git checkout but --version says commit unknown"

        def refused(prog, args, line):
            r = run_prog(prog, args, c.tmp)
            first = r.stderr.split("\n", 1)[0]
            assert r.returncode == 2, f"{prog} {args}: exit {r.returncode}, want 2: {r.stderr}"
            assert first == line, f"{prog} {args}: first line {first!r}, want {line!r}"
            assert "usage: " in r.stderr, f"{prog} {args}: no usage after the error: {r.stderr}"
            assert "/" not in first, f"{prog} {args}: a path in the error: {first!r}"
            assert r.stdout == "", f"{prog} {args}: wrote on stdout: {r.stdout!r}"

        for prog in PROGRAMS:
            refused(prog, ["--bogus"], f"{prog}: unknown option '--bogus'")
            refused(prog, ["--bogus=1"], f"{prog}: unknown option '--bogus=1'")
        refused("empq-broker", ["--redis"], "empq-broker: option '--redis' needs a value")
        refused("empq-worker", ["--broker"], "empq-worker: option '--broker' needs a value")
        refused("empq-worker", ["-b"], "empq-worker: option '-b' needs a value")
        refused("empq-worker", ["-x"], "empq-worker: unknown option '-x'")
        refused("empq-collector", ["--redis"], "empq-collector: option '--redis' needs a value")
        refused("empq-fakellm", ["--port"], "empq-fakellm: option '--port' needs a value")
        for prog in PROGRAMS[1:]:
            refused(prog, ["extra"], f"{prog}: unexpected argument 'extra'")
        for cmd in COMMANDS:
            name = " ".join(cmd)
            refused("empq", cmd + ["--bogus"], f"empq: {cmd[0]}: unknown option '--bogus'" if cmd[0] == "ratings"
                    else f"empq: {name}: unknown option '--bogus'")
            refused("empq", cmd + ["-q"], f"empq: {cmd[0] if cmd[0] == 'ratings' else name}: unknown option '-q'")
        print(f"   --version and refused options: {len(PROGRAMS)} programs, {len(COMMANDS)} commands",
              file=sys.stderr)


if __name__ == "__main__":
    main(test_bad_spec, test_bad_dataset, test_unreachable_services, test_options, test_one_wording)
