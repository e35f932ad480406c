import { createRandom, isTickwireError } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import {
  createRollback,
  createRollbackUintCodec,
  type Rollback,
  type RollbackDesync,
  type RollbackOptions,
} from './rollback.js';
import { createGame, type Game, inputFor, WORLD } from './rollback-test-game.js';

const codec = createRollbackUintCodec(1);

function rollbackFor(
  game: Game,
  options: Partial<RollbackOptions<Int32Array, number>> & {
    players: number;
    localPlayers: number[];
  },
): Rollback<number> {
  return createRollback<Int32Array, number>({
    inputCodec: codec,
    save: game.save,
    load: game.load,
    advance: game.advance,
    checksum: game.checksum,
    ...options,
  });
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    expect(isTickwireError(error)).toBe(true);
    expect((error as { code: string }).code).toBe(code);
    return;
  }
  throw new Error(`expected a TickwireError ${code}`);
}

/** Runs the game with every input known: the reference a networked run must reproduce. */
function referenceRun(players: number, inputs: number[][], frames: number): Int32Array {
  const game = createGame(players);
  const frameInputs: number[] = new Array(players).fill(0);
  for (let frame = 0; frame < frames; frame++) {
    for (let p = 0; p < players; p++) frameInputs[p] = inputs[p]![frame]!;
    game.advance(frameInputs, frame);
  }
  return game.state.slice();
}

describe('createRollbackUintCodec', () => {
  it('round-trips unsigned integers of 1, 2 and 4 bytes', () => {
    for (const [bytes, value] of [
      [1, 0xab],
      [2, 0xbeef],
      [4, 0xdeadbeef],
    ] as const) {
      const c = createRollbackUintCodec(bytes);
      const buffer = new Uint8Array(bytes + 3);
      c.write(value, buffer, 3);
      expect(c.byteLength).toBe(bytes);
      expect(c.read(buffer, 3)).toBe(value);
    }
  });

  it('rejects other sizes', () => {
    expectCode(() => createRollbackUintCodec(3 as 1), 'INVALID_ARGUMENT');
  });
});

describe('createRollback options', () => {
  const game = createGame(2);
  it.each([
    ['players 0', { players: 0, localPlayers: [0] }],
    ['players 256', { players: 256, localPlayers: [0] }],
    ['no local player', { players: 2, localPlayers: [] }],
    ['local out of range', { players: 2, localPlayers: [2] }],
    ['duplicate local', { players: 2, localPlayers: [0, 0] }],
    ['negative inputDelay', { players: 2, localPlayers: [0], inputDelay: -1 }],
    ['maxRollback 0', { players: 2, localPlayers: [0], maxRollback: 0 }],
    ['checksumInterval 0.5', { players: 2, localPlayers: [0], checksumInterval: 0.5 }],
  ])('rejects %s', (_name, options) => {
    expectCode(() => rollbackFor(game, options), 'INVALID_ARGUMENT');
  });

  it('rejects a missing codec and a sync test without checksum', () => {
    expectCode(
      () =>
        createRollback<Int32Array, number>({
          players: 1,
          localPlayers: [0],
          inputCodec: undefined as never,
          save: game.save,
          load: game.load,
          advance: game.advance,
        }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () =>
        createRollback<Int32Array, number>({
          players: 1,
          localPlayers: [0],
          inputCodec: codec,
          save: game.save,
          load: game.load,
          advance: game.advance,
          syncTest: true,
        }),
      'INVALID_ARGUMENT',
    );
  });
});

describe('local inputs', () => {
  it('apply inputDelay frames later; the frames before repeat the neutral input', () => {
    const seen: number[] = [];
    const rollback = createRollback<number, number>({
      players: 1,
      localPlayers: [0],
      inputDelay: 2,
      inputCodec: codec,
      neutralInput: 9,
      save: () => 0,
      load: () => {},
      advance: (inputs) => seen.push(inputs[0]!),
    });
    expect(rollback.addLocalInput(5)).toBe(true);
    expect(rollback.addLocalInput(6)).toBe(false);
    expect(rollback.lastInputFrame(0)).toBe(2);
    for (let i = 0; i < 3; i++) rollback.advanceFrame();
    expect(seen).toEqual([9, 9, 5]);
    // A frame without addLocalInput repeats the last input.
    rollback.advanceFrame();
    rollback.advanceFrame();
    expect(seen).toEqual([9, 9, 5, 5, 5]);
    expect(rollback.addLocalInput(7)).toBe(true);
    expect(rollback.lastInputFrame(0)).toBe(7);
    const bytes = new Uint8Array(1);
    expect(rollback.readInputBytes(0, 2, bytes, 0)).toBe(true);
    expect(bytes[0]).toBe(5);
    expect(rollback.readInputBytes(0, 8, bytes, 0)).toBe(false);
    expect(rollback.readInputBytes(0, -1, bytes, 0)).toBe(false);
    expect(rollback.confirmedFrame).toBe(7);
  });

  it('rejects a player that is not local', () => {
    const rollback = rollbackFor(createGame(2), { players: 2, localPlayers: [0] });
    expectCode(() => rollback.addLocalInput(1, 1), 'INVALID_ARGUMENT');
    expectCode(() => rollback.addLocalInput(1, 5), 'INVALID_ARGUMENT');
  });
});

describe('remote inputs', () => {
  it('must arrive in order and within the window', () => {
    const rollback = rollbackFor(createGame(2), { players: 2, localPlayers: [0] });
    expect(rollback.addRemoteInput(1, 0, 3)).toBe(true);
    expect(rollback.addRemoteInput(1, 0, 3)).toBe(false);
    expectCode(() => rollback.addRemoteInput(1, 2, 3), 'INVALID_ARGUMENT');
    expectCode(() => rollback.addRemoteInput(0, 1, 3), 'INVALID_ARGUMENT');
    expectCode(() => rollback.addRemoteInput(1, 1.5, 3), 'INVALID_ARGUMENT');
    expectCode(() => rollback.addRemoteInput(2, 1, 3), 'INVALID_ARGUMENT');
    for (let frame = 1; frame <= 64; frame++) rollback.addRemoteInput(1, frame, 0);
    expectCode(() => rollback.addRemoteInput(1, 65, 0), 'LIMIT_EXCEEDED');
  });

  it('a wrong prediction rolls back to its frame and resimulates to the current frame', () => {
    const game = createGame(2);
    const rollback = rollbackFor(game, { players: 2, localPlayers: [0], inputDelay: 0 });
    const rollbacks: [number, number][] = [];
    rollback.on('rollback', (from, frames) => rollbacks.push([from, frames]));
    for (let frame = 0; frame < 6; frame++) {
      rollback.addLocalInput(2);
      expect(rollback.advanceFrame()).toBe(true);
    }
    // Frames 0–2 as predicted (neutral), frame 3 not.
    for (let frame = 0; frame < 3; frame++) rollback.addRemoteInput(1, frame, 0);
    rollback.addRemoteInput(1, 3, 8);
    expect(rollback.stats.mispredictions).toBe(1);
    rollback.synchronize();
    expect(rollbacks).toEqual([[3, 3]]);
    const inputs = [
      [2, 2, 2, 2, 2, 2],
      [0, 0, 0, 8, 8, 8],
    ];
    expect(game.state).toEqual(referenceRun(2, inputs, 6));
    expect(rollback.currentFrame).toBe(6);
    expect(rollback.confirmedFrame).toBe(3);
  });

  it('4 peers exchanging inputs with random delays end in the reference state', () => {
    const players = 4;
    const frames = 600;
    const random = createRandom(7);
    const peers = Array.from({ length: players }, (_, p) => {
      const game = createGame(players);
      return { game, rollback: rollbackFor(game, { players, localPlayers: [p] }) };
    });
    const inputs: number[][] = Array.from({ length: players }, () => []);
    // In-flight inputs per (sender, receiver), delivered in order after a random delay.
    const wires = new Map<string, { dueTick: number; frame: number; input: number }[]>();
    const sent = new Map<string, number>();
    for (let tick = 0; ; tick++) {
      let done = true;
      for (const [p, peer] of peers.entries()) {
        const { rollback } = peer;
        const target = rollback.currentFrame + rollback.inputDelay;
        if (rollback.currentFrame < frames && rollback.addLocalInput(inputFor(p, target), p)) {
          // The first inputDelay frames hold the neutral input (0).
          for (let f = inputs[p]!.length; f < target; f++) inputs[p]![f] = 0;
          inputs[p]![target] = inputFor(p, target);
          for (let q = 0; q < players; q++) {
            if (q === p) continue;
            const key = `${p}>${q}`;
            const wire = wires.get(key) ?? [];
            const dueTick = Math.max(wire.at(-1)?.dueTick ?? 0, tick + random.int(7));
            for (let f = sent.get(key) ?? 0; f <= target; f++) {
              wire.push({ dueTick, frame: f, input: inputs[p]![f]! });
            }
            sent.set(key, target + 1);
            wires.set(key, wire);
          }
        }
        if (rollback.currentFrame < frames) {
          rollback.advanceFrame();
          done = false;
        }
      }
      for (const [key, wire] of wires) {
        const [from, to] = key.split('>').map(Number) as [number, number];
        while (wire.length > 0 && wire[0]!.dueTick <= tick) {
          const item = wire.shift()!;
          peers[to]!.rollback.addRemoteInput(from, item.frame, item.input);
        }
      }
      if (done && [...wires.values()].every((wire) => wire.length === 0)) break;
      expect(tick).toBeLessThan(10 * frames);
    }
    for (const peer of peers) peer.rollback.synchronize();
    const expected = referenceRun(players, inputs, frames);
    for (const peer of peers) {
      expect(peer.rollback.currentFrame).toBe(frames);
      expect(peer.game.state).toEqual(expected);
      expect(peer.rollback.stats.rollbacks).toBeGreaterThan(10);
      expect(peer.rollback.stats.maxRollbackDepth).toBeLessThanOrEqual(8);
    }
  });
});

describe('maxRollback', () => {
  it('stalls at maxRollback frames past the last confirmed frame, never beyond', () => {
    const game = createGame(2);
    const rollback = rollbackFor(game, {
      players: 2,
      localPlayers: [0],
      inputDelay: 0,
      maxRollback: 8,
    });
    for (let frame = 0; frame < 8; frame++) {
      rollback.addLocalInput(1);
      expect(rollback.advanceFrame()).toBe(true);
    }
    expect(rollback.waitingForInputs).toBe(true);
    for (let i = 0; i < 50; i++) expect(rollback.advanceFrame()).toBe(false);
    expect(rollback.currentFrame).toBe(8);
    expect(rollback.stats.stalls).toBe(50);
    rollback.addRemoteInput(1, 0, 0);
    expect(rollback.waitingForInputs).toBe(false);
    rollback.addLocalInput(1);
    expect(rollback.advanceFrame()).toBe(true);
    expect(rollback.advanceFrame()).toBe(false);
    expect(rollback.currentFrame).toBe(9);
    // The deepest possible correction: frame 1 is wrong, 8 frames resimulated.
    rollback.addRemoteInput(1, 1, 4);
    const depths: number[] = [];
    rollback.on('rollback', (_from, frames) => depths.push(frames));
    expect(rollback.advanceFrame()).toBe(true);
    expect(depths).toEqual([8]);
    expect(rollback.stats.maxRollbackDepth).toBe(8);
  });
});

describe('predictInput', () => {
  it('is asked for unconfirmed remote inputs; a good predictor avoids rollbacks', () => {
    const pattern = (frame: number) => frame % 4;
    const run = (predict: boolean) => {
      const calls: [number, number, number][] = [];
      const game = createGame(2);
      const rollback = rollbackFor(game, {
        players: 2,
        localPlayers: [0],
        ...(predict
          ? {
              predictInput: (last: number, player: number, frame: number) => {
                calls.push([last, player, frame]);
                return pattern(frame);
              },
            }
          : {}),
      });
      for (let frame = 0; frame < 100; frame++) {
        rollback.addLocalInput(0);
        rollback.advanceFrame();
        if (frame >= 3) rollback.addRemoteInput(1, frame - 3, pattern(frame - 3));
      }
      return { stats: rollback.stats, calls };
    };
    const predicted = run(true);
    expect(predicted.calls[0]).toEqual([0, 1, 0]);
    expect(
      predicted.calls.some(([last, , frame]) => frame > 4 && last === pattern(frame - 4)),
    ).toBe(true);
    expect(predicted.stats.mispredictions).toBe(0);
    expect(predicted.stats.rollbacks).toBe(0);
    const repeated = run(false);
    expect(repeated.stats.mispredictions).toBeGreaterThan(50);
    expect(repeated.stats.rollbacks).toBeGreaterThan(50);
  });
});

describe('time sync', () => {
  const advance = (rollback: Rollback<number>, frames: number, behind: number) => {
    for (let i = 0; i < frames; i++) {
      // The remote runs `behind` frames behind this peer and says so.
      rollback.reportRemoteFrame(1, rollback.currentFrame - behind, behind);
      for (let f = rollback.lastInputFrame(1) + 1; f <= rollback.currentFrame; f++) {
        rollback.addRemoteInput(1, f, 0);
      }
      rollback.addLocalInput(0);
      rollback.advanceFrame();
    }
  };

  it('recommends waiting half the difference of both views when ahead', () => {
    const rollback = rollbackFor(createGame(2), { players: 2, localPlayers: [0] });
    expect(rollback.framesAhead).toBe(0);
    expect(rollback.recommendedWait()).toBe(0);
    expect(rollback.frameAdvantage(1)).toBe(0);
    advance(rollback, 60, 6);
    rollback.reportRemoteFrame(1, rollback.currentFrame - 6, 6);
    expect(rollback.frameAdvantage(1)).toBe(-6);
    expect(rollback.framesAhead).toBeCloseTo(6, 5);
    expect(rollback.recommendedWait()).toBe(6);
  });

  it('recommends nothing when even or behind', () => {
    const even = rollbackFor(createGame(2), { players: 2, localPlayers: [0] });
    advance(even, 50, 0);
    expect(even.recommendedWait()).toBe(0);
    const behind = rollbackFor(createGame(2), { players: 2, localPlayers: [0] });
    advance(behind, 50, -4);
    expect(behind.framesAhead).toBeCloseTo(-4, 5);
    expect(behind.recommendedWait()).toBe(0);
  });

  it('rejects bad reports', () => {
    const rollback = rollbackFor(createGame(2), { players: 2, localPlayers: [0] });
    expectCode(() => rollback.reportRemoteFrame(1, Number.NaN, 0), 'INVALID_ARGUMENT');
    expectCode(() => rollback.reportRemoteFrame(0, 1, 0), 'INVALID_ARGUMENT');
  });
});

describe('checksums', () => {
  /** Two peers in lockstep (inputs delivered at once), peer B optionally corrupted at a frame. */
  function pair(interval: number, corruptAt = -1) {
    const games = [createGame(2), createGame(2)];
    const make = (p: number) =>
      createRollback<Int32Array, number>({
        players: 2,
        localPlayers: [p],
        inputCodec: codec,
        save: games[p]!.save,
        load: games[p]!.load,
        advance: (inputs, frame) => {
          games[p]!.advance(inputs, frame);
          if (p === 1 && frame === corruptAt) games[p]!.state[1]! += 1;
        },
        checksum: games[p]!.checksum,
        checksumInterval: interval,
      });
    const peers = [make(0), make(1)];
    const checksums: Map<number, number>[] = [new Map(), new Map()];
    const desyncs: RollbackDesync[][] = [[], []];
    peers.forEach((peer, p) => {
      peer.on('checksum', (frame, value) => checksums[p]!.set(frame, value));
      peer.on('desync', (desync) => desyncs[p]!.push(desync));
    });
    const step = () => {
      for (const [p, peer] of peers.entries())
        peer.addLocalInput(inputFor(p, peer.currentFrame), p);
      peers.forEach((peer, p) => {
        const other = peers[1 - p]!;
        const bytes = new Uint8Array(1);
        for (let f = other.lastInputFrame(p) + 1; f <= peer.lastInputFrame(p); f++) {
          peer.readInputBytes(p, f, bytes, 0);
          other.addRemoteInput(p, f, bytes[0]!);
        }
      });
      for (const peer of peers) peer.advanceFrame();
    };
    return { peers, checksums, desyncs, step };
  }

  it('are computed at every checksumInterval-th confirmed frame and agree between peers', () => {
    const { peers, checksums, desyncs, step } = pair(10);
    for (let i = 0; i < 100; i++) step();
    expect([...checksums[0]!.keys()]).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90]);
    expect(checksums[1]).toEqual(checksums[0]);
    for (const [frame, value] of checksums[0]!) peers[1]!.addRemoteChecksum(0, frame, value);
    expect(peers[1]!.stats.checksumsCompared).toBe(9);
    expect(desyncs[1]).toEqual([]);
  });

  it('report a desync with the frame and both checksums, whichever arrives first', () => {
    const { peers, checksums, desyncs, step } = pair(10, 33);
    for (let i = 0; i < 45; i++) step();
    expect(checksums[0]!.get(30)).toBe(checksums[1]!.get(30));
    expect(checksums[0]!.get(40)).not.toBe(checksums[1]!.get(40));
    peers[0]!.addRemoteChecksum(1, 30, checksums[1]!.get(30)!);
    peers[0]!.addRemoteChecksum(1, 40, checksums[1]!.get(40)!);
    expect(desyncs[0]).toEqual([
      {
        kind: 'peer',
        frame: 40,
        player: 1,
        localChecksum: checksums[0]!.get(40),
        remoteChecksum: checksums[1]!.get(40),
      },
    ]);
    // A remote checksum ahead of this peer waits for its own.
    peers[0]!.addRemoteChecksum(1, 60, 123);
    expect(desyncs[0]).toHaveLength(1);
    for (let i = 0; i < 20; i++) step();
    expect(desyncs[0]!.at(-1)).toEqual({
      kind: 'peer',
      frame: 60,
      player: 1,
      localChecksum: checksums[0]!.get(60),
      remoteChecksum: 123,
    });
    expect(peers[0]!.stats.desyncs).toBe(2);
  });

  it('count checksums that cannot be compared', () => {
    const { peers, step } = pair(10);
    for (let i = 0; i < 25; i++) step();
    peers[0]!.addRemoteChecksum(1, 5, 1); // not a checksum frame
    peers[0]!.addRemoteChecksum(1, 25, 1); // not a checksum frame
    peers[0]!.addRemoteChecksum(1, 55, 1); // not a checksum frame
    expect(peers[0]!.stats.checksumsUnmatched).toBe(3);
    expectCode(() => peers[0]!.addRemoteChecksum(1, 10, Number.NaN), 'INVALID_ARGUMENT');
    expectCode(() => peers[0]!.addRemoteChecksum(1, -10, 1), 'INVALID_ARGUMENT');
    expect(peers[0]!.stats.checksums).toBeGreaterThan(0);
  });

  it('refuse frames too far ahead, so a flood of them cannot stop desync detection', () => {
    const { peers, checksums, desyncs, step } = pair(10, 33);
    for (let i = 0; i < 38; i++) step();
    // Peer 1 runs three frames ahead: it checksums frame 40 before peer 0 has simulated it.
    for (let i = 0; i < 3; i++) {
      peers[1]!.addLocalInput(inputFor(1, peers[1]!.currentFrame), 1);
      peers[1]!.advanceFrame();
    }
    expect(peers[0]!.currentFrame).toBe(38);
    expect(checksums[1]!.has(40)).toBe(true);
    // Far-future frames (more than 64 frames ahead here) could never be compared: refused,
    // leaving nothing behind.
    for (let i = 0; i < 4096; i++) {
      expectCode(() => peers[0]!.addRemoteChecksum(1, 1_000 + 10 * i, 1), 'LIMIT_EXCEEDED');
    }
    expectCode(() => peers[0]!.addRemoteChecksum(1, 110, 1), 'LIMIT_EXCEEDED');
    expect(peers[0]!.stats).toMatchObject({ checksumsCompared: 0, checksumsUnmatched: 0 });
    // The genuine one, ahead of peer 0 but in the window, waits for peer 0's own.
    peers[0]!.addRemoteChecksum(1, 40, checksums[1]!.get(40)!);
    for (let i = 0; i < 5; i++) step();
    expect(desyncs[0]).toEqual([
      {
        kind: 'peer',
        frame: 40,
        player: 1,
        localChecksum: checksums[0]!.get(40),
        remoteChecksum: checksums[1]!.get(40),
      },
    ]);
  });
});

describe('sync test', () => {
  it('passes a deterministic simulation', () => {
    const game = createGame(2);
    const desyncs: RollbackDesync[] = [];
    const rollback = rollbackFor(game, {
      players: 2,
      localPlayers: [0, 1],
      syncTest: true,
      syncTestFrames: 6,
    });
    rollback.on('desync', (desync) => desyncs.push(desync));
    for (let frame = 0; frame < 300; frame++) {
      rollback.addLocalInput(inputFor(0, frame), 0);
      rollback.addLocalInput(inputFor(1, frame), 1);
      expect(rollback.advanceFrame()).toBe(true);
    }
    expect(desyncs).toEqual([]);
    expect(rollback.stats.resimulatedFrames).toBe(6 * 300 - 15);
    const inputs = [0, 1].map((p) => [
      0,
      0,
      ...Array.from({ length: 298 }, (_, f) => inputFor(p, f)),
    ]);
    expect(game.state).toEqual(referenceRun(2, inputs, 300));
  });

  it('catches a simulation that reads outside its state', () => {
    const game = createGame(2);
    let outside = 0;
    const desyncs: RollbackDesync[] = [];
    const rollback = createRollback<Int32Array, number>({
      players: 2,
      localPlayers: [0, 1],
      inputCodec: codec,
      save: game.save,
      load: game.load,
      advance: (inputs, frame) => {
        game.advance(inputs, frame);
        // Reads a counter kept outside the state: a resimulation sees another value.
        outside++;
        if (frame >= 20) game.state[1] = (game.state[1]! + outside) % WORLD;
      },
      checksum: game.checksum,
      syncTest: true,
    });
    rollback.on('desync', (desync) => desyncs.push(desync));
    for (let frame = 0; frame < 30; frame++) {
      rollback.addLocalInput(1, 0);
      rollback.addLocalInput(2, 1);
      rollback.advanceFrame();
    }
    expect(desyncs.length).toBeGreaterThan(0);
    expect(desyncs[0]).toMatchObject({ kind: 'sync-test', frame: 21 });
    const first = desyncs[0] as Extract<RollbackDesync, { kind: 'sync-test' }>;
    expect(first.checksum).not.toBe(first.resimulatedChecksum);
  });
});

describe('snapshots', () => {
  it('are handed to discard when they leave the ring', () => {
    const game = createGame(2);
    const live = new Set<Int32Array>();
    let discarded = 0;
    const rollback = createRollback<Int32Array, number>({
      players: 2,
      localPlayers: [0],
      inputCodec: codec,
      save: () => {
        const snapshot = game.save();
        live.add(snapshot);
        return snapshot;
      },
      load: game.load,
      discard: (snapshot) => {
        expect(live.delete(snapshot)).toBe(true);
        discarded++;
      },
      advance: game.advance,
    });
    for (let frame = 0; frame < 200; frame++) {
      rollback.addLocalInput(0);
      rollback.advanceFrame();
      rollback.addRemoteInput(1, frame, frame % 3);
    }
    // The ring keeps at most 16 snapshots (maxRollback 8 + 2, rounded to a power of two).
    expect(live.size).toBeLessThanOrEqual(16);
    expect(discarded).toBeGreaterThan(150);
  });
});
