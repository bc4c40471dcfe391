import { describe, expect, it } from "vitest";
import { open } from "../../src/jobshell.js";
import type { JobShell } from "../../src/jobshell.js";
import { banner, commandHelp, maskPassword, productVersion, type ShellCommands } from "../../src/shell/commands.js";
import { shellBuiltins } from "../../src/shell/context.js";
import { ShellOutput } from "../../src/shell/output.js";
import { makeColors } from "../../src/shell/output.js";

describe("the shell's banner", () => {
  it("masks the password of a queue URL", () => {
    expect(maskPassword("amqp://guest:secret@127.0.0.1:5672/vhost")).toBe("amqp://guest:****@127.0.0.1:5672/vhost");
    expect(maskPassword("redis://:secret@redis.example:6379/0")).toBe("redis://:****@redis.example:6379/0");
    expect(maskPassword("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
  });

  it("says the version, the mode, the worker, the jobs, the time, and how to get help", async () => {
    const js = await open({ jobs: ["samples/jobs/example.yaml"], worker: false });
    try {
      const text = banner(js, makeColors(false), new Date(2026, 10, 28, 9, 47, 27));
      const lines = text.split("\n");
      expect(lines[0]).toMatch(new RegExp(`^jobshell ${productVersion().replace(/\./g, "\\.")} — memory mode, .*no worker in this process.*, \\d+ jobs? loaded$`));
      expect(lines[1]).toContain("Nov 28 2026 09:47:27");
      expect(lines[2]).toBe('Type "help", "commands" for more information.');
    } finally {
      await js.close();
    }
  });
});

describe("commands()", () => {
  it("lists every name the shell defines", () => {
    const builtins = shellBuiltins({
      js: {} as JobShell,
      out: new ShellOutput(process.stdout),
      commands: {} as ShellCommands,
      colors: makeColors(false),
      track: () => {},
    });
    const listed = commandHelp.map(([name]) => name).join(" ");
    const missing = Object.keys(builtins).filter((name) => !new RegExp(`\\b${name}\\b`).test(listed));
    expect(missing).toEqual([]);
  });
});
