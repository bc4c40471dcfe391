// A redis-server of a test's own, on a free port: for a test that kills its server, or flushes what
// the shared one holds for everybody.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createServer } from "node:net";

export interface OwnRedis {
  url: string;
  stop(): void;
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
export async function startRedisServer(what: string): Promise<OwnRedis | undefined> {
  if (spawnSync("redis-server", ["--version"]).error) {
    if (process.env.CI) throw new Error("these tests need redis-server on the PATH (Debian package redis-server)");
    console.warn(`\n!!! SKIPPING ${what}: no redis-server on the PATH\n`);
    return undefined;
  }
  const port = await freePort();
  const server: ChildProcess = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"], { stdio: "ignore" });
  let ready = false;
  for (let i = 0; i < 50 && !ready; i++) {
    await new Promise((r) => setTimeout(r, 100));
    ready = spawnSync("redis-cli", ["-p", String(port), "ping"]).stdout?.toString().trim() === "PONG";
  }
  if (!ready) {
    server.kill("SIGKILL");
    throw new Error(`redis-server on port ${port} did not start`);
  }
  return { url: `redis://127.0.0.1:${port}`, stop: () => void server.kill("SIGKILL") };
}
