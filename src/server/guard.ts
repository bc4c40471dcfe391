// Who may do what, decided before any route runs: the bearer token or the console's session cookie
// (session.ts), the Origin check on writes a browser sends, and read-only deployments. The verdict
// goes to access.ts, where every route (the REST API and the console alike) reads it.
import type { IncomingMessage } from "node:http";
import { grant, type Access } from "./access.js";
import { HttpError } from "./http.js";
import type { Sessions } from "./session.js";

export interface GuardOptions {
  sessions: Sessions;
  /** every write answers 403 read_only, whatever the token */
  readOnly: boolean;
}

/** Paths a browser must reach before it has signed in: the sign-in page and the console's assets. */
export function isOpenPath(path: string): boolean {
  return path === "/console/login" || path === "/console/logout" || path.startsWith("/console/assets/");
}

/** GET and HEAD change nothing; every other method is a write. */
export function isWrite(method: string | undefined): boolean {
  return method !== "GET" && method !== "HEAD";
}

/**
 * Authenticate the request and grant it what it may do, or throw the refusal. A console page asked
 * for by a browser without a session is sent to the sign-in page instead of answered with JSON.
 */
export function guard(req: IncomingMessage, path: string, options: GuardOptions): void {
  const { sessions } = options;
  const bearer = /^Bearer\s+(.+)$/i.exec(req.headers.authorization ?? "")?.[1].trim();
  let access: Access | undefined;
  let byCookie = false;
  if (!sessions.required) access = "write";
  else if (bearer !== undefined) access = sessions.tokenAccess(bearer);
  else {
    access = sessions.cookieAccess(req);
    byCookie = access !== undefined;
  }
  const open = isOpenPath(path);
  if (access === undefined && !open) {
    if (isConsolePage(req, path)) {
      const next = encodeURIComponent(req.url ?? "/console");
      throw new HttpError("sign_in", "sign in to the console first", {}, { location: `/console/login?next=${next}` });
    }
    const given = bearer !== undefined || req.headers.authorization !== undefined ? "wrong" : "missing";
    throw new HttpError("unauthorized", `${given} bearer token: send Authorization: Bearer <JOBSHELL_API_TOKEN> (or sign in at /console/login)`);
  }
  if (isWrite(req.method)) {
    // A browser sends Origin with every write; a write from another site's page must not pass on
    // the strength of the cookie, nor reach an open loopback server.
    const origin = req.headers.origin;
    if ((byCookie || origin !== undefined) && !sameOrigin(origin, req.headers.host)) {
      throw new HttpError("forbidden_origin", `a write from a page must come from this server's own origin, got Origin: ${origin ?? "(none)"}`);
    }
  }
  if (access === undefined) return;
  grant(req, options.readOnly ? "read" : access);
}

/** A console page (not an asset, not the API) asked for by a browser, which can follow a redirect. */
function isConsolePage(req: IncomingMessage, path: string): boolean {
  return (path === "/console" || path.startsWith("/console/")) && !isWrite(req.method) && (req.headers.accept ?? "").includes("text/html");
}

function sameOrigin(origin: string | undefined, host: string | undefined): boolean {
  if (origin === undefined || host === undefined) return false;
  try {
    const url = new URL(origin);
    return (url.protocol === "http:" || url.protocol === "https:") && url.host === host.toLowerCase();
  } catch {
    return false;
  }
}
