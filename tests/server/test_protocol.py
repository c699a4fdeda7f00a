"""Protocol tests for `llama-cxx serve`: every endpoint, streaming and not, errors, auth,
prefix reuse, queue limits, client disconnects and shutdown. Standard library only.
Usage: test_protocol.py path/to/llama-cxx"""

import base64
import json
import re
import socket
import struct
import time
import unittest

from server_harness import Server, binary_from_argv, stream_text

BINARY = None


def greedy(**kw):
    body = {"temperature": 0, "max_tokens": 24}
    body.update(kw)
    return body


def assert_error(tc, status, body, want_status, param=None):
    tc.assertEqual(status, want_status, body)
    tc.assertIsInstance(body, dict, body)
    err = body["error"]
    tc.assertIsInstance(err["message"], str)
    tc.assertTrue(err["message"])
    tc.assertIn("type", err)
    tc.assertIn("code", err)
    tc.assertIn("param", err)
    if param is not None:
        tc.assertEqual(err["param"], param, body)


class Endpoints(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = Server(BINARY, "--parallel", "2")

    @classmethod
    def tearDownClass(cls):
        rc = cls.srv.stop()
        if rc != 0:
            raise AssertionError("server exit code %r\n%s" % (rc, "".join(cls.srv.log)))

    def test_health_and_models(self):
        status, body, _ = self.srv.request("GET", "/health")
        self.assertEqual((status, body["status"]), (200, "ok"))
        status, body, _ = self.srv.request("GET", "/v1/models")
        self.assertEqual(status, 200)
        self.assertEqual(body["object"], "list")
        self.assertEqual(body["data"][0]["id"], "stories260K")
        self.assertEqual(body["data"][0]["object"], "model")
        status, body, _ = self.srv.request("GET", "/v1/models/stories260K")
        self.assertEqual((status, body["id"]), (200, "stories260K"))
        status, body, _ = self.srv.request("GET", "/v1/models/gpt-9")
        assert_error(self, status, body, 404)

    def test_completion(self):
        status, body, _ = self.srv.request("POST", "/v1/completions",
                                           greedy(prompt="Once upon a time", max_tokens=10))
        self.assertEqual(status, 200, body)
        self.assertEqual(body["object"], "text_completion")
        self.assertTrue(body["id"].startswith("cmpl-"))
        choice = body["choices"][0]
        self.assertEqual(choice["finish_reason"], "length")
        self.assertTrue(choice["text"])
        u = body["usage"]
        self.assertEqual(u["completion_tokens"], 10)
        self.assertEqual(u["prompt_tokens"], 5)  # BOS + 4 words, as /tokenize says
        self.assertEqual(u["total_tokens"], 15)
        # Greedy is deterministic, and a token-array prompt is the same prompt.
        _, tok, _ = self.srv.request("POST", "/tokenize",
                                     {"content": "Once upon a time", "add_special": True})
        _, again, _ = self.srv.request("POST", "/v1/completions",
                                       greedy(prompt=tok["tokens"], max_tokens=10))
        self.assertEqual(again["choices"][0]["text"], choice["text"])
        self.assertEqual(len(tok["tokens"]), 5)

    def test_completion_stream_matches_plain(self):
        req = greedy(prompt="The little dog", max_tokens=30)
        _, plain, _ = self.srv.request("POST", "/v1/completions", req)
        status, events = self.srv.stream("/v1/completions", dict(req, stream=True))
        self.assertEqual(status, 200)
        self.assertEqual(events[-1], "[DONE]")
        chunks = events[:-1]
        for c in chunks:
            self.assertEqual(c["object"], "text_completion")
            self.assertEqual(c["id"], chunks[0]["id"])
        self.assertEqual(chunks[-1]["choices"][0]["finish_reason"], "length")
        self.assertTrue(all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1]))
        self.assertGreater(len(chunks), 2)  # really streamed, not one blob
        self.assertEqual(stream_text(events, chat=False), plain["choices"][0]["text"])

    def test_chat(self):
        req = greedy(messages=[{"role": "system", "content": "You tell stories."},
                               {"role": "user", "content": "Tell me about a cat."}],
                     model="anything")
        status, body, _ = self.srv.request("POST", "/v1/chat/completions", req)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["object"], "chat.completion")
        msg = body["choices"][0]["message"]
        self.assertEqual(msg["role"], "assistant")
        self.assertTrue(msg["content"])
        self.assertIn(body["choices"][0]["finish_reason"], ("stop", "length"))
        u = body["usage"]
        self.assertEqual(u["total_tokens"], u["prompt_tokens"] + u["completion_tokens"])

        status, events = self.srv.stream("/v1/chat/completions",
                                         dict(req, stream=True,
                                              stream_options={"include_usage": True}))
        self.assertEqual(status, 200)
        self.assertEqual(events[-1], "[DONE]")
        self.assertEqual(events[0]["choices"][0]["delta"]["role"], "assistant")
        for e in events[:-1]:
            self.assertEqual(e["object"], "chat.completion.chunk")
        usage_chunk = events[-2]
        self.assertEqual(usage_chunk["choices"], [])
        self.assertEqual(usage_chunk["usage"]["completion_tokens"], u["completion_tokens"])
        final = events[-3]["choices"][0]
        self.assertEqual(final["finish_reason"], body["choices"][0]["finish_reason"])
        self.assertEqual(final["delta"], {})
        self.assertEqual(stream_text(events, chat=True), msg["content"])

    def test_content_parts_and_developer_role(self):
        a = greedy(messages=[{"role": "developer", "content": "Be brief."},
                             {"role": "user", "content": [{"type": "text", "text": "Hi "},
                                                          {"type": "text", "text": "there"}]}])
        b = greedy(messages=[{"role": "system", "content": "Be brief."},
                             {"role": "user", "content": "Hi there"}])
        _, ra, _ = self.srv.request("POST", "/v1/chat/completions", a)
        _, rb, _ = self.srv.request("POST", "/v1/chat/completions", b)
        self.assertEqual(ra["choices"][0]["message"], rb["choices"][0]["message"])

    def test_stop_strings(self):
        req = greedy(prompt="Once upon a time", max_tokens=40)
        _, full, _ = self.srv.request("POST", "/v1/completions", req)
        text = full["choices"][0]["text"]
        stop = text[12:16]
        self.assertEqual(len(stop), 4)
        want = text[:text.index(stop)]
        for s in (stop, [stop, "zzzz-not-there"]):
            _, cut, _ = self.srv.request("POST", "/v1/completions", dict(req, stop=s))
            self.assertEqual(cut["choices"][0]["text"], want)
            self.assertEqual(cut["choices"][0]["finish_reason"], "stop")
            _, events = self.srv.stream("/v1/completions", dict(req, stop=s, stream=True))
            self.assertEqual(stream_text(events, chat=False), want)

    def test_sampling_options_and_seed(self):
        req = {"prompt": "Once upon a time", "max_tokens": 20, "temperature": 1.0,
               "top_p": 0.9, "top_k": 20, "min_p": 0.01, "typical_p": 0.95,
               "repeat_penalty": 1.1, "presence_penalty": 0.5, "frequency_penalty": 0.5,
               "seed": 1234}
        _, a, _ = self.srv.request("POST", "/v1/completions", req)
        _, b, _ = self.srv.request("POST", "/v1/completions", req)
        self.assertEqual(a["choices"][0]["text"], b["choices"][0]["text"])
        texts = set()
        for seed in range(5):
            _, c, _ = self.srv.request("POST", "/v1/completions", dict(req, seed=seed))
            texts.add(c["choices"][0]["text"])
        self.assertGreater(len(texts), 1)  # the seed matters

    def test_tokenize_detokenize(self):
        status, body, _ = self.srv.request("POST", "/tokenize", {"content": "Hello world"})
        self.assertEqual(status, 200)
        ids = body["tokens"]
        self.assertTrue(all(isinstance(i, int) for i in ids))
        status, body, _ = self.srv.request("POST", "/detokenize", {"tokens": ids})
        self.assertEqual((status, body["content"]), (200, "Hello world"))
        _, body, _ = self.srv.request("POST", "/tokenize",
                                      {"content": "Hello", "with_pieces": True})
        self.assertEqual("".join(t["piece"] for t in body["tokens"]).strip(), "Hello")
        status, body, _ = self.srv.request("POST", "/detokenize", {"tokens": [1, 99999]})
        assert_error(self, status, body, 400, "tokens")

    def test_metrics(self):
        self.srv.request("POST", "/v1/completions", greedy(prompt="A", max_tokens=3))
        status, text, headers = self.srv.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(headers["Content-Type"].startswith("text/plain"))
        for name in ("requests_total", "prompt_tokens_total", "generated_tokens_total",
                     "generated_tokens_per_second", "queue_depth", "slots_busy",
                     "slots_total"):
            self.assertRegex(text, r"(?m)^# TYPE llamacxx_%s " % name)
        m = re.search(r'(?m)^llamacxx_requests_total\{route="/v1/completions",status="200"\} (\d+)',
                      text)
        self.assertIsNotNone(m)
        self.assertGreaterEqual(int(m.group(1)), 1)
        self.assertRegex(text, r"(?m)^llamacxx_slots_total 2$")
        gen = float(re.search(r"(?m)^llamacxx_generated_tokens_total (\S+)$", text).group(1))
        self.assertGreaterEqual(gen, 3)

    def test_embeddings(self):
        def embed(inp, **kw):
            body = {"input": inp, "model": "stories260K"}
            body.update(kw)
            status, resp, _ = self.srv.request("POST", "/v1/embeddings", body)
            self.assertEqual(status, 200, resp)
            return resp

        one = embed("Once upon a time")
        self.assertEqual(one["object"], "list")
        self.assertEqual(one["model"], "stories260K")
        self.assertEqual(len(one["data"]), 1)
        item = one["data"][0]
        self.assertEqual((item["object"], item["index"]), ("embedding", 0))
        vec = item["embedding"]
        self.assertEqual(len(vec), 64)  # stories260K's n_embd
        self.assertAlmostEqual(sum(x * x for x in vec), 1.0, places=4)
        _, toks, _ = self.srv.request("POST", "/tokenize",
                                      {"content": "Once upon a time", "add_special": True})
        n = len(toks["tokens"])
        self.assertEqual(one["usage"], {"prompt_tokens": n, "total_tokens": n})

        # A batch: each input pooled on its own, in order; the same text gives the same
        # vector, another text another one; token arrays are inputs too.
        many = embed(["Once upon a time", "The dog ran to the park.", toks["tokens"]])
        self.assertEqual([d["index"] for d in many["data"]], [0, 1, 2])
        v0, v1, v2 = (d["embedding"] for d in many["data"])
        self.assertEqual(v0, vec)
        self.assertEqual(v2, vec)
        self.assertGreater(max(abs(a - b) for a, b in zip(v0, v1)), 1e-3)
        self.assertEqual(embed(toks["tokens"])["data"][0]["embedding"], vec)

        # base64: the same float32 values, little-endian.
        b64 = embed("Once upon a time", encoding_format="base64")["data"][0]["embedding"]
        raw = base64.b64decode(b64)
        self.assertEqual(len(raw), 4 * 64)
        floats = struct.unpack("<64f", raw)
        self.assertLess(max(abs(a - b) for a, b in zip(floats, vec)), 1e-6)

    def test_embeddings_errors(self):
        cases = [
            ({}, "input"),
            ({"input": 5}, "input"),
            ({"input": None}, "input"),
            ({"input": {"text": "x"}}, "input"),
            ({"input": []}, "input"),
            ({"input": ["ok", 7]}, "input"),
            ({"input": [1, "x"]}, "input"),
            ({"input": [1, 100000]}, "input"),
            ({"input": ["ok", [1, -2]]}, "input[1]"),
            ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
            ({"input": "x", "dimensions": 3}, "dimensions"),
            ({"input": "x", "model": 3}, "model"),
        ]
        for body, param in cases:
            with self.subTest(body=body):
                status, resp, _ = self.srv.request("POST", "/v1/embeddings", body)
                assert_error(self, status, resp, 400, param)
        status, resp, _ = self.srv.request("POST", "/v1/embeddings", b"{not json", raw=True)
        assert_error(self, status, resp, 400)
        # The server still answers afterwards.
        status, resp, _ = self.srv.request("POST", "/v1/embeddings", {"input": "x"})
        self.assertEqual(status, 200, resp)

    def test_errors(self):
        status, body, _ = self.srv.request("GET", "/nope")
        assert_error(self, status, body, 404)
        cases = [
            ("/v1/completions", {"prompt": "x", "n": 2}, "n"),
            ("/v1/completions", {"prompt": "x", "logprobs": 2}, "logprobs"),
            ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                      "response_format": {"type": "json_object"}},
             "response_format"),
            ("/v1/chat/completions", {"messages": []}, "messages"),
            ("/v1/chat/completions", {"messages": [{"role": "wizard", "content": "x"}]},
             "messages[0].role"),
            ("/v1/completions", {}, "prompt"),
            ("/v1/completions", {"prompt": "x", "top_p": 3}, "top_p"),
            ("/v1/completions", {"prompt": [1, -5]}, "prompt"),
        ]
        for path, body, param in cases:
            with self.subTest(param=param):
                status, resp, _ = self.srv.request("POST", path, body)
                assert_error(self, status, resp, 400, param)

    def test_prefix_reuse(self):
        conv = [{"role": "user", "content": "Tell me a story about a red ball."}]
        _, first, _ = self.srv.request("POST", "/v1/chat/completions", greedy(messages=conv))
        answer = first["choices"][0]["message"]["content"]
        conv2 = conv + [{"role": "assistant", "content": answer},
                        {"role": "user", "content": "And then?"}]
        _, second, _ = self.srv.request("POST", "/v1/chat/completions", greedy(messages=conv2))
        u1, u2 = first["usage"], second["usage"]
        # The follow-up re-reads only what the first turn's cache does not hold.
        self.assertGreaterEqual(u2["prompt_tokens_details"]["cached_tokens"],
                                u1["prompt_tokens"] - 2)
        # The same request again: everything but the last prompt token comes from cache,
        # and the answer does not change.
        _, third, _ = self.srv.request("POST", "/v1/chat/completions", greedy(messages=conv2))
        self.assertEqual(third["usage"]["prompt_tokens_details"]["cached_tokens"],
                         u2["prompt_tokens"] - 1)
        self.assertEqual(third["choices"][0]["message"], second["choices"][0]["message"])


class Limits(unittest.TestCase):
    def test_embeddings_leave_slots_alone(self):
        srv = Server(BINARY, "-c", "64", "--parallel", "1")
        try:
            conv = {"messages": [{"role": "user", "content": "A red ball."}],
                    "temperature": 0, "max_tokens": 8}
            _, first, _ = srv.request("POST", "/v1/chat/completions", conv)
            status, resp, _ = srv.request("POST", "/v1/embeddings",
                                          {"input": ["Once upon a time", "Lily"]})
            self.assertEqual(status, 200, resp)
            # Longer than the slot's context: 400 naming the input.
            status, resp, _ = srv.request("POST", "/v1/embeddings",
                                          {"input": ["x", " ".join(["time"] * 100)]})
            assert_error(self, status, resp, 400, "input[1]")
            # The only slot's cache still holds the conversation.
            _, again, _ = srv.request("POST", "/v1/chat/completions", conv)
            self.assertEqual(again["usage"]["prompt_tokens_details"]["cached_tokens"],
                             first["usage"]["prompt_tokens"] - 1)
            self.assertEqual(again["choices"][0]["message"], first["choices"][0]["message"])
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_context_overflow_is_400(self):
        srv = Server(BINARY, "-c", "64")
        try:
            status, body, _ = srv.request("POST", "/v1/completions",
                                          {"prompt": "word " * 200, "max_tokens": 4})
            assert_error(self, status, body, 400, "prompt")
            self.assertEqual(body["error"]["code"], "context_length_exceeded")
            # Generation that runs into the end of the context stops with "length".
            status, body, _ = srv.request("POST", "/v1/completions",
                                          {"prompt": "Once upon a time", "max_tokens": 500,
                                           "temperature": 0})
            self.assertEqual(status, 200, body)
            if body["choices"][0]["finish_reason"] == "length":
                self.assertLessEqual(body["usage"]["total_tokens"], 65)
            self.assertEqual(srv.request("GET", "/health")[0], 200)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_queue_full_and_disconnect_frees_slot(self):
        srv = Server(BINARY, "--parallel", "1", "--queue-size", "0")
        try:
            long_req = {"prompt": "Once upon a time", "max_tokens": 100000, "temperature": 1.0,
                        "seed": 7, "stream": True}
            # A raw socket, so the test decides when the client disappears.
            sock = socket.create_connection(("127.0.0.1", srv.port), timeout=30)
            body = json.dumps(long_req).encode()
            sock.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                         % len(body) + body)
            got = sock.recv(4096)
            self.assertIn(b"200", got.split(b"\r\n")[0])
            status, resp, headers = srv.request("POST", "/v1/completions",
                                                {"prompt": "x", "max_tokens": 2})
            assert_error(self, status, resp, 503)
            self.assertIn("Retry-After", headers)
            sock.close()  # mid-stream disconnect
            for _ in range(100):  # bounded: 10 s
                _, text, _ = srv.request("GET", "/metrics")
                if re.search(r"(?m)^llamacxx_slots_busy 0$", text):
                    break
                time.sleep(0.1)
            else:
                self.fail("the slot was not freed after the client went away")
            status, resp, _ = srv.request("POST", "/v1/completions",
                                          {"prompt": "x", "max_tokens": 2})
            self.assertEqual(status, 200, resp)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_auth(self):
        srv = Server(BINARY, api_key="sekret")
        try:
            self.assertEqual(srv.request("GET", "/health", headers={"Authorization": ""})[0], 200)
            for hdr in ({"Authorization": ""}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "sekret"}):
                for method, path, body in (("GET", "/v1/models", None),
                                           ("POST", "/v1/completions", {"prompt": "x"}),
                                           ("GET", "/metrics", None)):
                    status, resp, _ = srv.request(method, path, body, headers=hdr)
                    assert_error(self, status, resp, 401)
            status, resp, _ = srv.request("GET", "/v1/models")  # sends the right key
            self.assertEqual(status, 200)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_shutdown_ends_streams_and_exits_0(self):
        srv = Server(BINARY, "--shutdown-grace", "0.2")
        conn = srv.connection(30)
        conn.request("POST", "/v1/completions",
                     body=json.dumps({"prompt": "Once upon a time", "max_tokens": 100000,
                                      "temperature": 1.0, "stream": True}),
                     headers=srv.headers())
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        resp.read1(1)  # the stream has started
        self.assertEqual(srv.stop(), 0)
        rest = resp.read().decode("utf-8", "replace")  # ends instead of hanging
        self.assertTrue(rest.endswith("data: [DONE]\n\n"), rest[-200:])
        conn.close()

    def test_bad_flags(self):
        import subprocess
        r = subprocess.run([BINARY, "serve", "--parallel", "0", "--port", "0"],
                           capture_output=True, text=True, timeout=30)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("--parallel", r.stderr)


if __name__ == "__main__":
    BINARY = binary_from_argv()
    unittest.main(verbosity=2)
