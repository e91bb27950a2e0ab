#!/usr/bin/python3
"""The broker's Prometheus endpoint (must-show 4 of issue 7).

Starts the broker with --metrics on a free loopback port, runs a study of
48 prompts x (human + 2 fake models), and scrapes /metrics: the text must
parse under a strict parser of the Prometheus text format 0.0.4 written
here (metric and label grammar, escapes, HELP/TYPE once and before the
samples, families contiguous, no duplicate series, counters named *_total,
histogram buckets cumulative with +Inf == _count), and `promtool check metrics` too
(promtool on PATH, EMPQ_PROMTOOL, or taken out of Debian's prometheus package;
skipped with a message when none can be had). Its counters must match the run:
completed == jobs, per model completed == prompts, the jobs gauge, the
latency histogram counting every fresh generation, workers connected."""
import math
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Cluster, demo_like_spec, free_port, main, program, wait_until  # noqa: E402

PROMPTS = 48

NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
LABEL = r"[a-zA-Z_][a-zA-Z0-9_]*"
VALUE = r"(?:[+-]?(?:\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|[+-]?Inf|NaN)"
LABEL_VALUE = r'"(?:[^"\\\n]|\\[\\"n])*"'
SAMPLE = re.compile(rf"^({NAME})(?:\{{((?:{LABEL}={LABEL_VALUE})(?:,{LABEL}={LABEL_VALUE})*,?)?\}})? ({VALUE})(?: (-?\d+))?$")
LABEL_PAIR = re.compile(rf"({LABEL})=({LABEL_VALUE})")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}



def find_promtool():
    """promtool: EMPQ_PROMTOOL, on PATH, or taken out of Debian's prometheus
    package (apt-get download + dpkg -x into the build folder, not installed:
    the package would also install a server). None when none can be had."""
    p = os.environ.get("EMPQ_PROMTOOL") or shutil.which("promtool")
    if p:
        return p
    where = os.path.join(os.path.dirname(os.environ.get("EMPQ_BIN", "build/bin")), "promtool")
    exe = os.path.join(where, "usr", "bin", "promtool")
    if os.access(exe, os.X_OK):
        return exe
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        return None
    os.makedirs(where, exist_ok=True)
    try:
        r = subprocess.run(["apt-get", "download", "prometheus"], cwd=where, capture_output=True, text=True,
                           timeout=180)
        debs = [f for f in os.listdir(where) if f.startswith("prometheus_") and f.endswith(".deb")]
        if r.returncode != 0 or not debs:
            print("   apt-get download prometheus failed: " + r.stderr.strip()[-200:], file=sys.stderr)
            return None
        subprocess.run(["dpkg", "-x", os.path.join(where, debs[0]), where], check=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as e:
        print(f"   promtool from Debian's package: {e}", file=sys.stderr)
        return None
    return exe if os.access(exe, os.X_OK) else None

def unescape(v):
    out, i = [], 1
    while i < len(v) - 1:
        if v[i] == "\\":
            out.append({"\\": "\\", '"': '"', "n": "\n"}[v[i + 1]])
            i += 2
        else:
            out.append(v[i])
            i += 1
    return "".join(out)


def family_of(name, types):
    """The family a sample belongs to (histogram suffixes stripped)."""
    for suf in ("_bucket", "_sum", "_count"):
        if name.endswith(suf) and types.get(name[: -len(suf)]) in ("histogram", "summary"):
            return name[: -len(suf)]
    return name


def parse(text):
    """Parses the text format strictly. Returns (types, helps, samples) with
    samples a list of (name, labels dict, float). Raises AssertionError."""
    assert text.endswith("\n"), "the text must end with a newline"
    types, helps, samples, seen, done_families = {}, {}, [], set(), set()
    current = None
    for n, line in enumerate(text.split("\n")[:-1], 1):
        where = f"line {n}: {line!r}"
        assert line != "", f"{where}: empty line"
        if line.startswith("#"):
            m = re.match(rf"^# (HELP|TYPE) ({NAME}) (.*)$", line)
            if not m:
                assert not re.match(r"^#\s*(HELP|TYPE)\b", line), f"{where}: malformed HELP/TYPE"
                continue
            kind, name, rest = m.groups()
            assert name not in done_families, f"{where}: family {name} appears again after others"
            if kind == "TYPE":
                assert rest in TYPES, f"{where}: unknown type"
                assert name not in types, f"{where}: second TYPE"
                assert not any(family_of(s[0], types) == name for s in samples), f"{where}: TYPE after samples"
                types[name] = rest
            else:
                assert name not in helps, f"{where}: second HELP"
                assert re.fullmatch(r"(?:[^\\\n]|\\[\\n])*", rest), f"{where}: bad escape in HELP"
                helps[name] = rest
            if current is not None and current != name:
                done_families.add(current)
            current = name
            continue
        m = SAMPLE.match(line)
        assert m, f"{where}: not a sample line"
        name, labels_text, value = m.group(1), m.group(2) or "", m.group(3)
        labels = {}
        for k, v in LABEL_PAIR.findall(labels_text):
            assert k not in labels, f"{where}: label {k} twice"
            labels[k] = unescape(v)
        fam = family_of(name, types)
        assert fam not in done_families, f"{where}: family {fam} is not contiguous"
        if current is not None and current != fam:
            done_families.add(current)
        current = fam
        key = (name, tuple(sorted(labels.items())))
        assert key not in seen, f"{where}: duplicate series"
        seen.add(key)
        v = float(value.replace("Inf", "inf"))
        t = types.get(fam, "untyped")
        if t == "counter":
            assert fam.endswith("_total") and v >= 0, f"{where}: counter name or value"
        else:
            assert not fam.endswith("_total"), f"{where}: a {t} named *_total (promtool rejects it)"
        if t == "histogram":
            assert name != fam, f"{where}: a histogram sample needs _bucket/_sum/_count"
            if name.endswith("_bucket"):
                assert "le" in labels, f"{where}: bucket without le"
        samples.append((name, labels, v))
    for fam, t in types.items():
        assert fam in helps, f"{fam}: TYPE without HELP"
        if t != "histogram":
            continue
        groups = {}
        for name, labels, v in samples:
            if family_of(name, types) != fam:
                continue
            rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
            g = groups.setdefault(rest, {"buckets": [], "sum": None, "count": None})
            if name.endswith("_bucket"):
                le = labels["le"]
                g["buckets"].append((math.inf if le == "+Inf" else float(le), v))
            elif name.endswith("_sum"):
                g["sum"] = v
            else:
                g["count"] = v
        for rest, g in groups.items():
            b = g["buckets"]
            assert b and b[-1][0] == math.inf, f"{fam}{rest}: no +Inf bucket last"
            assert all(b[i][0] < b[i + 1][0] for i in range(len(b) - 1)), f"{fam}{rest}: le not ascending"
            assert all(b[i][1] <= b[i + 1][1] for i in range(len(b) - 1)), f"{fam}{rest}: buckets not cumulative"
            assert g["count"] is not None and g["sum"] is not None, f"{fam}{rest}: no _sum or _count"
            assert b[-1][1] == g["count"], f"{fam}{rest}: +Inf {b[-1][1]} != _count {g['count']}"
    return types, helps, samples


def value(samples, name, **labels):
    vals = [v for n, l, v in samples if n == name and all(l.get(k) == x for k, x in labels.items())]
    assert vals, f"no sample {name}{labels}"
    return sum(vals)


def get(url):
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=5) as r:
        return r.status, r.headers.get("Content-Type"), r.read().decode("utf-8")


def test_parser_rejects():
    """The parser is strict: each of these is refused."""
    bad = ["x 1",  # no newline at the end
           "# TYPE a_total counter\n# HELP a_total h\na_total{l=\"\\x\"} 1\n",  # bad escape
           "# HELP a h\n# TYPE a gauge\na 1\n# HELP b h\n# TYPE b gauge\nb 1\na 2\n",  # not contiguous
           "# HELP a h\n# TYPE a gauge\na{x=\"1\"} 1\na{x=\"1\"} 2\n",  # duplicate
           "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 3\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 2\n",
           "# HELP h h\n# TYPE h histogram\nh_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 1\nh_count 3\n",
           "# HELP a h\n# TYPE a counter\na 1\n",  # counter not *_total
           "# HELP a_total h\n# TYPE a_total gauge\na_total 1\n",  # gauge named *_total
           "# HELP a h\n# TYPE a gauge\na one\n"]
    for text in bad:
        try:
            parse(text)
        except AssertionError:
            continue
        raise AssertionError(f"the parser accepted {text!r}")
    parse("# HELP a h \\\\ \\n\n# TYPE a gauge\na{l=\"q\\\"\\\\\\n\"} -1.5e3\na{l=\"\"} +Inf\n")


def test_metrics():
    with Cluster(workers=2, latency_ms=20, name="ops-metrics") as c:
        c.start(broker=False, workers=False)
        mport = free_port()
        c.jobs_ep = f"tcp://127.0.0.1:{free_port()}"
        c.control_ep = f"tcp://127.0.0.1:{free_port()}"
        p = c.spawn("broker", [program("empq-broker"), "--redis", c.redis_url, "--bind", c.jobs_ep,
                               "--control", c.control_ep, "--metrics", f"127.0.0.1:{mport}"])
        wait_until("empq-broker control",
                   lambda: c.cli(["status", "--json"], timeout=5, check=False).returncode == 0,
                   procs=[p], interval=0.1)
        for i in (1, 2):
            c.start_worker(i)
        url = f"http://127.0.0.1:{mport}/metrics"
        wait_until("2 workers in the metrics",
                   lambda: value(parse(get(url)[2])[2], "empq_workers_connected") == 2, interval=0.1)
        models = ("fake-warm", "fake-brief")
        run = c.submit(c.write("study.yaml", demo_like_spec("metrics", PROMPTS, models=models)))
        c.wait_responses(run)
        status, ctype, text = get(url)
        assert status == 200 and ctype.startswith("text/plain; version=0.0.4"), (status, ctype)
        types, helps, s = parse(text)
        jobs = PROMPTS * (1 + len(models))
        assert value(s, "empq_jobs_completed_total") == jobs, text
        assert value(s, "empq_dispatched_total") == jobs
        assert value(s, "empq_outcomes_total") == jobs
        assert value(s, "empq_run_jobs", run=run) == jobs
        for m in ("human",) + models:
            assert value(s, "empq_jobs_completed_total", model=m) == PROMPTS, m
            assert value(s, "empq_jobs_dispatched_total", model=m) == PROMPTS, m
            assert value(s, "empq_jobs", run=run, model=m, state="done") == PROMPTS, m
            for st in ("pending", "leased", "dead"):
                assert value(s, "empq_jobs", run=run, model=m, state=st) == 0, (m, st)
            assert value(s, "empq_jobs_dead_total", model=m) == 0
            assert value(s, "empq_cache_hits_total", model=m) == 0
        for m in models:
            n = value(s, "empq_request_duration_seconds_count", model=m)
            assert n == PROMPTS, (m, n)
            mean = value(s, "empq_request_duration_seconds_sum", model=m) / n
            assert 0.015 <= mean < 5, (m, mean)  # the fake LLM answers after 20 ms
            assert value(s, "empq_request_duration_seconds_bucket", model=m, le="0.01") == 0
            assert value(s, "empq_tokens_total", model=m) > 0
            assert value(s, "empq_run_tokens_total", run=run, model=m) == value(s, "empq_tokens_total", model=m)
            assert value(s, "empq_run_cost_total", run=run, model=m) == 0  # the spec has no prices
            assert value(s, "empq_model_stopped", run=run, model=m) == 0
        assert value(s, "empq_request_duration_seconds_count", model="human") == 0
        assert value(s, "empq_workers_connected") == 2
        assert value(s, "empq_workers_in_flight") == 0
        assert value(s, "empq_bad_messages_total") == 0
        assert value(s, "empq_retries_total") == 0 and value(s, "empq_http_429_total") == 0
        assert types["empq_request_duration_seconds"] == "histogram" and types["empq_jobs"] == "gauge"

        # a second run of the same requests: all from the cache
        run2 = c.submit(c.write("study2.yaml", demo_like_spec("metrics", PROMPTS, models=models)))
        c.wait_responses(run2)
        _, _, s = parse(get(url)[2])
        assert value(s, "empq_jobs_completed_total") == 2 * jobs
        for m in models:
            assert value(s, "empq_cache_hits_total", model=m) == PROMPTS
            assert value(s, "empq_request_duration_seconds_count", model=m) == PROMPTS  # no new requests
        promtool = find_promtool()
        if promtool:
            r = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
            assert r.returncode == 0, r.stdout + r.stderr
            print("   promtool check metrics: ok", file=sys.stderr)
        else:
            print("   SKIP promtool check: promtool not installed and Debian's prometheus package could not be"
                  " fetched (or set EMPQ_PROMTOOL=/path/to/promtool); the strict parser here only", file=sys.stderr)
        try:
            get(f"http://127.0.0.1:{mport}/other")
            raise AssertionError("/other answered 200")
        except urllib.error.HTTPError as e:
            assert e.code == 404
        c.check_alive()


if __name__ == "__main__":
    main(test_parser_rejects, test_metrics)
