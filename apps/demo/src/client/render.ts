// Canvas 2D drawing of the arena, in world units through a camera that follows your avatar.
// The backing store is sized in device pixels (sharp on high-DPI screens); everything else is
// in CSS pixels.
import { OBSTACLES, PLAYER, type Position, VIEW_RADIUS, WORLD } from '../shared/game.js';
import type { ArenaView } from './arena.js';
import { type Effects, HIT_FLASH_MS, MUZZLE_MS, TRACER_MS } from './effects.js';

const COLOURS = {
  outside: '#0b0e13',
  floor: '#151a22',
  grid: '#1c2330',
  border: '#3a4658',
  wall: '#2c3646',
  wallEdge: '#46536a',
  me: '#4fd1ff',
  human: '#ffb347',
  bot: '#b39ddb',
  ownTracer: '#fff4a8',
  tracer: '#ff8a65',
  hit: '#ffffff',
  hpBack: 'rgba(0, 0, 0, 0.55)',
  hpGood: '#6ee07a',
  hpLow: '#ff5d5d',
  text: '#dfe6f0',
} as const;

const GRID = 100;

export interface Renderer {
  /** Draws a frame (just the map while not in a room); `now` is performance.now(). */
  draw(view: ArenaView | null, effects: Effects, now: number): void;
  /** Where a world point is on screen now (CSS pixels from the canvas' top left). */
  toScreen(point: Position): Position;
  dispose(): void;
}

export function createRenderer(canvas: HTMLCanvasElement): Renderer {
  const ctx = canvas.getContext('2d', { alpha: false });
  if (ctx === null) throw new Error('this browser has no 2D canvas');
  let width = 0;
  let height = 0;
  let ratio = 1;
  let camera: Position = { x: WORLD.width / 2, y: WORLD.height / 2 };

  const resize = () => {
    ratio = window.devicePixelRatio || 1;
    width = canvas.clientWidth;
    height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
  };
  resize();
  window.addEventListener('resize', resize);
  // Moving the window to a screen of another pixel ratio fires no resize.
  let ratioQuery = matchMedia(`(resolution: ${ratio}dppx)`);
  const onRatio = () => {
    resize();
    ratioQuery.removeEventListener('change', onRatio);
    ratioQuery = matchMedia(`(resolution: ${ratio}dppx)`);
    ratioQuery.addEventListener('change', onRatio);
  };
  ratioQuery.addEventListener('change', onRatio);

  const drawFloor = () => {
    ctx.fillStyle = COLOURS.floor;
    ctx.fillRect(0, 0, WORLD.width, WORLD.height);
    // Only the grid lines on screen.
    const left = Math.max(0, Math.floor((camera.x - width / 2) / GRID) * GRID);
    const right = Math.min(WORLD.width, camera.x + width / 2);
    const top = Math.max(0, Math.floor((camera.y - height / 2) / GRID) * GRID);
    const bottom = Math.min(WORLD.height, camera.y + height / 2);
    ctx.strokeStyle = COLOURS.grid;
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let x = left; x <= right; x += GRID) {
      ctx.moveTo(x, top);
      ctx.lineTo(x, bottom);
    }
    for (let y = top; y <= bottom; y += GRID) {
      ctx.moveTo(left, y);
      ctx.lineTo(right, y);
    }
    ctx.stroke();
    ctx.strokeStyle = COLOURS.border;
    ctx.lineWidth = 4;
    ctx.strokeRect(0, 0, WORLD.width, WORLD.height);
  };

  const drawWalls = () => {
    ctx.fillStyle = COLOURS.wall;
    ctx.strokeStyle = COLOURS.wallEdge;
    ctx.lineWidth = 2;
    for (const wall of OBSTACLES) {
      ctx.fillRect(wall.x, wall.y, wall.w, wall.h);
      ctx.strokeRect(wall.x + 1, wall.y + 1, wall.w - 2, wall.h - 2);
    }
  };

  const drawTracers = (effects: Effects, now: number) => {
    ctx.lineCap = 'round';
    for (const tracer of effects.tracers) {
      const fade = 1 - (now - tracer.at) / TRACER_MS;
      if (fade <= 0) continue;
      ctx.globalAlpha = fade;
      ctx.strokeStyle = tracer.own ? COLOURS.ownTracer : COLOURS.tracer;
      ctx.lineWidth = tracer.own ? 2.5 : 2;
      ctx.beginPath();
      ctx.moveTo(tracer.fromX, tracer.fromY);
      ctx.lineTo(tracer.toX, tracer.toY);
      ctx.stroke();
    }
    ctx.globalAlpha = 1;
  };

  const drawAvatar = (
    avatar: { x: number; y: number; angle: number; hp: number; alive: boolean; name: string },
    colour: string,
    hitAt: number | undefined,
    now: number,
  ) => {
    const { x, y } = avatar;
    ctx.globalAlpha = avatar.alive ? 1 : 0.25;
    // Aim line.
    ctx.strokeStyle = colour;
    ctx.lineWidth = 3;
    ctx.beginPath();
    ctx.moveTo(
      x + Math.cos(avatar.angle) * PLAYER.radius * 0.6,
      y + Math.sin(avatar.angle) * PLAYER.radius * 0.6,
    );
    ctx.lineTo(
      x + Math.cos(avatar.angle) * PLAYER.radius * 1.9,
      y + Math.sin(avatar.angle) * PLAYER.radius * 1.9,
    );
    ctx.stroke();
    // Body.
    ctx.fillStyle = colour;
    ctx.beginPath();
    ctx.arc(x, y, PLAYER.radius, 0, Math.PI * 2);
    ctx.fill();
    if (hitAt !== undefined && now - hitAt < HIT_FLASH_MS) {
      ctx.globalAlpha = (1 - (now - hitAt) / HIT_FLASH_MS) * (avatar.alive ? 1 : 0.25);
      ctx.fillStyle = COLOURS.hit;
      ctx.fill();
      ctx.globalAlpha = avatar.alive ? 1 : 0.25;
    }
    // Name and health bar.
    ctx.fillStyle = COLOURS.text;
    ctx.font = '12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    ctx.fillText(avatar.name, x, y - PLAYER.radius - 9);
    const barWidth = 36;
    const share = Math.max(0, Math.min(1, avatar.hp / PLAYER.maxHp));
    ctx.fillStyle = COLOURS.hpBack;
    ctx.fillRect(x - barWidth / 2, y - PLAYER.radius - 7, barWidth, 4);
    ctx.fillStyle = share > 0.35 ? COLOURS.hpGood : COLOURS.hpLow;
    ctx.fillRect(x - barWidth / 2, y - PLAYER.radius - 7, barWidth * share, 4);
    ctx.globalAlpha = 1;
  };

  const drawMuzzle = (me: NonNullable<ArenaView['me']>, effects: Effects, now: number) => {
    const age = now - effects.lastMuzzleAt;
    if (!(age < MUZZLE_MS)) return;
    const tipX = me.x + Math.cos(me.angle) * PLAYER.radius * 2.1;
    const tipY = me.y + Math.sin(me.angle) * PLAYER.radius * 2.1;
    ctx.globalAlpha = 1 - age / MUZZLE_MS;
    ctx.fillStyle = COLOURS.ownTracer;
    ctx.beginPath();
    ctx.arc(tipX, tipY, 7, 0, Math.PI * 2);
    ctx.fill();
    ctx.globalAlpha = 1;
  };

  const drawHurt = (effects: Effects, now: number) => {
    const age = now - effects.lastHurtAt;
    if (!(age < 250)) return;
    const gradient = ctx.createRadialGradient(
      width / 2,
      height / 2,
      Math.min(width, height) * 0.3,
      width / 2,
      height / 2,
      Math.max(width, height) * 0.7,
    );
    gradient.addColorStop(0, 'rgba(255, 40, 40, 0)');
    gradient.addColorStop(1, `rgba(255, 40, 40, ${0.45 * (1 - age / 250)})`);
    ctx.fillStyle = gradient;
    ctx.fillRect(0, 0, width, height);
  };

  return {
    draw(view, effects, now) {
      const me = view?.me ?? null;
      if (me !== null) camera = { x: me.x, y: me.y };
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      ctx.fillStyle = COLOURS.outside;
      ctx.fillRect(0, 0, width, height);
      ctx.translate(Math.round(width / 2 - camera.x), Math.round(height / 2 - camera.y));
      drawFloor();
      drawWalls();
      if (me !== null) {
        // The area of interest: the server sends nothing about avatars beyond it.
        ctx.strokeStyle = 'rgba(79, 209, 255, 0.12)';
        ctx.lineWidth = 2;
        ctx.setLineDash([12, 12]);
        ctx.beginPath();
        ctx.arc(me.x, me.y, VIEW_RADIUS, 0, Math.PI * 2);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      drawTracers(effects, now);
      // The dead below the living.
      for (const pass of [false, true]) {
        for (const [id, avatar] of view?.others.entities ?? []) {
          if (id === me?.id || avatar.alive !== pass) continue;
          drawAvatar(avatar, avatar.bot ? COLOURS.bot : COLOURS.human, effects.hits.get(id), now);
        }
      }
      if (me !== null) {
        drawAvatar(me, COLOURS.me, effects.hits.get(me.id), now);
        drawMuzzle(me, effects, now);
      }
      ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
      drawHurt(effects, now);
    },
    toScreen(point) {
      return {
        x: Math.round(width / 2 - camera.x) + point.x,
        y: Math.round(height / 2 - camera.y) + point.y,
      };
    },
    dispose() {
      window.removeEventListener('resize', resize);
      ratioQuery.removeEventListener('change', onRatio);
    },
  };
}
