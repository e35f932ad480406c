import { ErrorCode, isTickwireError, TickwireError } from '@tickwire/core';

/** A DECODE_FAILED error about a snapshot. */
export function decodeError(reason: string, cause?: unknown): TickwireError {
  return new TickwireError(ErrorCode.DECODE_FAILED, `snapshot: ${reason}`, { cause });
}

/** Turns whatever a reader or field type threw into a DECODE_FAILED `TickwireError`. */
export function toDecodeError(error: unknown): TickwireError {
  if (isTickwireError(error) && error.code === ErrorCode.DECODE_FAILED) return error;
  const reason =
    typeof error === 'object' && error !== null && 'reason' in error
      ? String((error as { reason: unknown }).reason)
      : error instanceof Error
        ? error.message
        : String(error);
  return decodeError(reason, error);
}
