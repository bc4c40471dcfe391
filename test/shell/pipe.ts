// The shell driven through a pipe, as `jobshell < file` runs it: the real command line (dist/cli.js,
// which `npm test` builds first), with no history file and no queue server from the environment.
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
export const cli = path.join(root, "dist", "cli.js");

export interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** from the spawn to the exit */
  seconds: number;
}

/** Run `jobshell ARGS` with `input` piped in, to its exit. */
export function pipeToShell(input: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const began = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], {
      cwd: root,
      env: { ...process.env, JOBSHELL_HISTORY: "", NO_COLOR: "", REDIS_URL: "", AMQP_URL: "", ...env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - began) / 1000 }));
    child.stdin.end(input);
  });
}

/** Fails the suite at once, naming the fix, when the build is missing. */
export function requireBuild(): void {
  if (!existsSync(cli)) throw new Error("dist/cli.js is missing: build first (npm test runs tsc before vitest)");
}
