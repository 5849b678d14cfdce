// The alert API on both stores, as an administrator uses it: settings with every problem named by its path,
// secrets never shown (nor audited), a test send that reports each channel's failure as a sentence (an
// unreachable server, a refused password, an untrusted certificate), and the history. The routes are
// registered here the way the admin API will: under /api, after an authentication hook that sets req.actor,
// with an error handler that renders ApiErrors. Their OpenAPI description is checked against them.

import { compileErrors, validate } from '@readme/openapi-parser';
import Fastify from 'fastify';
import type { FastifyError, FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ApiError } from '../../src/admin/errors.ts';
import { openApiDocument } from '../../src/admin/openapi.ts';
import { SecretBox } from '../../src/store/secrets.ts';
import { alertRoutes } from '../../src/alerts/routes.ts';
import { alertPaths, alertSchemas, alertTag } from '../../src/alerts/openapi-paths.ts';
import { raiseAlert } from '../../src/alerts/monitor.ts';
import type { TestStore } from '../support/store.ts';
import { DIALECTS, openTestStore } from '../support/store.ts';
import { freePort } from '../support/process.ts';
import { generateCertificate } from '../support/graph-emulator/index.ts';
import type { SmtpSink, WebhookReceiver } from './support.ts';
import { startSmtpSink, startWebhookReceiver } from './support.ts';

const HOOK_SECRET = 'whsec-never-shown-7d2e';
const SMTP_PASSWORD = 'smtp-never-shown-91fa';

async function buildApp(store: TestStore, box: SecretBox): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  await app.register(
    async (api) => {
      api.addHook('onRequest', async (req) => {
        req.actor = 'account:alice';
      });
      api.setErrorHandler((error: FastifyError | ApiError, _req, reply) => {
        if (error instanceof ApiError) return reply.code(error.status).send({ error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } });
        const status = (error as FastifyError).statusCode;
        if (status && status < 500) return reply.code(status).send({ error: { code: (error as FastifyError).code ?? 'bad_request', message: error.message } });
        return reply.code(500).send({ error: { code: 'internal', message: 'internal error; nothing was changed' } });
      });
      await api.register(alertRoutes, { db: store.db, secrets: box, webhookTimeoutMs: 2000, smtpTimeoutMs: 2000 });
    },
    { prefix: '/api' },
  );
  await app.ready();
  return app;
}

describe.each(DIALECTS)('alert API on %s', (dialect) => {
  let store: TestStore;
  let box: SecretBox;
  let app: FastifyInstance;
  let sink: SmtpSink;
  let hook: WebhookReceiver;

  beforeEach(async () => {
    store = await openTestStore(dialect);
    box = SecretBox.forTests();
    app = await buildApp(store, box);
    [sink, hook] = await Promise.all([startSmtpSink(), startWebhookReceiver()]);
  });
  afterEach(async () => {
    await app?.close();
    await Promise.all([sink?.close(), hook?.close()]);
    await store?.cleanup();
  });

  async function api(method: 'GET' | 'PUT' | 'POST', url: string, body?: unknown) {
    const res = await app.inject({ method, url: `/api${url}`, ...(body !== undefined ? { payload: JSON.stringify(body), headers: { 'content-type': 'application/json' } } : {}) });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any
    return { status: res.statusCode, text: res.body, body: (res.body ? JSON.parse(res.body) : undefined) as any };
  }

  const working = () => ({
    webhook: { enabled: true, url: hook.url, secret: HOOK_SECRET },
    email: { enabled: true, host: '127.0.0.1', port: sink.port, security: 'none', from: 'usersync@example.com', to: ['ops@example.com'] },
  });

  async function auditText(): Promise<string> {
    return JSON.stringify(await store.db.kysely.selectFrom('audit_log').selectAll().execute());
  }

  it('shows the defaults, saves settings, and shows secrets only as set; the audit names the fields changed and no secret', async () => {
    const initial = await api('GET', '/alerts/settings');
    expect(initial.status).toBe(200);
    expect(initial.body).toEqual({
      webhook: { enabled: false, url: null, secret: { set: false } },
      email: { enabled: false, host: null, port: 587, security: 'starttls', username: null, password: { set: false }, from: null, to: [], caCertificate: null },
      rules: { failingRuns: 3, credentialExpiryDays: 30 },
    });

    const input = {
      webhook: { enabled: true, url: 'https://hooks.example.com/usersync', secret: HOOK_SECRET },
      email: { enabled: true, host: 'smtp.example.com', port: 465, security: 'tls', username: 'usersync', password: SMTP_PASSWORD, from: 'usersync@example.com', to: ['ops@example.com', 'iam@example.com'] },
      rules: { failingRuns: 5, credentialExpiryDays: 14 },
    };
    const saved = await api('PUT', '/alerts/settings', input);
    expect(saved.status).toBe(200);
    expect(saved.body.webhook).toEqual({ enabled: true, url: 'https://hooks.example.com/usersync', secret: { set: true } });
    expect(saved.body.email).toMatchObject({ host: 'smtp.example.com', port: 465, security: 'tls', username: 'usersync', password: { set: true }, to: ['ops@example.com', 'iam@example.com'] });
    const shown = await api('GET', '/alerts/settings');
    expect(shown.body).toEqual(saved.body);
    for (const text of [saved.text, shown.text]) expect(text).not.toMatch(new RegExp(`${HOOK_SECRET}|${SMTP_PASSWORD}|enc:v1`));

    // the GET answer sent back keeps the secrets; null clears one
    expect((await api('PUT', '/alerts/settings', { ...shown.body, webhook: { ...shown.body.webhook, secret: null } })).body.webhook.secret).toEqual({ set: false });
    expect((await api('GET', '/alerts/settings')).body.email.password).toEqual({ set: true });

    const entries = await store.db.kysely.selectFrom('audit_log').selectAll().where('action', '=', 'alerts.settings.update').orderBy('seq').execute();
    expect(entries.map((e) => [e.actor, e.target])).toEqual([
      ['account:alice', 'alerts'],
      ['account:alice', 'alerts'],
    ]);
    const first = JSON.parse(entries[0]!.details);
    expect(first.changed).toEqual(expect.arrayContaining(['webhook.enabled', 'webhook.url', 'webhook.secret', 'email.password', 'email.to', 'rules.failingRuns']));
    expect(first.after['webhook.secret']).toBe('(secret)');
    expect(JSON.parse(entries[1]!.details)).toEqual({ changed: ['webhook.secret'], before: { 'webhook.secret': '(secret)' }, after: { 'webhook.secret': null } });
    expect(await auditText()).not.toMatch(new RegExp(`${HOOK_SECRET}|${SMTP_PASSWORD}|enc:v1`));
  });

  it('refuses bad settings with 400 and every problem with its path, and saves nothing', async () => {
    const res = await api('PUT', '/alerts/settings', {
      webhook: { enabled: true, url: 'not a url' },
      email: { enabled: true, host: 'smtp.example.com', port: 0, from: 'usersync@example.com', to: [] },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe('invalid_settings');
    expect(res.body.error.message).toMatch(/^3 invalid settings: /);
    expect(res.body.error.details).toEqual([
      { path: 'webhook.url', message: 'must be an http:// or https:// URL' },
      { path: 'email.port', message: 'must be a whole number from 1 to 65535' },
      { path: 'email.to', message: 'needs at least one recipient when e-mail is enabled' },
    ]);
    expect((await api('PUT', '/alerts/settings', { email: { to: ['ops@example.com', 'ops.example.com'] } })).body.error.details).toEqual([{ path: 'email.to[1]', message: 'must be an e-mail address (name@example.com)' }]);
    const notObject = await api('PUT', '/alerts/settings', [1, 2]);
    expect([notObject.status, notObject.body.error.code]).toEqual([400, 'invalid_body']);
    const noBody = await api('PUT', '/alerts/settings');
    expect([noBody.status, noBody.body.error.code]).toEqual([400, 'invalid_body']);
    expect((await api('GET', '/alerts/settings')).body.webhook.enabled).toBe(false);
    expect(await store.db.kysely.selectFrom('audit_log').select('seq').execute()).toEqual([]);
  });

  it('sends a test alert to each enabled channel, keeps it in the history and audits it', async () => {
    expect((await api('POST', '/alerts/test')).body).toEqual({ webhook: null, email: null });
    await api('PUT', '/alerts/settings', working());
    const res = await api('POST', '/alerts/test');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ webhook: { ok: true }, email: { ok: true } });
    expect(hook.requests).toHaveLength(1);
    expect(JSON.parse(hook.requests[0]!.body)).toMatchObject({ kind: 'test', subject: 'Test alert', service: 'usersync' });
    expect(hook.requests[0]!.headers['x-usersync-signature']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(sink.mails.map((m) => [m.subject, m.to])).toEqual([['[usersync] Test alert', ['ops@example.com']]]);
    expect(sink.mails[0]!.text).toContain('sent by account:alice');

    const history = await api('GET', '/alerts');
    expect(history.body.alerts[0]).toMatchObject({ kind: 'test', subject: 'Test alert', connectorId: null, attempts: 1, deliveries: { webhook: { ok: true }, email: { ok: true } }, nextAttemptAt: null });
    expect(history.body.alerts[0].deliveredAt).not.toBeNull();
    expect((await store.db.kysely.selectFrom('audit_log').select('action').where('action', '=', 'alerts.test').execute()).length).toBe(2);
  });

  it('reports unreachable servers as sentences', async () => {
    const [smtpPort, hookPort] = await Promise.all([freePort(), freePort()]);
    await api('PUT', '/alerts/settings', {
      webhook: { enabled: true, url: `http://127.0.0.1:${hookPort}/hook` },
      email: { ...working().email, port: smtpPort },
    });
    const res = await api('POST', '/alerts/test');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      webhook: { ok: false, error: `could not connect to the webhook at 127.0.0.1:${hookPort}: the connection was refused` },
      email: { ok: false, error: `could not connect to the SMTP server 127.0.0.1:${smtpPort}: the connection was refused` },
    });
    const [test] = (await api('GET', '/alerts')).body.alerts;
    expect(test).toMatchObject({ kind: 'test', deliveredAt: null, nextAttemptAt: null, deliveries: { email: { ok: false, error: res.body.email.error } } });

    hook.status = 500;
    await api('PUT', '/alerts/settings', { webhook: { enabled: true, url: hook.url } });
    expect((await api('POST', '/alerts/test')).body.webhook).toEqual({ ok: false, error: `the webhook at ${new URL(hook.url).host} answered HTTP 500 Internal Server Error: receiver is down` });
  });

  it('lists alerts newest first, as many as asked', async () => {
    for (let i = 1; i <= 3; i++) await raiseAlert(store.db, { kind: 'target-parked', dedupeKey: `k${i}`, connectorId: 'entra', subject: `s${i}`, message: `m${i}`, details: { n: i } });
    const res = await api('GET', '/alerts?limit=2');
    expect(res.status).toBe(200);
    expect(res.body.alerts).toEqual([
      { seq: expect.any(Number), at: expect.any(String), kind: 'target-parked', connectorId: 'entra', subject: 's3', message: 'm3', details: { n: 3 }, deliveries: {}, deliveredAt: null, nextAttemptAt: expect.any(String), attempts: 0 },
      expect.objectContaining({ subject: 's2' }),
    ]);
    expect(res.body.alerts[0].seq).toBeGreaterThan(res.body.alerts[1].seq);
    for (const bad of ['0', '-1', 'x']) expect((await api('GET', `/alerts?limit=${bad}`)).body.error.code).toBe('invalid_limit');
  });
});

describe('SMTP with STARTTLS, authentication and an internal CA', () => {
  let store: TestStore;
  let box: SecretBox;
  let app: FastifyInstance;
  let sink: SmtpSink;
  let tls: { cert: string; key: string };

  beforeAll(async () => {
    tls = await generateCertificate();
    store = await openTestStore('sqlite');
    box = SecretBox.forTests();
    app = await buildApp(store, box);
    sink = await startSmtpSink({ tls, auth: { username: 'usersync', password: SMTP_PASSWORD } });
  });
  afterAll(async () => {
    await app?.close();
    await sink?.close();
    await store?.cleanup();
  });

  const email = (extra: Record<string, unknown>) => ({ email: { enabled: true, host: 'localhost', port: sink.port, security: 'starttls', username: 'usersync', password: SMTP_PASSWORD, from: 'usersync@example.com', to: ['ops@example.com'], caCertificate: tls.cert, ...extra } });
  const test = async (settings: Record<string, unknown>) => {
    const saved = await app.inject({ method: 'PUT', url: '/api/alerts/settings', payload: settings });
    expect(saved.statusCode, saved.body).toBe(200);
    return JSON.parse((await app.inject({ method: 'POST', url: '/api/alerts/test' })).body) as { email: { ok: boolean; error?: string } };
  };

  it('upgrades with STARTTLS, trusts the configured CA and logs in', async () => {
    expect((await test(email({}))).email).toEqual({ ok: true });
    expect(sink.mails.at(-1)).toMatchObject({ user: 'usersync', secure: true, subject: '[usersync] Test alert' });
  });

  it('says when the password is refused, the certificate is not trusted, or TLS is not what the port speaks', async () => {
    const wrong = await test(email({ password: 'wrong' }));
    expect(wrong.email.error).toMatch(new RegExp(`^the SMTP server localhost:${sink.port} refused the username or password \\(the server said: 535 `));
    const untrusted = await test(email({ caCertificate: null }));
    expect(untrusted.email.error).toBe(`the certificate of the SMTP server localhost:${sink.port} is not trusted (self-signed certificate); if an internal CA signed it, add that CA certificate to the e-mail settings`);
    const implicit = await test(email({ security: 'tls' }));
    expect(implicit.email.error).toBe(`the SMTP server localhost:${sink.port} does not speak TLS from the start: with security 'tls' use its SMTPS port (usually 465), or choose 'starttls' (usually port 587)`);
    const plain = await startSmtpSink();
    try {
      const noStarttls = await test(email({ port: plain.port }));
      expect(noStarttls.email.error).toBe(
        `the SMTP server localhost:${plain.port} does not offer STARTTLS (the server said: 500 Error: command not recognized); choose security 'tls' if it speaks TLS from the start (usually port 465), or 'none' for a relay without encryption`,
      );
      expect(plain.mails).toEqual([]);
    } finally {
      await plain.close();
    }
    expect(JSON.stringify(await store.db.kysely.selectFrom('audit_log').selectAll().execute())).not.toContain(SMTP_PASSWORD);
  });
});

describe('the OpenAPI description of the alert API', () => {
  it('is valid merged into the admin API document, and describes exactly the routes registered', async () => {
    // merged as src/admin/openapi.ts merges them (a no-op once it does)
    const doc = structuredClone(openApiDocument);
    Object.assign(doc.paths, structuredClone(alertPaths));
    Object.assign(doc.components.schemas, structuredClone(alertSchemas));
    if (!doc.tags.some((t) => t.name === alertTag.name)) doc.tags.push(alertTag);
    const result = await validate(doc as unknown as Parameters<typeof validate>[0]);
    expect(result.valid, compileErrors(result)).toBe(true);
    expect(result.warnings).toEqual([]);

    const store = await openTestStore('sqlite');
    const app = await buildApp(store, SecretBox.forTests());
    try {
      const registered: string[] = [];
      for (const [path, item] of Object.entries(alertPaths)) {
        for (const method of ['get', 'put', 'post', 'patch', 'delete'] as const) {
          if (item[method]) registered.push(`${method.toUpperCase()} ${path}`);
          expect(app.hasRoute({ method: method.toUpperCase() as 'GET', url: path }), `${method} ${path}`).toBe(Boolean(item[method]));
        }
      }
      expect(registered.sort()).toEqual(['GET /api/alerts', 'GET /api/alerts/settings', 'POST /api/alerts/test', 'PUT /api/alerts/settings']);
      // operation ids stay unique in the merged document
      const ids = Object.values(doc.paths).flatMap((item) => Object.values(item).flatMap((op) => ((op as { operationId?: string }).operationId ? [(op as { operationId: string }).operationId] : [])));
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await app.close();
      await store.cleanup();
    }
  });
});
