// The handover's bookkeeping, alone: what a worker listed as idle does with a wake-up.
import type { Redis } from "ioredis";
import { describe, expect, it } from "vitest";
import { Handover } from "../../src/backends/redis/handover.js";

const handover = () => new Handover({} as Redis, "inbox");

describe("Redis handover", () => {
  it("a wake-up heard before the answer of the take that listed the worker still makes it look again", () => {
    const h = handover();
    const n = h.nextListing();
    // A push of another process ran right after the take script, and its wake-up came first.
    h.received(`[${n}]`);
    h.took(n, undefined, 0, 0, 32);
    expect(h.mustLook).toBe(true);
  });

  it("a listing with no wake-up for it waits, and a wake-up for an older listing does not end it", () => {
    const h = handover();
    const first = h.nextListing();
    h.took(first, undefined, 0, 0, 32);
    expect(h.mustLook).toBe(false);
    h.received(`[${first}]`);
    expect(h.mustLook).toBe(true);
    const second = h.nextListing();
    h.took(second, h.listing, 1, 0, 32);
    expect(h.mustLook).toBe(false);
    h.received(`[${first}]`);
    expect(h.mustLook).toBe(false);
  });

  it("listed with no free slot (handovers on their way fill them), it waits for those, then looks again", () => {
    const handed = (n: number, taskid: string) => `[${n},1000,"${taskid}",1,{"topic":"t","content":{}},60,900]`;
    const h = handover();
    const first = h.nextListing();
    h.took(first, undefined, 0, 0, 2);
    // The take after a wake-up ran before the reply of a push that handed this worker two tasks.
    h.received(`[${first}]`);
    const second = h.nextListing();
    h.took(second, h.listing, 0, 0, 0);
    expect(h.mustLook).toBe(false);
    h.received(handed(first, "a"));
    expect(h.handed.map((row) => row[0])).toEqual(["a"]);
    expect(h.mustLook).toBe(true);
    // The reply came before the take's answer: it looks again once take() has returned it.
    const third = h.nextListing();
    h.took(third, h.listing, 0, 0, 0);
    expect(h.mustLook).toBe(true);
  });
});
