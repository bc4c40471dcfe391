// Memory mode's scheduling: everything runs in this process's event loop, so the worker must
// neither wait for the producer to yield nor keep timers and I/O waiting behind a backlog.
import { describe, expect, it } from "vitest";
import { internals } from "../../src/internals.js";
import { open } from "../../src/index.js";

const noop = `- {name: noop, topics: [noop], script: "return 1"}`;

describe("memory mode scheduling", () => {
  // In process only: the results of scripts run in threads arrive as messages, which wait for a turn
  // of the event loop.
  it("runs tasks while a producer awaiting each task() goes on issuing (job_in_process)", async () => {
    const js = await open({ jobQueueSize: 10_000, jobInProcess: true, log: () => {} });
    try {
      await js.upload(noop);
      const ids: string[] = [];
      // Only awaits in between: no timer or I/O turn comes until the loop is over.
      for (let i = 0; i < 1000; i++) ids.push(await js.task("noop"));
      const first = await js.record(ids[0]);
      expect(first?.status).toBe("completed");
      const ended = await Promise.all(ids.map((id) => js.record(id)));
      expect(ended.filter((r) => r?.status === "completed").length).toBeGreaterThan(900);
    } finally {
      await js.close();
    }
  });

  it("lets a timer fire while a backlog of tasks is worked off", async () => {
    const total = 50_000;
    const js = await open({ jobQueueSize: total + 1, log: () => {} });
    try {
      await js.upload(noop);
      const issued: Promise<string>[] = [];
      for (let i = 0; i < total; i++) issued.push(js.task("noop", {}, 120));
      const ids = await Promise.all(issued);
      const atTimer = await new Promise<number>((resolve) => setTimeout(() => resolve(internals(js).metrics.totals().completed), 0));
      expect(atTimer).toBeLessThan(total);
      await Promise.all(ids.map((id) => js.waitfor(id, 60)));
      expect(internals(js).metrics.totals().completed).toBe(total);
    } finally {
      await js.close();
    }
  });
});
