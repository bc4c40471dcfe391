// The REST API on every backend: jobs uploaded through it run, tasks posted to it end, records
// and long polls see them, and /metrics reads the queue's depth.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "../../src/backend.js";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve } from "../../src/server/index.js";
import { backends, requireServer, uniqueNamespace } from "../each-backend.js";

for (const backend of backends) {
  describe(`REST API on ${backend.name}`, () => {
    let available = false;
    let js: JobShell | undefined;
    let connection: Backend | undefined;
    let server: { url: string; close(): Promise<void> } | undefined;
    const namespace = uniqueNamespace("rest");

    beforeAll(async () => {
      available = await requireServer(backend);
      if (!available) return;
      connection = await backend.connect({ namespace, taskRecordTtl: 300, debugChannel: `${namespace}.debug` });
      js = await open({ backend: connection, log: () => {} });
      server = await serve(js, { port: 0, host: "127.0.0.1" });
    });

    afterAll(async () => {
      await server?.close();
      await js?.close();
      await connection?.close();
      await backend.cleanup?.(namespace);
    });

    it("runs an uploaded job on a posted task and shows its record", async () => {
      if (!available) return;
      const url = server!.url;
      const up = await fetch(`${url}/jobs`, { method: "POST", body: "- name: double\n  topics: [double]\n  script: return task.content.n * 2\n" });
      expect(up.status).toBe(201);
      const posted = await fetch(`${url}/tasks`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ topic: "double", content: { n: 21 }, expire: 30 }),
      });
      expect(posted.status).toBe(201);
      const { taskid } = (await posted.json()) as { taskid: string };
      const waited = await fetch(`${url}/tasks/${taskid}/wait?timeout=20`);
      const record = (await waited.json()) as { status: string; results: { value: unknown }[] };
      expect(record.status).toBe("completed");
      expect(record.results[0].value).toBe(42);
      const again = (await (await fetch(`${url}/tasks/${taskid}`)).json()) as { status: string };
      expect(again.status).toBe("completed");
      const metrics = await (await fetch(`${url}/metrics`)).text();
      expect(metrics).toMatch(/^jobshell_queue_depth 0$/m);
      expect(metrics).toContain('jobshell_tasks_completed_total{topic="double"} 1');
      expect((await fetch(`${url}/jobs/double`, { method: "DELETE" })).status).toBe(204);
      const list = (await (await fetch(`${url}/jobs`)).json()) as { jobs: unknown[] };
      expect(list.jobs).toEqual([]);
    });
  });
}
