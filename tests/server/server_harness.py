"""Starts `llama-cxx serve` on a free loopback port and talks to it with the standard
library only. Every test script uses one of these; the server is always stopped (SIGTERM,
then SIGKILL after a bounded wait) when the test ends."""

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

HOST = "127.0.0.1"


def binary_from_argv():
    if len(sys.argv) < 2:
        sys.exit("usage: %s path/to/llama-cxx" % sys.argv[0])
    path = sys.argv.pop(1)
    if not os.access(path, os.X_OK):
        sys.exit("not an executable: " + path)
    return path


class Server:
    def __init__(self, binary, *args, api_key=None):
        self.api_key = api_key
        cmd = [binary, "serve", "--port", "0", "--host", HOST, "-t", "1", *args]
        if api_key:
            cmd += ["--api-key", api_key]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self.log = []
        self.port = None
        deadline = time.monotonic() + 30
        # The server logs its port first; keep reading stderr afterwards on a thread so
        # the pipe never fills up.
        while self.port is None:
            line = self.proc.stderr.readline()
            if not line:
                raise RuntimeError("server exited before listening: " + "".join(self.log))
            self.log.append(line)
            m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
            if time.monotonic() > deadline:
                raise RuntimeError("server did not start")
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()
        for _ in range(300):
            status, _, _ = self.request("GET", "/health")
            if status == 200:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("server never became healthy")

    def _drain(self):
        for line in self.proc.stderr:
            self.log.append(line)

    def connection(self, timeout=60):
        return http.client.HTTPConnection(HOST, self.port, timeout=timeout)

    def headers(self, extra=None):
        h = {"Content-Type": "application/json"}
        if self.api_key:
            h["Authorization"] = "Bearer " + self.api_key
        h.update(extra or {})
        return h

    def request(self, method, path, body=None, headers=None, raw=False, timeout=60):
        """Returns (status, parsed JSON or text, response headers)."""
        conn = self.connection(timeout)
        try:
            if body is not None and not raw:
                body = json.dumps(body)
            conn.request(method, path, body=body, headers=self.headers(headers))
            resp = conn.getresponse()
            data = resp.read()
            ctype = resp.getheader("Content-Type", "")
            if ctype.startswith("application/json"):
                return resp.status, json.loads(data), dict(resp.getheaders())
            return resp.status, data.decode("utf-8", "replace"), dict(resp.getheaders())
        finally:
            conn.close()

    def stream(self, path, body, headers=None, timeout=60):
        """Posts a streaming request; returns (status, list of decoded `data:` payloads,
        with the literal "[DONE]" kept as a string)."""
        conn = self.connection(timeout)
        try:
            conn.request("POST", path, body=json.dumps(body), headers=self.headers(headers))
            resp = conn.getresponse()
            if resp.status != 200:
                return resp.status, [json.loads(resp.read())]
            assert resp.getheader("Content-Type", "").startswith("text/event-stream")
            events = []
            for raw in resp.read().decode("utf-8").split("\n\n"):
                if not raw.strip():
                    continue
                assert raw.startswith("data: "), raw
                payload = raw[len("data: "):]
                events.append(payload if payload == "[DONE]" else json.loads(payload))
            return resp.status, events
        finally:
            conn.close()

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit code (SIGKILL if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                return None
            finally:
                self._drainer.join(timeout=5)
                self.proc.stderr.close()
        return self.proc.returncode


def stream_text(events, chat):
    """Concatenated text of a stream's chunks."""
    out = []
    for e in events:
        if e == "[DONE]" or not e.get("choices"):
            continue
        c = e["choices"][0]
        out.append((c["delta"].get("content") or "") if chat else c["text"])
    return "".join(out)
