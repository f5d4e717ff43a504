/**
 * Provider limits: a provider's `api_rate_limit` (calls per second) and `batch_size` (calls at
 * once), from {@link ProviderDependencies}, enforced around its `create`, `delete`, `status` and
 * `list` calls, so however many provider tasks the engine starts at once, the provider's API sees
 * no more than it allows.
 *
 * Calls are spaced evenly (no bursts): with 10 calls per second, one may start every 100 ms. A
 * call waits for a free slot first, then for its turn, so the spacing is kept between starts.
 *
 * @module
 */
import * as v from 'valibot';
import { ProviderDependenciesSchema, type ProviderDependencies } from '../schemas/src/workflow.ts';
import type { Provider } from './types.ts';

/** What {@link limitProvider} reads of a provider's dependencies. */
export type ProviderLimits = Pick<ProviderDependencies, 'api_rate_limit' | 'batch_size'>;

/** The limits a provider gets when it states none: the schema's defaults (10/s, 5 at once). */
export const DEFAULT_PROVIDER_LIMITS: ProviderLimits = v.parse(ProviderDependenciesSchema, {});

/** A limiter: at most `batchSize` holders at once, starts spaced by `1 / ratePerSecond`. */
export interface Limiter {
  /**
   * Runs `fn` once a slot is free and its turn has come.
   *
   * @throws The signal's reason when it aborts while waiting (`fn` is then never called).
   */
  run<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  /** Calls running now. */
  readonly active: number;
  /** Calls waiting for a slot or their turn. */
  readonly waiting: number;
}

/**
 * Creates a limiter.
 *
 * @param limits `api_rate_limit` calls per second (0 means no rate limit) and `batch_size` calls at once.
 * @param now The clock, in milliseconds. @default `performance.now`
 */
export function createLimiter(
  limits: ProviderLimits,
  now: () => number = () => performance.now(),
): Limiter {
  const { batch_size: slots, api_rate_limit: rate } = limits;
  if (!Number.isInteger(slots) || slots < 1) {
    throw new RangeError(`batch_size must be a whole number of at least 1, not ${slots}`);
  }
  if (!(rate >= 0)) throw new RangeError(`api_rate_limit must be 0 or more, not ${rate}`);
  const spacing = rate === 0 ? 0 : 1000 / rate;
  let active = 0;
  let waiting = 0;
  let lastStart = -Infinity;
  const queue: Array<() => void> = [];

  const acquire = (signal?: AbortSignal): Promise<void> => {
    if (active < slots && queue.length === 0) {
      active++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      const grant = () => {
        signal?.removeEventListener('abort', onAbort);
        active++;
        resolve();
      };
      const onAbort = () => {
        const at = queue.indexOf(grant);
        if (at >= 0) queue.splice(at, 1);
        reject(signal?.reason);
      };
      queue.push(grant);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  };
  const release = () => {
    active--;
    const next = queue.shift();
    if (next) next();
  };
  // Turns are taken in order, each measured from the previous call's actual start: reserving
  // times up front let two late timers fire together after a stall, a burst over the rate.
  let turns: Promise<void> = Promise.resolve();
  const turn = (signal?: AbortSignal): Promise<void> => {
    if (spacing === 0) return Promise.resolve();
    const mine = turns.then(async () => {
      const wait = lastStart + spacing - now();
      if (wait > 0) await sleep(wait, signal);
      lastStart = now();
    });
    turns = mine.catch(() => {});
    return mine;
  };

  return {
    async run(fn, signal) {
      if (signal?.aborted) throw signal.reason;
      waiting++;
      try {
        await acquire(signal);
      } finally {
        waiting--;
      }
      try {
        await turn(signal);
        return await fn();
      } finally {
        release();
      }
    },
    get active() {
      return active;
    },
    get waiting() {
      return waiting;
    },
  };
}

/**
 * Wraps a provider so its calls honour `limits`; everything else passes through.
 *
 * @example
 * ```ts
 * const ssh = limitProvider(createSshProvider({ stateDir }), { api_rate_limit: 5, batch_size: 2 });
 * ```
 */
export function limitProvider<TProvider extends Provider>(
  provider: TProvider,
  limits: ProviderLimits = DEFAULT_PROVIDER_LIMITS,
): TProvider {
  const limiter = createLimiter(limits);
  const overrides: Pick<Provider, 'create' | 'delete' | 'status' | 'list'> = {
    create: (server, signal) => limiter.run(() => provider.create(server, signal), signal),
    delete: (server, signal) => limiter.run(() => provider.delete(server, signal), signal),
    status: (server, signal) => limiter.run(() => provider.status(server, signal), signal),
    list: () => limiter.run(() => provider.list()),
  };
  // A proxy rather than a copy: the provider's other members (its name, `workdir`, and whatever
  // a provider adds, such as the ssh provider's `connect`) stay its own, bound to it.
  return new Proxy(provider, {
    get(target, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop as keyof typeof overrides];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function'
        ? (value as (...a: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
