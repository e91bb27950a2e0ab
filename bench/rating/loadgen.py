"""loadgen: simulated participants of the rating site over real HTTP
(Python stdlib only). Used by bench/rating/bench_rating.py (1,000
participants in a minute) and tests/integration/test_rating_site.py (a
small version that runs in seconds).

A participant arrives with Prolific's parameters, reads the instructions,
rates every dialogue (keep-alive connection, optional think time), and
reads the completion code; an abandoning one stops after k answers and
never comes back. Every request's latency is kept. `verify` then checks
the export against what the participants did."""

import csv
import http.client
import os
import random
import re
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor

SLOT_RE = re.compile(r'name="slot" value="(\d+)"')
POS_RE = re.compile(r'name="pos" value="(\d+)"')
PROGRESS_RE = re.compile(r'id="progress">Dialogue (\d+) of (\d+)<')
CODE_RE = re.compile(r'id="code">([^<]*)<')


class Site:
    """One keep-alive HTTP/1.1 connection to the site; requests timed."""

    def __init__(self, host, port, lat, timeout=30):
        self.host, self.port, self.lat, self.timeout = host, port, lat, timeout
        self.conn = None

    def request(self, method, path, body=None, kind="other"):
        headers = {"Host": f"{self.host}:{self.port}"}
        if body is not None:
            body = urllib.parse.urlencode(body)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
            t0 = time.perf_counter()
            try:
                self.conn.request(method, path, body=body, headers=headers)
                r = self.conn.getresponse()
                data = r.read().decode("utf-8")
            except (ConnectionError, http.client.HTTPException, OSError):
                self.close()
                if attempt == 1:
                    raise
                continue
            self.lat.add(kind, time.perf_counter() - t0)
            if r.getheader("Connection", "").lower() == "close":
                self.close()
            return r.status, r.getheader("Location"), data
        raise AssertionError("unreachable")

    def close(self):
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class Latencies:
    def __init__(self):
        self.lock = threading.Lock()
        self.by_kind = {}

    def add(self, kind, s):
        with self.lock:
            self.by_kind.setdefault(kind, []).append(s)

    def summary(self):
        out = {}
        for kind, v in sorted(self.by_kind.items()):
            v = sorted(v)
            q = lambda p: v[min(len(v) - 1, int(p * len(v)))] * 1000
            out[kind] = {"n": len(v), "p50_ms": round(q(0.50), 2), "p95_ms": round(q(0.95), 2),
                         "p99_ms": round(q(0.99), 2), "max_ms": round(v[-1] * 1000, 2)}
        return out

    def total(self):
        return sum(len(v) for v in self.by_kind.values())


def participant(host, port, run, pid, lat, abandon_after=None, think_s=0.0, rng=None):
    """One participant's session. Returns a record: pid, slot, answers
    {position: rating}, status (done | abandoned | full | error), code."""
    rng = rng or random.Random(pid)
    site = Site(host, port, lat)
    rec = {"pid": pid, "slot": None, "answers": {}, "status": "error", "code": None, "error": None}
    try:
        q = urllib.parse.urlencode({"PROLIFIC_PID": pid, "STUDY_ID": "study-1",
                                    "SESSION_ID": "sess-" + pid})
        st, loc, body = site.request("GET", f"/study/{run}?{q}", kind="arrive")
        if st == 503:
            rec["status"] = "full"
            return rec
        assert st == 303, (st, body[:300])
        page = loc
        st, _, body = site.request("GET", page, kind="page")
        assert st == 200 and "Cognitive empathy" in body, (st, body[:300])
        if abandon_after == -1:
            rec["status"] = "abandoned"
            return rec
        st, loc, _ = site.request("POST", page + "/start", body={}, kind="start")
        assert st == 303, st
        while True:
            st, _, body = site.request("GET", page, kind="page")
            assert st == 200, (st, body[:300])
            m = CODE_RE.search(body)
            if m or "You have rated all" in body:
                rec["status"] = "done"
                rec["code"] = m.group(1) if m else ""
                return rec
            slot, pos = int(SLOT_RE.search(body).group(1)), int(POS_RE.search(body).group(1))
            rec["slot"] = slot
            if abandon_after is not None and len(rec["answers"]) >= abandon_after:
                rec["status"] = "abandoned"
                return rec
            if think_s:
                time.sleep(rng.uniform(0.5, 1.5) * think_s)
            rating = rng.choice((1, 2, 3))
            st, loc, body = site.request("POST", page + "/answer",
                                         body={"slot": slot, "pos": pos, "rating": rating},
                                         kind="answer")
            assert st == 303, (st, body[:300])
            rec["answers"][pos] = rating
    except Exception as e:  # recorded; verify() fails on it
        rec["error"] = f"{type(e).__name__}: {e}"
        return rec
    finally:
        site.close()


def run_load(host, port, run, n, arrival_s, abandon_frac, think_s=0.0, seed=1, workers=200,
             prefix="p", items=10):
    """n participants arriving uniformly over arrival_s seconds; a fraction
    abandons after 0..items-1 answers (-1: right after the instructions).
    port may be a list: participant i goes to port[i % len] (several site
    processes over one Redis). Returns (records, latencies, wall seconds)."""
    ports = list(port) if isinstance(port, (list, tuple)) else [port]
    rng = random.Random(seed)
    lat = Latencies()
    plan = []
    for i in range(n):
        pid = f"{prefix}{i:05d}{rng.randrange(16**8):08x}"
        ab = rng.randrange(-1, items) if rng.random() < abandon_frac else None
        plan.append((i * arrival_s / max(1, n), pid, ab, ports[i % len(ports)]))
    t0 = time.monotonic()

    def one(item):
        at, pid, ab, p = item
        delay = t0 + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return participant(host, p, run, pid, lat, abandon_after=ab, think_s=think_s,
                           rng=random.Random(pid))

    with ThreadPoolExecutor(max_workers=workers) as ex:
        records = list(ex.map(one, plan))
    return records, lat, time.monotonic() - t0


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def verify(export_dir, records, n_slots, items, code=None):
    """Checks the export (empq ratings export) against the participants'
    records. Returns a dict of figures; raises AssertionError on a breach."""
    errors = [r for r in records if r["error"]]
    assert not errors, f"{len(errors)} participants failed, e.g. {errors[0]}"
    parts = read_csv(os.path.join(export_dir, "participants.csv"))
    longr = read_csv(os.path.join(export_dir, "ratings-long.csv"))
    wide = read_csv(os.path.join(export_dir, "ratings.csv"))

    # every slot finished, by exactly one participant; no participant on two slots
    assert len(parts) == n_slots, f"{len(parts)} of {n_slots} slots claimed"
    assert all(p["status"] == "done" for p in parts), "a slot is not finished"
    slots = [int(p["slot"]) for p in parts]
    assert sorted(slots) == list(range(n_slots)), "a slot is missing or listed twice"
    pids = [p["participant"] for p in parts]
    assert len(set(pids)) == len(pids), "a participant holds two slots"

    # every (condition, item) rated exactly once
    assert len(longr) == n_slots * items, (len(longr), n_slots * items)
    keys = {(r["condition"], r["item"]) for r in longr}
    assert len(keys) == len(longr), "a response was rated twice"
    per_slot = {}
    for r in longr:
        per_slot.setdefault(int(r["slot"]), []).append(r)
    assert all(len(v) == items for v in per_slot.values())

    # no rating lost: each finished participant's answers are in the export as given
    by_pid = {}
    for r in longr:
        by_pid.setdefault(r["participant"], {})[int(r["position"])] = int(r["rating"])
    done = [r for r in records if r["status"] == "done"]
    for rec in done:
        assert by_pid.get(rec["pid"]) == rec["answers"], f"ratings of {rec['pid']} differ"
        if code is not None:
            assert rec["code"] == code, rec
    # abandoned participants left nothing in the export
    abandoned = [r for r in records if r["status"] == "abandoned"]
    assert not any(r["pid"] in by_pid for r in abandoned), "an abandoned session was exported"
    # the wide layout holds the same ratings
    n_wide = sum(1 for row in wide for k, v in row.items() if k.startswith("rating_") and v)
    assert n_wide == len(longr), (n_wide, len(longr))
    return {"slots": n_slots, "ratings": len(longr), "finished": len(done),
            "abandoned": len(abandoned)}
