import { copyBytes } from './bytes.js';
import { systemTime, type TimeSource } from './clock.js';
import { Emitter, subscribable } from './emitter.js';
import {
  createLinkConditioner,
  type LinkConditioner,
  type LinkOptions,
} from './link-conditioner.js';
import { CloseCode, checkCloseArgs } from './protocol.js';
import { createRandom, type Random } from './random.js';
import type {
  Channel,
  CloseInfo,
  Connection,
  ConnectionEvents,
  ConnectionState,
  ConnectionStats,
} from './transport.js';
import { checkSend } from './transport.js';

/** Options of {@link conditionConnection}. */
export interface ConditionConnectionOptions {
  /** Conditions of what this side sends. @default no impairment */
  outbound?: LinkOptions;
  /** Conditions of what this side receives. @default no impairment */
  inbound?: LinkOptions;
  /** Clock and scheduler the delays run on. @default systemTime */
  time?: TimeSource;
  /** Seed of the two directions' random sources. @default 1 */
  seed?: number;
  /** Random source to fork the two directions from; ignored if `seed` is given. */
  random?: Random;
}

/** What a conditioned connection shows of one simulated direction: its conditions and counters. */
export type LinkView = Pick<LinkConditioner, 'options' | 'stats'>;

/** A {@link Connection} seen through a simulated bad network. */
export interface ConditionedConnection extends Connection {
  /** The wrapped connection. */
  readonly inner: Connection;
  /** The two simulated directions, for their stats (change them with `configure`). */
  readonly outbound: LinkView;
  readonly inbound: LinkView;
  /** Changes conditions live (the demo's "bad network" switch). */
  configure(options: { outbound?: LinkOptions; inbound?: LinkOptions }): void;
}

/**
 * Wraps any {@link Connection} in a link conditioner, both ways. Channel contracts still hold:
 * reliable messages arrive in order and none is lost (a loss becomes a retransmission delay);
 * unreliable ones may be lost and arrive sequenced (late or duplicate ones are dropped).
 */
export function conditionConnection(
  inner: Connection,
  options: ConditionConnectionOptions = {},
): ConditionedConnection {
  const time = options.time ?? systemTime;
  const root =
    options.seed !== undefined || !options.random ? createRandom(options.seed ?? 1) : null;
  const fork = (): Random =>
    root ? root.fork() : createRandom(Math.floor((options.random as Random).next() * 2 ** 32));
  const outbound = createLinkConditioner({ ...options.outbound, time, random: fork() });
  const inbound = createLinkConditioner({ ...options.inbound, time, random: fork() });
  const events = new Emitter<ConnectionEvents>();
  // Only this wrapper's own closing and closed states; otherwise the inner connection's.
  let ownState: 'closing' | 'closed' | null = null;
  let outboundBytes = 0;
  // Unreliable traffic is sequenced per direction: a packet older than a delivered one is dropped.
  let nextOutboundSeq = 0;
  let lastOutboundSeq = -1;
  let nextInboundSeq = 0;
  let lastInboundSeq = -1;
  let closeEmitted = false;
  let closedLocally = false;

  const state = (): ConnectionState => ownState ?? inner.state;
  const meanDelay = (link: LinkConditioner): number =>
    link.stats.delivered > 0
      ? link.stats.delaySumMs / link.stats.delivered
      : link.options.latencyMs;
  const lostIn = (link: LinkConditioner): number => link.stats.lost + link.stats.queueDropped;
  // Figures as the application would measure them through the simulated network.
  const stats: ConnectionStats = {
    get rttMs() {
      return inner.stats.rttMs + meanDelay(outbound) + meanDelay(inbound);
    },
    get lossRate() {
      const sent = outbound.stats.sent + inbound.stats.sent;
      const simulated = sent > 0 ? (lostIn(outbound) + lostIn(inbound)) / sent : 0;
      return Math.max(inner.stats.lossRate, simulated);
    },
    get packetsLost() {
      return inner.stats.packetsLost + lostIn(outbound);
    },
    get bytesIn() {
      return inner.stats.bytesIn;
    },
    get bytesOut() {
      return inner.stats.bytesOut;
    },
    get messagesIn() {
      return inner.stats.messagesIn;
    },
    get messagesOut() {
      return inner.stats.messagesOut;
    },
    get packetsIn() {
      return inner.stats.packetsIn;
    },
    get packetsOut() {
      return inner.stats.packetsOut;
    },
    get unreliableDropped() {
      return inner.stats.unreliableDropped;
    },
  };
  const deliver = (data: Uint8Array, channel: Channel): void => {
    if (!closeEmitted) events.emit('message', data, channel);
  };

  inner.on('message', (data, channel) => {
    if (channel === 'reliable') {
      inbound.transmit(data.byteLength, () => deliver(data, channel), true);
      return;
    }
    const seq = nextInboundSeq++;
    inbound.transmit(data.byteLength, () => {
      if (seq <= lastInboundSeq) return;
      lastInboundSeq = seq;
      deliver(data, channel);
    });
  });
  inner.on('error', (error) => events.emit('error', error));
  inner.on('close', (info: CloseInfo) => {
    // Reliable messages that arrived before the close are delivered first.
    inbound.transmit(
      0,
      () => {
        if (closeEmitted) return;
        closeEmitted = true;
        ownState = 'closed';
        outbound.clear();
        inbound.clear();
        outboundBytes = 0;
        events.emit('close', { ...info, local: closedLocally || info.local });
      },
      true,
    );
  });

  return {
    inner,
    outbound,
    inbound,
    ...subscribable(events),
    get id() {
      return inner.id;
    },
    get remoteAddress() {
      return inner.remoteAddress;
    },
    get state() {
      return state();
    },
    get bufferedAmount() {
      return outboundBytes + inner.bufferedAmount;
    },
    get maxMessageBytes() {
      return inner.maxMessageBytes;
    },
    stats,
    configure(next) {
      if (next.outbound) outbound.configure(next.outbound);
      if (next.inbound) inbound.configure(next.inbound);
    },
    send(data, channel = 'reliable') {
      checkSend(inner.id, state(), data, channel, inner.maxMessageBytes);
      const copy = copyBytes(data);
      const size = copy.byteLength;
      if (channel === 'reliable') {
        // Reliable bytes count as buffered until the simulated link hands them on.
        outboundBytes += size;
        outbound.transmit(
          size,
          () => {
            outboundBytes -= size;
            if (inner.state === 'open') inner.send(copy, channel);
          },
          true,
        );
        return true;
      }
      const seq = nextOutboundSeq++;
      outbound.transmit(size, () => {
        // The far end would drop a late or duplicate unreliable packet: drop it here.
        if (seq <= lastOutboundSeq) return;
        lastOutboundSeq = seq;
        if (inner.state === 'open') inner.send(copy, channel);
      });
      return true;
    },
    close(code: number = CloseCode.Normal, reason = '') {
      const current = state();
      if (current !== 'open' && current !== 'connecting') return;
      checkCloseArgs(code, reason);
      ownState = 'closing';
      closedLocally = true;
      // The close travels behind the reliable messages sent before it.
      outbound.transmit(0, () => inner.close(code, reason), true);
    },
  };
}
