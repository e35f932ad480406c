// The server's HTTP endpoints, as a plain node request listener: it can serve on the WebSocket
// transport's HTTP server or be mounted in any node HTTP framework.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type Logger, silentLogger } from '@tickwire/core';

/** Lifecycle of the server as load balancers see it. */
export type HealthStatus = 'ok' | 'starting' | 'draining';

/** What `GET /health` reports. */
export interface HealthReport {
  /** `ok` once listening (HTTP 200); `starting` and `draining` answer HTTP 503. */
  status: HealthStatus;
  /** Time since the server started, in ms. */
  uptimeMs: number;
  /** Open connections. */
  connections: number;
  /** Live rooms. */
  rooms: number;
  /** Sessions, connected or within their reconnection grace. */
  sessions: number;
}

/** A node HTTP request listener. */
export type RequestListener = (request: IncomingMessage, response: ServerResponse) => void;

/** Options of {@link createHttpHandler}; an endpoint whose source is absent answers 404. */
export interface HttpHandlerOptions {
  /** Source of `GET /health`. */
  health?: () => HealthReport;
  /** Source of `GET /metrics` (Prometheus text). */
  metrics?: () => Promise<string> | string;
  /**
   * Content-Type of `GET /metrics`.
   * @default 'text/plain; version=0.0.4; charset=utf-8'
   */
  metricsContentType?: string;
  /** Source of `GET /debug` (any JSON-serialisable value; Maps, Sets and bigints are converted). */
  debug?: () => unknown;
  /** Handles every other path (any method). @default answers 404 */
  fallback?: (request: IncomingMessage, response: ServerResponse) => unknown;
  /**
   * Receives failures of the sources and of the fallback (the client gets a 500).
   * @default silentLogger
   */
  logger?: Logger;
}

const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
const JSON_CONTENT_TYPE = 'application/json; charset=utf-8';
const ALLOWED_METHODS = 'GET, HEAD';

/** JSON.stringify replacer for the shapes debug dumps hold. */
function debugReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Map) return Object.fromEntries(value);
  if (value instanceof Set) return [...value];
  if (value instanceof Uint8Array) return { bytes: value.length };
  return value;
}

function send(
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  contentType: string,
  body: string,
  headers: Record<string, string> = {},
): void {
  const buffer = Buffer.from(body, 'utf8');
  response.writeHead(status, {
    'content-type': contentType,
    'content-length': String(buffer.length),
    'cache-control': 'no-store',
    ...headers,
  });
  response.end(request.method === 'HEAD' ? undefined : buffer);
}

const sendJson = (
  request: IncomingMessage,
  response: ServerResponse,
  status: number,
  value: unknown,
  headers?: Record<string, string>,
): void => send(request, response, status, JSON_CONTENT_TYPE, JSON.stringify(value), headers);

function pathOf(request: IncomingMessage): string {
  const url = request.url ?? '/';
  const query = url.indexOf('?');
  return query === -1 ? url : url.slice(0, query);
}

/**
 * Creates the listener of the server's HTTP endpoints: `GET /health` (200, or 503 unless
 * `ok`), `GET /metrics`, `GET /debug`; HEAD is answered like GET without a body, other
 * methods on them with 405. Other paths go to `fallback` (or 404). Never throws: a failing
 * source answers 500 JSON.
 */
export function createHttpHandler(options: HttpHandlerOptions): RequestListener {
  const logger = options.logger ?? silentLogger;
  const metricsContentType = options.metricsContentType ?? PROMETHEUS_CONTENT_TYPE;
  type Route = () => Promise<[status: number, contentType: string, body: string]>;
  const routes = new Map<string, Route>();
  const { health, metrics, debug } = options;
  if (health) {
    routes.set('/health', async () => {
      const report = health();
      return [report.status === 'ok' ? 200 : 503, JSON_CONTENT_TYPE, JSON.stringify(report)];
    });
  }
  if (metrics) routes.set('/metrics', async () => [200, metricsContentType, await metrics()]);
  if (debug) {
    routes.set('/debug', async () => [
      200,
      JSON_CONTENT_TYPE,
      JSON.stringify(debug(), debugReplacer) ?? 'null',
    ]);
  }

  const fail = (
    request: IncomingMessage,
    response: ServerResponse,
    error: unknown,
    where: string,
  ) => {
    logger.error({ err: error, method: request.method, url: request.url }, `http: ${where} failed`);
    if (response.headersSent) {
      // Part of a response is out: the only honest signal left is a broken connection.
      response.destroy();
      return;
    }
    try {
      sendJson(request, response, 500, { error: 'internal error' });
    } catch {
      response.destroy();
    }
  };

  const answer = async (
    request: IncomingMessage,
    response: ServerResponse,
    route: Route,
  ): Promise<void> => {
    try {
      const [status, contentType, body] = await route();
      send(request, response, status, contentType, body);
    } catch (error) {
      fail(request, response, error, `${request.method} ${pathOf(request)}`);
    }
  };

  return (request, response) => {
    try {
      const route = routes.get(pathOf(request));
      if (route) {
        if (request.method === 'GET' || request.method === 'HEAD') {
          void answer(request, response, route);
        } else {
          sendJson(
            request,
            response,
            405,
            { error: `method ${request.method} not allowed; use ${ALLOWED_METHODS}` },
            { allow: ALLOWED_METHODS },
          );
        }
        return;
      }
      if (options.fallback) {
        const result = options.fallback(request, response);
        if (result instanceof Promise) {
          result.catch((error: unknown) => fail(request, response, error, 'fallback'));
        }
        return;
      }
      sendJson(request, response, 404, { error: 'not found' });
    } catch (error) {
      fail(request, response, error, 'request handler');
    }
  };
}
