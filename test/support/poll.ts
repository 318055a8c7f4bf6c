// Real-time polling for tests: read until a predicate holds, or fail after a generous limit saying what never happened.

export interface PollOptions {
  /** Real time; generous, since a loaded machine can take many seconds to run a few activities. Default 90 s. */
  timeoutMs?: number;
  /** Default 50 ms. */
  intervalMs?: number;
}

/** Reads until `done` holds and returns that value; on timeout, throws with `what` and `explain(last value)`. */
export async function pollUntil<T>(
  read: () => Promise<T>,
  done: (value: T) => boolean,
  what: string,
  opts: PollOptions & { explain?: (last: T) => string | Promise<string> } = {},
): Promise<T> {
  const { timeoutMs = 90_000, intervalMs = 50 } = opts;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() >= deadline) {
      const more = opts.explain ? `; ${await opts.explain(value)}` : '';
      throw new Error(`never reached within ${timeoutMs / 1000} s: ${what}${more}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
