"""Checks of deploy/: what can be checked without a container engine, a
Kubernetes cluster or systemd as PID 1.

- systemd units: `systemd-analyze verify` (a missing /usr/local/bin program
  is the only complaint tolerated: the test does not install empq), the
  directives the operator relies on, and every option the units and
  empq.env pass is one the program's --help lists.
- compose.yaml: parses; the services, their commands (programs and options
  that exist), Redis with AOF on a volume, workers scalable (no fixed name or
  host port), fakellm in the demo profile.
- Kubernetes manifests: a JSON-schema check (python3-jsonschema) against the
  structure of the core kinds used, written here from the Kubernetes API
  reference (kubeconform/kubeval are not packaged in Debian 12), strict on
  unknown fields, plus cross-references: selectors match pod labels,
  Services target named ports that exist, volumes, ConfigMaps and Secrets
  referenced exist, the kustomization lists files that exist.
- Containerfile: two Debian 12 stages, `make build`, and the runtime stage
  installs the package of every shared library the built programs link.
- Scripts: bash -n / sh -n and shellcheck.
The Slurm script runs for real in test_deploy_slurm.py.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from empqtest import BIN, SOURCE_DIR, Skip, main

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
    assert "--insecure" in s["broker"]["command"]      # beyond loopback without CURVE
    assert "tcp://broker:5555" in w["command"]
    for k in ["OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY"]:
        assert k in w["environment"], k
        assert k not in s["broker"]["environment"] and k not in s["collector"]["environment"]


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
              "secret": obj({"secretName": NAME}, ["secretName"]),
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
        for c in pod["containers"]:
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
            if c["image"].startswith("empq"):
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
         test_scripts)
