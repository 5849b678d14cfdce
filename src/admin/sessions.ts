// Browser sessions of admin accounts. The cookie holds a random value; the store keeps only its SHA-256,
// so reading the database (or a backup) logs nobody in. Each session has its own CSRF token, which the
// browser must echo in a header on every change.

import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import { hashToken } from '../store/connectors.ts';
import type { AdminRole } from './accounts.ts';

export interface SessionPolicy {
  /** a session unused this long ends */
  idleMs: number;
  /** and every session ends this long after login */
  absoluteMs: number;
}

export interface ActiveSession {
  idHash: string;
  accountId: string;
  username: string;
  role: AdminRole;
  mustChangePassword: boolean;
  csrfToken: string;
}

/** last_seen_at is written at most this often, so browsing does not turn every read into a write */
const TOUCH_EVERY_MS = 60_000;

export class SessionStore {
  constructor(
    private readonly db: Db,
    readonly policy: SessionPolicy = { idleMs: 60 * 60_000, absoluteMs: 12 * 60 * 60_000 },
  ) {}

  async create(accountId: string, meta: { ip: string; userAgent: string }): Promise<{ cookieValue: string; csrfToken: string }> {
    const cookieValue = randomBytes(32).toString('base64url');
    const csrfToken = randomBytes(32).toString('base64url');
    const at = now();
    await this.db.kysely
      .insertInto('admin_sessions')
      .values({
        id_hash: hashToken(cookieValue).toString('hex'),
        account_id: accountId,
        csrf_token: csrfToken,
        created_at: at,
        last_seen_at: at,
        expires_at: new Date(Date.now() + this.policy.absoluteMs).toISOString(),
        ip: meta.ip.slice(0, 100),
        user_agent: meta.userAgent.slice(0, 300),
      })
      .execute();
    return { cookieValue, csrfToken };
  }

  /** The session a cookie value belongs to, when it is still valid and its account enabled. */
  async find(cookieValue: string): Promise<ActiveSession | undefined> {
    if (!/^[A-Za-z0-9_-]{20,100}$/.test(cookieValue)) return undefined;
    const idHash = hashToken(cookieValue).toString('hex');
    const row = await this.db.kysely
      .selectFrom('admin_sessions as s')
      .innerJoin('admin_accounts as a', 'a.id', 's.account_id')
      .select(['s.id_hash', 's.account_id', 's.csrf_token', 's.last_seen_at', 's.expires_at', 'a.username', 'a.role', 'a.disabled', 'a.must_change_password'])
      .where('s.id_hash', '=', idHash)
      .executeTakeFirst();
    if (!row) return undefined;
    const t = Date.now();
    if (Number(row.disabled) === 1 || Date.parse(row.expires_at) <= t || Date.parse(row.last_seen_at) + this.policy.idleMs <= t) {
      await this.db.kysely.deleteFrom('admin_sessions').where('id_hash', '=', idHash).execute();
      return undefined;
    }
    if (Date.parse(row.last_seen_at) + TOUCH_EVERY_MS <= t) {
      await this.db.kysely.updateTable('admin_sessions').set({ last_seen_at: now() }).where('id_hash', '=', idHash).execute();
    }
    return { idHash, accountId: row.account_id, username: row.username, role: row.role as AdminRole, mustChangePassword: Number(row.must_change_password) === 1, csrfToken: row.csrf_token };
  }

  async end(idHash: string): Promise<void> {
    await this.db.kysely.deleteFrom('admin_sessions').where('id_hash', '=', idHash).execute();
  }

  /** Expired and idle sessions, removed by the hourly housekeeping. */
  async prune(): Promise<number> {
    const idleBefore = new Date(Date.now() - this.policy.idleMs).toISOString();
    const res = await this.db.kysely
      .deleteFrom('admin_sessions')
      .where((eb) => eb.or([eb('expires_at', '<=', now()), eb('last_seen_at', '<=', idleBefore)]))
      .executeTakeFirst();
    return Number(res.numDeletedRows);
  }
}

/** The CSRF header's value against the session's token, in constant time. */
export function csrfMatches(presented: unknown, expected: string): boolean {
  if (typeof presented !== 'string') return false;
  const a = Buffer.from(presented);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
