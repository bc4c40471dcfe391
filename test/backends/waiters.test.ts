// TaskWaiters keeps every deadline in one heap behind one timer: each waiter must still resolve at
// its own time, on its own wake, or on its own abort, and leave nothing behind.
import { describe, expect, it } from "vitest";
import { TaskWaiters } from "../../src/backends/waiters.js";

const timersOf = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("TaskWaiters", () => {
  it("resolves each waiter at its own deadline, earliest first, whatever the order they came in", async () => {
    const waiters = new TaskWaiters();
    const order: string[] = [];
    const began = performance.now();
    const at: Record<string, number> = {};
    const delays = { c: 90, a: 30, d: 120, b: 60 };
    await Promise.all(
      Object.entries(delays).map(([id, ms]) =>
        waiters.waitFor(id, ms).then(() => {
          order.push(id);
          at[id] = performance.now() - began;
        }),
      ),
    );
    expect(order).toEqual(["a", "b", "c", "d"]);
    for (const [id, ms] of Object.entries(delays)) expect(at[id]).toBeGreaterThanOrEqual(ms - 2);
  });

  it("wakes every waiter of one task and only those, and an early wake leaves no timer behind", async () => {
    const waiters = new TaskWaiters();
    const before = timersOf();
    const woken: string[] = [];
    const first = waiters.waitFor("t1", 60_000).then(() => woken.push("t1 first"));
    const second = waiters.waitFor("t1", 60_000).then(() => woken.push("t1 second"));
    const other = waiters.waitFor("t2", 60_000).then(() => woken.push("t2"));
    expect(timersOf()).toBe(before + 1);
    waiters.wake("t1");
    await Promise.all([first, second]);
    expect(woken).toEqual(["t1 first", "t1 second"]);
    waiters.wake("t2");
    await other;
    expect(timersOf()).toBe(before);
  });

  it("an aborted wait resolves at once and the others keep waiting", async () => {
    const waiters = new TaskWaiters();
    const abort = new AbortController();
    let otherDone = false;
    const aborted = waiters.waitFor("t1", 60_000, abort.signal);
    const other = waiters.waitFor("t1", 50).then(() => (otherDone = true));
    abort.abort();
    await aborted;
    expect(otherDone).toBe(false);
    await other;
    expect(otherDone).toBe(true);
  });

  it("keeps order over thousands of waiters woken at random", async () => {
    const waiters = new TaskWaiters();
    // Each deadline is known to lie between two clock reads, one before and one after the call.
    const ends: { earliest: number; latest: number }[] = [];
    const pending: Promise<void>[] = [];
    for (let i = 0; i < 3000; i++) {
      const ms = 5 + ((i * 7919) % 100);
      const before = performance.now();
      const waiting = waiters.waitFor(`t${i}`, ms);
      const deadline = { earliest: before + ms, latest: performance.now() + ms };
      pending.push(waiting.then(() => void ends.push(deadline)));
    }
    for (let i = 0; i < 3000; i += 3) waiters.wake(`t${i}`);
    await Promise.all(pending);
    const timedOut = ends.slice(1000);
    expect(timedOut).toHaveLength(2000);
    for (let i = 1; i < timedOut.length; i++) expect(timedOut[i].latest).toBeGreaterThanOrEqual(timedOut[i - 1].earliest);
  });
});
