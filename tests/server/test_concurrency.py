"""Continuous batching must not change results: 8 simultaneous streamed greedy requests
with different prompts (one of them long enough to be read in several chunks) each
return exactly the text the same request gives when it runs alone. Correctness only;
throughput is measured by tools/load_test.py. Usage: test_concurrency.py path/to/llama-cxx"""

import re
import threading
import unittest

from server_harness import Server, binary_from_argv, stream_text

BINARY = None

PROMPTS = [
    "Once upon a time",
    "The little dog",
    "Lily and Tom went to the park",
    "One day, a big bear",
    "Mom said",
    "The sun was hot and",
    "Tim had a red ball. He",
    # Long: with -b 32 it takes many steps to read, while the others generate.
    "Once upon a time there was a girl. " * 40 + "She",
]


def metric(srv, name):
    _, text, _ = srv.request("GET", "/metrics")
    return float(re.search(r"(?m)^llamacxx_%s (\S+)$" % name, text).group(1))


class Concurrency(unittest.TestCase):
    def run_case(self, chat):
        srv = Server(BINARY, "--parallel", "4", "-b", "32")
        try:
            path = "/v1/chat/completions" if chat else "/v1/completions"

            def body(p):
                b = {"temperature": 0, "max_tokens": 48, "stream": True}
                if chat:
                    b["messages"] = [{"role": "user", "content": p}]
                else:
                    b["prompt"] = p
                return b

            alone = []
            for p in PROMPTS:
                status, events = srv.stream(path, body(p))
                self.assertEqual(status, 200)
                alone.append(stream_text(events, chat))
            self.assertGreaterEqual(len(set(alone)), 4)  # the prompts lead apart

            steps0 = metric(srv, "decode_steps_total")
            gen0 = metric(srv, "generated_tokens_total")
            results = [None] * len(PROMPTS)
            errors = []

            def worker(i):
                try:
                    status, events = srv.stream(path, body(PROMPTS[i]), timeout=120)
                    results[i] = (status, stream_text(events, chat), events[-1])
                except Exception as e:  # reported below, in the main thread
                    errors.append(repr(e))

            threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(PROMPTS))]
            for t in threads:
                t.start()
            for t in threads:
                t.join(timeout=180)
            self.assertEqual(errors, [])
            for i, r in enumerate(results):
                self.assertIsNotNone(r, "request %d did not finish" % i)
                self.assertEqual(r[0], 200)
                self.assertEqual(r[2], "[DONE]")
                self.assertEqual(r[1], alone[i], "prompt %d differs when batched" % i)
            # The requests really shared decode steps: fewer batches than tokens.
            steps = metric(srv, "decode_steps_total") - steps0
            gen = metric(srv, "generated_tokens_total") - gen0
            self.assertLess(steps, gen)
            self.assertEqual(srv.request("GET", "/health")[0], 200)
        finally:
            self.assertEqual(srv.stop(), 0)

    def test_completions(self):
        self.run_case(chat=False)

    def test_chat(self):
        self.run_case(chat=True)


if __name__ == "__main__":
    BINARY = binary_from_argv()
    unittest.main(verbosity=2)
