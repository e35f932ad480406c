// Helpers of the transport tests (not shipped: see "files" in package.json).

/** How long a test waits for something that should come at once. */
export const MS = 5_000;

/** The error `promise` rejects with; throws if it resolves. */
export async function caught(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected a rejection');
}
