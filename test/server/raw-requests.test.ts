// The REST API given raw bytes over a socket, as a hostile or careless client sends them: request
// targets that are not paths, and what Node's HTTP parser refuses. Each is answered with JSON
// `{error, detail}` and the right status, no stack trace reaches the log, and the server goes on.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve } from "../../src/server/index.js";

interface RawReply {
  status: number;
  headers: Record<string, string>;
  json: any;
}

/** Send `bytes` as they are and read one reply (the server may close the connection after it). */
function sendRaw(base: string, bytes: string): Promise<RawReply> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    let received = Buffer.alloc(0);
    let done = false;
    const socket = connect(Number(url.port), url.hostname, () => socket.write(bytes));
    const finish = (error?: Error) => {
      if (done) return;
      const reply = parseReply(received);
      if (!reply && !error) return;
      done = true;
      socket.destroy();
      if (reply) resolve(reply);
      else reject(new Error(`no whole reply (${error!.message}): ${JSON.stringify(received.toString("latin1").slice(0, 200))}`));
    };
    socket.on("data", (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      finish();
    });
    // A client still sending when the server closes may see a reset once the reply is in.
    socket.on("error", (err) => finish(err));
    socket.on("close", () => finish(new Error("closed")));
  });
}

/** A whole reply with a Content-Length body, or undefined while part of it is still to come. */
function parseReply(data: Buffer): RawReply | undefined {
  const end = data.indexOf("\r\n\r\n");
  if (end < 0) return undefined;
  const [statusLine, ...lines] = data.subarray(0, end).toString("latin1").split("\r\n");
  const headers = Object.fromEntries(lines.map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  const length = Number(headers["content-length"]);
  const body = data.subarray(end + 4);
  if (!(body.length >= length)) return undefined;
  return { status: Number(statusLine.split(" ")[1]), headers, json: JSON.parse(body.subarray(0, length).toString("utf8")) };
}

const token = "raw-bytes-token";
const auth = `Authorization: Bearer ${token}\r\n`;

describe("REST API given raw bytes", () => {
  let js: JobShell;
  let base: string;
  let close: () => Promise<void>;
  const logged: string[] = [];

  beforeAll(async () => {
    js = await open({ log: () => {} });
    await js.upload("- name: greet\n  topics: [hello]\n  script: return 'Hello, ' + task.content.name\n");
    const server = await serve(js, { port: 0, host: "127.0.0.1", token, log: (l) => logged.push(l) });
    base = server.url;
    close = server.close;
  });

  afterAll(async () => {
    await close?.();
    await js?.close();
  });

  /** A normal request on a new connection still works. */
  const stillServes = async () => {
    const r = await sendRaw(base, `GET /healthz HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`);
    expect(r.status).toBe(200);
    expect(r.json.status).toBe("ok");
  };

  const refusals: [string, string, number, string][] = [
    ["GET //", `GET // HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 400, "invalid_path"],
    ["GET //host/x", `GET //host/x HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 400, "invalid_path"],
    ["GET http://host/x", `GET http://host/x HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 400, "invalid_path"],
    ["GET http://host/healthz", `GET http://host/healthz HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 400, "invalid_path"],
    ["GET /\\host/x", `GET /\\host/x HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 400, "invalid_path"],
    ["OPTIONS *", `OPTIONS * HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 400, "invalid_path"],
    ["CONNECT host:443", `CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n${auth}\r\n`, 400, "invalid_path"],
    ["an unknown method", `FROB /healthz HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 400, "bad_request"],
    ["a CR in a header", `GET /healthz HTTP/1.1\r\nHost: x\r\n${auth}X-Injected: a\rSet-Cookie: b\r\n\r\n`, 400, "bad_request"],
    ["a NUL in a header", `GET /healthz HTTP/1.1\r\nHost: x\r\n${auth}X-Injected: a\0b\r\n\r\n`, 400, "bad_request"],
    [
      "Content-Length with Transfer-Encoding",
      `POST /tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: 15\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n`,
      400,
      "bad_request",
    ],
    [
      "a malformed chunk in a body",
      `POST /tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"top\r\nzz\r\n`,
      400,
      "bad_request",
    ],
    ["a 20 KB URL", `GET /tasks/${"a".repeat(20 * 1024)} HTTP/1.1\r\nHost: x\r\n${auth}\r\n`, 431, "headers_too_large"],
    [
      "800 KB of headers",
      `GET /healthz HTTP/1.1\r\nHost: x\r\n${auth}${Array.from({ length: 800 }, (_, i) => `X-Filler-${i}: ${"v".repeat(1000)}\r\n`).join("")}\r\n`,
      431,
      "headers_too_large",
    ],
  ];

  for (const [name, bytes, status, error] of refusals) {
    it(`${name} is a ${status} ${error} in JSON, and the server goes on`, async () => {
      const r = await sendRaw(base, bytes);
      expect(r.status).toBe(status);
      expect(r.headers["content-type"]).toBe("application/json; charset=utf-8");
      expect(r.json.error).toBe(error);
      expect(typeof r.json.detail).toBe("string");
      await stillServes();
    });
  }

  it("POST //evil.example/tasks with a valid token creates no task", async () => {
    const before = (await js.stats()).issued;
    const body = '{"topic":"hello","content":{"name":"evil"}}';
    const r = await sendRaw(
      base,
      `POST //evil.example/tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(r.status).toBe(400);
    expect(r.json.error).toBe("invalid_path");
    expect((await js.stats()).issued).toBe(before);
    // The same body on the path itself is a task.
    const fine = await sendRaw(
      base,
      `POST /tasks HTTP/1.1\r\nHost: x\r\n${auth}Content-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    expect(fine.status).toBe(201);
    expect((await js.stats()).issued).toBe(before + 1);
  });

  it("the token is checked before the request target: GET // without it is a 401", async () => {
    for (const target of ["//", "//evil.example/tasks", "*", "http://host/x"]) {
      const r = await sendRaw(base, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
      expect(r.status, target).toBe(401);
      expect(r.json.error).toBe("unauthorized");
    }
    const connectWithout = await sendRaw(base, "CONNECT host:443 HTTP/1.1\r\nHost: host:443\r\n\r\n");
    expect(connectWithout.status).toBe(401);
  });

  it("a path with a query string is answered as before", async () => {
    const r = await sendRaw(base, `GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\n${auth}\r\n`);
    expect(r.status).toBe(200);
  });

  it("nothing above wrote to the server's log (no stack trace)", () => {
    expect(logged).toEqual([]);
  });
});
