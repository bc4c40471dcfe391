// The record's timestamps: local offset and microseconds, as in the source.
import { afterEach, describe, expect, it } from "vitest";
import { formatTimestamp } from "../src/record.js";

const givenTz = process.env.TZ;

describe("formatTimestamp", () => {
  afterEach(() => {
    if (givenTz === undefined) delete process.env.TZ;
    else process.env.TZ = givenTz;
  });

  it("shows the local time with microseconds and the offset", () => {
    process.env.TZ = "UTC";
    expect(formatTimestamp(Date.UTC(2026, 10, 28, 0, 47, 27) + 512.301)).toBe("2026-11-28T00:47:27.512301+00:00");
    process.env.TZ = "Asia/Tokyo";
    expect(formatTimestamp(Date.UTC(2026, 10, 28, 0, 47, 28) + 0.004)).toBe("2026-11-28T09:47:28.000004+09:00");
    process.env.TZ = "America/St_Johns";
    expect(formatTimestamp(Date.UTC(2026, 10, 28, 0, 47, 29) + 999.75)).toBe("2026-11-27T21:17:29.999750-03:30");
  });

  it("gives each time of one second its own microseconds", () => {
    process.env.TZ = "UTC";
    const second = Date.UTC(2026, 0, 1);
    const times = [0.001, 1.5, 999.25].map((ms) => formatTimestamp(second + ms));
    expect(times).toEqual(["2026-01-01T00:00:00.000001+00:00", "2026-01-01T00:00:00.001500+00:00", "2026-01-01T00:00:00.999250+00:00"]);
    expect(formatTimestamp(second + 1000)).toBe("2026-01-01T00:00:01.000000+00:00");
  });
});
