// A rig for delivery tests: a store with a SCIM connector whose mirror the test writes (as Entra would),
// the real reconciler turning it into the directory and the change feed, and targets pointing at the
// Atlassian fakes over real HTTP.

import { normaliseResource } from '../../src/domain/scim/resource.ts';
import { RESOURCE_TYPES } from '../../src/domain/scim/schema.ts';
import type { Dialect } from '../../src/store/db.ts';
import { ConnectorStore } from '../../src/store/connectors.ts';
import { MirrorStore } from '../../src/store/mirror.ts';
import { SecretBox } from '../../src/store/secrets.ts';
import { TargetStore } from '../../src/store/targets.ts';
import { Reconciler } from '../../src/sync/reconciler.ts';
import { adoptComparison } from '../../src/targets/compare.ts';
import { prepareTargetSettings } from '../../src/targets/config.ts';
import type { TargetKind } from '../../src/targets/types.ts';
import type { TargetWorkerOptions } from '../../src/targets/worker.ts';
import { TargetWorker } from '../../src/targets/worker.ts';
import { newId } from '../../src/store/ids.ts';
import type { AtlassianFake } from '../support/atlassian/index.ts';
import type { TestStore } from '../support/store.ts';
import { openTestStore } from '../support/store.ts';

export const CONNECTOR = 'entra';

export interface UserInput {
  email?: string | null;
  displayName?: string;
  active?: boolean;
}

export class Rig {
  readonly mirror: MirrorStore;
  readonly reconciler: Reconciler;
  readonly targets: TargetStore;
  private readonly workers: TargetWorker[] = [];

  private constructor(
    readonly store: TestStore,
    readonly box: SecretBox,
  ) {
    this.mirror = new MirrorStore(store.db);
    this.reconciler = new Reconciler(store.db, { batchSize: 500 });
    this.targets = new TargetStore(store.db);
  }

  static async open(dialect: Dialect = 'sqlite', box: SecretBox = SecretBox.forTests()): Promise<Rig> {
    const store = await openTestStore(dialect);
    await new ConnectorStore(store.db).create({ id: CONNECTOR, name: 'Entra ID', kind: 'scim' }, 'test');
    return new Rig(store, box);
  }

  get db() {
    return this.store.db;
  }

  /** A user as Entra would push it; returns its mirror id. */
  async user(userName: string, input: UserInput = {}): Promise<string> {
    const email = input.email === undefined ? userName : input.email;
    const doc = normaliseResource(RESOURCE_TYPES.User, {
      userName,
      displayName: input.displayName ?? userName.split('@')[0],
      active: input.active ?? true,
      ...(email ? { emails: [{ type: 'work', primary: true, value: email }] } : {}),
    }).doc;
    return (await this.mirror.create(CONNECTOR, 'User', doc)).id;
  }

  async updateUser(id: string, change: { userName?: string; displayName?: string; active?: boolean; email?: string }): Promise<void> {
    await this.mirror.update(CONNECTOR, 'User', id, (cur) => {
      const doc = { ...cur.doc } as Record<string, unknown>;
      if (change.userName !== undefined) doc.userName = change.userName;
      if (change.displayName !== undefined) doc.displayName = change.displayName;
      if (change.active !== undefined) doc.active = change.active;
      if (change.email !== undefined) doc.emails = [{ type: 'work', primary: true, value: change.email }];
      return { doc: doc as typeof cur.doc, memberOps: [] };
    });
  }

  async deleteUser(id: string): Promise<void> {
    await this.mirror.delete(CONNECTOR, 'User', id);
  }

  async group(displayName: string, members: string[] = []): Promise<string> {
    const doc = normaliseResource(RESOURCE_TYPES.Group, { displayName }).doc;
    return (await this.mirror.create(CONNECTOR, 'Group', doc, members.map((value) => ({ value })))).id;
  }

  async members(groupId: string, change: { add?: string[]; remove?: string[] }): Promise<void> {
    await this.mirror.update(CONNECTOR, 'Group', groupId, (cur) => ({
      doc: cur.doc,
      memberOps: [...(change.add?.length ? [{ k: 'add' as const, members: change.add.map((value) => ({ value })) }] : []), ...(change.remove?.length ? [{ k: 'remove' as const, ids: change.remove }] : [])],
    }));
  }

  async renameGroup(groupId: string, displayName: string): Promise<void> {
    await this.mirror.update(CONNECTOR, 'Group', groupId, (cur) => ({ doc: { ...cur.doc, displayName }, memberOps: [] }));
  }

  /** The reconciler: mirror → directory and change feed. */
  async sync(): Promise<void> {
    await this.reconciler.drain();
  }

  async mirrorIdOf(userName: string): Promise<string> {
    const r = await this.db.kysely.selectFrom('mirror_users').select('id').where('connector_id', '=', CONNECTOR).where('user_name_key', '=', userName.toLowerCase()).executeTakeFirstOrThrow();
    return r.id;
  }

  async directoryUserId(username: string): Promise<string> {
    const r = await this.db.kysely.selectFrom('directory_users').select('id').where('username_key', '=', username.toLowerCase()).executeTakeFirstOrThrow();
    return r.id;
  }

  /** A target for a fake; `adopt` (default true) skips the cut-over: active, every user and group queued. */
  async addTarget(kind: TargetKind, fake: AtlassianFake, settings: Record<string, unknown> = {}, opts: { adopt?: boolean; id?: string } = {}): Promise<string> {
    const id = opts.id ?? `${kind}-${newId().slice(-6)}`;
    const stored = prepareTargetSettings(kind, id, { baseUrl: fake.url, secret: fake.token, timeoutSeconds: 2, retries: 2, ...(kind === 'atlassian-cloud' ? { verifiedDomains: ['example.com'] } : {}), ...settings }, undefined, this.box, false);
    await this.db.transaction(async (trx) => {
      await this.targets.insert(trx, { id, name: `${kind} test`, kind, settings: stored, cursorSeq: await this.targets.maxFeedSeq(trx) });
      if (opts.adopt !== false) {
        await this.targets.update(trx, id, { phase: 'active' });
        await this.targets.enqueueEverything(trx, id);
      }
    });
    return id;
  }

  async setTargetSettings(id: string, change: Record<string, unknown>): Promise<void> {
    const t = (await this.targets.get(id))!;
    const next = prepareTargetSettings(t.kind as TargetKind, id, change, t.settings, this.box, true);
    await this.db.transaction((trx) => this.targets.update(trx, id, { settings: next }));
  }

  worker(opts: Partial<TargetWorkerOptions> = {}): TargetWorker {
    const w = new TargetWorker(this.db, this.box, { holder: `test-${newId()}`, leaseMs: 30_000, ...opts });
    this.workers.push(w);
    return w;
  }

  /** Deliver until nothing is due (work in back-off or parked stays), at most `rounds` worker turns. */
  async deliver(worker = this.workers[0] ?? this.worker(), rounds = 30): Promise<void> {
    for (let i = 0; i < rounds; i++) {
      await worker.runOnce();
      if (!(await this.anythingDue())) return;
    }
  }

  async anythingDue(): Promise<boolean> {
    const at = new Date().toISOString();
    const maxSeq = await this.targets.maxFeedSeq();
    for (const t of await this.targets.list()) {
      if (!t.enabled || t.paused || t.phase !== 'active') continue;
      if (t.status.unavailableUntil && t.status.unavailableUntil > at) continue;
      if (t.cursorSeq < maxSeq) return true;
      if ((await this.targets.dueWork(t.id, at, 1)).length) return true;
    }
    return false;
  }

  /** Make work in back-off due now (instead of waiting 30 s in a test). */
  async makeDue(targetId: string): Promise<void> {
    await this.db.kysely.updateTable('target_work').set({ next_at: new Date(0).toISOString() }).where('target_id', '=', targetId).where('parked_at', 'is', null).execute();
    await this.targets.setStatus(targetId, { unavailableUntil: undefined });
  }

  /** A full comparison through the worker, as the API queues it; answers its summary and items. */
  async compare(targetId: string, mode: 'report' | 'fix', worker = this.workers[0] ?? this.worker()) {
    const comparisonId = newId();
    await this.db.transaction((trx) => this.targets.queueComparison(trx, { id: comparisonId, targetId, mode, requestedBy: 'test' }));
    await worker.runOnce();
    const c = await this.targets.comparison(comparisonId);
    if (c?.status !== 'done') throw new Error(`comparison ${c?.status}: ${c?.error}`);
    const items = (await this.targets.comparisonItems(comparisonId, { limit: 100_000 })).map((i) => ({ category: i.category, remoteName: i.remote_name, localId: i.local_id, detail: JSON.parse(i.detail) as Record<string, unknown> }));
    return { comparisonId, summary: JSON.parse(c.summary) as Record<string, number>, items };
  }

  adopt(targetId: string, comparisonId: string, exclude: string[] = []) {
    return adoptComparison(this.targets, targetId, comparisonId, exclude);
  }

  async parked(targetId: string) {
    return this.targets.parked(targetId, 1000);
  }

  async close(): Promise<void> {
    for (const w of this.workers) await w.stop();
    await this.store.cleanup();
  }
}
