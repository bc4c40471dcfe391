// Browser sessions for the console: a browser signs in once with the API token and then carries a
// signed cookie instead (a page cannot send Authorization headers). The cookie holds what it grants
// and when it expires, signed with HMAC-SHA256 under a key derived from the tokens, so that it needs
// no server-side store and a changed token ends every session.
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Access } from "./access.js";

export const sessionCookie = "jobshell_session";

/** How long a sign-in lasts. */
export const sessionSeconds = 12 * 60 * 60;

/** The tokens a server takes: either grants what it is named after; none set means open (loopback). */
export interface Tokens {
  write?: string;
  read?: string;
}

export class Sessions {
  readonly #key: Buffer;
  readonly #digests: { access: Access; digest: Buffer }[];

  constructor(tokens: Tokens) {
    this.#key = createHash("sha256").update(`jobshell session\0${tokens.write ?? ""}\0${tokens.read ?? ""}`).digest();
    this.#digests = [];
    if (tokens.write) this.#digests.push({ access: "write", digest: digest(tokens.write) });
    if (tokens.read) this.#digests.push({ access: "read", digest: digest(tokens.read) });
  }

  /** Whether any token is set (else the server is open, on loopback only). */
  get required(): boolean {
    return this.#digests.length > 0;
  }

  /** What a token grants, compared in constant time; undefined for a wrong one. */
  tokenAccess(token: string): Access | undefined {
    const given = digest(token);
    let found: Access | undefined;
    // Every digest is compared, so that the time taken does not tell which token was near.
    for (const { access, digest: d } of this.#digests) if (timingSafeEqual(given, d) && !found) found = access;
    return found;
  }

  /** The cookie value granting `access` until `sessionSeconds` from `now`. */
  issue(access: Access, now = Date.now()): string {
    const body = `v1.${access === "write" ? "w" : "r"}.${Math.floor(now / 1000) + sessionSeconds}`;
    return `${body}.${this.#sign(body)}`;
  }

  /** What the request's session cookie grants; undefined without one, or for a forged or expired one. */
  cookieAccess(req: IncomingMessage, now = Date.now()): Access | undefined {
    if (!this.required) return undefined;
    const value = cookieValue(req.headers.cookie, sessionCookie);
    const match = value === undefined ? null : /^(v1\.([wr])\.(\d{1,12}))\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!match) return undefined;
    const [, body, access, expiry, signature] = match;
    const expected = Buffer.from(this.#sign(body));
    if (!timingSafeEqual(Buffer.from(signature), expected)) return undefined;
    if (Number(expiry) * 1000 <= now) return undefined;
    return access === "w" ? "write" : "read";
  }

  #sign(body: string): string {
    return createHmac("sha256", this.#key).update(body).digest("base64url");
  }
}

/** The Set-Cookie header of a session: HttpOnly (no script reads it), SameSite=Strict (no other site
 *  sends it), and Secure when the browser reached the server over HTTPS (through a proxy that says so). */
export function sessionSetCookie(value: string, secure = false): string {
  return `${sessionCookie}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${sessionSeconds}${secure ? "; Secure" : ""}`;
}

/** Whether the browser's connection was HTTPS: ours, or a proxy's in front (X-Forwarded-Proto). */
export function overHttps(req: IncomingMessage): boolean {
  return (req.socket as { encrypted?: boolean }).encrypted === true || req.headers["x-forwarded-proto"] === "https";
}

/** The Set-Cookie header that ends the session. */
export function sessionClearCookie(): string {
  return `${sessionCookie}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`;
}

/** Where a sign-in may send the browser next: a console path, else the console's start. */
export function nextPath(raw: string | null | undefined): string {
  if (typeof raw !== "string" || !/^\/console(?:[/?#]|$)/.test(raw) || /[\\\r\n]/.test(raw)) return "/console";
  return raw;
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}
