#!/usr/bin/python3
"""The README's judge flow works as written (issue 14, point 6): the block
of three commands under "LLM judges calibrated on the human ratings",
taken from README.md byte for byte, runs in bash against a real Redis,
broker, worker, collector (--out results) and empq-fakellm --judge-noise
0.2, with EMPQ_DATA holding welivita-pu-2024/dataset_and_ratings.csv (the
released file when EMPQ_TEST_DATA has it, else a generated file of the
same format): the judge run completes, `empq judge export --wait` writes
judge-ratings.csv with one row per (response, judge) once it has, and the
report has its judge section."""
import csv
import os
import re
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import BIN, SOURCE_DIR, Cluster, main  # noqa: E402
from test_judge import rating_file  # noqa: E402

README = os.path.join(SOURCE_DIR, "README.md")


def readme_block():
    with open(README, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"^then three commands:\n\n```sh\n(.*?)^```$", text, re.S | re.M)
    assert m, "README.md has no judge block after 'then three commands:'"
    block = m.group(1)
    cmds = [ln for ln in block.splitlines() if ln.strip() and not ln.startswith(" ")]
    assert len(cmds) == 3, f"the README's judge flow is {len(cmds)} commands, not 3:\n{block}"
    return block


def test_readme_judge():
    block = readme_block()
    with Cluster(workers=1, name="readme-judge", fakellm_args=["--judge-noise", "0.2"]) as c:
        c.out = os.path.join(c.tmp, "results")  # empq-collector --out results
        c.start()
        data = os.path.join(c.tmp, "empq-data")
        os.makedirs(os.path.join(data, "welivita-pu-2024"))
        shutil.copy(rating_file(c), os.path.join(data, "welivita-pu-2024", "dataset_and_ratings.csv"))
        os.symlink(os.path.join(SOURCE_DIR, "studies"), os.path.join(c.tmp, "studies"))
        env = c.env()
        env["EMPQ_DATA"] = data
        env["PATH"] = BIN + os.pathsep + env.get("PATH", "")
        # the RUN of the first command is echoed too
        lines = block.splitlines()
        script = "set -e\n" + lines[0] + '\necho "RUN=$RUN"\n' + "\n".join(lines[1:]) + "\n"
        r = subprocess.run(["bash", "-c", script], cwd=c.tmp, env=env, capture_output=True, text=True,
                           timeout=600, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, f"the README's judge flow exited {r.returncode}:\n{r.stderr[-3000:]}"
        run = re.search(r"^RUN=(\S+)$", r.stdout, re.M).group(1)
        with open(os.path.join(c.tmp, "judge-ratings.csv"), newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        with open(os.path.join(data, "welivita-pu-2024", "dataset_and_ratings.csv"), newline="",
                  encoding="utf-8") as f:
            dialogues = sum(1 for _ in csv.DictReader(f))
        assert len(rows) == dialogues * 3 * 2, (len(rows), dialogues)
        assert {r["judge"] for r in rows} == {"judge-a", "judge-lenient"}
        for name in ("judge_agreement.csv", "judge_confusion.csv"):
            assert os.path.getsize(os.path.join(c.tmp, "report", "tables", name)) > 0, name
        with open(os.path.join(c.tmp, "report", "report.md"), encoding="utf-8") as f:
            md = f.read()
        assert "## Judge agreement" in md and "### Judge judge-a" in md
        print(f"   README judge flow: run {run}, {len(rows)} judge ratings of {dialogues} dialogues, "
              f"report with its judge section", flush=True)


if __name__ == "__main__":
    main(test_readme_judge)
