import { createMemoryConnectionPair } from '@tickwire/core/memory';
import { t } from '@tickwire/serialization';
import { expect, it } from 'vitest';
import {
  connectReplica,
  createGridInterest,
  createReplica,
  createReplicationHost,
  createReplicationServer,
  createWorld,
  defineEntityType,
  ownedFields,
} from './index.js';

// The README's examples, with assertions instead of logging.
it('runs the README example', () => {
  // shared.ts — both sides list the same types in the same order
  const Player = defineEntityType('player', {
    x: t.quantized(0, 1024, 1 / 64),
    y: t.quantized(0, 1024, 1 / 64),
    angle: t.angle(16),
    hp: t.u8(),
  });

  // server
  const world = createWorld({ types: [Player] });
  const server = createReplicationServer({ world });
  server.addClient('alice');
  const hero = world.spawn(Player, { x: 10, y: 20, angle: 0, hp: 100 });

  // client
  const replica = createReplica({ types: [Player] });
  const log: string[] = [];
  replica.on('update', (entity, fields) => log.push(`${entity.id}: ${fields.join(', ')}`));

  // each tick: server → client on the unreliable channel, ack back
  const send = () => {
    server.update();
    const bytes = server.snapshotFor('alice');
    if (replica.apply(bytes) !== undefined) server.receiveAck('alice', replica.ack());
    return bytes.length;
  };
  expect(send()).toBe(15); // full state: header + one entity (56 bits of fields)
  hero.set('hp', 95);
  expect(send()).toBe(9); // delta against the acked baseline: hp only
  const copy = replica.get(hero.id);
  expect(copy?.is(Player) && copy.get('hp')).toBe(95);
  expect(log).toEqual([`${hero.id}: hp`]);
});

it('runs the README example over connections', async () => {
  const Ship = defineEntityType(
    'ship',
    { x: t.quantized(0, 1000, 0.01), y: t.quantized(0, 1000, 0.01), hp: t.u8() },
    { owned: ['x', 'y'] }, // the pilot moves its ship; the server checks each move
  );

  // server: who sees what, and a host that speaks core's frames over any Connection
  const world = createWorld({ types: [Ship] });
  const views = new Map<string, { x: number; y: number; radius: number }>();
  const server = createReplicationServer({
    world,
    interest: createGridInterest({
      cellSize: 200,
      position: (ship, out) => {
        out.x = ship.get('x') as number;
        out.y = ship.get('y') as number;
        return true;
      },
      view: (clientId) => views.get(String(clientId)),
    }),
    validateChange: (_client, ship, field, value) =>
      Math.abs((value as number) - (ship.get(field) as number)) <= 10, // no teleports
  });
  const host = createReplicationHost({ server, budget: 'auto' });

  // one client (a memory pair stands in for a WebSocket / UDP connection)
  const [serverSide, clientSide] = createMemoryConnectionPair();
  host.attach('ann', serverSide);
  views.set('ann', { x: 100, y: 100, radius: 300 });
  const mine = world.spawn(Ship, { x: 100, y: 100, hp: 100 }, { owner: 'ann' });
  const far = world.spawn(Ship, { x: 900, y: 900, hp: 100 });

  const replica = createReplica({ types: [Ship], ownership: ownedFields }); // the client side of owned fields
  const link = connectReplica(replica, clientSide);

  const tick = async () => {
    server.update(); // once per simulation tick
    host.sendSnapshots(); // a snapshot per client, acks come back by themselves
    link.sendChanges(); // the pilot's moves, if any
    await new Promise((resolve) => setImmediate(resolve));
  };
  await tick();
  expect(replica.get(far.id)).toBeUndefined(); // out of view
  const ship = replica.get(mine.id)!;
  expect(ship.owned).toBe(true);

  replica.set(ship, 'x', 105); // applied at once, sent by sendChanges
  await tick();
  expect(mine.get('x')).toBe(105);
  replica.set(ship, 'x', 500); // refused by validateChange: rolled back
  await tick();
  await tick();
  expect(ship.get('x')).toBe(105);
});
