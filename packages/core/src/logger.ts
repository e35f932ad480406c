/** A log method with pino's call shapes: `(msg)`, `(obj, msg?)`. */
export interface LogFn {
  (message: string, ...args: unknown[]): void;
  (object: object, message?: string, ...args: unknown[]): void;
}

/** A pino-compatible logger: a pino instance can be passed wherever one is asked for. */
export interface Logger {
  trace: LogFn;
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
  fatal: LogFn;
  /** A logger that adds `bindings` to every line. */
  child(bindings: Record<string, unknown>): Logger;
}

const noop = (): void => {};

/** A logger that drops everything: the default of every library package. */
export const silentLogger: Logger = {
  trace: noop,
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  fatal: noop,
  child: () => silentLogger,
};

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
