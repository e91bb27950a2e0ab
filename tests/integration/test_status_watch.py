#!/usr/bin/python3
"""`empq status --watch` on a real terminal (issue 16, point 5).

Runs the watch in tmux at 120x40 and at 80x24 while a run of 64 prompts x
(human + 4 fake models, 200 ms each, 16 in flight) is under way, so the
screen is redrawn many times (every 0.2 s for several seconds). While it
runs, every capture of the pane has the headline on its first line (run
id, % done, an ETA), no line wider than the terminal and no more lines
than it has; when the run ends, the whole pane with its scrollback
(capture-pane -S -) holds the headline once: the frames were drawn over
each other, not stacked. --emotions shows every emotion instead of the
slowest few."""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from empqtest import Cluster, Skip, demo_like_spec, main, program  # noqa: E402

PROMPTS = 64


def tmux(sock, *args, check=True):
    r = subprocess.run(["tmux", "-S", sock] + list(args), capture_output=True, text=True, timeout=20)
    if check:
        assert r.returncode == 0, f"tmux {' '.join(args)}: exit {r.returncode}: {r.stderr}"
    return r


def capture(sock, history=False):
    args = ["capture-pane", "-p", "-t", "w"] + (["-S", "-"] if history else [])
    return tmux(sock, *args).stdout.rstrip("\n").split("\n")


def watch_in_tmux(c, run, width, height, extra=(), interrupt_after=None):
    """Watches run in a width x height tmux pane until it ends. Returns the
    screens captured meanwhile and the final pane with its scrollback."""
    sock = os.path.join(c.tmp, f"tmux-{width}x{height}")
    env = c.env()
    cmd = " ".join([program("empq"), "status", run, "--watch", "0.2"] + list(extra)) + '; echo "exit=$?"'
    # a login shell's prompt would differ from machine to machine: the pane runs the watch alone
    tmux(sock, "-f", "/dev/null", "new-session", "-d", "-s", "w", "-x", str(width), "-y", str(height),
         "-e", f"EMPQ_BROKER_CONTROL={env['EMPQ_BROKER_CONTROL']}", "-e", f"EMPQ_REDIS_URL={env['EMPQ_REDIS_URL']}",
         "-e", "TERM=xterm-256color", cmd)  # tmux runs it with sh -c
    try:
        tmux(sock, "set-option", "-t", "w", "remain-on-exit", "on")
        size = tmux(sock, "display-message", "-p", "-t", "w", "#{pane_width}x#{pane_height}").stdout.strip()
        assert size == f"{width}x{height}", f"the pane is {size}, want {width}x{height}"
        screens = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            c.check_alive()
            if tmux(sock, "display-message", "-p", "-t", "w", "#{pane_dead}").stdout.strip() == "1":
                break
            screens.append(capture(sock))
            if interrupt_after is not None and len(screens) == interrupt_after:
                tmux(sock, "send-keys", "-t", "w", "C-c")  # Ctrl-C: leave, the last frame kept
            time.sleep(0.15)
        else:
            raise AssertionError(f"the watch did not end within 120 s:\n" + "\n".join(capture(sock)))
        # the exit status, as the shell wrapping the watch printed it last
        final = capture(sock, history=True)
        while final and not final[-1].strip() or final and final[-1].startswith("Pane is dead"):
            final.pop()
        assert final and final[-1] == "exit=0", "empq status --watch failed:\n" + "\n".join(final)
        return screens, final[:-1]
    finally:
        tmux(sock, "kill-server", check=False)


def check_screens(run, screens, final, width, height):
    head = re.compile(rf"^run {re.escape(run)}  (\d+\.\d)%  ETA (\S+)  (\d+)/(\d+)  ")
    live = [s for s in screens if s and s[0].startswith("run ")]
    assert len(live) >= 5, f"only {len(live)} frames seen at {width}x{height}: {screens[-3:]}"
    etas = 0
    for s in live:
        m = head.match(s[0])
        assert m, f"{width}x{height}: first line is not the headline: {s[0]!r}"
        etas += m.group(2) != "-"
        assert len(s) <= height, f"{width}x{height}: {len(s)} lines"
        wide = [ln for ln in s if len(ln) > width]
        assert not wide, f"{width}x{height}: lines wider than {width}: {wide}"
        assert sum(1 for ln in s if ln.startswith("run ")) == 1, f"two headlines on one screen: {s}"
    assert etas > 0, f"{width}x{height}: no frame showed an ETA: {[s[0] for s in live]}"
    # the whole pane, scrollback included: one headline, from the final frame
    text = [ln for ln in final if ln.strip()]
    heads = [ln for ln in text if ln.startswith(f"run {run}")]
    assert len(heads) == 1, f"{width}x{height}: {len(heads)} headlines in the pane and its scrollback:\n" + \
        "\n".join(final)
    assert head.match(heads[0]) and " 100.0%  ETA 0s " in heads[0] and heads[0].endswith("done"), heads[0]
    assert not [ln for ln in final if len(ln) > width], f"{width}x{height}: a final line is too wide"
    print(f"   {width}x{height}: {len(live)} frames, headline on top in each, {etas} with an ETA; "
          f"first: {live[0][0]!r}", file=sys.stderr)
    return live


def test_watch_in_tmux():
    if shutil.which("tmux") is None:
        raise Skip("tmux is not installed (deploy/bootstrap.sh test installs it)")
    with Cluster(workers=1, latency_ms=200, credit=16, name="status-watch") as c:
        c.start()
        for width, height in ((120, 40), (80, 24)):
            run = c.submit(c.write(f"s{width}.yaml", demo_like_spec(f"watch{width}", PROMPTS, seed=width)))
            screens, final = watch_in_tmux(c, run, width, height)
            live = check_screens(run, screens, final, width, height)
            # the emotions collapse to the slowest few; 5 sources all shown
            mid = live[len(live) // 2]
            assert any(ln.startswith("emotions, slowest first (8 of 32; --emotions shows all)") for ln in mid), \
                "\n".join(mid)
            for src in ("human", "fake-warm", "fake-formal", "fake-brief", "fake-curious"):
                assert any(ln.split() and ln.split()[0] == src for ln in mid), f"{src} missing:\n" + "\n".join(mid)
            print("   a frame at %dx%d:\n      " % (width, height) + "\n      ".join(mid), file=sys.stderr)
            c.wait_responses(run)
        # --emotions: all 32 at 120x40 (in columns)
        run = c.submit(c.write("all.yaml", demo_like_spec("watchall", PROMPTS, seed=3)))
        screens, final = watch_in_tmux(c, run, 120, 40, extra=["--emotions"])
        live = check_screens(run, screens, final, 120, 40)
        assert any(any(ln.startswith("emotions, slowest first (32 of 32)") for ln in s) for s in live), \
            "\n".join(live[-1])
        c.wait_responses(run)
        # Ctrl-C in the middle: the watch ends (exit 0) and leaves its last frame once, not at 100%
        run = c.submit(c.write("int.yaml", demo_like_spec("watchint", PROMPTS, seed=5)))
        screens, final = watch_in_tmux(c, run, 80, 24, interrupt_after=4)
        heads = [ln for ln in final if ln.startswith(f"run {run}")]
        assert len(heads) == 1 and "100.0%" not in heads[0], "\n".join(final)
        assert not [ln for ln in final if len(ln) > 80], "\n".join(final)
        print(f"   Ctrl-C: the last frame once: {heads[0]!r}", file=sys.stderr)
        c.wait_responses(run)


if __name__ == "__main__":
    main(test_watch_in_tmux)
