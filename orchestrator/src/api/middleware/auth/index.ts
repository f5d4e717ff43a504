/**
 * `requireRole(need)`: the Hono middleware that lets a request through only with a bearer token
 * whose role allows `need`. 401 (with `WWW-Authenticate: Bearer`, RFC 6750 §3) for a missing or
 * unknown token, 403 for a known token of the wrong role; both as problem details, via `onError`.
 *
 * @module
 */
import type { Context, MiddlewareHandler } from 'hono';
import type { Auth, Principal, Role } from '../../auth.ts';
import { ForbiddenError, UnauthenticatedError } from '../../errors.ts';

/** The context variables the API sets: the checker and, once checked, who is asking. */
export interface AuthVariables {
  auth: Auth;
  principal: Principal;
}

/** The Hono environment of routes behind {@link requireRole}. */
export interface AuthEnv {
  Variables: AuthVariables;
}

/**
 * Reads the token of a request: `Authorization: Bearer TOKEN`.
 *
 * @param header The `Authorization` header.
 *
 * @returns The token, or `undefined` when there is none (another scheme counts as none).
 */
export function bearerToken(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Bearer[ ]+([^\s]+)\s*$/i.exec(header);
  return m?.[1];
}

/**
 * Makes the checker available to {@link requireRole}; the app installs it once, before its routes.
 *
 * @param auth The checker.
 *
 * @returns The middleware.
 */
export function provideAuth(auth: Auth): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    c.set('auth', auth);
    await next();
  };
}

/**
 * Lets a request through only when its token's role allows `need`, and sets `principal`.
 *
 * @param need The role the route needs: `viewer` for reads, `operator` for submit and control.
 * @param auth The checker; by default the one {@link provideAuth} set on the context.
 *
 * @returns The middleware.
 *
 * @example
 * ```ts
 * app.post('/workflows/:id/pause', requireRole('operator'), (c) => …);
 * ```
 */
export function requireRole(need: Role, auth?: Auth): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    c.set('principal', authorize(c, need, auth));
    await next();
  };
}

/**
 * Checks a request's token against `need` and returns who is asking; for handlers that cannot use
 * the middleware (an upgrade, a stream).
 *
 * @throws {UnauthenticatedError} `API4010` for a missing or unknown token.
 * @throws {ForbiddenError} `API4030` for a role that does not allow `need`.
 */
export function authorize(c: Context, need: Role, auth?: Auth): Principal {
  const checker = auth ?? (c.get('auth') as Auth | undefined);
  if (!checker) throw new Error('requireRole: no Auth; install provideAuth(auth) first');
  const token = bearerToken(c.req.header('authorization'));
  const principal = checker.verify(token);
  if (!principal) {
    throw new UnauthenticatedError(
      token === undefined
        ? 'send a token as "Authorization: Bearer TOKEN"'
        : 'the token is not valid here; check it, or ask for one',
    );
  }
  if (!checker.allows(principal, need)) throw new ForbiddenError(principal.role, need);
  return principal;
}
