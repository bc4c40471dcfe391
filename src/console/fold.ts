// Values from tasks can be any size: a page never holds one whole. `shorten` cuts a value down to
// what a summary can show; `folded` shows a value in a <details> that is closed when it is long, and
// even open holds at most `maxShown` characters, with the rest named and left on the server.
import { html, type SafeHtml } from "./html.js";

/** The most characters of one value a page holds. */
export const maxShown = 16_384;
/** Past this many characters or lines a value is folded. */
const foldChars = 240;
const foldLines = 6;

/** A copy of `value` small enough for a summary: long strings, lists, objects and deep nesting cut, saying so. */
export function shorten(value: unknown, depth = 0): unknown {
  if (typeof value === "string") return value.length > 200 ? `${value.slice(0, 200)}… (${value.length - 200} more characters)` : value;
  if (value === null || typeof value !== "object") return value;
  if (depth >= 6) return Array.isArray(value) ? `[… ${value.length} items]` : "{…}";
  if (Array.isArray(value)) {
    const kept = value.slice(0, 50).map((v) => shorten(v, depth + 1));
    if (value.length > 50) kept.push(`… ${value.length - 50} more items`);
    return kept;
  }
  const entries = Object.entries(value);
  const kept: Record<string, unknown> = {};
  for (const [k, v] of entries.slice(0, 50)) kept[k] = shorten(v, depth + 1);
  if (entries.length > 50) kept["…"] = `${entries.length - 50} more keys`;
  return kept;
}

/** The value as text: strings as they are, the rest as indented JSON. */
export function asText(value: unknown): string {
  if (typeof value === "string") return value;
  if (value === undefined) return "";
  return JSON.stringify(value, null, 2) ?? String(value);
}

/** A value in a <pre>; folded behind its first line when it is long, and never more than maxShown characters. */
export function folded(label: string, value: unknown): SafeHtml {
  const text = asText(value);
  const cut = text.length > maxShown;
  const shown = cut ? text.slice(0, maxShown) : text;
  const note = cut ? html`<p class="note">Showing ${maxShown.toLocaleString("en")} of ${text.length.toLocaleString("en")} characters.</p>` : "";
  const lines = text.split("\n", foldLines + 1).length;
  if (text.length <= foldChars && lines <= foldLines) return html`<pre class="value" aria-label="${label}">${shown}</pre>`;
  // The summary: a string's first line, or the value as compact JSON, cut short.
  const first = (typeof value === "string" ? text.split("\n", 1)[0] : (JSON.stringify(value) ?? "")).slice(0, 80);
  return html`<details class="fold"><summary>${label}: <code>${first}</code> … <span class="size">${text.length.toLocaleString("en")} characters</span></summary><pre class="value">${shown}</pre>${note}</details>`;
}
