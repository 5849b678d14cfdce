// Authentication of the admin API: browser sessions (an HTTP-only cookie, a CSRF header on every change)
// and API tokens (Authorization: Bearer). Also the routes that manage them: log in and out, change one's
// password, accounts, API tokens. Who may call what is decided by decideAccess (access.ts).

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { AccountInfo, AccountStore } from './accounts.ts';
import { AccountError } from './accounts.ts';
import type { Caller } from './access.ts';
import { decideAccess, PUBLIC_ROUTES } from './access.ts';
import { ApiError, body } from './errors.ts';
import type { ActiveSession, SessionStore } from './sessions.ts';
import { csrfMatches } from './sessions.ts';
import type { AdminTokenScope, AdminTokenStore } from './tokens.ts';
import { ADMIN_TOKEN_SCOPES } from './tokens.ts';

export const SESSION_COOKIE = 'usersync_session';
export const CSRF_HEADER = 'x-csrf-token';

export interface AuthOptions {
  accounts: AccountStore;
  sessions: SessionStore;
  tokens: AdminTokenStore;
  /** login attempts one address may make per minute */
  loginRatePerMinute: number;
  /** 'auto': Secure when the request came over HTTPS (TRUST_PROXY decides for a proxy's requests) */
  cookieSecure: 'auto' | 'always' | 'never';
}

declare module 'fastify' {
  interface FastifyRequest {
    actor?: string;
    session?: ActiveSession;
  }
}


function accountError(e: unknown): never {
  if (e instanceof AccountError) {
    const status = e.code === 'not_found' ? 404 : e.code === 'username_taken' || e.code === 'last_administrator' ? 409 : 400;
    throw new ApiError(status, e.code, e.message);
  }
  throw e;
}

const safeMethod = (m: string) => m === 'GET' || m === 'HEAD' || m === 'OPTIONS';

/**
 * A browser's Origin, when it sends one, must be this service: another site's page cannot post with the
 * admin's cookie even where SameSite is not honoured.
 */
function originAllowed(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.host;
  } catch {
    return false;
  }
}

/** The onRequest hook of the admin API. */
export function authenticate(opts: AuthOptions) {
  return async (req: FastifyRequest) => {
    const url = req.routeOptions.url;
    // an unknown path is 404 only to a caller who may ask: to others it is 401, so paths are not probed
    const route = url === undefined ? undefined : `${req.method} ${url}`;
    const isPublic = route !== undefined && PUBLIC_ROUTES.has(route);
    if (!safeMethod(req.method) && !originAllowed(req)) throw new ApiError(403, 'csrf_failed', 'the request came from another site (Origin does not match)');

    const header = req.headers.authorization;
    let caller: Caller | undefined;
    if (typeof header === 'string' && header !== '') {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
      const token = match ? await opts.tokens.verify(match[1]!) : undefined;
      if (token) {
        caller = { kind: 'token', scope: token.scope };
        req.actor = `token:${token.label || token.id}`;
      } else if (!isPublic) {
        throw new ApiError(401, 'unauthenticated', 'the API token is not valid (Authorization: Bearer <token>)');
      }
    } else {
      const cookie = req.cookies[SESSION_COOKIE];
      const session = cookie ? await opts.sessions.find(cookie) : undefined;
      if (session) {
        // logging in again needs no token of the old session (the Origin check and SameSite cover it)
        if (!isPublic && !safeMethod(req.method) && !csrfMatches(req.headers[CSRF_HEADER], session.csrfToken)) {
          throw new ApiError(403, 'csrf_failed', `a change needs the session's CSRF token in the ${CSRF_HEADER} header (GET /api/session gives it)`);
        }
        req.session = session;
        req.actor = `account:${session.username}`;
        caller = { kind: 'session', role: session.role, mustChangePassword: session.mustChangePassword };
      }
    }
    if (isPublic) return;
    if (!caller) throw new ApiError(401, 'unauthenticated', 'log in (POST /api/session) or send an API token (Authorization: Bearer <token>)');
    if (route === undefined) return; // the not-found handler answers
    const decision = decideAccess(caller, route);
    if (!decision.allow) throw new ApiError(403, decision.code, decision.message);
  };
}

function sessionJson(s: { accountId: string; username: string; role: string; mustChangePassword: boolean }, csrfToken: string) {
  return { account: { id: s.accountId, username: s.username, role: s.role, mustChangePassword: s.mustChangePassword }, csrfToken };
}

function accountJson(a: AccountInfo) {
  return { id: a.id, username: a.username, role: a.role, disabled: a.disabled, locked: a.locked, lockedUntil: a.lockedUntil, mustChangePassword: a.mustChangePassword, lastLoginAt: a.lastLoginAt, createdAt: a.createdAt };
}

export async function authRoutes(app: FastifyInstance, opts: AuthOptions): Promise<void> {
  const { accounts, sessions, tokens } = opts;

  // per address, in this instance's memory: the account lockout is what holds across instances
  await app.register(rateLimit, {
    global: false,
    errorResponseBuilder: (_req, ctx) => new ApiError(429, 'too_many_attempts', `too many login attempts from this address; try again in ${Math.ceil(ctx.ttl / 1000)} seconds`),
  });

  const cookieOptions = (req: FastifyRequest) => ({
    path: '/',
    httpOnly: true,
    sameSite: 'strict' as const,
    secure: opts.cookieSecure === 'always' || (opts.cookieSecure === 'auto' && req.protocol === 'https'),
  });

  // ---------------------------------------------------------------- the session
  app.get('/session', async (req) => {
    if (!req.session) throw new ApiError(401, 'unauthenticated', 'not logged in');
    return sessionJson(req.session, req.session.csrfToken);
  });

  app.post('/session', { config: { rateLimit: { max: opts.loginRatePerMinute, timeWindow: 60_000 } } }, async (req, reply: FastifyReply) => {
    const b = body<{ username?: unknown; password?: unknown }>(req);
    if (typeof b.username !== 'string' || typeof b.password !== 'string' || !b.username || !b.password) {
      throw new ApiError(400, 'invalid_body', "give 'username' and 'password'");
    }
    const result = await accounts.login(b.username, b.password, { ip: req.ip });
    if (!result.ok) {
      if (result.reason === 'locked') {
        reply.header('retry-after', String(result.retryAfterSeconds));
        const minutes = Math.ceil(result.retryAfterSeconds / 60);
        throw new ApiError(423, 'account_locked', `${result.justLocked ? 'Too many failed logins: this account is now locked' : 'This account is locked after too many failed logins'}; try again in ${minutes} minute${minutes === 1 ? '' : 's'}, or ask an administrator to unlock it`, { retryAfterSeconds: result.retryAfterSeconds });
      }
      throw new ApiError(401, 'invalid_credentials', 'the username or the password is wrong');
    }
    // a new session each login (never reuse one a browser already had: session fixation)
    if (req.session) await sessions.end(req.session.idHash);
    const created = await sessions.create(result.account.id, { ip: req.ip, userAgent: String(req.headers['user-agent'] ?? '') });
    reply.setCookie(SESSION_COOKIE, created.cookieValue, cookieOptions(req));
    return sessionJson({ accountId: result.account.id, username: result.account.username, role: result.account.role, mustChangePassword: result.account.mustChangePassword }, created.csrfToken);
  });

  app.delete('/session', async (req, reply) => {
    if (req.session) await sessions.end(req.session.idHash);
    reply.clearCookie(SESSION_COOKIE, cookieOptions(req));
    return reply.code(204).send();
  });

  app.post('/session/password', async (req, reply) => {
    if (!req.session) throw new ApiError(403, 'forbidden', 'an API token has no password; log in to change yours');
    const b = body<{ currentPassword?: unknown; newPassword?: unknown }>(req);
    try {
      const r = await accounts.changeOwnPassword(req.session.accountId, b.currentPassword, b.newPassword, req.actor!, req.session.idHash);
      if (r === 'wrong_password') throw new ApiError(400, 'wrong_password', 'the current password is wrong');
    } catch (e) {
      accountError(e);
    }
    return reply.code(204).send();
  });

  // ---------------------------------------------------------------- accounts
  const accountId = (req: FastifyRequest) => (req.params as { id: string }).id;

  app.get('/accounts', async () => ({ accounts: (await accounts.list()).map(accountJson) }));

  app.post('/accounts', async (req, reply) => {
    const b = body<{ username?: unknown; password?: unknown; role?: unknown }>(req);
    // an account made by someone else changes its password at the first login
    const created = await accounts.create({ username: b.username, password: b.password, role: b.role, mustChangePassword: true }, req.actor!).catch(accountError);
    return reply.code(201).send(accountJson(created));
  });

  app.patch('/accounts/:id', async (req) => {
    const b = body<{ role?: unknown; disabled?: unknown; password?: unknown }>(req);
    const unknownKeys = Object.keys(b).filter((k) => !['role', 'disabled', 'password'].includes(k));
    if (unknownKeys.length) throw new ApiError(400, 'invalid_account', `unknown field(s): ${unknownKeys.join(', ')}`);
    return accountJson(await accounts.update(accountId(req), b, req.actor!).catch(accountError));
  });

  app.delete('/accounts/:id', async (req, reply) => {
    if (req.session?.accountId === accountId(req)) throw new ApiError(409, 'own_account', 'you cannot delete the account you are logged in with');
    await accounts.delete(accountId(req), req.actor!).catch(accountError);
    return reply.code(204).send();
  });

  app.post('/accounts/:id/unlock', async (req) => accountJson(await accounts.unlock(accountId(req), req.actor!).catch(accountError)));

  // ---------------------------------------------------------------- API tokens
  app.get('/admin-tokens', async () => ({ tokens: await tokens.list() }));

  app.post('/admin-tokens', async (req, reply) => {
    const b = body<{ label?: unknown; scope?: unknown }>(req);
    if (typeof b.label !== 'string' || !b.label.trim() || b.label.length > 200) throw new ApiError(400, 'invalid_token', "'label' must be a non-empty string of at most 200 characters");
    const scope = (b.scope ?? 'admin') as AdminTokenScope;
    if (!ADMIN_TOKEN_SCOPES.includes(scope)) throw new ApiError(400, 'invalid_token', `'scope' must be one of ${ADMIN_TOKEN_SCOPES.join(', ')}`);
    const created = await tokens.create(b.label.trim(), req.actor!, scope, req.actor!);
    return reply.code(201).send(created);
  });

  app.delete('/admin-tokens/:id', async (req, reply) => {
    if (!(await tokens.revoke((req.params as { id: string }).id, req.actor!))) throw new ApiError(404, 'not_found', 'no valid token with that id');
    return reply.code(204).send();
  });
}
