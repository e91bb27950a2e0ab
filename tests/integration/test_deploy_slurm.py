"""deploy/slurm/empq.sbatch under a real single-node Slurm started here.

Starts munged, slurmctld and slurmd (Debian's slurm-wlm and munge) in a
temporary folder with a generated slurm.conf and munge key, on free ports;
submits deploy/slurm/empq.sbatch with `sbatch --wait` on a tiny study (24
synthetic prompts, two fake models served by empq-fakellm, two workers, CURVE
on as on a multi-node job);
checks the responses and that the script stopped everything it started.
Skips (77) with the reason when Slurm or munge is not installed, when not
root (slurmd starts the job steps), or when slurmd does not come up here.
"""

import collections
import os
import shutil
import socket
import subprocess
import time

from empqtest import (BIN, SOURCE_DIR, Cluster, Skip, demo_like_spec, free_port, main,
                      read_jsonl, wait_until)

SCRIPT = os.path.join(SOURCE_DIR, "deploy", "slurm", "empq.sbatch")
TOOLS = ["munged", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "sinfo", "scancel"]
PROMPTS = 24


def tool(name):
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = os.path.join(d, name)
        if os.access(p, os.X_OK):
            return p
    return shutil.which(name)


def free_ports(n):
    """A base port with n free consecutive ports after it."""
    for _ in range(50):
        base = free_port()
        if base + n > 65535:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise AssertionError("no free port range")


def port_in_use(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_sbatch():
    missing = [t for t in TOOLS if tool(t) is None]
    if missing:
        raise Skip(f"{', '.join(missing)} not installed (apt-get install slurm-wlm munge)")
    if os.geteuid() != 0:
        raise Skip("slurmd must run as root to start job steps; this test is not root")
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        raise Skip("redis-server not installed")

    with Cluster(name="empq-slurm", latency_ms=5) as c:
        os.chmod(c.tmp, 0o755)  # the munge socket folder must be reachable
        d = os.path.join(c.tmp, "slurm")
        for sub in ("munge", "ctld", "spool", "log"):
            os.makedirs(os.path.join(d, sub))
        os.chmod(os.path.join(d, "munge"), 0o755)
        key = os.path.join(d, "munge", "munge.key")
        with open(key, "wb") as f:
            f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        sock = os.path.join(d, "munge", "munge.sock")
        host = socket.gethostname().split(".")[0]
        ctld_port, slurmd_port = free_ports(1), free_ports(1)
        conf = os.path.join(d, "slurm.conf")
        with open(conf, "w") as f:
            f.write(f"""ClusterName=empqtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={sock}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d}/ctld
SlurmdSpoolDir={d}/spool
SlurmctldPidFile={d}/slurmctld.pid
SlurmdPidFile={d}/slurmd.pid
SlurmctldLogFile={d}/log/slurmctld.log
SlurmdLogFile={d}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
NodeName={host} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
""")
        env = {"SLURM_CONF": conf}
        os.environ["SLURM_CONF"] = conf
        c.spawn("munged", [tool("munged"), "-F", "--force", "--key-file", key, "--socket", sock,
                           "--pid-file", os.path.join(d, "munge", "munged.pid"),
                           "--seed-file", os.path.join(d, "munge", "seed"),
                           "--log-file", os.path.join(d, "log", "munged.log")])
        wait_until("munged socket", lambda: os.path.exists(sock), procs=[c.procs["munged"]])
        c.spawn("slurmctld", [tool("slurmctld"), "-D", "-i", "-f", conf], env=env)
        c.spawn("slurmd", [tool("slurmd"), "-D", "-f", conf, "-N", host], env=env)

        def idle():
            for name in ("slurmctld", "slurmd"):
                if c.procs[name].poll() is not None:
                    raise Skip(f"{name} exited with status {c.procs[name].returncode} here:\n"
                               + c.log_tail(name))
            r = subprocess.run([tool("sinfo"), "-h", "-o", "%t"], capture_output=True, text=True,
                               timeout=10)
            return r.stdout.strip() == "idle"

        try:
            wait_until("Slurm node idle", idle, timeout=30, interval=0.5)
        except AssertionError:
            tail = ""
            for f in ("slurmctld.log", "slurmd.log"):
                try:
                    with open(os.path.join(d, "log", f), errors="replace") as fh:
                        tail += f"--- {f}\n" + "".join(fh.readlines()[-10:])
                except OSError:
                    pass
            raise Skip("slurmctld/slurmd started but the node never became idle here:\n" + tail)

        c.start_fakellm()
        spec = c.write("study.yaml", demo_like_spec("slurm", PROMPTS,
                                                    models=("fake-warm", "fake-brief")))
        out = os.path.join(c.tmp, "out")
        # The three ports are free when chosen, but a test running beside this
        # one can take one before the broker binds it; the script then stops
        # at once ("the broker did not start") and the job is tried again on
        # new ports, once.
        for attempt in range(2):
            base = free_ports(3)
            job_env = dict(os.environ, SLURM_CONF=conf, EMPQ_BIN=BIN, EMPQ_WORKERS_PER_NODE="2",
                           EMPQ_TIMEOUT="90", EMPQ_PORT_BASE=str(base),
                           EMPQ_WORKER_ARGS="--credit 8", EMPQ_FAKELLM_URL=c.fake_url,
                           EMPQ_CURVE="1")  # CURVE as on a multi-node job (keys made by the script)
            shutil.rmtree(out, ignore_errors=True)
            for f in os.listdir(c.tmp):
                if f.startswith("job-"):
                    os.unlink(os.path.join(c.tmp, f))
            t0 = time.monotonic()
            try:
                r = subprocess.run([tool("sbatch"), "--wait", "--nodes=1", "--time=5",
                                    "--output", os.path.join(c.tmp, "job-%j.out"), SCRIPT, spec, out],
                                   capture_output=True, text=True, timeout=180, env=job_env,
                                   cwd=c.tmp)
            finally:
                subprocess.run([tool("scancel"), "--user", "root"], capture_output=True, env=job_env,
                               timeout=30)
            outs = [f for f in os.listdir(c.tmp) if f.startswith("job-")]
            job_out = ""
            for f in outs:
                with open(os.path.join(c.tmp, f), errors="replace") as fh:
                    job_out += fh.read()
            if r.returncode == 0 or "the broker did not start" not in job_out:
                break
            print("   the broker's port was taken meanwhile; trying again on new ports", flush=True)
        assert r.returncode == 0, f"sbatch --wait: {r.returncode}\n{r.stdout}{r.stderr}\n{job_out}"
        print(f"   job ran in {time.monotonic() - t0:.1f} s", flush=True)

        with open(os.path.join(out, "run_id")) as f:
            run_id = f.read().strip()
        rows = read_jsonl(os.path.join(out, "runs", run_id, "responses.jsonl"))
        per = collections.Counter((x["prompt_index"], x["source"]) for x in rows)
        assert len(rows) == PROMPTS * 3 and set(per.values()) == {1}, (len(rows), per)
        assert {x["source"] for x in rows} == {"human", "fake-warm", "fake-brief"}
        assert all(x["response"] for x in rows)
        stats = c.fakellm_stats()
        assert stats["requests"] == PROMPTS * 2, stats   # one backend call per model response
        # two workers ran on the node and stopped on the stop file
        logs = os.path.join(out, "logs")
        text = ""
        for f in os.listdir(logs):
            if f.startswith("workers-"):
                with open(os.path.join(logs, f), errors="replace") as fh:
                    text += fh.read()
        ids = {w for w in (f"{host}-1", f"{host}-2") if f"event=exit id={w}" in text}
        assert len(ids) == 2, text[-2000:]
        # CURVE was on: the script made the keys, the secret ones private
        keys = os.path.join(out, "curve")
        for k in ("broker.key", "worker.key"):
            assert os.stat(os.path.join(keys, k)).st_mode & 0o077 == 0, k
        assert os.path.exists(os.path.join(keys, "clients", "worker.pub"))
        # the script stopped Redis, the broker and the workers
        for p in (base, base + 1, base + 2):
            assert not port_in_use(p), f"port {p} still open after the job"
        assert "done" in job_out, job_out


if __name__ == "__main__":
    main(test_sbatch)
