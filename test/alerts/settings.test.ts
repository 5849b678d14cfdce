// Alert settings as pure validation: defaults, every problem named with its path, secrets set, kept and
// cleared, sealed under their own field, and shown only as {"set": …}.

import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SettingsError } from '../../src/domain/settings-validate.ts';
import { SecretBox, newSecretKey } from '../../src/store/secrets.ts';
import type { StoredAlertSettings } from '../../src/alerts/settings.ts';
import {
  ALERT_DEFAULTS,
  auditChange,
  loadAlertSettings,
  openAlertSecrets,
  redactAlertSettings,
  resealAlertSecrets,
  secretContext,
  storeAlertSettings,
  validateAlertSettings,
} from '../../src/alerts/settings.ts';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, openTestStore } from '../support/store.ts';

const box = SecretBox.forTests();

function issues(input: unknown, stored: StoredAlertSettings = ALERT_DEFAULTS): { path: string; message: string }[] {
  try {
    validateAlertSettings(input, stored, box);
  } catch (e) {
    if (e instanceof SettingsError) return e.errors;
    throw e;
  }
  return [];
}

const fullEmail = { enabled: true, host: 'smtp.example.com', port: 587, security: 'starttls', username: 'alerts', password: 'smtp-pass', from: 'usersync@example.com', to: ['ops@example.com'] };

describe('alert settings', () => {
  it('defaults to no channel, 3 failing runs and 30 days', () => {
    const s = validateAlertSettings({}, ALERT_DEFAULTS, box);
    expect(s).toEqual(ALERT_DEFAULTS);
    expect(redactAlertSettings(s)).toEqual({
      webhook: { enabled: false, url: null, secret: { set: false } },
      email: { enabled: false, host: null, port: 587, security: 'starttls', username: null, password: { set: false }, from: null, to: [], caCertificate: null },
      rules: { failingRuns: 3, credentialExpiryDays: 30 },
    });
  });

  it('names every problem with its path, all at once', () => {
    const found = issues({
      webhook: { enabled: true, url: 'ftp://hooks.example.com/x', colour: 'red' },
      email: { enabled: true, host: 'smtp example', port: 70000, security: 'ssl', from: 'not an address', to: ['ops@example.com', 'nobody', 42] },
      rules: { failingRuns: 0, credentialExpiryDays: 1.5 },
      extra: true,
    });
    expect(found.map((i) => i.path).sort()).toEqual(
      ['extra', 'webhook.colour', 'webhook.url', 'email.host', 'email.port', 'email.security', 'email.from', 'email.to[1]', 'email.to[2]', 'rules.failingRuns', 'rules.credentialExpiryDays'].sort(),
    );
    expect(found.find((i) => i.path === 'webhook.url')!.message).toMatch(/http:\/\/ or https:\/\//);
    expect(found.find((i) => i.path === 'email.port')!.message).toBe('must be a whole number from 1 to 65535');
    expect(found.find((i) => i.path === 'rules.failingRuns')!.message).toBe('must be a whole number from 1 to 100');
  });

  it('requires what an enabled channel needs', () => {
    expect(issues({ webhook: { enabled: true } })).toEqual([{ path: 'webhook.url', message: 'is required when the webhook is enabled' }]);
    expect(issues({ email: { enabled: true, to: [] } }).map((i) => i.path)).toEqual(['email.host', 'email.from', 'email.to']);
    expect(issues({ email: { ...fullEmail, to: [] } })).toEqual([{ path: 'email.to', message: 'needs at least one recipient when e-mail is enabled' }]);
    // a disabled channel may be incomplete
    expect(issues({ email: { enabled: false, host: 'smtp.example.com' } })).toEqual([]);
  });

  it('refuses what would leak or be misread: credentials in the URL, a password over plain SMTP, line breaks, too many recipients', () => {
    expect(issues({ webhook: { url: 'https://user:pw@hooks.example.com/x' } }).map((i) => i.path)).toEqual(['webhook.url']);
    expect(issues({ email: { ...fullEmail, security: 'none' } }).map((i) => i.path)).toEqual(['email.username']);
    expect(issues({ email: { ...fullEmail, host: 'smtp.example.com\r\nRCPT TO:<x@evil.test>' } }).map((i) => i.path)).toEqual(['email.host']);
    expect(issues({ email: { ...fullEmail, to: Array.from({ length: 51 }, (_, i) => `u${i}@example.com`) } }).map((i) => i.path)).toEqual(['email.to']);
    expect(issues({ email: { ...fullEmail, caCertificate: 'not a certificate' } }).map((i) => i.path)).toEqual(['email.caCertificate']);
    expect(issues({ webhook: { secret: '' } }).map((i) => i.path)).toEqual(['webhook.secret']);
    const sealed = box.encrypt('x', 'elsewhere');
    expect(issues({ webhook: { secret: sealed } })).toEqual([{ path: 'webhook.secret', message: 'must be the secret itself, not a sealed value' }]);
  });

  it('seals secrets under their own field; keeps them when left out or sent back as {"set": true}; clears them with null', () => {
    const first = validateAlertSettings({ webhook: { enabled: true, url: 'https://hooks.example.com/usersync', secret: 'hook-secret' }, email: fullEmail }, ALERT_DEFAULTS, box);
    expect(first.webhook.secret).toMatch(/^enc:v1:/);
    expect(first.email.password).toMatch(/^enc:v1:/);
    expect(JSON.stringify(first)).not.toContain('hook-secret');
    expect(JSON.stringify(first)).not.toContain('smtp-pass');
    expect(openAlertSecrets(first, box)).toEqual({ webhookSecret: 'hook-secret', emailPassword: 'smtp-pass' });
    // a sealed value moved to the other field does not open
    expect(() => box.decrypt(first.webhook.secret!, secretContext('email.password'))).toThrow(/does not decrypt/);

    const view = redactAlertSettings(first);
    expect(view.webhook.secret).toEqual({ set: true });
    expect(view.email.password).toEqual({ set: true });
    // the GET answer sent back as it is keeps both secrets
    const again = validateAlertSettings(view, first, box);
    expect(again.webhook.secret).toBe(first.webhook.secret);
    expect(again.email.password).toBe(first.email.password);
    const { password: _p, ...withoutPassword } = fullEmail;
    const kept = validateAlertSettings({ webhook: { enabled: true, url: 'https://hooks.example.com/usersync' }, email: withoutPassword }, first, box);
    expect(kept.email.password).toBe(first.email.password);
    const cleared = validateAlertSettings({ webhook: { enabled: true, url: 'https://hooks.example.com/usersync', secret: null }, email: { ...fullEmail, password: null } }, first, box);
    expect(cleared.webhook.secret).toBeNull();
    expect(cleared.email.password).toBeNull();
  });

  it('audits the paths changed and their values, never a secret', () => {
    const before = validateAlertSettings({ email: fullEmail }, ALERT_DEFAULTS, box);
    const after = validateAlertSettings({ email: { ...fullEmail, password: 'new-pass', to: ['ops@example.com', 'oncall@example.com'] }, rules: { failingRuns: 5 } }, before, box);
    const change = auditChange(before, after);
    expect(change.changed).toEqual(['email.password', 'email.to', 'rules.failingRuns']);
    expect(change.before).toEqual({ 'email.password': '(secret)', 'email.to': ['ops@example.com'], 'rules.failingRuns': 3 });
    expect(change.after).toEqual({ 'email.password': '(secret)', 'email.to': ['ops@example.com', 'oncall@example.com'], 'rules.failingRuns': 5 });
    expect(JSON.stringify(change)).not.toMatch(/smtp-pass|new-pass|enc:v1/);
  });
});

describe.each(DIALECTS)('alert settings stored on %s', (dialect) => {
  let store: TestStore;
  beforeEach(async () => {
    store = await openTestStore(dialect);
  });
  afterEach(async () => store?.cleanup());

  it('reads the defaults before anything is saved, then what was saved', async () => {
    expect(await loadAlertSettings(store.db)).toEqual(ALERT_DEFAULTS);
    const s = validateAlertSettings({ email: fullEmail, rules: { credentialExpiryDays: 7 } }, ALERT_DEFAULTS, box);
    await store.db.transaction((trx) => storeAlertSettings(trx, s));
    await store.db.transaction((trx) => storeAlertSettings(trx, s));
    expect(await loadAlertSettings(store.db)).toEqual(s);
  });

  it('seals the secrets again with a new key (key rotation), so the old key can go', async () => {
    const oldKey = newSecretKey();
    const newKey = newSecretKey();
    const before = new SecretBox([oldKey]);
    const s = validateAlertSettings({ webhook: { url: 'https://hooks.example.com/x', secret: 'hook-secret' }, email: fullEmail }, ALERT_DEFAULTS, before);
    await store.db.transaction((trx) => storeAlertSettings(trx, s));
    const rotating = new SecretBox([newKey, oldKey]);
    expect(await resealAlertSecrets(store.db, rotating)).toEqual({ resealed: 2, keysInUse: [rotating.currentKeyId] });
    expect(await resealAlertSecrets(store.db, rotating)).toEqual({ resealed: 0, keysInUse: [rotating.currentKeyId] });
    expect(openAlertSecrets(await loadAlertSettings(store.db), new SecretBox([newKey]))).toEqual({ webhookSecret: 'hook-secret', emailPassword: 'smtp-pass' });
  });
});
