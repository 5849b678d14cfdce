// The alert API, registered under /api inside the admin API's authentication (req.actor is set): the
// settings (secrets shown only as {"set": …}), a test send to each enabled channel, and the alert history.
// Errors are ApiErrors, rendered by the admin API's error handler as {"error": {"code", "message", "details"?}}.

import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, limitParam } from '../admin/errors.ts';
import { SettingsError } from '../domain/settings-validate.ts';
import type { Db } from '../store/db.ts';
import { now } from '../store/db.ts';
import { audit } from '../store/connectors.ts';
import type { SecretBox } from '../store/secrets.ts';
import type { AlertRecord, ChannelResult } from './channels.ts';
import { sendEmail, sendWebhook } from './channels.ts';
import type { DeliveryRecord } from './monitor.ts';
import { raiseAlert } from './monitor.ts';
import { auditChange, loadAlertSettings, openSecret, redactAlertSettings, storeAlertSettings, validateAlertSettings } from './settings.ts';

export interface AlertRoutesOptions {
  db: Db;
  secrets: SecretBox;
  /** for tests: shorter waits than the 10 s a real server gets */
  webhookTimeoutMs?: number;
  smtpTimeoutMs?: number;
}

const MAX_LISTED = 500;


function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw new ApiError(401, 'unauthenticated', 'sign in first');
  return req.actor;
}

export async function alertRoutes(app: FastifyInstance, opts: AlertRoutesOptions): Promise<void> {
  const { db, secrets } = opts;

  app.get('/alerts/settings', async () => redactAlertSettings(await loadAlertSettings(db)));

  app.put('/alerts/settings', async (req) => {
    const actor = actorOf(req);
    const input = req.body;
    // a missing body is refused rather than read as "all defaults", which would turn every channel off
    if (input === undefined || input === null || typeof input !== 'object' || Array.isArray(input)) throw new ApiError(400, 'invalid_body', 'the request body must be a JSON object: the whole alert settings');
    return db.transaction(async (trx) => {
      const stored = await loadAlertSettings(trx);
      let next;
      try {
        next = validateAlertSettings(input, stored, secrets);
      } catch (e) {
        if (e instanceof SettingsError) throw new ApiError(400, 'invalid_settings', e.message, e.errors);
        throw e;
      }
      await storeAlertSettings(trx, next);
      const change = auditChange(stored, next);
      if (change.changed.length) await audit(trx, actor, 'alerts.settings.update', 'alerts', change);
      return redactAlertSettings(next);
    });
  });

  /** Send a test alert to each enabled channel now; a failure is a sentence, not an error status. */
  app.post('/alerts/test', async (req) => {
    const actor = actorOf(req);
    const s = await loadAlertSettings(db);
    const at = now();
    const alert: AlertRecord = {
      seq: 0,
      at,
      kind: 'test',
      connectorId: null,
      subject: 'Test alert',
      message: `This is a test alert from usersync, sent by ${actor}. Alerts about held runs, failing connectors and expiring credentials arrive the same way.`,
      details: { actor },
    };
    const answer: { webhook: ChannelResult | null; email: ChannelResult | null } = { webhook: null, email: null };
    const sends: Promise<void>[] = [];
    if (s.webhook.enabled && s.webhook.url) {
      const secret = openSecret(s.webhook.secret, 'webhook.secret', secrets);
      const url = s.webhook.url;
      sends.push(
        ('error' in secret ? Promise.resolve<ChannelResult>({ ok: false, error: secret.error }) : sendWebhook({ url, secret: secret.value }, alert, opts.webhookTimeoutMs ? { timeoutMs: opts.webhookTimeoutMs } : {})).then((r) => {
          answer.webhook = r;
        }),
      );
    }
    if (s.email.enabled) {
      const password = openSecret(s.email.password, 'email.password', secrets);
      sends.push(
        ('error' in password ? Promise.resolve<ChannelResult>({ ok: false, error: password.error }) : sendEmail({ ...s.email, password: password.value }, alert, opts.smtpTimeoutMs ? { timeoutMs: opts.smtpTimeoutMs } : {})).then((r) => {
          answer.email = r;
        }),
      );
    }
    await Promise.all(sends);
    // kept in the history like any alert, done at once: a test is never sent again
    const deliveries: Record<string, DeliveryRecord> = {};
    for (const c of ['webhook', 'email'] as const) {
      const r = answer[c];
      if (r) deliveries[c] = { ok: r.ok, at: now(), attempts: 1, ...(r.ok ? {} : { error: r.error }) };
    }
    const allOk = Object.values(deliveries).every((d) => d.ok);
    await db.transaction(async (trx) => {
      const seq = await raiseAlert(trx, { kind: 'test', dedupeKey: `test:${randomUUID()}`, subject: alert.subject, message: alert.message, details: alert.details }, new Date(at));
      await trx
        .updateTable('alerts')
        .set({ deliveries: JSON.stringify(deliveries), attempts: 1, next_attempt_at: null, delivered_at: allOk ? now() : null })
        .where('seq', '=', seq!)
        .execute();
      await audit(trx, actor, 'alerts.test', 'alerts', { webhook: answer.webhook, email: answer.email });
    });
    return answer;
  });

  /** The alert history, newest first. */
  app.get('/alerts', async (req) => {
    const limit = limitParam((req.query as Record<string, string | undefined>).limit, 50, MAX_LISTED);
    const rows = await db.kysely.selectFrom('alerts').selectAll().orderBy('seq', 'desc').limit(limit).execute();
    return {
      alerts: rows.map((r) => ({
        seq: Number(r.seq),
        at: r.at,
        kind: r.kind,
        connectorId: r.connector_id,
        subject: r.subject,
        message: r.message,
        details: JSON.parse(r.details) as unknown,
        deliveries: JSON.parse(r.deliveries) as unknown,
        deliveredAt: r.delivered_at,
        nextAttemptAt: r.next_attempt_at,
        attempts: Number(r.attempts),
      })),
    };
  });
}
