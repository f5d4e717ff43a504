/**
 * What can go wrong talking to the orchestrator, as typed errors with stable codes: the server's
 * own problem document (`ApiError`), no server at all (`ServerUnreachableError`), or an answer the
 * CLI cannot read (`UnexpectedResponseError`).
 *
 * @module
 */
import { MusterError } from '../../schemas/src/problems.ts';
import type { ApiProblem, ProblemDetails } from './client-schemas.ts';

/** HTTP statuses that mean the request itself was wrong: the CLI exits 2 for them. */
const INVALID_INPUT_STATUSES: ReadonlySet<number> = new Set([400, 413, 415, 422]);

/**
 * The orchestrator refused a request with an RFC 9457 problem document.
 *
 * The message is the server's (`[ORC1001] no run with id …`); `problems` holds the validation
 * problems of a 422, each with its path.
 */
export class ApiError extends MusterError {
  override readonly name = 'ApiError';
  /** The HTTP status. */
  readonly status: number;
  /** The validation problems (422), empty otherwise. */
  readonly problems: readonly ApiProblem[];
  /** The problem document as received. */
  readonly details: ProblemDetails;

  constructor(status: number, details: ProblemDetails, what: string) {
    const code = details.code ?? `HTTP${status}`;
    super(code, describe(status, details, what));
    this.status = status;
    this.details = details;
    this.problems = details.problems ?? [];
  }

  /** The exit code: 2 for input the user must fix (400, 413, 415, 422), 1 otherwise. */
  get exitCode(): number {
    return INVALID_INPUT_STATUSES.has(this.status) ? 2 : 1;
  }
}

function describe(status: number, details: ProblemDetails, what: string): string {
  const text = details.detail ?? details.title ?? `HTTP ${status}`;
  // The server's messages may already carry their code: `[ORC1001] no run …`; don't repeat it.
  const message = details.code ? text.replace(`[${details.code}] `, '') : text;
  if (status === 401) {
    return `${message} (${what}); pass a token with --token or MUSTER_TOKEN`;
  }
  if (status === 403) {
    return `${message} (${what}); this token's role may not do that — ask for an operator token`;
  }
  return message;
}

/** No orchestrator answered at the URL: not started, wrong address, or a network in between. */
export class ServerUnreachableError extends MusterError {
  override readonly name = 'ServerUnreachableError';
  constructor(
    readonly server: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(
      'CLI3001',
      `cannot reach the orchestrator at ${server}: ${reason} — ${hintFor(reason)}`,
      options,
    );
  }
}

/** What to do about an unreachable server: a TLS failure is not a server that is down. */
function hintFor(reason: string): string {
  if (/certificate|self.signed|CERT_|SSL|TLS/i.test(reason)) {
    return (
      "this machine does not trust the server's TLS certificate: point NODE_EXTRA_CA_CERTS at " +
      'the PEM file of its issuer (or of the certificate itself, if self-signed)'
    );
  }
  return 'is `muster server` running? (set the address with --server or MUSTER_SERVER)';
}

/** The orchestrator answered with something this CLI does not understand. */
export class UnexpectedResponseError extends MusterError {
  override readonly name = 'UnexpectedResponseError';
  constructor(
    readonly what: string,
    detail: string,
  ) {
    super(
      'CLI3002',
      `unexpected answer to ${what}: ${detail}; are the CLI and the server the same version?`,
    );
  }
}
