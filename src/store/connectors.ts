// Connectors, their SCIM bearer tokens (stored only as SHA-256 hashes), and the audit log.

import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.ts';
import { now } from './db.ts';

export type ConnectorKind = 'scim' | 'graph' | 'ldap';

export interface Connector {
  id: string;
  name: string;
  kind: ConnectorKind;
  enabled: boolean;
  settings: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export interface TokenInfo {
  id: string;
  connectorId: string;
  label: string;
  createdAt: string;
  revokedAt: string | null;
}

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function hashToken(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** A new bearer token: 32 random bytes, base64url, with a recognisable prefix. */
export function newToken(): string {
  return `usy_${randomBytes(32).toString('base64url')}`;
}

function toConnector(row: { id: string; name: string; kind: string; enabled: number | string; settings: string; created_at: string; updated_at: string }): Connector {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind as ConnectorKind,
    enabled: Number(row.enabled) === 1,
    settings: JSON.parse(row.settings) as Record<string, unknown>,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export class ConnectorStore {
  constructor(private readonly db: Db) {}

  async list(): Promise<Connector[]> {
    const rows = await this.db.kysely.selectFrom('connectors').selectAll().orderBy('created_at').orderBy('id').execute();
    return rows.map(toConnector);
  }

  async get(id: string): Promise<Connector | undefined> {
    const row = await this.db.kysely.selectFrom('connectors').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toConnector(row) : undefined;
  }

  async create(input: { id?: string; name: string; kind: ConnectorKind; settings?: Record<string, unknown>; source?: Record<string, unknown> }, actor: string): Promise<Connector> {
    const id = input.id ?? randomUUID();
    if (!ID_PATTERN.test(id)) throw new Error(`connector id '${id}' must be lower-case letters, digits and dashes (at most 63)`);
    if (!input.name.trim()) throw new Error('a connector needs a name');
    if (!['scim', 'graph', 'ldap'].includes(input.kind)) throw new Error(`unknown connector kind '${input.kind}'`);
    const at = now();
    await this.db.transaction(async (trx) => {
      await trx
        .insertInto('connectors')
        .values({ id, name: input.name.trim(), kind: input.kind, enabled: 1, settings: JSON.stringify(input.settings ?? {}), source: JSON.stringify(input.source ?? {}), created_at: at, updated_at: at })
        .execute();
      await audit(trx, actor, 'connector.create', id, { name: input.name, kind: input.kind });
    });
    return (await this.get(id))!;
  }

  async setEnabled(id: string, enabled: boolean, actor: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const res = await trx.updateTable('connectors').set({ enabled: enabled ? 1 : 0, updated_at: now() }).where('id', '=', id).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await audit(trx, actor, enabled ? 'connector.enable' : 'connector.disable', id, {});
      return true;
    });
  }

  async rename(id: string, name: string, actor: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const row = await trx.selectFrom('connectors').select('name').where('id', '=', id).executeTakeFirst();
      if (!row) return false;
      await trx.updateTable('connectors').set({ name, updated_at: now() }).where('id', '=', id).execute();
      await audit(trx, actor, 'connector.rename', id, { before: row.name, after: name });
      return true;
    });
  }

  /** A pull connector's stored source settings (secrets sealed). */
  async getSource(id: string): Promise<Record<string, unknown> | undefined> {
    const row = await this.db.kysely.selectFrom('connectors').select('source').where('id', '=', id).executeTakeFirst();
    return row ? (JSON.parse(row.source) as Record<string, unknown>) : undefined;
  }

  /** Store source settings (already validated and sealed); the audit names the fields that changed, never values of secrets. */
  async setSource(id: string, source: Record<string, unknown>, actor: string, secretFields: readonly string[] = []): Promise<void> {
    await this.db.transaction(async (trx) => {
      const row = await trx.selectFrom('connectors').select('source').where('id', '=', id).executeTakeFirst();
      const before = row ? (JSON.parse(row.source) as Record<string, unknown>) : {};
      const changed = [...new Set([...Object.keys(before), ...Object.keys(source)])].filter((k) => JSON.stringify(before[k]) !== JSON.stringify(source[k])).sort();
      const shown = (s: Record<string, unknown>) => Object.fromEntries(changed.map((k) => [k, secretFields.includes(k) ? (s[k] === undefined ? null : '(secret)') : (s[k] ?? null)]));
      await trx.updateTable('connectors').set({ source: JSON.stringify(source), updated_at: now() }).where('id', '=', id).execute();
      await audit(trx, actor, 'source.update', id, { changed, before: shown(before), after: shown(source) });
    });
  }

  /** Delete a connector with its mirror and tokens; the directory keeps its users (now unowned). */
  async delete(id: string, actor: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const exists = await trx.selectFrom('connectors').select('id').where('id', '=', id).executeTakeFirst();
      if (!exists) return false;
      await trx.deleteFrom('mirror_members').where('connector_id', '=', id).execute();
      await trx.deleteFrom('mirror_groups').where('connector_id', '=', id).execute();
      await trx.deleteFrom('mirror_user_emails').where('connector_id', '=', id).execute();
      await trx.deleteFrom('mirror_users').where('connector_id', '=', id).execute();
      await trx.deleteFrom('dirty_marks').where('connector_id', '=', id).execute();
      await trx.deleteFrom('source_state').where('connector_id', '=', id).execute();
      await trx.deleteFrom('scim_tokens').where('connector_id', '=', id).execute();
      await trx.deleteFrom('connectors').where('id', '=', id).execute();
      await audit(trx, actor, 'connector.delete', id, {});
      return true;
    });
  }

  /** Create a token; the clear value is returned once and never stored. */
  async createToken(connectorId: string, label: string, actor: string): Promise<{ token: string; info: TokenInfo }> {
    const token = newToken();
    const info: TokenInfo = { id: randomUUID(), connectorId, label, createdAt: now(), revokedAt: null };
    await this.db.transaction(async (trx) => {
      await trx
        .insertInto('scim_tokens')
        .values({ id: info.id, connector_id: connectorId, token_hash: hashToken(token).toString('hex'), label, created_at: info.createdAt, revoked_at: null })
        .execute();
      await audit(trx, actor, 'token.create', connectorId, { tokenId: info.id, label });
    });
    return { token, info };
  }

  async listTokens(connectorId: string): Promise<TokenInfo[]> {
    const rows = await this.db.kysely.selectFrom('scim_tokens').selectAll().where('connector_id', '=', connectorId).orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, connectorId: r.connector_id, label: r.label, createdAt: r.created_at, revokedAt: r.revoked_at }));
  }

  async revokeToken(connectorId: string, tokenId: string, actor: string): Promise<boolean> {
    return this.db.transaction(async (trx) => {
      const res = await trx
        .updateTable('scim_tokens')
        .set({ revoked_at: now() })
        .where('connector_id', '=', connectorId)
        .where('id', '=', tokenId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) return false;
      await audit(trx, actor, 'token.revoke', connectorId, { tokenId });
      return true;
    });
  }

  /** The valid token hashes of a connector, and whether it is enabled (undefined: no such connector). */
  async credentials(connectorId: string): Promise<{ enabled: boolean; hashes: Buffer[] } | undefined> {
    const connector = await this.db.kysely.selectFrom('connectors').select(['enabled', 'kind']).where('id', '=', connectorId).executeTakeFirst();
    if (!connector) return undefined;
    const rows = await this.db.kysely
      .selectFrom('scim_tokens')
      .select('token_hash')
      .where('connector_id', '=', connectorId)
      .where('revoked_at', 'is', null)
      .execute();
    return { enabled: Number(connector.enabled) === 1, hashes: rows.map((r) => Buffer.from(r.token_hash, 'hex')) };
  }
}

/** Compare a presented token with every valid hash, in time independent of where they differ. */
export function tokenMatches(presented: string, hashes: Buffer[]): boolean {
  const h = hashToken(presented);
  let ok = false;
  for (const candidate of hashes) {
    if (candidate.length === h.length && timingSafeEqual(candidate, h)) ok = true;
  }
  return ok;
}

export async function audit(
  trx: Db['kysely'],
  actor: string,
  action: string,
  target: string,
  details: Record<string, unknown>,
): Promise<void> {
  await trx.insertInto('audit_log').values({ at: now(), actor, action, target, details: JSON.stringify(details) }).execute();
}
