// A redis-server of a test's own, on a free port: for a test that kills its server, or flushes what
// the shared one holds for everybody.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

export interface OwnRedis {
  url: string;
  port: number;
  stop(): void;
}

export interface OwnRedisOptions {
  /** a port (to start one again where a killed one was); default a free one */
  port?: number;
  /** keep the data in this folder, every write on disk before it is answered (appendfsync always):
   *  one started again on the same folder after a kill -9 has all of it */
  dir?: string;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on("error", reject);
  });
}

/** Starts one, or returns undefined (with a warning naming `what`) when redis-server is not installed;
 *  under CI that is an error. */
export async function startRedisServer(what: string, options: OwnRedisOptions = {}): Promise<OwnRedis | undefined> {
  if (spawnSync("redis-server", ["--version"]).error) {
    if (process.env.CI) throw new Error("these tests need redis-server on the PATH (Debian package redis-server)");
    console.warn(`\n!!! SKIPPING ${what}: no redis-server on the PATH\n`);
    return undefined;
  }
  const port = options.port ?? (await freePort());
  const persistence = options.dir ? ["--dir", options.dir, "--appendonly", "yes", "--appendfsync", "always"] : ["--appendonly", "no"];
  const server: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", ...persistence], { stdio: "ignore" });
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() === "PONG";
  }
  if (!ready) {
    server.kill("SIGKILL");
    throw new Error(`redis-server on port ${port} did not start`);
  }
  return { url: `redis://127.0.0.1:${port}`, port, stop: () => void server.kill("SIGKILL") };
}
