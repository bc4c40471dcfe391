// Who may do what, over real HTTP: the console's sign-in and its cookie, the Origin check on writes,
// read-only deployments and tokens, the redirect of a browser without a session, and the security
// headers on every response.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer } from "../../src/server/index.js";

const token = "s3cret-token";
const readToken = "read-only-token";
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Reply {
  status: number;
  headers: Headers;
  json: any;
}

async function call(base: string, method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  const res = await fetch(base + path, { method, headers, body, redirect: "manual" });
  const text = await res.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, headers: res.headers, json };
}

const form = { "content-type": "application/x-www-form-urlencoded" };
const taskBody = JSON.stringify({ topic: "t", content: {} });

/** Sign in with `secret`; the cookie pair (name=value) the server set, and the reply. */
async function signIn(base: string, secret: string, next = "/console/tasks?status=failed"): Promise<{ reply: Reply; cookie?: string }> {
  const reply = await call(base, "POST", "/console/login", form, new URLSearchParams({ token: secret, next }).toString());
  const set = reply.headers.get("set-cookie");
  return { reply, cookie: set?.split(";")[0] };
}

describe("security with a token", () => {
  let js: JobShell;
  let server: RunningServer;
  let base: string;
  let host: string;

  beforeAll(async () => {
    js = await open({ log: () => {} });
    server = await serve(js, { port: 0, host: "127.0.0.1", token, readToken });
    base = server.url;
    host = new URL(base).host;
  });
  afterAll(async () => {
    await server.close();
    await js.close();
  });

  it("signs a browser in with the token: 303 to next with an HttpOnly, SameSite=Strict session cookie", async () => {
    const { reply, cookie } = await signIn(base, token);
    expect(reply.status).toBe(303);
    expect(reply.headers.get("location")).toBe("/console/tasks?status=failed");
    const set = reply.headers.get("set-cookie")!;
    expect(set).toMatch(/^jobshell_session=[^;]+; /);
    expect(set).toContain("HttpOnly");
    expect(set).toContain("SameSite=Strict");
    expect(set).toContain("Path=/");
    expect(set).not.toContain(token);
    expect(set).not.toContain("Secure");
    // behind an HTTPS proxy that says so, the cookie is Secure too
    const proxied = await call(base, "POST", "/console/login", { ...form, "x-forwarded-proto": "https" }, new URLSearchParams({ token }).toString());
    expect(proxied.headers.get("set-cookie")).toMatch(/; Secure$/);
    // the cookie reads as the token does
    expect((await call(base, "GET", "/tasks", { cookie: cookie! })).status).toBe(200);
  });

  it("sends a wrong token back to the sign-in page, and never next outside the console", async () => {
    const wrong = await signIn(base, "not-it");
    expect(wrong.reply.status).toBe(303);
    expect(wrong.reply.headers.get("location")).toMatch(/^\/console\/login\?failed=1/);
    expect(wrong.cookie).toBeUndefined();
    for (const next of ["https://evil.example/", "//evil.example/console", "/tasks", "/consolex", "/console\\\\evil"]) {
      const { reply } = await signIn(base, token, next);
      expect(reply.headers.get("location"), next).toBe("/console");
    }
  });

  it("refuses a forged, tampered or cleared cookie", async () => {
    const { cookie } = await signIn(base, token);
    const [name, value] = cookie!.split("=");
    const parts = value.split(".");
    const longer = `${name}=${parts[0]}.${parts[1]}.${Number(parts[2]) + 1000}.${parts[3]}`;
    expect((await call(base, "GET", "/tasks", { cookie: longer })).status).toBe(401);
    expect((await call(base, "GET", "/tasks", { cookie: `${name}=v1.w.9999999999.${"A".repeat(43)}` })).status).toBe(401);
    const out = await call(base, "POST", "/console/logout", { cookie: cookie!, origin: `http://${host}` });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^jobshell_session=; .*Max-Age=0/);
  });

  it("checks Origin on writes carried by the cookie: none or foreign is 403 forbidden_origin, its own passes", async () => {
    const { cookie } = await signIn(base, token);
    const json = { "content-type": "application/json", cookie: cookie! };
    const none = await call(base, "POST", "/tasks", json, taskBody);
    expect(none.status).toBe(403);
    expect(none.json.error).toBe("forbidden_origin");
    const foreign = await call(base, "POST", "/tasks", { ...json, origin: "http://evil.example" }, taskBody);
    expect(foreign.status).toBe(403);
    expect(foreign.json.error).toBe("forbidden_origin");
    const own = await call(base, "POST", "/tasks", { ...json, origin: `http://${host}` }, taskBody);
    expect(own.status).toBe(201);
    // the bearer token needs no Origin: it is not something a page can send for another site
    expect((await call(base, "POST", "/tasks", { "content-type": "application/json", authorization: `Bearer ${token}` }, taskBody)).status).toBe(201);
  });

  it("lets the read token read and answers its writes 403 read_only, by header and by cookie", async () => {
    const bearer = { authorization: `Bearer ${readToken}`, "content-type": "application/json" };
    expect((await call(base, "GET", "/tasks", bearer)).status).toBe(200);
    const post = await call(base, "POST", "/tasks", bearer, taskBody);
    expect(post.status).toBe(403);
    expect(post.json.error).toBe("read_only");
    const { cookie } = await signIn(base, readToken);
    const byCookie = await call(base, "POST", "/jobs", { cookie: cookie!, origin: `http://${host}` }, "- name: x\n  topics: [x]\n  script: return 1");
    expect(byCookie.status).toBe(403);
    expect(byCookie.json.error).toBe("read_only");
  });

  it("sends a browser without a session from a console page to the sign-in page; the API answers 401", async () => {
    const page = await call(base, "GET", "/console/tasks?status=failed", { accept: "text/html,application/xhtml+xml" });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe(`/console/login?next=${encodeURIComponent("/console/tasks?status=failed")}`);
    const api = await call(base, "GET", "/tasks", { accept: "text/html" });
    expect(api.status).toBe(401);
    expect(api.json.error).toBe("unauthorized");
    // the sign-in page and the assets are reached without a session (the console serves them)
    for (const path of ["/console/login", "/console/assets/app.js"]) {
      const open = await call(base, "GET", path, { accept: "text/html" });
      expect([401, 303], path).not.toContain(open.status);
    }
  });

  it("puts the security headers on every response: answers, refusals and what the parser refuses", async () => {
    for (const reply of [
      await call(base, "GET", "/healthz", { authorization: `Bearer ${token}` }),
      await call(base, "GET", "/healthz"),
      await call(base, "GET", "/nothing", { authorization: `Bearer ${token}` }),
    ]) {
      expect(reply.headers.get("content-security-policy")).toBe(csp);
      expect(reply.headers.get("x-content-type-options")).toBe("nosniff");
      expect(reply.headers.get("referrer-policy")).toBe("no-referrer");
    }
    const raw = await new Promise<string>((resolve, reject) => {
      const url = new URL(base);
      const socket = connect(Number(url.port), url.hostname, () => socket.write("GET /tasks HTTP/1.1\r\nHost: x\r\nBad\0Header: 1\r\n\r\n"));
      let text = "";
      socket.on("data", (d) => (text += d));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400/);
    expect(raw.toLowerCase()).toContain(`content-security-policy: ${csp.toLowerCase()}`);
  });
});

describe("security without a token (loopback)", () => {
  let js: JobShell;
  let server: RunningServer;
  let base: string;

  beforeAll(async () => {
    js = await open({ log: () => {} });
    await js.upload("- name: x\n  topics: [x]\n  script: return 1");
    server = await serve(js, { port: 0, host: "127.0.0.1" });
    base = server.url;
  });
  afterAll(async () => {
    await server.close();
    await js.close();
  });

  it("is open, but refuses a write from another site's page", async () => {
    const json = { "content-type": "application/json" };
    expect((await call(base, "POST", "/tasks", json, taskBody)).status).toBe(201);
    const foreign = await call(base, "POST", "/tasks", { ...json, origin: "http://evil.example" }, taskBody);
    expect(foreign.status).toBe(403);
    expect(foreign.json.error).toBe("forbidden_origin");
    expect((await call(base, "DELETE", "/jobs/x", { origin: "null" })).json.error).toBe("forbidden_origin");
    expect((await call(base, "POST", "/tasks", { ...json, origin: base }, taskBody)).status).toBe(201);
  });

  it("signs in with any token by redirecting, since there is nothing to check", async () => {
    const { reply, cookie } = await signIn(base, "");
    expect(reply.status).toBe(303);
    expect(reply.headers.get("location")).toBe("/console/tasks?status=failed");
    expect(cookie).toBeUndefined();
  });
});

describe("jobshell serve --read-only", () => {
  let js: JobShell;
  let server: RunningServer;
  let base: string;

  beforeAll(async () => {
    js = await open({ log: () => {} });
    await js.upload("- name: x\n  topics: [x]\n  script: return 1");
    server = await serve(js, { port: 0, host: "127.0.0.1", token, readOnly: true });
    base = server.url;
  });
  afterAll(async () => {
    await server.close();
    await js.close();
  });

  it("answers every write 403 read_only, even with the full token, and still reads", async () => {
    const auth = { authorization: `Bearer ${token}` };
    for (const [method, path, body] of [
      ["POST", "/tasks", taskBody],
      ["POST", "/jobs", "- name: y\n  topics: [y]\n  script: return 1"],
      ["DELETE", "/jobs/x", undefined],
    ] as const) {
      const reply = await call(base, method, path, { ...auth, "content-type": "application/json" }, body);
      expect(reply.status, `${method} ${path}`).toBe(403);
      expect(reply.json.error).toBe("read_only");
    }
    expect(js.jobs().map((d) => d.name)).toEqual(["x"]);
    expect((await call(base, "GET", "/jobs", auth)).status).toBe(200);
    // a browser still signs in, to read
    const { reply, cookie } = await signIn(base, token);
    expect(reply.status).toBe(303);
    expect((await call(base, "GET", "/tasks", { cookie: cookie! })).status).toBe(200);
  });
});
