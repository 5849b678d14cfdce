// The alert monitor on both stores, delivering to a real SMTP server and a real HTTP receiver: a held run
// gives one webhook call and one e-mail; a failing connector one alert per streak; Graph secrets and
// certificates close to expiry one alert each; a receiver that fails is retried with back-off until it
// recovers, without a second e-mail; alerts raised with no channel are kept but not sent later; one
// instance at a time delivers.

import { createHmac } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db.ts';
import { SecretBox } from '../../src/store/secrets.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import { prepareSource } from '../../src/sources/registry.ts';
import { AlertMonitor, MAX_ATTEMPTS, raiseAlert } from '../../src/alerts/monitor.ts';
import { loadAlertSettings, storeAlertSettings, validateAlertSettings } from '../../src/alerts/settings.ts';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, openTestStore } from '../support/store.ts';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';
import { generateClientCertificate } from '../support/graph-emulator/index.ts';
import type { SmtpSink, WebhookReceiver } from './support.ts';
import { startSmtpSink, startWebhookReceiver } from './support.ts';

const HOOK_SECRET = 'whsec-3f9a1c';
const RECIPIENTS = ['ops@example.com', 'identity-team@example.com'];

async function configure(db: Db, box: SecretBox, sink: SmtpSink, hook: WebhookReceiver, extra: Record<string, unknown> = {}): Promise<void> {
  const s = validateAlertSettings(
    {
      webhook: { enabled: true, url: hook.url, secret: HOOK_SECRET },
      email: { enabled: true, host: '127.0.0.1', port: sink.port, security: 'none', from: 'usersync@example.com', to: RECIPIENTS },
      ...extra,
    },
    await loadAlertSettings(db),
    box,
  );
  await db.transaction((trx) => storeAlertSettings(trx, s));
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const start = Date.now();
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const payloads = (hook: WebhookReceiver): any[] => hook.requests.map((r) => JSON.parse(r.body));

describe.each(DIALECTS)('alerts on %s', (dialect) => {
  let sink: SmtpSink;
  let hook: WebhookReceiver;

  beforeEach(async () => {
    [sink, hook] = await Promise.all([startSmtpSink(), startWebhookReceiver()]);
  });
  afterEach(async () => {
    await Promise.all([sink?.close(), hook?.close()]);
  });

  describe('a run held over the deletion limit', () => {
    let server: TestServer;
    let adminToken: string;

    beforeEach(async () => {
      server = await startTestServer(dialect);
      adminToken = (await server.service.adminTokens.create('automation', 'test')).token;
    });
    afterEach(async () => server?.close());

    it('gives exactly one webhook call and one e-mail, naming the connector, the changes held and where to decide', async () => {
      for (let i = 0; i < 6; i++) {
        const res = await server.scim('/Users', { method: 'POST', body: { userName: `hold-${i}@example.com` } });
        expect(res.status).toBe(201);
      }
      await server.service.reconciler.drain();
      const res = await fetch(`${server.origin}/api/connectors/entra/settings`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ user: { condition: 'not (userName sw "hold-")' }, safety: { deletionLimit: { count: 2 } } }),
      });
      const saved = (await res.json()) as { reevaluation: { runId: string; status: string } };
      expect(saved.reevaluation.status).toBe('held');
      const runId = saved.reevaluation.runId;

      const { db, secrets } = server.service;
      // the service's own monitor (when it runs one) ticks every 30 s; this test's, every 100 ms, is the one to deliver
      await (server.service as { alerts?: { stop(): Promise<void> } }).alerts?.stop();
      await configure(db, secrets, sink, hook);
      const monitor = new AlertMonitor(db, { secrets, intervalMs: 100, publicBaseUrl: 'https://sync.example.com' });
      monitor.start();
      try {
        await waitFor('the webhook call and the e-mail', () => hook.requests.length >= 1 && sink.mails.length >= 1);
        // a few more rounds: nothing is sent again
        await new Promise((r) => setTimeout(r, 400));
      } finally {
        await monitor.stop();
      }

      expect(hook.requests).toHaveLength(1);
      expect(sink.mails).toHaveLength(1);
      const [call] = hook.requests;
      expect(call!.method).toBe('POST');
      expect(call!.path).toBe('/hooks/usersync');
      expect(call!.headers['content-type']).toBe('application/json');
      const body = JSON.parse(call!.body);
      expect(body).toMatchObject({ kind: 'held-run', connectorId: 'entra', service: 'usersync', subject: 'Connector "Entra ID": 6 changes held for approval', details: { runId, held: 6, deactivate: 6 } });
      expect(typeof body.seq).toBe('number');
      expect(body.message).toContain(`https://sync.example.com/runs/${runId}`);
      expect(body.message).toContain(`POST /api/runs/${runId}/approve`);

      // the signature is the HMAC-SHA256 of the raw body under the secret
      const expected = `sha256=${createHmac('sha256', HOOK_SECRET).update(call!.body).digest('hex')}`;
      expect(call!.headers['x-usersync-signature']).toBe(expected);
      expect(call!.headers['x-usersync-signature']).not.toBe(`sha256=${createHmac('sha256', 'another-secret').update(call!.body).digest('hex')}`);
      expect(Math.abs(Number(call!.headers['x-usersync-timestamp']) - Date.now() / 1000)).toBeLessThan(60);

      const [mail] = sink.mails;
      expect(mail!.from).toBe('usersync@example.com');
      expect(mail!.to).toEqual(RECIPIENTS);
      expect(mail!.subject).toBe('[usersync] Connector "Entra ID": 6 changes held for approval');
      expect(mail!.headers['content-type']).toMatch(/^text\/plain/);
      expect(mail!.text).toContain('6 changes (6 deactivations) are held');
      expect(mail!.text).toContain(`https://sync.example.com/runs/${runId}`);
      expect(mail!.text).toContain(`POST /api/runs/${runId}/approve`);

      const rows = await db.kysely.selectFrom('alerts').selectAll().execute();
      expect(rows).toHaveLength(1);
      expect(rows[0]).toMatchObject({ kind: 'held-run', dedupe_key: `held-run:${runId}`, connector_id: 'entra' });
      expect(rows[0]!.delivered_at).not.toBeNull();
      expect(JSON.parse(rows[0]!.deliveries)).toMatchObject({ webhook: { ok: true, attempts: 1 }, email: { ok: true, attempts: 1 } });
      // the lease is given back on stop
      expect(await db.kysely.selectFrom('leases').select('name').where('name', '=', 'alerts').execute()).toEqual([]);
    });
  });

  describe('on a store of its own', () => {
    let store: TestStore;
    let box: SecretBox;
    let clockMs: number;
    let monitor: AlertMonitor;

    beforeEach(async () => {
      store = await openTestStore(dialect);
      box = SecretBox.forTests();
      clockMs = 0;
      monitor = new AlertMonitor(store.db, { secrets: box, now: () => new Date(Date.now() + clockMs) });
    });
    afterEach(async () => {
      await monitor?.stop();
      await store?.cleanup();
    });

    let runNo = 0;
    async function run(connectorId: string, status: string, opts: { error?: string; trigger?: string } = {}): Promise<string> {
      const id = `run-${String(++runNo).padStart(4, '0')}`;
      const at = new Date(Date.UTC(2026, 0, 1, 0, runNo)).toISOString();
      await store.db.kysely
        .insertInto('runs')
        .values({ id, connector_id: connectorId, trigger: opts.trigger ?? 'schedule', status, started_at: at, ended_at: at, last_activity_at: at, counters: '{}', peak_rss: 0, holder: 'h', error: opts.error ?? null })
        .execute();
      return id;
    }

    it('raises one alert per streak of failing runs, with the last error; a success in between starts a new streak', async () => {
      await configure(store.db, box, sink, hook);
      const k = store.db.kysely;
      await k.insertInto('connectors').values({ id: 'ldap', name: 'Corporate AD', kind: 'ldap', enabled: 1, settings: '{}', created_at: 'x', updated_at: 'x' }).execute();
      await run('ldap', 'succeeded');
      const f1 = await run('ldap', 'failed', { error: 'connect ECONNREFUSED 10.0.0.5:636' });
      await run('ldap', 'aborted', { error: 'the instance running it stopped' });
      // a one-user sync that works says nothing about the connector's runs
      await run('ldap', 'succeeded', { trigger: 'on-demand' });
      expect((await monitor.tick()).raised).toEqual([]);

      await run('ldap', 'failed', { error: 'the LDAP server did not answer within 30 seconds' });
      expect((await monitor.tick()).raised).toEqual([`connector-failing:ldap:${f1}`]);
      await run('ldap', 'failed', { error: 'still down' });
      await run('ldap', 'failed', { error: 'still down' });
      expect((await monitor.tick()).raised).toEqual([]);
      expect(hook.requests).toHaveLength(1);
      expect(sink.mails).toHaveLength(1);
      const first = payloads(hook)[0];
      expect(first).toMatchObject({ kind: 'connector-failing', connectorId: 'ldap', subject: 'Connector "Corporate AD" failed 3 runs in a row', details: { failures: 3, firstRunId: f1 } });
      expect(first.message).toContain('The last error (run run-');
      expect(first.message).toContain('the LDAP server did not answer within 30 seconds');
      expect(sink.mails[0]!.subject).toBe('[usersync] Connector "Corporate AD" failed 3 runs in a row');

      // a success ends the streak; the next three failures are a new one
      await run('ldap', 'succeeded');
      const f2 = await run('ldap', 'failed', { error: 'bind refused' });
      await run('ldap', 'failed', { error: 'bind refused' });
      expect((await monitor.tick()).raised).toEqual([]);
      await run('ldap', 'failed', { error: 'invalid credentials (49)' });
      expect((await monitor.tick()).raised).toEqual([`connector-failing:ldap:${f2}`]);
      expect(hook.requests).toHaveLength(2);
      expect(sink.mails).toHaveLength(2);
      expect(payloads(hook)[1].details.lastError).toBe('invalid credentials (49)');
    });

    it('follows the configured number of failing runs', async () => {
      await configure(store.db, box, sink, hook, { rules: { failingRuns: 1 } });
      await store.db.kysely.insertInto('connectors').values({ id: 'c', name: 'C', kind: 'scim', enabled: 1, settings: '{}', created_at: 'x', updated_at: 'x' }).execute();
      const f = await run('c', 'failed', { error: 'boom' });
      expect((await monitor.tick()).raised).toEqual([`connector-failing:c:${f}`]);
      expect(payloads(hook)[0].subject).toBe('Connector "C": its last run failed');
    });

    it('raises one alert for a Graph client secret and one for a certificate expiring within the window', async () => {
      await configure(store.db, box, sink, hook);
      const connectors = new ConnectorStore(store.db);
      const graph = (id: string, input: Record<string, unknown>) =>
        connectors.create({ id, name: `Graph ${id}`, kind: 'graph', source: prepareSource('graph', id, { tenantId: 'contoso.onmicrosoft.com', clientId: '00000000-0000-0000-0000-000000000001', ...input }, undefined, box) }, 'test');
      // "in 10 days": more than 9 days and at most 10 are left
      const in10days = new Date(Date.now() + 10 * 86_400_000 - 60_000);
      await graph('soon', { clientSecret: 'graph-secret-value', credentialExpiresAt: in10days.toISOString() });
      await graph('later', { clientSecret: 'graph-secret-value', credentialExpiresAt: new Date(Date.now() + 60 * 86_400_000).toISOString() });
      await graph('unknown', { clientSecret: 'graph-secret-value' });
      const cert = await generateClientCertificate({ days: 10 });
      await graph('cert', { credential: 'certificate', certificate: cert.certPem, privateKey: cert.privateKeyPem });
      const disabled = await graph('off', { clientSecret: 'x', credentialExpiresAt: in10days.toISOString() });
      await connectors.setEnabled(disabled.id, false, 'test');

      const report = await monitor.tick();
      const certExpiry = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
      expect(report.raised.sort()).toEqual([`credential-expiry:cert:${certExpiry}`, `credential-expiry:soon:${in10days.toISOString().slice(0, 10)}`]);
      expect((await monitor.tick()).raised).toEqual([]);
      expect(hook.requests).toHaveLength(2);
      expect(sink.mails).toHaveLength(2);
      const byConnector = Object.fromEntries(payloads(hook).map((p) => [p.connectorId, p]));
      expect(byConnector.soon).toMatchObject({ kind: 'credential-expiry', subject: 'Connector "Graph soon": the client secret expires in 10 days', details: { credential: 'secret', daysLeft: 10 } });
      expect(byConnector.soon.message).toContain('Create a new client secret for the app registration 00000000-0000-0000-0000-000000000001');
      expect(byConnector.cert).toMatchObject({ subject: 'Connector "Graph cert": the certificate expires in 10 days', details: { credential: 'certificate', daysLeft: 10, thumbprintSha256: cert.thumbprintSha256Hex } });
      // nothing secret travels
      for (const r of hook.requests) expect(r.body).not.toMatch(/graph-secret-value|PRIVATE KEY|enc:v1/);
      for (const m of sink.mails) expect(m.text).not.toMatch(/graph-secret-value|PRIVATE KEY|enc:v1/);

      // an expired secret is said to have expired
      clockMs = 11 * 86_400_000;
      await graph('gone', { clientSecret: 'x', credentialExpiresAt: new Date(Date.now() - 86_400_000).toISOString() });
      const late = await monitor.tick();
      expect(late.raised).toEqual([`credential-expiry:gone:${new Date(Date.now() - 86_400_000).toISOString().slice(0, 10)}`]);
      expect(payloads(hook).at(-1).subject).toBe('Connector "Graph gone": the client secret has expired');
    });

    it('retries a webhook that answers 500 with back-off until it recovers, without sending the e-mail again', async () => {
      await configure(store.db, box, sink, hook);
      hook.status = 500;
      const seq = await raiseAlert(store.db, { kind: 'target-parked', dedupeKey: 'target-parked:jira:42', connectorId: null, subject: 'Jira: 3 changes parked', message: 'Jira refused 3 changes; they are parked.', details: { target: 'jira', parked: 3 } });
      expect(seq).toBeTypeOf('number');
      // raising the same key again does nothing
      expect(await raiseAlert(store.db, { kind: 'target-parked', dedupeKey: 'target-parked:jira:42', subject: 'again', message: 'again' })).toBeUndefined();

      const row = () => store.db.kysely.selectFrom('alerts').selectAll().where('seq', '=', seq!).executeTakeFirstOrThrow();
      expect(await monitor.tick()).toMatchObject({ delivered: 0, failed: 1 });
      expect(hook.requests).toHaveLength(1);
      expect(sink.mails).toHaveLength(1);
      let r = await row();
      expect(r.delivered_at).toBeNull();
      expect(Number(r.attempts)).toBe(1);
      const deliveries = JSON.parse(r.deliveries);
      expect(deliveries.email).toMatchObject({ ok: true, attempts: 1 });
      expect(deliveries.webhook).toMatchObject({ ok: false, attempts: 1 });
      expect(deliveries.webhook.error).toBe(`the webhook at ${new URL(hook.url).host} answered HTTP 500 Internal Server Error: receiver is down`);
      // the next attempt in a minute
      const wait = new Date(r.next_attempt_at!).getTime() - new Date(deliveries.webhook.at).getTime();
      expect(wait).toBeGreaterThanOrEqual(60_000);
      expect(wait).toBeLessThan(65_000);

      // not before it is due
      await monitor.tick();
      expect(hook.requests).toHaveLength(1);
      clockMs += 61_000;
      await monitor.tick();
      expect(hook.requests).toHaveLength(2);
      r = await row();
      expect(new Date(r.next_attempt_at!).getTime() - (Date.now() + clockMs)).toBeGreaterThan(4 * 60_000);

      hook.status = 204;
      clockMs += 5 * 60_000 + 1000;
      expect(await monitor.tick()).toMatchObject({ delivered: 1, failed: 0 });
      expect(hook.requests).toHaveLength(3);
      expect(sink.mails).toHaveLength(1);
      r = await row();
      expect(r.delivered_at).not.toBeNull();
      expect(r.next_attempt_at).toBeNull();
      expect(Number(r.attempts)).toBe(3);
      expect(JSON.parse(r.deliveries)).toMatchObject({ webhook: { ok: true, attempts: 3 }, email: { ok: true, attempts: 1 } });
      // every attempt carried the same alert
      expect(new Set(hook.requests.map((q) => q.body)).size).toBe(1);
      clockMs += 24 * 3_600_000;
      await monitor.tick();
      expect(hook.requests).toHaveLength(3);
    });

    it(`gives up after ${MAX_ATTEMPTS} attempts`, async () => {
      await configure(store.db, box, sink, hook, { email: { enabled: false } });
      hook.status = 503;
      await raiseAlert(store.db, { kind: 'target-parked', dedupeKey: 'k', subject: 's', message: 'm' });
      for (let i = 0; i < MAX_ATTEMPTS + 3; i++) {
        await monitor.tick();
        clockMs += 3 * 3_600_000;
      }
      expect(hook.requests).toHaveLength(MAX_ATTEMPTS);
      const r = await store.db.kysely.selectFrom('alerts').selectAll().executeTakeFirstOrThrow();
      expect([Number(r.attempts), r.delivered_at, r.next_attempt_at]).toEqual([MAX_ATTEMPTS, null, null]);
      expect(sink.mails).toHaveLength(0);
    });

    it('keeps an alert raised while no channel is enabled in the history, delivered with no deliveries, and does not send it later', async () => {
      await store.db.kysely.insertInto('connectors').values({ id: 'c', name: 'C', kind: 'scim', enabled: 1, settings: '{}', created_at: 'x', updated_at: 'x' }).execute();
      for (let i = 0; i < 3; i++) await run('c', 'failed', { error: 'boom' });
      expect(await monitor.tick()).toMatchObject({ raised: [expect.stringMatching(/^connector-failing:c:/)], delivered: 1, failed: 0 });
      const r = await store.db.kysely.selectFrom('alerts').selectAll().executeTakeFirstOrThrow();
      expect(r.deliveries).toBe('{}');
      expect(r.delivered_at).not.toBeNull();
      await configure(store.db, box, sink, hook);
      await monitor.tick();
      expect(hook.requests).toHaveLength(0);
      expect(sink.mails).toHaveLength(0);
    });

    it('reports a stored secret that no longer opens as the reason, and retries', async () => {
      await configure(store.db, SecretBox.forTests(), sink, hook, { email: { enabled: false } });
      await raiseAlert(store.db, { kind: 'target-parked', dedupeKey: 'k', subject: 's', message: 'm' });
      expect(await monitor.tick()).toMatchObject({ failed: 1 });
      expect(hook.requests).toHaveLength(0);
      const r = await store.db.kysely.selectFrom('alerts').selectAll().executeTakeFirstOrThrow();
      expect(JSON.parse(r.deliveries).webhook.error).toMatch(/^the stored webhook signing secret cannot be opened .*; enter it again in the alert settings$/);
      expect(r.next_attempt_at).not.toBeNull();
    });

    it('delivers from one instance at a time', async () => {
      await configure(store.db, box, sink, hook);
      const other = new AlertMonitor(store.db, { secrets: box });
      try {
        for (let i = 0; i < 5; i++) await raiseAlert(store.db, { kind: 'target-parked', dedupeKey: `k${i}`, subject: `s${i}`, message: 'm' });
        const [a, b] = await Promise.all([monitor.tick(), other.tick()]);
        expect([a.leader, b.leader].sort()).toEqual([false, true]);
        expect(a.delivered + b.delivered).toBe(5);
        expect(hook.requests).toHaveLength(5);
        expect(sink.mails).toHaveLength(5);
        // the holder keeps it; the other instance takes over once it is given back
        expect((await other.tick()).leader).toBe(b.leader);
        await (a.leader ? monitor : other).stop();
        expect((await (a.leader ? other : monitor).tick()).leader).toBe(true);
      } finally {
        await other.stop();
      }
    });
  });
});
