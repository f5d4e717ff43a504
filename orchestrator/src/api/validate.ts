/**
 * Validation at the HTTP boundary: query strings and JSON bodies go through `v.safeParse`, and
 * every issue comes back as a located {@link Problem} in a 400, never as a thrown `ValiError`.
 *
 * @module
 */
import type { Context } from 'hono';
import * as v from 'valibot';
import type { Problem } from '../../../schemas/src/problems.ts';
import { BadRequestError, UnsupportedMediaTypeError } from './errors.ts';

/** Where a value came from, to name it in problems. */
export type Origin = 'query' | 'body' | 'header';

/**
 * Parses a value with a schema, or throws a 400 listing every issue with its path.
 *
 * @param schema The schema.
 * @param value The value.
 * @param origin Where it came from (query parameters are named `?name=`).
 *
 * @returns The schema's output.
 *
 * @throws {BadRequestError} `API4001` with the problems.
 */
export function parseRequest<TSchema extends v.GenericSchema>(
  schema: TSchema,
  value: unknown,
  origin: Origin,
): v.InferOutput<TSchema> {
  const parsed = v.safeParse(schema, value);
  if (parsed.success) return parsed.output;
  const problems: Problem[] = parsed.issues.map((issue) => {
    const path = v.getDotPath(issue) ?? '';
    const where = origin === 'query' ? `?${path}=` : path === '' ? `the ${origin}` : path;
    // valibot's own messages read "Invalid type: Expected … but received …"; ours name the rule.
    const own = issue.message.startsWith('Invalid ');
    const message =
      issue.type === 'strict_object' && issue.expected === 'never'
        ? `${where}: unknown field`
        : own
          ? `${where}: expected ${issue.expected ?? 'something else'}, found ${issue.received}`
          : `${where}: expected ${issue.message}, found ${issue.received}`;
    return {
      code: origin,
      path,
      message,
      expected: own ? (issue.expected ?? '') : issue.message,
      received: issue.received,
    };
  });
  throw new BadRequestError(
    `the request's ${origin} is not valid: ${problems.map((p) => p.message).join('; ')}`,
    problems,
  );
}

/** Validates the query string. */
export function parseQuery<TSchema extends v.GenericSchema>(
  c: Context,
  schema: TSchema,
): v.InferOutput<TSchema> {
  return parseRequest(schema, c.req.query(), 'query');
}

/**
 * Reads and validates a JSON body; an empty body counts as `{}` (for actions without fields).
 *
 * @throws {UnsupportedMediaTypeError} `API4150` for a body that is not `application/json`.
 * @throws {BadRequestError} `API4001` for malformed JSON or a value the schema refuses.
 */
export async function parseJsonBody<TSchema extends v.GenericSchema>(
  c: Context,
  schema: TSchema,
): Promise<v.InferOutput<TSchema>> {
  const text = await c.req.text();
  if (text.trim() === '') return parseRequest(schema, {}, 'body');
  const type = mediaType(c.req.header('content-type'));
  if (type !== 'application/json') {
    throw new UnsupportedMediaTypeError(type, ['application/json']);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e: unknown) {
    throw new BadRequestError(`the body is not valid JSON: ${(e as Error).message}`);
  }
  return parseRequest(schema, value, 'body');
}

/** The media type of a `Content-Type` header, lower case, without parameters. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';')[0]!.trim().toLowerCase();
}
