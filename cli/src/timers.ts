/**
 * Timer helpers shared by the reconnecting streams.
 *
 * @module
 */

/**
 * Waits, or less when the signal fires first.
 *
 * @param ms Milliseconds.
 * @param signal Ends the wait early.
 *
 * @returns A promise that resolves (never rejects) when the time is up or the signal fired.
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
