// The target API under /api, inside the admin API's authentication (req.actor is set): targets and their
// settings (the secret shown only as {"set": …}), a connection test, pause and resume, full comparisons,
// adoption of what the first comparison matched, and parked work with its retry. Every change is audited.
// Errors are ApiErrors, rendered by the admin API's error handler as {"error": {"code", "message", "details"?}}.

import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, body, limitParam } from '../admin/errors.ts';
import { SettingsError } from '../domain/settings-validate.ts';
import type { Db } from '../store/db.ts';
import { audit } from '../store/connectors.ts';
import { newId } from '../store/ids.ts';
import type { SecretBox } from '../store/secrets.ts';
import type { TargetRecord, WorkRow } from '../store/targets.ts';
import { TargetStore } from '../store/targets.ts';
import { openApp as openAppDefault } from './apps.ts';
import { CATEGORY_TEXT, adoptComparison } from './compare.ts';
import type { ScopeImpact } from './impact.ts';
import { scopeImpact } from './impact.ts';
import { isTargetKind, openConnection, prepareTargetSettings, redactStoredTarget, targetSettings } from './config.ts';
import type { TargetSettings } from './settings.ts';
import type { AppConnection, TargetApp, TargetKind } from './types.ts';
import { TargetError } from './types.ts';

export interface TargetRoutesOptions {
  db: Db;
  secrets: SecretBox;
  openApp?: (kind: TargetKind, conn: AppConnection) => TargetApp;
  /** wake the delivery (a change that makes work due now) */
  poke?: () => void;
}

const ID_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** settings whose change alters what the target should have: everything is looked at again */
const SCOPE_FIELDS: readonly (keyof TargetSettings)[] = ['connectors', 'groups', 'users', 'localUsers', 'cleanup', 'bitbucketInactive', 'licenceGroups', 'verifiedDomains'];
/** settings that decide who is in the scope */
const WHO_FIELDS: readonly (keyof TargetSettings)[] = ['connectors', 'groups', 'users', 'localUsers'];
const CLEANUP_DONE: Record<TargetSettings['cleanup'], string> = { deactivate: 'deactivated (Bitbucket: as bitbucketInactive says)', delete: 'deleted', 'remove-groups': 'taken out of their groups', none: 'left as they are' };

function actorOf(req: FastifyRequest): string {
  if (!req.actor) throw new ApiError(401, 'unauthenticated', 'sign in first');
  return req.actor;
}

function settingsError(e: unknown): never {
  if (e instanceof SettingsError) throw new ApiError(400, 'invalid_settings', e.message, e.errors);
  throw e;
}

export async function targetRoutes(app: FastifyInstance, opts: TargetRoutesOptions): Promise<void> {
  const { db, secrets } = opts;
  const store = new TargetStore(db);
  const openApp = opts.openApp ?? openAppDefault;

  async function targetOr404(req: FastifyRequest): Promise<TargetRecord> {
    const id = (req.params as { id: string }).id;
    const t = await store.get(id);
    if (!t) throw new ApiError(404, 'not_found', `no target '${id}'`);
    return t;
  }

  async function view(t: TargetRecord, maxSeq: number) {
    const [work, ledger, last] = await Promise.all([store.workCounts(t.id), store.ledgerCounts(t.id), store.comparisons(t.id, 1)]);
    const c = last[0];
    return {
      id: t.id,
      name: t.name,
      kind: t.kind,
      enabled: t.enabled,
      paused: t.paused,
      phase: t.phase,
      backlog: { feedRows: Math.max(0, maxSeq - t.cursorSeq), pending: work.pending, parked: work.parked },
      owned: ledger,
      status: t.status,
      lastComparison: c ? { id: c.id, mode: c.mode, status: c.status, requestedAt: c.requested_at, endedAt: c.ended_at, summary: JSON.parse(c.summary) as unknown, error: c.error } : null,
      createdAt: t.createdAt,
      updatedAt: t.updatedAt,
    };
  }

  app.get('/targets', async () => {
    const maxSeq = await store.maxFeedSeq();
    return { targets: await Promise.all((await store.list()).map((t) => view(t, maxSeq))) };
  });

  app.get('/targets/:id', async (req) => {
    const t = await targetOr404(req);
    return { ...(await view(t, await store.maxFeedSeq())), settings: redactStoredTarget(t.settings) };
  });

  /** A new target: nothing is sent until its first comparison has been reviewed and its matches adopted. */
  app.post('/targets', async (req, reply) => {
    const actor = actorOf(req);
    const b = body<{ id?: unknown; name?: unknown; kind?: unknown; settings?: unknown }>(req);
    const unknownKeys = Object.keys(b).filter((k) => !['id', 'name', 'kind', 'settings'].includes(k));
    if (unknownKeys.length) throw new ApiError(400, 'invalid_target', `unknown field(s): ${unknownKeys.join(', ')}`);
    if (!isTargetKind(b.kind)) throw new ApiError(400, 'invalid_target', "'kind' must be 'jira', 'confluence', 'bitbucket' or 'atlassian-cloud'");
    if (typeof b.name !== 'string' || !b.name.trim() || b.name.length > 200) throw new ApiError(400, 'invalid_target', "'name' must be a non-empty string of at most 200 characters");
    const id = b.id === undefined ? newId() : b.id;
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) throw new ApiError(400, 'invalid_target', "'id' must be lowercase letters, digits and dashes (at most 63), starting with a letter or digit");
    if (await store.get(id)) throw new ApiError(409, 'exists', `a target '${id}' exists already`);
    let settings: Record<string, unknown>;
    try {
      settings = prepareTargetSettings(b.kind, id, b.settings ?? {}, undefined, secrets, false);
    } catch (e) {
      settingsError(e);
    }
    await db.transaction(async (trx) => {
      await store.insert(trx, { id, name: b.name as string, kind: b.kind as string, settings, cursorSeq: await store.maxFeedSeq(trx) });
      await store.queueComparison(trx, { id: newId(), targetId: id, mode: 'report', requestedBy: actor });
      await audit(trx, actor, 'target.create', `target:${id}`, { kind: b.kind, name: b.name, settings: redactStoredTarget(settings) });
    });
    opts.poke?.();
    const t = (await store.get(id))!;
    return reply.code(201).send({ ...(await view(t, await store.maxFeedSeq())), settings: redactStoredTarget(t.settings) });
  });

  /** Rename, enable or disable, pause or resume. */
  app.patch('/targets/:id', async (req) => {
    const actor = actorOf(req);
    const t = await targetOr404(req);
    const b = body<{ name?: unknown; enabled?: unknown; paused?: unknown }>(req);
    const unknownKeys = Object.keys(b).filter((k) => !['name', 'enabled', 'paused'].includes(k));
    if (unknownKeys.length) throw new ApiError(400, 'invalid_target', `unknown field(s): ${unknownKeys.join(', ')}; settings have an endpoint of their own`);
    if (b.name !== undefined && (typeof b.name !== 'string' || !b.name.trim() || b.name.length > 200)) throw new ApiError(400, 'invalid_target', "'name' must be a non-empty string of at most 200 characters");
    for (const k of ['enabled', 'paused'] as const) if (b[k] !== undefined && typeof b[k] !== 'boolean') throw new ApiError(400, 'invalid_target', `'${k}' must be true or false`);
    const change = {
      ...(typeof b.name === 'string' ? { name: b.name.trim() } : {}),
      ...(typeof b.enabled === 'boolean' ? { enabled: b.enabled } : {}),
      ...(typeof b.paused === 'boolean' ? { paused: b.paused } : {}),
    };
    await db.transaction(async (trx) => {
      await store.update(trx, t.id, change);
      const action = b.paused === true ? 'target.pause' : b.paused === false ? 'target.resume' : 'target.update';
      await audit(trx, actor, action, `target:${t.id}`, change);
    });
    opts.poke?.();
    return view((await store.get(t.id))!, await store.maxFeedSeq());
  });

  /** Delete a target and its ledger. Nothing is changed in the application. */
  app.delete('/targets/:id', async (req, reply) => {
    const actor = actorOf(req);
    const t = await targetOr404(req);
    await db.transaction(async (trx) => {
      await store.remove(trx, t.id);
      await audit(trx, actor, 'target.delete', `target:${t.id}`, { name: t.name, kind: t.kind });
    });
    return reply.code(204).send();
  });

  app.get('/targets/:id/settings', async (req) => redactStoredTarget((await targetOr404(req)).settings));

  async function saveSettings(req: FastifyRequest, merge: boolean) {
    const actor = actorOf(req);
    const t = await targetOr404(req);
    if (req.body === undefined || req.body === null) throw new ApiError(400, 'invalid_body', 'the request body must be a JSON object: the target settings');
    let next: Record<string, unknown>;
    try {
      next = prepareTargetSettings(t.kind as TargetKind, t.id, req.body, t.settings, secrets, merge);
    } catch (e) {
      settingsError(e);
    }
    const before = targetSettings(t.settings);
    const after = targetSettings(next);
    const scopeChanged = SCOPE_FIELDS.some((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]));
    const changed = Object.keys(next).filter((k) => JSON.stringify(next[k]) !== JSON.stringify(t.settings[k]));
    // Users taken out of the scope get the cleanup policy at once: the save must name how many.
    let impact: ScopeImpact | undefined;
    const differs = (k: keyof TargetSettings) => JSON.stringify(before[k]) !== JSON.stringify(after[k]);
    const policyChanged = differs('cleanup') || (t.kind === 'bitbucket' && differs('bitbucketInactive'));
    if (t.phase === 'active' && (WHO_FIELDS.some(differs) || policyChanged)) {
      impact = await scopeImpact(store, t.id, before, after, policyChanged);
      const affected = impact.leaving + impact.repoliced;
      const confirmed = (req.query as { confirmLeaving?: string }).confirmLeaving;
      if (affected > 0 && after.cleanup !== 'none' && confirmed !== String(affected)) {
        const parts = [
          ...(impact.leaving ? [`${impact.leaving} would leave the target's scope (e.g. ${impact.leavingExamples.slice(0, 3).join(', ')})`] : []),
          ...(impact.repoliced ? [`${impact.repoliced} already out of it would get the new policy`] : []),
        ];
        throw new ApiError(
          409,
          'confirm_scope_change',
          `Of the users usersync manages in this application, ${parts.join(', and ')}: they would be ${CLEANUP_DONE[after.cleanup]}. Save again with ?confirmLeaving=${affected} to go ahead.`,
          { ...impact, affected },
        );
      }
    }
    await db.transaction(async (trx) => {
      await store.update(trx, t.id, { settings: next });
      // a different scope or policy: every user and group is looked at again
      if (scopeChanged && t.phase === 'active') await store.enqueueEverything(trx, t.id);
      await audit(trx, actor, 'target.settings.update', `target:${t.id}`, { changed, reevaluated: scopeChanged && t.phase === 'active', ...(impact ? { leaving: impact.leaving, entering: impact.entering } : {}) });
    });
    opts.poke?.();
    return redactStoredTarget(next);
  }
  app.put('/targets/:id/settings', (req) => saveSettings(req, false));
  app.patch('/targets/:id/settings', (req) => saveSettings(req, true));

  /** Reach the application with the stored settings: each check a sentence. Changes nothing. */
  app.post('/targets/:id/test', async (req) => {
    const t = await targetOr404(req);
    const application = openApp(t.kind as TargetKind, openConnection(t.id, targetSettings(t.settings), secrets));
    try {
      const checks = await application.test();
      return { ok: checks.every((c) => c.ok), checks };
    } catch (e) {
      if (e instanceof TargetError) return { ok: false, checks: [{ name: 'reach the application', ok: false, message: e.message }] };
      throw e;
    } finally {
      await application.close?.();
    }
  });

  // ---------------------------------------------------------------- full comparisons and adoption
  app.post('/targets/:id/comparisons', async (req, reply) => {
    const actor = actorOf(req);
    const t = await targetOr404(req);
    const b = body<{ mode?: unknown }>(req);
    const mode = b.mode ?? 'report';
    if (mode !== 'report' && mode !== 'fix') throw new ApiError(400, 'invalid_comparison', "'mode' must be 'report' (change nothing) or 'fix' (repair what usersync owns)");
    if (mode === 'fix' && t.phase !== 'active') throw new ApiError(409, 'not_adopted', 'a target repairs only after its first comparison has been adopted; run a report, then adopt');
    if (!t.enabled) throw new ApiError(409, 'disabled', `target '${t.id}' is disabled; enable it first`);
    const running = await store.nextQueuedComparison(t.id);
    if (running) throw new ApiError(409, 'busy', 'a comparison of this target is queued or running', { comparisonId: running.id });
    const id = newId();
    await db.transaction(async (trx) => {
      await store.queueComparison(trx, { id, targetId: t.id, mode, requestedBy: actor });
      await audit(trx, actor, 'target.compare', `target:${t.id}`, { comparisonId: id, mode });
    });
    opts.poke?.();
    return reply.code(202).send({ id, status: 'queued', mode });
  });

  app.get('/targets/:id/comparisons', async (req) => {
    const t = await targetOr404(req);
    const limit = limitParam((req.query as { limit?: string }).limit, 20, 200);
    return {
      comparisons: (await store.comparisons(t.id, limit)).map((c) => ({ id: c.id, mode: c.mode, status: c.status, requestedBy: c.requested_by, requestedAt: c.requested_at, startedAt: c.started_at, endedAt: c.ended_at, summary: JSON.parse(c.summary) as unknown, error: c.error })),
    };
  });

  app.get('/targets/:id/comparisons/:comparisonId', async (req) => {
    const t = await targetOr404(req);
    const q = req.query as { category?: string; limit?: string; after?: string };
    const c = await store.comparison((req.params as { comparisonId: string }).comparisonId);
    if (!c || c.target_id !== t.id) throw new ApiError(404, 'not_found', 'no such comparison of this target');
    if (q.category !== undefined && !(q.category in CATEGORY_TEXT)) throw new ApiError(400, 'invalid_category', `'category' must be one of ${Object.keys(CATEGORY_TEXT).join(', ')}`);
    const after = q.after === undefined ? undefined : Number(q.after);
    if (after !== undefined && (!Number.isInteger(after) || after < -1)) throw new ApiError(400, 'invalid_after', "'after' must be the n of the last item seen");
    const limit = limitParam(q.limit, 200, 5000);
    const items = await store.comparisonItems(c.id, { ...(q.category ? { category: q.category } : {}), limit, ...(after !== undefined ? { after } : {}) });
    return {
      id: c.id,
      mode: c.mode,
      status: c.status,
      requestedBy: c.requested_by,
      requestedAt: c.requested_at,
      startedAt: c.started_at,
      endedAt: c.ended_at,
      error: c.error,
      summary: JSON.parse(c.summary) as unknown,
      categories: CATEGORY_TEXT,
      items: items.map((i) => ({ n: i.n, category: i.category, entity: i.entity, localId: i.local_id, remoteName: i.remote_name, detail: JSON.parse(i.detail) as unknown })),
    };
  });

  /** Adopt what the latest finished comparison matched, and start delivering. */
  app.post('/targets/:id/adopt', async (req) => {
    const actor = actorOf(req);
    const t = await targetOr404(req);
    const b = body<{ comparisonId?: unknown; exclude?: unknown }>(req);
    if (b.exclude !== undefined && (!Array.isArray(b.exclude) || b.exclude.some((x) => typeof x !== 'string'))) throw new ApiError(400, 'invalid_adoption', "'exclude' must be a list of usernames and group names to leave unowned");
    const running = await store.nextQueuedComparison(t.id);
    if (running) throw new ApiError(409, 'busy', 'a comparison of this target is queued or running; adopt from it when it is done', { comparisonId: running.id });
    const list = await store.comparisons(t.id, 50);
    const c = typeof b.comparisonId === 'string' ? list.find((x) => x.id === b.comparisonId) : list.find((x) => x.status === 'done');
    if (!c) throw new ApiError(409, 'no_comparison', 'there is no finished comparison to adopt from; run one first');
    if (c.status !== 'done') throw new ApiError(409, 'comparison_not_done', `comparison ${c.id} is ${c.status}`);
    const newer = list.find((x) => x.status === 'done');
    if (newer && newer.id !== c.id) throw new ApiError(409, 'comparison_outdated', `comparison ${c.id} is not the latest; adopt from ${newer.id}`);
    const result = await adoptComparison(store, t.id, c.id, (b.exclude as string[] | undefined) ?? []);
    await db.transaction((trx) => audit(trx, actor, 'target.adopt', `target:${t.id}`, { comparisonId: c.id, ...result, excluded: (b.exclude as string[] | undefined)?.length ?? 0 }));
    opts.poke?.();
    return { adopted: result, phase: 'active' };
  });

  // ---------------------------------------------------------------- what the target did
  /** The target's activity in its application, newest first: created, renamed, deactivated, groups, parked. */
  app.get('/targets/:id/events', async (req) => {
    const t = await targetOr404(req);
    const q = req.query as { limit?: string; before?: string; search?: string };
    const before = q.before === undefined || q.before === '' ? undefined : Number(q.before);
    if (before !== undefined && (!Number.isInteger(before) || before < 1)) throw new ApiError(400, 'invalid_before', "'before' must be the seq of an entry");
    if (q.search !== undefined && (typeof q.search !== 'string' || q.search.length > 200)) throw new ApiError(400, 'invalid_search', "'search' must be at most 200 characters");
    return { events: await store.events(t.id, { limit: limitParam(q.limit, 100, 1000), ...(before !== undefined ? { before } : {}), ...(q.search ? { search: q.search } : {}) }) };
  });

  // ---------------------------------------------------------------- parked work
  async function describeWork(rows: WorkRow[]) {
    const userIds = rows.filter((w) => w.key.startsWith('u:')).map((w) => w.key.slice(2));
    const groupIds = rows.filter((w) => w.key.startsWith('g:')).map((w) => w.key.slice(2));
    const users = new Map((await store.directoryUsers(userIds)).map((u) => [u.id, u.username]));
    const groups = new Map<string, string>();
    for (const id of groupIds) {
      const g = await store.directoryGroup(id);
      if (g) groups.set(id, g.name);
    }
    return rows.map((w) => {
      const id = w.key.slice(2);
      const isUser = w.key.startsWith('u:');
      return {
        key: w.key,
        entity: isUser ? 'user' : 'group',
        id,
        name: (isUser ? users.get(id) : groups.get(id)) ?? null,
        attempts: w.attempts,
        parkedAt: w.parkedAt,
        code: w.errorCode,
        error: w.error,
        since: w.createdAt,
      };
    });
  }

  app.get('/targets/:id/parked', async (req) => {
    const t = await targetOr404(req);
    const q = req.query as { limit?: string; after?: string };
    const rows = await store.parked(t.id, limitParam(q.limit, 100, 1000), q.after);
    return { parked: await describeWork(rows) };
  });

  app.post('/targets/:id/parked/retry', async (req) => {
    const actor = actorOf(req);
    const t = await targetOr404(req);
    const b = body<{ keys?: unknown }>(req);
    if (b.keys !== undefined && (!Array.isArray(b.keys) || b.keys.length > 10_000 || b.keys.some((k) => typeof k !== 'string' || !/^[ug]:/.test(k)))) {
      throw new ApiError(400, 'invalid_retry', "'keys' must be a list of parked work keys ('u:<user id>' or 'g:<group id>'); leave it out to retry all");
    }
    const retried = await db.transaction(async (trx) => {
      const n = await store.retryParked(trx, t.id, b.keys as string[] | undefined);
      await audit(trx, actor, 'target.retry', `target:${t.id}`, { retried: n, keys: (b.keys as string[] | undefined)?.slice(0, 100) ?? 'all' });
      return n;
    });
    // an outage's back-off is lifted too: the administrator says the application is back
    await store.setStatus(t.id, { unavailableUntil: undefined });
    opts.poke?.();
    return { retried };
  });
}
