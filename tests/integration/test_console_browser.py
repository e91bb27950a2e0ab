"""The study console in headless Chromium (Debian's /usr/bin/chromium driven
by Playwright, tests/integration/console_browser.js), during a real run
with latency (fake LLM at 100 ms, one worker, 8 in flight):

- the runs page's progress changes by itself (the one small script fetches
  /progress.json), without a reload;
- the side-by-side page has the known prompt with all five answers (human
  and four models) in their own columns; the human answer holding
  `<script>` shows as text and nothing runs (it would set window.__xss);
  the filter form (plain GET) finds a prompt by words of its answer;
- a browser without the token gets 401 on every page: the console is bound
  on this machine's own non-loopback address with a token (or, on a
  machine without one, on 127.0.0.1 with --console-require-token: said in
  the output);
- a screenshot of each page at 1280 and 390 px wide goes to
  BUILD/test-artifacts/console-browser/, and every console page fits a
  390 px screen (wide tables scroll inside their box; the report is the
  analysis' own page, served as written).

Skips (exit 77) with the reason when chromium or node is missing, or when
playwright-core is not installed and npm cannot install it (offline)."""

import csv
import json
import os
import re
import shutil
import subprocess

from empqtest import BIN, Cluster, Skip, main, wait_until
from test_console import MODELS, TOKEN, Page, own_address, participant, start_console, submit5
from test_rating_browser import CHROMIUM, playwright_module
from test_rating_site import XSS_SCRIPT

BUILD = os.path.dirname(BIN)
HERE = os.path.dirname(os.path.abspath(__file__))
KNOWN = "hit:2_conv:4"  # its human answer is XSS_SCRIPT
PROMPTS = 40


def test_console_browser():
    exe = next((p for p in CHROMIUM if os.access(p, os.X_OK)), None)
    if exe is None:
        raise Skip("chromium is not installed (apt-get install chromium)")
    mod = playwright_module()
    shots = os.path.join(BUILD, "test-artifacts", "console-browser")
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)
    host = own_address()

    with Cluster(workers=1, latency_ms=100, credit=8, name="empqtest-console-browser") as c:
        c.start(collector=False, workers=False)
        tf = c.write("console.token", TOKEN + "\n")
        os.chmod(tf, 0o600)
        if host is not None:
            port = start_console(c, host, ["--console-token-file", tf])
            print(f"   console bound on {host} (not loopback), token required")
        else:
            host = "127.0.0.1"
            port = start_console(c, host, ["--console-token-file", tf, "--console-require-token"])
            print("   no non-loopback address here: console on 127.0.0.1 with --console-require-token")
        run = submit5(c, PROMPTS)
        watching = os.path.join(c.tmp, "watching")
        finished = os.path.join(c.tmp, "finished")
        out = os.path.join(c.tmp, "browser.json")
        cfg = {"module": mod, "chromium": exe, "base": f"http://{host}:{port}", "token": TOKEN,
               "run": run, "known": KNOWN, "query": "I hear you", "watching": watching,
               "finished": finished, "shots": shots, "out": out}
        node = subprocess.Popen(["node", os.path.join(HERE, "console_browser.js"),
                                 c.write("browser-config.json", json.dumps(cfg))],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True)
        try:
            # the worker starts once the browser shows the run at its start
            wait_until("the browser on the runs page", lambda: os.path.exists(watching),
                       timeout=90, interval=0.1, procs=[node])
            c.start_worker(1)
            c.wait_responses(run, timeout=120)
            # ratings from five participants (one per condition), the report
            with open(os.path.join(c.tmp, "site.port")) as f:
                site_port = int(f.read())
            c.cli(["assign", run, "--out", os.path.join(c.tmp, "plan"), "--attention-checks", "4"])
            for i in range(5):  # the third one fails the attention check
                participant(site_port, run, f"5f3c9a1b2d4e6f7a8b9c0d{i:02d}", None, fail_checks=i == 2)
            ratings = os.path.join(c.tmp, "ratings")
            c.cli(["ratings", "export", run, "--out", ratings])
            c.cli(["analyze", "--ratings", os.path.join(ratings, "ratings-long.csv"), "--layout", "long",
                   "--responses", os.path.join(c.out, run, "responses.jsonl"),
                   "--out", os.path.join(c.out, run, "report")])
            with open(finished, "w") as f:
                f.write("ok\n")
            _, err = node.communicate(timeout=240)
        finally:
            if node.poll() is None:
                node.kill()
                node.wait()
        rep = {}
        if os.path.exists(out):
            with open(out) as f:
                rep = json.load(f)
        assert node.returncode == 0, f"browser session failed:\n{err[-3000:]}\nreport: {rep}"

        # the token went into a cookie and out of the address
        assert rep["landed"] == f"http://{host}:{port}/", rep["landed"]
        # live progress: three different counts, no reload
        assert len(set(rep["progress"])) >= 3 and rep["reloaded"] is False, rep["progress"]
        first_done = int(rep["progress"][0].split("/")[0])
        last_done = int(rep["progress"][-1].split("/")[0])
        assert last_done > first_done, rep["progress"]
        print(f"   progress seen without reload: {' -> '.join(rep['progress'])}")

        # the known prompt: five answers, each in its own column
        row = rep["row"]
        assert row is not None, "the known prompt is not on the page"
        assert [x["source"] for x in row["cells"]] == ["human"] + list(MODELS), row
        assert all(x["index"] == x["column"] for x in row["cells"]), row  # column i holds source i
        assert all(x["text"].strip() and "not finished" not in x["text"] for x in row["cells"]), row
        with open(os.path.join(c.out, run, "responses.jsonl")) as f:
            want = {}
            for line in f:
                d = json.loads(line)
                if d["prompt_id"] == KNOWN:
                    want[d["source"]] = d["response"]
        assert {x["source"]: x["text"] for x in row["cells"]} == want, (row, want)
        # <script> shows as text, nothing ran
        assert row["cells"][0]["text"] == XSS_SCRIPT, row["cells"][0]
        assert rep["xss"] is None and "pwned" not in rep["title"], rep
        assert all(s.endswith("/static/console.js") for s in rep["scripts"]), rep["scripts"]
        assert rep["csp_violations"] == [] and rep["page_errors"] == [] and rep["dialogs"] == [], rep
        assert rep["filtered"] == [KNOWN], rep["filtered"]

        # every page answered, and fits a phone
        st = {p["name"]: p["status"] for p in rep["pages"] if "status" in p}
        assert st == {"runs": 200, "run": 200, "responses": 200, "dead": 200, "raters": 200,
                      "report": 200}, st
        # (the report is the analysis' own page, served as written)
        assert all(p["fits_phone"] for p in rep["pages"] if "fits_phone" in p and p["name"] != "report"), rep["pages"]
        # without the token: 401 everywhere
        assert rep["unauthorized"] and all(u["status"] == 401 for u in rep["unauthorized"]), rep["unauthorized"]

        # the raters page counted the five who finished
        page = Page(host, port, TOKEN)
        _, body, _ = page.get(f"/run/{run}/raters")
        assert body.count("<td>finished</td>") == 5, body[-2000:]
        failed = re.findall(r'<td class="num">(\d+) of (\d+)</td></tr>', body.split('id="participants"')[0])
        assert sorted(failed) == [("0", "1")] * 4 + [("1", "1")], failed  # per condition: failed of checks
        with open(os.path.join(ratings, "participants.csv"), newline="") as f:
            assert len(list(csv.DictReader(f))) == 5

    pngs = sorted(f for f in os.listdir(shots) if f.endswith(".png") and not f.startswith("readme-"))
    assert len(pngs) == 16, pngs  # 8 views x (1280, 390)
    print(f"   screenshots: {shots} ({len(pngs)} files)")


if __name__ == "__main__":
    main(test_console_browser)
