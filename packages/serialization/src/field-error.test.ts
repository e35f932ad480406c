import { ErrorCode } from '@tickwire/core';
import { describe, expect, it } from 'vitest';
import { addSegment, FieldError, isFieldError, toCodecError } from './field-error.js';

describe('field errors', () => {
  it('collect their path while they unwind and become a TickwireError naming the field', () => {
    const error = addSegment(
      addSegment(new FieldError(ErrorCode.VALIDATION_FAILED, 'too long'), 'name'),
      3,
    );
    const converted = toCodecError(error, ErrorCode.DECODE_FAILED, 'message: ');
    expect(converted.code).toBe(ErrorCode.VALIDATION_FAILED);
    expect(converted.message).toBe('message: [3].name: too long');
  });

  it('are recognised when another copy of this package threw them (ESM and CJS side by side)', () => {
    // What a FieldError of another copy looks like: another class, the same registered symbol.
    const brand = Symbol.for('@tickwire/serialization.FieldError');
    class OtherFieldError {
      readonly [brand] = true;
      readonly path: (string | number)[] = [];
      readonly code = ErrorCode.DECODE_FAILED;
      readonly reason = 'truncated';
    }
    const foreign = new OtherFieldError();
    expect(isFieldError(foreign)).toBe(true);
    expect(isFieldError(new Error('x'))).toBe(false);
    expect(isFieldError(null)).toBe(false);
    addSegment(foreign, 'hp');
    const converted = toCodecError(foreign, ErrorCode.VALIDATION_FAILED, 'snapshot: ');
    expect(converted.code).toBe(ErrorCode.DECODE_FAILED);
    expect(converted.message).toBe('snapshot: hp: truncated');
  });
});
