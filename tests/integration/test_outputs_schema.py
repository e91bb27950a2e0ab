#!/usr/bin/python3
"""The output files conform to their schemas in docs/schemas/ (issue 16,
point 10): a short demo (40 prompts: responses, plan, simulated ratings,
report) is written, then every line of responses.jsonl is checked against
responses.schema.json (JSON Schema 2020-12, with python3-jsonschema), and
every CSV with a Frictionless Table Schema against it: the header is the
schema's fields in order, and every cell casts to its field's type
(integer, number, boolean, datetime, string), keeps its constraints
(required, enum, minimum), or is one of the schema's missingValues. So
pandas and R can take their column types from the schema instead of
guessing, and a renamed or retyped column fails here first."""
import csv
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Skip, main, program  # noqa: E402

SOURCE = os.environ.get("EMPQ_SOURCE_DIR",
                        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
SCHEMAS = os.path.join(SOURCE, "docs", "schemas")
DATETIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


def cast(field, v):
    """The value of cell v for a Table Schema field, or raises ValueError."""
    t = field["type"]
    if t == "integer":
        if not re.fullmatch(r"-?\d+", v):
            raise ValueError("not an integer")
        return int(v)
    if t == "number":
        x = float(v)  # also inf, -inf
        if math.isnan(x):
            raise ValueError("nan is not a number here (NA is the missing value)")
        return x
    if t == "boolean":
        if v not in ("true", "false"):
            raise ValueError("not true/false")
        return v == "true"
    if t == "datetime":
        if not DATETIME.match(v):
            raise ValueError("not ISO 8601 UTC")
        return v
    if t == "string":
        return v
    raise ValueError(f"type {t} unknown to this checker")


def check_table(path, schema):
    fields = schema["fields"]
    missing = set(schema.get("missingValues", [""]))
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    names = [x["name"] for x in fields]
    assert rows and rows[0] == names, f"{path}: header {rows[0] if rows else None}\n  schema {names}"
    for n, row in enumerate(rows[1:], 2):
        assert len(row) == len(fields), f"{path}:{n}: {len(row)} cells, {len(fields)} fields"
        for field, v in zip(fields, row):
            c = field.get("constraints", {})
            where = f"{path}:{n}: {field['name']}={v!r}"
            if v in missing and field["type"] != "string" or v == "" and field["type"] == "string":
                assert not c.get("required"), f"{where}: required"
                continue
            try:
                x = cast(field, v)
            except ValueError as e:
                raise AssertionError(f"{where}: {e} (type {field['type']})")
            if "enum" in c:
                assert x in c["enum"], f"{where}: not in {c['enum']}"
            if "minimum" in c:
                assert x >= c["minimum"], f"{where}: below {c['minimum']}"
    return len(rows) - 1


def test_outputs_conform():
    try:
        import jsonschema
    except ImportError:
        raise Skip("python3-jsonschema is not installed (deploy/bootstrap.sh test)")
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        raise Skip("redis-server is not installed")
    tmp = tempfile.mkdtemp(prefix="empqtest-schema-")
    try:
        out = os.path.join(tmp, "demo")
        env = dict(os.environ)
        env.setdefault("EMPQ_STUDIES", os.path.join(SOURCE, "studies"))
        r = subprocess.run([program("empq"), "demo", "--prompts", "40", "--out", out], cwd=tmp, env=env,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"empq demo exited {r.returncode}:\n{r.stdout}\n{r.stderr}"

        with open(os.path.join(SCHEMAS, "responses.schema.json"), encoding="utf-8") as f:
            rs = json.load(f)
        jsonschema.Draft202012Validator.check_schema(rs)
        v = jsonschema.Draft202012Validator(rs)
        files = [os.path.join(out, "responses.jsonl")] + glob.glob(os.path.join(out, "runs", "*", "responses.jsonl"))
        lines = 0
        for path in files:
            with open(path, encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    errs = sorted(v.iter_errors(json.loads(line)), key=lambda e: list(e.path))
                    assert not errs, f"{path}:{n}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errs[:3])
                    lines += 1
        assert lines == 2 * 200, lines  # the demo's file and the run's, 40 x 5 each

        checked = {}
        tables = {"plan.csv": os.path.join(out, "plan", "plan.csv"),
                  "ratings-long.csv": os.path.join(out, "ratings", "ratings-long.csv"),
                  "participants.csv": os.path.join(out, "ratings", "participants.csv")}
        for path in glob.glob(os.path.join(out, "report", "tables", "*.csv")):
            tables[os.path.basename(path)] = path
        for name, path in sorted(tables.items()):
            sp = os.path.join(SCHEMAS, name[:-4] + ".schema.json")
            assert os.path.exists(sp), f"{name} has no schema in docs/schemas/"
            with open(sp, encoding="utf-8") as f:
                checked[name] = check_table(path, json.load(f))
            if os.path.dirname(path).endswith(os.path.join("report", "tables")):
                # empq analyze writes each table's schema beside it, the same bytes as docs/schemas/
                beside = os.path.join(os.path.dirname(path), name[:-4] + ".schema.json")
                with open(sp, "rb") as f, open(beside, "rb") as g:
                    assert f.read() == g.read(), f"{beside} differs from {sp}"
        assert len(checked) == 3 + 15, sorted(checked)
        # the checker is not lenient: a rating of 4, a word for a count, a column less
        with open(os.path.join(SCHEMAS, "ratings-long.schema.json"), encoding="utf-8") as f:
            long_schema = json.load(f)
        with open(tables["ratings-long.csv"], newline="", encoding="utf-8") as f:
            good = list(csv.reader(f))
        for col, bad in (("rating", "4"), ("batch", "two"), ("answered_at", "yesterday"), ("participant", "")):
            rows = [list(r) for r in good[:3]]
            rows[1][rows[0].index(col)] = bad
            path = os.path.join(tmp, "bad.csv")
            with open(path, "w", newline="", encoding="utf-8") as f:
                csv.writer(f).writerows(rows)
            try:
                check_table(path, long_schema)
            except AssertionError:
                continue
            raise AssertionError(f"the checker accepted {col}={bad!r}")
        with open(path, "w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([r[:-1] for r in good[:3]])
        try:
            check_table(path, long_schema)
            raise AssertionError("the checker accepted a missing column")
        except AssertionError as e:
            assert "header" in str(e), e
        print(f"   {lines} response lines and {len(checked)} tables conform: " +
              ", ".join(f"{k} {n}" for k, n in checked.items()), file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(test_outputs_conform)
