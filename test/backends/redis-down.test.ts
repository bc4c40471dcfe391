// A Redis that goes away under a running process: calls fail with a ConnectionError (the REST API's
// 503 `unavailable`) once the command timeout passes, and close() returns without hanging. The test
// starts a redis-server of its own on a free port, to kill it.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { createServer } from "node:net";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { ConnectionError } from "../../src/errors.js";
import { open } from "../../src/jobshell.js";
import { serve } from "../../src/server/index.js";
import { itWhen } from "../each-backend.js";

let ready = false;
let server: ChildProcess | undefined;
let url = "";

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

beforeAll(async () => {
  if (spawnSync("redis-server", ["--version"]).error) {
    if (process.env.CI) throw new Error("these tests need redis-server on the PATH (Debian package redis-server)");
    console.warn("\n!!! SKIPPING the Redis-goes-away tests: no redis-server on the PATH\n");
    return;
  }
  const port = await freePort();
  server = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  url = `redis://127.0.0.1:${port}`;
  for (let i = 0; i < 50 && !ready; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() === "PONG";
  }
  if (!ready) throw new Error(`redis-server on port ${port} did not start`);
});

afterAll(() => {
  server?.kill("SIGKILL");
});

function get(base: string, method: string, path: string, body?: string): Promise<{ status: number; json: any }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, base), { method, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c));
      res.on("end", () => resolve({ status: res.statusCode!, json: JSON.parse(text) }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

const maybe = itWhen(() => ready, 60_000);

describe("Redis goes away", () => {
  maybe("calls fail with ConnectionError, the REST API answers 503 unavailable, and close() returns at once", async () => {
    const js = await open({ redisUrl: url, log: () => {} });
    await js.upload("- name: a\n  topics: [a]\n  script: return 1\n");
    const logged: string[] = [];
    const api = await serve(js, { port: 0, host: "127.0.0.1", log: (l) => logged.push(l) });
    const taskid = (await get(api.url, "POST", "/tasks", '{"topic":"a"}')).json.taskid;
    expect((await js.waitfor(taskid, { timeout: 5 })).status).toBe("completed");

    server!.kill("SIGKILL");
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const [direct, posted, read, metrics] = await Promise.all([
      js.task("a", {}).catch((e: unknown) => e),
      get(api.url, "POST", "/tasks", '{"topic":"a"}'),
      get(api.url, "GET", `/tasks/${taskid}`),
      get(api.url, "GET", "/metrics"),
    ]);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(direct).toBeInstanceOf(ConnectionError);
    expect((direct as Error).message).toMatch(/^Redis at redis:\/\/127\.0\.0\.1:\d+ does not answer/);
    for (const reply of [posted, read, metrics]) {
      expect(reply.status).toBe(503);
      expect(reply.json).toMatchObject({ error: "unavailable", detail: expect.stringMatching(/does not answer/) });
    }
    expect(logged.filter((l) => l.includes("Error"))).toEqual([]); // not logged as a bug

    const closing = Date.now();
    await api.close();
    await js.close();
    expect(Date.now() - closing).toBeLessThan(7_000);
  });
});
