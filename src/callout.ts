// callout(): the HTTP client of job scripts and the shell (SPEC §7). A `path` without `url` goes to
// the jobshell REST API at api_url, with the API token when one is set.
import { JobshellError } from "./errors.js";

export interface CalloutRequest {
  path?: string;
  url?: string;
  method?: string;
  /** an object is sent as JSON; a string as it is */
  body?: unknown;
  headers?: Record<string, string>;
  /** seconds for the whole request (default 60, as in the source) */
  timeout?: number;
}

export interface CalloutResponse {
  code: number;
  body: string;
  headers: Record<string, string>;
}

/** The request could not be made or timed out. */
export class CalloutError extends JobshellError {
  override readonly code = "CALLOUT";
}

export async function callout(request: CalloutRequest, apiUrl: string, apiToken?: string): Promise<CalloutResponse> {
  if (request === null || typeof request !== "object") {
    throw new TypeError("callout() takes {path | url, method, body, headers, timeout}");
  }
  const { path, method = "GET", body, timeout = 60 } = request;
  if (request.url === undefined && path === undefined) throw new TypeError("callout(): give a url or a path");
  const target = request.url !== undefined ? new URL(path ?? "", request.url) : new URL(path!, apiUrl);
  const headers: Record<string, string> = { ...(request.headers ?? {}) };
  let payload: string | undefined;
  if (body !== undefined && body !== null) {
    payload = typeof body === "string" ? body : JSON.stringify(body);
    if (typeof body !== "string" && !hasHeader(headers, "content-type")) headers["content-type"] = "application/json";
  }
  if (request.url === undefined && apiToken && !hasHeader(headers, "authorization")) {
    headers.authorization = `Bearer ${apiToken}`;
  }
  let response: Response;
  try {
    response = await fetch(target, { method: method.toUpperCase(), headers, body: payload, signal: AbortSignal.timeout(timeout * 1000) });
  } catch (err) {
    const reason = (err as Error).name === "TimeoutError" ? `timed out after ${timeout} s` : describeCause(err);
    throw new CalloutError(`callout ${method.toUpperCase()} ${target.origin}${target.pathname} failed: ${reason}`, { cause: err });
  }
  return { code: response.status, body: await response.text(), headers: Object.fromEntries(response.headers) };
}

function hasHeader(headers: Record<string, string>, name: string): boolean {
  return Object.keys(headers).some((h) => h.toLowerCase() === name);
}

function describeCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
