"""A deterministic synthetic "judge" derived from human labels with seeded
noise, for the agreement and estimate tests (no judge run exists yet).

judge_rows(rows, judges) -> list of dicts with the judge-ratings CSV columns
(item, condition, judge, sample, label, emotion, sentiment, length).
rows: dicts with item, condition, rating (1-3), emotion, sentiment, text.
Each judge is (name, keep, up, samples): with probability keep the judge
copies the human label; otherwise it draws a label, moved one step up with
probability up (a lenient judge). Seeded per (judge, item, condition,
sample) so every run writes the same file."""
import csv
import hashlib
import random


def _rng(*key):
    h = hashlib.sha256("\x1f".join(map(str, key)).encode()).digest()
    return random.Random(int.from_bytes(h[:8], "big"))


def judge_label(name, keep, up, item, cond, sample, human):
    r = _rng(name, item, cond, sample)
    if r.random() < keep:
        return human
    v = r.choice([1, 2, 3])
    if r.random() < up and v < 3:
        v += 1
    return v


def judge_rows(rows, judges):
    out = []
    for name, keep, up, samples in judges:
        for x in rows:
            for s in range(1, samples + 1):
                out.append({"item": x["item"], "condition": x["condition"], "judge": name, "sample": s,
                            "label": judge_label(name, keep, up, x["item"], x["condition"], s, x["rating"]),
                            "emotion": x.get("emotion", ""), "sentiment": x.get("sentiment", ""),
                            "length": len(x.get("text", "").split())})
    return out


def welivita_rows(path):
    rows = []
    with open(path, newline="", encoding="utf-8") as f:
        for d in csv.DictReader(f):
            for c in ("human", "chatgpt", "chatgpt_empathy"):
                if d["rating_" + c].strip():
                    rows.append({"item": d["dialog_id"], "condition": c, "rating": int(d["rating_" + c]),
                                 "participant": d.get("annotator_" + c, ""),
                                 "emotion": d["emotion"], "sentiment": d["sentiment"],
                                 "text": d["response_" + c]})
    return rows


def write_csv(path, out):
    cols = ["item", "condition", "judge", "sample", "label", "emotion", "sentiment", "length"]
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for x in out:
            w.writerow(x)
