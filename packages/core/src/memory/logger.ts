import type { LogFn, Logger } from '../logger.js';

/** A log level name. */
export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';

/** One line captured by {@link createMemoryLogger}. */
export interface LogRecord {
  level: LogLevel;
  message: string;
  fields: Record<string, unknown>;
}

/** A logger that keeps its lines in memory, for tests that assert what was logged. */
export interface MemoryLogger extends Logger {
  /** Every line logged through this logger and its children, oldest first. */
  readonly records: LogRecord[];
}

/** Creates a {@link MemoryLogger}; keeps at most `maxRecords` lines (oldest dropped). */
export function createMemoryLogger(maxRecords = 10_000): MemoryLogger {
  const records: LogRecord[] = [];
  const make = (bindings: Record<string, unknown>): MemoryLogger => {
    const log =
      (level: LogLevel): LogFn =>
      (first: string | object, second?: unknown) => {
        const fields: Record<string, unknown> = { ...bindings };
        let message: string;
        if (typeof first === 'string') message = first;
        else {
          Object.assign(fields, first);
          message = typeof second === 'string' ? second : '';
        }
        records.push({ level, message, fields });
        if (records.length > maxRecords) records.shift();
      };
    return {
      records,
      trace: log('trace'),
      debug: log('debug'),
      info: log('info'),
      warn: log('warn'),
      error: log('error'),
      fatal: log('fatal'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return make({});
}
