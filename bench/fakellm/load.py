"""Load generator for empq-fakellm: one thread, non-blocking sockets.

    python3 bench/fakellm/load.py --port P --connections 2000 --requests 1
    python3 bench/fakellm/load.py --port P --connections 64 --requests 500

Opens --connections keep-alive connections, sends --requests chat requests on
each, one after the other, all connections at once; prints requests, wall
time, requests/s, latency percentiles and the server's /stats. Stdlib only.
"""

import argparse
import json
import resource
import selectors
import socket
import sys
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=1, help="per connection")
    ap.add_argument("--model", default="fake-warm")
    a = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    base = "http://127.0.0.1:%d" % a.port
    urllib.request.urlopen(urllib.request.Request(base + "/stats/reset", data=b"", method="POST")).read()

    body = json.dumps({"model": a.model, "messages": [{"role": "user", "content": "My dog died last week."}]})
    req = ("POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           "Content-Length: %d\r\n\r\n%s" % (len(body), body)).encode()

    sel = selectors.DefaultSelector()
    state = {}
    for _ in range(a.connections):
        s = socket.create_connection(("127.0.0.1", a.port))
        s.setblocking(False)
        state[s] = {"left": a.requests, "buf": b"", "sent_at": 0.0}
    lat = []
    t0 = time.monotonic()
    for s, st in state.items():
        s.send(req)
        st["sent_at"] = time.monotonic()
        sel.register(s, selectors.EVENT_READ)
    open_ = len(state)
    errors = 0
    while open_:
        for key, _ in sel.select(timeout=60):
            s = key.fileobj
            st = state[s]
            data = s.recv(65536)
            if not data:
                errors += 1
                sel.unregister(s)
                s.close()
                open_ -= 1
                continue
            st["buf"] += data
            head, sep, rest = st["buf"].partition(b"\r\n\r\n")
            if not sep:
                continue
            length = 0
            for line in head.split(b"\r\n")[1:]:
                k, _, v = line.partition(b":")
                if k.strip().lower() == b"content-length":
                    length = int(v)
            if len(rest) < length:
                continue
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
            lat.append(time.monotonic() - st["sent_at"])
            st["buf"] = rest[length:]
            st["left"] -= 1
            if st["left"] == 0:
                sel.unregister(s)
                s.close()
                open_ -= 1
            else:
                s.send(req)
                st["sent_at"] = time.monotonic()
    wall = time.monotonic() - t0
    lat.sort()
    stats = json.loads(urllib.request.urlopen(base + "/stats").read())

    def pct(p):
        return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000 if lat else 0

    print("requests=%d errors=%d wall_s=%.3f rps=%.0f p50_ms=%.1f p99_ms=%.1f max_ms=%.1f max_in_flight=%d"
          % (len(lat), errors, wall, len(lat) / wall, pct(0.5), pct(0.99), pct(1.0), stats["max_in_flight"]))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
