// The pull source kinds: how their settings are validated, which fields are secrets (sealed at rest with
// a context naming the connector and field, so a sealed value copied to another connector does not
// open), how an administrator sees them, and how a source is opened for a run.

import type { ScheduleSettings } from '../domain/schedule.ts';
import { SettingsError } from '../domain/settings-validate.ts';
import type { SecretBox } from '../store/secrets.ts';
import { isSealed } from '../store/secrets.ts';
import type { GraphClientOptions } from './graph/client.ts';
import type { GraphSourceSettings } from './graph/config.ts';
import { GRAPH_SECRET_FIELDS, redactGraphSource, validateGraphSource } from './graph/config.ts';
import { GraphSource } from './graph/source.ts';
import type { PullSource } from '../sync/source.ts';

export type PullKind = 'graph';

export function isPullKind(kind: string): kind is PullKind {
  return kind === 'graph';
}

const SECRET_FIELDS: Record<PullKind, readonly string[]> = { graph: GRAPH_SECRET_FIELDS };

/** The fields of a kind's settings that are secrets. */
export function secretFields(kind: PullKind): readonly string[] {
  return SECRET_FIELDS[kind];
}

/** A replacement (PUT) starts from the defaults: only the stored secrets carry over. */
export function storedSecrets(kind: PullKind, stored: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(stored).filter(([k]) => SECRET_FIELDS[kind].includes(k)));
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
  const clean: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const f of SECRET_FIELDS[kind]) {
    const v = clean[f];
    if (v !== null && typeof v === 'object' && (v as { set?: unknown }).set === true) delete clean[f];
    if (typeof v === 'string' && isSealed(v)) throw new SettingsError([{ path: f, message: 'give the secret itself, not a sealed value' }]);
  }
  const previous = stored && Object.keys(stored).length ? (stored as unknown as GraphSourceSettings) : undefined;
  const valid = validateGraphSource(clean, previous) as unknown as Record<string, unknown>;
  for (const f of SECRET_FIELDS[kind]) {
    const v = valid[f];
    if (typeof v === 'string' && !isSealed(v)) valid[f] = box.encrypt(v, context(connectorId, f));
  }
  return valid;
}

/** Settings as the admin API shows them: secrets only said to be set. */
export function redactSource(kind: PullKind, stored: Record<string, unknown>): Record<string, unknown> {
  if (Object.keys(stored).length === 0) return {};
  return redactGraphSource(stored as unknown as GraphSourceSettings);
}

export function sourceSchedule(kind: PullKind, stored: Record<string, unknown>): ScheduleSettings {
  const s = stored.schedule as ScheduleSettings | undefined;
  return s ?? { kind: 'off' };
}

export function isConfigured(stored: Record<string, unknown>): boolean {
  return typeof stored.tenantId === 'string' && stored.tenantId !== '';
}

/** Open a source for a run: secrets are opened here and live only in the client. */
export function openSource(kind: PullKind, connectorId: string, stored: Record<string, unknown>, box: SecretBox, extra: Partial<GraphClientOptions> = {}): PullSource {
  if (!isConfigured(stored)) throw new Error(`connector ${connectorId} has no source settings yet`);
  const settings = stored as unknown as GraphSourceSettings;
  const open = (f: 'clientSecret' | 'privateKey') => (typeof settings[f] === 'string' ? box.decrypt(settings[f], context(connectorId, f)) : undefined);
  const secrets: { clientSecret?: string; privateKey?: string } = {};
  const secret = open('clientSecret');
  if (secret !== undefined) secrets.clientSecret = secret;
  const key = open('privateKey');
  if (key !== undefined) secrets.privateKey = key;
  return new GraphSource(settings, secrets, extra);
}

/** Sealed values to re-seal with the current key (key rotation). */
export function resealSource(kind: PullKind, connectorId: string, stored: Record<string, unknown>, box: SecretBox): Record<string, unknown> | undefined {
  let changed = false;
  const out = { ...stored };
  for (const f of SECRET_FIELDS[kind]) {
    const v = out[f];
    if (typeof v === 'string' && isSealed(v) && box.needsReencrypt(v)) {
      out[f] = box.encrypt(box.decrypt(v, context(connectorId, f)), context(connectorId, f));
      changed = true;
    }
  }
  return changed ? out : undefined;
}
