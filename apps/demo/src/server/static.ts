// A small static file handler for the built browser client: GET and HEAD only, no path outside
// the folder (`..`, encoded slashes, NUL bytes, dot files and symlinks that lead out are refused),
// content types for what Vite emits, immutable caching for its hashed assets, and a 503 that
// says how to build the client when the folder is missing.

import { createReadStream, type Stats } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';

/** A node request listener (what `createServer({ requestHandler })` takes). */
export type StaticHandler = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

/** Options of {@link createStaticHandler}. */
export interface StaticHandlerOptions {
  /** The folder to serve (Vite's `outDir`). */
  root: string;
  /**
   * Body of the 503 answered while `root` does not exist.
   * @default 'client not built: run `npx -y pnpm@10.34.9 --filter @tickwire/demo build`'
   */
  notBuiltMessage?: string;
}

/** Content types by file extension. */
export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

/** Vite's hashed output (`assets/index-4f2a9c1b.js`): safe to cache forever. */
const HASHED_ASSET = /^\/assets\/.+[.-][A-Za-z0-9_-]{8,}\.[a-z0-9]+$/;
const IMMUTABLE = 'public, max-age=31536000, immutable';
const REVALIDATE = 'no-cache';

/** The 503 body while the client is not built. */
export const NOT_BUILT_MESSAGE =
  'client not built: run `npx -y pnpm@10.34.9 --filter @tickwire/demo build`';

function answer(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  body: string,
  headers: Record<string, string> = {},
): void {
  const buffer = Buffer.from(`${body}\n`, 'utf8');
  response.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': String(buffer.length),
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
    ...headers,
  });
  response.end(request.method === 'HEAD' ? undefined : buffer);
}

const statOrNull = (path: string): Promise<Stats | null> => stat(path).catch(() => null);

/**
 * The URL path as a list of safe segments, or null when it tries to leave the folder or hide
 * something (`..`, `.` files, encoded slashes or backslashes, NUL, bad percent-encoding).
 */
export function safeSegments(urlPath: string): string[] | null {
  const segments: string[] = [];
  for (const raw of urlPath.split('/')) {
    if (raw === '') continue;
    let segment: string;
    try {
      segment = decodeURIComponent(raw);
    } catch {
      return null;
    }
    if (
      segment.startsWith('.') ||
      segment.includes('/') ||
      segment.includes('\\') ||
      segment.includes('\0') ||
      segment.includes(':')
    )
      return null;
    segments.push(segment);
  }
  return segments;
}

/** Creates a handler that serves the files under `options.root`. */
export function createStaticHandler(options: StaticHandlerOptions): StaticHandler {
  const root = resolve(options.root);
  const notBuilt = options.notBuiltMessage ?? NOT_BUILT_MESSAGE;
  let realRoot: string | null = null;

  return async (request, response) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      answer(request, response, 405, 'method not allowed', { allow: 'GET, HEAD' });
      return;
    }
    const url = request.url ?? '/';
    const query = url.search(/[?#]/);
    const path = query === -1 ? url : url.slice(0, query);
    if (!path.startsWith('/')) {
      answer(request, response, 400, 'bad request');
      return;
    }
    const rootStats = await statOrNull(root);
    if (rootStats === null || !rootStats.isDirectory()) {
      realRoot = null;
      answer(request, response, 503, notBuilt, { 'retry-after': '5' });
      return;
    }
    realRoot ??= await realpath(root);
    const segments = safeSegments(path);
    if (segments === null) {
      answer(request, response, 403, 'forbidden');
      return;
    }
    if (path.endsWith('/')) segments.push('index.html');
    let file = join(realRoot, ...segments);
    let stats = await statOrNull(file);
    if (stats?.isDirectory()) {
      file = join(file, 'index.html');
      stats = await statOrNull(file);
    }
    if (stats === null || !stats.isFile()) {
      answer(request, response, 404, 'not found');
      return;
    }
    // A symlink inside the folder must not lead out of it.
    const real = await realpath(file).catch(() => null);
    if (real === null || !(real === realRoot || real.startsWith(realRoot + sep))) {
      answer(request, response, 403, 'forbidden');
      return;
    }
    const etag = `W/"${stats.size.toString(16)}-${Math.floor(stats.mtimeMs).toString(16)}"`;
    const headers: Record<string, string> = {
      'content-type': CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'cache-control': HASHED_ASSET.test(path) ? IMMUTABLE : REVALIDATE,
      etag,
      'last-modified': stats.mtime.toUTCString(),
      'x-content-type-options': 'nosniff',
    };
    if (request.headers['if-none-match'] === etag) {
      response.writeHead(304, headers);
      response.end();
      return;
    }
    headers['content-length'] = String(stats.size);
    response.writeHead(200, headers);
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    // pipeline destroys the file stream when the client goes away mid-download.
    await pipeline(createReadStream(real), response).catch(() => response.destroy());
  };
}
