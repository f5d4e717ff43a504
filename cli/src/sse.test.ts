import { describe, expect, test } from 'vitest';
import { createSseParser, readSse } from './sse.ts';
import type { SseMessage } from './sse.ts';

function parseAll(chunks: readonly string[]): SseMessage[] {
  const out: SseMessage[] = [];
  const parser = createSseParser((m) => out.push(m));
  for (const chunk of chunks) parser.push(chunk);
  return out;
}

describe('createSseParser', () => {
  test('reads id, event and data, and dispatches on a blank line', () => {
    expect(parseAll(['id: 7\nevent: task:started\ndata: {"seq":7}\n\n'])).toEqual([
      { id: '7', event: 'task:started', data: '{"seq":7}' },
    ]);
  });

  test('joins data lines with newlines and defaults the event to message', () => {
    expect(parseAll(['data: a\ndata:b\ndata\n\n'])).toEqual([
      { id: '', event: 'message', data: 'a\nb\n' },
    ]);
  });

  test('gives the same events whatever the chunk boundaries, CRLF split included', () => {
    const stream = 'id: 1\r\nevent: x\r\ndata: one\r\n\r\n: ping\r\nid: 2\rdata: two\r\r';
    const whole = parseAll([stream]);
    expect(whole).toEqual([
      { id: '1', event: 'x', data: 'one' },
      { id: '2', event: 'message', data: 'two' },
    ]);
    for (let cut = 1; cut < stream.length; cut++) {
      expect(parseAll([stream.slice(0, cut), stream.slice(cut)])).toEqual(whole);
    }
    expect(parseAll([...stream])).toEqual(whole);
  });

  test('carries the last id over to events without one, and ignores ids with NUL', () => {
    const events = parseAll(['id: 5\ndata: a\n\ndata: b\n\nid: 6\0\ndata: c\n\n']);
    expect(events.map((e) => e.id)).toEqual(['5', '5', '5']);
  });

  test('skips comments, unknown fields and blocks without data', () => {
    expect(parseAll([': hello\nfoo: bar\n\nevent: end\n\n'])).toEqual([]);
  });

  test('reads retry when it is a number', () => {
    expect(parseAll(['retry: 1500\ndata: x\n\nretry: soon\ndata: y\n\n'])).toEqual([
      { id: '', event: 'message', data: 'x', retry: 1500 },
      { id: '', event: 'message', data: 'y' },
    ]);
  });
});

describe('readSse', () => {
  test('decodes UTF-8 split across chunks and drops an unfinished last event', async () => {
    const bytes = new TextEncoder().encode('data: héllo ✓\n\ndata: cut off');
    async function* chunks() {
      for (let i = 0; i < bytes.length; i += 3) yield bytes.slice(i, i + 3);
    }
    const events: SseMessage[] = [];
    for await (const e of readSse(chunks())) events.push(e);
    expect(events).toEqual([{ id: '', event: 'message', data: 'héllo ✓' }]);
  });
});
