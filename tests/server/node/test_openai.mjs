// The official `openai` npm client, unchanged, against `llama-cxx serve`: a chat
// completion, a streamed chat completion, a completion and models.list. The server is
// started here on a free loopback port and stopped with SIGTERM (it must exit 0).
// Usage: node test_openai.mjs path/to/llama-cxx
import { spawn } from "node:child_process";
import assert from "node:assert/strict";
import OpenAI from "openai";

const binary = process.argv[2];
if (!binary) {
  console.error("usage: node test_openai.mjs path/to/llama-cxx");
  process.exit(2);
}

const server = spawn(binary, ["serve", "--host", "127.0.0.1", "--port", "0", "-t", "1",
                              "--parallel", "2", "--api-key", "test-key"],
                     { stdio: ["ignore", "ignore", "pipe"] });
let log = "";
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("server did not start:\n" + log)), 30000);
  server.stderr.on("data", (d) => {
    log += d.toString();
    const m = log.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) { clearTimeout(timer); resolve(Number(m[1])); }
  });
  server.on("exit", (code) => reject(new Error(`server exited (${code}):\n` + log)));
});

let failed = false;
try {
  const base = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {  // bounded wait for the model
    const r = await fetch(base + "/health").catch(() => null);
    if (r && r.status === 200) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const client = new OpenAI({ baseURL: base + "/v1", apiKey: "test-key", maxRetries: 0 });

  const models = await client.models.list();
  const ids = models.data.map((m) => m.id);
  assert.deepEqual(ids, ["stories260K"]);
  console.log("models.list:", ids);

  const messages = [{ role: "user", content: "Tell me a story about a cat." }];
  const chat = await client.chat.completions.create({
    model: ids[0], messages, max_tokens: 32, temperature: 0 });
  const text = chat.choices[0].message.content;
  assert.equal(chat.object, "chat.completion");
  assert.equal(chat.choices[0].message.role, "assistant");
  assert.ok(text.length > 0);
  assert.ok(["stop", "length"].includes(chat.choices[0].finish_reason));
  assert.equal(chat.usage.total_tokens, chat.usage.prompt_tokens + chat.usage.completion_tokens);
  console.log("chat:", JSON.stringify(text));

  const stream = await client.chat.completions.create({
    model: ids[0], messages, max_tokens: 32, temperature: 0, stream: true,
    stream_options: { include_usage: true } });
  let streamed = "", chunks = 0, finish = null, usage = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    streamed += chunk.choices[0].delta.content ?? "";
    finish = chunk.choices[0].finish_reason ?? finish;
  }
  assert.equal(streamed, text);  // greedy: the stream says the same
  assert.ok(chunks > 2);
  assert.equal(finish, chat.choices[0].finish_reason);
  assert.equal(usage.completion_tokens, chat.usage.completion_tokens);
  console.log(`stream: ${chunks} chunks`);

  const comp = await client.completions.create({
    model: ids[0], prompt: "Once upon a time", max_tokens: 16, temperature: 0 });
  assert.equal(comp.object, "text_completion");
  assert.equal(comp.choices[0].finish_reason, "length");
  assert.equal(comp.usage.completion_tokens, 16);
  assert.ok(comp.choices[0].text.length > 0);
  console.log("completion:", JSON.stringify(comp.choices[0].text));

  // Errors surface as the client's typed exceptions.
  await assert.rejects(
    client.chat.completions.create({ model: ids[0], messages, temperature: "hot" }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === "temperature");
  const bad = new OpenAI({ baseURL: base + "/v1", apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(bad.models.list(), (e) => e instanceof OpenAI.AuthenticationError);
  console.log("errors: ok");
} catch (e) {
  failed = true;
  console.error("FAILED:", e);
} finally {
  const code = await new Promise((resolve) => {
    const t = setTimeout(() => { server.kill("SIGKILL"); resolve(null); }, 30000);
    server.removeAllListeners("exit");
    server.on("exit", (c) => { clearTimeout(t); resolve(c); });
    server.kill("SIGTERM");
  });
  if (code !== 0) {
    failed = true;
    console.error(`server exit code ${code}\n${log}`);
  }
}
process.exit(failed ? 1 : 0);
