import { describe, expect, it } from 'vitest';
import { ErrorCode, isTickwireError, TickwireError, toTickwireError } from './errors.js';

describe('TickwireError', () => {
  it('carries a stable code, message, details and cause', () => {
    const cause = new Error('socket hang up');
    const error = new TickwireError(ErrorCode.CONNECT_FAILED, 'could not reach 127.0.0.1:1', {
      cause,
      details: { port: 1 },
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('TickwireError');
    expect(error.code).toBe('CONNECT_FAILED');
    expect(error.message).toBe('could not reach 127.0.0.1:1');
    expect(error.details).toEqual({ port: 1 });
    expect(error.cause).toBe(cause);
  });

  it('is recognised by brand, not instanceof, so two loaded copies agree', () => {
    const error = new TickwireError(ErrorCode.TIMEOUT, 'slow');
    expect(isTickwireError(error)).toBe(true);
    expect(isTickwireError(error, ErrorCode.TIMEOUT)).toBe(true);
    expect(isTickwireError(error, ErrorCode.INTERNAL)).toBe(false);
    // An error made by another copy of the class: same global brand, different constructor.
    const foreign = Object.assign(new Error('x'), { code: 'TIMEOUT' });
    Object.defineProperty(foreign, Symbol.for('tickwire.error'), { value: true });
    expect(isTickwireError(foreign, ErrorCode.TIMEOUT)).toBe(true);
    expect(isTickwireError(new Error('plain'))).toBe(false);
    expect(isTickwireError({ code: 'TIMEOUT' })).toBe(false);
    expect(isTickwireError(null)).toBe(false);
    expect(isTickwireError('TIMEOUT')).toBe(false);
  });

  it('has a code map whose keys equal their values', () => {
    for (const [key, value] of Object.entries(ErrorCode)) expect(value).toBe(key);
  });

  it('wraps foreign errors but keeps its own', () => {
    const own = new TickwireError(ErrorCode.NOT_FOUND, 'no room r1');
    expect(toTickwireError(own)).toBe(own);
    const wrapped = toTickwireError(new RangeError('bad offset'), ErrorCode.DECODE_FAILED);
    expect(wrapped.code).toBe(ErrorCode.DECODE_FAILED);
    expect(wrapped.message).toBe('bad offset');
    expect(wrapped.cause).toBeInstanceOf(RangeError);
    expect(toTickwireError('text').code).toBe(ErrorCode.INTERNAL);
    expect(toTickwireError(1, ErrorCode.INTERNAL, 'custom').message).toBe('custom');
  });
});
