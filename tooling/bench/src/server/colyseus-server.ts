// Entry of the Colyseus server process: installs the @colyseus/schema 3 resolution hook
// (see schema3-loader.mjs) before anything imports @colyseus/core.
import { register } from 'node:module';

register('./schema3-loader.mjs', import.meta.url);
await import('./colyseus-server-main.js');
