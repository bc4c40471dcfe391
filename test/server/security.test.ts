// Who may do what, over real HTTP: the console's sign-in and its cookie, the Origin check on writes,
// read-only deployments and tokens, the redirect of a browser without a session, and the security
// headers on every response.
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { open, type JobShell } from "../../src/jobshell.js";
import { serve, type RunningServer, type ServeOptions } from "../../src/server/index.js";

const token = "s3cret-token";
const readToken = "read-only-token";
const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

interface Reply {
  status: number;
  headers: Headers;
  json: any;
}

/** For a describe(): a memory-mode JobShell with one job, x, served with `options` on a free loopback port. */
function served(options: Omit<ServeOptions, "port" | "host">): { js: JobShell; server: RunningServer; base: string; host: string } {
  const at = {} as { js: JobShell; server: RunningServer; base: string; host: string };
  beforeAll(async () => {
    at.js = await open({ log: () => {} });
    await at.js.upload("- name: x\n  topics: [x]\n  script: return 1");
    at.server = await serve(at.js, { port: 0, host: "127.0.0.1", ...options });
    at.base = at.server.url;
    at.host = new URL(at.base).host;
  });
  afterAll(async () => {
    await at.server.close();
    await at.js.close();
  });
  return at;
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
  const at = served({ token, readToken });

  it("signs a browser in with the token: 303 to next with an HttpOnly, SameSite=Strict session cookie", async () => {
    const { reply, cookie } = await signIn(at.base, token);
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
    const proxied = await call(at.base, "POST", "/console/login", { ...form, "x-forwarded-proto": "https" }, new URLSearchParams({ token }).toString());
    expect(proxied.headers.get("set-cookie")).toMatch(/; Secure$/);
    // the cookie reads as the token does
    expect((await call(at.base, "GET", "/tasks", { cookie: cookie! })).status).toBe(200);
  });

  it("sends a wrong token back to the sign-in page, and never next outside the console", async () => {
    const wrong = await signIn(at.base, "not-it");
    expect(wrong.reply.status).toBe(303);
    expect(wrong.reply.headers.get("location")).toMatch(/^\/console\/login\?failed=1/);
    expect(wrong.cookie).toBeUndefined();
    for (const next of ["https://evil.example/", "//evil.example/console", "/tasks", "/consolex", "/console\\\\evil"]) {
      const { reply } = await signIn(at.base, token, next);
      expect(reply.headers.get("location"), next).toBe("/console");
    }
  });

  it("refuses a forged, tampered or cleared cookie", async () => {
    const { cookie } = await signIn(at.base, token);
    const [name, value] = cookie!.split("=");
    const parts = value.split(".");
    const longer = `${name}=${parts[0]}.${parts[1]}.${Number(parts[2]) + 1000}.${parts[3]}`;
    expect((await call(at.base, "GET", "/tasks", { cookie: longer })).status).toBe(401);
    expect((await call(at.base, "GET", "/tasks", { cookie: `${name}=v1.w.9999999999.${"A".repeat(43)}` })).status).toBe(401);
    const out = await call(at.base, "POST", "/console/logout", { cookie: cookie!, origin: `http://${at.host}` });
    expect(out.status).toBe(303);
    expect(out.headers.get("set-cookie")).toMatch(/^jobshell_session=; .*Max-Age=0/);
  });

  it("checks Origin on writes carried by the cookie: none or foreign is 403 forbidden_origin, its own passes", async () => {
    const { cookie } = await signIn(at.base, token);
    const json = { "content-type": "application/json", cookie: cookie! };
    const none = await call(at.base, "POST", "/tasks", json, taskBody);
    expect(none.status).toBe(403);
    expect(none.json.error).toBe("forbidden_origin");
    const foreign = await call(at.base, "POST", "/tasks", { ...json, origin: "http://evil.example" }, taskBody);
    expect(foreign.status).toBe(403);
    expect(foreign.json.error).toBe("forbidden_origin");
    const own = await call(at.base, "POST", "/tasks", { ...json, origin: `http://${at.host}` }, taskBody);
    expect(own.status).toBe(201);
    // the bearer token needs no Origin: it is not something a page can send for another site
    expect((await call(at.base, "POST", "/tasks", { "content-type": "application/json", authorization: `Bearer ${token}` }, taskBody)).status).toBe(201);
  });

  it("lets the read token read and answers its writes 403 read_only, by header and by cookie", async () => {
    const bearer = { authorization: `Bearer ${readToken}`, "content-type": "application/json" };
    expect((await call(at.base, "GET", "/tasks", bearer)).status).toBe(200);
    const post = await call(at.base, "POST", "/tasks", bearer, taskBody);
    expect(post.status).toBe(403);
    expect(post.json.error).toBe("read_only");
    const { cookie } = await signIn(at.base, readToken);
    const byCookie = await call(at.base, "POST", "/jobs", { cookie: cookie!, origin: `http://${at.host}` }, "- name: x\n  topics: [x]\n  script: return 1");
    expect(byCookie.status).toBe(403);
    expect(byCookie.json.error).toBe("read_only");
  });

  it("sends a browser without a session from a console page to the sign-in page; the API answers 401", async () => {
    const page = await call(at.base, "GET", "/console/tasks?status=failed", { accept: "text/html,application/xhtml+xml" });
    expect(page.status).toBe(303);
    expect(page.headers.get("location")).toBe(`/console/login?next=${encodeURIComponent("/console/tasks?status=failed")}`);
    const api = await call(at.base, "GET", "/tasks", { accept: "text/html" });
    expect(api.status).toBe(401);
    expect(api.json.error).toBe("unauthorized");
    // the sign-in page and the assets are reached without a session (the console serves them)
    for (const path of ["/console/login", "/console/assets/app.js"]) {
      const open = await call(at.base, "GET", path, { accept: "text/html" });
      expect([401, 303], path).not.toContain(open.status);
    }
  });

  it("puts the security headers on every response: answers, refusals and what the parser refuses", async () => {
    for (const reply of [
      await call(at.base, "GET", "/healthz", { authorization: `Bearer ${token}` }),
      await call(at.base, "GET", "/healthz"),
      await call(at.base, "GET", "/nothing", { authorization: `Bearer ${token}` }),
    ]) {
      expect(reply.headers.get("content-security-policy")).toBe(csp);
      expect(reply.headers.get("x-content-type-options")).toBe("nosniff");
      expect(reply.headers.get("referrer-policy")).toBe("no-referrer");
    }
    const raw = await new Promise<string>((resolve, reject) => {
      const url = new URL(at.base);
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
  const at = served({});

  it("is open, but refuses a write from another site's page", async () => {
    const json = { "content-type": "application/json" };
    expect((await call(at.base, "POST", "/tasks", json, taskBody)).status).toBe(201);
    const foreign = await call(at.base, "POST", "/tasks", { ...json, origin: "http://evil.example" }, taskBody);
    expect(foreign.status).toBe(403);
    expect(foreign.json.error).toBe("forbidden_origin");
    expect((await call(at.base, "DELETE", "/jobs/x", { origin: "null" })).json.error).toBe("forbidden_origin");
    expect((await call(at.base, "POST", "/tasks", { ...json, origin: at.base }, taskBody)).status).toBe(201);
  });

  it("signs in with any token by redirecting, since there is nothing to check", async () => {
    const { reply, cookie } = await signIn(at.base, "");
    expect(reply.status).toBe(303);
    expect(reply.headers.get("location")).toBe("/console/tasks?status=failed");
    expect(cookie).toBeUndefined();
  });
});

describe("jobshell serve --read-only", () => {
  const at = served({ token, readOnly: true });

  it("answers every write 403 read_only, even with the full token, and still reads", async () => {
    const auth = { authorization: `Bearer ${token}` };
    for (const [method, path, body] of [
      ["POST", "/tasks", taskBody],
      ["POST", "/jobs", "- name: y\n  topics: [y]\n  script: return 1"],
      ["DELETE", "/jobs/x", undefined],
    ] as const) {
      const reply = await call(at.base, method, path, { ...auth, "content-type": "application/json" }, body);
      expect(reply.status, `${method} ${path}`).toBe(403);
      expect(reply.json.error).toBe("read_only");
    }
    expect(at.js.jobs().map((d) => d.name)).toEqual(["x"]);
    expect((await call(at.base, "GET", "/jobs", auth)).status).toBe(200);
    // a browser still signs in, to read
    const { reply, cookie } = await signIn(at.base, token);
    expect(reply.status).toBe(303);
    expect((await call(at.base, "GET", "/tasks", { cookie: cookie! })).status).toBe(200);
  });
});
