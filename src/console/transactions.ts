// View 7, `/console/transactions`: the transactions seen on the queue, each with its status and its
// `Transaction.<Status>` events in order, grouped as GET /transactions groups them (from the task
// records those events are, so every process's transactions show). transactions.js refreshes the
// table when a transaction event arrives.
import { group } from "../server/transactions.js";
import { transactionStatuses, transactionTopic } from "../transaction.js";
import { html, type SafeHtml } from "./html.js";
import { statusBadge, time, viewUrl, type View } from "./view.js";

/** Records read per transaction status. */
const perStatus = 200;

export async function transactionsView(view: View, query: URLSearchParams): Promise<SafeHtml> {
  const only = query.get("xid")?.trim() || undefined;
  const pages = await Promise.all(transactionStatuses.map((status) => view.js.tasks({ topic: transactionTopic(status), text: only, limit: perStatus })));
  const list = group(pages.flatMap((p) => p.records)).filter((t) => only === undefined || t.xid === only);
  const truncated = pages.some((p) => p.next !== undefined);
  const rows = list.map(
    (t) => html`<tr><td><a href="${viewUrl("/console/transactions", { xid: t.xid })}">${t.xname}</a></td>
<td><span class="status">${t.status}</span></td><td>${time(t.updatedAt)}</td>
<td><ol class="events">${t.events.map((e) => html`<li><a href="/console/tasks/${e.taskid}">${e.previousStatus ?? "begin"} → ${e.status}</a> ${statusBadge(e.taskStatus)}</li>`)}</ol></td></tr>`,
  );
  const body = html`
<p class="note">From the records of their <code>Transaction.*</code> tasks (job_transaction_event on), newest first.${truncated ? " Only the newest events of each status are read." : ""}${only ? html` <a href="/console/transactions">All transactions</a>` : ""}</p>
<div id="transactions">
<table aria-label="Transactions"><thead><tr><th scope="col">Transaction</th><th scope="col">Status</th><th scope="col">Changed</th><th scope="col">Events, in order (and how each event's task ended)</th></tr></thead>
<tbody>${rows}</tbody></table>
${list.length === 0 ? html`<p class="empty">No transaction events are kept.</p>` : ""}
</div>`;
  return view.page({ title: "Transactions", current: "/console/transactions", module: "transactions.js" }, body);
}
