"""A worker the CURVE broker refuses stays quiet and idle, and says once
what to fix.

Two refused workers run side by side against a CURVE broker on loopback for
EMPQ_REFUSED_S seconds (default 60): one started without any CURVE key, one
with a key that is not in the broker's allow-list. For each, measured on the
real process:

- its log stays under 100 lines (the whole run, start line included);
- its CPU (utime + stime from /proc/PID/stat, over the whole life of the
  process) stays under 2% of one core;
- it is still running, never welcomed, and its log names the key problem:
  the keyless worker is told the broker wants CURVE and which flags and
  variables give it a key; the foreign one is told its public key (in full,
  to paste) is not in the broker's allow-list.

Then a worker with an allowed key still gets through (the broker is not
harmed by the refused ones).
"""

import os
import time

from empqtest import main, program, wait_until
from test_security import CurveCluster, log_text

DURATION_S = float(os.environ.get("EMPQ_REFUSED_S", "60"))
MAX_LINES = 100
MAX_CPU = 0.02


def cpu_seconds(pid):
    """utime + stime of a live process, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    fields = stat[stat.rindex(")") + 2:].split()
    # after "pid (comm) ": state is field 3, utime 14, stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_refused_workers_quiet():
    with CurveCluster(workers=0, name="empq-curve-refused") as c:
        c.cli_key = None
        c.setup_keys()
        c.start(workers=False, collector=False)
        no_curve = {"EMPQ_CURVE_SECRET": "", "EMPQ_CURVE_SERVER_PUB": "", "EMPQ_FAKELLM_URL": c.fake_url}
        common = [program("empq-worker"), "--redis", c.redis_url, "--broker", c.jobs_ep]
        t0 = time.monotonic()
        procs = {
            "keyless": c.spawn("keyless", common + ["--id", "keyless"], env=no_curve),
            "stranger": c.spawn("stranger", common + ["--id", "stranger",
                                                      "--curve-secret", os.path.join(c.foreign, "stranger.key"),
                                                      "--curve-server-pub", os.path.join(c.keys, "broker.pub")],
                                env=no_curve),
        }
        time.sleep(DURATION_S)
        wall = time.monotonic() - t0
        figures = {}
        for name, p in procs.items():
            assert p.poll() is None, f"{name} exited ({p.returncode}):\n" + log_text(c, name)
            figures[name] = cpu_seconds(p.pid)
        for name in procs:
            text = log_text(c, name)
            lines = text.splitlines()
            cpu = figures[name] / wall
            print(f"   {name}: {len(lines)} log lines, cpu {figures[name]:.3f} s in {wall:.1f} s "
                  f"= {100 * cpu:.2f}% of a core", flush=True)
            assert len(lines) < MAX_LINES, f"{name}: {len(lines)} log lines in {wall:.0f} s:\n" + \
                "\n".join(lines[:20])
            assert cpu < MAX_CPU, f"{name}: {100 * cpu:.2f}% of a core over {wall:.0f} s"
            assert "event=welcome" not in text, text
            assert "event=curve_handshake_refused" in text, text
        keyless = log_text(c, "keyless")
        for want in ("broker requires CURVE", "--curve-secret", "EMPQ_CURVE_SECRET", "--curve-server-pub",
                     "allow-list"):
            assert want in keyless, f"the keyless worker's hint lacks {want!r}:\n{keyless}"
        stranger = log_text(c, "stranger")
        with open(os.path.join(c.foreign, "stranger.pub")) as f:
            stranger_pub = next(ln.split()[0] for ln in f if ln.strip() and not ln.startswith("#"))
        for want in ("not in the broker's allow-list", stranger_pub, "stranger.key", "--curve-allow"):
            assert want in stranger, f"the refused worker's hint lacks {want!r}:\n{stranger}"
        # the refusals back off: later attempts are counted, not each logged
        assert "suppressed=" in stranger or stranger.count("event=curve_handshake_refused") <= 10, stranger
        # the broker still serves an allowed worker
        c.start_curve_worker("worker-1", os.path.join(c.keys, "worker-1.key"))
        wait_until("the allowed worker is welcomed", lambda: "event=welcome" in log_text(c, "worker-1"),
                   timeout=15)
        for name in list(procs) + ["worker-1"]:
            assert c.stop(name) == 0, log_text(c, name)
        c.check_alive()


if __name__ == "__main__":
    main(test_refused_workers_quiet)
