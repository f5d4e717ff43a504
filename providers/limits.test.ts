import { describe, expect, test } from 'vitest';
import { createLimiter, DEFAULT_PROVIDER_LIMITS, limitProvider } from './limits.ts';
import type { CreateResult, Provider, ProviderServer } from './types.ts';

/** A provider whose calls take `ms` and record when they ran and how many overlapped. */
function slowProvider(ms: number) {
  const log = { starts: [] as number[], names: [] as string[], inFlight: 0, maxInFlight: 0 };
  const call = async <T>(name: string, value: T): Promise<T> => {
    log.starts.push(performance.now());
    log.names.push(name);
    log.inFlight++;
    log.maxInFlight = Math.max(log.maxInFlight, log.inFlight);
    await new Promise((r) => setTimeout(r, ms));
    log.inFlight--;
    return value;
  };
  const provider: Provider & { extra(): string } = {
    name: 'slow',
    create: (s: ProviderServer) => call<CreateResult>(s.name, { created: true }),
    delete: (s: ProviderServer) => call(s.name, undefined),
    status: (s: ProviderServer) => call(s.name, { name: s.name, state: 'running' as const }),
    list: () => call('list', []),
    extra() {
      return this.name;
    },
  };
  return { provider, log };
}

const server = (name: string): ProviderServer => ({ name, labels: {} });
const signal = new AbortController().signal;

describe('limitProvider', () => {
  test('runs at most batch_size calls at once, and every call completes', async () => {
    const { provider, log } = slowProvider(25);
    const limited = limitProvider(provider, { batch_size: 3, api_rate_limit: 0 });
    const names = Array.from({ length: 10 }, (_, i) => `s-${i}`);
    const results = await Promise.all(names.map((n) => limited.create(server(n), signal)));
    expect(results).toHaveLength(10);
    expect(log.maxInFlight).toBe(3);
    // First come, first served.
    expect(log.names).toEqual(names);
  });

  test('spaces call starts by 1 / api_rate_limit seconds', async () => {
    const { provider, log } = slowProvider(1);
    const limited = limitProvider(provider, { batch_size: 10, api_rate_limit: 25 });
    await Promise.all(['a', 'b', 'c', 'd', 'e'].map((n) => limited.status(server(n), signal)));
    const gaps = log.starts.slice(1).map((t, i) => t - (log.starts[i] ?? 0));
    // 25 calls per second: 40 ms apart by the limiter's clock. The provider sees each call a
    // moment later, once the event loop gets to it, and on a busy machine that moment varies by
    // a few ms: a call that came late makes the next gap look short, never the sum of gaps.
    // Without spacing the gaps would be about 1 ms.
    for (const gap of gaps) expect(gap, `gaps ${gaps.join(', ')}`).toBeGreaterThanOrEqual(30);
    expect((log.starts.at(-1) ?? 0) - (log.starts[0] ?? 0)).toBeGreaterThanOrEqual(4 * 40 - 10);
  });

  test('limits create, delete, status and list together', async () => {
    const { provider, log } = slowProvider(20);
    const limited = limitProvider(provider, { batch_size: 2, api_rate_limit: 0 });
    await Promise.all([
      limited.create(server('a'), signal),
      limited.delete(server('b'), signal),
      limited.status(server('c'), signal),
      limited.list(),
    ]);
    expect(log.maxInFlight).toBe(2);
  });

  test("keeps the provider's other members, bound to it", () => {
    const { provider } = slowProvider(1);
    const limited = limitProvider(provider);
    expect(limited.name).toBe('slow');
    const extra = limited.extra;
    expect(extra()).toBe('slow');
  });

  test('a call aborted while it waits never runs, and the queue moves on', async () => {
    const { provider, log } = slowProvider(40);
    const limited = limitProvider(provider, { batch_size: 1, api_rate_limit: 0 });
    const abort = new AbortController();
    const first = limited.create(server('first'), signal);
    const second = limited.create(server('second'), abort.signal);
    const third = limited.create(server('third'), signal);
    abort.abort(new Error('cancelled by the test'));
    await expect(second).rejects.toThrow('cancelled by the test');
    await Promise.all([first, third]);
    expect(log.names).toEqual(['first', 'third']);
  });

  test('defaults to the schema: 10 calls per second, 5 at once', () => {
    expect(DEFAULT_PROVIDER_LIMITS).toEqual({
      api_rate_limit: 10,
      batch_size: 5,
      requires_network: true,
      network_before_servers: true,
      shared_resources: [],
    });
  });
});

describe('createLimiter', () => {
  test('reports active and waiting calls', async () => {
    const limiter = createLimiter({ batch_size: 1, api_rate_limit: 0 });
    let release!: () => void;
    const held = limiter.run(() => new Promise<void>((r) => (release = r)));
    const queued = limiter.run(async () => 'done');
    await new Promise((r) => setTimeout(r, 0));
    expect([limiter.active, limiter.waiting]).toEqual([1, 1]);
    release();
    await held;
    await expect(queued).resolves.toBe('done');
    expect([limiter.active, limiter.waiting]).toEqual([0, 0]);
  });

  test('refuses a batch_size below 1', () => {
    expect(() => createLimiter({ batch_size: 0, api_rate_limit: 1 })).toThrow(
      'batch_size must be a whole number of at least 1, not 0',
    );
  });
});
