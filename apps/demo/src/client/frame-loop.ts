// The render loop's driver: calls a frame on every display frame, and keeps going when one
// throws. A bug that throws in every frame would otherwise either stop the game for good (the
// next frame is requested at the end of the one that threw) or flood the console 60 times a
// second; instead each distinct error is reported once and the loop goes on.

/** Distinct errors reported at most; past it a failing frame is silent. */
export const MAX_REPORTED_ERRORS = 10;

export interface FrameLoopOptions {
  /** Schedules the next frame (the page's `requestAnimationFrame`). */
  requestFrame(callback: (now: number) => void): unknown;
  /** Reports an error a frame threw: called once per distinct message. */
  onError(error: unknown): void;
}

const keyOf = (error: unknown): string =>
  error instanceof Error ? `${error.name}: ${error.message}` : String(error);

/** Starts calling `frame` on every display frame; a frame that throws does not stop the loop. */
export function startFrameLoop(frame: (now: number) => void, options: FrameLoopOptions): void {
  const reported = new Set<string>();
  const run = (now: number): void => {
    // Re-armed first: whatever this frame does, the next one comes.
    options.requestFrame(run);
    try {
      frame(now);
    } catch (error) {
      const key = keyOf(error);
      if (reported.has(key) || reported.size >= MAX_REPORTED_ERRORS) return;
      reported.add(key);
      options.onError(error);
    }
  };
  options.requestFrame(run);
}
