#!/usr/bin/env python3
"""Load benchmark for `llama-cxx serve` (not a test): N concurrent clients send
/v1/completions requests back to back; reports requests/s, generated tokens/s and
p50/p99 latency per (slots, clients) pair. Starts its own server on a free loopback port
unless --url is given. Standard library only.

  tools/load_test.py --binary build/llama-cxx --slots 1 4 --clients 1 4 8
"""

import argparse
import http.client
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse

PROMPTS = ["Once upon a time", "The little dog", "Lily and Tom went to the park",
           "One day, a big bear", "Mom said", "The sun was hot and", "Tim had a red ball.",
           "There was a tree"]


def start_server(binary, slots, threads, ctx):
    cmd = [binary, "serve", "--host", "127.0.0.1", "--port", "0", "--parallel", str(slots),
           "-c", str(ctx)]
    if threads:
        cmd += ["-t", str(threads)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    for line in proc.stderr:
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if m:
            threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
            return proc, "http://127.0.0.1:" + m.group(1)
    raise RuntimeError("server did not start")


def wait_ready(url):
    u = urllib.parse.urlparse(url)
    for _ in range(200):
        try:
            c = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError("server not healthy")


def run(url, clients, requests_per_client, max_tokens, api_key):
    u = urllib.parse.urlparse(url)
    lat, toks, errors = [], [], []
    lock = threading.Lock()

    def client(k):
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=600)
        headers = {"Content-Type": "application/json"}
        if api_key:
            headers["Authorization"] = "Bearer " + api_key
        for i in range(requests_per_client):
            body = {"prompt": PROMPTS[(k + i) % len(PROMPTS)], "max_tokens": max_tokens,
                    "temperature": 0.8, "seed": k * 1000 + i}
            t0 = time.perf_counter()
            conn.request("POST", "/v1/completions", json.dumps(body), headers)
            r = conn.getresponse()
            data = json.loads(r.read())
            dt = time.perf_counter() - t0
            with lock:
                if r.status != 200:
                    errors.append(data)
                else:
                    lat.append(dt)
                    toks.append(data["usage"]["completion_tokens"])
        conn.close()

    t0 = time.perf_counter()
    ts = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    wall = time.perf_counter() - t0
    lat.sort()
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] if lat else float("nan")
    return {"requests": len(lat), "errors": len(errors), "wall_s": wall,
            "req_per_s": len(lat) / wall, "tok_per_s": sum(toks) / wall,
            "p50_ms": 1000 * p(0.50), "p99_ms": 1000 * p(0.99)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", default="build/llama-cxx")
    ap.add_argument("--url", help="an already running server (then --slots is ignored)")
    ap.add_argument("--api-key")
    ap.add_argument("--slots", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 4, 8])
    ap.add_argument("--requests", type=int, default=8, help="requests per client")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--threads", type=int, default=0, help="server -t (0: its default)")
    ap.add_argument("--ctx", type=int, default=512, help="server -c (per slot)")
    a = ap.parse_args()

    print("| slots | clients | requests | req/s | gen tok/s | p50 ms | p99 ms |")
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for slots in ([0] if a.url else a.slots):
        proc = None
        url = a.url
        if not url:
            proc, url = start_server(a.binary, slots, a.threads, a.ctx)
        try:
            wait_ready(url)
            run(url, 1, 1, 8, a.api_key)  # warm-up
            for c in a.clients:
                r = run(url, c, a.requests, a.max_tokens, a.api_key)
                print("| %s | %d | %d%s | %.2f | %.0f | %.0f | %.0f |" % (
                    slots or "?", c, r["requests"],
                    " (%d errors)" % r["errors"] if r["errors"] else "",
                    r["req_per_s"], r["tok_per_s"], r["p50_ms"], r["p99_ms"]), flush=True)
        finally:
            if proc:
                proc.send_signal(signal.SIGTERM)
                proc.wait(timeout=60)


if __name__ == "__main__":
    sys.exit(main())
