// The saga sample (samples/jobs/saga.yaml) end to end on every backend: a failing step drives
// Transaction.Aborted and a job on that topic compensates; a step that succeeds completes it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Backend } from "../src/backend.js";
import { open, type JobShell } from "../src/jobshell.js";
import { backends, requireServer, uniqueNamespace } from "./each-backend.js";

/** Once the debug subscription is live: the lines until `done` says enough. */
async function linesUntil(js: JobShell, done: (lines: string[]) => boolean, seconds: number) {
  const lines: string[] = [];
  let timer: NodeJS.Timeout | undefined;
  let finish!: (lines: string[]) => void;
  const finished = new Promise<string[]>((resolve, reject) => {
    finish = resolve;
    timer = setTimeout(() => reject(new Error(`debug lines so far: ${JSON.stringify(lines)}`)), seconds * 1000);
  });
  const stop = await js.onDebug((line) => {
    lines.push(line);
    if (done(lines)) {
      clearTimeout(timer);
      finish(lines);
    }
  });
  return { finished, stop };
}

for (const backend of backends) {
  describe(`saga sample on ${backend.name}`, () => {
    let available = false;
    let js: JobShell | undefined;
    let connection: Backend | undefined;
    const namespace = uniqueNamespace("saga");

    beforeAll(async () => {
      available = await requireServer(backend);
      if (!available) return;
      connection = await backend.connect({ namespace, taskRecordTtl: 300, debugChannel: `${namespace}.debug` });
      js = await open({ backend: connection, jobs: ["samples/jobs/saga.yaml"], jobTransactionEvent: true, log: () => {} });
    });

    afterAll(async () => {
      await js?.close();
      await connection?.close();
      await backend.cleanup?.(namespace);
    });

    it("a declined charge aborts the transaction and the stock is given back", async () => {
      if (!available) return;
      const watch = await linesUntil(js!, (lines) => lines.some((l) => l === "saga order-42: Cancelled"), 20);
      const tx = await js!.transaction("order-42", { item: "gundam", quantity: 1, amount: 5000 });
      const lines = await watch.finished;
      await watch.stop();
      expect(lines).toContain("saga order-42: reserved 1 x gundam");
      expect(lines).toContain("saga order-42: released 1 x gundam (card declined: 5000 is over the limit of 1000)");
      expect(lines.indexOf("saga order-42: reserved 1 x gundam")).toBeLessThan(lines.indexOf("saga order-42: Cancelled"));
      expect(tx.status).toBe("Cancelled");
    });

    it("a charge within the limit completes the transaction with no compensation", async () => {
      if (!available) return;
      const watch = await linesUntil(js!, (lines) => lines.some((l) => l === "saga order-43: Complete"), 20);
      const tx = await js!.transaction("order-43", { item: "zaku", quantity: 2, amount: 300 });
      const lines = await watch.finished;
      await watch.stop();
      expect(lines).toContain("saga order-43: charged 300");
      expect(lines.some((l) => l.startsWith("saga order-43: released"))).toBe(false);
      expect(tx.status).toBe("Complete");
    });
  });
}
