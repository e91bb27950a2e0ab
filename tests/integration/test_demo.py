"""`empq demo` twice with the same --out: the first run calls the fake
backend once per model response, the second is served from the cache
(Redis keeps its append-only file in DIR/redis) with the same responses.
After the responses the demo runs the rating study with simulated
participants: the plan, the ratings export (every participant rates ITEMS
answers; every source is rated) and the report naming every source; the
same seed gives the same ratings in both runs.
Afterwards no process the demo started is left running. Also: exported
CURVE keys do not disturb it, and the default (relative) ./empq-demo works
from any folder, as `make demo` runs it."""

import collections
import contextlib
import csv
import os
import re
import shutil
import subprocess
import tempfile

from empqtest import main, program, read_jsonl, redis_server

PROMPTS = 2000  # the default demo: issue point 1 is about exactly this size
SOURCES = ("human", "fake-warm", "fake-formal", "fake-brief", "fake-curious")
ITEMS = 10  # dialogues per simulated participant
VOLATILE = {"run_id", "started_at", "finished_at", "latency_ms", "cache_hit", "attempts"}


def run_demo(out, *args, cwd=None, env=None):
    """`empq demo --out out ARGS` (no --out when out is None), from cwd; its
    stdout. On a failure prints the tail of every log and fails."""
    e = dict(os.environ if env is None else env)
    e.setdefault("EMPQ_STUDIES", os.path.join(os.environ.get("EMPQ_SOURCE_DIR", ""), "studies"))
    argv = [program("empq"), "demo"] + (["--out", out] if out is not None else []) + list(args)
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180, env=e,
                       cwd=cwd)
    if r.returncode != 0:
        logs = os.path.join(cwd or ".", out or "empq-demo", "logs")
        for f in sorted(os.listdir(logs)) if os.path.isdir(logs) else []:
            with open(os.path.join(logs, f), errors="replace") as fh:
                print(f"---- {f}\n" + "".join(fh.readlines()[-20:]))
        raise AssertionError(f"empq demo exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r.stdout


@contextlib.contextmanager
def demo_folder(prefix):
    """A temporary folder for demos; afterwards no process naming it is left
    (asserted when the test passed, killed by pid in any case), and the
    folder is removed unless the test failed."""
    redis_server()  # skips when not installed
    tmp = tempfile.mkdtemp(prefix=prefix)
    ok = False
    try:
        yield tmp
        assert not leftover_processes(tmp), leftover_processes(tmp)
        ok = True
    finally:
        for pid, _ in leftover_processes(tmp):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        if ok:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            print(f"kept {tmp}")


def summary_value(out, key):
    m = re.search(r"^\s+" + re.escape(key) + r"\s+([0-9,]+)", out, re.M)
    assert m, f"no '{key}' in the summary:\n{out}"
    return int(m.group(1).replace(",", ""))


def leftover_processes(marker):
    """pids of processes whose command line names marker (the demo folder)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found.append((int(pid), cmd))
    return found


def check_lines(lines):
    assert len(lines) == PROMPTS * len(SOURCES), len(lines)
    assert [(r["prompt_index"], r["source"]) for r in lines] == \
        [(p, s) for p in range(PROMPTS) for s in SOURCES], "lines out of order"
    per_emotion = collections.Counter(r["emotion"] for r in lines if r["source"] == "human")
    assert len(per_emotion) == 32, f"{len(per_emotion)} emotions: {per_emotion}"
    lo, hi = min(per_emotion.values()), max(per_emotion.values())
    assert (lo, hi) == (62, 63) and sum(per_emotion.values()) == PROMPTS, f"unbalanced: {per_emotion}"
    assert all(isinstance(r["response"], str) and r["response"] for r in lines)


def check_study(out, summary, prompts):
    """The rating study after the responses: plan, SIMULATED ratings of
    every answer, the report. Returns the ratings as (participant,
    condition, item, rating) tuples."""
    assert "SIMULATED" in summary, summary
    for name in ("plan/plan.csv", "plan/plan.json", "ratings/ratings.csv", "ratings/participants.csv",
                 "ratings/answers.csv",
                 "report/report.html", "report/report.md", "report/tables/conditions.csv"):
        path = os.path.join(out, name)
        assert os.path.isfile(path) and os.path.getsize(path) > 0, path
    with open(os.path.join(out, "ratings", "ratings-long.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    batches = (prompts + ITEMS - 1) // ITEMS
    participants = batches * len(SOURCES)
    assert len(rows) == prompts * len(SOURCES), len(rows)  # participants x items
    by_participant = collections.Counter(r["participant"] for r in rows)
    assert len(by_participant) == participants, len(by_participant)
    if prompts % ITEMS == 0:
        assert set(by_participant.values()) == {ITEMS}, by_participant
    assert all(p.startswith("simulated-") for p in by_participant)
    assert collections.Counter(r["condition"] for r in rows) == {s: prompts for s in SOURCES}
    assert all(r["rating"] in ("1", "2", "3") and r["checks_passed"] == r["checks"] == "1" for r in rows)
    assert summary_value(summary, "participants") == participants, summary
    # the demo study has a consent page: every simulated participant agreed before its claim
    with open(os.path.join(out, "ratings", "answers.csv"), newline="") as f:
        answers = list(csv.DictReader(f))
    assert len(answers) == participants and all(a["consented_at"] for a in answers), answers[:3]
    assert summary_value(summary, "ratings") == prompts * len(SOURCES), summary
    for name in ("report.html", "report.md"):
        with open(os.path.join(out, "report", name), encoding="utf-8") as f:
            text = f.read()
        missing = [s for s in SOURCES if s not in text]
        assert not missing, f"{name} does not name {missing}"
        # the simulated raters are said on top, before the first figure
        notice = text.find("SIMULATED DATA.")
        first = min(i for i in (text.find("<h2"), text.find("\n## "), text.find("Share rated Good")) if i >= 0)
        assert 0 <= notice < first, f"{name}: no SIMULATED DATA notice above the figures"
        assert f"{prompts * len(SOURCES)} of the {prompts * len(SOURCES)} ratings come from simulated raters" in text
    tables = os.path.join(out, "report", "tables")
    for name in sorted(n for n in os.listdir(tables) if n.endswith(".csv")):
        with open(os.path.join(tables, name), newline="", encoding="utf-8") as f:
            table = list(csv.DictReader(f))
        assert table and all(r["simulated"] == "1" for r in table), f"tables/{name}: simulated is not 1 on every row"
    return sorted((r["participant"], r["condition"], r["item"], r["rating"]) for r in rows)


def good_shares(out):
    with open(os.path.join(out, "report", "tables", "conditions.csv"), newline="") as f:
        return {r["condition"]: float(r["share_good"]) for r in csv.DictReader(f)}


def test_demo_twice():
    with demo_folder("empqtest-demo-") as tmp:
        out = os.path.join(tmp, "demo")
        first = run_demo(out)
        lines1 = read_jsonl(os.path.join(out, "responses.jsonl"))
        check_lines(lines1)
        # a fresh --out: every model response is one backend call (the
        # synthetic dataset has no repeated request), nothing from the cache
        calls, hits = summary_value(first, "backend calls"), summary_value(first, "cache hits")
        assert (calls, hits) == (PROMPTS * 4, 0), first
        assert not any(r["cache_hit"] for r in lines1), first
        assert summary_value(first, "jobs") == PROMPTS * 5, first
        ratings1 = check_study(out, first, PROMPTS)
        # the simulated raters like every fake model a little better than
        # the human baseline
        good = good_shares(out)
        assert all(good[s] > good["human"] for s in SOURCES if s != "human"), good
        assert not leftover_processes(tmp), leftover_processes(tmp)

        second = run_demo(out)
        lines2 = read_jsonl(os.path.join(out, "responses.jsonl"))
        check_lines(lines2)
        assert summary_value(second, "backend calls") == 0, second
        assert summary_value(second, "cache hits") == PROMPTS * 4, second
        assert lines1[0]["run_id"] != lines2[0]["run_id"]
        assert all(r["cache_hit"] for r in lines2 if r["source"] != "human")
        strip = lambda ls: [{k: v for k, v in r.items() if k not in VOLATILE} for r in ls]
        assert strip(lines1) == strip(lines2), "the cached demo's responses differ"
        assert check_study(out, second, PROMPTS) == ratings1, "the second demo's ratings differ"
        assert not leftover_processes(tmp), leftover_processes(tmp)
        assert os.path.isdir(os.path.join(out, "redis")) and os.listdir(os.path.join(out, "redis"))


def test_demo_ignores_cluster_keys():
    """Keys a user exported for a real cluster do not stop the demo's
    private, loopback broker from working."""
    with demo_folder("empqtest-demo-curve-") as tmp:
        keys = os.path.join(tmp, "keys")
        os.makedirs(keys)
        subprocess.run([program("empq"), "keygen", "--out", keys, "--name", "me"], check=True,
                       capture_output=True, timeout=30)
        env = dict(os.environ, EMPQ_CURVE_SECRET=os.path.join(keys, "me.key"),
                   EMPQ_CURVE_SERVER_PUB=os.path.join(keys, "me.pub"))
        out = os.path.join(tmp, "demo")
        run_demo(out, "--prompts", "64", env=env)
        assert len(read_jsonl(os.path.join(out, "responses.jsonl"))) == 64 * len(SOURCES)


def test_demo_default_folder():
    """`make demo` runs `empq demo` with no --out: the default ./empq-demo,
    a relative path, in the current folder (and a relative --out too)."""
    with demo_folder("empqtest-demo-cwd-") as tmp:
        for out, folder in ((None, "empq-demo"), ("rel/demo", os.path.join("rel", "demo"))):
            stdout = run_demo(out, "--prompts", "32", cwd=tmp)
            path = os.path.join(tmp, folder)
            assert len(read_jsonl(os.path.join(path, "responses.jsonl"))) == 32 * len(SOURCES), path
            assert os.path.exists(os.path.join(path, "logs", "redis.log")), os.listdir(os.path.join(path, "logs"))
            check_study(path, stdout, 32)


if __name__ == "__main__":
    main(test_demo_twice, test_demo_ignores_cluster_keys, test_demo_default_folder)
