"""Every request body empq sends to the OpenAI-format providers (openai,
azure-openai, openai-compatible), for every parameter of docs/spec.md's
parameter table, validates against OpenAI's published
CreateChatCompletionRequest schema (../shared/providers/openai-openapi-subset.json
beside the source folder, or EMPQ_SHARED_DIR), checked with
python3-jsonschema; and a body with a wrong field fails that same check.

The bodies come from `empq submit --dry-run`, the exact bytes a worker
sends (the same provider module builds both)."""

import json
import os
import re
import subprocess

from empqtest import SOURCE_DIR, Skip, main, program

OPENAI_FORMAT = ("openai", "azure-openai", "openai-compatible")

# One params block (and model-level keys) per parameter of the table, for
# each OpenAI-format provider. Every value a provider takes is sent once.
CASES = {
    "temperature": ["params: {temperature: 0.7}", "params: {temperature: 0}", "params: {temperature: 2}"],
    "top_p": ["params: {top_p: 0.9}"],
    "max_tokens": ["params: {max_tokens: 256}"],
    "max_completion_tokens": ["params: {max_completion_tokens: 4096}"],
    "reasoning_effort": {
        "openai": [f"params: {{reasoning_effort: {v}, max_completion_tokens: 2048}}"
                   for v in ("none", "minimal", "low", "medium", "high", "xhigh", "max")],
        "azure-openai": [f"params: {{reasoning_effort: {v}}}" for v in ("minimal", "low", "medium", "high")],
        "openai-compatible": [f"params: {{reasoning_effort: {v}}}" for v in ("low", "medium", "high")],
    },
    "system_role": ["params: {system_role: developer}", "params: {system_role: system}"],
    "seed": ["params: {seed: 42}", "params: {seed: -7}"],
    "stop": ["params: {stop: END}", "params: {stop: [\"\\n\\n\", END, '###', x]}"],
    "extra_body": ["extra_body: {user: study-participant-17, service_tier: auto}",
                   "params: {temperature: 0.5}\n    extra_body: {logprobs: true, top_logprobs: 2}"],
    "keep_thinking": ["keep_thinking: true"],
    # everything of a reasoning model at once
    "all": ["params: {max_completion_tokens: 2048, reasoning_effort: low, system_role: developer, "
            "seed: 1, top_p: 1, stop: [END]}"],
}


def shared_dir():
    d = os.environ.get("EMPQ_SHARED_DIR") or os.path.join(SOURCE_DIR, "..", "shared")
    path = os.path.join(d, "providers", "openai-openapi-subset.json")
    if not os.path.exists(path):
        raise Skip(f"{path} is absent (set EMPQ_SHARED_DIR to the folder holding providers/): "
                   "the request bodies were not checked against OpenAI's schema")
    return path


def validator():
    try:
        import jsonschema
    except ImportError:
        raise Skip("python3-jsonschema is not installed: the request bodies were not checked")
    with open(shared_dir()) as f:
        doc = json.load(f)
    # the whole document as the root, so its #/components/... references resolve
    schema = dict(doc)
    schema["$ref"] = "#/components/schemas/CreateChatCompletionRequest"
    cls = jsonschema.validators.validator_for({"$schema": "http://json-schema.org/draft-07/schema#"})
    return cls(schema)


def table_params():
    """The spec keys of docs/spec.md's parameter table that an OpenAI-format
    provider takes (its column is not '-')."""
    with open(os.path.join(SOURCE_DIR, "docs", "spec.md")) as f:
        text = f.read()
    head = "| spec key | type, range | openai, azure-openai | openai-compatible (vLLM) |"
    assert head in text, f"docs/spec.md has no parameter table starting {head!r}"
    table = text[text.index(head):].split("\n\n", 1)[0]
    rows = re.findall(r"^\| `(\w+)` \| [^|]+ \| ([^|]+) \| ([^|]+) \|", table, re.M)
    keys = [k for k, oa, compat in rows if oa.strip() != "-" or compat.strip() != "-"]
    assert len(keys) >= 8, f"the parameter table of docs/spec.md was not found: {rows}"
    return keys


def spec_for(provider, blocks):
    out = ["name: schema", "dataset: {format: synth, prompts: 4, seed: 3}",
           "selection: {prompts: 2, seed: 1}",
           "template:", "  system: You are a kind listener.",
           "  user: \"{situation} / {prompt}\"", "human: {include: false}", "models:"]
    for i, b in enumerate(blocks):
        out += [f"  - alias: m{i}", f"    provider: {provider}",
                "    base_url: http://127.0.0.1:9/v1", "    model: o3-mini",
                "    api_key_env: EMPQ_TEST_KEY", f"    {b}"]
    return "\n".join(out) + "\n"


def dry_run(tmp, provider, blocks):
    path = os.path.join(tmp, f"{provider}.yaml")
    with open(path, "w") as f:
        f.write(spec_for(provider, blocks))
    env = dict(os.environ, EMPQ_TEST_KEY="sk-must-not-appear")
    r = subprocess.run([program("empq"), "submit", "--dry-run=2", path, "--redis", "redis://127.0.0.1:9"],
                       capture_output=True, text=True, timeout=60, env=env)
    assert r.returncode == 0, f"dry run of {provider} failed: {r.stderr}"
    assert "sk-must-not-appear" not in r.stdout, "the dry run printed a key"
    bodies = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]
    heads = [l for l in r.stdout.splitlines() if l.startswith("POST ")]
    assert len(bodies) == len(heads) == 2 * len(blocks), (len(bodies), len(heads), r.stdout[:2000])
    return bodies, r.stdout


def test_every_body_validates():
    v = validator()
    keys = table_params()
    missing = [k for k in keys if k not in CASES]
    assert not missing, f"docs/spec.md's table has parameters this test does not send: {missing}"
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for prov in OPENAI_FORMAT:
            blocks = []
            for k in keys + ["extra_body", "keep_thinking", "all"]:
                c = CASES[k]
                blocks += c[prov] if isinstance(c, dict) else c
            bodies, out = dry_run(tmp, prov, blocks)
            for b in bodies:
                errs = sorted(v.iter_errors(b), key=str)
                assert not errs, f"{prov}: body does not validate: {errs[0].message}\n{json.dumps(b)}"
                n += 1
            # the parameters arrive under OpenAI's names
            text = out
            for want in ('"max_completion_tokens":4096', '"reasoning_effort":"low"', '"role":"developer"',
                         '"seed":42', '"stop":["\\n\\n","END","###","x"]', '"service_tier":"auto"'):
                assert want in text, f"{prov}: {want} not sent:\n{text[:3000]}"
            if prov == "azure-openai":
                assert "api-key: ${EMPQ_TEST_KEY}" in out and "/openai/deployments/o3-mini/" in out, out[:500]
            else:
                assert "Authorization: Bearer ${EMPQ_TEST_KEY}" in out, out[:500]
        print(f"   {n} request bodies valid against CreateChatCompletionRequest")


def test_wrong_field_fails():
    v = validator()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        bodies, _ = dry_run(tmp, "openai", CASES["all"])
    good = bodies[0]
    assert not list(v.iter_errors(good))
    wrong = [
        ("reasoning_effort", "extreme"),
        ("max_completion_tokens", "many"),
        ("stop", ["a", "b", "c", "d", "e"]),  # OpenAI takes at most 4
        ("temperature", 3),
        ("messages", [{"role": "developer", "content": 5}]),
        ("messages", []),
        ("model", None),
    ]
    for key, val in wrong:
        b = dict(good)
        if val is None:
            del b[key]
        else:
            b[key] = val
        assert list(v.iter_errors(b)), f"a body with {key}={val!r} passed the schema: the check cannot fail"


if __name__ == "__main__":
    main(test_every_body_validates, test_wrong_field_fails)
