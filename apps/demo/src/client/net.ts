// The session: connect to the page's own server over WebSocket, quick-play into an arena room,
// and say what is going on. Reconnection is the client engine's: a dropped connection resumes
// the same session and room (nothing to do here); only when the room itself is gone (server
// restart, room closed) do we join a new one.
import { type Client, createClient } from '@tickwire/client';
import { CloseCode, isTickwireError } from '@tickwire/core';
import { createBrowserWsClient } from '@tickwire/transport/browser';
import { type Arena, createArena, joinArena } from './arena.js';
import {
  type ConditionedTransport,
  conditionTransport,
  type NetworkPresetName,
} from './network.js';

/** What the page shows about the connection. */
export type NetStatus =
  | { state: 'connecting' }
  | { state: 'joining' }
  | { state: 'connected' }
  | { state: 'reconnecting'; attempt: number; delayMs: number }
  | { state: 'closed'; reason: string };

export interface ArenaSession {
  readonly client: Client;
  readonly network: ConditionedTransport;
  /** The arena room being played, or null while (re)joining. */
  readonly arena: Arena | null;
  readonly status: NetStatus;
  /** The last error worth showing (join refused, server error…), or null. */
  readonly lastError: string | null;
  /** Changes the player's name in the room. */
  rename(name: string): void;
  /** Leaves and ends the session. */
  close(): void;
}

export interface ArenaSessionOptions {
  /** `ws://host` or `wss://host` of the demo server. */
  url: string;
  name: string;
  preset: NetworkPresetName;
  /** Called on every change of `status`, `arena` or `lastError`. */
  onChange(session: ArenaSession): void;
}

/** The server's limit on names (`t.string({ maxBytes: 24 })`), cut on a character boundary. */
export function cleanName(name: string): string {
  const encoder = new TextEncoder();
  let clean = name.trim().replace(/\s+/g, ' ');
  while (encoder.encode(clean).length > 24) clean = Array.from(clean).slice(0, -1).join('');
  return clean;
}

/** The WebSocket URL of the server that served this page. */
export function pageServerUrl(): string {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`;
}

const messageOf = (error: unknown): string =>
  isTickwireError(error)
    ? `${error.code}: ${error.message}`
    : error instanceof Error
      ? error.message
      : String(error);

const REJOIN_DELAY_MS = 1000;

/** Connects, joins an arena room and keeps the player in one until `close()`. */
export function startArenaSession(options: ArenaSessionOptions): ArenaSession {
  // Heartbeats every second (the default is 5 s) so the debug overlay's RTT is live.
  const socket = createBrowserWsClient({ heartbeatIntervalMs: 1000 });
  const network = conditionTransport(socket, options.preset);
  const client = createClient({ endpoints: [{ url: options.url, transport: network.transport }] });
  let name = cleanName(options.name);
  let arena: Arena | null = null;
  let status: NetStatus = { state: 'connecting' };
  let lastError: string | null = null;
  let closing = false;

  const changed = () => options.onChange(session);
  const setStatus = (next: NetStatus) => {
    status = next;
    changed();
  };
  const report = (error: unknown) => {
    lastError = messageOf(error);
    changed();
  };

  // Read through a function: the state changes across the awaits below.
  const ended = (): boolean => closing || client.state === 'closed';

  const join = async (): Promise<void> => {
    if (ended()) return;
    setStatus({ state: 'joining' });
    try {
      const room = await joinArena(client, name);
      if (ended()) {
        // close() ran while the join was pending: leave the room rather than play in it.
        room.leave().catch(() => {
          // The link is gone: the server drops the member with it.
        });
        return;
      }
      // Synchronously after the await: the room holds `you` until the first listener.
      arena = createArena(client, room);
      room.on('leave', (code, reason) => onLeft(code, reason));
      room.on('error', report);
      lastError = null;
      setStatus({ state: 'connected' });
    } catch (error) {
      report(error);
      if (!ended()) setTimeout(() => void join(), REJOIN_DELAY_MS);
    }
  };

  const onLeft = (code: number, reason: string) => {
    arena?.dispose();
    arena = null;
    if (ended()) return;
    if (code === CloseCode.Kicked) {
      report(`kicked from the room${reason ? `: ${reason}` : ''}`);
      setStatus({ state: 'closed', reason: 'kicked' });
      return;
    }
    // The room went away under us (closed, server restarted): quick-play into another.
    setTimeout(() => void join(), code === CloseCode.ServiceRestart ? 0 : REJOIN_DELAY_MS);
    setStatus({ state: 'joining' });
  };

  client.on('reconnecting', (attempt, delayMs) =>
    setStatus({ state: 'reconnecting', attempt, delayMs }),
  );
  client.on('open', () => {
    if (arena !== null) setStatus({ state: 'connected' });
  });
  client.on('error', report);
  client.on('close', (info, error) => {
    arena?.dispose();
    arena = null;
    if (error) lastError = messageOf(error);
    setStatus({ state: 'closed', reason: error ? error.code : `closed (${info.code})` });
  });

  const session: ArenaSession = {
    client,
    network,
    get arena() {
      return arena;
    },
    get status() {
      return status;
    },
    get lastError() {
      return lastError;
    },
    rename(next) {
      name = cleanName(next) || name;
      if (arena === null || arena.room.state !== 'joined') return;
      try {
        arena.room.send('name', { name });
      } catch (error) {
        report(error);
      }
    },
    close() {
      closing = true;
      arena?.dispose();
      arena = null;
      client.close();
    },
  };

  client.connect().then(
    () => join(),
    () => {
      // The `close` event has said why.
    },
  );
  return session;
}
