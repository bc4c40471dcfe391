import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // The backends share two cores with their servers: run files one after another so
    // timing-sensitive behaviour (expire, timeouts) is not starved by a parallel file.
    fileParallelism: false,
  },
});
