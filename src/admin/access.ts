// Who may call which admin API route: a pure function of the caller and the route, so the whole policy
// reads in one place and is tested without a server.

import type { AdminRole } from './accounts.ts';
import type { AdminTokenScope } from './tokens.ts';

export type Caller =
  | { kind: 'session'; role: AdminRole; mustChangePassword: boolean }
  | { kind: 'token'; scope: AdminTokenScope };

export type AccessDecision = { allow: true } | { allow: false; code: 'forbidden' | 'password_change_required'; message: string };

/** Routes anyone may call: the API's description, and logging in (and asking whether one is). */
export const PUBLIC_ROUTES: ReadonlySet<string> = new Set(['GET /api/openapi.json', 'HEAD /api/openapi.json', 'POST /api/session', 'GET /api/session']);

/** Changes to one's own session: allowed to every logged-in account, whatever its role. */
const OWN_SESSION_ROUTES: ReadonlySet<string> = new Set(['DELETE /api/session', 'POST /api/session/password', 'GET /api/session']);

/** POSTs that change nothing (they compute or ask the provider), so a read-only auditor may make them. */
const READ_ONLY_POSTS: ReadonlySet<string> = new Set(['POST /api/connectors/:id/preview', 'POST /api/connectors/:id/test', 'POST /api/connectors/:id/search-user', 'POST /api/targets/:id/test']);

/** What a `sync` token may do: start a sync and follow it. */
const SYNC_ROUTES: ReadonlySet<string> = new Set([
  'POST /api/connectors/:id/sync',
  'GET /api/connectors',
  'GET /api/connectors/:id',
  'GET /api/runs',
  'GET /api/runs/:id',
  'GET /api/runs/:id/events',
]);

const SYNC_USER_ROUTES: ReadonlySet<string> = new Set(['POST /api/connectors/:id/sync-user']);

function isRead(method: string): boolean {
  return method === 'GET' || method === 'HEAD';
}

const DENY_READ_ONLY: AccessDecision = { allow: false, code: 'forbidden', message: 'this account is a read-only auditor: it cannot make changes' };

/** `route` is the method and the route's pattern, e.g. `POST /api/connectors/:id/sync`. */
export function decideAccess(caller: Caller, route: string): AccessDecision {
  const method = route.slice(0, route.indexOf(' '));
  if (caller.kind === 'session') {
    if (OWN_SESSION_ROUTES.has(route)) return { allow: true };
    if (caller.mustChangePassword) return { allow: false, code: 'password_change_required', message: 'change the password first (POST /api/session/password)' };
    if (caller.role === 'administrator') return { allow: true };
    return isRead(method) || READ_ONLY_POSTS.has(route) ? { allow: true } : DENY_READ_ONLY;
  }
  switch (caller.scope) {
    case 'admin':
      return route.startsWith('POST /api/session') || route.startsWith('DELETE /api/session')
        ? { allow: false, code: 'forbidden', message: 'an API token has no session' }
        : { allow: true };
    case 'auditor':
      return isRead(method) || READ_ONLY_POSTS.has(route) ? { allow: true } : { allow: false, code: 'forbidden', message: 'this token is read-only (scope auditor)' };
    case 'sync':
      return SYNC_ROUTES.has(route) ? { allow: true } : { allow: false, code: 'forbidden', message: 'this token may only start syncs and read runs (scope sync)' };
    case 'sync-user':
      return SYNC_USER_ROUTES.has(route) ? { allow: true } : { allow: false, code: 'forbidden', message: 'this token may only call POST /api/connectors/:id/sync-user' };
  }
}
