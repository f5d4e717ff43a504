/**
 * Errors to RFC 9457 problem details, in one place: each stable code maps to one HTTP status, and
 * nothing but the message of a known error reaches the client (never a stack or SQL).
 *
 * @module
 */
import { InvalidWorkflowError, MusterError } from '../../../schemas/src/problems.ts';
import { StoreError } from '../store/errors.ts';
import { ApiError } from './errors.ts';
import type { ProblemDetails } from './schemas.ts';

/** The media type of problem details (RFC 9457 §3). */
export const PROBLEM_JSON = 'application/problem+json';

/** HTTP statuses of the orchestrator's and the loader's codes; `ApiError`s carry their own. */
export const STATUS_OF_CODE: Readonly<Record<string, number>> = {
  MUS2001: 422, // invalid workflow
  MUS2005: 422, // too large for the bundled CUE
  ORC1001: 404, // run not found
  ORC1201: 404, // run not found (engine)
  ORC1002: 409, // the run's state forbids the action
  ORC1204: 409, // tasks still running
  ORC1203: 422, // no such checkpoint
  ORC1205: 422, // no such operation
  ORC1006: 503, // shutting down
  ORC1103: 503, // embedded database locked
};

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The problem details for an error, and whether it is the server's fault (to be logged). */
export function toProblem(
  error: unknown,
  instance?: string,
): { body: ProblemDetails; internal: boolean } {
  let status = 500;
  let code = 'API5000';
  let detail = 'the server failed to answer; the error is in its log';
  let problems: ProblemDetails['problems'];
  if (error instanceof ApiError) {
    status = error.status;
    code = error.code;
    detail = messageOf(error);
    if (error.problems) problems = [...error.problems];
  } else if (error instanceof StoreError) {
    // The store's message names the operation, never the SQL.
    status = error.retryable ? 503 : 500;
    code = error.code;
    detail = messageOf(error);
  } else if (error instanceof MusterError && STATUS_OF_CODE[error.code] !== undefined) {
    status = STATUS_OF_CODE[error.code]!;
    code = error.code;
    detail = messageOf(error);
    if (error instanceof InvalidWorkflowError) {
      problems = [...error.problems];
      detail = `${error.file ?? 'the workflow'} has ${error.problems.length} problem${
        error.problems.length === 1 ? '' : 's'
      }; see problems`;
    }
  }
  return {
    body: {
      type: `urn:muster:problem:${code}`,
      title: TITLES[status] ?? 'Error',
      status,
      detail,
      code,
      ...(instance !== undefined ? { instance } : {}),
      ...(problems !== undefined ? { problems } : {}),
    },
    internal: status >= 500 && !(error instanceof StoreError && error.retryable),
  };
}

/** The message without its `[CODE] ` prefix (the code has a field of its own). */
function messageOf(error: MusterError): string {
  const prefix = `[${error.code}] `;
  return error.message.startsWith(prefix) ? error.message.slice(prefix.length) : error.message;
}
