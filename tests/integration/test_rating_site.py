"""The rating site over real HTTP (empq-collector --site, real Redis, a run
made by the real programs): arrival with Prolific's parameters, resume,
instructions, answers, completion code; bad input (a rating outside
Good/Okay/Bad, another participant's slot, a stale form, a cross-site form,
a large body) gets a clear 4xx and stores nothing; abandoned slots go back
to the pool; dataset text is escaped; the export reads back in
`empq analyze --layout long`; and a small load test (90 participants in two
seconds, a tenth abandoning) ends with every slot rated exactly once."""

import csv
import http.client
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse

from empqtest import SOURCE_DIR, Cluster, main, port_in_file, program, read_jsonl, wait_until

sys.path.insert(0, os.path.join(SOURCE_DIR, "bench", "rating"))
import loadgen  # noqa: E402

EMOTIONS = ("afraid angry annoyed anticipating anxious apprehensive ashamed caring confident "
            "content devastated disappointed disgusted embarrassed excited faithful furious "
            "grateful guilty hopeful impressed jealous joyful lonely nostalgic prepared proud sad "
            "sentimental surprised terrified trusting").split()
XSS_SCRIPT = "<script>document.title='pwned';window.__xss=1</script> I hear you."
XSS_IMG = "<img src=x onerror=\"document.title='pwned';window.__xss=2\"> That sounds hard & \"sad\"."


def dataset(n):
    """n dialogues over the 32 emotions; two human answers carry markup."""
    out = []
    for i in range(n):
        human = f"I am sorry to hear that, friend {i}."
        if i == 2:
            human = XSS_SCRIPT
        if i == 5:
            human = XSS_IMG
        out.append({"id": f"hit:{i}_conv:{i * 2}", "emotion": EMOTIONS[i % 32],
                    "sentiment": "negative", "situation": f"Situation {i} <b>bold</b>",
                    "prompt": f"Speaker turn {i}: it was a long day.", "human": human})
    return out


# A study with a consent page, its duration and end-of-study questions; the
# texts carry markup that must show as text.
RATING_SECTION = "\n".join([
    "rating:",
    "  duration_minutes: 12",
    "  consent: |",
    "    You will rate short dialogues. <b>Taking part is voluntary</b>.",
    "",
    "    You may stop at any time; your answers are stored without your name.",
    "  questions:",
    "    - id: age",
    "      text: Your age group <i>please</i>",
    "      type: choice",
    "      choices: [18-29, 30-49, 50 or older, Prefer not to say]",
    "      required: true",
    "    - id: comments",
    "      text: Anything you would like to tell us?",
    "      max_length: 40", ""])


def spec(path, n, extra=""):
    return "\n".join([
        "name: rating-site", "dataset:", "  format: jsonl", f"  path: {path}",
        "selection:", f"  prompts: {n}", "  seed: 1", "  balance: none",
        "template:", "  system: You are a kind listener.", "  user: \"{situation} {prompt}\"",
        "human:", "  include: true", "models:",
        "  - alias: fake-warm", "    provider: openai-compatible",
        "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", "    model: fake-warm",
        "  - alias: fake-brief", "    provider: openai-compatible",
        "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"", "    model: fake-brief", ""]) + extra


def start(c, n, assign_args, extra=""):
    """A finished run of n prompts x 3 sources (extra: more spec text), its
    plan, and the site. Returns (run id, site port)."""
    c.start(collector=False)
    pf = os.path.join(c.tmp, "site.port")
    c.spawn("collector", [program("empq-collector"), "--redis", c.redis_url, "--out", c.out,
                          "--site", "0", "--site-port-file", pf])

    site_port = wait_until("site port file", lambda: port_in_file(pf), procs=[c.procs["collector"]])
    ds = os.path.join(c.tmp, "dataset.jsonl")
    with open(ds, "w", encoding="utf-8") as f:
        for d in dataset(n):
            f.write(json.dumps(d) + "\n")
    run = c.submit(c.write("study.yaml", spec(ds, n, extra)))
    c.wait_responses(run)
    c.cli(["assign", run, "--out", os.path.join(c.tmp, "plan")] + assign_args)
    return run, site_port


class Client:
    def __init__(self, port):
        self.port = port

    def req(self, method, path, body=None, headers=None, raw=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        h = {"Host": f"127.0.0.1:{self.port}"}
        h.update(headers or {})
        data = raw
        if body is not None:
            data = urllib.parse.urlencode(body)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=data, headers=h)
        r = conn.getresponse()
        text = r.read().decode("utf-8")
        conn.close()
        return r.status, r.getheader("Location"), text, r


def hidden(body, name):
    return int(re.search(rf'name="{name}" value="(\d+)"', body).group(1))


def status(c, run):
    return json.loads(c.cli(["ratings", "status", run, "--json"]).stdout)


def test_site():
    with Cluster(workers=1) as c:
        run, port = start(c, 30, ["--completion-code", "CODE-123", "--timeout-s", "2"])
        h = Client(port)

        # arrival: missing / bad id, unknown study
        st, _, body, _ = h.req("GET", f"/study/{run}")
        assert st == 400 and "participant id" in body, (st, body)
        st, _, body, _ = h.req("GET", f"/study/{run}?PROLIFIC_PID=%3Cscript%3E")
        assert st == 400 and "<script>" not in body, (st, body)
        st, _, body, _ = h.req("GET", "/study/r-nosuch?PROLIFIC_PID=abc")
        assert st == 404, st

        # arrival with Prolific's parameters; again: the same slot
        q = "PROLIFIC_PID=aaaa1111&STUDY_ID=s1&SESSION_ID=x1"
        st, loc, _, _ = h.req("GET", f"/study/{run}?{q}")
        assert st == 303 and loc == f"/study/{run}/p/aaaa1111", (st, loc)
        st, loc2, _, _ = h.req("GET", f"/study/{run}?{q}")
        assert st == 303 and loc2 == loc
        assert status(c, run)["claimed"] == 1
        st, _, body, r = h.req("GET", loc)
        assert st == 200 and "Cognitive empathy" in body and "Affective empathy" in body \
            and "Compassionate empathy" in body, body
        assert "default-src 'none'" in r.getheader("Content-Security-Policy")

        # a second participant (plain id) takes another slot
        st, locb, _, _ = h.req("GET", f"/study/{run}?participant=bbbb2222")
        assert st == 303
        h.req("POST", locb + "/start", body={})
        st, _, bodyb, _ = h.req("GET", locb)
        slot_b = hidden(bodyb, "slot")

        # an answer before the instructions: 409
        st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": 0, "pos": 0, "rating": 3})
        assert st == 409 and "instructions" in body, (st, body)
        st, _, _, _ = h.req("POST", loc + "/start", body={})
        assert st == 303
        st, _, body, _ = h.req("GET", loc)
        assert st == 200 and "Dialogue 1 of 10" in body, body
        assert "How empathetic is this response, compared to how you would have responded?" in body
        slot, pos = hidden(body, "slot"), hidden(body, "pos")
        assert slot != slot_b and pos == 0

        # bad input: nothing stored
        for rating in ("4", "0", "excellent", ""):
            st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": 0, "rating": rating})
            assert st == 400 and "Good, Okay or Bad" in body, (rating, st, body)
        st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": slot, "rating": 2})
        assert st == 400, st
        st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": slot_b, "pos": 0, "rating": 2})
        assert st == 403 and "another participant" in body, (st, body)
        st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": 4, "rating": 2})
        assert st == 409 and "out of date" in body, (st, body)
        st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": 0, "rating": 2},
                               headers={"Origin": "http://evil.example"})
        assert st == 403, st
        st, _, _, _ = h.req("POST", loc + "/answer", raw="rating=2&x=" + "a" * 10000,
                            headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert st == 413, st
        st, _, _, _ = h.req("PUT", loc + "/answer", body={"slot": slot, "pos": 0, "rating": 2})
        assert st == 405, st
        # a field twice (which one was meant?): refused, whichever field it is
        form = "application/x-www-form-urlencoded"
        for raw in (f"slot={slot}&pos=0&rating=3&rating=1", f"slot={slot}&pos=0&rating=3&rating=3",
                    f"slot={slot}&slot={slot}&pos=0&rating=3", f"slot={slot}&pos=0&pos=1&rating=3",
                    f"slot={slot}&pos=0&rating=3&x=1&x=2", f"slot={slot}&pos=0&rating=%ZZ"):
            st, _, body, _ = h.req("POST", loc + "/answer", raw=raw, headers={"Content-Type": form})
            assert st == 400 and "nothing was saved" in body, (raw, st, body)
        st, _, body, _ = h.req("POST", loc + "/start", raw="a=1&a=1", headers={"Content-Type": form})
        assert st == 400 and "twice" in body, (st, body)
        assert status(c, run)["ratings"] == 0, status(c, run)

        # answers: saved as given; a resent form is harmless; a changed one is stale
        st, _, _, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": 0, "rating": "good"})
        assert st == 303, st
        st, _, _, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": 0, "rating": 3})
        assert st == 303, st
        st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": 0, "rating": 1})
        assert st == 409, st
        assert status(c, run)["ratings"] == 1
        seen_text = []
        for i in range(1, 10):
            st, _, body, _ = h.req("GET", loc)
            assert f"Dialogue {i + 1} of 10" in body and hidden(body, "pos") == i, body
            seen_text.append(body)
            st, _, _, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": i, "rating": 1 + i % 3})
            assert st == 303
        st, _, body, _ = h.req("GET", loc)
        assert "CODE-123" in body and "https://app.prolific.com/submissions/complete?cc=CODE-123" in body
        st, _, body, _ = h.req("POST", loc + "/answer", body={"slot": slot, "pos": 10, "rating": 1})
        assert st == 409, st
        # the markup of the dataset is shown as text
        allpages = "".join(seen_text)
        assert "<b>bold</b>" not in allpages and "&lt;b&gt;bold&lt;/b&gt;" in allpages

        # abandonment: c1 stops after two answers; after the timeout the slot is reclaimed
        st, locc, _, _ = h.req("GET", f"/study/{run}?PROLIFIC_PID=cccc3333")
        h.req("POST", locc + "/start", body={})
        _, _, body, _ = h.req("GET", locc)
        slot_c = hidden(body, "slot")
        for i in range(2):
            h.req("POST", locc + "/answer", body={"slot": slot_c, "pos": i, "rating": 2})
        time.sleep(2.3)
        # participant b is idle too: reclaimed as well
        st, _, body, _ = h.req("GET", locc)
        assert st == 410 and "inactive" in body, (st, body)
        st, _, body, _ = h.req("GET", f"/study/{run}?PROLIFIC_PID=cccc3333")
        assert st == 410, st
        st, _, body, _ = h.req("POST", locc + "/answer", body={"slot": slot_c, "pos": 2, "rating": 2})
        assert st == 410, st
        s = status(c, run)
        assert s["reclaimed"] == 2 and s["active"] == 0 and s["done"] == 1 and s["ratings"] == 10, s
        # the next participant gets a reclaimed slot
        st, locd, _, _ = h.req("GET", f"/study/{run}?PROLIFIC_PID=dddd4444")
        h.req("POST", locd + "/start", body={})
        _, _, body, _ = h.req("GET", locd)
        assert hidden(body, "slot") in (slot_b, slot_c) and hidden(body, "pos") == 0, body

        # export: the finished participant only; the long layout reads in analyze
        out = os.path.join(c.tmp, "ratings")
        r = c.cli(["ratings", "export", run, "--out", out])
        with open(os.path.join(out, "ratings-long.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        assert len(rows) == 10 and {r["participant"] for r in rows} == {"aaaa1111"}, rows
        assert [int(r["position"]) for r in rows] == list(range(10))
        assert rows[0]["rating"] == "3" and rows[0]["rating_label"] == "Good"
        assert all(r["shown_at"] and r["answered_at"] and r["study_id"] == "s1" for r in rows)
        with open(os.path.join(out, "ratings.csv"), newline="") as f:
            wide = list(csv.DictReader(f))
        assert len(wide) == 30 and list(wide[0].keys())[:4] == [
            "part_no", "annotator_human", "annotator_fake-warm", "annotator_fake-brief"]
        cond = rows[0]["condition"]
        assert sum(1 for w in wide if w[f"rating_{cond}"]) == 10
        rep = os.path.join(c.tmp, "report")
        c.cli(["analyze", "--ratings", os.path.join(out, "ratings-long.csv"), "--layout", "long",
               "--out", rep])
        assert os.path.exists(os.path.join(rep, "report.html"))
        rep2 = os.path.join(c.tmp, "report-wide")  # the Welivita-Pu layout reads too
        c.cli(["analyze", "--ratings", os.path.join(out, "ratings.csv"), "--out", rep2])
        with open(os.path.join(rep2, "tables", "conditions.csv"), newline="") as f:
            conds = list(csv.DictReader(f))
        assert sum(int(float(r["n"])) for r in conds) == 10, conds
        r = c.cli(["ratings", "export", run, "--out", out, "--include-partial"])
        with open(os.path.join(out, "ratings-long.csv"), newline="") as f:
            assert len(list(csv.DictReader(f))) == 10  # dddd4444 has not answered yet


def rate_all(h, loc, n=10):
    """Starts and answers every dialogue of the participant at loc."""
    st, _, _, _ = h.req("POST", loc + "/start", body={})
    assert st == 303, st
    for i in range(n):
        st, _, body, _ = h.req("GET", loc)
        assert st == 200 and hidden(body, "pos") == i, body
        st, _, _, _ = h.req("POST", loc + "/answer",
                            body={"slot": hidden(body, "slot"), "pos": i, "rating": 1 + i % 3})
        assert st == 303, st


def test_consent_questions_routes():
    """A study with a consent page and end-of-study questions: the consent
    page (with the duration) comes before any claim; declining claims
    nothing; agreeing claims; the questions come after the last dialogue and
    are stored with the completion, refused (4xx, nothing stored) when
    malformed; the completion page follows the route (Prolific's link only
    for who came by it); answers.csv holds the answers and the route."""
    with Cluster(workers=1) as c:
        run, port = start(c, 10, ["--completion-code", "CODE-77"], RATING_SECTION)
        h = Client(port)
        form = {"Content-Type": "application/x-www-form-urlencoded"}

        def counts():
            s = status(c, run)
            return s["claimed"], s["open"], s["done"]

        assert counts() == (0, 3, 0)
        q = "PROLIFIC_PID=5f3c9a1b2d4e6f7a8b9c0d1e&STUDY_ID=st1&SESSION_ID=se1"
        st, _, body, resp = h.req("GET", f"/study/{run}?{q}")
        assert st == 200 and "About this study" in body, (st, body)
        assert "default-src 'none'" in resp.getheader("Content-Security-Policy")
        assert "<script>" not in body.split('<script src="/static/keys.js">')[0]  # no inline script
        assert "about <strong>12 minutes</strong>" in body, body
        assert "&lt;b&gt;Taking part is voluntary&lt;/b&gt;" in body and "<b>" not in body, body
        assert body.count('<p class="consent">') == 2, body  # two paragraphs
        assert 'value="agree"' in body and 'value="decline"' in body
        assert counts() == (0, 3, 0), "the consent page claimed a slot"

        # decline: nothing claimed (Redis holds no participant), Prolific wording for Prolific
        pid = "5f3c9a1b2d4e6f7a8b9c0d1e"
        consent = {"participant": pid, "route": "prolific", "study": "st1", "session": "se1"}
        st, _, body, _ = h.req("POST", f"/study/{run}/consent", body=dict(consent, consent="decline"))
        assert st == 200 and "not joined" in body and "Prolific" in body, (st, body)
        assert counts() == (0, 3, 0)
        who = c.redis_url.rsplit(":", 1)[1]
        r = subprocess.run(["redis-cli", "-p", who, "HLEN", f"empq:run:{run}:who"],
                           capture_output=True, text=True)
        assert r.stdout.strip() == "0", r.stdout
        st, _, body, _ = h.req("POST", f"/study/{run}/consent",
                               body={"participant": "linkdecline", "route": "link", "consent": "decline"})
        assert st == 200 and "Prolific" not in body and "close this page" in body, body
        # malformed consent forms: 400, nothing claimed
        for raw in ("participant=x1&route=link&consent=agree&consent=decline",
                    "participant=x1&participant=x2&route=link&consent=agree",
                    "participant=x1&route=link&consent=maybe",
                    "participant=x1&route=elsewhere&consent=agree",
                    "participant=x1&route=link&consent=agree&extra=1",
                    "participant=%3Cb%3E&route=link&consent=agree"):
            st, _, body, _ = h.req("POST", f"/study/{run}/consent", raw=raw, headers=form)
            assert st == 400, (raw, st, body)
        st, _, _, _ = h.req("POST", f"/study/{run}/consent", body=dict(consent, consent="agree"),
                            headers={"Origin": "http://evil.example"})
        assert st == 403, st
        st, _, _, _ = h.req("GET", f"/study/{run}/consent")
        assert st == 405, st
        assert counts() == (0, 3, 0)

        # agree: the slot is claimed; arriving again resumes without the consent page
        st, loc, _, _ = h.req("POST", f"/study/{run}/consent", body=dict(consent, consent="agree"))
        assert st == 303 and loc == f"/study/{run}/p/{pid}", (st, loc)
        assert counts() == (1, 2, 0)
        st, loc2, _, _ = h.req("GET", f"/study/{run}?{q}")
        assert st == 303 and loc2 == loc, (st, loc2)
        st, _, body, _ = h.req("GET", loc)
        assert "Instructions" in body and "12 minutes" in body and "autofocus" not in body, body
        rate_all(h, loc)

        # the questions: after the last dialogue, before the completion code
        st, _, body, _ = h.req("GET", loc)
        assert st == 200 and "A few last questions" in body, body
        assert "CODE-77" not in body
        assert "Your age group &lt;i&gt;please&lt;/i&gt;" in body and 'maxlength="40"' in body, body
        assert body.count('type="radio" name="q_age"') == 4 and 'name="q_comments"' in body
        assert counts() == (1, 2, 0)
        bad = [("q_comments=hello", "needs an answer"),                    # required missing
               ("q_age=4", "not one of its 4 choices"),                    # out of range
               ("q_age=x", "not one of its 4 choices"),
               ("q_age=1&q_age=2", "twice"),                               # a field twice
               ("q_age=1&q_nope=2", "not a question of this study"),      # unknown field
               ("q_age=1&q_comments=" + "x" * 41, "at most 40"),          # too long
               ("q_age=1&q_comments=%FF%FE", "not UTF-8"),                # not UTF-8
               ("q_age=1&q_comments=a%01b", "control characters")]
        for raw, want in bad:
            st, _, body, _ = h.req("POST", loc + "/finish", raw=raw, headers=form)
            assert st == 400 and want in body and "nothing was saved" in body, (raw, st, body)
        st, _, _, _ = h.req("POST", loc + "/finish", raw="q_comments=" + "a" * 300000, headers=form)
        assert st == 413, st
        assert counts() == (1, 2, 0)
        comment = "Thanks, \"nice\" study\nline two <i>x</i> é"
        st, _, _, _ = h.req("POST", loc + "/finish", body={"q_age": "2", "q_comments": comment})
        assert st == 303, st
        assert counts() == (1, 2, 1)
        st, _, _, _ = h.req("POST", loc + "/finish", body={"q_age": "0"})  # resent: nothing changes
        assert st == 303, st
        st, _, body, _ = h.req("GET", loc)
        assert "CODE-77" in body and "Return to Prolific" in body and \
            "https://app.prolific.com/submissions/complete?cc=CODE-77" in body, body

        # the ?participant= route: the code, no Prolific wording
        st, _, body, _ = h.req("GET", f"/study/{run}?participant=lab-007")
        assert st == 200 and "About this study" in body, body
        st, locb, _, _ = h.req("POST", f"/study/{run}/consent",
                               body={"participant": "lab-007", "route": "link", "study": "",
                                     "session": "", "consent": "agree"})
        assert st == 303, st
        st, _, _, _ = h.req("POST", locb + "/finish", body={"q_age": "1"})
        assert st == 409, st  # the dialogues come first
        rate_all(h, locb)
        st, _, _, _ = h.req("POST", locb + "/finish", body={"q_age": "3", "q_comments": ""})
        assert st == 303, st
        st, _, body, _ = h.req("GET", locb)
        assert "CODE-77" in body and "Prolific" not in body and "prolific.com" not in body, body
        assert "keep this code" in body, body

        # the export: answers.csv, one row per finished participant
        out = os.path.join(c.tmp, "ratings")
        c.cli(["ratings", "export", run, "--out", out])
        with open(os.path.join(out, "answers.csv"), newline="", encoding="utf-8") as f:
            rows = {r["participant"]: r for r in csv.DictReader(f)}
        assert set(rows) == {pid, "lab-007"}, rows
        a = rows[pid]
        assert a["route"] == "prolific" and a["study_id"] == "st1" and a["status"] == "done", a
        assert a["age"] == "50 or older" and a["comments"] == comment, a
        assert a["consented_at"] and a["done_at"] and a["consented_at"] <= a["done_at"], a
        b = rows["lab-007"]
        assert b["route"] == "link" and b["age"] == "Prefer not to say" and b["comments"] == "", b
        with open(os.path.join(out, "ratings-long.csv"), newline="") as f:
            assert len(list(csv.DictReader(f))) == 20


def test_small_load():
    """90 slots (30 prompts x 3 sources, 10 a participant); 99 participants in
    two seconds, a tenth abandoning, spread over two site processes (two
    collectors) on one Redis; after the timeout, new participants take the
    reclaimed slots: every slot rated exactly once, none held twice, no
    rating lost."""
    with Cluster(workers=1) as c:
        run, port = start(c, 300, ["--completion-code", "LOADCODE", "--timeout-s", "1"])
        pf2 = os.path.join(c.tmp, "site2.port")
        c.spawn("collector-2", [program("empq-collector"), "--redis", c.redis_url, "--out",
                                os.path.join(c.tmp, "runs2"), "--name", "collector-2",
                                "--site", "0", "--site-port-file", pf2])
        port2 = wait_until("second site", lambda: os.path.exists(pf2) and
                           int(open(pf2).read().strip() or 0))
        ports = [port, port2]
        recs, lat, wall = loadgen.run_load("127.0.0.1", ports, run, 99, 2.0, 0.1, seed=5,
                                           workers=50)
        n_ab = sum(1 for r in recs if r["status"] == "abandoned")
        assert n_ab >= 5, n_ab
        time.sleep(1.2)
        extra = []
        for round_ in range(5):
            s = status(c, run)
            if s["open"] == 0 and s["active"] == 0:
                break
            more, _, _ = loadgen.run_load("127.0.0.1", ports, run, s["open"], 0.2, 0.0,
                                          seed=100 + round_, prefix=f"r{round_}-", workers=20)
            extra += more
        recs += extra
        s = status(c, run)
        assert s["done"] == 90 and s["open"] == 0, s
        out = os.path.join(c.tmp, "ratings")
        c.cli(["ratings", "export", run, "--out", out])
        fig = loadgen.verify(out, recs, 90, 10, code="LOADCODE")
        print(f"   {fig}, reclaimed {s['reclaimed']}, requests {lat.total()} in {wall:.2f} s",
              file=sys.stderr)


if __name__ == "__main__":
    main(test_site, test_consent_questions_routes, test_small_load)
