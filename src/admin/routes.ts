// The admin REST API under /api: connectors and their settings, preview, sync, runs with held changes,
// local users, audit. Authenticated by admin API tokens; every change is written to the audit log.
// Errors: {"error": {"code", "message", "details"?}} with the HTTP status.

import { newId } from '../store/ids.ts';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { sql } from 'kysely';
import { directoryKey } from '../domain/rules.ts';
import type { ConnectorSettings } from '../domain/settings.ts';
import { SettingsError, settingsPatch, validateSettings } from '../domain/settings-validate.ts';
import type { Db } from '../store/db.ts';
import { isUniqueViolation, now } from '../store/db.ts';
import type { ConnectorStore } from '../store/connectors.ts';
import { audit } from '../store/connectors.ts';
import type { PassReport, Reconciler } from '../sync/reconciler.ts';
import { ConflictError, loadSettings, NotFoundError, settingsFromText } from '../sync/reconciler.ts';
import type { AuthOptions } from './auth.ts';
import { authenticate, authRoutes } from './auth.ts';
import cookie from '@fastify/cookie';
import { createHash, randomUUID } from 'node:crypto';
import type { ConnectorKind } from '../store/connectors.ts';
import type { SecretBox } from '../store/secrets.ts';
import { SecretError } from '../store/secrets.ts';
import { LdapError } from '../sources/ldap/connection.ts';
import { isPullKind, prepareSource, redactSource, secretFields, storedSecrets } from '../sources/registry.ts';
import type { PullMode, PullRunner } from '../sync/pull.ts';
import { BusyError } from '../sync/pull.ts';
import { openApiDocument } from './openapi.ts';
import { alertRoutes } from '../alerts/routes.ts';
import { targetRoutes } from '../targets/routes.ts';
import { targetProblems, userTargets } from '../targets/preview.ts';
import type { AppConnection, TargetApp, TargetKind } from '../targets/types.ts';

export interface AdminRoutesOptions {
  db: Db;
  connectors: ConnectorStore;
  reconciler: Reconciler;
  runner: PullRunner;
  secrets: SecretBox;
  auth: AuthOptions;
  /** the address identity providers reach the service at (PUBLIC_BASE_URL); else the request's own */
  publicBaseUrl?: string;
  /** for tests: how target applications are opened */
  openTargetApp?: (kind: TargetKind, conn: AppConnection) => TargetApp;
  /** wake the target worker */
  pokeTargets?: () => void;
}


import { ApiError, body, limitParam } from './errors.ts';
import { memberUserIdSql } from '../store/migrations.ts';
export { ApiError };


const MAX_LISTED_CHANGES = 1000;


function summarise(report: PassReport, limit = MAX_LISTED_CHANGES) {
  return {
    runId: report.runId,
    status: report.status,
    counters: report.counters,
    totalChanges: report.totalChanges,
    changes: report.changes.slice(0, limit),
    held: report.held,
    seats: report.seats,
    merges: report.merges,
    log: report.log,
  };
}


/**
 * Membership changes carry ids (the feed is for machines); a person reads names. The names of the users and
 * groups they name are looked up in two queries and added as `username` and `groupName`, where the user or
 * group exists (a preview may name a group it would create: its create entry names it).
 */
async function nameMemberships<T extends { entity: string; data: unknown }>(db: Db, entries: T[]): Promise<T[]> {
  const memberships = entries.filter((e) => e.entity === 'membership' && e.data && typeof e.data === 'object') as (T & { data: { groupId?: string; userId?: string; username?: string; groupName?: string } })[];
  if (memberships.length === 0) return entries;
  const userIds = [...new Set(memberships.map((m) => m.data.userId).filter((x): x is string => typeof x === 'string'))];
  const groupIds = [...new Set(memberships.map((m) => m.data.groupId).filter((x): x is string => typeof x === 'string'))];
  const users = new Map<string, string>();
  const groups = new Map<string, string>();
  for (let i = 0; i < userIds.length; i += 500) {
    for (const u of await db.kysely.selectFrom('directory_users').select(['id', 'username']).where('id', 'in', userIds.slice(i, i + 500)).execute()) users.set(u.id, u.username);
  }
  for (let i = 0; i < groupIds.length; i += 500) {
    for (const g of await db.kysely.selectFrom('directory_groups').select(['id', 'name']).where('id', 'in', groupIds.slice(i, i + 500)).execute()) groups.set(g.id, g.name);
  }
  for (const m of memberships) {
    const username = m.data.userId ? users.get(m.data.userId) : undefined;
    const groupName = m.data.groupId ? groups.get(m.data.groupId) : undefined;
    m.data = { ...m.data, ...(username && !m.data.username ? { username } : {}), ...(groupName && !m.data.groupName ? { groupName } : {}) };
  }
  return entries;
}

/** A version of stored settings for `ETag` / `If-Match`: the start of the SHA-256 of their text. */
function settingsVersion(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 20);
}

export async function adminRoutes(app: FastifyInstance, opts: AdminRoutesOptions): Promise<void> {
  const { db, connectors, reconciler, runner, secrets } = opts;

  // cookies are read here only: SCIM requests, the hot path, never parse them
  await app.register(cookie);
  app.addHook('onRequest', authenticate(opts.auth));

  app.setErrorHandler((error: FastifyError | ApiError, req, reply) => {
    if (error instanceof ApiError) return reply.code(error.status).send({ error: { code: error.code, message: error.message, ...(error.details ? { details: error.details } : {}) } });
    if (error instanceof SettingsError) return reply.code(400).send({ error: { code: 'invalid_settings', message: error.message, details: error.errors } });
    if (error instanceof NotFoundError) return reply.code(404).send({ error: { code: 'not_found', message: error.message } });
    if (error instanceof ConflictError) return reply.code(409).send({ error: { code: 'conflict', message: error.message } });
    if (error instanceof SecretError) {
      req.log.error({ err: error }, 'a stored secret cannot be opened');
      return reply.code(500).send({ error: { code: 'secret_unreadable', message: `${error.message}. Enter the secret again, or start the service with the key it was sealed with.` } });
    }
    if (error instanceof LdapError) return reply.code(502).send({ error: { code: `ldap_${error.kind.replace('-', '_')}`, message: error.message } });
    if (error instanceof BusyError) return reply.code(409).send({ error: { code: 'busy', message: error.message, details: { runId: error.runId } } });
    const status = (error as FastifyError).statusCode;
    if (status && status < 500) return reply.code(status).send({ error: { code: (error as FastifyError).code ?? 'bad_request', message: error.message } });
    req.log.error({ err: error }, 'admin API error');
    return reply.code(500).send({ error: { code: 'internal', message: 'internal error; nothing was changed' } });
  });
  app.setNotFoundHandler(async (_req, reply) => reply.code(404).send({ error: { code: 'not_found', message: 'no such API endpoint' } }));

  async function connectorOr404(id: string) {
    const c = await connectors.get(id);
    if (!c) throw new ApiError(404, 'not_found', `no connector '${id}'`);
    return c;
  }

  const wait = (req: FastifyRequest) => (req.query as Record<string, string | undefined>).wait !== 'false';

  await app.register(authRoutes, opts.auth);

  // ---------------------------------------------------------------- alerts: settings, a test, the history
  await app.register(alertRoutes, { db, secrets });

  // ---------------------------------------------------------------- targets: settings, comparisons, parked work
  await app.register(targetRoutes, { db, secrets, ...(opts.openTargetApp ? { openApp: opts.openTargetApp } : {}), ...(opts.pokeTargets ? { poke: opts.pokeTargets } : {}) });

  // ---------------------------------------------------------------- this API's description (OpenAPI 3.1)
  app.get('/openapi.json', async () => openApiDocument);

  // ---------------------------------------------------------------- connectors and settings
  const scimBaseUrl = (req: FastifyRequest, id: string) => `${opts.publicBaseUrl ?? `${req.protocol}://${req.host}`}/scim/v2/${id}`;

  app.get('/connectors', async (req) => {
    const list = await connectors.list();
    // each connector's latest run: one indexed lookup per connector (a handful), not a pass over all runs
    const latest = await Promise.all(
      list.map((c) => db.kysely.selectFrom('runs').select(['id', 'connector_id', 'status', 'trigger', 'started_at', 'ended_at', 'error']).where('connector_id', '=', c.id).orderBy('started_at', 'desc').limit(1).executeTakeFirst()),
    );
    const lastRun = new Map(latest.filter((r) => r !== undefined).map((r) => [r.connector_id, { id: r.id, status: r.status, trigger: r.trigger, startedAt: r.started_at, endedAt: r.ended_at, error: r.error }]));
    return {
      connectors: list.map(({ settings: _s, ...c }) => ({ ...c, lastRun: lastRun.get(c.id) ?? null, ...(c.kind === 'scim' ? { scimBaseUrl: scimBaseUrl(req, c.id) } : {}) })),
    };
  });

  /** Rename, enable or disable. A disabled connector's SCIM requests are refused and it is not scheduled. */
  app.patch('/connectors/:id', async (req) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    const b = body<{ name?: unknown; enabled?: unknown }>(req);
    const unknownKeys = Object.keys(b).filter((k) => k !== 'name' && k !== 'enabled');
    if (unknownKeys.length) throw new ApiError(400, 'invalid_connector', `unknown field(s): ${unknownKeys.join(', ')}; settings and source have endpoints of their own`);
    if (b.name !== undefined && (typeof b.name !== 'string' || !b.name.trim() || b.name.length > 200)) throw new ApiError(400, 'invalid_connector', "'name' must be a non-empty string of at most 200 characters");
    if (b.enabled !== undefined && typeof b.enabled !== 'boolean') throw new ApiError(400, 'invalid_connector', "'enabled' must be true or false");
    if (typeof b.name === 'string' && b.name.trim() !== c.name) await connectors.rename(c.id, b.name.trim(), req.actor!);
    if (typeof b.enabled === 'boolean' && b.enabled !== c.enabled) await connectors.setEnabled(c.id, b.enabled, req.actor!);
    const { settings: _s, ...updated } = (await connectors.get(c.id))!;
    return updated;
  });

  /** Delete a connector with its mirror and tokens; the directory keeps its users. Refused while it runs. */
  app.delete('/connectors/:id', async (req, reply) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    const running = await db.kysely.selectFrom('runs').select('id').where('connector_id', '=', c.id).where('status', '=', 'running').executeTakeFirst();
    if (running) throw new ApiError(409, 'busy', `connector '${c.id}' has a run in progress; wait for it to end`, { runId: running.id });
    await connectors.delete(c.id, req.actor!);
    return reply.code(204).send();
  });

  // ---------------------------------------------------------------- a SCIM connector's bearer tokens
  async function scimConnectorOr409(req: FastifyRequest) {
    const c = await connectorOr404((req.params as { id: string }).id);
    if (c.kind !== 'scim') throw new ApiError(409, 'not_a_scim_connector', `connector '${c.id}' is a ${c.kind} connector: it has no SCIM tokens`);
    return c;
  }

  app.get('/connectors/:id/tokens', async (req) => {
    const c = await scimConnectorOr409(req);
    return { tokens: (await connectors.listTokens(c.id)).map(({ connectorId: _c, ...t }) => t) };
  });

  /** Another token, shown once. Rotation: create one, put it in the identity provider, revoke the old one. */
  app.post('/connectors/:id/tokens', async (req, reply) => {
    const c = await scimConnectorOr409(req);
    const b = body<{ label?: unknown }>(req);
    if (b.label !== undefined && (typeof b.label !== 'string' || b.label.length > 200)) throw new ApiError(400, 'invalid_token', "'label' must be a string of at most 200 characters");
    const { token, info } = await connectors.createToken(c.id, (b.label as string | undefined) ?? '', req.actor!);
    const { connectorId: _c, ...shown } = info;
    return reply.code(201).send({ token, info: shown, scimBaseUrl: scimBaseUrl(req, c.id) });
  });

  app.delete('/connectors/:id/tokens/:tokenId', async (req, reply) => {
    const c = await scimConnectorOr409(req);
    const tokenId = (req.params as { tokenId: string }).tokenId;
    if (!(await connectors.revokeToken(c.id, tokenId, req.actor!))) throw new ApiError(404, 'not_found', `no valid token '${tokenId}' for connector '${c.id}'`);
    return reply.code(204).send();
  });

  app.get('/connectors/:id', async (req) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    const source = isPullKind(c.kind) ? redactSource(c.kind, (await connectors.getSource(c.id)) ?? {}) : undefined;
    const stored = await storedSettings(c.id);
    return { ...c, settings: settingsFromText(stored.text, c.id), settingsVersion: stored.version, ...(source ? { source, currentRun: await runner.currentRun(c.id) } : {}), ...(c.kind === 'scim' ? { scimBaseUrl: scimBaseUrl(req, c.id) } : {}) };
  });

  /** A new connector. SCIM: its first token is in the answer, once. Graph: the source settings are checked and sealed. */
  app.post('/connectors', async (req, reply) => {
    const b = body<{ id?: unknown; name?: unknown; kind?: unknown; source?: unknown; settings?: unknown }>(req);
    if (b.kind !== 'scim' && b.kind !== 'graph' && b.kind !== 'ldap') throw new ApiError(400, 'invalid_connector', "'kind' must be 'scim', 'graph' or 'ldap'");
    if (typeof b.name !== 'string' || !b.name.trim() || b.name.length > 200) throw new ApiError(400, 'invalid_connector', "'name' must be a non-empty string of at most 200 characters");
    if (b.id !== undefined && (typeof b.id !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(b.id))) throw new ApiError(400, 'invalid_connector', "'id' must be lower-case letters, digits and dashes (at most 63)");
    const id = (b.id as string | undefined) ?? randomUUID();
    if (await connectors.get(id)) throw new ApiError(409, 'connector_exists', `a connector '${id}' exists already`);
    const settings = b.settings === undefined ? undefined : validateSettings(b.settings);
    const kind = b.kind as ConnectorKind;
    if (!isPullKind(kind) && b.source !== undefined) throw new ApiError(400, 'invalid_connector', `a ${kind} connector has no source settings: its identity provider connects to usersync`);
    const source = isPullKind(kind) ? prepareSource(kind, id, b.source ?? {}, undefined, secrets) : undefined;
    try {
      await connectors.create({ id, name: b.name, kind, ...(settings ? { settings: settings as unknown as Record<string, unknown> } : {}), ...(source ? { source } : {}) }, req.actor!);
    } catch (e) {
      if (isUniqueViolation(e)) throw new ApiError(409, 'connector_exists', `a connector '${id}' exists already`);
      throw e;
    }
    const created = (await connectors.get(id))!;
    const out: Record<string, unknown> = { ...created, settings: await loadSettings(db, id) };
    if (source && isPullKind(kind)) out.source = redactSource(kind, source);
    if (kind === 'scim') {
      out.token = (await connectors.createToken(id, 'first token', req.actor!)).token;
      out.scimBaseUrl = scimBaseUrl(req, id);
    }
    return reply.code(201).send(out);
  });

  app.get('/connectors/:id/source', async (req) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    if (!isPullKind(c.kind)) throw new ApiError(409, 'not_a_pull_connector', `connector '${c.id}' is a ${c.kind} connector: it has no source settings`);
    return redactSource(c.kind, (await connectors.getSource(c.id)) ?? {});
  });

  /** PUT: the whole source settings (secrets left out keep their stored values); PATCH: only the fields given. */
  async function saveSource(req: FastifyRequest, partial: boolean) {
    const c = await connectorOr404((req.params as { id: string }).id);
    if (!isPullKind(c.kind)) throw new ApiError(409, 'not_a_pull_connector', `connector '${c.id}' is a ${c.kind} connector: it has no source settings`);
    const stored = (await connectors.getSource(c.id)) ?? {};
    const input = body(req);
    // PUT starts from the defaults, keeping only the stored secrets; PATCH starts from what is stored
    const base = partial ? stored : storedSecrets(c.kind, stored);
    const next = prepareSource(c.kind, c.id, input, base, secrets);
    await connectors.setSource(c.id, next, req.actor!, secretFields(c.kind));
    return redactSource(c.kind, next);
  }
  app.put('/connectors/:id/source', (req) => saveSource(req, false));
  app.patch('/connectors/:id/source', (req) => saveSource(req, true));

  /** Check the credentials, the permissions and the scope, and name what is missing. */
  app.post('/connectors/:id/test', async (req) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    if (!isPullKind(c.kind)) throw new ApiError(409, 'not_a_pull_connector', `connector '${c.id}' is a SCIM connector: its identity provider connects to usersync`);
    await audit(db.kysely, req.actor!, 'connector.test', c.id, {});
    return runner.test(c.id);
  });

  /** The test user search: the provider's entry, the mirror record, and the directory user and groups the rules would give it; writes nothing. */
  app.post('/connectors/:id/search-user', async (req) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    if (!isPullKind(c.kind)) throw new ApiError(409, 'not_a_pull_connector', `connector '${c.id}' is a SCIM connector: its identity provider connects to usersync`);
    const b = body<{ username?: unknown }>(req);
    if (typeof b.username !== 'string' || !b.username.trim() || b.username.length > 1024) throw new ApiError(400, 'invalid_username', "'username' must be a non-empty string of at most 1024 characters");
    const result = await runner.searchUser(c.id, b.username.trim());
    if (!result) throw new ApiError(409, 'not_supported', `connector '${c.id}' (${c.kind}) has no test user search`);
    await audit(db.kysely, req.actor!, 'connector.search-user', c.id, { username: b.username.trim(), found: result.found });
    return result;
  });

  /** Sync one user now, by username (sync on login). Answers with the directory user and its groups. */
  app.post('/connectors/:id/sync-user', async (req) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    const b = body<{ username?: unknown }>(req);
    if (typeof b.username !== 'string' || !b.username.trim() || b.username.length > 1024) throw new ApiError(400, 'invalid_username', "'username' must be a non-empty string of at most 1024 characters");
    const result = await runner.syncUser(c.id, b.username.trim());
    await audit(db.kysely, req.actor!, 'connector.sync-user', c.id, { username: b.username, outcome: result.outcome, runId: result.runId });
    return result;
  });

  /** The stored settings' text, and its version (what `If-Match` names). */
  async function storedSettings(id: string): Promise<{ text: string; version: string }> {
    const row = await db.kysely.selectFrom('connectors').select('settings').where('id', '=', id).executeTakeFirstOrThrow();
    return { text: row.settings, version: settingsVersion(row.settings) };
  }

  app.get('/connectors/:id/settings', async (req, reply) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    const stored = await storedSettings(c.id);
    reply.header('etag', `"${stored.version}"`);
    return settingsFromText(stored.text, c.id);
  });

  /**
   * Save settings (PUT: the whole document, defaults fill gaps; PATCH: a partial update) and re-evaluate.
   * The write is a compare-and-swap on the stored text: with `If-Match` (the version the administrator
   * loaded) a save made meanwhile by someone else is a 412, not silently overwritten; without it, a PATCH
   * is applied again to what is there now, so two PATCHes of different fields both take effect.
   */
  async function saveSettings(req: FastifyRequest, reply: FastifyReply, partial: boolean) {
    const c = await connectorOr404((req.params as { id: string }).id);
    const ifMatch = req.headers['if-match'];
    const expected = typeof ifMatch === 'string' && ifMatch.trim() !== '*' ? ifMatch.trim().replace(/^W\//, '').replace(/^"|"$/g, '') : undefined;
    const conflict = () => new ApiError(412, 'settings_changed', 'someone saved these settings after you loaded them; reload to see their change, then make yours again');
    const input = body(req);
    let next: ConnectorSettings | undefined;
    for (let attempt = 0; !next; attempt++) {
      const stored = await storedSettings(c.id);
      if (expected !== undefined && expected !== stored.version) throw conflict();
      const current = settingsFromText(stored.text, c.id);
      const candidate: ConnectorSettings = partial ? settingsPatch(current, input) : validateSettings(input);
      const swapped = await db.transaction(async (trx) => {
        const res = await trx.updateTable('connectors').set({ settings: JSON.stringify(candidate), updated_at: now() }).where('id', '=', c.id).where('settings', '=', stored.text).executeTakeFirst();
        if (Number(res.numUpdatedRows) === 0) return false;
        await audit(trx, req.actor!, 'settings.update', c.id, { before: current, after: candidate });
        return true;
      });
      if (swapped) next = candidate;
      else if (expected !== undefined || attempt >= 10) throw conflict();
    }
    const version = settingsVersion(JSON.stringify(next));
    reply.header('etag', `"${version}"`);
    // Changing a rule re-evaluates the directory from the mirror, without asking the provider again.
    const run = reconciler.fullPass(c.id, 'settings-change', next);
    if (!wait(req)) {
      run.catch((e) => req.log.error({ err: e }, 're-evaluation after a settings change failed'));
      return reply.code(202).send({ settings: next, settingsVersion: version, reevaluation: 'started' });
    }
    try {
      return { settings: next, settingsVersion: version, reevaluation: summarise(await run, 100) };
    } catch (e) {
      // the settings are saved: say so, rather than the generic "nothing was changed"
      req.log.error({ err: e }, 're-evaluation after a settings change failed');
      throw new ApiError(500, 'reevaluation_failed', `the settings were saved, but re-evaluating the directory with them failed (${e instanceof Error ? e.message : String(e)}); run a sync to try again`);
    }
  }
  app.put('/connectors/:id/settings', (req, reply) => saveSettings(req, reply, false));
  app.patch('/connectors/:id/settings', (req, reply) => saveSettings(req, reply, true));

  /** The full plan for the current mirror and candidate settings (the stored ones when none are given). */
  app.post('/connectors/:id/preview', async (req) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    const b = body<{ settings?: unknown }>(req);
    const current = await loadSettings(db, c.id);
    const candidate = b.settings === undefined ? current : settingsPatch(current, b.settings);
    const limit = limitParam((req.query as Record<string, string>).limit, MAX_LISTED_CHANGES, 100_000);
    const report = await reconciler.preview(c.id, candidate, limit);
    const summary = summarise(report, limit);
    return { ...summary, changes: await nameMemberships(db, summary.changes), settings: candidate, targetProblems: await targetProblems(db, c.id, summary.changes) };
  });

  app.post('/connectors/:id/sync', async (req, reply) => {
    const c = await connectorOr404((req.params as { id: string }).id);
    if (isPullKind(c.kind)) {
      // A pull connector reads its provider: a delta round when it can, a full read when asked or needed.
      const mode = (body<{ mode?: unknown }>(req).mode ?? 'auto') as PullMode;
      if (!['auto', 'full', 'delta'].includes(mode)) throw new ApiError(400, 'invalid_mode', "'mode' must be 'auto', 'full' or 'delta'");
      const handle = await runner.start(c.id, 'manual', mode);
      await audit(db.kysely, req.actor!, 'connector.sync', c.id, { runId: handle.runId, mode });
      if (!wait(req)) {
        handle.done.catch(() => {});
        return reply.code(202).send({ runId: handle.runId, status: 'running' });
      }
      return handle.done;
    }
    await audit(db.kysely, req.actor!, 'connector.sync', c.id, {});
    const run = reconciler.fullPass(c.id, 'manual');
    if (!wait(req)) {
      run.catch((e) => req.log.error({ err: e }, 'manual sync failed'));
      return reply.code(202).send({ status: 'started' });
    }
    return summarise(await run, 100);
  });

  // ---------------------------------------------------------------- runs and held changes
  app.get('/runs', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    let query = db.kysely.selectFrom('runs').selectAll().orderBy('started_at', 'desc').limit(limitParam(q.limit, 50, 500));
    if (q.connector) query = query.where('connector_id', '=', q.connector);
    if (q.status) query = query.where('status', '=', q.status);
    const rows = await query.execute();
    return { runs: rows.map((r) => ({ id: r.id, connectorId: r.connector_id, trigger: r.trigger, status: r.status, phase: r.phase || null, startedAt: r.started_at, endedAt: r.ended_at, counters: JSON.parse(r.counters), peakRss: Number(r.peak_rss), error: r.error })) };
  });

  app.get('/runs/:id', async (req) => {
    const id = (req.params as { id: string }).id;
    const r = await db.kysely.selectFrom('runs').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) throw new ApiError(404, 'not_found', `no run '${id}'`);
    const log = await db.kysely.selectFrom('run_logs').select(['at', 'level', 'message']).where('run_id', '=', id).orderBy('seq').limit(1000).execute();
    const held = await db.kysely.selectFrom('held_changes').select(['user_id', 'op', 'data', 'status']).where('run_id', '=', id).orderBy('seq').limit(10_000).execute();
    const changes = await db.kysely.selectFrom('change_feed').select(['seq', 'entity', 'entity_id', 'op', 'data']).where('run_id', '=', id).orderBy('seq').limit(1000).execute();
    return {
      id: r.id,
      connectorId: r.connector_id,
      trigger: r.trigger,
      status: r.status,
      phase: r.phase || null,
      progress: JSON.parse(r.progress) as unknown,
      startedAt: r.started_at,
      endedAt: r.ended_at,
      counters: JSON.parse(r.counters),
      peakRss: Number(r.peak_rss),
      error: r.error,
      log,
      held: held.map((h) => ({ userId: h.user_id, op: h.op, status: h.status, ...JSON.parse(h.data) })),
      changes: await nameMemberships(db, changes.map((c) => ({ seq: Number(c.seq), entity: c.entity, entityId: c.entity_id, op: c.op, data: JSON.parse(c.data) as unknown }))),
    };
  });

  /**
   * A run's progress as server-sent events: `progress` whenever its phase, progress or counters change
   * (read from the database, so a run on another instance streams too), then `end`.
   */
  app.get('/runs/:id/events', async (req, reply) => {
    const id = (req.params as { id: string }).id;
    const read = () => db.kysely.selectFrom('runs').select(['status', 'phase', 'progress', 'counters', 'error']).where('id', '=', id).executeTakeFirst();
    if (!(await read())) throw new ApiError(404, 'not_found', `no run '${id}'`);
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    let last = '';
    let closed = false;
    req.raw.on('close', () => (closed = true));
    const onLocal = (runId: string) => {
      if (runId === id) wake?.();
    };
    let wake: (() => void) | undefined;
    runner.events.on('progress', onLocal);
    try {
      while (!closed) {
        const r = await read();
        if (!r) break;
        const payload = JSON.stringify({ status: r.status, phase: r.phase || null, progress: JSON.parse(r.progress) as unknown, counters: JSON.parse(r.counters) as unknown, error: r.error });
        if (payload !== last) {
          res.write(`event: progress\ndata: ${payload}\n\n`);
          last = payload;
        }
        if (r.status !== 'running') {
          res.write(`event: end\ndata: ${payload}\n\n`);
          break;
        }
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, 500);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
      }
    } finally {
      runner.events.off('progress', onLocal);
      res.end();
    }
  });

  app.post('/runs/:id/approve', async (req) => reconciler.approve((req.params as { id: string }).id, req.actor!));
  app.post('/runs/:id/reject', async (req) => reconciler.reject((req.params as { id: string }).id, req.actor!));

  // ---------------------------------------------------------------- directory: local users
  app.get('/users', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    let query = db.kysely.selectFrom('directory_users').selectAll().orderBy('username_key').limit(limitParam(q.limit, 100, 1000));
    // substring search on the folded name (instr/strpos: no LIKE wildcards to escape)
    if (q.search) query = query.where(sql<boolean>`${db.dialect === 'sqlite' ? sql`instr` : sql`strpos`}(username_key, ${directoryKey(q.search)}) > 0`);
    const rows = await query.execute();
    return { users: rows.map(userJson) };
  });

  app.get('/users/:id', async (req) => {
    const id = (req.params as { id: string }).id;
    const u = await db.kysely.selectFrom('directory_users').selectAll().where('id', '=', id).executeTakeFirst();
    if (!u) throw new ApiError(404, 'not_found', `no user '${id}'`);
    const groups = await db.kysely
      .selectFrom('directory_memberships as m')
      .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
      .select(['g.id', 'g.name', 'm.managed_by'])
      .where('m.user_id', '=', id)
      .orderBy('g.name_key')
      .execute();
    // the user's own changes, and its membership changes (found by the user part of their feed id, on an
    // index of membership rows: `entity = 'membership'` is written out so that the planner may use it)
    const columns = ['seq', 'at', 'entity', 'op', 'data', 'run_id'] as const;
    const own = await db.kysely.selectFrom('change_feed').select(columns).where('entity', '=', 'user').where('entity_id', '=', id).orderBy('seq', 'desc').limit(100).execute();
    const memberships = await db.kysely
      .selectFrom('change_feed')
      .select(columns)
      .where(sql<boolean>`entity = 'membership' AND ${memberUserIdSql(db.dialect)} = ${id}`)
      .orderBy('seq', 'desc')
      .limit(100)
      .execute();
    const history = [...own, ...memberships].sort((a, b) => Number(b.seq) - Number(a.seq)).slice(0, 100);
    return {
      ...userJson(u),
      groups: groups.map((g) => ({ id: g.id, name: g.name, managedBy: g.managed_by })),
      targets: await userTargets(db, id),
      history: await nameMemberships(db, history.map((h) => ({ seq: Number(h.seq), at: h.at, entity: h.entity, op: h.op, runId: h.run_id, data: JSON.parse(h.data) as unknown }))),
    };
  });

  // ---------------------------------------------------------------- directory: groups
  app.get('/groups', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    let query = db.kysely
      .selectFrom('directory_groups as g')
      .select(['g.id', 'g.name', 'g.owner_connector_id', 'g.source_id', 'g.created_at', 'g.updated_at'])
      .orderBy('g.name_key')
      .limit(limitParam(q.limit, 100, 1000));
    if (q.search) query = query.where(sql<boolean>`${db.dialect === 'sqlite' ? sql`instr` : sql`strpos`}(g.name_key, ${directoryKey(q.search)}) > 0`);
    const rows = await query.execute();
    // member counts of just the groups listed, in one grouped query
    const counts = rows.length
      ? await db.kysely
          .selectFrom('directory_memberships')
          .select(['group_id', (e) => e.fn.count<number>('user_id').distinct().as('n')])
          .where('group_id', 'in', rows.map((g) => g.id))
          .groupBy('group_id')
          .execute()
      : [];
    const count = new Map(counts.map((c) => [c.group_id, Number(c.n)]));
    return { groups: rows.map((g) => ({ id: g.id, name: g.name, owner: g.owner_connector_id ? { connectorId: g.owner_connector_id, sourceId: g.source_id } : 'local', memberCount: count.get(g.id) ?? 0, createdAt: g.created_at, updatedAt: g.updated_at })) };
  });

  /** A group: its members, each with what manages the membership, the provider groups that feed it, and its history. */
  app.get('/groups/:id', async (req) => {
    const id = (req.params as { id: string }).id;
    const g = await db.kysely.selectFrom('directory_groups').selectAll().where('id', '=', id).executeTakeFirst();
    if (!g) throw new ApiError(404, 'not_found', `no group '${id}'`);
    const limit = limitParam((req.query as Record<string, string | undefined>).limit, 1000, 10_000);
    const members = await db.kysely
      .selectFrom('directory_memberships as m')
      .innerJoin('directory_users as u', 'u.id', 'm.user_id')
      .select(['u.id', 'u.username', 'u.display_name', 'u.active', 'm.managed_by'])
      .where('m.group_id', '=', id)
      .orderBy('u.username_key')
      .limit(limit)
      .execute();
    const total = await db.kysely.selectFrom('directory_memberships').select((e) => e.fn.count<number>('user_id').distinct().as('n')).where('group_id', '=', id).executeTakeFirstOrThrow();
    const links = await db.kysely.selectFrom('group_links').select(['connector_id', 'source_id']).where('group_id', '=', id).execute();
    // a membership's feed id is '<group id>:<user id>': the range ['<id>:', '<id>;') is exactly this group's
    const history = await db.kysely
      .selectFrom('change_feed')
      .select(['seq', 'at', 'entity', 'entity_id', 'op', 'data', 'run_id'])
      .where((eb) => eb.or([eb.and([eb('entity', '=', 'group'), eb('entity_id', '=', id)]), eb.and([eb('entity', '=', 'membership'), eb('entity_id', '>=', `${id}:`), eb('entity_id', '<', `${id};`)])]))
      .orderBy('seq', 'desc')
      .limit(100)
      .execute();
    return {
      id: g.id,
      name: g.name,
      owner: g.owner_connector_id ? { connectorId: g.owner_connector_id, sourceId: g.source_id } : 'local',
      createdAt: g.created_at,
      updatedAt: g.updated_at,
      memberCount: Number(total.n),
      members: members.map((m) => ({ id: m.id, username: m.username, displayName: m.display_name, active: Number(m.active) === 1, managedBy: m.managed_by })),
      providerGroups: links.map((l) => ({ connectorId: l.connector_id, sourceId: l.source_id })),
      history: await nameMemberships(db, history.map((h) => ({ seq: Number(h.seq), at: h.at, entity: h.entity, entityId: h.entity_id, op: h.op, runId: h.run_id, data: JSON.parse(h.data) as unknown }))),
    };
  });

  /** A local user: created by an administrator, owned by no connector (copy behaviour may adopt it). */
  app.post('/users', async (req, reply) => {
    const b = body<{ username?: unknown; email?: unknown; displayName?: unknown; active?: unknown; groups?: unknown }>(req);
    if (typeof b.username !== 'string' || b.username.trim() === '' || b.username.length > 255) throw new ApiError(400, 'invalid_user', "'username' must be a non-empty string of at most 255 characters");
    if (b.email !== undefined && b.email !== null && typeof b.email !== 'string') throw new ApiError(400, 'invalid_user', "'email' must be a string");
    if (b.displayName !== undefined && typeof b.displayName !== 'string') throw new ApiError(400, 'invalid_user', "'displayName' must be a string");
    if (b.active !== undefined && typeof b.active !== 'boolean') throw new ApiError(400, 'invalid_user', "'active' must be a boolean");
    const groups = b.groups === undefined ? [] : b.groups;
    if (!Array.isArray(groups) || groups.some((g) => typeof g !== 'string' || g.trim() === '')) throw new ApiError(400, 'invalid_user', "'groups' must be a list of group names");
    const id = newId();
    const at = now();
    try {
      await db.transaction(async (trx) => {
        const user = {
          id,
          username: b.username as string,
          username_key: directoryKey(b.username as string),
          email: (b.email as string | undefined) ?? null,
          display_name: (b.displayName as string | undefined) ?? (b.username as string),
          active: b.active === false ? 0 : 1,
          attributes: '{}',
          owner_connector_id: null,
          source_id: null,
          in_scope: 1,
          created_at: at,
          updated_at: at,
        };
        await trx.insertInto('directory_users').values(user).execute();
        await trx.insertInto('change_feed').values({ at, connector_id: null, run_id: null, entity: 'user', entity_id: id, op: 'create', data: JSON.stringify({ after: { username: user.username, email: user.email, displayName: user.display_name, active: user.active === 1 }, by: req.actor }) }).execute();
        for (const name of groups as string[]) {
          const key = directoryKey(name);
          let g = await trx.selectFrom('directory_groups').select('id').where('name_key', '=', key).executeTakeFirst();
          if (!g) {
            g = { id: newId() };
            await trx.insertInto('directory_groups').values({ id: g.id, name, name_key: key, owner_connector_id: null, source_id: null, created_at: at, updated_at: at }).execute();
            await trx.insertInto('change_feed').values({ at, connector_id: null, run_id: null, entity: 'group', entity_id: g.id, op: 'create', data: JSON.stringify({ name, by: req.actor }) }).execute();
          }
          await trx.insertInto('directory_memberships').values({ group_id: g.id, user_id: id, managed_by: 'local', created_at: at }).onConflict((oc) => oc.doNothing()).execute();
          await trx.insertInto('change_feed').values({ at, connector_id: null, run_id: null, entity: 'membership', entity_id: `${g.id}:${id}`, op: 'add', data: JSON.stringify({ groupId: g.id, userId: id, managedBy: 'local', by: req.actor }) }).execute();
        }
        await audit(trx, req.actor!, 'user.create', id, { username: user.username, groups });
      });
    } catch (e) {
      if (isUniqueViolation(e)) throw new ApiError(409, 'username_taken', `a user named '${String(b.username)}' already exists`);
      throw e;
    }
    return reply.code(201).send(userJson((await db.kysely.selectFrom('directory_users').selectAll().where('id', '=', id).executeTakeFirst())!));
  });

  /** The audit log, newest first; `search`: a part of the actor, action or target; `before`: older than that entry (paging). */
  app.get('/audit', async (req) => {
    const q = req.query as Record<string, string | undefined>;
    let query = db.kysely.selectFrom('audit_log').selectAll().orderBy('seq', 'desc').limit(limitParam(q.limit, 100, 1000));
    if (q.before !== undefined && q.before !== '') {
      if (!/^\d{1,15}$/.test(q.before)) throw new ApiError(400, 'invalid_before', "'before' must be the seq of an entry (a whole number)");
      query = query.where('seq', '<', Number(q.before));
    }
    if (q.search) {
      if (q.search.length > 200) throw new ApiError(400, 'invalid_search', "'search' must be at most 200 characters");
      const find = sql`${db.dialect === 'sqlite' ? sql`instr` : sql`strpos`}`;
      const needle = q.search.toLowerCase();
      query = query.where(sql<boolean>`(${find}(lower(actor), ${needle}) > 0 OR ${find}(lower(action), ${needle}) > 0 OR ${find}(lower(target), ${needle}) > 0)`);
    }
    const rows = await query.execute();
    return { entries: rows.map((r) => ({ seq: Number(r.seq), at: r.at, actor: r.actor, action: r.action, target: r.target, details: JSON.parse(r.details) })) };
  });
}

function userJson(u: { id: string; username: string; email: string | null; display_name: string; active: number | string; attributes: string; owner_connector_id: string | null; source_id: string | null; created_at: string; updated_at: string; in_scope?: number | string }) {
  return {
    id: u.id,
    username: u.username,
    email: u.email,
    displayName: u.display_name,
    active: Number(u.active) === 1,
    attributes: JSON.parse(u.attributes) as Record<string, string>,
    owner: u.owner_connector_id ? { connectorId: u.owner_connector_id, sourceId: u.source_id } : 'local',
    inScope: u.in_scope === undefined ? true : Number(u.in_scope) === 1,
    createdAt: u.created_at,
    updatedAt: u.updated_at,
  };
}
