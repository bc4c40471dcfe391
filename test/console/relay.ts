// A TCP relay between the browser and the server that can cut its connections (and refuse new ones)
// or stop reading the server's answers: how the console's tests break the live stream for real.
import { connect, createServer, type AddressInfo, type Socket } from "node:net";

/** A TCP relay to `target` whose connections can be cut (and new ones refused) until it is mended. */
export async function breakableProxy(
  target: URL,
): Promise<{ url: string; heads: string[]; cut(): void; mend(): void; stall(): void; resume(): void; close(): void }> {
  /** the connections to the server: stalled, their answers are not read */
  const upstreams = new Set<Socket>();
  let broken = false;
  /** the first bytes of every connection: the requests' heads */
  const heads: string[] = [];
  const sockets = new Set<Socket>();
  const relay = createServer((client) => {
    if (broken) return void client.destroy();
    const upstream = connect(Number(target.port), target.hostname);
    upstreams.add(upstream);
    upstream.on("close", () => upstreams.delete(upstream));
    for (const [a, b] of [[client, upstream], [upstream, client]] as const) {
      sockets.add(a);
      a.on("error", () => {});
      a.on("close", () => {
        sockets.delete(a);
        b.destroy();
      });
    }
    client.once("data", (chunk: Buffer) => heads.push(chunk.toString("latin1")));
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => relay.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(relay.address() as AddressInfo).port}`,
    heads,
    cut() {
      broken = true;
      for (const s of sockets) s.destroy();
    },
    mend() {
      broken = false;
    },
    stall() {
      for (const s of upstreams) s.pause();
    },
    resume() {
      for (const s of upstreams) s.resume();
    },
    close() {
      for (const s of sockets) s.destroy();
      relay.close();
    },
  };
}
