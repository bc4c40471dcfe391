// onAbort(): many waits on one AbortSignal, each added and cancelled in constant time.
import { describe, expect, it } from "vitest";
import { onAbort } from "../src/abort.js";

describe("onAbort", () => {
  it("calls each callback once when the signal aborts, except those cancelled, and none for a signal aborted before", () => {
    const controller = new AbortController();
    const called: number[] = [];
    const cancels = [0, 1, 2, 3].map((n) => onAbort(controller.signal, () => called.push(n)));
    cancels[1]();
    controller.abort();
    controller.abort();
    expect(called).toEqual([0, 2, 3]);
    onAbort(controller.signal, () => called.push(9));
    expect(called).toEqual([0, 2, 3]);
  });

  it("keeps 100,000 waits on one signal linear (a listener each was quadratic: minutes)", () => {
    const controller = new AbortController();
    let calls = 0;
    const started = performance.now();
    const cancels = Array.from({ length: 100_000 }, () => onAbort(controller.signal, () => calls++));
    for (let i = 0; i < cancels.length; i += 2) cancels[i]();
    controller.abort();
    expect(calls).toBe(50_000);
    // A coarse guard, not a benchmark: linear work takes milliseconds here.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
