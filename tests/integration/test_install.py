#!/usr/bin/python3
"""`cmake --install` puts the five programs in PREFIX/bin and the ready
studies in PREFIX/share/empq/studies, and the installed `empq demo` finds
studies/demo.yaml there with no EMPQ_STUDIES and no source tree: a short
demo (40 prompts) runs from a folder outside the source tree."""
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Skip, main, program  # noqa: E402

SOURCE = os.environ.get("EMPQ_SOURCE_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
PROGRAMS = ("empq", "empq-broker", "empq-worker", "empq-collector", "empq-fakellm")


def test_installed_demo():
    if shutil.which("redis-server") is None and not os.path.exists("/usr/bin/redis-server"):
        raise Skip("redis-server is not installed")
    build = os.path.dirname(os.path.dirname(program("empq")))  # <build>/bin/empq
    if not os.path.exists(os.path.join(build, "cmake_install.cmake")):
        raise Skip(f"{build} is not a CMake build folder")
    tmp = tempfile.mkdtemp(prefix="empqtest-install-")
    try:
        prefix = os.path.join(tmp, "prefix")
        r = subprocess.run(["cmake", "--install", build, "--prefix", prefix], capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        for p in PROGRAMS:
            assert os.access(os.path.join(prefix, "bin", p), os.X_OK), f"{p} not installed"
        studies = os.path.join(prefix, "share", "empq", "studies")
        want = sorted(f for f in os.listdir(os.path.join(SOURCE, "studies")) if f.endswith(".yaml"))
        assert "demo.yaml" in want and sorted(os.listdir(studies)) == want, (os.listdir(studies), want)
        env = {k: v for k, v in os.environ.items() if not k.startswith("EMPQ_")}
        env["PATH"] = os.path.join(prefix, "bin") + os.pathsep + env.get("PATH", "")
        work = os.path.join(tmp, "elsewhere")
        os.makedirs(work)
        r = subprocess.run(["empq", "demo", "--prompts", "40", "--out", os.path.join(work, "demo")], cwd=work,
                           env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, f"installed empq demo exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
        assert os.path.getsize(os.path.join(work, "demo", "responses.jsonl")) > 0
        assert os.path.exists(os.path.join(work, "demo", "report", "report.html"))
        print(f"   installed into {prefix}; the installed demo ran from {work}", file=sys.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(test_installed_demo)
