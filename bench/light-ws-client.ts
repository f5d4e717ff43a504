/**
 * A minimal WebSocket client (RFC 6455) for benchmarks that hold a thousand connections on the
 * machine that runs the server: the opening handshake, masked text frames out, and unmasked
 * frames in, handed over as raw payload bytes, with no UTF-8 check, no JSON parse and no event
 * per frame beyond the one callback. It answers pings and the close handshake.
 *
 * Why not `ws`: at 1,000 clients × 1,000 events/s, `ws`'s receiver and a `JSON.parse` per message
 * cost the client processes more CPU than the server uses, on the same two cores, so the bench
 * would measure its clients. The protocol itself is tested with `ws` (orchestrator/test/ws.*).
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

/** What a client is told. */
export interface LightClientHandlers {
  /** A whole text message: its payload, valid only during the call. */
  onText(payload: Buffer): void;
  /** The connection closed: the close code the server sent, 1006 if it sent none. */
  onClose?(code: number): void;
}

/** One WebSocket connection. */
export class LightClient {
  private rest: Buffer | undefined;
  private fragments: Buffer[] = [];
  private closeCode = 1006;
  private closing = false;
  private readonly closed: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly handlers: LightClientHandlers,
    head: Buffer,
  ) {
    socket.setNoDelay(true);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.handlers.onClose?.(this.closeCode);
        resolve();
      });
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('error', () => {});
    if (head.length > 0) this.receive(head);
  }

  /** Opens `url` (`ws://host:port/path`) with a bearer token. */
  static connect(url: string, token: string, handlers: LightClientHandlers): Promise<LightClient> {
    const { hostname, port, pathname, search } = new URL(url);
    const key = randomBytes(16).toString('base64');
    const accept = createHash('sha1')
      .update(key + GUID)
      .digest('base64');
    return new Promise((resolve, reject) => {
      const socket = connect(Number(port), hostname, () => {
        socket.write(
          `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\n` +
            'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n' +
            `Sec-WebSocket-Key: ${key}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
        );
      });
      let response = Buffer.alloc(0);
      const onData = (chunk: Buffer) => {
        response = Buffer.concat([response, chunk]);
        const end = response.indexOf('\r\n\r\n');
        if (end < 0) return;
        socket.off('data', onData);
        socket.off('error', reject);
        const head = response.toString('latin1', 0, end);
        if (!/^HTTP\/1\.1 101 /.test(head) || !head.includes(`Sec-WebSocket-Accept: ${accept}`)) {
          socket.destroy();
          reject(new Error(`the server refused the WebSocket: ${head.split('\r\n')[0]}`));
          return;
        }
        resolve(new LightClient(socket, handlers, response.subarray(end + 4)));
      };
      socket.on('data', onData);
      socket.once('error', reject);
    });
  }

  get open(): boolean {
    return !this.closing && !this.socket.destroyed;
  }

  /** Sends a text message. */
  send(text: string): void {
    this.frame(0x1, Buffer.from(text));
  }

  /** Starts the close handshake and resolves once the connection is gone. */
  close(): Promise<void> {
    if (!this.closing && !this.socket.destroyed) {
      this.closing = true;
      const code = Buffer.alloc(2);
      code.writeUInt16BE(1000);
      this.frame(0x8, code);
      // A server that does not answer is not waited for.
      setTimeout(() => this.socket.destroy(), 2000).unref();
    }
    return this.closed;
  }

  /** A masked frame (clients must mask, RFC 6455 §5.3). */
  private frame(opcode: number, payload: Buffer): void {
    const n = payload.length;
    const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
    const frame = Buffer.allocUnsafe(head + 4 + n);
    frame[0] = 0x80 | opcode;
    if (n < 126) frame[1] = 0x80 | n;
    else if (n < 65_536) {
      frame[1] = 0x80 | 126;
      frame.writeUInt16BE(n, 2);
    } else {
      frame[1] = 0x80 | 127;
      frame.writeBigUInt64BE(BigInt(n), 2);
    }
    const mask = randomBytes(4);
    mask.copy(frame, head);
    for (let i = 0; i < n; i++) frame[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
    this.socket.write(frame);
  }

  /** Splits what came in into frames; an incomplete one waits for the next chunk. */
  private receive(chunk: Buffer): void {
    const buf = this.rest ? Buffer.concat([this.rest, chunk]) : chunk;
    this.rest = undefined;
    let at = 0;
    while (buf.length - at >= 2) {
      const b0 = buf[at]!;
      let length = buf[at + 1]! & 0x7f;
      let start = at + 2;
      if (length === 126) {
        if (buf.length - at < 4) break;
        length = buf.readUInt16BE(at + 2);
        start = at + 4;
      } else if (length === 127) {
        if (buf.length - at < 10) break;
        length = Number(buf.readBigUInt64BE(at + 2));
        start = at + 10;
      }
      if (buf.length < start + length) break;
      this.message(b0 & 0x0f, (b0 & 0x80) !== 0, buf.subarray(start, start + length));
      at = start + length;
    }
    if (at < buf.length) this.rest = Buffer.from(buf.subarray(at));
  }

  private message(opcode: number, fin: boolean, payload: Buffer): void {
    if (opcode === 0x1 || opcode === 0x0) {
      if (!fin || this.fragments.length > 0) {
        this.fragments.push(Buffer.from(payload));
        if (!fin) return;
        const whole = Buffer.concat(this.fragments);
        this.fragments = [];
        this.handlers.onText(whole);
      } else {
        this.handlers.onText(payload);
      }
    } else if (opcode === 0x9) {
      this.frame(0xa, Buffer.from(payload));
    } else if (opcode === 0x8) {
      this.closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : 1005;
      if (!this.closing) {
        this.closing = true;
        this.frame(0x8, Buffer.from(payload.subarray(0, 2)));
      }
      this.socket.end();
    }
  }
}
