"""Participants' sessions on the rating site in headless Chromium
(Debian's /usr/bin/chromium driven by Playwright, tests/integration/
rating_browser.js), for a study with a consent page and end-of-study
questions: one participant declines consent (no slot is claimed: checked
in Redis and `empq ratings status`); one arrives with Prolific's
parameters, agrees, reads the instructions (the page opens at its top),
rates ten dialogues and an attention check on a phone-sized screen with
the keyboard alone (keys 1/2/3 and Tab + Enter), reloads in the middle
(resumes), answers the questions and gets the completion code with
Prolific's redirect link; then the other places are taken and the next
participant sees "Study full". On every rating page the three buttons
(Good, Okay, Bad in this order) are measured at 320, 390 and 1280 px wide:
one row, equal sizes. Two human responses carry `<script>` and
`<img src=x onerror=...>`: they show as text and nothing runs (the
payloads would set window.__xss and the title). Every participant page is
photographed at 390 and 1280 px wide into BUILD/test-artifacts/rating-browser/.

Skips (exit 77) with the reason when chromium or node is missing, or when
playwright-core is not installed and npm cannot install it (offline)."""

import csv
import json
import os
import shutil
import subprocess

from empqtest import BIN, Cluster, Skip, main, program, wait_until
from test_rating_site import RATING_SECTION, XSS_IMG, XSS_SCRIPT, dataset, spec

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

        def port():
            try:
                with open(pf) as f:
                    v = f.read().strip()
                return int(v) if v.isdigit() else 0
            except OSError:
                return 0

        site_port = wait_until("site port file", port, procs=[c.procs["collector"]])
        ds = os.path.join(c.tmp, "dataset.jsonl")
        with open(ds, "w", encoding="utf-8") as f:
            for d in dataset(10):
                f.write(json.dumps(d) + "\n")
        run = c.submit(c.write("study.yaml", spec(ds, 10, RATING_SECTION)))
        c.wait_responses(run)
        # one batch of ten and an attention check at position 3: slot 0 is
        # the human condition, which the first participant to agree gets
        # (least filled, ties to the first condition)
        c.cli(["assign", run, "--out", os.path.join(c.tmp, "plan"), "--completion-code", CODE,
               "--attention-checks", "3"])

        pid = "5f3c9a1b2d4e6f7a8b9c0d1e"  # Prolific ids: 24 hex digits
        decliner, fillers, late = "6a0000000000000000000001", ["filler-1", "filler-2"], \
            "6a0000000000000000000002"
        comment = 'Clear, thanks. <b>bold</b> & "quotes"'
        out = os.path.join(c.tmp, "browser.json")
        cfg = {"module": mod, "chromium": exe, "base": f"http://127.0.0.1:{site_port}",
               "run": run, "pid": pid, "study": "study-abc", "session": "session-xyz",
               "shots": shots, "out": out, "reload_at": 4, "n": 11, "decline_pid": decliner,
               "fillers": fillers, "full_pid": late, "age_choice": 1, "comment": comment}
        cfg_path = c.write("browser-config.json", json.dumps(cfg))
        r = subprocess.run(["node", os.path.join(HERE, "rating_browser.js"), cfg_path],
                           capture_output=True, text=True, timeout=180)
        rep = {}
        if os.path.exists(out):
            with open(out) as f:
                rep = json.load(f)
        assert r.returncode == 0, f"browser session failed:\n{r.stderr[-3000:]}\nreport: {rep}"

        # every page fits a 390 px wide screen; every kind of page was seen
        assert all(p.get("fits_phone", True) for p in rep["pages"]), rep["pages"]
        kinds = {p["kind"] for p in rep["pages"]}
        assert kinds >= {"consent", "declined", "instructions", "item", "check", "reload",
                         "questions", "done", "full"}, kinds
        assert [p["pos"] for p in rep["pages"] if p["kind"] in ("item", "check")] == list(range(11))
        assert rep["checks"] == [3], rep["checks"]

        # the three rating buttons: Good, Okay, Bad in one row, equal in size, at every width
        widths = {b["width"] for b in rep["buttons"]}
        assert widths == {320, 390, 1280}, widths
        assert len(rep["buttons"]) == 3 * 11, len(rep["buttons"])
        for m in rep["buttons"]:
            boxes = m["boxes"]
            assert [b["id"] for b in boxes] == ["good", "okay", "bad"], m
            assert max(b["w"] for b in boxes) - min(b["w"] for b in boxes) < 0.5, m
            assert max(b["h"] for b in boxes) - min(b["h"] for b in boxes) < 0.5, m
            assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 0.5, m  # one row
            assert boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"], m
            assert m["fits"], m
        phone = next(m for m in rep["buttons"] if m["width"] == 390)["boxes"]
        print(f"   rating buttons at 390 px: {[round(b['w'], 1) for b in phone]} px wide, "
              f"y {[round(b['y']) for b in phone]}")

        # the consent page: the spec's text (escaped), the duration; pages open at the top
        assert "Taking part is voluntary" in rep["consent"]["text"], rep["consent"]
        assert "<b>" in rep["consent"]["text"]  # the markup shows as text
        assert "This study takes about 12 minutes" in rep["consent"]["text"], rep["consent"]
        assert rep["scroll"] == {"consent": 0, "instructions": 0}, rep["scroll"]
        assert rep["instructions_focus"] in ("BODY#", None), rep["instructions_focus"]
        assert "not joined" in rep["declined"]["text"], rep["declined"]
        # the decline claimed nothing; the two fillers and the session did
        st = json.loads(c.cli(["ratings", "status", run, "--json"]).stdout)
        assert st["claimed"] == 3 and st["open"] == 0 and st["done"] == 1, st
        port_ = c.redis_url.rsplit(":", 1)[1]
        for who in (decliner, late):
            r_ = subprocess.run(["redis-cli", "-p", port_, "HEXISTS", f"empq:run:{run}:who", who],
                                capture_output=True, text=True)
            assert r_.stdout.strip() == "0", (who, r_.stdout)
        # study full
        assert rep["full"]["status"] == 503 and rep["full"]["h1"] == "Study full", rep["full"]
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
        # the end-of-study answers
        with open(os.path.join(exp, "answers.csv"), newline="", encoding="utf-8") as f:
            ans = list(csv.DictReader(f))
        assert [(a["participant"], a["route"], a["age"], a["comments"]) for a in ans] == \
            [(pid, "prolific", "30-49", comment)], ans

    pngs = sorted(f for f in os.listdir(shots) if f.endswith(".png"))
    for page in ("consent", "consent-declined", "instructions", "dialogue-01",
                 "attention-check-04", "questions", "completion", "study-full"):
        for w in (390, 1280):
            assert any(p.endswith(f"-{page}-{w}.png") for p in pngs), (page, w, pngs)
    print(f"   screenshots: {shots} ({len(pngs)} files)")


if __name__ == "__main__":
    main(test_browser_session)
