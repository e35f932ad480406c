// The server's options, their defaults and their validation: every problem is reported with the
// option path, what is allowed and what was given, before anything listens.
import { randomBytes } from 'node:crypto';
import { ErrorCode, type Logger, silentLogger, TickwireError } from '@tickwire/core';

/** Options of the WebSocket transport (served on the HTTP port). */
export interface WsTransportConfig {
  /**
   * Only WebSocket upgrades for this path are accepted, e.g. `/ws`.
   * @default undefined (every path)
   */
  path?: string;
}

/** Options of the TCP transport (its own port). */
export interface TcpTransportConfig {
  /**
   * TCP port; 0 picks a free one.
   * @default 0
   */
  port?: number;
}

/** Options of the UDP transport (its own port). */
export interface UdpTransportConfig {
  /**
   * UDP port; 0 picks a free one.
   * @default 0
   */
  port?: number;
}

/** Which transports the server listens on; `true` enables one with its defaults. */
export interface TransportsConfig {
  /**
   * WebSocket on the HTTP port; `false` disables it.
   * @default true
   */
  ws?: boolean | WsTransportConfig;
  /**
   * TCP on its own port.
   * @default false
   */
  tcp?: boolean | TcpTransportConfig;
  /**
   * UDP on its own port.
   * @default false
   */
  udp?: boolean | UdpTransportConfig;
}

/** Sessions: reconnect tokens and how long a dropped client keeps its seat. */
export interface SessionConfig {
  /**
   * Key that signs reconnect tokens (HMAC-SHA256), at least 32 bytes. Servers that share
   * sessions must share it; keep it out of source control.
   * @default 32 random bytes, with a logged warning (tokens die with the process)
   */
  secret?: string | Uint8Array;
  /**
   * A disconnected session stays resumable (and keeps its room seat) this many ms.
   * @default 30000
   */
  graceMs?: number;
  /**
   * A reconnect token (and the session record) expires after this many ms.
   * @default 86400000 (24 h)
   */
  tokenTtlMs?: number;
}

/** Per-connection and per-server limits; network input beyond them is refused. */
export interface LimitsConfig {
  /**
   * Largest message a client may send, in bytes; a bigger one closes the connection.
   * @default 65536
   */
  maxMessageBytes?: number;
  /**
   * Sustained messages per second per connection (token bucket refill rate). A client of a
   * 60 Hz game sends about 125: an input and a snapshot ack per tick, plus clock sync and
   * session acknowledgements.
   * @default 150
   */
  messagesPerSecond?: number;
  /**
   * Messages a connection may send at once above the sustained rate (token bucket size).
   * @default 300
   */
  messageBurst?: number;
  /**
   * Sustained bytes per second per connection.
   * @default 65536
   */
  bytesPerSecond?: number;
  /**
   * Bytes a connection may send at once above the sustained rate; at least maxMessageBytes.
   * @default the larger of 131072 and 2 × maxMessageBytes
   */
  bytesBurst?: number;
  /**
   * Over-limit warnings a connection gets (its messages are dropped) before it is closed with
   * CloseCode.RateLimited; 0 closes at the first excess.
   * @default 1
   */
  rateLimitWarnings?: number;
  /**
   * Open connections on the whole server; more are refused with CloseCode.ServerFull.
   * @default 10000
   */
  maxConnections?: number;
  /**
   * Open connections from one IP address.
   * @default 16
   */
  maxConnectionsPerAddress?: number;
  /**
   * Reliable bytes kept per session for replay after a reconnect; a session that falls
   * further behind cannot be resumed.
   * @default the larger of 1048576 (1 MiB) and 2 × maxMessageBytes
   */
  maxReplayBytes?: number;
  /**
   * Handshakes (Hello frames) accepted per second from one address, with a burst of twice as
   * many: reconnecting to reset the rate limits or to churn sessions is slowed down. Excess
   * connections close with CloseCode.TryAgainLater.
   * @default 20
   */
  handshakesPerSecondPerAddress?: number;
  /**
   * Live sessions (connected or within their grace period) at most; beyond it new sessions are
   * refused with CloseCode.ServerFull. A handshake whose auth hook (or session store) is still
   * running holds a place too, so concurrent handshakes cannot together exceed the limit.
   * @default 100000
   */
  maxSessions?: number;
}

/** Which HTTP endpoints the server answers on its HTTP port. */
export interface HttpConfig {
  /**
   * `GET /health`: readiness and counts as JSON (503 while starting or draining).
   * @default true
   */
  health?: boolean;
  /**
   * `GET /metrics`: Prometheus text format.
   * @default true
   */
  metrics?: boolean;
  /**
   * `GET /debug`: rooms and sessions as JSON. Exposes internal state: keep it off in production
   * unless the port is private.
   * @default false
   */
  debug?: boolean;
}

/** Options of the Tickwire server, all optional. */
export interface ServerConfig {
  /**
   * Interface the HTTP/WebSocket, TCP and UDP listeners bind to.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * HTTP and WebSocket port; 0 picks a free one.
   * @default 0
   */
  port?: number;
  /**
   * Transports to listen on.
   * @default { ws: true } (WebSocket only)
   */
  transports?: TransportsConfig;
  /**
   * Server simulation and replication rate, in ticks per second.
   * @default 20
   */
  tickRateHz?: number;
  /**
   * A connection that sends no Hello within this many ms is closed (slowloris defence).
   * @default 5000
   */
  handshakeTimeoutMs?: number;
  /** Sessions and reconnect tokens. */
  session?: SessionConfig;
  /** Rate and size limits. */
  limits?: LimitsConfig;
  /**
   * Browser origins allowed to open a WebSocket, e.g. `['https://game.example.com']`;
   * requests without an Origin header (non-browser clients) are always allowed.
   * @default undefined (any origin)
   */
  allowedOrigins?: readonly string[];
  /** HTTP endpoints. */
  http?: HttpConfig;
  /**
   * On shutdown, connections still open after this many ms are closed forcibly.
   * @default 10000
   */
  shutdownTimeoutMs?: number;
}

/** Resolved WebSocket transport options. */
export interface ResolvedWsTransport {
  path: string | undefined;
}

/** Resolved TCP or UDP transport options. */
export interface ResolvedPortTransport {
  port: number;
}

/** Resolved transports; `false` = disabled. */
export interface ResolvedTransports {
  ws: ResolvedWsTransport | false;
  tcp: ResolvedPortTransport | false;
  udp: ResolvedPortTransport | false;
}

/** Resolved session options. */
export interface ResolvedSessionConfig {
  /** The signing key (a copy of the configured one, or random bytes). */
  secret: Uint8Array;
  /** True when no secret was configured and a random one was generated. */
  secretGenerated: boolean;
  graceMs: number;
  tokenTtlMs: number;
}

/** Resolved limits. */
export interface ResolvedLimits {
  maxMessageBytes: number;
  messagesPerSecond: number;
  messageBurst: number;
  bytesPerSecond: number;
  bytesBurst: number;
  rateLimitWarnings: number;
  maxConnections: number;
  maxConnectionsPerAddress: number;
  maxReplayBytes: number;
  handshakesPerSecondPerAddress: number;
  maxSessions: number;
}

/** Resolved HTTP endpoints. */
export interface ResolvedHttpConfig {
  health: boolean;
  metrics: boolean;
  debug: boolean;
}

/** {@link ServerConfig} with every default applied and every value checked (frozen). */
export interface ResolvedServerConfig {
  readonly host: string;
  readonly port: number;
  readonly transports: Readonly<ResolvedTransports>;
  readonly tickRateHz: number;
  readonly handshakeTimeoutMs: number;
  readonly session: Readonly<ResolvedSessionConfig>;
  readonly limits: Readonly<ResolvedLimits>;
  /** Normalised origins (`scheme://host[:port]`), or undefined for any. */
  readonly allowedOrigins: readonly string[] | undefined;
  readonly http: Readonly<ResolvedHttpConfig>;
  readonly shutdownTimeoutMs: number;
}

/** What {@link resolveServerConfig} needs besides the config. */
export interface ResolveServerConfigContext {
  /**
   * Receives the warning about a generated session secret.
   * @default silentLogger
   */
  logger?: Logger;
}

/** The option names {@link ServerConfig} accepts at the top level. */
export const serverConfigKeys = [
  'host',
  'port',
  'transports',
  'tickRateHz',
  'handshakeTimeoutMs',
  'session',
  'limits',
  'allowedOrigins',
  'http',
  'shutdownTimeoutMs',
] as const satisfies readonly (keyof ServerConfig)[];

const transportKeys = ['ws', 'tcp', 'udp'] as const satisfies readonly (keyof TransportsConfig)[];
const sessionKeys = [
  'secret',
  'graceMs',
  'tokenTtlMs',
] as const satisfies readonly (keyof SessionConfig)[];
const limitKeys = [
  'maxMessageBytes',
  'messagesPerSecond',
  'messageBurst',
  'bytesPerSecond',
  'bytesBurst',
  'rateLimitWarnings',
  'maxConnections',
  'maxConnectionsPerAddress',
  'maxReplayBytes',
  'handshakesPerSecondPerAddress',
  'maxSessions',
] as const satisfies readonly (keyof LimitsConfig)[];
const httpKeys = ['health', 'metrics', 'debug'] as const satisfies readonly (keyof HttpConfig)[];

const MAX_INT = 0x7fff_ffff;
/** Largest timer the host runs at once (2^31 - 1 ms, about 24.8 days). */
const MAX_DELAY_MS = MAX_INT;
/** Room for a Hello with a reconnect token and a small auth payload. */
const MIN_MESSAGE_BYTES = 512;
const MIN_SECRET_BYTES = 32;

function invalid(message: string, path: string): TickwireError {
  return new TickwireError(ErrorCode.INVALID_ARGUMENT, message, { details: { path } });
}

/** A short, unambiguous rendering of a bad value for an error message. */
function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  if (typeof value === 'object') return 'an object';
  return String(value);
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
    }
    previous = current;
  }
  return previous[b.length]!;
}

/** Checks `value` is a plain object with only `keys`; undefined reads as `{}`. */
function section(
  value: unknown,
  path: string,
  keys: readonly string[],
): Readonly<Record<string, unknown>> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalid(`${path} must be an object, got ${show(value)}`, path);
  }
  for (const key of Object.keys(value)) {
    if (keys.includes(key)) continue;
    const where = path === 'server config' ? key : `${path}.${key}`;
    const near = keys.find((k) => editDistance(k.toLowerCase(), key.toLowerCase()) <= 2);
    throw invalid(
      `unknown option '${where}'${near ? ` (did you mean '${near}'?)` : ''}; ` +
        `valid options${path === 'server config' ? '' : ` of ${path}`}: ${keys.join(', ')}`,
      where,
    );
  }
  return value as Record<string, unknown>;
}

function integer(path: string, value: unknown, fallback: number, min: number, max?: number) {
  const v = value === undefined ? fallback : value;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > (max ?? MAX_INT)) {
    const range = max === undefined ? `>= ${min}` : `in [${min}, ${max}]`;
    throw invalid(`${path} must be an integer ${range}, got ${show(v)}`, path);
  }
  return v;
}

function positive(path: string, value: unknown, fallback: number): number {
  const v = value === undefined ? fallback : value;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw invalid(`${path} must be a number > 0, got ${show(v)}`, path);
  }
  return v;
}

function atLeast(path: string, value: unknown, fallback: number, min: number): number {
  const v = value === undefined ? fallback : value;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min) {
    throw invalid(`${path} must be a number >= ${min}, got ${show(v)}`, path);
  }
  return v;
}

function boolean(path: string, value: unknown, fallback: boolean): boolean {
  const v = value === undefined ? fallback : value;
  if (typeof v !== 'boolean') throw invalid(`${path} must be a boolean, got ${show(v)}`, path);
  return v;
}

function portOf(path: string, value: unknown): number {
  return integer(path, value, 0, 0, 65_535);
}

function resolveTransports(value: unknown): ResolvedTransports {
  const input = section(value, 'transports', transportKeys);
  const enabled = (name: (typeof transportKeys)[number], fallback: boolean) => {
    const v = input[name] === undefined ? fallback : input[name];
    if (typeof v === 'boolean') return v ? {} : false;
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) return v;
    throw invalid(
      `transports.${name} must be a boolean or an object, got ${show(v)}`,
      `transports.${name}`,
    );
  };
  const ws = enabled('ws', true);
  const tcp = enabled('tcp', false);
  const udp = enabled('udp', false);
  let resolvedWs: ResolvedWsTransport | false = false;
  if (ws !== false) {
    const { path } = section(ws, 'transports.ws', ['path']);
    if (path !== undefined && (typeof path !== 'string' || !/^\/[^\s?#]*$/.test(path))) {
      throw invalid(
        `transports.ws.path must be a URL path starting with '/' (no spaces, query or fragment), got ${show(path)}`,
        'transports.ws.path',
      );
    }
    resolvedWs = Object.freeze({ path });
  }
  const portTransport = (name: 'tcp' | 'udp', options: object | false) => {
    if (!options) return false as const;
    const { port } = section(options, `transports.${name}`, ['port']);
    return Object.freeze({ port: portOf(`transports.${name}.port`, port) });
  };
  const resolved: ResolvedTransports = {
    ws: resolvedWs,
    tcp: portTransport('tcp', tcp),
    udp: portTransport('udp', udp),
  };
  if (!resolved.ws && !resolved.tcp && !resolved.udp) {
    throw invalid(
      'transports must enable at least one of ws, tcp, udp (got all disabled)',
      'transports',
    );
  }
  return resolved;
}

function resolveSecret(value: unknown, logger: Logger): { secret: Uint8Array; generated: boolean } {
  if (value === undefined) {
    logger.warn(
      'session.secret is not set: using a random one, so reconnect tokens die with this process ' +
        'and are not accepted by other servers; set session.secret (>= 32 bytes) in production',
    );
    return { secret: new Uint8Array(randomBytes(MIN_SECRET_BYTES)), generated: true };
  }
  let bytes: Uint8Array;
  if (typeof value === 'string') bytes = new TextEncoder().encode(value);
  else if (value instanceof Uint8Array) bytes = new Uint8Array(value);
  else {
    throw invalid(
      `session.secret must be a string or a Uint8Array, got ${show(value)}`,
      'session.secret',
    );
  }
  if (bytes.length < MIN_SECRET_BYTES) {
    throw invalid(
      `session.secret must be at least ${MIN_SECRET_BYTES} bytes (e.g. \`openssl rand -hex 32\`), got ${bytes.length}`,
      'session.secret',
    );
  }
  return { secret: bytes, generated: false };
}

function resolveSession(value: unknown, logger: Logger): ResolvedSessionConfig {
  const input = section(value, 'session', sessionKeys);
  const { secret, generated } = resolveSecret(input.secret, logger);
  const graceMs = integer('session.graceMs', input.graceMs, 30_000, 0, MAX_DELAY_MS);
  const tokenTtlMs = integer('session.tokenTtlMs', input.tokenTtlMs, 86_400_000, 1, 2 ** 52);
  if (tokenTtlMs < graceMs) {
    throw invalid(
      `session.tokenTtlMs (${tokenTtlMs}) must be >= session.graceMs (${graceMs}), or a token could expire while its session waits for the client`,
      'session.tokenTtlMs',
    );
  }
  return { secret, secretGenerated: generated, graceMs, tokenTtlMs };
}

function resolveLimits(value: unknown): ResolvedLimits {
  const input = section(value, 'limits', limitKeys);
  const maxMessageBytes = integer(
    'limits.maxMessageBytes',
    input.maxMessageBytes,
    65_536,
    MIN_MESSAGE_BYTES,
    0x7fff_0000,
  );
  const bytesBurst = atLeast(
    'limits.bytesBurst',
    input.bytesBurst,
    Math.max(131_072, 2 * maxMessageBytes),
    1,
  );
  // A bucket smaller than one message would refuse a legal message forever.
  if (bytesBurst < maxMessageBytes) {
    throw invalid(
      `limits.bytesBurst must be >= limits.maxMessageBytes (${maxMessageBytes}), or a message of the largest allowed size could never pass; got ${bytesBurst}`,
      'limits.bytesBurst',
    );
  }
  const maxReplayBytes = integer(
    'limits.maxReplayBytes',
    input.maxReplayBytes,
    Math.max(1_048_576, 2 * maxMessageBytes),
    1,
    2 ** 52,
  );
  if (maxReplayBytes < maxMessageBytes) {
    throw invalid(
      `limits.maxReplayBytes must be >= limits.maxMessageBytes (${maxMessageBytes}), or one message could overflow the replay buffer; got ${maxReplayBytes}`,
      'limits.maxReplayBytes',
    );
  }
  return {
    maxMessageBytes,
    messagesPerSecond: positive('limits.messagesPerSecond', input.messagesPerSecond, 150),
    messageBurst: atLeast('limits.messageBurst', input.messageBurst, 300, 1),
    bytesPerSecond: positive('limits.bytesPerSecond', input.bytesPerSecond, 65_536),
    bytesBurst,
    rateLimitWarnings: integer('limits.rateLimitWarnings', input.rateLimitWarnings, 1, 0),
    maxConnections: integer('limits.maxConnections', input.maxConnections, 10_000, 1),
    maxConnectionsPerAddress: integer(
      'limits.maxConnectionsPerAddress',
      input.maxConnectionsPerAddress,
      16,
      1,
    ),
    maxReplayBytes,
    handshakesPerSecondPerAddress: positive(
      'limits.handshakesPerSecondPerAddress',
      input.handshakesPerSecondPerAddress,
      20,
    ),
    maxSessions: integer('limits.maxSessions', input.maxSessions, 100_000, 1),
  };
}

function resolveOrigins(value: unknown): readonly string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) {
    throw invalid(
      `allowedOrigins must be an array of origins, got ${show(value)}`,
      'allowedOrigins',
    );
  }
  return Object.freeze(
    value.map((origin: unknown, index) => {
      const path = `allowedOrigins[${index}]`;
      let url: URL | undefined;
      try {
        if (typeof origin === 'string') url = new URL(origin);
      } catch {
        url = undefined;
      }
      const bare =
        url !== undefined &&
        (url.protocol === 'http:' || url.protocol === 'https:') &&
        url.username === '' &&
        url.password === '' &&
        url.search === '' &&
        url.hash === '' &&
        url.pathname === '/' &&
        !(origin as string).endsWith('/');
      if (!bare) {
        throw invalid(
          `${path} must be an origin like 'https://game.example.com' (http or https, host, optional port; no path), got ${show(origin)}`,
          path,
        );
      }
      // Browsers send the serialised origin: lower-case host, no default port.
      return url!.origin;
    }),
  );
}

function resolveHttp(value: unknown): ResolvedHttpConfig {
  const input = section(value, 'http', httpKeys);
  return {
    health: boolean('http.health', input.health, true),
    metrics: boolean('http.metrics', input.metrics, true),
    debug: boolean('http.debug', input.debug, false),
  };
}

/**
 * Applies defaults to `input` and checks every value; throws TickwireError INVALID_ARGUMENT
 * naming the option path, what is allowed and what was given (`details.path` holds the path).
 */
export function resolveServerConfig(
  input: ServerConfig = {},
  context: ResolveServerConfigContext = {},
): ResolvedServerConfig {
  const config = section(input, 'server config', serverConfigKeys);
  const logger = context.logger ?? silentLogger;
  const host = config.host === undefined ? '127.0.0.1' : config.host;
  if (typeof host !== 'string' || host.trim() === '' || host !== host.trim()) {
    throw invalid(
      `host must be a non-empty interface name or address (e.g. '0.0.0.0'), got ${show(host)}`,
      'host',
    );
  }
  const port = portOf('port', config.port);
  const transports = resolveTransports(config.transports);
  // The HTTP server and the TCP transport are both TCP listeners on `host`.
  if (transports.tcp && transports.tcp.port !== 0 && transports.tcp.port === port) {
    throw invalid(
      `transports.tcp.port must differ from port (${port}): both are TCP listeners on ${host}`,
      'transports.tcp.port',
    );
  }
  const limits = resolveLimits(config.limits);
  const http = resolveHttp(config.http);
  const tickRateHz = integer('tickRateHz', config.tickRateHz, 20, 1, 1000);
  const handshakeTimeoutMs = integer(
    'handshakeTimeoutMs',
    config.handshakeTimeoutMs,
    5_000,
    1,
    MAX_DELAY_MS,
  );
  const shutdownTimeoutMs = integer(
    'shutdownTimeoutMs',
    config.shutdownTimeoutMs,
    10_000,
    0,
    MAX_DELAY_MS,
  );
  const allowedOrigins = resolveOrigins(config.allowedOrigins);
  // Last, so that a config with another mistake does not log the warning first.
  const session = resolveSession(config.session, logger);
  return Object.freeze({
    host,
    port,
    transports: Object.freeze<ResolvedTransports>(transports),
    tickRateHz,
    handshakeTimeoutMs,
    session: Object.freeze(session),
    limits: Object.freeze(limits),
    allowedOrigins,
    http: Object.freeze(http),
    shutdownTimeoutMs,
  });
}
