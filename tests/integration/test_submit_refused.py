"""Input that must be refused whole: a dataset that is not UTF-8 or has no
rows, a run with more jobs than a run can hold, a run the broker refuses.
Each is refused with the file (or key) and line named, with the exit code
docs/operations.md gives (1 a problem found, 2 bad input, 3 Redis or the
broker unreachable), and leaves nothing behind in Redis."""

import os
import subprocess

from empqtest import Cluster, demo_like_spec, free_port, main, program, wait_until
from test_cli_errors import expect_fail

WP_HEADER = ("part_no,dialog_id,emotion,sentiment,plutchik,situation,speaker_uttr,response_human,"
             "rating_human\n")


def wp_row(i, human):
    return f"0,hit:{i}_conv:{i + 1},afraid,negative,fear,Night,I heard a noise.,\"{human}\",2\n"


def write_bytes(c, name, data):
    path = os.path.join(c.tmp, name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def spec_over(dataset, fmt="welivita-pu", samples=None, prompts=None):
    """A spec over a dataset file with one fake model (and the human answer)."""
    out = ["name: refused", "dataset:", f"  format: {fmt}", f"  path: {dataset}"]
    if prompts is not None:
        out += ["selection:", f"  prompts: {prompts}"]
    out += ["template:", "  user: \"{prompt}\"", "models:", "  - alias: fake-warm",
            "    provider: openai-compatible", "    base_url: \"${EMPQ_FAKELLM_URL}/v1\"",
            "    model: fake-warm"]
    if samples is not None:
        out.append(f"    samples: {samples}")
    return "\n".join(out) + "\n"


def redis_keys(c):
    port = c.redis_url.rsplit(":", 1)[1]
    r = subprocess.run(["redis-cli", "-p", port, "--raw", "KEYS", "empq:*"], capture_output=True,
                       text=True, timeout=20)
    assert r.returncode == 0, r.stderr
    return sorted(k for k in r.stdout.split("\n") if k)


def test_dataset_not_utf8():
    """The issue's bytes (FF FE) in a human response: refused at load with
    file, line and byte column, by `dataset check` and by `submit`, in the
    three formats; nothing is written."""
    with Cluster() as c:
        c.start_redis()
        row = wp_row(3, "ab").encode()
        at = row.index(b'"ab"') + 3  # the bad bytes go after "ab": byte at + 1 of the line
        bad = WP_HEADER.encode() + wp_row(1, "Oh no").encode() + row[:at] + b"\xff\xfe" + row[at:]
        wp = write_bytes(c, "wp.csv", bad)
        expect_fail(c, ["dataset", "check", wp],
                    f"wp.csv:3: not valid UTF-8 at byte {at + 1} of the line (bytes counted from 1; "
                    "there: FF FE", code=1)
        spec = c.write("wp.yaml", spec_over(wp))
        expect_fail(c, ["submit", spec], f"wp.csv:3: not valid UTF-8 at byte {at + 1} of the line", code=2)
        # EmpatheticDialogues: an overlong '/' (C0 AF) in an utterance, line 2
        line = b"hit:0_conv:1,1,sad,Lost it,1,I lost my \xc0\xafkeys.,5|5|5_2|2|5,\n"
        col = line.index(b"\xc0") + 1
        ed = write_bytes(c, "ed.csv", b"conv_id,utterance_idx,context,prompt,speaker_idx,utterance,selfeval,tags\n"
                         + line)
        expect_fail(c, ["dataset", "check", ed], f"ed.csv:2: not valid UTF-8 at byte {col} of the line", code=1)
        spec = c.write("ed.yaml", spec_over(ed, fmt="empatheticdialogues"))
        expect_fail(c, ["submit", spec], f"ed.csv:2: not valid UTF-8 at byte {col}", code=2)
        # JSONL: a surrogate (ED A0 80) in the human answer, line 2
        line = b'{"id": "b", "emotion": "afraid", "prompt": "p", "human": "x\xed\xa0\x80"}\n'
        col = line.index(b"\xed") + 1
        js = write_bytes(c, "ds.jsonl", b'{"id": "a", "emotion": "afraid", "prompt": "p"}\n' + line)
        expect_fail(c, ["dataset", "check", js], f"ds.jsonl:2: not valid UTF-8 at byte {col} of the line", code=1)
        spec = c.write("js.yaml", spec_over(js, fmt="jsonl"))
        expect_fail(c, ["submit", spec], f"ds.jsonl:2: not valid UTF-8 at byte {col}", code=2)
        assert redis_keys(c) == [], redis_keys(c)


def test_dataset_no_rows():
    with Cluster() as c:
        for name, text in (("head.csv", WP_HEADER),
                           ("head_ed.csv", "conv_id,utterance_idx,context,prompt,speaker_idx,utterance,"
                                           "selfeval,tags\n"),
                           ("empty.jsonl", "")):
            p = c.write(name, text)
            expect_fail(c, ["dataset", "check", p], f"{p}: no dialogues in the file", code=1)


def test_too_many_jobs():
    """samples: 1000000000 over 20 prompts and 2 sources is 4 x 10^10 jobs:
    refused by the spec check, naming the keys and their lines, before
    Redis or the broker is asked anything; the same bound after selection
    for prompts the dataset decides."""
    with Cluster() as c:
        c.start(workers=False, collector=False, fakellm=False)
        spec = demo_like_spec("huge", 20, models=("fake-warm",))
        spec = spec.replace("    params: {temperature: 0.7, max_tokens: 128}\n",
                            "    params: {temperature: 0.7, max_tokens: 128}\n    samples: 1000000000\n")
        lines = spec.splitlines()
        samples_line = lines.index("    samples: 1000000000") + 1
        prompts_line = lines.index("selection:") + 2
        p = c.write("huge.yaml", spec)
        expect_fail(c, ["submit", p],
                    f"huge.yaml:{samples_line}: key 'models[0].samples': 20 prompts (selection.prompts, line "
                    f"{prompts_line}) x 2 sources x 1000000000 samples = 40000000000 jobs, more than a run can "
                    "hold (4294967294", code=2)
        # the dataset decides the prompts: 3 rows x 2 sources x 10^9 = 6 x 10^9
        ds = c.write("three.csv", WP_HEADER + "".join(wp_row(i, "Oh no") for i in (1, 3, 5)))
        text = spec_over(ds, samples=1000000000)
        p = c.write("three.yaml", text)
        samples_line = text.splitlines().index("    samples: 1000000000") + 1
        expect_fail(c, ["submit", p], f"three.yaml:{samples_line}: key 'models[0].samples': 3 prompts (selected from the "
                                      "dataset) x 2 sources x 1000000000 samples = 6000000000 jobs", code=2)
        assert redis_keys(c) == [], redis_keys(c)


def sanitized(path):
    """True when the program is built with AddressSanitizer."""
    r = subprocess.run(["ldd", path], capture_output=True, text=True, timeout=20)
    return "libasan" in r.stdout


def test_broker_refuses():
    """A run the spec check lets through (1 prompt x 2 sources x 2 x 10^8
    samples = 4 x 10^8 jobs) but a broker with 2 GB of address space cannot
    hold (its job table alone is 9.6 GB): the broker refuses, submit exits 1
    with the broker's reason, and what submit wrote is removed."""
    with Cluster() as c:
        c.start_redis()
        c.jobs_ep = f"tcp://127.0.0.1:{free_port()}"
        c.control_ep = f"tcp://127.0.0.1:{free_port()}"
        broker = program("empq-broker")
        argv = [broker, "--redis", c.redis_url, "--bind", c.jobs_ep, "--control", c.control_ep]
        env = {}
        if sanitized(broker):  # ASan reserves terabytes of address space: cap its allocations instead
            env["ASAN_OPTIONS"] = "allocator_may_return_null=1:max_allocation_size_mb=2048"
        else:
            argv = ["prlimit", f"--as={2 << 30}", "--"] + argv
        p = c.spawn("broker", argv, env=env)
        wait_until("empq-broker control", lambda: c.cli(["status", "--json"], check=False).returncode == 0,
                   procs=[p], interval=0.1)
        ds = c.write("one.csv", WP_HEADER + wp_row(1, "Oh no"))
        spec = c.write("big.yaml", spec_over(ds, samples=200000000))
        r, _ = expect_fail(c, ["submit", spec], "the broker at", "refused run", "out of memory", code=1)
        assert "removed from" in r.stderr, r.stderr
        assert r.stdout.strip() == "", f"a refused run's id on stdout: {r.stdout!r}"
        assert redis_keys(c) == [], redis_keys(c)
        # the broker is still there and takes a run it can hold
        small = c.write("small.yaml", spec_over(ds))
        run_id = c.submit(small)
        assert f"empq:run:{run_id}" in redis_keys(c)
        c.check_alive()


def test_exit_codes():
    """docs/operations.md: 3 only for Redis or the broker unreachable."""
    with Cluster() as c:
        dead = f"redis://127.0.0.1:{free_port()}"
        spec = c.write("good.yaml", demo_like_spec("codes", 8, models=("fake-warm",)))
        expect_fail(c, ["submit", spec, "--redis", dead], "cannot reach Redis", code=3)
        expect_fail(c, ["submit", os.path.join(c.tmp, "nope.yaml")], "nope.yaml", code=2)
        ds = c.write("x.csv", WP_HEADER)
        expect_fail(c, ["dataset", "check", ds], "no dialogues", code=1)
        expect_fail(c, ["dataset", "check", os.path.join(c.tmp, "none.csv")], "none.csv", code=1)
        expect_fail(c, ["dataset", "check"], "which file", code=2)


if __name__ == "__main__":
    main(test_dataset_not_utf8, test_dataset_no_rows, test_too_many_jobs, test_broker_refuses, test_exit_codes)
