// The alert monitor: every so often, by one instance at a time (the lease 'alerts'), it looks at the store
// and raises alerts — runs held for approval, connectors failing run after run, Graph credentials close to
// expiry — each once, by a dedupe key; then it delivers pending alerts to every enabled channel, retrying
// failures with back-off. A channel that took an alert is not sent it again.
//
// An alert raised while no channel is enabled is recorded and marked delivered with no deliveries: it shows
// in the alert history, and enabling a channel later does not send a backlog of old news.

import { X509Certificate, randomUUID } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Db } from '../store/db.ts';
import type { Database } from '../store/schema.ts';
import type { SecretBox } from '../store/secrets.ts';
import { acquireLease, releaseLease } from '../sync/lease.ts';
import type { AlertRecord, ChannelResult } from './channels.ts';
import { sendEmail, sendWebhook } from './channels.ts';
import type { StoredAlertSettings } from './settings.ts';
import { loadAlertSettings, openSecret } from './settings.ts';

export type AlertKind = 'held-run' | 'target-parked' | 'target-unavailable' | 'connector-failing' | 'credential-expiry' | 'test';
export type Channel = 'webhook' | 'email';
export const CHANNELS: readonly Channel[] = ['webhook', 'email'];

export const LEASE_NAME = 'alerts';
/** after the n-th failed attempt (1-based) the next one waits this long; later ones the last value */
export const RETRY_DELAYS_MS = [60_000, 5 * 60_000, 30 * 60_000, 2 * 60 * 60_000] as const;
/** attempts before an alert is given up (about two days of trying) */
export const MAX_ATTEMPTS = 24;
const DAY_MS = 86_400_000;

/** What a channel did with an alert, as recorded in `alerts.deliveries`. */
export interface DeliveryRecord {
  ok: boolean;
  at: string;
  attempts: number;
  error?: string;
}

export interface RaiseInput {
  kind: AlertKind;
  /** one alert per key: raising the same key again does nothing */
  dedupeKey: string;
  connectorId?: string | null;
  subject: string;
  message: string;
  details?: Record<string, unknown>;
}

type Kdb = Kysely<Database>;
const kysely = (db: Db | Kdb): Kdb => ('kysely' in db ? db.kysely : db);

/**
 * Record an alert for delivery, once per dedupe key: answers its seq, or undefined when an alert with that
 * key exists already. Takes the store or a transaction (a target can raise in the transaction that parks
 * a change). The monitor delivers it on its next round.
 */
export async function raiseAlert(db: Db | Kdb, input: RaiseInput, at: Date = new Date()): Promise<number | undefined> {
  const when = at.toISOString();
  const row = await kysely(db)
    .insertInto('alerts')
    .values({
      at: when,
      kind: input.kind,
      dedupe_key: input.dedupeKey,
      connector_id: input.connectorId ?? null,
      // one line: it becomes an e-mail subject
      subject: input.subject.replace(/\s+/g, ' ').trim().slice(0, 250),
      message: input.message,
      details: JSON.stringify(input.details ?? {}),
      deliveries: '{}',
      attempts: 0,
      next_attempt_at: when,
      delivered_at: null,
    })
    .onConflict((oc) => oc.column('dedupe_key').doNothing())
    .returning('seq')
    .executeTakeFirst();
  return row ? Number(row.seq) : undefined;
}

/** The wait after `attempts` failed attempts. */
export function retryDelayMs(attempts: number): number {
  return RETRY_DELAYS_MS[Math.min(Math.max(attempts, 1), RETRY_DELAYS_MS.length) - 1]!;
}

export interface AlertMonitorOptions {
  secrets: SecretBox;
  /** the lease holder's name (one per instance; the reconciler's is a good choice) */
  holder?: string;
  /** how often to look and deliver (default 30 s) */
  intervalMs?: number;
  /** the admin UI's public address, for links in alerts (PUBLIC_BASE_URL) */
  publicBaseUrl?: string;
  /** the clock (tests move it forward to reach a retry) */
  now?: () => Date;
  webhookTimeoutMs?: number;
  smtpTimeoutMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => void;
}

export interface TickReport {
  /** false: another instance holds the lease and does the work */
  leader: boolean;
  /** dedupe keys of the alerts raised */
  raised: string[];
  /** alerts every enabled channel has now taken (or that had no channel to go to) */
  delivered: number;
  /** alerts with a channel that failed (retried later, or given up) */
  failed: number;
}

interface AlertRow {
  seq: number | string;
  at: string;
  kind: string;
  connector_id: string | null;
  subject: string;
  message: string;
  details: string;
  deliveries: string;
  attempts: number | string;
}

export class AlertMonitor {
  readonly holder: string;
  private readonly intervalMs: number;
  private readonly leaseTtlMs: number;
  private readonly now: () => Date;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<TickReport> | undefined;
  private stopping = new AbortController();

  constructor(
    private readonly db: Db,
    private readonly opts: AlertMonitorOptions,
  ) {
    this.holder = opts.holder ?? randomUUID();
    this.intervalMs = opts.intervalMs ?? 30_000;
    // long enough for a round of slow deliveries; the lease is renewed before each alert is sent
    this.leaseTtlMs = Math.max(2 * 60_000, 3 * this.intervalMs);
    this.now = opts.now ?? (() => new Date());
  }

  start(): void {
    this.stopping = new AbortController();
    this.timer = setInterval(() => this.poke(), this.intervalMs);
    this.timer.unref();
    this.poke();
  }

  /** Look and deliver now (e.g. after raising an alert), unless a round is under way. */
  poke(): void {
    if (this.running) return;
    this.tick().catch((e: unknown) => this.opts.log?.('error', 'alert round failed; the next one retries', { err: String(e) }));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.stopping.abort();
    await this.running?.catch(() => {});
    await releaseLease(this.db, LEASE_NAME, this.holder).catch(() => {});
  }

  /** One round: raise what the store shows, then deliver what is due. A round under way is joined. */
  tick(): Promise<TickReport> {
    this.running ??= this.round().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async round(): Promise<TickReport> {
    if (!(await acquireLease(this.db, LEASE_NAME, this.holder, this.leaseTtlMs))) return { leader: false, raised: [], delivered: 0, failed: 0 };
    const settings = await loadAlertSettings(this.db);
    const raised = [...(await this.heldRuns()), ...(await this.failingConnectors(settings.rules.failingRuns)), ...(await this.expiringCredentials(settings.rules.credentialExpiryDays))];
    for (const key of raised) this.opts.log?.('info', `alert raised: ${key}`);
    return { leader: true, raised, ...(await this.deliver(settings)) };
  }

  private link(path: string): string {
    return `${this.opts.publicBaseUrl ?? ''}${path}`;
  }

  private async raise(input: RaiseInput): Promise<string | undefined> {
    return (await raiseAlert(this.db, input, this.now())) === undefined ? undefined : input.dedupeKey;
  }

  /** Keys among `keys` that have no alert yet. */
  private async unraised(keys: string[]): Promise<Set<string>> {
    if (keys.length === 0) return new Set();
    const have = await this.db.kysely.selectFrom('alerts').select('dedupe_key').where('dedupe_key', 'in', keys).execute();
    const known = new Set(have.map((r) => r.dedupe_key));
    return new Set(keys.filter((k) => !known.has(k)));
  }

  // ------------------------------------------------------------------------------------- what to raise

  /** A run over the deletion limit waits for an administrator. */
  private async heldRuns(): Promise<string[]> {
    const runs = await this.db.kysely
      .selectFrom('runs as r')
      .innerJoin('connectors as c', 'c.id', 'r.connector_id')
      .select(['r.id', 'r.connector_id', 'r.started_at', 'c.name'])
      .where('r.status', '=', 'held')
      .orderBy('r.started_at')
      .execute();
    const todo = await this.unraised(runs.map((r) => `held-run:${r.id}`));
    const raised: string[] = [];
    for (const r of runs) {
      const key = `held-run:${r.id}`;
      if (!todo.has(key)) continue;
      const ops = await this.db.kysely
        .selectFrom('held_changes')
        .select(['op', (eb) => eb.fn.countAll<number | string>().as('n')])
        .where('run_id', '=', r.id)
        .where('status', '=', 'held')
        .groupBy('op')
        .execute();
      const byOp = Object.fromEntries(ops.map((o) => [o.op, Number(o.n)]));
      const held = Object.values(byOp).reduce((a, b) => a + b, 0);
      if (held === 0) continue;
      const parts = [byOp.deactivate ? `${byOp.deactivate} deactivation${byOp.deactivate === 1 ? '' : 's'}` : '', byOp.delete ? `${byOp.delete} deletion${byOp.delete === 1 ? '' : 's'}` : ''].filter(Boolean);
      const done = await this.raise({
        kind: 'held-run',
        dedupeKey: key,
        connectorId: r.connector_id,
        subject: `Connector "${r.name}": ${held} change${held === 1 ? '' : 's'} held for approval`,
        message:
          `Run ${r.id} of connector "${r.name}" (${r.connector_id}) went over the connector's deletion limit: ` +
          `${held} change${held === 1 ? '' : 's'}${parts.length ? ` (${parts.join(', ')})` : ''} ${held === 1 ? 'is' : 'are'} held, and nobody is deactivated or deleted until an administrator decides.\n\n` +
          `Approve or reject them in the admin UI at ${this.link(`/runs/${r.id}`)}, or with the API: POST /api/runs/${r.id}/approve (or /reject).`,
        details: { runId: r.id, held, deactivate: byOp.deactivate ?? 0, delete: byOp.delete ?? 0, startedAt: r.started_at, approve: `/api/runs/${r.id}/approve`, reject: `/api/runs/${r.id}/reject` },
      });
      if (done) raised.push(done);
    }
    return raised;
  }

  /**
   * A connector whose latest `threshold` runs all failed or were aborted. The key names the first run of
   * the streak, so a streak raises one alert however long it goes on, and a success starts a new one.
   * One-user runs (sync on login) are left out: they fail for reasons of one user, not of the connector.
   */
  private async failingConnectors(threshold: number): Promise<string[]> {
    const k = this.db.kysely;
    const connectors = await k.selectFrom('connectors').select(['id', 'name']).orderBy('id').execute();
    const raised: string[] = [];
    for (const c of connectors) {
      // the latest good run, read backwards along (connector_id, started_at) and stopping at the first: a
      // max() with these conditions would read every run of the connector, sync-on-login runs included
      const good = await k
        .selectFrom('runs')
        .select('started_at')
        .where('connector_id', '=', c.id)
        .where('trigger', '!=', 'on-demand')
        .where('status', 'in', ['succeeded', 'held'])
        .orderBy('started_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      const since = good?.started_at ?? null;
      let failed = k.selectFrom('runs').where('connector_id', '=', c.id).where('trigger', '!=', 'on-demand').where('status', 'in', ['failed', 'aborted']);
      if (since) failed = failed.where('started_at', '>', since);
      const count = Number((await failed.select((eb) => eb.fn.countAll<number | string>().as('n')).executeTakeFirst())?.n ?? 0);
      if (count < threshold) continue;
      const first = await failed.select(['id', 'started_at']).orderBy('started_at').orderBy('id').limit(1).executeTakeFirstOrThrow();
      const key = `connector-failing:${c.id}:${first.id}`;
      if (!(await this.unraised([key])).has(key)) continue;
      const last = await failed.select(['id', 'started_at', 'ended_at', 'status', 'error']).orderBy('started_at', 'desc').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
      const lastError = last.error ?? (last.status === 'aborted' ? 'the run was aborted' : 'no error was recorded');
      const done = await this.raise({
        kind: 'connector-failing',
        dedupeKey: key,
        connectorId: c.id,
        subject: count === 1 ? `Connector "${c.name}": its last run failed` : `Connector "${c.name}" failed ${count} runs in a row`,
        message:
          (count === 1
            ? `The last run of connector "${c.name}" (${c.id}) failed or was aborted, at ${first.started_at}; `
            : `The last ${count} runs of connector "${c.name}" (${c.id}) failed or were aborted, the first at ${first.started_at}; `) +
          `its users and groups are not being brought up to date.\n\nThe last error (run ${last.id}): ${lastError}\n\n` +
          `See the run at ${this.link(`/runs/${last.id}`)}. This alert is not repeated until the connector has succeeded again.`,
        details: { failures: count, firstRunId: first.id, lastRunId: last.id, lastStatus: last.status, lastError, since: first.started_at },
      });
      if (done) raised.push(done);
    }
    return raised;
  }

  /** A Graph connector's client secret or certificate expires within `days` (or has expired). */
  private async expiringCredentials(days: number): Promise<string[]> {
    const rows = await this.db.kysely.selectFrom('connectors').select(['id', 'name', 'source']).where('kind', '=', 'graph').where('enabled', '=', 1).orderBy('id').execute();
    const at = this.now();
    const raised: string[] = [];
    for (const c of rows) {
      let source: Record<string, unknown>;
      try {
        source = JSON.parse(c.source) as Record<string, unknown>;
      } catch {
        continue;
      }
      const expiry = credentialExpiry(source);
      if (!expiry) continue;
      const left = (expiry.expiresAt.getTime() - at.getTime()) / DAY_MS;
      if (left > days) continue;
      const date = expiry.expiresAt.toISOString().slice(0, 10);
      const what = expiry.credential === 'certificate' ? 'certificate' : 'client secret';
      const daysLeft = Math.ceil(left);
      const when = left <= 0 ? `expired on ${date}` : `expires on ${date} (in ${daysLeft} day${daysLeft === 1 ? '' : 's'})`;
      const app = typeof source.clientId === 'string' ? ` ${source.clientId}` : '';
      const todo =
        expiry.credential === 'certificate'
          ? `Upload a new certificate to the app registration${app} in Entra ID (Certificates & secrets) and enter it with its private key in the connector's source settings.`
          : `Create a new client secret for the app registration${app} in Entra ID (Certificates & secrets), then enter it and its expiry date (credentialExpiresAt) in the connector's source settings.`;
      const done = await this.raise({
        kind: 'credential-expiry',
        dedupeKey: `credential-expiry:${c.id}:${date}`,
        connectorId: c.id,
        subject: `Connector "${c.name}": the ${what} ${left <= 0 ? 'has expired' : `expires in ${daysLeft} day${daysLeft === 1 ? '' : 's'}`}`,
        message: `The ${what} of the Microsoft Graph connector "${c.name}" (${c.id}) ${when}. Once it has expired the connector's runs fail.\n\n${todo}`,
        details: { credential: expiry.credential, expiresAt: expiry.expiresAt.toISOString(), daysLeft, ...(expiry.thumbprint ? { thumbprintSha256: expiry.thumbprint } : {}), ...(typeof source.clientId === 'string' ? { clientId: source.clientId } : {}) },
      });
      if (done) raised.push(done);
    }
    return raised;
  }

  // ------------------------------------------------------------------------------------------ delivery

  private async deliver(settings: StoredAlertSettings): Promise<{ delivered: number; failed: number }> {
    const k = this.db.kysely;
    const at = this.now();
    const due = await k
      .selectFrom('alerts')
      .select(['seq', 'at', 'kind', 'connector_id', 'subject', 'message', 'details', 'deliveries', 'attempts'])
      .where('delivered_at', 'is', null)
      .where('next_attempt_at', '<=', at.toISOString())
      .orderBy('seq')
      .limit(100)
      .execute();
    let delivered = 0;
    let failed = 0;
    if (due.length === 0) return { delivered, failed };
    const send = this.senders(settings);
    for (const row of due) {
      if (this.stopping.signal.aborted) break;
      // a long round must not outlive the lease, or another instance would send the same alerts
      if (!(await acquireLease(this.db, LEASE_NAME, this.holder, this.leaseTtlMs))) break;
      const ok = await this.deliverOne(row as AlertRow, send);
      if (ok) delivered++;
      else failed++;
    }
    return { delivered, failed };
  }

  /** Senders for the enabled channels, with their secrets opened once per round. */
  private senders(s: StoredAlertSettings): Partial<Record<Channel, (a: AlertRecord) => Promise<ChannelResult>>> {
    const out: Partial<Record<Channel, (a: AlertRecord) => Promise<ChannelResult>>> = {};
    const signal = this.stopping.signal;
    if (s.webhook.enabled && s.webhook.url) {
      const secret = openSecret(s.webhook.secret, 'webhook.secret', this.opts.secrets);
      const url = s.webhook.url;
      out.webhook = async (a) =>
        'error' in secret ? { ok: false, error: secret.error } : sendWebhook({ url, secret: secret.value }, a, { signal, ...(this.opts.webhookTimeoutMs ? { timeoutMs: this.opts.webhookTimeoutMs } : {}) });
    }
    if (s.email.enabled) {
      const password = openSecret(s.email.password, 'email.password', this.opts.secrets);
      out.email = async (a) =>
        'error' in password ? { ok: false, error: password.error } : sendEmail({ ...s.email, password: password.value }, a, { signal, ...(this.opts.smtpTimeoutMs ? { timeoutMs: this.opts.smtpTimeoutMs } : {}) });
    }
    return out;
  }

  /** Send one alert to each enabled channel that has not taken it yet; true when none is left to send to. */
  private async deliverOne(row: AlertRow, send: Partial<Record<Channel, (a: AlertRecord) => Promise<ChannelResult>>>): Promise<boolean> {
    const alert = toRecord(row);
    const deliveries = JSON.parse(row.deliveries) as Record<string, DeliveryRecord>;
    const channels = CHANNELS.filter((c) => send[c]);
    for (const c of channels) {
      if (deliveries[c]?.ok) continue;
      const result = await send[c]!(alert);
      deliveries[c] = { ok: result.ok, at: this.now().toISOString(), attempts: (deliveries[c]?.attempts ?? 0) + 1, ...(result.ok ? {} : { error: result.error }) };
    }
    const done = channels.every((c) => deliveries[c]?.ok);
    const attempts = Number(row.attempts) + (channels.length ? 1 : 0);
    const at = this.now();
    let next: string | null = null;
    if (!done && attempts < MAX_ATTEMPTS) next = new Date(at.getTime() + retryDelayMs(attempts)).toISOString();
    if (!done) {
      const errors = channels.filter((c) => !deliveries[c]?.ok).map((c) => `${c}: ${deliveries[c]?.error}`);
      this.opts.log?.('warn', `alert ${alert.seq} (${alert.kind}) not delivered${next ? `; trying again at ${next}` : `; given up after ${attempts} attempts`}`, { errors });
    }
    await this.db.kysely
      .updateTable('alerts')
      .set({ deliveries: JSON.stringify(deliveries), attempts, next_attempt_at: next, delivered_at: done ? at.toISOString() : null })
      .where('seq', '=', alert.seq)
      .execute();
    return done;
  }
}

export function toRecord(row: Pick<AlertRow, 'seq' | 'at' | 'kind' | 'connector_id' | 'subject' | 'message' | 'details'>): AlertRecord {
  return {
    seq: Number(row.seq),
    at: row.at,
    kind: row.kind,
    connectorId: row.connector_id,
    subject: row.subject,
    message: row.message,
    details: JSON.parse(row.details) as Record<string, unknown>,
  };
}

/**
 * When a Graph connector's credential expires: a certificate's own end date (read from it), else the date
 * the administrator entered for the client secret. Only the public parts of the settings are read.
 */
export function credentialExpiry(source: Record<string, unknown>): { credential: 'secret' | 'certificate'; expiresAt: Date; thumbprint?: string } | undefined {
  const credential = source.credential === 'certificate' ? 'certificate' : 'secret';
  if (credential === 'certificate' && typeof source.certificate === 'string') {
    try {
      const x = new X509Certificate(source.certificate);
      return { credential, expiresAt: new Date(x.validTo), thumbprint: x.fingerprint256.replace(/:/g, '') };
    } catch {
      // fall back to the stored date below
    }
  }
  const raw = source.credentialExpiresAt;
  if (typeof raw !== 'string') return undefined;
  const expiresAt = new Date(raw);
  return Number.isNaN(expiresAt.getTime()) ? undefined : { credential, expiresAt };
}
