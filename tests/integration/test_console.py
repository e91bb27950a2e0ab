"""The study console (empq-collector --console), over real HTTP against a
real pipeline (redis-server, empq-fakellm, broker, worker, collector):

- access: with a token file, every page answers 401 without the token or
  with a wrong one, 200 with it (Authorization: Bearer, or the HttpOnly
  cookie a first visit to /?token= sets); non-GET methods answer 405. The
  console runs on 127.0.0.1 with --console-require-token, the same rule as a
  bind beyond loopback (tests send traffic to loopback only), or on the
  non-loopback address EMPQ_CONSOLE_TEST_HOST names;
- the pages: runs (per-source bars), a run (heat map, spec), responses side
  by side (all five sources of a prompt; a human answer holding <script>
  escaped), filters, dead letters and their `empq rerun` line (run here: it
  retries the dead jobs), raters (one participant through the rating site),
  the report once report.html exists;
- Redis access per page view, counted with MONITOR on the console's own
  connection: a constant number of commands whatever the page size (10, 50,
  200 prompts) and the run size (20 or 200 prompts x 5 sources).
"""

import http.client
import json
import os
import re
import socket
import subprocess
import threading
import time
import urllib.parse

from empqtest import Cluster, main, program, wait_port_file, wait_until
from test_rating_site import XSS_SCRIPT, Client, dataset

MODELS = ("fake-warm", "fake-formal", "fake-brief", "fake-curious")
TOKEN = "console-test-token-0123456789abcdef"


def spec5(path, n, brief_attempts=None):
    """n prompts of the jsonl dataset at path x (human + the four fake
    models): five sources."""
    out = ["name: console-test", "dataset:", "  format: jsonl", f"  path: {path}",
           "selection:", f"  prompts: {n}", "  seed: 1", "  balance: none",
           "template:", "  system: You are a kind listener.", "  user: \"{situation} {prompt}\"",
           "human:", "  include: true", "models:"]
    for m in MODELS:
        out += [f"  - alias: {m}", "    provider: openai-compatible",
                "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", f"    model: {m}"]
        if m == "fake-brief" and brief_attempts:
            out.append(f"    max_attempts: {brief_attempts}")
    return "\n".join(out) + "\n"


def submit5(c, n, **kw):
    ds = os.path.join(c.tmp, f"dataset-{n}.jsonl")
    with open(ds, "w", encoding="utf-8") as f:
        for d in dataset(n):
            f.write(json.dumps(d) + "\n")
    return c.submit(c.write(f"study-{n}.yaml", spec5(ds, n, **kw)))


def own_address():
    """A non-loopback address of this machine to bind the console on, when
    EMPQ_CONSOLE_TEST_HOST names one; None otherwise. Tests send traffic to
    loopback only unless told, so by default the console runs on 127.0.0.1
    with --console-require-token: the same rule (collector/console.c: a token
    is required when the bind address is not loopback, or when asked)."""
    return os.environ.get("EMPQ_CONSOLE_TEST_HOST") or None


def start_console(c, host="127.0.0.1", args=()):
    """Starts the collector with the console on host; returns its port."""
    pf = os.path.join(c.tmp, "console.port")
    c.spawn("collector", [program("empq-collector"), "--redis", c.redis_url, "--out", c.out,
                          "--site", "0", "--site-port-file", os.path.join(c.tmp, "site.port"),
                          "--console", f"{host}:0", "--console-port-file", pf,
                          "--broker-control", c.control_ep] + list(args))
    return wait_port_file(pf, c.procs["collector"], "console port file")


class Page:
    """GETs console pages over plain HTTP."""

    def __init__(self, host, port, token=None):
        self.host, self.port, self.token = host, port, token

    def get(self, path, token="default", headers=None, method="GET"):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        h = {"Host": f"{self.host}:{self.port}"}
        tok = self.token if token == "default" else token
        if tok is not None:
            h["Authorization"] = f"Bearer {tok}"
        h.update(headers or {})
        conn.request(method, path, headers=h)
        r = conn.getresponse()
        body = r.read().decode("utf-8")
        conn.close()
        return r.status, body, r


class Monitor:
    """Redis MONITOR on a raw socket: every command any client sends, with
    the client's address."""

    LINE = re.compile(r'^\+\d+\.\d+ \[\d+ ([^\]]+)\] "([^"]+)"')

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.sock.sendall(b"MONITOR\r\n")
        self.lines = []
        self.lock = threading.Lock()
        self.stop = False
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()
        wait_until("MONITOR started", lambda: any(l.startswith("+OK") for l in self.snapshot()))

    def _read(self):
        buf = b""
        while not self.stop:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            *done, buf = buf.split(b"\r\n")
            with self.lock:
                self.lines += [d.decode("utf-8", "replace") for d in done]

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def commands(self, addr, since):
        out = []
        for l in self.snapshot()[since:]:
            m = self.LINE.match(l)
            if m and m.group(1) == addr:
                out.append(m.group(2).upper())
        return out

    def close(self):
        self.stop = True
        self.sock.close()


def redis_cmd(port, *args):
    """One command over RESP; returns the decoded reply (bulk or integer)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        req = f"*{len(args)}\r\n" + "".join(f"${len(a.encode())}\r\n{a}\r\n" for a in args)
        s.sendall(req.encode())
        data = b""
        while True:
            data += s.recv(1 << 20)
            if data.startswith(b":") and data.endswith(b"\r\n"):
                return int(data[1:-2])
            if data.startswith(b"$"):
                head, _, rest = data.partition(b"\r\n")
                n = int(head[1:])
                if n < 0:
                    return None
                if len(rest) >= n + 2:
                    return rest[:n].decode()


def redis_port(c):
    return int(c.redis_url.rsplit(":", 1)[1])


def participant(site_port, run, pid, answers, fail_checks=False):
    """One participant on the rating site: arrive, read the instructions,
    answer `answers` dialogues, or (None) every one (attention checks as
    asked, or, with fail_checks, not)."""
    site = Client(site_port)

    def req(method, path, body=None):
        st, _, text, _ = site.req(method, path, body)
        return st, text

    st, _ = req("GET", f"/study/{run}?PROLIFIC_PID={pid}&STUDY_ID=s1&SESSION_ID=x1")
    assert st == 303, st
    base = f"/study/{run}/p/{pid}"
    assert req("POST", base + "/start")[0] == 303
    for _ in range(answers if answers is not None else 1000):
        st, body = req("GET", base)
        if answers is None and 'name="slot"' not in body:
            return  # finished
        slot = re.search(r'name="slot" value="(\d+)"', body).group(1)
        pos = re.search(r'name="pos" value="(\d+)"', body).group(1)
        # an attention check asks for a given answer: give it
        rating = "2"
        m = re.search(r"please rate this response as (Good|Okay|Bad)", body, re.I)
        if m:
            rating = {"good": "3", "okay": "2", "bad": "1"}[m.group(1).lower()]
            if fail_checks:
                rating = "3" if rating != "3" else "1"
        assert req("POST", base + "/answer", {"slot": slot, "pos": pos, "rating": rating})[0] == 303


def console_client(mon, page, run):
    """The address of the console's Redis connection: the client that sent
    the HMGETs of a responses page view (the collector's core does not)."""
    since = len(mon.snapshot())
    assert page.get(f"/run/{run}/responses?per=10")[0] == 200
    time.sleep(0.3)
    who = {}
    for l in mon.snapshot()[since:]:
        m = Monitor.LINE.match(l)
        if m and m.group(2).upper() == "HMGET" and ":results" in l:
            who[m.group(1)] = who.get(m.group(1), 0) + 1
    assert len(who) == 1, who
    return next(iter(who))


def views(mon, addr, page, path):
    """The console's Redis commands during one page view (status 200)."""
    since = len(mon.snapshot())
    st, body, _ = page.get(path)
    assert st == 200, (path, st, body[:300])
    time.sleep(0.25)  # MONITOR lines arrive just after the replies
    return mon.commands(addr, since)


# ==================== tests ====================

def test_access_and_pages():
    host = own_address()
    with Cluster(workers=1, name="empqtest-console", fakellm_args=["--fault-500", "0.15"]) as c:
        c.start(collector=False)
        tf = c.write("console.token", TOKEN + "\n")
        os.chmod(tf, 0o600)
        if host is not None:
            port = start_console(c, host, ["--console-token-file", tf])
            how = f"bound on {host} (not loopback)"
        else:
            port = start_console(c, "127.0.0.1", ["--console-token-file", tf, "--console-require-token"])
            how = "no non-loopback address here: 127.0.0.1 with --console-require-token"
        print(f"   console {how}")
        run = submit5(c, 20, brief_attempts=1)
        c.wait_responses(run)
        page = Page(host or "127.0.0.1", port, TOKEN)
        paths = ["/", "/progress.json", f"/run/{run}", f"/run/{run}/responses",
                 f"/run/{run}/responses?emotion=afraid&state=done", f"/run/{run}/dead",
                 f"/run/{run}/raters", f"/run/{run}/report", f"/run/{run}/file/responses.jsonl",
                 "/static/console.css", "/static/console.js", "/nothing"]

        # without the token, with a wrong one, with one a byte short: 401 everywhere
        for p in paths:
            for tok in (None, "wrong-" + TOKEN[6:], TOKEN[:-1]):
                st, body, r = page.get(p, token=tok)
                assert st == 401, (p, tok, st)
                assert r.getheader("WWW-Authenticate", "").startswith("Bearer"), p
                assert run not in body, "a 401 page shows run data"
        # with it: the pages (the report does not exist yet: 404)
        want = {"/nothing": 404, f"/run/{run}/report": 404}
        for p in paths:
            st, _, _ = page.get(p)
            assert st == want.get(p, 200), (p, st)
        # ?token= sets an HttpOnly cookie and sends the browser on without it
        st, _, r = page.get("/?token=" + urllib.parse.quote(TOKEN), token=None)
        ck = r.getheader("Set-Cookie", "")
        assert st == 303 and r.getheader("Location") == "/" and "HttpOnly" in ck and "SameSite=Strict" in ck, (st, ck)
        cookie = ck.split(";", 1)[0]
        st, _, r = page.get(f"/run/{run}/dead?token=" + urllib.parse.quote(TOKEN), token=None)
        assert st == 303 and r.getheader("Location") == f"/run/{run}/dead", r.getheader("Location")
        st, _, r = page.get("//evil.example/x?token=" + urllib.parse.quote(TOKEN), token=None)
        assert st == 303 and r.getheader("Location") == "/", r.getheader("Location")
        assert page.get(f"/run/{run}", token=None, headers={"Cookie": cookie})[0] == 200
        # read-only: no other method
        for m in ("POST", "PUT", "DELETE"):
            assert page.get(f"/run/{run}", method=m)[0] == 405, m

        # responses side by side: five columns, the <script> answer as text
        st, body, r = page.get(f"/run/{run}/responses")
        heads = re.findall(r'<th data-source="([^"]+)"', body)
        assert heads == ["human"] + list(MODELS), heads
        row = re.search(r'<tr data-prompt="hit:2_conv:4">(.*?)</tr>', body, re.S).group(1)
        cells = re.findall(r'<td class="resp" data-source="([^"]+)"><p class="(\w+)">(.*?)</p>', row, re.S)
        assert [x[0] for x in cells] == ["human"] + list(MODELS), cells
        esc = XSS_SCRIPT.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
        assert cells[0][2] == esc, cells[0]
        assert "<script>document" not in body
        assert r.getheader("Server-Timing", "").startswith("render;dur=")
        # the style counts of the analysis: "I hear you." has 3 words, no '!'
        assert re.search(r'<span title="words">\d+ w</span>', row)
        # filters: text search finds the prompt by words of its answer
        st, body, _ = page.get(f"/run/{run}/responses?q=" + urllib.parse.quote("I hear you"))
        assert re.findall(r'<tr data-prompt="([^"]+)"', body) == ["hit:2_conv:4"], body[:500]
        st, body, _ = page.get(f"/run/{run}/responses?source=fake-warm&cache=hit")
        assert '<b id="n-rows">0</b>' in body  # nothing came from the cache in a first run
        st, body, _ = page.get(f"/run/{run}/responses?per=5&page=2")
        assert len(re.findall(r'<tr data-prompt=', body)) == 5 and '<b id="page">2</b>' in body
        assert page.get(f"/run/{run}/responses?state=bogus")[0] == 400

        # a run: the heat map counts every job
        st, body, _ = page.get(f"/run/{run}")
        done = int(re.search(r'<b id="done">(\d+)</b>', body).group(1))
        dead = int(re.search(r'<b id="dead">(\d+)</b>', body).group(1))
        assert done + dead == 100, (done, dead)
        assert "name: console-test" in body  # the spec as submitted

        # dead letters (fake-brief has one attempt and 15% of requests fail)
        st, body, _ = page.get(f"/run/{run}/dead")
        nd = int(re.search(r'<span id="n-dead">(\d+)</span>', body).group(1))
        assert nd == dead, (nd, dead)
        if nd > 0:
            line = re.search(r'<pre class="cmd" id="rerun-all">([^<]+)</pre>', body).group(1)
            assert line == f"empq rerun {run} --dead-only", line
            assert body.count("--dead-only --model fake-brief --prompt ") == nd
            # the line does what it says: the dead jobs run again
            c.cli(line.split()[1:])
            def redone():
                st, b, _ = page.get(f"/run/{run}")
                d = int(re.search(r'<b id="done">(\d+)</b>', b).group(1))
                x = int(re.search(r'<b id="dead">(\d+)</b>', b).group(1))
                return d + x == 100 and d > done
            wait_until("the rerun of the dead jobs", redone, timeout=30, interval=0.2)
        else:
            print("   (no job died this time: the rerun line was not run)")

        # raters: one participant, three answers
        c.cli(["assign", run, "--out", os.path.join(c.tmp, "plan"), "--items", "10"], check=False)
        with open(os.path.join(c.tmp, "site.port")) as f:
            site_port = int(f.read())
        st, body, _ = page.get(f"/run/{run}/raters")
        if 'id="no-plan"' not in body:
            participant(site_port, run, "5f3c9a1b2d4e6f7a8b9c0d1e", 3)
            st, body, _ = page.get(f"/run/{run}/raters")
            assert "5f3c9a1b2d4e6f7a8b9c0d1e" in body and "rating" in body, body[-1500:]
            claimed = sum(int(x) for x in re.findall(
                r'<tr><th scope="row">[^<]+</th><td class="num">\d+</td><td class="num">(\d+)</td>', body))
            assert claimed == 1, body[-2000:]
        else:
            raise AssertionError("empq assign wrote no plan: " + body[-500:])

        # the broker stopped: Redis' counts, and pages not held by its timeout
        c.stop("broker")
        t0 = time.monotonic()
        st, body, _ = page.get("/")
        first = time.monotonic() - t0
        assert st == 200 and "The broker does not answer" in body, body[:1500]
        assert re.search(r'<span class="count">100 / 100</span>', body), body[:1500]
        t0 = time.monotonic()
        for _ in range(5):
            assert page.get("/progress.json")[0] == 200
        later = (time.monotonic() - t0) / 5
        assert later < 0.5, (first, later)  # the broker is not asked again at once
        print(f"   broker down: first runs page {first:.2f} s, then {later * 1000:.0f} ms a view")

        # the report, once written
        rd = os.path.join(c.out, run, "report")
        os.makedirs(rd, exist_ok=True)
        with open(os.path.join(rd, "report.html"), "w") as f:
            f.write("<!doctype html><title>report</title><p id=x>the report</p>")
        st, body, r = page.get(f"/run/{run}/report")
        assert st == 200 and "the report" in body, (st, body[:200])
        assert "script-src" not in r.getheader("Content-Security-Policy")


def test_redis_commands_per_view():
    with Cluster(workers=1, name="empqtest-console-redis") as c:
        c.start(collector=False)
        port = start_console(c)
        small = submit5(c, 20)
        big = submit5(c, 200)
        c.wait_responses(small)
        c.wait_responses(big)
        page = Page("127.0.0.1", port)
        mon = Monitor(redis_port(c))
        try:
            addr = console_client(mon, page, big)
            for run in (small, big):  # the prompts are read once, then kept
                views(mon, addr, page, f"/run/{run}")
            seen = {}
            for run in (small, big):
                for name, path in [
                        ("responses", f"/run/{run}/responses?per={{n}}"),
                        ("responses-page-3", f"/run/{run}/responses?per={{n}}&page=3"),
                        ("responses-filtered", f"/run/{run}/responses?per={{n}}&state=done&q=friend"),
                        ("run", f"/run/{run}"), ("dead", f"/run/{run}/dead")]:
                    for n in (10, 50, 200):
                        cmds = views(mon, addr, page, path.format(n=n))
                        # the run's results are read at the first filtered
                        # view, then kept while their counts stay the same
                        key = name + "-first" if name == "responses-filtered" and n == 10 else name
                        seen.setdefault(key, set()).add(tuple(cmds))
            runs_page = views(mon, addr, page, "/")
            progress = views(mon, addr, page, "/progress.json")
        finally:
            mon.close()
        for name, v in seen.items():
            # the same commands for 10, 50 or 200 prompts a page, 100 or
            # 1,000 responses a run: nothing per response
            assert len(v) == 1, (name, v)
            print(f"   {name}: {len(next(iter(v)))} commands per view: {' '.join(next(iter(v)))}")
        assert seen["responses"] == {("GET", "HMGET", "HMGET")}, seen["responses"]
        assert seen["responses-filtered-first"] == {("GET", "HLEN", "HLEN", "HGETALL", "HGETALL")}, seen
        assert seen["responses-filtered"] == {("GET", "HLEN", "HLEN")}, seen["responses-filtered"]
        assert seen["run"] == {("GET", "HKEYS", "HKEYS")}, seen["run"]
        assert seen["dead"] == {("GET", "HGETALL")}, seen["dead"]
        # the runs page: the run list, then GET + HLEN + HLEN per run (2 runs)
        assert runs_page == ["SMEMBERS"] + ["GET", "HLEN", "HLEN"] * 2, runs_page
        assert progress == runs_page, progress
        print(f"   runs page and progress.json: {len(runs_page)} commands (2 runs)")


def test_bad_options():
    """Bad --console values: exit 2 at once, naming the value; a token file
    that is too short: the collector stops, naming the file."""
    for v, msg in [("abc", "'abc'"), ("127.0.0.1:70000", "port 0-65535"), (":80", "[HOST:]PORT"),
                   ("localhost:80", "an IP address as HOST")]:
        r = subprocess.run([program("empq-collector"), "--console", v], capture_output=True, text=True,
                           timeout=10)
        assert r.returncode == 2 and msg in r.stderr, (v, r.returncode, r.stderr)
    with Cluster(workers=0, name="empqtest-console-opts") as c:
        c.start_redis()
        tf = c.write("short.token", "short\n")
        r = subprocess.run([program("empq-collector"), "--redis", c.redis_url, "--out", c.out,
                            "--console", "127.0.0.1:0", "--console-token-file", tf],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 1 and "short.token" in r.stderr and "16 to 256" in r.stderr, r.stderr[-600:]


if __name__ == "__main__":
    main(test_bad_options, test_access_and_pages, test_redis_commands_per_view)
