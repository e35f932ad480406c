import { ErrorCode, isTickwireError } from '@tickwire/core';
import { createMemoryLogger } from '@tickwire/core/memory';
import { describe, expect, it } from 'vitest';
import { resolveServerConfig, type ServerConfig, serverConfigKeys } from './config.js';

const SECRET = 'k'.repeat(32);

/** Resolves `input` (with a secret unless given) and returns the error it throws. */
function errorOf(input: unknown): { message: string; path: unknown } {
  const config = input as ServerConfig;
  try {
    resolveServerConfig(
      typeof config === 'object' && config !== null && !Array.isArray(config) && !config.session
        ? { ...config, session: { secret: SECRET } }
        : config,
    );
  } catch (error) {
    expect(isTickwireError(error, ErrorCode.INVALID_ARGUMENT)).toBe(true);
    const e = error as Error & { details?: { path?: unknown } };
    return { message: e.message, path: e.details?.path };
  }
  throw new Error('expected resolveServerConfig to throw');
}

describe('resolveServerConfig', () => {
  it('applies every documented default', () => {
    const config = resolveServerConfig({ session: { secret: SECRET } });
    expect(config).toEqual({
      host: '127.0.0.1',
      port: 0,
      transports: { ws: { path: undefined }, tcp: false, udp: false },
      tickRateHz: 20,
      handshakeTimeoutMs: 5000,
      session: {
        secret: new TextEncoder().encode(SECRET),
        secretGenerated: false,
        graceMs: 30_000,
        tokenTtlMs: 86_400_000,
      },
      limits: {
        maxMessageBytes: 65_536,
        messagesPerSecond: 150,
        messageBurst: 300,
        bytesPerSecond: 65_536,
        bytesBurst: 131_072,
        rateLimitWarnings: 1,
        maxConnections: 10_000,
        maxConnectionsPerAddress: 16,
        maxReplayBytes: 1_048_576,
        handshakesPerSecondPerAddress: 20,
        maxSessions: 100_000,
      },
      allowedOrigins: undefined,
      http: { health: true, metrics: true, debug: false },
      shutdownTimeoutMs: 10_000,
    });
  });

  it('keeps given values and returns a frozen config', () => {
    const config = resolveServerConfig({
      host: '0.0.0.0',
      port: 4000,
      transports: { ws: { path: '/play' }, tcp: { port: 4001 }, udp: true },
      tickRateHz: 60,
      handshakeTimeoutMs: 2000,
      session: { secret: SECRET, graceMs: 0, tokenTtlMs: 60_000 },
      limits: { messagesPerSecond: 30.5, rateLimitWarnings: 0 },
      http: { debug: true, metrics: false },
      shutdownTimeoutMs: 0,
    });
    expect(config.host).toBe('0.0.0.0');
    expect(config.port).toBe(4000);
    expect(config.transports).toEqual({
      ws: { path: '/play' },
      tcp: { port: 4001 },
      udp: { port: 0 },
    });
    expect(config.tickRateHz).toBe(60);
    expect(config.session.graceMs).toBe(0);
    expect(config.limits.messagesPerSecond).toBe(30.5);
    expect(config.limits.rateLimitWarnings).toBe(0);
    expect(config.http).toEqual({ health: true, metrics: false, debug: true });
    expect(config.shutdownTimeoutMs).toBe(0);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(Object.isFrozen(config.transports)).toBe(true);
  });

  it('disables ws only when told to', () => {
    const only = resolveServerConfig({
      transports: { ws: false, udp: { port: 5000 } },
      session: { secret: SECRET },
    });
    expect(only.transports).toEqual({ ws: false, tcp: false, udp: { port: 5000 } });
    expect(
      resolveServerConfig({ transports: { tcp: true }, session: { secret: SECRET } }).transports.ws,
    ).toEqual({ path: undefined });
  });

  it('scales the byte burst and replay buffer defaults with maxMessageBytes', () => {
    const config = resolveServerConfig({
      limits: { maxMessageBytes: 1_048_576 },
      session: { secret: SECRET },
    });
    expect(config.limits.bytesBurst).toBe(2_097_152);
    expect(config.limits.maxReplayBytes).toBe(2_097_152);
  });

  it('generates a random 32-byte secret with a warning when none is set', () => {
    const logger = createMemoryLogger();
    const a = resolveServerConfig({}, { logger });
    const b = resolveServerConfig({});
    expect(a.session.secret).toHaveLength(32);
    expect(a.session.secretGenerated).toBe(true);
    expect(Buffer.from(a.session.secret).equals(Buffer.from(b.session.secret))).toBe(false);
    expect(logger.records).toHaveLength(1);
    expect(logger.records[0]!.level).toBe('warn');
    expect(logger.records[0]!.message).toContain('session.secret is not set');
  });

  it('copies a Uint8Array secret', () => {
    const key = new Uint8Array(32).fill(7);
    const config = resolveServerConfig({ session: { secret: key } });
    key[0] = 0;
    expect(config.session.secret[0]).toBe(7);
  });

  it('does not warn about the secret when the config is invalid', () => {
    const logger = createMemoryLogger();
    expect(() => resolveServerConfig({ port: -1 }, { logger })).toThrow();
    expect(logger.records).toHaveLength(0);
  });

  it('normalises allowed origins', () => {
    const config = resolveServerConfig({
      allowedOrigins: ['https://Game.Example.com', 'http://localhost:5173', 'https://a.io:443'],
      session: { secret: SECRET },
    });
    expect(config.allowedOrigins).toEqual([
      'https://game.example.com',
      'http://localhost:5173',
      'https://a.io',
    ]);
  });

  it.each<[string, unknown, string, string]>([
    ['config', null, 'server config must be an object, got null', 'server config'],
    [
      'host',
      { host: '' },
      'host must be a non-empty interface name or address (e.g. \'0.0.0.0\'), got ""',
      'host',
    ],
    ['port', { port: 70_000 }, 'port must be an integer in [0, 65535], got 70000', 'port'],
    ['port type', { port: '80' }, 'port must be an integer in [0, 65535], got "80"', 'port'],
    [
      'rate',
      { limits: { messagesPerSecond: -1 } },
      'limits.messagesPerSecond must be a number > 0, got -1',
      'limits.messagesPerSecond',
    ],
    [
      'NaN rate',
      { limits: { bytesPerSecond: Number.NaN } },
      'limits.bytesPerSecond must be a number > 0, got NaN',
      'limits.bytesPerSecond',
    ],
    [
      'burst',
      { limits: { messageBurst: 0.5 } },
      'limits.messageBurst must be a number >= 1, got 0.5',
      'limits.messageBurst',
    ],
    [
      'warnings',
      { limits: { rateLimitWarnings: 1.5 } },
      'limits.rateLimitWarnings must be an integer >= 0, got 1.5',
      'limits.rateLimitWarnings',
    ],
    [
      'max message',
      { limits: { maxMessageBytes: 100 } },
      'limits.maxMessageBytes must be an integer in [512, 2147418112], got 100',
      'limits.maxMessageBytes',
    ],
    [
      'connections',
      { limits: { maxConnections: 0 } },
      'limits.maxConnections must be an integer >= 1, got 0',
      'limits.maxConnections',
    ],
    [
      'per address',
      { limits: { maxConnectionsPerAddress: null } },
      'limits.maxConnectionsPerAddress must be an integer >= 1, got null',
      'limits.maxConnectionsPerAddress',
    ],
    [
      'tick rate',
      { tickRateHz: 0 },
      'tickRateHz must be an integer in [1, 1000], got 0',
      'tickRateHz',
    ],
    [
      'handshake',
      { handshakeTimeoutMs: 0 },
      'handshakeTimeoutMs must be an integer in [1, 2147483647], got 0',
      'handshakeTimeoutMs',
    ],
    [
      'shutdown',
      { shutdownTimeoutMs: -5 },
      'shutdownTimeoutMs must be an integer in [0, 2147483647], got -5',
      'shutdownTimeoutMs',
    ],
    [
      'grace',
      { session: { secret: SECRET, graceMs: -1 } },
      'session.graceMs must be an integer in [0, 2147483647], got -1',
      'session.graceMs',
    ],
    ['http', { http: { debug: 'yes' } }, 'http.debug must be a boolean, got "yes"', 'http.debug'],
    ['limits type', { limits: [] }, 'limits must be an object, got an array', 'limits'],
    [
      'ws type',
      { transports: { ws: 1 } },
      'transports.ws must be a boolean or an object, got 1',
      'transports.ws',
    ],
    [
      'udp port',
      { transports: { udp: { port: 1.5 } } },
      'transports.udp.port must be an integer in [0, 65535], got 1.5',
      'transports.udp.port',
    ],
  ])(
    'rejects a bad %s with the path, the allowed values and the value',
    (_, input, message, path) => {
      expect(errorOf(input)).toEqual({ message, path });
    },
  );

  it('rejects an unknown top-level key, listing the valid ones and a near match', () => {
    const { message, path } = errorOf({ hots: 'x' });
    expect(path).toBe('hots');
    expect(message).toBe(
      `unknown option 'hots' (did you mean 'host'?); valid options: ${serverConfigKeys.join(', ')}`,
    );
    expect(errorOf({ logger: {} }).message).toMatch(
      /^unknown option 'logger'; valid options: host,/,
    );
  });

  it('rejects unknown nested keys', () => {
    expect(errorOf({ limits: { messagesPerSecnd: 5 } }).message).toBe(
      "unknown option 'limits.messagesPerSecnd' (did you mean 'messagesPerSecond'?); valid options of limits: " +
        'maxMessageBytes, messagesPerSecond, messageBurst, bytesPerSecond, bytesBurst, ' +
        'rateLimitWarnings, maxConnections, maxConnectionsPerAddress, maxReplayBytes, ' +
        'handshakesPerSecondPerAddress, maxSessions',
    );
    expect(errorOf({ transports: { quic: true } }).path).toBe('transports.quic');
    expect(errorOf({ transports: { tcp: { path: '/x' } } }).path).toBe('transports.tcp.path');
    expect(errorOf({ session: { secret: SECRET, ttl: 1 } }).path).toBe('session.ttl');
    expect(errorOf({ http: { status: true } }).path).toBe('http.status');
  });

  it('requires a transport', () => {
    expect(errorOf({ transports: { ws: false } }).message).toBe(
      'transports must enable at least one of ws, tcp, udp (got all disabled)',
    );
  });

  it('rejects a WebSocket path that is not a path', () => {
    expect(errorOf({ transports: { ws: { path: 'ws' } } }).message).toMatch(
      /^transports.ws.path must be a URL path starting with '\/'.*got "ws"$/,
    );
    expect(errorOf({ transports: { ws: { path: '/a?b' } } }).path).toBe('transports.ws.path');
  });

  it('rejects a TCP transport on the HTTP port', () => {
    expect(errorOf({ port: 4000, transports: { tcp: { port: 4000 } } }).message).toBe(
      'transports.tcp.port must differ from port (4000): both are TCP listeners on 127.0.0.1',
    );
    // UDP may share the number; port 0 on both picks two free ports.
    expect(() =>
      resolveServerConfig({
        port: 4000,
        transports: { udp: { port: 4000 }, tcp: true },
        session: { secret: SECRET },
      }),
    ).not.toThrow();
  });

  it('rejects a byte burst or replay buffer smaller than one message', () => {
    expect(errorOf({ limits: { bytesBurst: 1000 } }).message).toBe(
      'limits.bytesBurst must be >= limits.maxMessageBytes (65536), or a message of the largest allowed size could never pass; got 1000',
    );
    expect(errorOf({ limits: { maxReplayBytes: 1000 } }).path).toBe('limits.maxReplayBytes');
  });

  it('rejects a weak or mistyped secret and a token that dies before its grace', () => {
    expect(errorOf({ session: { secret: 'short' } }).message).toBe(
      'session.secret must be at least 32 bytes (e.g. `openssl rand -hex 32`), got 5',
    );
    expect(errorOf({ session: { secret: 42 } }).message).toBe(
      'session.secret must be a string or a Uint8Array, got 42',
    );
    expect(errorOf({ session: { secret: SECRET, graceMs: 10_000, tokenTtlMs: 5_000 } }).path).toBe(
      'session.tokenTtlMs',
    );
  });

  it('rejects origins with a path, another scheme or no scheme', () => {
    for (const origin of ['example.com', 'https://a.io/', 'https://a.io/x', 'ws://a.io', 42]) {
      const { message, path } = errorOf({ allowedOrigins: ['https://ok.io', origin] });
      expect(path).toBe('allowedOrigins[1]');
      expect(message).toMatch(
        /^allowedOrigins\[1\] must be an origin like 'https:\/\/game.example.com'/,
      );
    }
    expect(errorOf({ allowedOrigins: 'https://a.io' }).message).toBe(
      'allowedOrigins must be an array of origins, got "https://a.io"',
    );
  });
});
