"""Abuse: malformed and hostile requests each get a 4xx with an OpenAI-style JSON error
naming the field, and the server stays healthy afterwards. Every loop is bounded.
Usage: test_abuse.py path/to/llama-cxx"""

import http.client
import json
import socket
import time
import unittest

from server_harness import Server, binary_from_argv

BINARY = None

CHAT = "/v1/chat/completions"
COMP = "/v1/completions"
MSG = [{"role": "user", "content": "hi"}]


class Abuse(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(BINARY, "--parallel", "2", "--max-body", "1000000")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit code %r\n%s" % (rc, "".join(cls.srv.log)))

    def assert_healthy(self):
        status, body, _ = self.srv.request("GET", "/health")
        self.assertEqual((status, body), (200, {"status": "ok"}))

    def assert_error(self, status, body, want_status, param=None):
        self.assertEqual(status, want_status, body)
        self.assertIsInstance(body, dict, body)
        e = body["error"]
        self.assertTrue(e["message"])
        self.assertTrue(e["type"])
        if param is not None:
            self.assertEqual(e["param"], param, body)

    def test_malformed_json(self):
        for raw in (b"{", b"not json", b"", b"[1,2,3]", b"null", b'{"prompt": "x",}',
                    b'{"prompt": "\\ud800"}x'):
            for path in (COMP, CHAT, "/tokenize", "/detokenize", "/v1/embeddings"):
                with self.subTest(path=path, raw=raw):
                    status, body, _ = self.srv.request("POST", path, raw, raw=True)
                    self.assert_error(status, body, 400)
        self.assert_healthy()

    def test_wrong_types(self):
        cases = [
            (COMP, {"prompt": 7}, "prompt"),
            (COMP, {"prompt": {"a": 1}}, "prompt"),
            (COMP, {"prompt": ["a", "b"]}, "prompt"),
            (COMP, {"prompt": [1.5]}, "prompt"),
            (CHAT, {"messages": "hello"}, "messages"),
            (CHAT, {"messages": ["hello"]}, "messages[0]"),
            (CHAT, {"messages": [{"role": "user"}]}, "messages[0].content"),
            (CHAT, {"messages": [{"content": "x"}]}, "messages[0].role"),
            (CHAT, {"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
            (CHAT, {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
             "messages[0].content[0].type"),
            (CHAT, {}, "messages"),
            (CHAT, {"messages": MSG, "max_tokens": -1}, "max_tokens"),
            (CHAT, {"messages": MSG, "max_tokens": "many"}, "max_tokens"),
            (CHAT, {"messages": MSG, "max_tokens": 1.5}, "max_tokens"),
            (CHAT, {"messages": MSG, "max_completion_tokens": 0}, "max_completion_tokens"),
            (CHAT, {"messages": MSG, "temperature": "hot"}, "temperature"),
            (CHAT, {"messages": MSG, "temperature": -1}, "temperature"),
            (CHAT, {"messages": MSG, "temperature": True}, "temperature"),
            (CHAT, {"messages": MSG, "stop": 7}, "stop"),
            (CHAT, {"messages": MSG, "stop": [7]}, "stop"),
            (CHAT, {"messages": MSG, "stop": [""]}, "stop"),
            (CHAT, {"messages": MSG, "stream": "yes"}, "stream"),
            (CHAT, {"messages": MSG, "seed": "abc"}, "seed"),
            (CHAT, {"messages": MSG, "top_k": -3}, "top_k"),
            (CHAT, {"messages": MSG, "min_p": 2}, "min_p"),
            (CHAT, {"messages": MSG, "n": 3}, "n"),
            (CHAT, {"messages": MSG, "model": 5}, "model"),
            (CHAT, {"messages": MSG, "stream_options": 1}, "stream_options"),
            (COMP, {"prompt": "x", "presence_penalty": 9}, "presence_penalty"),
            (COMP, {"prompt": "x", "frequency_penalty": "a"}, "frequency_penalty"),
            (COMP, {"prompt": "x", "max_tokens": 1e300}, "max_tokens"),
            ("/tokenize", {"content": 5}, "content"),
            ("/tokenize", {"content": "x", "add_special": "no"}, "add_special"),
            ("/detokenize", {"tokens": "abc"}, "tokens"),
            ("/detokenize", {"tokens": [-1]}, "tokens"),
        ]
        for path, body, param in cases:
            for stream in (False, True):
                with self.subTest(path=path, body=body, stream=stream):
                    if stream and path in (COMP, CHAT) and "stream" not in body:
                        body = dict(body, stream=True)
                    status, resp, _ = self.srv.request("POST", path, body)
                    self.assert_error(status, resp, 400, param)
        self.assert_healthy()

    def test_invalid_utf8(self):
        # Raw bytes that are not UTF-8, inside a JSON string: not valid JSON text.
        for path in (COMP, CHAT, "/tokenize"):
            status, body, _ = self.srv.request(
                "POST", path, b'{"prompt": "\xff\xfe abc", "content": "\xc3\x28"}', raw=True)
            self.assert_error(status, body, 400)
        # Lone surrogates escaped in JSON decode to invalid UTF-8 inside strings.
        status, body, _ = self.srv.request("POST", COMP, b'{"prompt": "\\udc80 x", "max_tokens": 3}',
                                           raw=True)
        self.assertIn(status, (200, 400), body)
        # Byte tokens that detokenize to invalid UTF-8 are replaced, not a crash.
        status, body, _ = self.srv.request("POST", "/detokenize", {"tokens": list(range(3, 40))})
        self.assertEqual(status, 200, body)
        status, body, _ = self.srv.request("POST", COMP, {"prompt": list(range(3, 40)),
                                                          "max_tokens": 5})
        self.assertEqual(status, 200, body)
        self.assert_healthy()

    def test_huge_bodies(self):
        big = b'{"prompt": "' + b"a" * (3 << 20) + b'"}'
        for path in (COMP, CHAT, "/tokenize", "/nope"):
            with self.subTest(path=path):
                status, body, _ = self.srv.request("POST", path, big, raw=True)
                self.assert_error(status, body, 413)
        # Under the limit but far beyond the context: 400, not a crash.
        status, body, _ = self.srv.request("POST", COMP, {"prompt": "word " * 150000})
        self.assert_error(status, body, 400, "prompt")
        self.assert_healthy()

    def test_unknown_routes_and_methods(self):
        for method, path in (("GET", "/v1/chat/completions"), ("DELETE", "/v1/models"),
                             ("GET", "/v2/anything"), ("POST", "/health")):
            with self.subTest(method=method, path=path):
                status, body, _ = self.srv.request(method, path)
                self.assertGreaterEqual(status, 400)
                self.assertLess(status, 500)
                self.assertIn("error", body)
        self.assert_healthy()

    def test_rapid_disconnects(self):
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": 2000,
                           "temperature": 1.0, "stream": True}).encode()
        req = (b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body)) + body
        for i in range(200):
            s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
            if i % 3 == 0:
                s.sendall(req[: len(req) // 2])  # gone before the body is complete
            else:
                s.sendall(req)
                if i % 3 == 1:
                    s.recv(64)  # gone mid-stream
            s.close()
        self.assert_healthy()
        # Every abandoned stream ends and frees its slot (bounded wait: 20 s).
        for _ in range(200):
            _, text, _ = self.srv.request("GET", "/metrics")
            if "llamacxx_slots_busy 0\n" in text and "llamacxx_queue_depth 0\n" in text:
                break
            time.sleep(0.1)
        else:
            self.fail("slots stayed busy after the clients went away")
        status, body, _ = self.srv.request("POST", COMP, {"prompt": "x", "max_tokens": 3})
        self.assertEqual(status, 200, body)

    def test_bad_request_line(self):
        s = socket.create_connection(("127.0.0.1", self.srv.port), timeout=30)
        s.sendall(b"GARBAGE\r\n\r\n")
        s.recv(4096)  # whatever the answer, the connection is served and closed
        s.close()
        self.assert_healthy()


if __name__ == "__main__":
    BINARY = binary_from_argv()
    unittest.main(verbosity=2)
