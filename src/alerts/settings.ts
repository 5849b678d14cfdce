// Alert settings: where alerts go (a webhook, e-mail by SMTP) and when they are raised. Stored as JSON in
// app_settings under the name 'alerts'. The webhook signing secret and the SMTP password are sealed with the
// service's SecretBox, with `settings:alerts:<field>` as associated data, and shown only as {"set": …}.
//
// A PUT replaces the whole document: defaults fill what is left out, except the two secrets, which keep
// their stored value when left out (or sent back as the {"set": true} a GET shows) and are cleared by null.

import net from 'node:net';
import type { Kysely } from 'kysely';
import type { SettingsIssue } from '../domain/settings-validate.ts';
import { SettingsError, isPemCertificate } from '../domain/settings-validate.ts';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import type { SecretBox } from '../store/secrets.ts';
import { SecretError, isSealed } from '../store/secrets.ts';

export const ALERT_SETTINGS_NAME = 'alerts';

export type SmtpSecurity = 'tls' | 'starttls' | 'none';

/** The settings as stored: secrets sealed (null when not set). */
export interface StoredAlertSettings {
  webhook: { enabled: boolean; url: string | null; secret: string | null };
  email: {
    enabled: boolean;
    host: string | null;
    port: number;
    /** tls: TLS from the first byte (usually 465); starttls: upgrade required (usually 587); none: plain (a local relay) */
    security: SmtpSecurity;
    username: string | null;
    password: string | null;
    from: string | null;
    to: string[];
    /** extra CA certificate (PEM) to trust for the SMTP server, e.g. an internal relay's own CA */
    caCertificate: string | null;
  };
  rules: {
    /** consecutive failed or aborted runs of one connector that raise an alert */
    failingRuns: number;
    /** a Graph client secret or certificate expiring within this many days raises an alert */
    credentialExpiryDays: number;
  };
}

/** The settings as the API shows them: secrets only said to be set. */
export interface AlertSettingsView {
  webhook: { enabled: boolean; url: string | null; secret: { set: boolean } };
  email: Omit<StoredAlertSettings['email'], 'password'> & { password: { set: boolean } };
  rules: StoredAlertSettings['rules'];
}

/** The secrets, opened, for sending. */
export interface AlertSecrets {
  webhookSecret: string | null;
  emailPassword: string | null;
}

export const ALERT_DEFAULTS: StoredAlertSettings = {
  webhook: { enabled: false, url: null, secret: null },
  email: { enabled: false, host: null, port: 587, security: 'starttls', username: null, password: null, from: null, to: [], caCertificate: null },
  rules: { failingRuns: 3, credentialExpiryDays: 30 },
};

const SECRET_PATHS = ['webhook.secret', 'email.password'] as const;
type SecretPath = (typeof SECRET_PATHS)[number];

export const MAX_RECIPIENTS = 50;
const HOSTNAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
// deliberately plain: local@domain, no display names, comments or quoted local parts (nor CR/LF)
const ADDRESS = /^[^\s@<>()[\]\\,;:"]{1,64}@[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/i;

/** The associated data a secret field is sealed with: a value copied into another field does not open. */
export function secretContext(path: SecretPath): string {
  return `settings:alerts:${path}`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function clone(s: StoredAlertSettings): StoredAlertSettings {
  return { webhook: { ...s.webhook }, email: { ...s.email, to: [...s.email.to] }, rules: { ...s.rules } };
}

export function isEmailAddress(value: string): boolean {
  return value.length <= 254 && ADDRESS.test(value);
}

/**
 * Validate settings from an administrator against what is stored, and seal the secrets given. Every
 * problem is reported at once, with its path (`email.to[2]`); nothing is sealed unless all is well.
 */
export function validateAlertSettings(input: unknown, stored: StoredAlertSettings, box: SecretBox): StoredAlertSettings {
  const issues: SettingsIssue[] = [];
  const bad = (path: string, message: string) => issues.push({ path, message });
  const reported = (path: string) => issues.some((i) => i.path === path || i.path.startsWith(`${path}[`));
  if (!isObject(input)) throw new SettingsError([{ path: '', message: 'the alert settings must be a JSON object' }]);

  const out = clone(ALERT_DEFAULTS);
  out.webhook.secret = stored.webhook.secret;
  out.email.password = stored.email.password;
  const sealing: { path: SecretPath; value: string }[] = [];

  const section = (name: 'webhook' | 'email' | 'rules', fields: readonly string[]): Record<string, unknown> => {
    const v = input[name];
    if (v === undefined) return {};
    if (!isObject(v)) {
      bad(name, 'must be an object');
      return {};
    }
    for (const k of Object.keys(v)) if (!fields.includes(k)) bad(`${name}.${k}`, `unknown setting '${k}'`);
    return v;
  };
  for (const k of Object.keys(input)) if (!['webhook', 'email', 'rules'].includes(k)) bad(k, `unknown setting '${k}'`);

  const bool = (obj: Record<string, unknown>, path: string, k: string, fallback: boolean): boolean => {
    const v = obj[k];
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') {
      bad(`${path}.${k}`, 'must be true or false');
      return fallback;
    }
    return v;
  };
  /** a trimmed, non-empty string or null; undefined when absent or wrong */
  const text = (obj: Record<string, unknown>, path: string, k: string, max: number): string | null | undefined => {
    const v = obj[k];
    if (v === undefined || v === null) return v;
    if (typeof v !== 'string') {
      bad(`${path}.${k}`, 'must be a string or null');
      return undefined;
    }
    const t = v.trim();
    if (t === '') return null;
    if (t.length > max) {
      bad(`${path}.${k}`, `must be at most ${max} characters`);
      return undefined;
    }
    if ([...t].some((ch) => ch.charCodeAt(0) < 0x20 || ch.charCodeAt(0) === 0x7f)) {
      bad(`${path}.${k}`, 'must not contain control characters (such as line breaks)');
      return undefined;
    }
    return t;
  };
  const whole = (obj: Record<string, unknown>, path: string, k: string, min: number, max: number, fallback: number): number => {
    const v = obj[k];
    if (v === undefined) return fallback;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      bad(`${path}.${k}`, `must be a whole number from ${min} to ${max}`);
      return fallback;
    }
    return v;
  };
  /** a secret: a string sets it, null clears it, absent or {"set": true} keeps it */
  const secret = (obj: Record<string, unknown>, path: SecretPath, k: string): string | null | undefined => {
    const v = obj[k];
    if (v === undefined || (isObject(v) && v.set === true && Object.keys(v).length === 1)) return undefined;
    if (v === null) return null;
    if (typeof v !== 'string' || v === '') {
      bad(path, 'must be the secret (a non-empty string), null to clear it, or left out to keep it');
      return undefined;
    }
    if (v.length > 1024) {
      bad(path, 'must be at most 1024 characters');
      return undefined;
    }
    if (isSealed(v)) {
      bad(path, 'must be the secret itself, not a sealed value');
      return undefined;
    }
    return v;
  };

  // ------------------------------------------------------------------------------------------ webhook
  const w = section('webhook', ['enabled', 'url', 'secret']);
  out.webhook.enabled = bool(w, 'webhook', 'enabled', false);
  const url = text(w, 'webhook', 'url', 2048);
  if (typeof url === 'string') {
    let parsed: URL | undefined;
    try {
      parsed = new URL(url);
    } catch {
      bad('webhook.url', 'must be an http:// or https:// URL');
    }
    if (parsed && parsed.protocol !== 'http:' && parsed.protocol !== 'https:') bad('webhook.url', 'must be an http:// or https:// URL');
    else if (parsed && (parsed.username || parsed.password)) bad('webhook.url', 'must not contain a user name or password (they would be shown and logged); use the signing secret');
    else if (parsed) out.webhook.url = parsed.toString();
  }
  if (out.webhook.enabled && out.webhook.url === null && !reported('webhook.url')) bad('webhook.url', 'is required when the webhook is enabled');
  const ws = secret(w, 'webhook.secret', 'secret');
  if (ws === null) out.webhook.secret = null;
  else if (ws !== undefined) sealing.push({ path: 'webhook.secret', value: ws });

  // ------------------------------------------------------------------------------------------ e-mail
  const e = section('email', ['enabled', 'host', 'port', 'security', 'username', 'password', 'from', 'to', 'caCertificate']);
  out.email.enabled = bool(e, 'email', 'enabled', false);
  const host = text(e, 'email', 'host', 253);
  if (typeof host === 'string') {
    if (net.isIP(host) === 0 && !HOSTNAME.test(host)) bad('email.host', 'must be a host name or an IP address');
    else out.email.host = host;
  }
  if (out.email.enabled && out.email.host === null && !reported('email.host')) bad('email.host', 'is required when e-mail is enabled');
  out.email.port = whole(e, 'email', 'port', 1, 65535, ALERT_DEFAULTS.email.port);
  if (e.security !== undefined) {
    if (e.security === 'tls' || e.security === 'starttls' || e.security === 'none') out.email.security = e.security;
    else bad('email.security', "must be one of 'tls', 'starttls', 'none'");
  }
  const username = text(e, 'email', 'username', 256);
  if (typeof username === 'string') out.email.username = username;
  if (typeof username === 'string' && out.email.security === 'none') {
    bad('email.username', "a password is never sent over an unencrypted connection: choose security 'tls' or 'starttls', or leave the username empty");
  }
  const ep = secret(e, 'email.password', 'password');
  if (ep === null) out.email.password = null;
  else if (ep !== undefined) sealing.push({ path: 'email.password', value: ep });
  const from = text(e, 'email', 'from', 254);
  if (typeof from === 'string') {
    if (!isEmailAddress(from)) bad('email.from', 'must be an e-mail address (name@example.com)');
    else out.email.from = from;
  }
  if (out.email.enabled && out.email.from === null && !reported('email.from')) bad('email.from', 'is required when e-mail is enabled');
  if (e.to !== undefined) {
    if (!Array.isArray(e.to)) bad('email.to', 'must be a list of e-mail addresses');
    else {
      if (e.to.length > MAX_RECIPIENTS) bad('email.to', `at most ${MAX_RECIPIENTS} recipients`);
      e.to.forEach((a: unknown, i) => {
        if (typeof a !== 'string' || !isEmailAddress(a.trim())) bad(`email.to[${i}]`, 'must be an e-mail address (name@example.com)');
      });
      const seen = new Set<string>();
      out.email.to = e.to
        .filter((a: unknown): a is string => typeof a === 'string' && isEmailAddress(a.trim()))
        .map((a) => a.trim())
        .filter((a) => !seen.has(a.toLowerCase()) && seen.add(a.toLowerCase()));
    }
  }
  if (out.email.enabled && out.email.to.length === 0 && !reported('email.to')) bad('email.to', 'needs at least one recipient when e-mail is enabled');
  const ca = e.caCertificate;
  if (ca !== undefined && ca !== null) {
    if (typeof ca !== 'string' || !isPemCertificate(ca)) bad('email.caCertificate', 'must be a PEM certificate (-----BEGIN CERTIFICATE-----) or null');
    else out.email.caCertificate = ca;
  }

  // ------------------------------------------------------------------------------------------ rules
  const r = section('rules', ['failingRuns', 'credentialExpiryDays']);
  out.rules.failingRuns = whole(r, 'rules', 'failingRuns', 1, 100, ALERT_DEFAULTS.rules.failingRuns);
  out.rules.credentialExpiryDays = whole(r, 'rules', 'credentialExpiryDays', 1, 365, ALERT_DEFAULTS.rules.credentialExpiryDays);

  if (issues.length) throw new SettingsError(issues);
  for (const { path, value } of sealing) {
    const sealed = box.encrypt(value, secretContext(path));
    if (path === 'webhook.secret') out.webhook.secret = sealed;
    else out.email.password = sealed;
  }
  return out;
}

/** The settings as the API shows them. */
export function redactAlertSettings(s: StoredAlertSettings): AlertSettingsView {
  const { password, ...email } = s.email;
  return {
    webhook: { enabled: s.webhook.enabled, url: s.webhook.url, secret: { set: s.webhook.secret !== null } },
    email: { ...email, to: [...email.to], password: { set: password !== null } },
    rules: { ...s.rules },
  };
}

/** Parse a stored document, completed from the defaults (a field added later reads as its default). */
function parseStored(value: string): StoredAlertSettings {
  const raw = JSON.parse(value) as Partial<Record<keyof StoredAlertSettings, Record<string, unknown>>>;
  return {
    webhook: { ...ALERT_DEFAULTS.webhook, ...(raw.webhook ?? {}) } as StoredAlertSettings['webhook'],
    email: { ...ALERT_DEFAULTS.email, ...(raw.email ?? {}) } as StoredAlertSettings['email'],
    rules: { ...ALERT_DEFAULTS.rules, ...(raw.rules ?? {}) } as StoredAlertSettings['rules'],
  };
}

export async function loadAlertSettings(db: Db | Kysely<Database>): Promise<StoredAlertSettings> {
  const k = 'kysely' in db ? db.kysely : db;
  const row = await k.selectFrom('app_settings').select('value').where('name', '=', ALERT_SETTINGS_NAME).executeTakeFirst();
  return row ? parseStored(row.value) : clone(ALERT_DEFAULTS);
}

export async function storeAlertSettings(trx: Kysely<Database>, s: StoredAlertSettings): Promise<void> {
  const at = now();
  await trx
    .insertInto('app_settings')
    .values({ name: ALERT_SETTINGS_NAME, value: JSON.stringify(s), updated_at: at })
    .onConflict((oc) => oc.column('name').doUpdateSet({ value: JSON.stringify(s), updated_at: at }))
    .execute();
}

/** Every leaf that differs, by path (`email.to`), for the audit log. */
export function changedFields(before: StoredAlertSettings, after: StoredAlertSettings): string[] {
  const out: string[] = [];
  for (const sec of ['webhook', 'email', 'rules'] as const) {
    const a = before[sec] as unknown as Record<string, unknown>;
    const b = after[sec] as unknown as Record<string, unknown>;
    for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) if (JSON.stringify(a[k]) !== JSON.stringify(b[k])) out.push(`${sec}.${k}`);
  }
  return out;
}

/**
 * What an audit entry says about a change: the paths changed, and their values before and after, except
 * for secrets, which are only said to be set ("(secret)") or not (null).
 */
export function auditChange(before: StoredAlertSettings, after: StoredAlertSettings): { changed: string[]; before: Record<string, unknown>; after: Record<string, unknown> } {
  const changed = changedFields(before, after);
  const shown = (s: StoredAlertSettings) =>
    Object.fromEntries(
      changed.map((p) => {
        const [sec, k] = p.split('.') as [keyof StoredAlertSettings, string];
        const v = (s[sec] as unknown as Record<string, unknown>)[k];
        return [p, (SECRET_PATHS as readonly string[]).includes(p) ? (v === null || v === undefined ? null : '(secret)') : (v ?? null)];
      }),
    );
  return { changed, before: shown(before), after: shown(after) };
}

/** The secrets, opened. A secret that does not open throws a SecretError naming the field, never the value. */
export function openAlertSecrets(s: StoredAlertSettings, box: SecretBox): AlertSecrets {
  return {
    webhookSecret: s.webhook.secret === null ? null : box.decrypt(s.webhook.secret, secretContext('webhook.secret')),
    emailPassword: s.email.password === null ? null : box.decrypt(s.email.password, secretContext('email.password')),
  };
}

/** Open one secret for a channel; a failure is a sentence for the administrator, not an exception. */
export function openSecret(sealed: string | null, path: SecretPath, box: SecretBox): { value: string | null } | { error: string } {
  if (sealed === null) return { value: null };
  try {
    return { value: box.decrypt(sealed, secretContext(path)) };
  } catch (e) {
    const why = e instanceof SecretError ? e.message : String(e);
    return { error: `the stored ${path === 'webhook.secret' ? 'webhook signing secret' : 'SMTP password'} cannot be opened (${why}); enter it again in the alert settings` };
  }
}

/**
 * Key rotation: the sealed secrets of the alert settings sealed again with the current key. Answers how
 * many values were sealed again and the ids of the keys still in use afterwards, as resealAllSources does.
 * Compare and swap: a concurrent change of the settings is read again.
 */
export async function resealAlertSecrets(db: Db, box: SecretBox): Promise<{ resealed: number; keysInUse: string[] }> {
  for (;;) {
    const row = await db.kysely.selectFrom('app_settings').select('value').where('name', '=', ALERT_SETTINGS_NAME).executeTakeFirst();
    if (!row) return { resealed: 0, keysInUse: [] };
    const s = parseStored(row.value);
    let resealed = 0;
    const inUse = new Set<string>();
    for (const path of SECRET_PATHS) {
      const sealed = path === 'webhook.secret' ? s.webhook.secret : s.email.password;
      if (sealed === null) continue;
      if (!box.needsReencrypt(sealed)) {
        inUse.add(box.currentKeyId);
        continue;
      }
      const again = box.encrypt(box.decrypt(sealed, secretContext(path)), secretContext(path));
      if (path === 'webhook.secret') s.webhook.secret = again;
      else s.email.password = again;
      inUse.add(box.currentKeyId);
      resealed++;
    }
    if (resealed === 0) return { resealed, keysInUse: [...inUse] };
    const res = await db.kysely
      .updateTable('app_settings')
      .set({ value: JSON.stringify(s), updated_at: now() })
      .where('name', '=', ALERT_SETTINGS_NAME)
      .where('value', '=', row.value)
      .executeTakeFirst();
    if (Number(res.numUpdatedRows) === 1) return { resealed, keysInUse: [...inUse] };
  }
}
