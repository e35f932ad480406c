import { describe, expect, it } from 'vitest';
import { silentLogger } from '../logger.js';
import { createMemoryLogger } from './logger.js';

describe('loggers', () => {
  it('silent logger accepts pino call shapes and its child is silent', () => {
    silentLogger.info('hello');
    silentLogger.error({ err: new Error('x') }, 'failed');
    expect(silentLogger.child({ room: 'r1' })).toBe(silentLogger);
  });

  it('memory logger records level, message and merged fields of children', () => {
    const logger = createMemoryLogger();
    logger.info('started');
    const room = logger.child({ room: 'r1' });
    room.warn({ player: 'p7' }, 'slow client');
    room.child({ tick: 3 }).debug({ bytes: 90 });
    for (const level of ['trace', 'error', 'fatal'] as const) logger[level](level);
    expect(logger.records[0]).toEqual({ level: 'info', message: 'started', fields: {} });
    expect(logger.records[1]).toEqual({
      level: 'warn',
      message: 'slow client',
      fields: { room: 'r1', player: 'p7' },
    });
    expect(logger.records[2]).toEqual({
      level: 'debug',
      message: '',
      fields: { room: 'r1', tick: 3, bytes: 90 },
    });
    expect(logger.records.map((r) => r.level).slice(3)).toEqual(['trace', 'error', 'fatal']);
  });

  it('keeps only the newest maxRecords lines', () => {
    const logger = createMemoryLogger(3);
    for (let i = 0; i < 5; i++) logger.info(`line ${i}`);
    expect(logger.records.map((r) => r.message)).toEqual(['line 2', 'line 3', 'line 4']);
  });
});
