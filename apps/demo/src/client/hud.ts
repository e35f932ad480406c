// The HTML layer over the canvas: connection status, errors, hp / score / players, the kill
// feed and the respawn countdown. Text is only written when it changes.
import { PLAYER, RESPAWN_MS } from '../shared/game.js';
import type { Arena, ArenaView } from './arena.js';
import type { NetStatus } from './net.js';

export interface Hud {
  status(status: NetStatus, error: string | null): void;
  /** Once per frame. */
  update(view: ArenaView | null, arena: Arena | null, now: number): void;
}

const byId = <T extends HTMLElement>(id: string): T => {
  const element = document.getElementById(id);
  if (element === null) throw new Error(`index.html has no #${id}`);
  return element as T;
};

function setText(element: HTMLElement, text: string): void {
  if (element.textContent !== text) element.textContent = text;
}

export function statusText(status: NetStatus): string {
  switch (status.state) {
    case 'connecting':
      return 'connecting…';
    case 'joining':
      return 'joining a room…';
    case 'connected':
      return 'connected';
    case 'reconnecting':
      return `reconnecting #${status.attempt} (in ${Math.round(status.delayMs)} ms)`;
    case 'closed':
      return `disconnected: ${status.reason}`;
  }
}

export function createHud(): Hud {
  const statusElement = byId('status');
  const errorElement = byId('error');
  const hpBar = byId('hp-bar');
  const hpText = byId('hp-text');
  const scoreElement = byId('score');
  const playersElement = byId('players');
  const feed = byId<HTMLUListElement>('killfeed');
  const respawn = byId('respawn');
  let feedKey = '';

  return {
    status(status, error) {
      setText(statusElement, statusText(status));
      statusElement.dataset.state = status.state;
      errorElement.hidden = error === null;
      setText(errorElement, error ?? '');
    },
    update(view, arena, now) {
      const me = view?.me ?? null;
      const hp = me?.hp ?? 0;
      hpBar.style.width = `${Math.max(0, Math.min(100, (hp / PLAYER.maxHp) * 100))}%`;
      setText(hpText, me === null ? '—' : `${hp}`);
      setText(scoreElement, me === null ? '—' : `${me.score}`);
      let players = me === null ? 0 : 1;
      if (view !== null) for (const id of view.others.entities.keys()) if (id !== me?.id) players++;
      // Only avatars within the area of interest are known to this client.
      setText(playersElement, `${players}`);

      const dead = me !== null && !me.alive && arena !== null && !Number.isNaN(arena.diedAt);
      respawn.hidden = !dead;
      if (dead) {
        // Counted from when the death was seen, so it errs late by the one-way delay.
        const left = Math.max(0, RESPAWN_MS - (now - arena.diedAt)) / 1000;
        setText(respawn, `respawn in ${left.toFixed(1)} s`);
      }

      const kills = arena?.effects.kills ?? [];
      const key = kills.map((k) => k.at).join(',');
      if (key !== feedKey) {
        feedKey = key;
        feed.replaceChildren(
          ...kills.map((kill) => {
            const item = document.createElement('li');
            if (kill.mine) item.className = 'mine';
            const killer = document.createElement('b');
            killer.textContent = kill.killer;
            const victim = document.createElement('b');
            victim.textContent = kill.victim;
            item.append(killer, ' ✕ ', victim);
            return item;
          }),
        );
      }
    },
  };
}
