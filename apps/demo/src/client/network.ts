// The "bad network" switch: core's link conditioner between the client engine and the real
// WebSocket. Everything above the transport (the session link's replay, clock sync, snapshot
// acks, prediction, interpolation) sees the simulated network exactly as it would see a real one.
import {
  type ClientTransport,
  type ConditionedConnection,
  conditionConnection,
  type LinkOptions,
  type LinkView,
} from '@tickwire/core';

/** A network preset: the conditions of each direction (both directions get the same). */
export interface NetworkPreset {
  readonly label: string;
  readonly link: Readonly<LinkOptions>;
}

// `configure()` merges into the current conditions, so every preset names every impairment.
const CLEAN: Required<
  Pick<LinkOptions, 'latencyMs' | 'jitterMs' | 'lossRate' | 'duplicateRate' | 'reorderRate'>
> = { latencyMs: 0, jitterMs: 0, lossRate: 0, duplicateRate: 0, reorderRate: 0 };

/** The presets of the overlay's switch, by the key `?net=` and `setNetwork()` take. */
export const NETWORK_PRESETS = {
  lan: { label: 'LAN', link: CLEAN },
  '100ms': { label: '100 ms', link: { ...CLEAN, latencyMs: 50 } },
  '150ms': { label: '150 ms', link: { ...CLEAN, latencyMs: 75, jitterMs: 5 } },
  '200ms': {
    label: '200 ms + 5 % loss',
    link: { ...CLEAN, latencyMs: 100, jitterMs: 10, lossRate: 0.05 },
  },
  awful: {
    label: 'awful',
    link: {
      latencyMs: 150,
      jitterMs: 40,
      lossRate: 0.1,
      duplicateRate: 0.02,
      reorderRate: 0.02,
    },
  },
} as const satisfies Record<string, NetworkPreset>;

export type NetworkPresetName = keyof typeof NETWORK_PRESETS;

const normalise = (text: string): string => text.toLowerCase().replace(/[\s%+]/g, '');

/** The preset a key or label names (`'200ms'`, `'200 ms + 5 % loss'`, `'LAN'`), else undefined. */
export function findPreset(name: string): NetworkPresetName | undefined {
  const wanted = normalise(name);
  for (const [key, preset] of Object.entries(NETWORK_PRESETS)) {
    if (normalise(key) === wanted || normalise(preset.label) === wanted)
      return key as NetworkPresetName;
  }
  return undefined;
}

/** A transport whose connections all go through a link conditioner, and its live switch. */
export interface ConditionedTransport {
  readonly transport: ClientTransport;
  /** The preset in force (new connections after a reconnect start with it too). */
  readonly preset: NetworkPresetName;
  /** The connection in use, or null before the first connect. */
  readonly connection: ConditionedConnection | null;
  /** Applies a preset to the live connection at once (packets in flight keep their schedule). */
  setPreset(name: NetworkPresetName): void;
  /**
   * Round trip now: the socket's own RTT plus the simulated delay of each direction over the
   * last two seconds (NaN before the first connection).
   */
  rttMs(): number;
}

/**
 * Mean delay of what a simulated direction delivered over the last ~2 s. The connection's own
 * `stats.rttMs` averages the simulated delay since the connection opened, so after a preset
 * change it would take minutes to show the new network.
 */
function recentDelay(view: LinkView): () => number {
  const history: { at: number; sumMs: number; delivered: number }[] = [];
  return () => {
    const now = performance.now();
    const { delaySumMs, delivered } = view.stats;
    const newest = history[history.length - 1];
    if (newest === undefined || now - newest.at >= 100)
      history.push({ at: now, sumMs: delaySumMs, delivered });
    while (history.length > 2 && now - history[0]!.at > 2000) history.shift();
    const oldest = history[0]!;
    const count = delivered - oldest.delivered;
    return count > 0 ? (delaySumMs - oldest.sumMs) / count : view.options.latencyMs;
  };
}

/**
 * Wraps a transport so that every connection it opens is `conditionConnection(conn, { seed })`.
 * The latest one is kept to `configure()` live; reconnections keep the preset.
 */
export function conditionTransport(
  inner: ClientTransport,
  initial: NetworkPresetName = 'lan',
): ConditionedTransport {
  let preset: NetworkPresetName = initial;
  let connection: ConditionedConnection | null = null;
  let outboundDelay = (): number => 0;
  let inboundDelay = (): number => 0;
  // A fixed seed per connection: the same preset gives the same loss pattern run after run.
  let seed = 1;
  const linkOf = (name: NetworkPresetName) => ({
    outbound: NETWORK_PRESETS[name].link,
    inbound: NETWORK_PRESETS[name].link,
  });
  return {
    transport: {
      async connect(url, options) {
        const opened = await inner.connect(url, options);
        connection = conditionConnection(opened, { seed: seed++, ...linkOf(preset) });
        outboundDelay = recentDelay(connection.outbound);
        inboundDelay = recentDelay(connection.inbound);
        return connection;
      },
    },
    get preset() {
      return preset;
    },
    get connection() {
      return connection;
    },
    setPreset(name) {
      preset = name;
      connection?.configure(linkOf(name));
    },
    rttMs() {
      if (connection === null) return Number.NaN;
      return connection.inner.stats.rttMs + outboundDelay() + inboundDelay();
    },
  };
}
