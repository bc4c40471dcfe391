// The one event stream of a console tab (GET /events): opened once with the types the page needs,
// resumed by the browser itself with Last-Event-ID after a break. The header's indicator says
// whether the page is live.

/** Open the stream of `types` (task events of one topic with `{topic}`); `handlers` maps an event type
 *  to a function of its parsed data. */
export function live(types, handlers, query = {}) {
  const indicator = document.getElementById("live");
  const show = (state, text) => {
    if (!indicator) return;
    indicator.dataset.state = state;
    indicator.textContent = text;
  };
  const source = new EventSource(`/events?${new URLSearchParams({ types: types.join(","), ...query })}`);
  show("connecting", "connecting…");
  source.addEventListener("open", () => show("on", "live"));
  source.addEventListener("error", () => show(source.readyState === EventSource.CLOSED ? "off" : "connecting", source.readyState === EventSource.CLOSED ? "offline" : "reconnecting…"));
  // Events this page missed: the server could not keep them for it. Pages that count them say so
  // themselves; the others say that a reload shows the queue as it is.
  const missed = { reset: () => show("stale", "missed events: reload"), dropped: (d) => show("stale", `${d.count} events missed: reload`) };
  for (const type of ["reset", "dropped"]) if (!handlers[type]) handlers = { ...handlers, [type]: missed[type] };
  for (const [type, handle] of Object.entries(handlers)) {
    source.addEventListener(type, (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        return;
      }
      handle(data, event);
    });
  }
  addEventListener("pagehide", () => source.close());
  return source;
}

/** An element with attributes and children; text is always set as text, never parsed as HTML. */
export function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child !== undefined && child !== null) node.append(child instanceof Node ? child : String(child));
  return node;
}

const pad = (n, width = 2) => String(n).padStart(width, "0");

/** Epoch ms as the console shows times: local date and time to the millisecond. */
export function formatTime(ms) {
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function timeElement(ms) {
  return el("time", { datetime: new Date(ms).toISOString() }, formatTime(ms));
}

export function statusBadge(status) {
  return el("span", { class: `status s-${status}` }, status);
}

/** Replace the element of `id` with the one of the same id in this page as the server renders it now. */
export async function refreshPart(id) {
  const reply = await fetch(location.href, { headers: { accept: "text/html" }, credentials: "same-origin" });
  if (!reply.ok) return false;
  const fresh = new DOMParser().parseFromString(await reply.text(), "text/html").getElementById(id);
  const here = document.getElementById(id);
  if (!fresh || !here) return false;
  here.replaceWith(document.adoptNode(fresh));
  return true;
}
