import { describe, expect, it } from "vitest";
import { PublishWindow } from "../../src/backends/amqp/publish-window.js";

describe("PublishWindow", () => {
  it("lets `size` callers through at once and hands each freed slot to the longest waiting", async () => {
    const window = new PublishWindow(2);
    const order: number[] = [];
    const inside = new Set<number>();
    let most = 0;
    const publish = async (n: number) => {
      await window.acquire();
      inside.add(n);
      most = Math.max(most, inside.size);
      order.push(n);
      await new Promise((resolve) => setImmediate(resolve));
      inside.delete(n);
      window.release();
    };
    // Callers keep arriving while others wait, past the point where resumed ones are dropped.
    const all: Promise<void>[] = [];
    for (let n = 0; n < 3000; n++) {
      all.push(publish(n));
      if (n % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
    }
    await Promise.all(all);
    expect(most).toBe(2);
    expect(order).toEqual(Array.from({ length: 3000 }, (_, n) => n));
    // Drained: the next callers go straight through again.
    expect(window.acquire()).toBeUndefined();
    expect(window.acquire()).toBeUndefined();
    expect(window.acquire()).toBeInstanceOf(Promise);
  });
});
