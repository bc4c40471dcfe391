// callout(): the HTTP client of job scripts and the shell. A `path` without `url` goes to
// the jobshell REST API at api_url, with the API token when one is set. As in the source, the
// connect and request timeouts default to 60 s each, and an error status is thrown (raise_error).
import http from "node:http";
import https from "node:https";
import { describe } from "./describe.js";
import { JobshellError } from "./errors.js";
import { isMU } from "./mu.js";

export interface CalloutRequest {
  /** a path on the REST API at api_url, or on `url` when given */
  path?: string;
  url?: string;
  /** default GET */
  method?: string;
  /** a string or bytes are sent as they are; anything else as JSON */
  body?: unknown;
  headers?: Record<string, string>;
  /** seconds to establish the connection (default 60, as in the source) */
  connect_timeout?: number;
  /** seconds for the whole request, from start to the last byte of the answer (default 60) */
  request_timeout?: number;
  /** the same as request_timeout */
  timeout?: number;
  /** throw CalloutStatusError for a status of 400 or more (default true); false returns every answer */
  raise_error?: boolean;
}

export interface CalloutResponse {
  code: number;
  body: string;
  headers: Record<string, string>;
}

export const defaultCalloutTimeout = 60;

/** Answers larger than this are refused rather than held in memory. */
export const maxCalloutResponseBytes = 64 * 1024 * 1024;

const requestFields = ["path", "url", "method", "body", "headers", "connect_timeout", "request_timeout", "timeout", "raise_error"];

/** The request could not be made: no connection, a broken one, or an answer too large. */
export class CalloutError extends JobshellError {
  override readonly code: string = "CALLOUT";
}

/** The connection (`phase: "connect"`) or the whole request (`"request"`) took longer than allowed. */
export class CalloutTimeoutError extends CalloutError {
  override readonly code: string = "CALLOUT_TIMEOUT";
  constructor(
    message: string,
    readonly phase: "connect" | "request",
    readonly seconds: number,
  ) {
    super(message);
  }
}

/** The server answered with a status of 400 or more; the answer is kept whole. */
export class CalloutStatusError extends CalloutError {
  override readonly code: string = "CALLOUT_STATUS";
  readonly status: number;
  readonly body: string;
  readonly headers: Record<string, string>;
  constructor(
    message: string,
    readonly response: CalloutResponse,
  ) {
    super(message);
    this.status = response.code;
    this.body = response.body;
    this.headers = response.headers;
  }
}

export async function callout(request: CalloutRequest, apiUrl: string, apiToken?: string): Promise<CalloutResponse> {
  if (request === null || typeof request !== "object" || Array.isArray(request)) {
    throw new TypeError(`callout() takes {${requestFields.join(", ")}}`);
  }
  const unknown = Object.keys(request).filter((k) => !requestFields.includes(k));
  if (unknown.length > 0) throw new TypeError(`callout(): unknown argument ${unknown.join(", ")} (it takes ${requestFields.join(", ")})`);
  const { path, url } = request;
  if (url === undefined && path === undefined) throw new TypeError("callout(): give a url or a path");
  if (url !== undefined && typeof url !== "string") throw new TypeError(`callout(): url must be a string, got ${describe(url)}`);
  if (path !== undefined && typeof path !== "string") throw new TypeError(`callout(): path must be a string, got ${describe(path)}`);
  const method = request.method ?? "GET";
  if (typeof method !== "string" || !/^[A-Za-z]+$/.test(method)) throw new TypeError(`callout(): method must be a word like GET or POST, got ${describe(method)}`);
  if (request.timeout !== undefined && request.request_timeout !== undefined) {
    throw new TypeError("callout(): give timeout or request_timeout, not both");
  }
  const connectSeconds = seconds("connect_timeout", request.connect_timeout);
  const requestSeconds = seconds(request.timeout !== undefined ? "timeout" : "request_timeout", request.timeout ?? request.request_timeout);
  const raiseError = request.raise_error ?? true;

  let target: URL;
  try {
    target = url !== undefined ? new URL(path ?? "", url) : new URL(path!, apiUrl);
  } catch {
    throw new TypeError(`callout(): not a valid URL: ${url ?? apiUrl} ${path ?? ""}`.trim());
  }
  if (target.protocol !== "http:" && target.protocol !== "https:") {
    throw new TypeError(`callout(): only http and https URLs are supported, got ${target.protocol}`);
  }
  // The API token goes with a path: a path that names another server ("http://...", "//host/...") must
  // not take it there.
  if (url === undefined && target.origin !== new URL(apiUrl).origin) {
    throw new TypeError(`callout(): path ${path} leaves api_url (${new URL(apiUrl).origin}); give url to call another server`);
  }

  const headers: Record<string, string> = {};
  if (request.headers !== undefined) {
    const given = isMU(request.headers) ? (request.headers as unknown as { dictionary: Record<string, unknown> }).dictionary : request.headers;
    if (given === null || typeof given !== "object") throw new TypeError("callout(): headers must be an object of names and values");
    for (const [name, value] of Object.entries(given)) headers[name] = String(value);
  }
  let payload: string | Uint8Array | undefined;
  const { body } = request;
  if (body !== undefined && body !== null) {
    if (typeof body === "string" || body instanceof Uint8Array) payload = body;
    else {
      payload = JSON.stringify(body);
      if (!hasHeader(headers, "content-type")) headers["content-type"] = "application/json";
    }
  }
  if (url === undefined && apiToken && !hasHeader(headers, "authorization")) headers.authorization = `Bearer ${apiToken}`;

  const what = `callout ${method.toUpperCase()} ${target.origin}${target.pathname}`;
  const response = await send(target, method.toUpperCase(), headers, payload, connectSeconds, requestSeconds, what);
  if (raiseError && response.code >= 400) {
    throw new CalloutStatusError(`${what}: HTTP ${response.code}${response.body ? `: ${response.body.slice(0, 300)}` : ""}`, response);
  }
  return response;
}

function send(
  target: URL,
  method: string,
  headers: Record<string, string>,
  payload: string | Uint8Array | undefined,
  connectSeconds: number,
  requestSeconds: number,
  what: string,
): Promise<CalloutResponse> {
  return new Promise((resolve, reject) => {
    const client = target.protocol === "https:" ? https : http;
    const req = client.request(target, { method, headers });
    let settled = false;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(connectTimer);
      clearTimeout(requestTimer);
      req.destroy();
      reject(err);
    };
    const connectTimer = setTimeout(
      () => fail(new CalloutTimeoutError(`${what}: could not connect within ${connectSeconds} s`, "connect", connectSeconds)),
      connectSeconds * 1000,
    );
    const requestTimer = setTimeout(
      () => fail(new CalloutTimeoutError(`${what}: no complete answer within ${requestSeconds} s`, "request", requestSeconds)),
      requestSeconds * 1000,
    );
    req.on("socket", (socket) => {
      // A kept-alive socket is connected already.
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once("connect", () => clearTimeout(connectTimer));
    });
    req.on("error", (err) => fail(new CalloutError(`${what} failed: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })));
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxCalloutResponseBytes) fail(new CalloutError(`${what}: the answer is larger than ${maxCalloutResponseBytes} bytes`));
        else chunks.push(chunk);
      });
      res.on("error", (err) => fail(new CalloutError(`${what} failed while reading the answer: ${err.message}`, { cause: err })));
      res.on("end", () => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(requestTimer);
        const shown: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (value !== undefined) shown[name] = Array.isArray(value) ? value.join(", ") : value;
        }
        resolve({ code: res.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8"), headers: shown });
      });
    });
    req.end(payload);
  });
}

function seconds(name: string, value: unknown): number {
  if (value === undefined || value === null) return defaultCalloutTimeout;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`callout(): ${name} must be a positive number of seconds, got ${describe(value)}`);
  }
  return value;
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}
