"""Checks of deploy/: what can be checked without a container engine, a
Kubernetes cluster or systemd as PID 1.

- systemd units: `systemd-analyze verify` (a missing /usr/local/bin program
  is the only complaint tolerated: the test does not install empq), the
  directives the operator relies on, and every option the units and
  empq.env pass is one the program's --help lists.
- compose.yaml: parses; the services, their commands (programs and options
  that exist), Redis with AOF on a volume, workers scalable (no fixed name or
  host port), fakellm in the demo profile; CURVE: no --insecure, the one-shot
  "keys" service writes every key file a service's CURVE variable names into
  the volume that service mounts there.
- Kubernetes manifests: a JSON-schema check (python3-jsonschema) against the
  structure of the core kinds used, written here from the Kubernetes API
  reference (kubeconform/kubeval are not packaged in Debian 12), strict on
  unknown fields, plus cross-references: selectors match pod labels,
  Services target named ports that exist, volumes, ConfigMaps and Secrets
  referenced exist, the kustomization lists files that exist; CURVE: no
  --insecure, every CURVE variable's path lies in a mounted volume whose
  Secret items provide that file (directly, or through the init container's
  0600 copy), every mounted item is used, and the keys are the ones
  curve-secret.sh puts in the Secret.
- CURVE for real: curve-secret.sh --print (the built `empq keygen`, kubectl's
  client-side dry run), then a real broker, worker and CLI started with
  exactly the manifests' commands and environment, paths rewritten into a
  folder laid out like the mounts (Secret volumes as the kubelet writes them,
  mode and fsGroup included; the init containers' commands run for real), as
  uid 10001 when the test runs as root: the worker is CURVE-connected and no
  key file draws a warning. The same with compose's keys script and services.
- Containerfile: two Debian 12 stages, `make build`, and the runtime stage
  installs the package of every shared library the built programs link.
- Scripts: bash -n / sh -n and shellcheck (curve-secret.sh included).
The Slurm script runs for real in test_deploy_slurm.py.
"""

import base64
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys

import empqtest
from empqtest import BIN, SOURCE_DIR, Cluster, Skip, free_port, main, wait_until

try:
    import yaml
except ImportError:  # python3-yaml: deploy/bootstrap.sh installs it
    yaml = None
try:
    import jsonschema
except ImportError:  # python3-jsonschema
    jsonschema = None

DEPLOY = os.path.join(SOURCE_DIR, "deploy")
PROGRAMS = ["empq-broker", "empq-worker", "empq-collector", "empq", "empq-fakellm"]


def need_yaml():
    if yaml is None:
        raise Skip("python3-yaml is not installed (deploy/bootstrap.sh installs it)")


def help_text(prog):
    """The options a program's --help (or empq COMMAND --help) lists."""
    path = os.path.join(BIN, prog.split()[0])
    if not os.path.exists(path):
        raise Skip(f"{path} not built")
    r = subprocess.run([path] + prog.split()[1:] + ["--help"], capture_output=True, text=True,
                       timeout=10)
    return r.stdout + r.stderr


def check_options(prog, args, where):
    """Every --option in args is in prog's --help."""
    text = help_text(prog)
    for a in args:
        if a.startswith("--"):
            opt = a.split("=")[0]
            assert re.search(re.escape(opt) + r"\b", text), f"{where}: {prog} has no option {opt}"


# ----------------------------------------------------------------- systemd

def read_env_file(path):
    env = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line and not line.startswith("#"):
                k, _, v = line.partition("=")
                env[k] = v
    return env


def unit_settings(path):
    out = {}
    with open(path) as f:
        text = f.read().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if "=" in line and not line.startswith(("#", "[")):
            k, _, v = line.partition("=")
            out.setdefault(k, []).append(v)
    return out


def test_systemd():
    d = os.path.join(DEPLOY, "systemd")
    units = sorted(glob.glob(os.path.join(d, "*.service")))
    names = [os.path.basename(u) for u in units]
    assert names == ["empq-broker.service", "empq-collector.service", "empq-worker@.service"], names
    env = read_env_file(os.path.join(d, "empq.env"))
    assert env["EMPQ_REDIS_URL"].startswith("redis://"), env
    for k in read_env_file(os.path.join(d, "keys.env")):
        assert k.endswith("_API_KEY"), k
    progs = {"empq-broker.service": ("empq-broker", "EMPQ_BROKER_ARGS"),
             "empq-collector.service": ("empq-collector", "EMPQ_COLLECTOR_ARGS"),
             "empq-worker@.service": ("empq-worker", "EMPQ_WORKER_ARGS")}
    for u in units:
        name = os.path.basename(u)
        s = unit_settings(u)
        for k, v in [("Restart", "on-failure"), ("NoNewPrivileges", "yes"),
                     ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
                     ("User", "empq"), ("CapabilityBoundingSet", "")]:
            assert s.get(k) == [v], f"{name}: {k}={s.get(k)}, want {v}"
        assert "/etc/empq/empq.env" in s["EnvironmentFile"], name
        keys = any("keys.env" in e for e in s["EnvironmentFile"])
        assert keys == (name == "empq-worker@.service"), f"{name}: API keys only for workers"
        prog, var = progs[name]
        argv = s["ExecStart"][0].split()
        assert argv[0] == f"/usr/local/bin/{prog}", argv
        assert f"${var}" in argv, f"{name}: ExecStart does not pass ${var}"
        check_options(prog, [a for a in argv if a.startswith("--")] + env[var].split(), name)
    # the user the units name
    with open(os.path.join(d, "empq.sysusers.conf")) as f:
        assert re.search(r"^u empq ", f.read(), re.M)

    if not shutil.which("systemd-analyze"):
        print("   note: systemd-analyze not found; unit syntax not verified", file=sys.stderr)
        return
    r = subprocess.run(["systemd-analyze", "verify", "--man=no"] + units, capture_output=True,
                       text=True, timeout=60, cwd=d)
    bad = [line for line in (r.stdout + r.stderr).splitlines()
           if line.strip() and not re.search(r"Command /usr/local/bin/empq-[a-z]+ is not executable",
                                             line)]
    assert not bad, "systemd-analyze verify:\n" + "\n".join(bad)


# ----------------------------------------------------------------- compose

def test_compose():
    need_yaml()
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        c = yaml.safe_load(f)
    s = c["services"]
    assert set(s) >= {"redis", "broker", "collector", "worker", "fakellm"}, list(s)
    r = " ".join(s["redis"]["command"])
    assert "--appendonly yes" in r and "--appendfsync everysec" in r, r
    assert any(v.endswith(":/data") for v in s["redis"]["volumes"]), s["redis"]["volumes"]
    assert "redis-data" in c["volumes"]
    w = s["worker"]
    assert w["deploy"]["replicas"] == 2
    assert "container_name" not in w and "ports" not in w, "workers must scale (--scale worker=N)"
    assert s["fakellm"]["profiles"] == ["demo"]
    for name in ["broker", "collector", "worker", "fakellm"]:
        svc = s[name]
        assert svc["build"]["dockerfile"] == "deploy/Containerfile", name
        assert os.path.exists(os.path.join(DEPLOY, svc["build"]["context"], "deploy",
                                           "Containerfile"))
        cmd = svc["command"]
        check_options(cmd[0], cmd[1:], f"compose {name}")
        assert svc["environment"]["EMPQ_REDIS_URL"] == "redis://redis:6379", name
    assert "tcp://broker:5555" in w["command"]
    check_compose_curve(c)
    for k in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"]:
        assert k in w["environment"], k
        assert k not in s["broker"]["environment"] and k not in s["collector"]["environment"]


CURVE_VARS = ("EMPQ_BROKER_CURVE_SECRET", "EMPQ_CURVE_ALLOW", "EMPQ_CURVE_SECRET",
              "EMPQ_CURVE_SERVER_PUB")


def curve_expectations(env, talks_to_broker, allowed):
    """Checks which key files a program's CURVE variables name: env maps each
    variable to the file names it resolves to ({name} for a file, the names
    in it for a folder); talks_to_broker: the program is a CURVE client;
    allowed: the names in the broker's allow-list."""
    if "EMPQ_BROKER_CURVE_SECRET" in env:
        assert env["EMPQ_BROKER_CURVE_SECRET"] == {"broker.key"}, env
        allow = env.get("EMPQ_CURVE_ALLOW")
        assert allow and all(n.endswith(".pub") for n in allow), env
        assert "broker.pub" not in allow, "the broker's own key in its allow-list"
    if talks_to_broker:
        assert env.get("EMPQ_CURVE_SERVER_PUB") == {"broker.pub"}, env
        (key,) = env["EMPQ_CURVE_SECRET"]
        assert key.endswith(".key") and key != "broker.key", key
        assert key[:-4] + ".pub" in allowed, f"{key}: its public key is not in the allow-list"
    else:
        assert "EMPQ_CURVE_SECRET" not in env, env


def compose_keys_script(c):
    """The keys service's shell script, as the shell gets it ($$ is compose's $)."""
    cmd = c["services"]["keys"]["command"]
    assert cmd[:2] == ["sh", "-euc"], cmd
    return cmd[2].replace("$$", "$")


def compose_volume_files(c):
    """volume -> the files (relative paths) the keys script writes into it:
    its `cp SRC... DIR/` lines."""
    script = compose_keys_script(c)
    cd = re.search(r"^cd (\S+)$", script, re.M).group(1)
    targets = dict(v.split(":")[:2] for v in c["services"]["keys"]["volumes"])
    out = {name: set() for name in targets}
    for line in script.splitlines():
        words = line.split()
        if words[:1] != ["cp"]:
            continue
        for src in words[1:-1]:
            full = os.path.normpath(os.path.join(cd, words[-1], os.path.basename(src)))
            vol = [n for n, t in targets.items() if full.startswith(t + "/")]
            assert vol, f"keys: {line} writes outside its volumes"
            out[vol[0]].add(full[len(targets[vol[0]]) + 1:])
    return out


def compose_resolve(svc, path, vfiles):
    """The file names behind path in a service: {name} or a folder's names."""
    for v in svc.get("volumes", []):
        name, target = v.split(":")[:2]
        if name not in vfiles or not path.startswith(target + "/"):
            continue
        assert v.endswith(":ro"), f"{v}: the keys are mounted read-only"
        rel = path[len(target) + 1:]
        if rel in vfiles[name]:
            return {os.path.basename(rel)}
        folder = {f[len(rel) + 1:] for f in vfiles[name] if f.startswith(rel + "/")}
        assert folder, f"{path}: the keys service writes nothing there"
        return folder
    raise AssertionError(f"{path} is in no volume the keys service fills")


def check_compose_curve(c):
    s = c["services"]
    for name, svc in s.items():
        cmd = svc.get("command") or []
        assert "--insecure" not in cmd, f"compose {name}: --insecure"
    keys = s["keys"]
    assert keys["image"] == s["broker"]["image"] and keys["restart"] == "no", keys
    script = compose_keys_script(c)
    for line in script.splitlines():
        if line.startswith("empq keygen"):
            check_options("empq keygen", line.split()[2:], "compose keys")
    vfiles = compose_volume_files(c)
    allowed = None
    for name in ["broker", "worker", "cli"]:
        svc = s[name]
        assert svc["depends_on"]["keys"]["condition"] == "service_completed_successfully", name
        env = {k: compose_resolve(svc, v, vfiles) for k, v in svc["environment"].items()
               if k in CURVE_VARS}
        if name == "broker":
            allowed = env["EMPQ_CURVE_ALLOW"]
        talks = "EMPQ_BROKER_CONTROL" in svc["environment"] or \
            any("tcp://broker:" in a for a in svc.get("command") or [])
        curve_expectations(env, talks, allowed)
        # it mounts only what it uses
        used = set().union(*env.values())
        for v in svc.get("volumes", []):
            vol = v.split(":")[0]
            if vol in vfiles:
                assert {os.path.basename(f) for f in vfiles[vol]} <= used, (name, vol, used)
    for name in ["collector", "fakellm", "redis"]:
        assert not set(s[name].get("environment") or {}) & set(CURVE_VARS), name


# ----------------------------------------------------------------- Kubernetes

def obj(props, required=(), extra=False):
    return {"type": "object", "properties": props, "required": list(required),
            "additionalProperties": extra}


STR = {"type": "string"}
INT = {"type": "integer"}
BOOL = {"type": "boolean"}
STRS = {"type": "array", "items": STR}
NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63}
PORT_NAME = {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", "maxLength": 15}
QUANTITY = {"oneOf": [{"type": "string",
                       "pattern": r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$"},
                      {"type": "integer"}]}
LABELS = {"type": "object", "additionalProperties": STR}
INT_OR_NAME = {"oneOf": [INT, PORT_NAME]}
META = obj({"name": NAME, "generateName": STR, "namespace": NAME, "labels": LABELS,
            "annotations": LABELS})
RESOURCES = obj({"requests": {"type": "object", "additionalProperties": QUANTITY},
                 "limits": {"type": "object", "additionalProperties": QUANTITY}})
PROBE = obj({"exec": obj({"command": STRS}, ["command"]),
             "httpGet": obj({"path": STR, "port": INT_OR_NAME, "scheme": STR}, ["port"]),
             "tcpSocket": obj({"port": INT_OR_NAME}, ["port"]),
             "initialDelaySeconds": INT, "periodSeconds": INT, "timeoutSeconds": INT,
             "failureThreshold": INT, "successThreshold": INT})
KEY_REF = obj({"name": NAME, "key": STR, "optional": BOOL}, ["key"])
ENV = obj({"name": STR, "value": STR,
           "valueFrom": obj({"secretKeyRef": KEY_REF, "configMapKeyRef": KEY_REF,
                             "fieldRef": obj({"fieldPath": STR}, ["fieldPath"])})}, ["name"])
CAPS = obj({"drop": STRS, "add": STRS})
SECCOMP = obj({"type": {"enum": ["RuntimeDefault", "Localhost", "Unconfined"]}}, ["type"])
CONTAINER = obj({
    "name": NAME, "image": STR, "command": STRS, "args": STRS, "workingDir": STR,
    "imagePullPolicy": {"enum": ["Always", "IfNotPresent", "Never"]},
    "env": {"type": "array", "items": ENV},
    "ports": {"type": "array", "items": obj({"name": PORT_NAME, "containerPort": INT,
                                             "protocol": {"enum": ["TCP", "UDP", "SCTP"]}},
                                            ["containerPort"])},
    "volumeMounts": {"type": "array", "items": obj({"name": NAME, "mountPath": STR,
                                                    "readOnly": BOOL, "subPath": STR},
                                                   ["name", "mountPath"])},
    "resources": RESOURCES, "livenessProbe": PROBE, "readinessProbe": PROBE,
    "startupProbe": PROBE,
    "securityContext": obj({"allowPrivilegeEscalation": BOOL, "readOnlyRootFilesystem": BOOL,
                            "runAsNonRoot": BOOL, "runAsUser": INT, "runAsGroup": INT,
                            "capabilities": CAPS, "seccompProfile": SECCOMP}),
}, ["name", "image"])
VOLUME = obj({"name": NAME,
              "configMap": obj({"name": NAME, "items": {"type": "array"}}, ["name"]),
              "secret": obj({"secretName": NAME, "defaultMode": INT, "optional": BOOL,
                             "items": {"type": "array", "items": obj(
                                 {"key": STR, "path": STR, "mode": INT}, ["key", "path"])}},
                            ["secretName"]),
              "persistentVolumeClaim": obj({"claimName": NAME, "readOnly": BOOL}, ["claimName"]),
              "emptyDir": obj({"medium": STR, "sizeLimit": QUANTITY})}, ["name"])
POD_SPEC = obj({
    "containers": {"type": "array", "items": CONTAINER, "minItems": 1},
    "initContainers": {"type": "array", "items": CONTAINER},
    "volumes": {"type": "array", "items": VOLUME},
    "restartPolicy": {"enum": ["Always", "OnFailure", "Never"]},
    "terminationGracePeriodSeconds": INT, "serviceAccountName": NAME,
    "securityContext": obj({"runAsNonRoot": BOOL, "runAsUser": INT, "runAsGroup": INT,
                            "fsGroup": INT, "seccompProfile": SECCOMP}),
}, ["containers"])
TEMPLATE = obj({"metadata": META, "spec": POD_SPEC}, ["metadata", "spec"])
SELECTOR = obj({"matchLabels": LABELS}, ["matchLabels"])
PVC_SPEC = obj({"accessModes": {"type": "array", "items": {
    "enum": ["ReadWriteOnce", "ReadOnlyMany", "ReadWriteMany", "ReadWriteOncePod"]}},
    "storageClassName": STR,
    "resources": obj({"requests": obj({"storage": QUANTITY}, ["storage"])}, ["requests"])},
    ["accessModes", "resources"])


def kind(api, k, spec=None, required=("spec",), **more):
    props = {"apiVersion": {"const": api}, "kind": {"const": k}, "metadata": META}
    if spec is not None:
        props["spec"] = spec
    props.update(more)
    return obj(props, ["apiVersion", "kind", "metadata"] + list(required))


SCHEMAS = {
    "Namespace": kind("v1", "Namespace", required=()),
    "ConfigMap": kind("v1", "ConfigMap", required=("data",), data=LABELS),
    "Secret": kind("v1", "Secret", required=(), type=STR, data=LABELS, stringData=LABELS),
    "Service": kind("v1", "Service", obj({
        "selector": LABELS, "clusterIP": STR,
        "type": {"enum": ["ClusterIP", "NodePort", "LoadBalancer"]},
        "ports": {"type": "array", "minItems": 1, "items": obj({
            "name": PORT_NAME, "port": INT, "targetPort": INT_OR_NAME,
            "protocol": {"enum": ["TCP", "UDP", "SCTP"]}}, ["port"])}}, ["selector", "ports"])),
    "Deployment": kind("apps/v1", "Deployment", obj({
        "replicas": INT, "selector": SELECTOR, "template": TEMPLATE,
        "strategy": obj({"type": {"enum": ["Recreate", "RollingUpdate"]}})},
        ["selector", "template"])),
    "StatefulSet": kind("apps/v1", "StatefulSet", obj({
        "replicas": INT, "selector": SELECTOR, "template": TEMPLATE, "serviceName": NAME,
        "volumeClaimTemplates": {"type": "array", "items": obj({"metadata": META, "spec": PVC_SPEC},
                                                                ["metadata", "spec"])}},
        ["selector", "template", "serviceName"])),
    "PersistentVolumeClaim": kind("v1", "PersistentVolumeClaim", PVC_SPEC),
    "Job": kind("batch/v1", "Job", obj({
        "backoffLimit": INT, "ttlSecondsAfterFinished": INT, "template": TEMPLATE},
        ["template"])),
    "Kustomization": obj({"apiVersion": {"const": "kustomize.config.k8s.io/v1beta1"},
                          "kind": {"const": "Kustomization"}, "namespace": NAME,
                          "resources": STRS,
                          "images": {"type": "array", "items": obj(
                              {"name": STR, "newName": STR, "newTag": STR})}},
                         ["apiVersion", "kind", "resources"]),
}


def load_manifests():
    docs = []
    for path in sorted(glob.glob(os.path.join(DEPLOY, "k8s", "*.yaml"))):
        with open(path) as f:
            for d in yaml.safe_load_all(f):
                if d:
                    docs.append((os.path.basename(path), d))
    return docs


def test_k8s_schema():
    need_yaml()
    if jsonschema is None:
        raise Skip("python3-jsonschema is not installed (deploy/bootstrap.sh installs it)")
    docs = load_manifests()
    kinds = set()
    for f, d in docs:
        k = d.get("kind")
        assert k in SCHEMAS, f"{f}: kind {k} has no schema here"
        errors = sorted(jsonschema.Draft7Validator(SCHEMAS[k]).iter_errors(d), key=str)
        assert not errors, f"{f} {k}: " + "; ".join(
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors[:5])
        kinds.add(k)
    assert kinds >= {"StatefulSet", "Deployment", "Service", "ConfigMap", "Secret",
                     "PersistentVolumeClaim", "Kustomization"}, kinds
    # kustomize renders them, and reads defaultMode 0400 as octal (YAML 1.1)
    # as PyYAML does: a YAML 1.2 reader would take 0400 for decimal 400
    if shutil.which("kubectl"):
        r = subprocess.run(["kubectl", "kustomize", os.path.join(DEPLOY, "k8s")],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        modes = re.findall(r"defaultMode: (\d+)", r.stdout)
        assert modes and set(modes) == {str(0o400)}, modes
    else:
        print("   note: kubectl not found; kustomize rendering not checked", file=sys.stderr)
    # the schema really rejects a typo
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"selector": {}, "ports": [{"port": 1, "targetport": "x"}]}}
    assert list(jsonschema.Draft7Validator(SCHEMAS["Service"]).iter_errors(bad))


def test_k8s_references():
    need_yaml()
    docs = load_manifests()
    by_kind = {}
    for f, d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"] if "metadata" in d and
                                         "name" in d["metadata"] else f] = (f, d)
    kust = next(d for f, d in docs if d["kind"] == "Kustomization")
    for r in kust["resources"]:
        assert os.path.exists(os.path.join(DEPLOY, "k8s", r)), r
    workloads = {}
    for k in ("Deployment", "StatefulSet", "Job"):
        for name, (f, d) in by_kind.get(k, {}).items():
            workloads[name] = d
    configmaps = set(by_kind.get("ConfigMap", {}))
    secrets = set(by_kind.get("Secret", {}))
    curve_secret, curve_keys = curve_script_secret()
    pvcs = set(by_kind.get("PersistentVolumeClaim", {}))
    for name, d in workloads.items():
        spec = d["spec"]
        tmpl = spec["template"]
        labels = tmpl["metadata"].get("labels", {})
        if "selector" in spec:
            for k, v in spec["selector"]["matchLabels"].items():
                assert labels.get(k) == v, f"{name}: selector {k}={v} does not match its pods"
        pod = tmpl["spec"]
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        claims = {t["metadata"]["name"] for t in spec.get("volumeClaimTemplates", [])}
        for v in vols.values():
            if "configMap" in v:
                assert v["configMap"]["name"] in configmaps, f"{name}: no ConfigMap {v}"
            if "persistentVolumeClaim" in v:
                assert v["persistentVolumeClaim"]["claimName"] in pvcs, f"{name}: no PVC {v}"
            if "secret" in v:
                sec = v["secret"]
                assert sec["secretName"] in secrets | {curve_secret}, f"{name}: no Secret {v}"
                if sec["secretName"] == curve_secret:
                    assert {i["key"] for i in sec["items"]} <= curve_keys, (name, sec, curve_keys)
                    assert sec["defaultMode"] == 0o400 and \
                        all("mode" not in i for i in sec["items"]), (name, sec)
        for c in pod.get("initContainers", []) + pod["containers"]:
            ports = {p.get("name") for p in c.get("ports", [])}
            for m in c.get("volumeMounts", []):
                assert m["name"] in vols or m["name"] in claims, f"{name}: no volume {m['name']}"
            for probe in ("livenessProbe", "readinessProbe"):
                p = c.get(probe)
                if p:
                    port = (p.get("httpGet") or p.get("tcpSocket") or {}).get("port")
                    assert port is None or isinstance(port, int) or port in ports, \
                        f"{name}: {probe} port {port}"
            for e in c.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] in secrets, f"{name}: no Secret {ref['name']}"
                    assert ref["key"] in by_kind["Secret"][ref["name"]][1]["stringData"], ref
            # the programs and options exist, securely run
            assert "--insecure" not in c["command"], f"k8s {name}: --insecure"
            if c["image"].startswith("empq") and c["command"][0].startswith("empq"):
                check_options(c["command"][0] if c["command"][0] != "empq" else
                              " ".join(c["command"][:2]), c["command"][1:], f"k8s {name}")
            sc = c.get("securityContext", {})
            assert sc.get("allowPrivilegeEscalation") is False, name
            assert "resources" in c and "limits" in c["resources"], name
        assert pod.get("securityContext", {}).get("runAsNonRoot") is True, name
    # Services select pods of a workload and target ports those pods name
    for name, (f, svc) in by_kind["Service"].items():
        sel = svc["spec"]["selector"]
        targets = [d for d in workloads.values()
                   if all(d["spec"]["template"]["metadata"]["labels"].get(k) == v
                          for k, v in sel.items())]
        assert targets, f"Service {name}: selects no pods"
        names = {p.get("name") for d in targets
                 for c in d["spec"]["template"]["spec"]["containers"] for p in c.get("ports", [])}
        for p in svc["spec"]["ports"]:
            t = p.get("targetPort", p["port"])
            assert isinstance(t, int) or t in names, f"Service {name}: no port named {t}"
    check_k8s_curve(workloads, curve_secret)
    broker = {p["port"] for p in by_kind["Service"]["broker"][1]["spec"]["ports"]}
    assert broker == {5555, 5556, 9100}, broker
    sts = by_kind["StatefulSet"]["redis"][1]
    assert sts["spec"]["serviceName"] in by_kind["Service"]
    conf = by_kind["ConfigMap"]["redis-conf"][1]["data"]["redis.conf"]
    assert "appendonly yes" in conf and "appendfsync everysec" in conf
    # the study ConfigMap is a spec the real parser accepts
    study = by_kind["ConfigMap"]["empq-study"][1]["data"]["study.yaml"]
    tmp = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"empq-deploy-study-{os.getpid()}.yaml")
    with open(tmp, "w") as f:
        f.write(study)
    try:
        r = subprocess.run([os.path.join(BIN, "empq"), "submit", tmp, "--redis",
                            "redis://127.0.0.1:1", "--broker", "tcp://127.0.0.1:1"],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, EMPQ_FAKELLM_URL="http://127.0.0.1:1"))
        # it gets as far as Redis (unreachable): the spec itself was accepted
        # (a spec error names the file and line, and comes first)
        assert tmp not in r.stderr and "Redis" in r.stderr, r.stderr
    finally:
        os.unlink(tmp)


CURVE_SCRIPT = os.path.join(DEPLOY, "k8s", "curve-secret.sh")


def curve_script_secret():
    """(Secret name, its keys) as curve-secret.sh makes them."""
    with open(CURVE_SCRIPT) as f:
        text = f.read()
    names = re.search(r'^names="([^"]+)"$', text, re.M).group(1).split()
    secret = re.search(r'^secret="([^"]+)"$', text, re.M).group(1)
    return secret, {f"{n}.{e}" for n in names for e in ("key", "pub")}


def install_args(cmd):
    """(mode, folder, sources) of an init container's `install -m MODE -t DIR SRC...`."""
    assert cmd[0] == "install" and cmd[1] == "-m" and cmd[3] == "-t" and len(cmd) > 5, cmd
    return cmd[2], cmd[4], cmd[5:]


def k8s_resolve(pod, container, path, secret):
    """{file name in the container: key of Secret secret} behind path (a file
    or a folder): from a Secret volume's items, or from an emptyDir an init
    container copies them into with install."""
    vols = {v["name"]: v for v in pod.get("volumes", [])}
    for m in sorted(container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"])):
        mp = m["mountPath"]
        if path != mp and not path.startswith(mp + "/"):
            continue
        rel = path[len(mp) + 1:]
        v = vols[m["name"]]
        if "secret" in v:
            assert v["secret"]["secretName"] == secret, (path, v)
            items = {i["path"]: i["key"] for i in v["secret"].get("items", [])}
            assert items, f"{v['name']}: a Secret volume without items mounts every key"
            if rel == "":
                return items
            assert rel in items, f"{path}: no item {rel} in the Secret volume {v['name']}"
            return {rel: items[rel]}
        assert "emptyDir" in v, f"{path}: volume {v['name']} is neither a Secret nor an emptyDir"
        assert m.get("readOnly") is True, f"{path}: mount the key copies read-only"
        got = {}
        for ic in pod.get("initContainers", []):
            if not any(im["name"] == m["name"] for im in ic.get("volumeMounts", [])):
                continue
            mode, folder, srcs = install_args(ic["command"])
            assert mode == "0600", ic["command"]
            assert any(im["name"] == m["name"] and im["mountPath"] == folder
                       for im in ic["volumeMounts"]), ic
            for src in srcs:
                (key,) = k8s_resolve(pod, ic, src, secret).values()
                got[os.path.basename(src)] = key
        if rel == "":
            return got
        assert rel in got, f"{path}: no init container copies {rel} into {v['name']}"
        return {rel: got[rel]}
    raise AssertionError(f"{path} is in no mounted volume")


def check_k8s_curve(workloads, secret):
    """Every CURVE variable names a file (or folder) that the pod's volumes
    provide from the Secret; each pod mounts only the items it uses."""
    broker_pod = workloads["broker"]["spec"]["template"]["spec"]
    bc = broker_pod["containers"][0]
    allow = {e["value"] for e in bc["env"] if e["name"] == "EMPQ_CURVE_ALLOW"}
    assert len(allow) == 1, bc["env"]
    allowed = set(k8s_resolve(broker_pod, bc, allow.pop(), secret).values())
    for name, d in workloads.items():
        pod = d["spec"]["template"]["spec"]
        used = set()
        for c in pod["containers"]:
            env = {}
            for e in c.get("env", []):
                if e["name"] in CURVE_VARS:
                    found = k8s_resolve(pod, c, e["value"], secret)
                    used.update(found.values())
                    # the file names are the Secret's keys (a folder's keys alike)
                    assert all(k == v for k, v in found.items()), found
                    env[e["name"]] = set(found.values())
            talks = any(e["name"] == "EMPQ_BROKER_CONTROL" for e in c.get("env", [])) or \
                any("tcp://broker:" in a for a in c["command"])
            curve_expectations(env, talks, allowed)
        for v in pod.get("volumes", []):
            if v.get("secret", {}).get("secretName") == secret:
                items = {i["key"] for i in v["secret"]["items"]}
                assert items <= used, f"{name}: mounts {sorted(items - used)} and uses none of it"
                for i in v["secret"]["items"]:
                    assert i["path"] == i["key"], i


# ----------------------------------------------------------------- CURVE for real

POD_UID = 10001  # runAsUser, runAsGroup and fsGroup of the empq pods; the image's user


def curve_secret_data(tmp):
    """The Secret curve-secret.sh makes ({key: bytes}), by running it with
    --print: the built empq keygen and kubectl's client-side dry run. Without
    kubectl: the same keygen calls, with a note."""
    secret, keys = curve_script_secret()
    if not shutil.which("kubectl"):
        print("   note: kubectl not found; keys made with empq keygen, not by curve-secret.sh",
              file=sys.stderr)
        d = os.path.join(tmp, "keygen")
        os.makedirs(d)
        for n in sorted({k.rsplit(".", 1)[0] for k in keys}):
            subprocess.run([os.path.join(BIN, "empq"), "keygen", "--out", d, "--name", n],
                           check=True, capture_output=True)
        return {k: open(os.path.join(d, k), "rb").read() for k in keys}
    private = os.path.join(tmp, "script-tmp")
    os.makedirs(private)
    r = subprocess.run(["sh", CURVE_SCRIPT, "--print"], capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, EMPQ=os.path.join(BIN, "empq"), TMPDIR=private))
    assert r.returncode == 0, r.stderr
    assert os.listdir(private) == [], "curve-secret.sh left its key folder behind"
    doc = yaml.safe_load(r.stdout)
    assert doc["kind"] == "Secret" and doc["metadata"]["name"] == secret, doc["metadata"]
    assert doc["metadata"]["namespace"] == "empq"
    data = {k: base64.b64decode(v) for k, v in doc["data"].items()}
    assert set(data) == keys, sorted(data)
    return data


def pod_user_kw():
    """subprocess options running a process as the pods' user (root only)."""
    if os.geteuid() != 0:
        return {}
    return {"user": POD_UID, "group": POD_UID, "extra_groups": [POD_UID]}


def start_proc(argv, env, log, cwd):
    with open(log, "ab") as f:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f, stderr=subprocess.STDOUT,
                             env=env, cwd=cwd, start_new_session=True, **pod_user_kw())
    empqtest._live[p.pid] = p
    return p


def stop_proc(p):
    if p.poll() is None:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)
    empqtest._live.pop(p.pid, None)
    return p.returncode


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


class Pod:
    """A pod's volumes in a folder, laid out as the kubelet writes them:
    Secret volumes with items in a timestamped folder behind ..data symlinks,
    mode defaultMode plus 0440 and group fsGroup when the pod sets fsGroup
    (SetVolumeOwnership on a read-only volume); emptyDirs 2777; ConfigMaps as
    files. Its containers' paths and endpoints are rewritten for this host."""

    def __init__(self, root, name, workload, secret, data, configmaps, endpoints):
        self.name = name
        self.dir = os.path.join(root, name)
        self.spec = workload["spec"]["template"]["spec"]
        self.endpoints = endpoints
        fs_group = self.spec.get("securityContext", {}).get("fsGroup")
        as_root = os.geteuid() == 0
        for v in self.spec.get("volumes", []):
            d = os.path.join(self.dir, "vol", v["name"])
            os.makedirs(d)
            os.chmod(d, 0o755)
            if "secret" in v:
                assert v["secret"]["secretName"] == secret, v
                ts = os.path.join(d, "..2026_01_01_00_00_00.000000001")
                os.makedirs(ts)
                for it in v["secret"]["items"]:
                    p = os.path.join(ts, it["path"])
                    with open(p, "wb") as f:
                        f.write(data[it["key"]])
                    mode = it.get("mode", v["secret"].get("defaultMode", 0o644))
                    if fs_group is not None:
                        mode |= 0o440
                        if as_root:
                            os.chown(p, 0, fs_group)
                    os.chmod(p, mode)
                os.symlink(os.path.basename(ts), os.path.join(d, "..data"))
                for it in v["secret"]["items"]:
                    os.symlink(os.path.join("..data", it["path"]), os.path.join(d, it["path"]))
            elif "emptyDir" in v:
                if fs_group is not None and as_root:
                    os.chown(d, 0, fs_group)
                os.chmod(d, 0o2777 if fs_group is not None else 0o777)
            elif "configMap" in v:
                for k, text in configmaps[v["configMap"]["name"]].items():
                    with open(os.path.join(d, k), "w") as f:
                        f.write(text)

    def rewrite(self, container, value):
        if value in self.endpoints:
            return self.endpoints[value]
        for m in sorted(container.get("volumeMounts", []), key=lambda m: -len(m["mountPath"])):
            if value == m["mountPath"] or value.startswith(m["mountPath"] + "/"):
                return os.path.join(self.dir, "vol", m["name"]) + value[len(m["mountPath"]):]
        return value

    def argv(self, container):
        return [self.rewrite(container, a) for a in container["command"]]

    def env(self, container):
        """Exactly the environment the manifest sets (plus PATH to the programs)."""
        e = {"PATH": BIN + ":/usr/bin:/bin", "HOME": self.dir}
        for x in container.get("env", []):
            if "value" in x:
                e[x["name"]] = self.rewrite(container, x["value"])
        return e

    def run_init(self):
        for ic in self.spec.get("initContainers", []):
            r = subprocess.run(self.argv(ic), env=self.env(ic), cwd=self.dir, capture_output=True,
                               text=True, timeout=30, **pod_user_kw())
            assert r.returncode == 0, f"{self.name} init {ic['name']}: {r.stderr}"

    def container(self):
        (c,) = self.spec["containers"]
        return c


def cli_workers(env, cwd):
    r = subprocess.run([os.path.join(BIN, "empq"), "workers", "--json"], env=env, cwd=cwd,
                       capture_output=True, text=True, timeout=30, **pod_user_kw())
    return r


def listed(env, cwd, pid):
    r = cli_workers(env, cwd)
    return r.returncode == 0 and any(w["pid"] == pid for w in json.loads(r.stdout)["workers"])


def local_endpoints(redis_url):
    """The deploy files' endpoints -> free loopback ones here."""
    jobs, control, metrics = free_port(), free_port(), free_port()
    return {"tcp://0.0.0.0:5555": f"tcp://127.0.0.1:{jobs}",
            "tcp://0.0.0.0:5556": f"tcp://127.0.0.1:{control}",
            "0.0.0.0:9100": f"127.0.0.1:{metrics}",
            "tcp://broker:5555": f"tcp://127.0.0.1:{jobs}",
            "tcp://broker:5556": f"tcp://127.0.0.1:{control}",
            "tcp://127.0.0.1:5556": f"tcp://127.0.0.1:{control}",
            "redis://redis:6379": redis_url,
            "http://fakellm:8000": "http://127.0.0.1:1"}


def broker_and_worker(c, broker, worker, cli, check):
    """Starts the broker (argv, env, cwd), waits until the CLI (env, cwd)
    gets an answer over CURVE, starts the worker and waits until the CLI
    lists it; checks the logs (CURVE on with the two allowed keys, the
    worker welcomed, no key file warned about), calls check(broker, worker)
    while both run, and stops both (exit status 0)."""
    procs = []
    try:
        b = start_proc(*broker[:2], os.path.join(c.logs, "broker.log"), broker[2])
        procs.append(b)
        wait_until("broker control over CURVE", lambda: cli_workers(*cli).returncode == 0,
                   procs=[b], interval=0.2)
        w = start_proc(*worker[:2], os.path.join(c.logs, "worker.log"), worker[2])
        procs.append(w)
        wait_until("the worker registered over CURVE", lambda: listed(*cli, w.pid),
                   procs=[b, w], interval=0.2)
        blog = read(os.path.join(c.logs, "broker.log"))
        wlog = read(os.path.join(c.logs, "worker.log"))
        assert "curve=on allowed_keys=2" in blog and "event=insecure" not in blog, blog
        assert "event=welcome" in wlog, wlog
        r = cli_workers(*cli)
        for log in (blog, wlog, r.stderr):
            assert "curve_key_readable" not in log, log
        if os.geteuid() == 0:  # the pods' user, reading what it would be given
            assert os.stat(f"/proc/{b.pid}").st_uid == POD_UID
            assert os.stat(f"/proc/{w.pid}").st_uid == POD_UID
        check(b, w)
        print(f"   broker: {[x for x in blog.splitlines() if 'broker_started' in x][0]}",
              file=sys.stderr)
        assert stop_proc(w) == 0
        assert stop_proc(b) == 0
    finally:
        for p in procs:
            stop_proc(p)


def test_curve_k8s_real():
    need_yaml()
    docs = load_manifests()
    workloads = {d["metadata"].get("name") or f: d for f, d in docs
                 if d["kind"] in ("Deployment", "Job")}
    workloads["submit"] = next(d for f, d in docs if f == "submit-job.yaml")
    configmaps = {d["metadata"]["name"]: d["data"] for f, d in docs if d["kind"] == "ConfigMap"}
    secret, _ = curve_script_secret()
    with Cluster(workers=0, name="empq-deploy-curve") as c:
        os.chmod(c.tmp, 0o755)
        data = curve_secret_data(c.tmp)
        c.start_redis()
        eps = local_endpoints(c.redis_url)
        pods = {n: Pod(c.tmp, n, workloads[n], secret, data, configmaps, eps)
                for n in ("broker", "worker", "submit")}
        for pod in pods.values():
            pod.run_init()
        bp, wp, sp = pods["broker"], pods["worker"], pods["submit"]
        # `kubectl exec deploy/broker -- empq workers`: the container's environment
        exec_env = bp.env(bp.container())

        def check(b, w):
            for pod, key in ((bp, "broker.key"), (bp, "cli.key"), (wp, "workers.key")):
                st = os.stat(os.path.join(pod.dir, "vol", "curve", key))
                assert st.st_mode & 0o777 == 0o600, (pod.name, key, oct(st.st_mode))
            # the submit Job's keys get through too
            assert listed(sp.env(sp.container()), sp.dir, w.pid), "the submit Job's CLI keys"
            # why the init containers copy: the key read from the Secret
            # volume itself (0440 with fsGroup) draws the warning
            direct = dict(exec_env, EMPQ_CURVE_SECRET=os.path.join(bp.dir, "vol", "curve-secret",
                                                                    "cli.key"))
            r = cli_workers(direct, bp.dir)
            assert r.returncode == 0 and "curve_key_readable" in r.stderr, r.stderr

        broker_and_worker(c, (bp.argv(bp.container()), exec_env, bp.dir),
                          (wp.argv(wp.container()), wp.env(wp.container()), wp.dir),
                          (exec_env, bp.dir), check)


def test_curve_compose_real():
    need_yaml()
    if os.geteuid() != 0:
        print("   note: not root: compose's keys script (it chowns to 10001) not run",
              file=sys.stderr)
        return
    with open(os.path.join(DEPLOY, "compose.yaml")) as f:
        cfg = yaml.safe_load(f)
    s = cfg["services"]
    with Cluster(workers=0, name="empq-deploy-compose") as c:
        os.chmod(c.tmp, 0o755)
        # the volumes: new, empty, root's, under one folder for the script's `cd`
        keys_root = os.path.join(c.tmp, "keys")
        vols = {}
        for v in s["keys"]["volumes"]:
            name, target = v.split(":")[:2]
            assert target.startswith("/keys/"), target
            vols[name] = os.path.join(keys_root, target[len("/keys/"):])
            os.makedirs(vols[name])
        cmd = s["keys"]["command"]
        script = compose_keys_script(cfg).replace("/keys", keys_root)
        env = {"PATH": BIN + ":/usr/bin:/bin", "HOME": c.tmp}
        r = subprocess.run(cmd[:2] + [script], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        bkey = os.path.join(vols["curve-broker"], "broker.key")
        first = read(bkey)
        for d in vols.values():
            st = os.stat(d)
            assert (st.st_uid, st.st_mode & 0o777) == (POD_UID, 0o700), (d, oct(st.st_mode))
            for f in os.listdir(d):
                st = os.stat(os.path.join(d, f))
                assert st.st_uid == POD_UID, f
                if f.endswith(".key"):
                    assert st.st_mode & 0o777 == 0o600, (f, oct(st.st_mode))
        # a second run keeps them
        r = subprocess.run(cmd[:2] + [script], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "unchanged" in r.stdout, r.stdout + r.stderr
        assert read(bkey) == first
        c.start_redis()
        eps = local_endpoints(c.redis_url)

        def rewrite(svc, value):
            value = str(value)
            if value in eps:
                return eps[value]
            for v in svc.get("volumes", []):
                name, target = v.split(":")[:2]
                if name in vols and value.startswith(target + "/"):
                    return vols[name] + value[len(target):]
            return value

        def svc_env(name):
            e = {"PATH": BIN + ":/usr/bin:/bin", "HOME": c.tmp}
            e.update({k: rewrite(s[name], v) for k, v in s[name]["environment"].items()})
            return e

        broker_and_worker(c, ([rewrite(s["broker"], a) for a in s["broker"]["command"]],
                              svc_env("broker"), c.tmp),
                          ([rewrite(s["worker"], a) for a in s["worker"]["command"]],
                           svc_env("worker"), c.tmp),
                          (svc_env("cli"), c.tmp), lambda b, w: None)


# ----------------------------------------------------------------- container image

def test_containerfile():
    with open(os.path.join(DEPLOY, "Containerfile")) as f:
        text = f.read()
    froms = re.findall(r"^FROM (\S+)", text, re.M)
    assert froms[0] == "debian:12" and froms[-1].startswith("debian:12"), froms
    assert "make -o deps build" in text
    runtime = text[text.index("AS runtime"):]
    pkgs = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", runtime.split("apt-get install", 1)[1]
                          .split("&&", 1)[0]))
    assert "USER empq" in runtime
    if not shutil.which("dpkg") or not shutil.which("readelf"):
        print("   note: dpkg/readelf missing; runtime libraries not checked", file=sys.stderr)
        return
    # every library a program NEEDs directly comes from a package the runtime installs
    libs = set()
    for p in PROGRAMS:
        path = os.path.join(BIN, p)
        if not os.path.exists(path):
            raise Skip(f"{path} not built")
        out = subprocess.run(["readelf", "-d", path], capture_output=True, text=True).stdout
        needed = re.findall(r"\(NEEDED\).*\[(.+)\]", out)
        ldd = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
        where = dict(re.findall(r"^\s*(\S+) => (\S+)", ldd, re.M))
        libs.update(where[n] for n in needed if n in where)
    for lib in sorted(libs):
        real = os.path.realpath(lib)
        owner = None
        for cand in (lib, real, "/usr" + lib, "/usr" + real):
            r = subprocess.run(["dpkg", "-S", cand], capture_output=True, text=True)
            if r.returncode == 0:
                owner = r.stdout.split(":")[0]
                break
        assert owner is not None, f"no package owns {lib}"
        assert owner in pkgs or owner in ("libc6", "libgcc-s1"), \
            f"{lib} comes from {owner}, not installed by the runtime stage ({sorted(pkgs)})"


# ----------------------------------------------------------------- scripts

def test_scripts():
    scripts = [(os.path.join(DEPLOY, "slurm", "empq.sbatch"), "bash"),
               (os.path.join(DEPLOY, "bootstrap.sh"), "sh"),
               (CURVE_SCRIPT, "sh"),
               (os.path.join(SOURCE_DIR, "tests", "fuzz", "run.sh"), "sh")]
    for path, sh in scripts:
        r = subprocess.run([sh, "-n", path], capture_output=True, text=True)
        assert r.returncode == 0, f"{sh} -n {path}: {r.stderr}"
    if not shutil.which("shellcheck"):
        print("   note: shellcheck not found; scripts only syntax-checked", file=sys.stderr)
        return
    for path, _ in scripts:
        # bootstrap.sh splits its package list on purpose (an info-level note)
        sev = ["--severity=warning"] if path.endswith("bootstrap.sh") else []
        r = subprocess.run(["shellcheck"] + sev + [path], capture_output=True, text=True)
        assert r.returncode == 0, "shellcheck:\n" + r.stdout + r.stderr
    with open(scripts[0][0]) as f:
        sb = f.read()
    assert "scontrol show hostnames" in sb and "srun" in sb and "#SBATCH" in sb
    # the options the script passes exist
    for prog in ["empq-broker", "empq-worker", "empq-collector"]:
        opts = set()
        for m in re.finditer(re.escape(prog) + r"\)\"?(.*)", sb):
            opts.update(re.findall(r"--[a-z-]+", m.group(1)))
        check_options(prog, sorted(opts), "empq.sbatch")
    check_options("empq-broker", ["--curve-secret", "--curve-allow", "--insecure"], "empq.sbatch")
    check_options("empq-worker", ["--curve-secret", "--curve-server-pub", "--id"], "empq.sbatch")


if __name__ == "__main__":
    main(test_systemd, test_compose, test_k8s_schema, test_k8s_references, test_containerfile,
         test_scripts, test_curve_k8s_real, test_curve_compose_real)
