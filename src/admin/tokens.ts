// Admin API tokens: long random values, stored only as SHA-256 hashes, compared in constant time.

import { randomUUID } from 'node:crypto';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import { audit, hashToken, newToken, tokenMatches } from '../store/connectors.ts';

export type AdminTokenScope = 'admin' | 'auditor' | 'sync' | 'sync-user';
export const ADMIN_TOKEN_SCOPES: readonly AdminTokenScope[] = ['admin', 'auditor', 'sync', 'sync-user'];

export interface AdminTokenInfo {
  id: string;
  label: string;
  scope: AdminTokenScope;
  createdAt: string;
  revokedAt: string | null;
}

export class AdminTokenStore {
  private cache: { at: number; rows: { id: string; hash: Buffer; label: string; scope: AdminTokenScope }[] } | undefined;

  constructor(
    private readonly db: Db,
    private readonly ttlMs = 2000,
  ) {}

  async create(label: string, actor: string, scope: AdminTokenScope = 'admin', createdBy: string | null = null): Promise<{ token: string; info: AdminTokenInfo }> {
    const token = `usa_${newToken().slice(4)}`;
    const info: AdminTokenInfo = { id: randomUUID(), label, scope, createdAt: now(), revokedAt: null };
    await this.db.transaction(async (trx) => {
      await trx.insertInto('admin_tokens').values({ id: info.id, token_hash: hashToken(token).toString('hex'), label, scope, created_at: info.createdAt, revoked_at: null, created_by: createdBy }).execute();
      await audit(trx, actor, 'admin-token.create', info.id, { label, scope });
    });
    this.cache = undefined;
    return { token, info };
  }

  async list(): Promise<AdminTokenInfo[]> {
    const rows = await this.db.kysely.selectFrom('admin_tokens').selectAll().orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, label: r.label, scope: r.scope as AdminTokenScope, createdAt: r.created_at, revokedAt: r.revoked_at }));
  }

  async revoke(id: string, actor: string): Promise<boolean> {
    const done = await this.db.transaction(async (trx) => {
      const res = await trx.updateTable('admin_tokens').set({ revoked_at: now() }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await audit(trx, actor, 'admin-token.revoke', id, {});
      return true;
    });
    this.cache = undefined;
    return done;
  }

  /** The token's id, label and scope when it is valid. */
  async verify(presented: string): Promise<{ id: string; label: string; scope: AdminTokenScope } | undefined> {
    if (!this.cache || Date.now() - this.cache.at > this.ttlMs) {
      const rows = await this.db.kysely.selectFrom('admin_tokens').select(['id', 'token_hash', 'label', 'scope']).where('revoked_at', 'is', null).execute();
      this.cache = { at: Date.now(), rows: rows.map((r) => ({ id: r.id, hash: Buffer.from(r.token_hash, 'hex'), label: r.label, scope: r.scope as AdminTokenScope })) };
    }
    let found: { id: string; label: string; scope: AdminTokenScope } | undefined;
    // every candidate is compared, so the time taken does not tell which one matched
    for (const row of this.cache.rows) if (tokenMatches(presented, [row.hash])) found = { id: row.id, label: row.label, scope: row.scope };
    return found;
  }
}
