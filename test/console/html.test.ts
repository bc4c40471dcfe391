// The console's escaping template and what its assets cost a browser.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { assetUrl, assets } from "../../src/console/assets.js";
import { folded, maxShown, shorten } from "../../src/console/fold.js";
import { escapeHtml, html, trusted } from "../../src/console/html.js";
import { open } from "../../src/jobshell.js";
import { serve } from "../../src/server/index.js";

describe("html template", () => {
  it("escapes every interpolated value: a <script> stays text", () => {
    const topic = "<script>alert(1)</script>";
    expect(html`<td>${topic}</td>`.text).toBe("<td>&lt;script&gt;alert(1)&lt;/script&gt;</td>");
  });

  it("escapes quotes, so a value cannot leave its attribute: <img onerror> stays text", () => {
    const value = `"><img src=x onerror='alert(1)'>`;
    const out = html`<input value="${value}">`.text;
    expect(out).toBe(`<input value="&quot;&gt;&lt;img src=x onerror=&#39;alert(1)&#39;&gt;">`);
    expect(out).not.toContain("<img");
  });

  it("takes fragments made by html as they are, and escapes strings that look like markup", () => {
    const inner = html`<b>${"<i>"}</b>`;
    expect(html`<p>${inner}</p>`.text).toBe("<p><b>&lt;i&gt;</b></p>");
    expect(html`<p>${"<b>x</b>"}</p>`.text).toBe("<p>&lt;b&gt;x&lt;/b&gt;</p>");
    expect(html`<p>${trusted("<br>")}</p>`.text).toBe("<p><br></p>");
  });

  it("joins lists, escaping each element, and leaves out null, undefined and false", () => {
    expect(html`${["<a>", html`<b>`, 3]}`.text).toBe("&lt;a&gt;<b>3");
    expect(html`[${null}${undefined}${false}]`.text).toBe("[]");
    expect(html`${0}`.text).toBe("0");
  });

  it("escapes an object's text, not the object's markup", () => {
    expect(html`${{ toString: () => "<x>" }}`.text).toBe("&lt;x&gt;");
    expect(escapeHtml(`&<>"'`)).toBe("&amp;&lt;&gt;&quot;&#39;");
  });
});

describe("long values", () => {
  it("a long value is folded and never shown whole", () => {
    const big = "x".repeat(maxShown * 4);
    const out = folded("content", big).text;
    expect(out).toContain("<details");
    expect(out.length).toBeLessThan(maxShown + 1000);
    expect(out).toContain(`Showing ${maxShown.toLocaleString("en")} of ${(maxShown * 4).toLocaleString("en")} characters`);
  });

  it("a short value is shown open", () => {
    expect(folded("content", { a: 1 }).text).not.toContain("<details");
  });

  it("shorten cuts long strings, long lists, many keys and deep nesting, saying so", () => {
    const cut = shorten({ s: "y".repeat(1000), list: Array.from({ length: 80 }, (_, i) => i), deep: { a: { b: { c: { d: { e: { f: { g: 1 } } } } } } } }) as any;
    expect(cut.s).toMatch(/^y{200}… \(800 more characters\)$/);
    expect(cut.list).toHaveLength(51);
    expect(cut.list[50]).toBe("… 30 more items");
    expect(JSON.stringify(cut.deep)).toContain("{…}");
  });
});

describe("assets", () => {
  it("all together stay under 150 KB", () => {
    const bytes = [...assets().values()].reduce((n, a) => n + a.body.length, 0);
    expect(bytes).toBeGreaterThan(0);
    expect(bytes).toBeLessThan(150 * 1024);
  });

  it("are addressed by a version that is a hash of their content, and cached for a year", async () => {
    const url = assetUrl("console.css");
    expect(url).toMatch(/^\/console\/assets\/[0-9a-f]{12}\/console\.css$/);
    expect(() => assetUrl("nope.js")).toThrow(/no console asset/);
    const js = await open({ log: () => {} });
    const server = await serve(js, { port: 0, host: "127.0.0.1", token: "t0ken" });
    try {
      // Reachable before signing in: the sign-in page needs its stylesheet.
      const now = await fetch(server.url + url);
      expect(now.status).toBe(200);
      expect(now.headers.get("content-type")).toBe("text/css; charset=utf-8");
      expect(now.headers.get("cache-control")).toBe("public, max-age=31536000, immutable");
      const old = await fetch(server.url + url.replace(/\/[0-9a-f]{12}\//, "/000000000000/"));
      expect(old.headers.get("cache-control")).toBe("no-cache");
      const missing = await fetch(server.url + url.replace("console.css", "nope.css"));
      expect(missing.status).toBe(404);
    } finally {
      await server.close();
      await js.close();
    }
  });
});

describe("screenshots", () => {
  it("every image the README and docs/console.md show is there", () => {
    const shown: string[] = [];
    for (const [page, folder] of [["README.md", "."], ["docs/console.md", "docs"]]) {
      for (const [, src] of readFileSync(page, "utf8").matchAll(/<img src="([^"]+)"/g)) shown.push(join(folder, src));
    }
    expect(shown.length).toBeGreaterThanOrEqual(18);
    expect(shown.filter((file) => !existsSync(file))).toEqual([]);
  });
});
