/**
 * The API's typed errors. Each carries a stable code and the HTTP status it maps to; `app.onError`
 * turns them (and the orchestrator's errors) into RFC 9457 problem details in one place.
 *
 * @module
 */
import { MusterError, type Problem } from '../../../schemas/src/problems.ts';

/** Base of the errors the API throws for a request it refuses. */
export class ApiError extends MusterError {
  override readonly name: string = 'ApiError';
  constructor(
    code: string,
    /** The HTTP status it answers with. */
    readonly status: number,
    message: string,
    /** Validation problems, located by path, when the request itself is malformed. */
    readonly problems?: readonly Problem[],
  ) {
    super(code, message);
  }
}

/** The request is malformed: a bad query parameter, header or body envelope. */
export class BadRequestError extends ApiError {
  override readonly name = 'BadRequestError';
  constructor(message: string, problems?: readonly Problem[]) {
    super('API4001', 400, message, problems);
  }
}

/** No token, or one the server does not know. */
export class UnauthenticatedError extends ApiError {
  override readonly name = 'UnauthenticatedError';
  constructor(message = 'send a token as "Authorization: Bearer TOKEN"') {
    super('API4010', 401, message);
  }
}

/** A known token whose role may not do this. */
export class ForbiddenError extends ApiError {
  override readonly name = 'ForbiddenError';
  constructor(
    readonly role: string,
    readonly need: string,
  ) {
    super('API4030', 403, `this needs the ${need} role; the token's role is ${role}`);
  }
}

/** No route matches the method and path. */
export class RouteNotFoundError extends ApiError {
  override readonly name = 'RouteNotFoundError';
  constructor(method: string, path: string) {
    super('API4040', 404, `no route ${method} ${path}; see GET /openapi.json for the routes`);
  }
}

/** The same idempotency key was used before for a different workflow. */
export class IdempotencyConflictError extends ApiError {
  override readonly name = 'IdempotencyConflictError';
  constructor(
    readonly key: string,
    readonly runId: string,
  ) {
    super(
      'API4090',
      409,
      `idempotency key "${key}" was used for run "${runId}" with a different workflow; ` +
        'use a new key for a new workflow',
    );
  }
}

/** The body is larger than the server accepts. */
export class PayloadTooLargeError extends ApiError {
  override readonly name = 'PayloadTooLargeError';
  constructor(readonly limit: number) {
    super(
      'API4130',
      413,
      `the request body is larger than ${limit} bytes; raise the server's --body-limit or send less`,
    );
  }
}

/** The body's content type is not one the route reads. */
export class UnsupportedMediaTypeError extends ApiError {
  override readonly name = 'UnsupportedMediaTypeError';
  constructor(received: string, accepted: readonly string[]) {
    super(
      'API4150',
      415,
      `cannot read a body of type "${received || '(none)'}"; send one of ${accepted.join(', ')}`,
    );
  }
}

/** Bad server configuration: refuses to start. */
export class ApiConfigError extends MusterError {
  override readonly name = 'ApiConfigError';
  constructor(message: string) {
    super('API1001', message);
  }
}
