"""A participant's whole session on the rating site in headless Chromium
(Debian's /usr/bin/chromium driven by Playwright, tests/integration/
rating_browser.js): arrival with Prolific's parameters, the instructions,
ten dialogues on a phone-sized screen answered with the keyboard alone
(keys 1/2/3 and Tab + Enter), a reload in the middle that resumes, and the
completion code with Prolific's redirect link. Two human responses carry
`<script>` and `<img src=x onerror=...>`: they show as text and nothing runs
(the payloads would set window.__xss and the title). A screenshot of every
page is kept under BUILD/test-artifacts/rating-browser/.

Skips (exit 77) with the reason when chromium or node is missing, or when
playwright-core is not installed and npm cannot install it (offline)."""

import csv
import json
import os
import shutil
import subprocess

from empqtest import BIN, Cluster, Skip, main, port_in_file, program, wait_until
from test_rating_site import XSS_IMG, XSS_SCRIPT, dataset, spec

CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
BUILD = os.path.dirname(BIN)
HERE = os.path.dirname(os.path.abspath(__file__))
CODE = "C9X2-PROLIFIC"


def playwright_module():
    """playwright-core in BUILD/rating-browser (installed there by npm when
    missing). Returns the module's folder or raises Skip."""
    node = shutil.which("node")
    npm = shutil.which("npm")
    if node is None:
        raise Skip("node is not installed (apt-get install nodejs npm)")
    d = os.path.join(BUILD, "rating-browser")
    mod = os.path.join(d, "node_modules", "playwright-core")
    if not os.path.exists(os.path.join(mod, "package.json")):
        if npm is None:
            raise Skip("playwright-core is missing and npm is not installed")
        os.makedirs(d, exist_ok=True)
        pkg = os.path.join(d, "package.json")
        if not os.path.exists(pkg):
            with open(pkg, "w") as f:
                f.write('{"private": true}\n')
        try:
            r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent",
                                "playwright-core@1"], cwd=d, capture_output=True, text=True,
                               timeout=180)
        except subprocess.TimeoutExpired:
            raise Skip("npm install playwright-core took over 180 s (offline?)")
        if r.returncode != 0 or not os.path.exists(os.path.join(mod, "package.json")):
            raise Skip(f"npm cannot install playwright-core (offline?): {r.stderr.strip()[-300:]}")
    return mod


def test_browser_session():
    exe = next((p for p in CHROMIUM if os.access(p, os.X_OK)), None)
    if exe is None:
        raise Skip("chromium is not installed (apt-get install chromium)")
    mod = playwright_module()
    shots = os.path.join(BUILD, "test-artifacts", "rating-browser")
    shutil.rmtree(shots, ignore_errors=True)
    os.makedirs(shots)

    with Cluster(workers=1, name="empqtest-browser") as c:
        c.start(collector=False)
        pf = os.path.join(c.tmp, "site.port")
        c.spawn("collector", [program("empq-collector"), "--redis", c.redis_url, "--out", c.out,
                              "--site", "0", "--site-port-file", pf])

        site_port = wait_until("site port file", lambda: port_in_file(pf), procs=[c.procs["collector"]])
        ds = os.path.join(c.tmp, "dataset.jsonl")
        with open(ds, "w", encoding="utf-8") as f:
            for d in dataset(10):
                f.write(json.dumps(d) + "\n")
        run = c.submit(c.write("study.yaml", spec(ds, 10)))
        c.wait_responses(run)
        # one batch of ten: slot 0 is the human condition, which the first
        # participant gets (least filled, ties to the first condition)
        c.cli(["assign", run, "--out", os.path.join(c.tmp, "plan"), "--completion-code", CODE])

        pid = "5f3c9a1b2d4e6f7a8b9c0d1e"  # Prolific ids: 24 hex digits
        out = os.path.join(c.tmp, "browser.json")
        cfg = {"module": mod, "chromium": exe, "base": f"http://127.0.0.1:{site_port}",
               "run": run, "pid": pid, "study": "study-abc", "session": "session-xyz",
               "shots": shots, "out": out, "reload_at": 4}
        cfg_path = c.write("browser-config.json", json.dumps(cfg))
        r = subprocess.run(["node", os.path.join(HERE, "rating_browser.js"), cfg_path],
                           capture_output=True, text=True, timeout=180)
        rep = {}
        if os.path.exists(out):
            with open(out) as f:
                rep = json.load(f)
        assert r.returncode == 0, f"browser session failed:\n{r.stderr[-3000:]}\nreport: {rep}"

        # every page fits a 390 px wide screen
        assert all(p.get("fits_phone", True) for p in rep["pages"]), rep["pages"]
        assert [p["pos"] for p in rep["pages"] if p["kind"] == "item"] == list(range(10))
        assert any(p["kind"] == "reload" for p in rep["pages"]), "no reload"
        # keyboard focus is visible
        assert rep["focus_outline"]["outline"] not in ("none", ""), rep["focus_outline"]
        # the completion code and Prolific's redirect
        assert rep["done"]["code"] == CODE, rep["done"]
        assert rep["done"]["complete"] == f"https://app.prolific.com/submissions/complete?cc={CODE}"

        # the payloads show as text and nothing ran
        shown = {x["shown_as_text"] for x in rep["xss_items"]}
        assert XSS_SCRIPT in shown and XSS_IMG in shown, rep["xss_items"]
        assert all(x["injected"] == 0 for x in rep["xss_items"]), rep["xss_items"]
        assert rep["final"]["xss"] is None, "a payload ran (window.__xss is set)"
        assert "pwned" not in rep["final"]["title"], rep["final"]["title"]
        assert rep["dialogs"] == [] and rep["page_errors"] == [], rep
        assert rep["csp_violations"] == [], rep["csp_violations"]

        # the ten answers are stored as given (the reload lost nothing)
        exp = os.path.join(c.tmp, "ratings")
        c.cli(["ratings", "export", run, "--out", exp])
        with open(os.path.join(exp, "ratings-long.csv"), newline="") as f:
            rows = [r for r in csv.DictReader(f)]
        assert {r["participant"] for r in rows} == {pid} and len(rows) == 10, rows
        got = {str(int(r["position"])): int(r["rating"]) for r in rows}
        assert got == {k: int(v) for k, v in rep["answers"].items()}, (got, rep["answers"])
        assert {r["condition"] for r in rows} == {"human"}
        assert all(r["study_id"] == "study-abc" and r["session_id"] == "session-xyz" for r in rows)

    pngs = sorted(f for f in os.listdir(shots) if f.endswith(".png"))
    assert len(pngs) >= 13, pngs  # instructions, 10 dialogues, reload, focus, completion
    print(f"   screenshots: {shots} ({len(pngs)} files)")


if __name__ == "__main__":
    main(test_browser_session)
