// A target's stored settings: validated, the secret sealed with a context naming the target (a sealed
// value copied to another target does not open), shown redacted, and opened into a connection only when
// the delivery needs it.

import { SettingsError } from '../domain/settings-validate.ts';
import type { Db } from '../store/db.ts';
import { SecretBox, isSealed } from '../store/secrets.ts';
import type { TargetSettings } from './settings.ts';
import { defaultTargetSettings, redactTargetSettings, validateTargetSettings } from './settings.ts';
import type { AppConnection, TargetKind } from './types.ts';
import { TARGET_KINDS } from './types.ts';

export function isTargetKind(kind: unknown): kind is TargetKind {
  return typeof kind === 'string' && (TARGET_KINDS as readonly string[]).includes(kind);
}

function secretContext(targetId: string): string {
  return `target:${targetId}:secret`;
}

/**
 * Validate settings from an administrator and seal the secret. `merge`: a partial update over the stored
 * settings (PATCH); otherwise a replacement of everything but the stored secret (PUT, create).
 */
export function prepareTargetSettings(kind: TargetKind, targetId: string, input: unknown, stored: Record<string, unknown> | undefined, box: SecretBox, merge: boolean): Record<string, unknown> {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw new SettingsError([{ path: '', message: 'the target settings must be a JSON object' }]);
  const clean: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  const secret = clean.secret;
  if (secret !== null && typeof secret === 'object' && (secret as { set?: unknown }).set === true) delete clean.secret;
  if (typeof secret === 'string' && isSealed(secret)) throw new SettingsError([{ path: 'secret', message: 'give the secret itself, not a sealed value' }]);
  const previous = stored && Object.keys(stored).length ? (stored as unknown as TargetSettings) : undefined;
  const base = merge ? previous : previous?.secret !== undefined ? { ...defaultTargetSettings(kind), secret: previous.secret } : undefined;
  const valid = validateTargetSettings(kind, clean, base) as unknown as Record<string, unknown>;
  if (typeof valid.secret === 'string' && !isSealed(valid.secret)) valid.secret = box.encrypt(valid.secret, secretContext(targetId));
  return valid;
}

export function redactStoredTarget(stored: Record<string, unknown>): Record<string, unknown> {
  return redactTargetSettings(stored as unknown as TargetSettings);
}

/** The stored settings as the delivery uses them (the secret still sealed). */
export function targetSettings(stored: Record<string, unknown>): TargetSettings {
  return stored as unknown as TargetSettings;
}

/** Open the connection: the secret is decrypted here and lives only in the client. */
export function openConnection(targetId: string, s: TargetSettings, box: SecretBox): AppConnection {
  if (!s.secret) throw new Error(`target ${targetId} has no credentials`);
  const secret = box.decrypt(s.secret, secretContext(targetId));
  return {
    baseUrl: s.baseUrl,
    auth: s.authType === 'basic' ? { type: 'basic', username: s.username ?? '', password: secret } : { type: 'token', token: secret },
    timeoutMs: s.timeoutSeconds * 1000,
    retries: s.retries,
    maxRetryWaitMs: 60_000,
    ...(s.caCertificate ? { caCertificate: s.caCertificate } : {}),
    ...(s.defaultProjectLead ? { defaultProjectLead: s.defaultProjectLead } : {}),
    ...(s.defaultComponentLead ? { defaultComponentLead: s.defaultComponentLead } : {}),
  };
}

/** Every target's secret sealed again with the current key (key rotation); compare-and-swap per target. */
export async function resealAllTargets(db: Db, box: SecretBox): Promise<{ resealed: number; keysInUse: string[] }> {
  let resealed = 0;
  const inUse = new Set<string>();
  for (const { id } of await db.kysely.selectFrom('targets').select('id').execute()) {
    for (let attempt = 0; ; attempt++) {
      const row = await db.kysely.selectFrom('targets').select('settings').where('id', '=', id).executeTakeFirst();
      if (!row) break;
      const stored = JSON.parse(row.settings) as Record<string, unknown>;
      const v = stored.secret;
      if (typeof v !== 'string' || !isSealed(v)) break;
      if (!box.needsReencrypt(v)) {
        inUse.add(SecretBox.sealedWith(v));
        break;
      }
      const next = { ...stored, secret: box.encrypt(box.decrypt(v, secretContext(id)), secretContext(id)) };
      const done = await db.kysely.updateTable('targets').set({ settings: JSON.stringify(next) }).where('id', '=', id).where('settings', '=', row.settings).executeTakeFirst();
      if (Number(done.numUpdatedRows) === 0) {
        if (attempt > 10) throw new Error(`target ${id} keeps changing; run the rotation again`);
        continue;
      }
      resealed++;
      inUse.add(SecretBox.sealedWith(next.secret));
      break;
    }
  }
  return { resealed, keysInUse: [...inUse] };
}
