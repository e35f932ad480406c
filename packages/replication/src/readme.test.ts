import { t } from '@tickwire/serialization';
import { expect, it } from 'vitest';
import { createReplica, createReplicationServer, createWorld, defineEntityType } from './index.js';

// The README's example, with assertions instead of logging.
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
