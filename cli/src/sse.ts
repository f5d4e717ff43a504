/**
 * A reader of Server-Sent Events (`text/event-stream`), as the HTML standard defines the format:
 * lines end in CRLF, LF or CR; `field: value` with one optional space; `data` lines join with
 * `\n`; a blank line dispatches; `:` starts a comment; an `id` with NUL is ignored.
 *
 * @see https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
 * @module
 */

/** One dispatched event. */
export interface SseMessage {
  /** `event:`, or `message` when the event named none. */
  readonly event: string;
  readonly data: string;
  /** The last event id seen so far on the stream (it carries over), or `''`. */
  readonly id: string;
  /** `retry:` in milliseconds, when this event set it. */
  readonly retry?: number;
}

/** Parses a stream pushed to it in chunks of any size. */
export interface SseParser {
  /** Feeds text; calls back for every event it completes. */
  push(text: string): void;
}

/**
 * Creates an incremental event-stream parser.
 *
 * @param onMessage Called for every dispatched event, in order.
 *
 * @returns The parser: push text as it arrives.
 *
 * @example
 * ```ts
 * const parser = createSseParser((m) => console.log(m.id, m.event, m.data));
 * parser.push('id: 7\nevent: task:started\ndata: {"seq":7}\n\n');
 * ```
 */
export function createSseParser(onMessage: (message: SseMessage) => void): SseParser {
  let buffer = '';
  // A chunk ending in CR may be the first half of a CRLF: the LF that starts the next is skipped.
  let skipLeadingLf = false;
  let data: string[] = [];
  let event = '';
  let lastId = '';
  let retry: number | undefined;

  const line = (text: string) => {
    if (text === '') {
      if (data.length > 0) {
        onMessage({
          event: event || 'message',
          data: data.join('\n'),
          id: lastId,
          ...(retry === undefined ? {} : { retry }),
        });
      }
      data = [];
      event = '';
      retry = undefined;
      return;
    }
    if (text.startsWith(':')) return;
    const colon = text.indexOf(':');
    const field = colon === -1 ? text : text.slice(0, colon);
    let value = colon === -1 ? '' : text.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        data.push(value);
        break;
      case 'event':
        event = value;
        break;
      case 'id':
        if (!value.includes('\0')) lastId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) retry = Number(value);
        break;
      default:
      // Unknown fields are ignored, as the standard says.
    }
  };

  return {
    push(text) {
      if (skipLeadingLf && text.startsWith('\n')) text = text.slice(1);
      skipLeadingLf = false;
      buffer += text;
      let start = 0;
      for (let i = 0; i < buffer.length; i++) {
        const c = buffer[i];
        if (c !== '\n' && c !== '\r') continue;
        line(buffer.slice(start, i));
        if (c === '\r') {
          if (i + 1 === buffer.length) skipLeadingLf = true;
          else if (buffer[i + 1] === '\n') i++;
        }
        start = i + 1;
      }
      buffer = buffer.slice(start);
    },
  };
}

/**
 * Reads the events of a byte stream, such as a `fetch` response body.
 *
 * @param body The stream.
 *
 * @returns The events, in order; an event the stream ends in the middle of is dropped.
 */
export async function* readSse(body: AsyncIterable<Uint8Array>): AsyncGenerator<SseMessage> {
  const decoder = new TextDecoder();
  const ready: SseMessage[] = [];
  const parser = createSseParser((m) => ready.push(m));
  for await (const chunk of body) {
    parser.push(decoder.decode(chunk, { stream: true }));
    yield* ready.splice(0);
  }
  parser.push(decoder.decode());
  yield* ready.splice(0);
}
