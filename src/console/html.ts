// The console's one template helper: `html` is a tagged template that escapes every interpolated
// value, so that a topic, content, job or log line holding `<script>` shows as text. Only a fragment
// made by `html` itself (or marked with `trusted`, for markup the console writes) goes in as it is.

/** Markup that is already safe to put in a page. */
export class SafeHtml {
  constructor(readonly text: string) {}
  toString(): string {
    return this.text;
  }
}

const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** The text with the five characters that mean something in HTML, in text or in an attribute, escaped. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => entities[c]);
}

/** One interpolated value: safe fragments as they are, lists joined, nothing for null, undefined and false. */
function part(value: unknown): string {
  if (value instanceof SafeHtml) return value.text;
  if (value === null || value === undefined || value === false) return "";
  if (Array.isArray(value)) return value.map(part).join("");
  return escapeHtml(String(value));
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1];
  return new SafeHtml(out);
}

/** Markup the console itself wrote, taken as it is: never for a value that came from a task, a job or a request. */
export function trusted(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
