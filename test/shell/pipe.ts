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

/** `jobshell ARGS` with its three streams piped, on the memory queue unless `env` names a server, with
 *  no history file and no colours. */
function spawnShell(args: string[], env: NodeJS.ProcessEnv) {
  return spawn(process.execPath, [cli, ...args], {
    cwd: root,
    env: { ...process.env, JOBSHELL_HISTORY: "", NO_COLOR: "", REDIS_URL: "", AMQP_URL: "", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

/** Run `jobshell ARGS` with `input` piped in, to its exit. */
export function pipeToShell(input: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const began = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawnShell(args, env);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - began) / 1000 }));
    child.stdin.end(input);
  });
}

/** A piped shell fed as it goes: input written a block at a time, output awaited as it comes, for a
 *  test that changes the world (kills a server) between blocks. */
export interface LiveShell {
  write(text: string): void;
  /** Resolves with the output so far once it matches `pattern`; rejects after `timeoutMs`. */
  until(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Ends the input and resolves at the exit. */
  end(): Promise<Run>;
}

export function liveShell(args: string[], env: NodeJS.ProcessEnv = {}): LiveShell {
  const began = Date.now();
  const child = spawnShell(args, env);
  let stdout = "";
  let stderr = "";
  const heard = new Set<() => void>();
  const hear = () => heard.forEach((check) => check());
  child.stdout.on("data", (d) => ((stdout += d), hear()));
  child.stderr.on("data", (d) => ((stderr += d), hear()));
  const exited = new Promise<Run>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr, seconds: (Date.now() - began) / 1000 }));
  });
  return {
    write: (text) => void child.stdin.write(text),
    until: (pattern, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (!pattern.test(stdout)) return;
          settle();
          resolve(stdout);
        };
        const timer = setTimeout(() => {
          settle();
          reject(new Error(`no ${pattern} in the shell's output after ${timeoutMs} ms:\n${stdout}\nstderr:\n${stderr}`));
        }, timeoutMs);
        const settle = () => (clearTimeout(timer), heard.delete(check));
        heard.add(check);
        check();
      }),
    end: () => {
      child.stdin.end();
      return exited;
    },
  };
}

/** Fails the suite at once, naming the fix, when the build is missing. */
export function requireBuild(): void {
  if (!existsSync(cli)) throw new Error("dist/cli.js is missing: build first (npm test runs tsc before vitest)");
}
