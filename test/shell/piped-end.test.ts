// How a piped shell ends: never silently. A block that can never finish is reported in one line
// and the shell exits 1; exit() takes only an exit status a process can have.
import { beforeAll, describe, expect, it } from "vitest";
import { pipeToShell, requireBuild } from "./pipe.js";

const jobshell = (input: string, env: NodeJS.ProcessEnv = {}) => pipeToShell(input, [], env);

beforeAll(requireBuild);

const neverLine = "Error: this block can never finish, nothing is left that could settle what it awaits:";

describe("the end of piped input", { timeout: 60_000 }, () => {
  it("reports a block nothing can settle in one line, says how many blocks did not run, and exits 1", async () => {
    const input = ['print("a")', "", "await new Promise(() => {})", 'print("same block")', "", 'print("b")', "", "x = 1", "y = 2", "", "stats()", ""];
    const run = await jobshell(input.join("\n"));
    expect(run.stdout).toBe(`a\n${neverLine} await new Promise(() => {}) (line 3 of the input); the 3 blocks after it did not run\n`);
    expect(run.stderr).toBe("");
    expect(run.code).toBe(1);
  });

  it("reports it as the last block too, where the input ends without an empty line", async () => {
    const run = await jobshell("const p = new Promise(() => {})\nawait p");
    expect(run.stdout).toBe(`${neverLine} const p = new Promise(() => {}) (line 1 of the input)\n`);
    expect(run.code).toBe(1);
  });

  it("does not take a block that waits on a timer for one that can never finish", async () => {
    const run = await jobshell('await new Promise((resolve) => setTimeout(resolve, 300))\nprint("done")\n');
    expect(run.stdout).toBe("done\n");
    expect(run.code).toBe(0);
  });

  it("lets the worker's runs end first: a job that hangs is failed by job_script_timeout, then the block is reported", async () => {
    const input = [
      'await upload("- name: hang\\n  topics: [hang]\\n  script: await new Promise(() => {})\\n")',
      "",
      'await task("hang")',
      "await new Promise(() => {})",
      "",
    ].join("\n");
    const run = await jobshell(input, { JOBSHELL_JOB_SCRIPT_TIMEOUT: "1" });
    expect(run.stdout).toContain(`${neverLine} await task("hang") (line 3 of the input)\n`);
    expect(run.seconds).toBeGreaterThanOrEqual(1);
    expect(run.code).toBe(1);
  });
});

describe("exit()", { timeout: 60_000 }, () => {
  it("refuses a code that is not an integer, says so, and the input goes on", async () => {
    const run = await jobshell('exit("x")\n\nprint("after")\n\n');
    expect(run.stdout).toContain('TypeError: exit(): the code must be an integer from 0 to 255, got the string "x"');
    expect(run.stdout).toContain("after\n");
    expect(run.code).toBe(1);
  });

  it("refuses codes a process cannot exit with, on the >>> line as in a block", async () => {
    const run = await jobshell("exit(256)\nexit(-1)\n\nexit(1.5)\n\nquit(True)\n\nprint('still here')\n\n");
    expect(run.stdout).toContain("got 256");
    expect(run.stdout).toContain("got -1");
    expect(run.stdout).toContain("got 1.5");
    expect(run.stdout).toContain("got true");
    expect(run.stdout).toContain("still here");
    expect(run.code).toBe(1);
  });

  it("exits with the integer it is given: exit(3) exits 3, exit() and exit(None) 0", async () => {
    expect((await jobshell("exit(3)\n")).code).toBe(3);
    expect((await jobshell("if (true) exit(code=3)\n")).code).toBe(3);
    expect((await jobshell('print("x")\n\nexit()\n')).code).toBe(0);
    expect((await jobshell("exit(None)\n")).code).toBe(0);
  });
});
