// The console's routes on a shared queue: a server with no worker of its own lists, streams and
// charts the tasks a worker in another process ended (Redis and AMQP modes, real processes).
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect } from "vitest";
import type { Backend } from "../../src/backend.js";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer } from "../../src/server/index.js";
import { amqpUrl, backends, itWhen, redisUrl, requireServer, uniqueNamespace } from "../each-backend.js";
import { faultJobs, stopWorker } from "../fault/processes.js";
import { SseClient } from "./sse.js";

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url));

/** The fault tests' worker processes, one per mode. */
const modes: { name: string; script: string; env: Record<string, string> }[] = [
  { name: "redis", script: "../fault/redis-worker.mjs", env: { REDIS_URL: redisUrl, HEARTBEAT: "3" } },
  { name: "amqp", script: "../fault/amqp-worker.mjs", env: { AMQP_URL: amqpUrl, CONNECTION_NAME: "jobshell console test worker" } },
];

function startWorker(script: string, namespace: string, env: Record<string, string>): Promise<ChildProcess> {
  const child = spawn(process.execPath, [here(script)], { env: { ...process.env, ...env, NAMESPACE: namespace }, stdio: ["ignore", "pipe", "inherit"] });
  return new Promise((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("ready")) resolve(child);
    });
    child.on("exit", (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
  });
}

for (const mode of modes) {
  const entry = backends.find((b) => b.name === mode.name)!;
  describe(`the console's routes in ${mode.name} mode, the worker in another process`, { timeout: 60_000 }, () => {
    let ready = false;
    const it = itWhen(() => ready);
    const namespace = uniqueNamespace(`console-${mode.name}`);
    let backend: Backend;
    let js: JobShell;
    let server: RunningServer;
    let worker: ChildProcess | undefined;

    beforeAll(async () => {
      ready = await requireServer(entry);
      if (!ready) return;
      backend = await entry.connect({ namespace, taskRecordTtl: 600, debugChannel: `${namespace}.debug` } as Parameters<typeof entry.connect>[0]);
      js = await open({ backend, worker: false, log: () => {} });
      await js.upload(faultJobs, { replace: true });
      server = await serve(js, { port: 0, host: "127.0.0.1" });
    });

    afterAll(async () => {
      if (!ready) return;
      if (worker) await stopWorker(worker);
      await server.close();
      await js.close();
      await backend.close();
      await entry.cleanup?.(namespace);
    });

    it("lists, streams and charts a task that a worker in another process ended", async () => {
      const events = await SseClient.open(server.url, "/events?types=task");
      worker = await startWorker(mode.script, namespace, mode.env);
      const issued = await fetch(`${server.url}/tasks`, { method: "POST", body: JSON.stringify({ topic: "work", content: { ms: 5, i: 7 } }) });
      expect(issued.status).toBe(201);
      const { taskid } = (await issued.json()) as { taskid: string };
      await events.until(() => events.data("task").some((e) => e.taskid === taskid && e.kind === "ended"), 20_000, "the ended event");
      const ended = events.data("task").find((e) => e.taskid === taskid && e.kind === "ended");
      expect(ended).toMatchObject({ topic: "work", status: "completed" });
      events.close();

      const list = (await (await fetch(`${server.url}/tasks?status=completed&topic=work`)).json()) as any;
      expect(list.records.map((r: any) => r.taskid)).toContain(taskid);
      const record = list.records.find((r: any) => r.taskid === taskid);
      expect(record.results).toEqual([expect.objectContaining({ job: "work", value: 7 })]);

      const stats = (await (await fetch(`${server.url}/stats`)).json()) as any;
      expect(stats.mode).toBe(mode.name);
      expect(stats.history.completed.reduce((a: number, b: number) => a + b, 0)).toBeGreaterThanOrEqual(1);
    });
  });
}
