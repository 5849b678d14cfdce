// The pull source kinds: how their settings are validated, which fields are secrets (sealed at rest with
// a context naming the connector and field, so a sealed value copied to another connector does not
// open), how an administrator sees them, and how a source is opened for a run. One entry per kind.

import type { ScheduleSettings } from '../domain/schedule.ts';
import { SettingsError } from '../domain/settings-validate.ts';
import type { Db } from '../store/db.ts';
import { SecretBox, isSealed } from '../store/secrets.ts';
import type { GraphClientOptions } from './graph/client.ts';
import type { GraphSourceSettings } from './graph/config.ts';
import { GRAPH_SECRET_FIELDS, redactGraphSource, validateGraphSource } from './graph/config.ts';
import { GraphSource } from './graph/source.ts';
import type { LdapSourceSettings } from './ldap/config.ts';
import { LDAP_SECRET_FIELDS, redactLdapSource, validateLdapSource } from './ldap/config.ts';
import { LdapSource } from './ldap/source.ts';
import type { PullSource } from '../sync/source.ts';

export type PullKind = 'graph' | 'ldap';

type Secrets = Record<string, string | undefined>;

interface SourceKind {
  secretFields: readonly string[];
  validate(input: Record<string, unknown>, previous: Record<string, unknown> | undefined): Record<string, unknown>;
  redact(stored: Record<string, unknown>): Record<string, unknown>;
  isConfigured(stored: Record<string, unknown>): boolean;
  open(stored: Record<string, unknown>, secrets: Secrets, extra: Partial<GraphClientOptions>): PullSource;
}

const KINDS: Record<PullKind, SourceKind> = {
  graph: {
    secretFields: GRAPH_SECRET_FIELDS,
    validate: (input, previous) => validateGraphSource(input, previous as GraphSourceSettings | undefined) as unknown as Record<string, unknown>,
    redact: (stored) => redactGraphSource(stored as unknown as GraphSourceSettings),
    isConfigured: (stored) => typeof stored.tenantId === 'string' && stored.tenantId !== '',
    open: (stored, secrets, extra) => {
      const open: { clientSecret?: string; privateKey?: string } = {};
      if (secrets.clientSecret !== undefined) open.clientSecret = secrets.clientSecret;
      if (secrets.privateKey !== undefined) open.privateKey = secrets.privateKey;
      return new GraphSource(stored as unknown as GraphSourceSettings, open, extra);
    },
  },
  ldap: {
    secretFields: LDAP_SECRET_FIELDS,
    validate: (input, previous) => validateLdapSource(input, previous as LdapSourceSettings | undefined) as unknown as Record<string, unknown>,
    redact: (stored) => redactLdapSource(stored as unknown as LdapSourceSettings),
    isConfigured: (stored) => typeof stored.url === 'string' && stored.url !== '',
    open: (stored, secrets) => new LdapSource(stored as unknown as LdapSourceSettings, secrets.bindPassword ?? ''),
  },
};

export function isPullKind(kind: string): kind is PullKind {
  return kind === 'graph' || kind === 'ldap';
}

/** The fields of a kind's settings that are secrets. */
export function secretFields(kind: PullKind): readonly string[] {
  return KINDS[kind].secretFields;
}

/** A replacement (PUT) starts from the defaults: only the stored secrets carry over. */
export function storedSecrets(kind: PullKind, stored: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(stored).filter(([k]) => KINDS[kind].secretFields.includes(k)));
}

function context(connectorId: string, field: string): string {
  return `connector:${connectorId}:${field}`;
}

/**
 * Validate source settings from an administrator and seal their secrets. A secret left out (or sent back
 * as the `{set: true}` the API shows) keeps its stored value.
 */
export function prepareSource(kind: PullKind, connectorId: string, input: unknown, stored: Record<string, unknown> | undefined, box: SecretBox): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new SettingsError([{ path: '', message: 'the source settings must be a JSON object' }]);
  const fields = KINDS[kind].secretFields;
  const clean: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const f of fields) {
    const v = clean[f];
    if (v !== null && typeof v === 'object' && (v as { set?: unknown }).set === true) delete clean[f];
    if (typeof v === 'string' && isSealed(v)) throw new SettingsError([{ path: f, message: 'give the secret itself, not a sealed value' }]);
  }
  const previous = stored && Object.keys(stored).length ? stored : undefined;
  const valid = KINDS[kind].validate(clean, previous);
  for (const f of fields) {
    const v = valid[f];
    if (typeof v === 'string' && !isSealed(v)) valid[f] = box.encrypt(v, context(connectorId, f));
  }
  return valid;
}

/** Settings as the admin API shows them: secrets only said to be set. */
export function redactSource(kind: PullKind, stored: Record<string, unknown>): Record<string, unknown> {
  if (Object.keys(stored).length === 0) return {};
  return KINDS[kind].redact(stored);
}

export function sourceSchedule(kind: PullKind, stored: Record<string, unknown>): ScheduleSettings {
  const s = stored.schedule as ScheduleSettings | undefined;
  return s ?? { kind: 'off' };
}

/** Open a source for a run: secrets are opened here and live only in the client. */
export function openSource(kind: PullKind, connectorId: string, stored: Record<string, unknown>, box: SecretBox, extra: Partial<GraphClientOptions> = {}): PullSource {
  const k = KINDS[kind];
  if (!k.isConfigured(stored)) throw new Error(`connector ${connectorId} has no source settings yet`);
  const secrets: Secrets = {};
  for (const f of k.secretFields) if (typeof stored[f] === 'string') secrets[f] = box.decrypt(stored[f], context(connectorId, f));
  return k.open(stored, secrets, extra);
}

/** Sealed values to re-seal with the current key (key rotation). */
export function resealSource(kind: PullKind, connectorId: string, stored: Record<string, unknown>, box: SecretBox): Record<string, unknown> | undefined {
  let changed = false;
  const out = { ...stored };
  for (const f of KINDS[kind].secretFields) {
    const v = out[f];
    if (typeof v === 'string' && isSealed(v) && box.needsReencrypt(v)) {
      out[f] = box.encrypt(box.decrypt(v, context(connectorId, f)), context(connectorId, f));
      changed = true;
    }
  }
  return changed ? out : undefined;
}

/**
 * Key rotation: every sealed value of every pull connector sealed again with the current key. A row is
 * replaced only if nobody changed it meanwhile (compare and swap); a changed row is read again. Answers
 * how many values were sealed again, and the ids of the keys still in use afterwards.
 */
export async function resealAllSources(db: Db, box: SecretBox): Promise<{ resealed: number; keysInUse: string[] }> {
  let resealed = 0;
  const inUse = new Set<string>();
  const rows = await db.kysely.selectFrom('connectors').select(['id', 'kind']).execute();
  for (const { id, kind } of rows) {
    if (!isPullKind(kind)) continue;
    for (let attempt = 0; ; attempt++) {
      const row = await db.kysely.selectFrom('connectors').select('source').where('id', '=', id).executeTakeFirst();
      if (!row) break;
      const stored = JSON.parse(row.source) as Record<string, unknown>;
      const next = resealSource(kind, id, stored, box);
      if (next) {
        const done = await db.kysely.updateTable('connectors').set({ source: JSON.stringify(next) }).where('id', '=', id).where('source', '=', row.source).executeTakeFirst();
        if (Number(done.numUpdatedRows) === 0) {
          if (attempt > 10) throw new Error(`connector ${id} keeps changing; run the rotation again`);
          continue;
        }
        resealed += KINDS[kind].secretFields.filter((f) => typeof stored[f] === 'string' && stored[f] !== next[f]).length;
      }
      for (const f of KINDS[kind].secretFields) {
        const v = (next ?? stored)[f];
        if (typeof v === 'string' && isSealed(v)) inUse.add(SecretBox.sealedWith(v));
      }
      break;
    }
  }
  return { resealed, keysInUse: [...inUse] };
}
