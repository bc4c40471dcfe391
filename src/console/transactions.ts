// View 7, `/console/transactions`: the transactions seen on the queue, each with its status and its
// `Transaction.<Status>` events in order. They are read from the task index (the events are tasks),
// so that the transactions of every process show, not only this one's; at most `perStatus` events
// of each status are read.
import { transactionStatuses, transactionTopic } from "../transaction.js";
import { html, type SafeHtml } from "./html.js";
import { time, type View } from "./view.js";

const perStatus = 200;

interface Event {
  taskid: string;
  status: string;
  previousStatus: string | null;
  at: number;
}

export async function transactionsView(view: View, query: URLSearchParams): Promise<SafeHtml> {
  const only = query.get("xid") ?? undefined;
  const byXid = new Map<string, { xname: string; events: Event[] }>();
  const pages = await Promise.all(
    transactionStatuses.map((status) => view.js.tasks({ topic: transactionTopic(status), text: only, limit: perStatus })),
  );
  for (const page of pages) {
    for (const r of page.records) {
      const c = r.content as { xid?: unknown; xname?: unknown; status?: unknown; previousStatus?: unknown };
      if (typeof c.xid !== "string" || (only !== undefined && c.xid !== only)) continue;
      const entry = byXid.get(c.xid) ?? { xname: typeof c.xname === "string" ? c.xname : c.xid, events: [] };
      entry.events.push({ taskid: r.taskid, status: String(c.status), previousStatus: typeof c.previousStatus === "string" ? c.previousStatus : null, at: r.createdAt });
      byXid.set(c.xid, entry);
    }
  }
  const list = [...byXid.entries()]
    .map(([xid, t]) => ({ xid, ...t, events: t.events.sort((a, b) => a.at - b.at) }))
    .sort((a, b) => b.events[b.events.length - 1].at - a.events[a.events.length - 1].at);
  const rows = list.map((t) => {
    const last = t.events[t.events.length - 1];
    return html`<tr><td><a href="/console/transactions?xid=${encodeURIComponent(t.xid)}">${t.xname}</a></td>
<td><span class="status">${last.status}</span></td><td>${time(last.at)}</td>
<td><ol class="events">${t.events.map((e) => html`<li><a href="/console/tasks/${e.taskid}">${e.previousStatus ?? "begin"} → ${e.status}</a> ${time(e.at)}</li>`)}</ol></td></tr>`;
  });
  const body = html`
<p class="note">Transactions whose <code>Transaction.*</code> events are still kept as task records (job_transaction_event on).${only ? html` <a href="/console/transactions">All transactions</a>` : ""}</p>
<table aria-label="Transactions"><thead><tr><th scope="col">Transaction</th><th scope="col">Status</th><th scope="col">Changed</th><th scope="col">Events, in order</th></tr></thead>
<tbody>${rows}</tbody></table>
${list.length === 0 ? html`<p class="empty">No transaction events are kept.</p>` : ""}`;
  return view.page({ title: "Transactions", current: "/console/transactions" }, body);
}
