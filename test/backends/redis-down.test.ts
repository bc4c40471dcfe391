// A Redis that goes away under a running process: calls fail with a ConnectionError (the REST API's
// 503 `unavailable`) once the command timeout passes, and close() returns without hanging. The test
// starts a redis-server of its own on a free port, to kill it.
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect } from "vitest";
import { ConnectionError } from "../../src/errors.js";
import { open } from "../../src/jobshell.js";
import { serve } from "../../src/server/index.js";
import { itWhen } from "../each-backend.js";
import { startRedisServer, type OwnRedis } from "./redis-server.js";

let ready = false;
let server: OwnRedis | undefined;
let url = "";

beforeAll(async () => {
  server = await startRedisServer("the Redis-goes-away tests");
  ready = server !== undefined;
  url = server?.url ?? "";
});

afterAll(() => {
  server?.stop();
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

    server!.stop();
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
