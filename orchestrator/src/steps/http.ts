/**
 * The `http` step: one HTTP request, checked against the statuses the step expects.
 *
 * Failures say whether a retry can help: a 5xx, 429 or 408 answer and network errors are retryable;
 * any other 4xx means the request itself is wrong and is not.
 *
 * @module
 */
import * as v from 'valibot';
import { DurationSchema } from './duration.ts';
import { abortFailure, StepFailure, type StepHandler } from './types.ts';

/** The largest response body kept in the `body` output, in bytes. */
export const MAX_HTTP_BODY = 64 * 1024;

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;

/** Statuses worth retrying besides 5xx: Request Timeout and Too Many Requests. */
const RETRYABLE_4XX = new Set([408, 429]);
/** RFC 9110 §5.1: a field name is a token. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const StatusSchema = v.pipe(
  v.number(),
  v.integer(),
  v.minValue(100, 'is not an HTTP status (100–599)'),
  v.maxValue(599, 'is not an HTTP status (100–599)'),
);

/** Params of the `http` step. */
export const HttpParamsSchema = v.pipe(
  v.strictObject({
    url: v.pipe(
      v.string(),
      v.url('must be an absolute URL such as "https://example.com/health"'),
      v.check((url) => /^https?:\/\//i.test(url), 'must be an http:// or https:// URL'),
    ),
    method: v.optional(
      v.pipe(
        v.string(),
        v.toUpperCase(),
        v.picklist(HTTP_METHODS, `must be one of ${HTTP_METHODS.join(', ')}`),
      ),
      'GET',
    ),
    headers: v.optional(
      v.record(
        v.pipe(v.string(), v.regex(HEADER_NAME, 'is not a valid header name')),
        v.pipe(v.union([v.string(), v.number(), v.boolean()]), v.transform(String)),
      ),
      () => ({}),
    ),
    /** Sent as is when a string; otherwise as JSON, with `content-type: application/json`. */
    body: v.optional(v.unknown()),
    /** Statuses that count as success; any 2xx when unset. */
    expect_status: v.optional(
      v.union(
        [StatusSchema, v.pipe(v.array(StatusSchema), v.minLength(1, 'needs at least one status'))],
        'must be a status such as 200, or a list of them',
      ),
    ),
    /** How long to wait for the response, in seconds or as `"500ms"`, `"30s"`, … */
    timeout: v.optional(DurationSchema),
  }),
  v.forward(
    v.check(
      (p) => p.body === undefined || (p.method !== 'GET' && p.method !== 'HEAD'),
      'a GET or HEAD request cannot have a body; use POST, PUT or PATCH',
    ),
    ['body'],
  ),
);
export type HttpParams = v.InferOutput<typeof HttpParamsSchema>;

/** Sends the request; outputs `status` and `body` (the first 64 KiB). */
export const httpStep: StepHandler<HttpParams> = {
  type: 'http',
  params: HttpParamsSchema,
  async execute(params, ctx) {
    const { url, method } = params;
    const timeoutSignal =
      params.timeout === undefined ? undefined : AbortSignal.timeout(params.timeout);
    const signal = timeoutSignal ? AbortSignal.any([ctx.signal, timeoutSignal]) : ctx.signal;
    const headers = new Headers(params.headers);
    let body: string | undefined;
    if (typeof params.body === 'string') body = params.body;
    else if (params.body !== undefined) {
      body = JSON.stringify(params.body);
      if (!headers.has('content-type')) headers.set('content-type', 'application/json');
    }

    const networkFailure = (e: unknown): StepFailure => {
      if (ctx.signal.aborted) return abortFailure(ctx.signal);
      const details = { url, method };
      if (timeoutSignal?.aborted) {
        return new StepFailure(
          'http-error',
          `${method} ${url}: no response within ${params.timeout} ms`,
          {
            details: { ...details, timeoutMs: params.timeout },
            cause: e,
          },
        );
      }
      const cause = (e as { cause?: { code?: unknown; message?: unknown } }).cause;
      const why = typeof cause?.message === 'string' ? cause.message : (e as Error).message;
      return new StepFailure('http-error', `${method} ${url} failed: ${why}`, {
        details: { ...details, ...(typeof cause?.code === 'string' ? { code: cause.code } : {}) },
        cause: e,
      });
    };

    const started = performance.now();
    let response: Response;
    let text: string;
    let truncated: boolean;
    try {
      response = await fetch(url, {
        method,
        headers,
        signal,
        ...(body === undefined ? {} : { body }),
      });
      ({ text, truncated } = await readBody(response, MAX_HTTP_BODY));
    } catch (e: unknown) {
      throw networkFailure(e);
    }
    const { status, statusText } = response;
    ctx.log(
      'info',
      `${method} ${url} → ${status} ${statusText} (${Math.round(performance.now() - started)} ms)`,
    );
    if (truncated) ctx.log('info', `response body cut to its first ${MAX_HTTP_BODY} bytes`);

    const expected = params.expect_status;
    const ok =
      expected === undefined
        ? status >= 200 && status < 300
        : (Array.isArray(expected) ? expected : [expected]).includes(status);
    if (!ok) {
      const want = expected === undefined ? 'a 2xx status' : [expected].flat().join(' or ');
      const nonRetryable = status >= 400 && status < 500 && !RETRYABLE_4XX.has(status);
      throw new StepFailure(
        'http-status',
        `${method} ${url} answered ${status}${statusText ? ` ${statusText}` : ''}; expected ${want}`,
        { nonRetryable, details: { url, method, status, body: text.slice(0, 1024) } },
      );
    }
    return { outputs: { status: String(status), body: text } };
  },
};

/** Reads at most `limit` bytes of a body as UTF-8, and cancels the rest. */
async function readBody(
  response: Response,
  limit: number,
): Promise<{ text: string; truncated: boolean }> {
  if (!response.body) return { text: '', truncated: false };
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.byteLength;
    if (size > limit) {
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
  }
  const bytes = Buffer.concat(chunks).subarray(0, limit);
  return { text: new TextDecoder().decode(bytes), truncated };
}
