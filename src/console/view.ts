// What every console view is given, and the small pieces of markup several views share.
import type { IncomingMessage } from "node:http";
import type { JobShell } from "../jobshell.js";
import { formatTimestamp } from "../record.js";
import { canWrite } from "../server/access.js";
import { html, type SafeHtml } from "./html.js";
import { page, type PageOptions } from "./layout.js";

export interface ConsoleOptions {
  /** a token is set: there are sessions, and a sign-out button */
  sessions?: boolean;
}

/** One request to a view: the library, the request, and what it may do. */
export class View {
  readonly write: boolean;
  constructor(
    readonly js: JobShell,
    readonly req: IncomingMessage,
    readonly options: ConsoleOptions,
  ) {
    this.write = canWrite(req);
  }

  page(options: Omit<PageOptions, "signOut" | "where">, body: SafeHtml): SafeHtml {
    return page({ ...options, signOut: this.options.sessions, where: `${this.js.mode} · ${this.js.location}` }, body);
  }
}

export function time(epochMs: number | undefined): SafeHtml | string {
  if (epochMs === undefined) return "";
  const full = formatTimestamp(epochMs);
  // To the millisecond in the page; the microseconds and the offset in the tooltip.
  return html`<time datetime="${new Date(epochMs).toISOString()}" title="${full}">${full.slice(0, 23).replace("T", " ")}</time>`;
}

export function statusBadge(status: string): SafeHtml {
  return html`<span class="status s-${status}">${status}</span>`;
}

export function duration(ms: number | undefined): string {
  if (ms === undefined) return "";
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(2)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** The URL of a view with a query, empty values left out. */
export function viewUrl(path: string, query: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export function errorBox(message: string | undefined): SafeHtml | "" {
  return message ? html`<div class="error" role="alert">${message}</div>` : "";
}
