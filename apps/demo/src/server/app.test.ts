import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Client, createClient } from '@tickwire/client';
import { silentLogger } from '@tickwire/core';
import { createWsClient } from '@tickwire/transport/ws';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type ArenaMetadata, Avatar, messages, TICK_MS, TICK_RATE_HZ } from '../shared/game.js';
import { type DemoServer, startDemoServer } from './app.js';
import { NOT_BUILT_MESSAGE, safeSegments } from './static.js';

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** An HTTP request with the path sent exactly as given (fetch would normalise `..`). */
function raw(
  url: string,
  path: string,
  options: { method?: string; headers?: Record<string, string> } = {},
): Promise<RawResponse> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { hostname, port, path, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

const INDEX = '<!doctype html><title>Tickwire demo</title>';
const SCRIPT = 'console.log("tickwire")';

describe('demo server: static files', () => {
  let folder: string;
  let site: string;
  let demo: DemoServer;

  beforeAll(async () => {
    folder = await mkdtemp(join(tmpdir(), 'tickwire-demo-'));
    site = join(folder, 'client');
    await mkdir(join(site, 'assets'), { recursive: true });
    await writeFile(join(site, 'index.html'), INDEX);
    await writeFile(join(site, 'assets', 'index-AbCd12_x.js'), SCRIPT);
    await writeFile(join(site, 'style.css'), 'body{}');
    await writeFile(join(site, '.env'), 'SECRET=1');
    await writeFile(join(folder, 'secret.txt'), 'top secret');
    await symlink(join(folder, 'secret.txt'), join(site, 'leak.txt'));
    demo = await startDemoServer({ staticDir: site, logger: silentLogger, minPlayers: 0 });
  });
  afterAll(async () => {
    await demo.close();
    await rm(folder, { recursive: true, force: true });
  });

  it('serves index.html for / and files with their content types and cache headers', async () => {
    const index = await raw(demo.url, '/');
    expect(index.status).toBe(200);
    expect(index.body).toBe(INDEX);
    expect(index.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(index.headers['cache-control']).toBe('no-cache');
    expect((await raw(demo.url, '/index.html?v=2')).body).toBe(INDEX);

    const script = await raw(demo.url, '/assets/index-AbCd12_x.js');
    expect(script.status).toBe(200);
    expect(script.body).toBe(SCRIPT);
    expect(script.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(script.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(script.headers['content-length']).toBe(String(SCRIPT.length));
    expect((await raw(demo.url, '/style.css')).headers['content-type']).toBe(
      'text/css; charset=utf-8',
    );

    const head = await raw(demo.url, '/', { method: 'HEAD' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    expect(head.headers['content-length']).toBe(String(INDEX.length));

    const again = await raw(demo.url, '/', {
      headers: { 'if-none-match': String(index.headers.etag) },
    });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
  });

  it('answers 404 for missing files and 405 for other methods', async () => {
    expect((await raw(demo.url, '/nope.js')).status).toBe(404);
    expect((await raw(demo.url, '/assets/')).status).toBe(404); // no index.html there
    const post = await raw(demo.url, '/', { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.allow).toBe('GET, HEAD');
  });

  it('refuses paths that leave the folder or reach hidden files', async () => {
    for (const path of [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/.env',
      '/index.html%00.js',
      '/%E0%A4%A',
    ]) {
      const response = await raw(demo.url, path);
      expect(response.status, path).toBe(403);
      expect(response.body).not.toContain('top secret');
    }
    const link = await raw(demo.url, '/leak.txt'); // a symlink that points outside
    expect(link.status).toBe(403);
    expect(link.body).not.toContain('top secret');
    expect(safeSegments('/a/b/../c')).toBeNull();
    expect(safeSegments('/a//b/')).toEqual(['a', 'b']);
  });

  it('keeps /health and /metrics; /debug only when asked for', async () => {
    const health = await raw(demo.url, '/health');
    expect(health.status).toBe(200);
    expect(JSON.parse(health.body)).toMatchObject({ status: 'ok' });
    expect((await raw(demo.url, '/debug')).status).not.toBe(200);
    expect((await raw(demo.url, '/metrics')).body).toContain('tickwire_');
  });
});

describe('demo server: not built', () => {
  it('answers 503 with how to build the client', async () => {
    const demo = await startDemoServer({
      staticDir: join(tmpdir(), 'tickwire-demo-missing-folder', 'client'),
      logger: silentLogger,
    });
    try {
      const response = await raw(demo.url, '/');
      expect(response.status).toBe(503);
      expect(response.body.trim()).toBe(NOT_BUILT_MESSAGE);
      expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
      expect((await raw(demo.url, '/health')).status).toBe(200);
    } finally {
      await demo.close();
    }
  });
});

describe('demo server: a real client', () => {
  let demo: DemoServer | undefined;
  let client: Client | undefined;
  afterEach(async () => {
    client?.close();
    await demo?.close();
    client = undefined;
    demo = undefined;
  });

  it('listens on ws, tcp and udp; a WebSocket client joins the arena, finds its avatar and the tick timeline', async () => {
    demo = await startDemoServer({
      logger: silentLogger,
      transports: { tcp: true, udp: true },
      seed: 7,
      minPlayers: 3,
    });
    expect(demo.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect(demo.tcpUrl).toMatch(/^tcp:\/\/127\.0\.0\.1:\d+$/);
    expect(demo.udpUrl).toMatch(/^udp:\/\/127\.0\.0\.1:\d+$/);
    client = createClient({
      endpoints: [{ url: demo.wsUrl, transport: createWsClient() }],
      reconnect: false,
    });
    const session = await client.connect();
    expect(session.tickRateHz).toBe(TICK_RATE_HZ);
    const room = await client.joinOrCreate(
      'arena',
      { name: 'Ada' },
      { messages, replication: { types: [Avatar] } },
    );
    const you = await new Promise<{ entityId: number }>((resolve) =>
      room.onMessage('you', (value) => resolve(value)),
    );
    const metadata = room.metadata as unknown as ArenaMetadata;
    expect(metadata).toMatchObject({ tickRateHz: TICK_RATE_HZ, humans: 1, bots: 2 });
    const replica = room.replica!;
    await new Promise<void>((resolve) => {
      const check = () => {
        if (replica.get(you.entityId) !== undefined) resolve();
      };
      replica.on('spawn', check);
      check();
    });
    const mine = replica.get(you.entityId)!;
    expect(mine.get('name' as never)).toBe('Ada');
    expect(mine.get('lastInput' as never)).toBe(0);

    // The tick timeline: serverNow() − tickOrigin is at or just past the newest snapshot's
    // tick × TICK_MS (a snapshot leaves right after its tick ran).
    const time = client.time!;
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (time.stats().samples >= 3) {
          clearInterval(poll);
          resolve();
        }
      }, 10);
    });
    const timeline = time.serverNow() - metadata.tickOrigin;
    expect(timeline - replica.tick * TICK_MS).toBeGreaterThan(-20);
    expect(timeline - replica.tick * TICK_MS).toBeLessThan(250);

    // An input moves the avatar; its owner sees the acknowledgement.
    room.send('input', { seq: 1, dx: 1, dy: 0, angle: 0, fire: false, viewTime: timeline });
    await new Promise<void>((resolve) => {
      replica.on('update', (entity) => {
        if (entity.id === you.entityId && entity.get('lastInput' as never) === 1) resolve();
      });
    });
  });
});
