import { once } from 'node:events';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createMemoryLogger } from '@tickwire/core/memory';
import { afterEach, describe, expect, it } from 'vitest';
import { createHttpHandler, type HealthReport, type HttpHandlerOptions } from './http.js';

const servers: Server[] = [];

afterEach(async () => {
  await Promise.all(
    servers.splice(0).map((server) => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    }),
  );
});

/** Serves `options` on 127.0.0.1 and returns the base URL. */
async function serve(options: HttpHandlerOptions): Promise<string> {
  const server = createServer(createHttpHandler(options));
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

const report = (status: HealthReport['status']): HealthReport => ({
  status,
  uptimeMs: 1234,
  connections: 5,
  rooms: 2,
  sessions: 6,
});

describe('createHttpHandler', () => {
  it('answers GET /health with 200 and the report when ready', async () => {
    const base = await serve({ health: () => report('ok') });
    const response = await fetch(`${base}/health`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json; charset=utf-8');
    expect(response.headers.get('cache-control')).toBe('no-store');
    expect(await response.json()).toEqual(report('ok'));
  });

  it('answers 503 while starting or draining', async () => {
    let status: HealthReport['status'] = 'starting';
    const base = await serve({ health: () => report(status) });
    const starting = await fetch(`${base}/health?probe=1`);
    expect(starting.status).toBe(503);
    expect(await starting.json()).toMatchObject({ status: 'starting' });
    status = 'draining';
    const draining = await fetch(`${base}/health`);
    expect(draining.status).toBe(503);
    expect(await draining.json()).toMatchObject({ status: 'draining', connections: 5 });
  });

  it('answers GET /metrics with the Prometheus text', async () => {
    const text = '# TYPE tickwire_rooms gauge\ntickwire_rooms 2\n';
    const base = await serve({ health: () => report('ok'), metrics: async () => text });
    const response = await fetch(`${base}/metrics`);
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await response.text()).toBe(text);
  });

  it('answers GET /debug with JSON, converting Maps, Sets, bigints and bytes', async () => {
    const base = await serve({
      debug: () => ({
        rooms: new Map([['r1', { clients: new Set(['a', 'b']) }]]),
        tick: 10n,
        payload: new Uint8Array(3),
      }),
    });
    const response = await fetch(`${base}/debug`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      rooms: { r1: { clients: ['a', 'b'] } },
      tick: '10',
      payload: { bytes: 3 },
    });
  });

  it('answers 404 for a disabled endpoint and an unknown path', async () => {
    const base = await serve({ health: () => report('ok') });
    for (const path of ['/debug', '/metrics', '/nope', '/']) {
      const response = await fetch(`${base}${path}`);
      expect(response.status).toBe(404);
      expect(await response.json()).toEqual({ error: 'not found' });
    }
  });

  it('hands other paths and methods to the fallback', async () => {
    const base = await serve({
      health: () => report('ok'),
      fallback: (request, response) => {
        response.writeHead(201, { 'content-type': 'text/plain' });
        response.end(`${request.method} ${request.url}`);
      },
    });
    const response = await fetch(`${base}/login?x=1`, { method: 'POST' });
    expect(response.status).toBe(201);
    expect(await response.text()).toBe('POST /login?x=1');
  });

  it('answers 405 with Allow to other methods on its endpoints', async () => {
    const base = await serve({ health: () => report('ok'), fallback: () => {} });
    const response = await fetch(`${base}/health`, { method: 'POST', body: 'x' });
    expect(response.status).toBe(405);
    expect(response.headers.get('allow')).toBe('GET, HEAD');
    expect(await response.json()).toEqual({ error: 'method POST not allowed; use GET, HEAD' });
  });

  it('answers HEAD like GET without a body', async () => {
    const base = await serve({ health: () => report('draining') });
    const response = await fetch(`${base}/health`, { method: 'HEAD' });
    expect(response.status).toBe(503);
    expect(Number(response.headers.get('content-length'))).toBe(
      Buffer.byteLength(JSON.stringify(report('draining'))),
    );
    expect(await response.text()).toBe('');
  });

  it('answers 500 JSON and logs when a source throws or rejects', async () => {
    const logger = createMemoryLogger();
    const base = await serve({
      logger,
      health: () => {
        throw new Error('store down');
      },
      metrics: () => Promise.reject(new Error('collector failed')),
      debug: () => {
        const cycle: Record<string, unknown> = {};
        cycle.self = cycle;
        return cycle;
      },
    });
    for (const path of ['/health', '/metrics', '/debug']) {
      const response = await fetch(`${base}${path}`);
      expect(response.status).toBe(500);
      expect(await response.json()).toEqual({ error: 'internal error' });
    }
    expect(logger.records.map((r) => r.message)).toEqual([
      'http: GET /health failed',
      'http: GET /metrics failed',
      'http: GET /debug failed',
    ]);
    expect((logger.records[0]!.fields.err as Error).message).toBe('store down');
  });

  it('answers 500 when the fallback throws or rejects before responding', async () => {
    let mode: 'throw' | 'reject' = 'throw';
    const base = await serve({
      fallback: () => {
        if (mode === 'throw') throw new Error('boom');
        return Promise.reject(new Error('async boom'));
      },
    });
    expect((await fetch(`${base}/x`)).status).toBe(500);
    mode = 'reject';
    expect((await fetch(`${base}/x`)).status).toBe(500);
  });

  it('breaks the connection when the fallback fails after sending headers', async () => {
    const base = await serve({
      fallback: async (_request, response) => {
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.write('partial');
        await new Promise((resolve) => setImmediate(resolve));
        throw new Error('late failure');
      },
    });
    // fetch would only report a generic error; read with node:http to see the reset.
    const outcome = await new Promise<string>((resolve) => {
      const req = httpRequest(`${base}/stream`, (response) => {
        response.on('data', () => {});
        response.on('end', () => resolve('ended'));
        response.on('error', () => resolve('broken'));
        response.on('aborted', () => resolve('broken'));
      });
      req.on('error', () => resolve('broken'));
      req.end();
    });
    expect(outcome).toBe('broken');
  });

  it('keeps serving after a request fails', async () => {
    let fail = true;
    const base = await serve({
      health: () => {
        if (fail) throw new Error('once');
        return report('ok');
      },
    });
    expect((await fetch(`${base}/health`)).status).toBe(500);
    fail = false;
    expect((await fetch(`${base}/health`)).status).toBe(200);
  });

  it('uses a custom metrics content type', async () => {
    const contentType = 'application/openmetrics-text; version=1.0.0; charset=utf-8';
    const base = await serve({ metrics: () => '# EOF\n', metricsContentType: contentType });
    const response = await fetch(`${base}/metrics`);
    expect(response.headers.get('content-type')).toBe(contentType);
    expect(await response.text()).toBe('# EOF\n');
  });
});
