import {
  type Connection,
  conditionConnection,
  createManualTime,
  isTickwireError,
  type LinkOptions,
  type ManualTime,
  Opcode,
  type TickwireError,
} from '@tickwire/core';
import {
  createMemoryConnectionPair,
  createMemoryLogger,
  createMemoryMetrics,
} from '@tickwire/core/memory';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  createRollback,
  createRollbackUintCodec,
  type Rollback,
  type RollbackDesync,
  type RollbackInputCodec,
} from './rollback.js';
import { createRollbackSession, type RollbackSession } from './rollback-session.js';
import { createGame, inputFor } from './rollback-test-game.js';

const FRAME_MS = 16;

const codec = createRollbackUintCodec(1);

/** Lets the memory transport and zero-delay link deliveries (microtasks) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

interface Peer {
  game: ReturnType<typeof createGame>;
  rollback: Rollback<number>;
  session: RollbackSession;
  checksums: Map<number, number>;
  desyncs: RollbackDesync[];
  errors: TickwireError[];
  /** Frames still to wait, as time sync recommended. */
  wait: number;
  /** Ticks before this peer starts. */
  startTick: number;
}

interface MeshOptions {
  players: number;
  link: LinkOptions;
  checksumInterval: number;
  /** Changes the state of `player`'s simulation at `frame` (a nondeterministic peer). */
  corrupt?: { player: number; frame: number };
  startTicks?: number[];
}

/** A full mesh of peers, each over conditioned memory connections to the others. */
function createMesh(options: MeshOptions): { time: ManualTime; peers: Peer[] } {
  const { players } = options;
  const time = createManualTime();
  const ends: Connection[][] = Array.from({ length: players }, () => []);
  let seed = 1;
  for (let i = 0; i < players; i++) {
    for (let j = i + 1; j < players; j++) {
      const [a, b] = createMemoryConnectionPair();
      ends[i]![j] = conditionConnection(a, { outbound: options.link, time, seed: seed++ });
      ends[j]![i] = conditionConnection(b, { outbound: options.link, time, seed: seed++ });
    }
  }
  const peers = Array.from({ length: players }, (_, p): Peer => {
    const game = createGame(players);
    const rollback = createRollback<Int32Array, number>({
      players,
      localPlayers: [p],
      inputDelay: 2,
      maxRollback: 8,
      inputCodec: codec,
      save: game.save,
      load: game.load,
      advance: (inputs, frame) => {
        game.advance(inputs, frame);
        if (options.corrupt?.player === p && options.corrupt.frame === frame) game.state[1]! += 1;
      },
      checksum: game.checksum,
      checksumInterval: options.checksumInterval,
    });
    const others = [...Array(players).keys()].filter((q) => q !== p);
    const session = createRollbackSession({
      rollback,
      peers: others.map((q) => ({ connection: ends[p]![q]!, players: [q] })),
      time,
      frameDurationMs: FRAME_MS,
    });
    const peer: Peer = {
      game,
      rollback,
      session,
      checksums: new Map(),
      desyncs: [],
      errors: [],
      wait: 0,
      startTick: options.startTicks?.[p] ?? 0,
    };
    rollback.on('checksum', (frame, value) => peer.checksums.set(frame, value));
    rollback.on('desync', (desync) => peer.desyncs.push(desync));
    session.on('error', (error) => peer.errors.push(error));
    return peer;
  });
  return { time, peers };
}

interface RunOptions {
  frames: number;
  timeSync: boolean;
  /** Called after each tick's updates, with the tick number. */
  onTick?: (tick: number) => void;
}

/** Runs every peer to `frames` frames at one frame per 16 ms tick; returns the ticks taken. */
async function runMesh(time: ManualTime, peers: Peer[], options: RunOptions): Promise<number> {
  for (let tick = 0; ; tick++) {
    for (const [p, peer] of peers.entries()) {
      if (tick < peer.startTick) continue;
      const { rollback } = peer;
      if (rollback.currentFrame >= options.frames) rollback.synchronize();
      else if (peer.wait > 0) peer.wait--;
      else {
        rollback.addLocalInput(inputFor(p, rollback.currentFrame + rollback.inputDelay));
        rollback.advanceFrame();
        // GGPO-style: ask for a time-sync correction now and then, not every frame.
        if (options.timeSync && rollback.currentFrame % 60 === 0) {
          peer.wait = rollback.recommendedWait();
        }
      }
      peer.session.update();
    }
    options.onTick?.(tick);
    // Millisecond steps, so each message is handled when it arrives, not at the next tick.
    for (let ms = 0; ms < FRAME_MS; ms++) {
      time.advance(1);
      await settle();
    }
    if (peers.every((peer) => peer.rollback.confirmedFrame >= options.frames - 1)) {
      for (const peer of peers) peer.rollback.synchronize();
      return tick;
    }
    if (tick > 4 * options.frames) throw new Error(`mesh stuck at tick ${tick}`);
  }
}

describe('rollback session over the memory transport', () => {
  it('4 players, 100 ms RTT, 2 % loss: checksums agree at every confirmed frame over 10,000 frames', async () => {
    const frames = 10_000;
    const { time, peers } = createMesh({
      players: 4,
      link: { latencyMs: 50, lossRate: 0.02 },
      checksumInterval: 1,
    });
    await runMesh(time, peers, { frames, timeSync: true });
    const reference = peers[0]!.checksums;
    for (let frame = 1; frame < frames; frame++) {
      const value = reference.get(frame);
      expect(value).toBeDefined();
      for (const peer of peers) {
        if (peer.checksums.get(frame) !== value) {
          throw new Error(`checksums differ at frame ${frame}`);
        }
      }
    }
    for (const peer of peers) {
      expect(peer.desyncs).toEqual([]);
      expect(peer.errors).toEqual([]);
      expect(peer.rollback.stats.checksumsCompared).toBeGreaterThan(3 * (frames - 100));
      expect(peer.rollback.stats.rollbacks).toBeGreaterThan(500);
      expect(peer.rollback.stats.maxRollbackDepth).toBeLessThanOrEqual(8);
      expect(peer.game.state).toEqual(peers[0]!.game.state);
      for (const state of peer.session.peers) expect(state.rttMs).toBeGreaterThan(95);
      for (const state of peer.session.peers) expect(state.rttMs).toBeLessThan(105);
    }
    if (process.env.ROLLBACK_FIGURES) {
      for (const peer of peers) {
        console.log(
          JSON.stringify({
            rollback: peer.rollback.stats,
            session: peer.session.stats,
            rtt: peer.session.peers.map((state) => state.rttMs.toFixed(1)),
          }),
        );
      }
    }
  });

  it('stays in sync on a harsh link (jitter, 20 % loss, reordering), waiting when it must', async () => {
    const frames = 1500;
    const { time, peers } = createMesh({
      players: 3,
      link: { latencyMs: 70, jitterMs: 40, lossRate: 0.2, reorderRate: 0.05 },
      checksumInterval: 5,
    });
    await runMesh(time, peers, { frames, timeSync: true });
    for (const peer of peers) {
      expect(peer.desyncs).toEqual([]);
      expect(peer.errors).toEqual([]);
      expect(peer.rollback.stats.checksumsCompared).toBeGreaterThan(2 * (frames / 5 - 10));
      expect(peer.rollback.stats.maxRollbackDepth).toBeLessThanOrEqual(8);
      expect(peer.game.state).toEqual(peers[0]!.game.state);
    }
    expect(peers.some((peer) => peer.rollback.stats.stalls > 0)).toBe(true);
    if (process.env.ROLLBACK_FIGURES) {
      console.log(JSON.stringify(peers.map((peer) => peer.rollback.stats)));
    }
  });

  it('detects an injected nondeterminism within one checksum interval', async () => {
    const corruptFrame = 200;
    const { time, peers } = createMesh({
      players: 4,
      link: { latencyMs: 50, lossRate: 0.02 },
      checksumInterval: 30,
      corrupt: { player: 2, frame: corruptFrame },
    });
    await runMesh(time, peers, { frames: 400, timeSync: true });
    for (const [p, peer] of peers.entries()) {
      const first = peer.desyncs[0];
      expect(first).toBeDefined();
      expect(first!.kind).toBe('peer');
      expect(first!.frame).toBeGreaterThan(corruptFrame);
      expect(first!.frame).toBeLessThanOrEqual(corruptFrame + 30);
      const blamed = new Set(
        peer.desyncs
          .filter((d) => d.frame === first!.frame)
          .map((d) => (d.kind === 'peer' ? d.player : -1)),
      );
      // The corrupted peer disagrees with all three others; the others only with it.
      expect([...blamed].sort()).toEqual(p === 2 ? [0, 1, 3] : [2]);
      const desync = first as Extract<RollbackDesync, { kind: 'peer' }>;
      expect(desync.localChecksum).toBe(peer.checksums.get(first!.frame));
      expect(desync.remoteChecksum).toBe(peers[desync.player]!.checksums.get(first!.frame));
    }
    // Before the corruption everyone agreed.
    expect(peers[0]!.checksums.get(180)).toBe(peers[2]!.checksums.get(180));
  });

  it('time sync slows the peer that runs ahead until the two are level', async () => {
    const run = async (timeSync: boolean) => {
      const { time, peers } = createMesh({
        players: 2,
        link: { latencyMs: 40, jitterMs: 5 },
        checksumInterval: 30,
        startTicks: [0, 12],
      });
      const gaps: number[] = [];
      await runMesh(time, peers, {
        frames: 900,
        timeSync,
        onTick: (tick) => {
          if (tick > 300 && tick < 800) {
            gaps.push(peers[0]!.rollback.currentFrame - peers[1]!.rollback.currentFrame);
          }
        },
      });
      return {
        gap: Math.max(...gaps.map(Math.abs)),
        framesAhead: peers[0]!.rollback.framesAhead,
        recommendedWait: peers[0]!.rollback.recommendedWait(),
        resimulatedFrames: peers[0]!.rollback.stats.resimulatedFrames,
      };
    };
    const synced = await run(true);
    const unsynced = await run(false);
    if (process.env.ROLLBACK_FIGURES) console.log(JSON.stringify({ synced, unsynced }));
    // Without time sync the early peer stays ahead, as far as maxRollback lets it.
    expect(unsynced.gap).toBeGreaterThanOrEqual(4);
    expect(unsynced.framesAhead).toBeGreaterThan(2);
    expect(unsynced.recommendedWait).toBeGreaterThan(2);
    expect(synced.gap).toBeLessThanOrEqual(2);
    expect(Math.abs(synced.framesAhead)).toBeLessThan(1);
    expect(synced.recommendedWait).toBe(0);
  });
});

/** Builds an inputs message by hand, following the documented wire format. */
function inputsMessage(fields: {
  players?: number[];
  senderFrame?: number;
  advantage?: number;
  ackFrame?: number;
  sendTimeMs?: number;
  echoTimeMs?: number;
  echoHoldMs?: number;
  startFrame?: number;
  inputs?: number[][];
  extraBytes?: number;
}): Uint8Array {
  const players = fields.players ?? [1];
  const inputs = fields.inputs ?? [];
  const bytes = new Uint8Array(
    29 + players.length + inputs.length * players.length + (fields.extraBytes ?? 0),
  );
  const view = new DataView(bytes.buffer);
  bytes[0] = Opcode.Input;
  bytes[2] = 1;
  bytes[3] = players.length;
  view.setInt32(4, fields.senderFrame ?? 0, true);
  view.setInt16(8, fields.advantage ?? 0, true);
  view.setInt32(10, fields.ackFrame ?? -1, true);
  view.setUint32(14, fields.sendTimeMs ?? 0, true);
  view.setUint32(18, fields.echoTimeMs ?? 0, true);
  view.setUint16(22, fields.echoHoldMs ?? 0xffff, true);
  view.setInt32(24, fields.startFrame ?? 0, true);
  bytes[28] = inputs.length;
  players.forEach((player, i) => {
    bytes[29 + i] = player;
  });
  inputs.forEach((frame, k) => {
    frame.forEach((input, i) => {
      bytes[29 + players.length + k * players.length + i] = input;
    });
  });
  return bytes;
}

function checksumsMessage(entries: [number, number][], count = entries.length): Uint8Array {
  const bytes = new Uint8Array(4 + 8 * entries.length);
  const view = new DataView(bytes.buffer);
  bytes[0] = Opcode.Input;
  bytes[2] = 2;
  bytes[3] = count;
  entries.forEach(([frame, value], i) => {
    view.setInt32(4 + 8 * i, frame, true);
    view.setUint32(8 + 8 * i, value, true);
  });
  return bytes;
}

/** A two-player session on peer 0 and the raw far end of its connection. */
function rawPair(inputCodec: RollbackInputCodec<number> = codec) {
  const time = createManualTime(1000);
  const [near, far] = createMemoryConnectionPair();
  const game = createGame(2);
  const rollback = createRollback<Int32Array, number>({
    players: 2,
    localPlayers: [0],
    inputCodec,
    save: game.save,
    load: game.load,
    advance: game.advance,
    checksum: game.checksum,
    checksumInterval: 10,
  });
  const logger = createMemoryLogger();
  const metrics = createMemoryMetrics();
  const session = createRollbackSession({
    rollback,
    peers: [{ connection: near, players: [1] }],
    time,
    frameDurationMs: FRAME_MS,
    logger,
    metrics,
  });
  const errors: TickwireError[] = [];
  session.on('error', (error, peer) => {
    expect(peer).toBe(0);
    errors.push(error);
  });
  const received: Uint8Array[] = [];
  far.on('message', (data) => received.push(data));
  return { time, near, far, rollback, session, errors, logger, metrics, received };
}

describe('rollback session messages', () => {
  it('carry unacknowledged inputs, the ack, the frame and an RTT probe', async () => {
    const { time, far, rollback, session, received } = rawPair();
    rollback.addLocalInput(7);
    rollback.advanceFrame();
    session.update();
    await settle();
    expect(received).toHaveLength(1);
    const first = new DataView(received[0]!.buffer, received[0]!.byteOffset);
    expect([received[0]![0], received[0]![1], received[0]![2], received[0]![3]]).toEqual([
      0x14, 0, 1, 1,
    ]);
    expect(first.getInt32(4, true)).toBe(1); // sender frame
    expect(first.getInt32(10, true)).toBe(-1); // nothing of player 1 yet
    expect(first.getUint32(14, true)).toBe(1000); // send time
    expect(first.getUint16(22, true)).toBe(0xffff); // no echo yet
    expect(first.getInt32(24, true)).toBe(0);
    expect(received[0]![28]).toBe(3); // frames 0, 1 (neutral) and 2
    expect([...received[0]!.subarray(29)]).toEqual([0, 0, 0, 7]);

    // The peer acknowledges frame 1 and echoes the probe 30 ms later, held 10 ms.
    time.advance(30);
    far.send(
      inputsMessage({
        ackFrame: 1,
        sendTimeMs: 5000,
        echoTimeMs: 1000,
        echoHoldMs: 10,
        inputs: [[4], [4]],
      }),
      'unreliable',
    );
    await settle();
    expect(session.peers[0]!.ackedFrame).toBe(1);
    expect(session.peers[0]!.rttMs).toBe(20);
    expect(rollback.lastInputFrame(1)).toBe(1);
    expect(session.stats.inputsReceived).toBe(2);
    time.advance(4);
    session.update();
    await settle();
    const second = new DataView(received[1]!.buffer, received[1]!.byteOffset);
    expect(second.getInt32(10, true)).toBe(1); // acks player 1's frame 1
    expect(second.getUint32(18, true)).toBe(5000); // echo
    expect(second.getUint16(22, true)).toBe(4); // held 4 ms
    expect(second.getInt32(24, true)).toBe(2); // only the unacknowledged frame
    expect(received[1]![28]).toBe(1);
    // A redundant copy of frames already confirmed is ignored.
    far.send(inputsMessage({ inputs: [[4], [4], [5]] }), 'unreliable');
    await settle();
    expect(rollback.lastInputFrame(1)).toBe(2);
    expect(session.stats.inputsReceived).toBe(3);
  });

  it('send checksums of confirmed frames on the reliable channel', async () => {
    const { far, rollback, session, received } = rawPair();
    for (let frame = 0; frame < 14; frame++) {
      rollback.addLocalInput(1);
      rollback.addRemoteInput(1, frame, 2);
      rollback.advanceFrame();
    }
    session.update();
    await settle();
    const checksums = received.filter((message) => message[2] === 2);
    expect(checksums).toHaveLength(1);
    const view = new DataView(checksums[0]!.buffer, checksums[0]!.byteOffset);
    expect(checksums[0]![3]).toBe(1);
    expect(view.getInt32(4, true)).toBe(10);
    const desyncs: RollbackDesync[] = [];
    rollback.on('desync', (desync) => desyncs.push(desync));
    far.send(checksumsMessage([[10, view.getUint32(8, true)]]), 'reliable');
    far.send(checksumsMessage([[10, 1]]), 'reliable');
    await settle();
    expect(session.stats.checksumsReceived).toBe(2);
    expect(desyncs).toMatchObject([{ kind: 'peer', frame: 10, player: 1, remoteChecksum: 1 }]);
  });

  it('reject malformed and protocol-breaking messages, counted, without crashing', async () => {
    const { far, rollback, session, errors, logger, metrics } = rawPair();
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'DECODE_FAILED'],
      [new Uint8Array([0x14, 0]), 'DECODE_FAILED'],
      [new Uint8Array([0x10, 0, 1]), 'PROTOCOL_ERROR'],
      [new Uint8Array([0x14, 1, 1]), 'PROTOCOL_ERROR'],
      [new Uint8Array([0x14, 0, 9]), 'PROTOCOL_ERROR'],
      [new Uint8Array([0x14, 0, 1, 1, 0, 0]), 'DECODE_FAILED'],
      [inputsMessage({ inputs: [[1]], extraBytes: 1 }), 'DECODE_FAILED'],
      [inputsMessage({ players: [0] }), 'PROTOCOL_ERROR'],
      [inputsMessage({ players: [1, 0] }), 'PROTOCOL_ERROR'],
      [inputsMessage({ senderFrame: -1 }), 'PROTOCOL_ERROR'],
      [inputsMessage({ ackFrame: 50 }), 'PROTOCOL_ERROR'],
      [inputsMessage({ startFrame: 5, inputs: [[1]] }), 'PROTOCOL_ERROR'],
      [new Uint8Array([0x14, 0, 2]), 'DECODE_FAILED'],
      [checksumsMessage([[10, 1]], 2), 'DECODE_FAILED'],
      [checksumsMessage([[-10, 1]]), 'PROTOCOL_ERROR'],
    ];
    for (const [message] of cases) far.send(message, 'unreliable');
    await settle();
    expect(errors.map((error) => error.code)).toEqual(cases.map(([, code]) => code));
    expect(errors.every((error) => isTickwireError(error))).toBe(true);
    expect(errors[2]!.message).toMatch(/peer 0: opcode 0x10 is not Input/);
    expect(session.stats.badMessages).toBe(cases.length);
    expect(session.peers[0]!.badMessages).toBe(cases.length);
    expect(metrics.value('tickwire_rollback_bad_messages_total', { peer: 0 })).toBe(cases.length);
    // Logged at the 1st, 2nd, 4th and 8th rejection only.
    expect(logger.records.filter((record) => record.level === 'warn')).toHaveLength(4);
    // Still working.
    far.send(inputsMessage({ inputs: [[3]] }), 'unreliable');
    await settle();
    expect(rollback.lastInputFrame(1)).toBe(0);
  });

  it('reject an input the codec cannot decode', async () => {
    const strict: RollbackInputCodec<number> = {
      byteLength: 1,
      write: (input, target, offset) => {
        target[offset] = input;
      },
      read: (source, offset) => {
        if (source[offset]! > 31) throw new Error(`no such buttons: ${source[offset]}`);
        return source[offset]!;
      },
    };
    const { far, rollback, errors } = rawPair(strict);
    far.send(inputsMessage({ inputs: [[1], [200]] }), 'unreliable');
    await settle();
    expect(errors.map((error) => error.code)).toEqual(['DECODE_FAILED']);
    expect(errors[0]!.message).toMatch(/frame 1 does not decode: no such buttons: 200/);
    expect(rollback.lastInputFrame(1)).toBe(0);
  });

  it('survive any bytes: each message is either used or rejected with a typed error', async () => {
    const { far, session, errors } = rawPair();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.uint8Array({ maxLength: 64 }),
          fc
            .uint8Array({ minLength: 0, maxLength: 48 })
            .map((tail) => new Uint8Array([0x14, 0, 1, ...tail])),
          fc
            .uint8Array({ minLength: 0, maxLength: 24 })
            .map((tail) => new Uint8Array([0x14, 0, 2, ...tail])),
        ),
        async (bytes) => {
          const before = session.stats.messagesReceived;
          const bad = session.stats.badMessages;
          far.send(bytes, 'reliable');
          await settle();
          expect(session.stats.messagesReceived).toBe(before + 1);
          expect(session.stats.badMessages - bad).toBeLessThanOrEqual(1);
        },
      ),
      { numRuns: 300, seed: 42 },
    );
    expect(errors.every((error) => isTickwireError(error))).toBe(true);
    expect(errors.length).toBe(session.stats.badMessages);
  });
});

describe('createRollbackSession', () => {
  const make = (players = 3, local = [0]) => {
    const game = createGame(players);
    return createRollback<Int32Array, number>({
      players,
      localPlayers: local,
      inputCodec: codec,
      save: game.save,
      load: game.load,
      advance: game.advance,
    });
  };

  it('checks that every remote player has exactly one peer', () => {
    const [a] = createMemoryConnectionPair();
    const [b] = createMemoryConnectionPair();
    const rollback = make();
    const cases = [
      [{ connection: a, players: [1] }],
      [
        { connection: a, players: [1, 2] },
        { connection: b, players: [2] },
      ],
      [{ connection: a, players: [0, 1, 2] }],
      [{ connection: a, players: [1, 2, 3] }],
      [
        { connection: a, players: [] },
        { connection: b, players: [1, 2] },
      ],
    ];
    for (const peers of cases) {
      expect(() => createRollbackSession({ rollback, peers })).toThrow(/createRollbackSession/);
    }
    expect(() =>
      createRollbackSession({
        rollback,
        peers: [{ connection: a, players: [1, 2] }],
        frameDurationMs: 0,
      }),
    ).toThrow(/frameDurationMs/);
    expect(() =>
      createRollbackSession({
        rollback,
        peers: [{ connection: a, players: [1, 2] }],
        maxFramesPerMessage: 0,
      }),
    ).toThrow(/maxFramesPerMessage/);
  });

  it('refuses a message size over the connection limit', () => {
    const [a] = createMemoryConnectionPair({ maxMessageBytes: 40 });
    expect(() =>
      createRollbackSession({ rollback: make(2), peers: [{ connection: a, players: [1] }] }),
    ).toThrow(/maxMessageBytes/);
  });

  it('reports a disconnect, skips closed connections and stops on close()', async () => {
    const [a, b] = createMemoryConnectionPair();
    const rollback = make(2);
    const session = createRollbackSession({ rollback, peers: [{ connection: a, players: [1] }] });
    const disconnects: number[] = [];
    session.on('disconnect', (peer, info) => disconnects.push(peer, info.code));
    let received = 0;
    b.on('message', () => received++);
    session.update();
    await settle();
    expect(received).toBe(1);
    b.close(4004, 'kicked');
    await settle();
    expect(disconnects).toEqual([0, 4004]);
    expect(session.peers[0]!.closed).toBe(true);
    expect(() => session.update()).not.toThrow();
    session.close();
    session.close();
    session.update();
    expect(session.stats.messagesSent).toBe(1);
  });

  it('sends at most maxFramesPerMessage frames, oldest first', async () => {
    const [a, b] = createMemoryConnectionPair();
    const rollback = make(2);
    const session = createRollbackSession({
      rollback,
      peers: [{ connection: a, players: [1] }],
      maxFramesPerMessage: 4,
    });
    for (let frame = 0; frame < 6; frame++) {
      rollback.addLocalInput(frame + 1);
      rollback.advanceFrame();
    }
    const received: Uint8Array[] = [];
    b.on('message', (data) => received.push(data));
    session.update();
    await settle();
    expect(received[0]![28]).toBe(4);
    expect(new DataView(received[0]!.buffer, received[0]!.byteOffset).getInt32(24, true)).toBe(0);
    expect([...received[0]!.subarray(30)]).toEqual([0, 0, 1, 2]);
  });
});
