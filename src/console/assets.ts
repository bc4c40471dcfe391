// The console's static assets (a few ES modules and one stylesheet, no build step): read once, served
// under `/console/assets/<version>/<file>` where the version is a hash of them all, so that they can be
// cached for a year and a new release is fetched at once. The modules import each other by relative
// paths, which stay inside the same version.
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { HttpError } from "../server/http.js";

export interface Asset {
  body: Buffer;
  type: string;
}

const types: Record<string, string> = {
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
};

/** Beside this module: src/console/assets when run from source, dist/console/assets once built. */
const folder = new URL("./assets/", import.meta.url);

let loaded: { version: string; files: Map<string, Asset> } | undefined;

function load(): { version: string; files: Map<string, Asset> } {
  if (loaded) return loaded;
  const files = new Map<string, Asset>();
  const hash = createHash("sha256");
  for (const name of readdirSync(folder).sort()) {
    const type = types[name.slice(name.lastIndexOf("."))];
    if (!type) continue;
    const body = readFileSync(new URL(name, folder));
    files.set(name, { body, type });
    hash.update(name).update(body);
  }
  loaded = { version: hash.digest("hex").slice(0, 12), files };
  return loaded;
}

/** The assets by file name. */
export function assets(): ReadonlyMap<string, Asset> {
  return load().files;
}

/** The URL of an asset, with the version of this release in it. */
export function assetUrl(name: string): string {
  const { version, files } = load();
  if (!files.has(name)) throw new Error(`no console asset is named ${name}`);
  return `/console/assets/${version}/${name}`;
}

/** Answer a request for `/console/assets/<version>/<name>`; an old version still gets today's file, uncached. */
export function sendAsset(res: ServerResponse, version: string, name: string): void {
  const { version: current, files } = load();
  const asset = files.get(name);
  if (!asset) throw new HttpError("not_found", `no console asset is named ${JSON.stringify(name)}`);
  res.writeHead(200, {
    "content-type": asset.type,
    "content-length": asset.body.length,
    "cache-control": version === current ? "public, max-age=31536000, immutable" : "no-cache",
    "x-content-type-options": "nosniff",
  });
  res.end(asset.body);
}
