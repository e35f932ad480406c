import { ErrorCode, isTickwireError, TickwireError } from '@tickwire/core';

/** A DECODE_FAILED error about a snapshot (or another message named by `subject`). */
export function decodeError(reason: string, cause?: unknown, subject = 'snapshot'): TickwireError {
  return new TickwireError(ErrorCode.DECODE_FAILED, `${subject}: ${reason}`, { cause });
}

/** Turns whatever a reader or field type threw into a DECODE_FAILED `TickwireError`. */
export function toDecodeError(error: unknown, subject = 'snapshot'): TickwireError {
  if (isTickwireError(error, ErrorCode.DECODE_FAILED)) return error;
  const reason =
    typeof error === 'object' && error !== null && 'reason' in error
      ? String((error as { reason: unknown }).reason)
      : error instanceof Error
        ? error.message
        : String(error);
  return decodeError(reason, error, subject);
}
