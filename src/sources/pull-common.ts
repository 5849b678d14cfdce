// What every pull source does alike: bounded concurrency that stops with the run, and writing users to
// the mirror with username conflicts kept aside and tried once more after the run's renames and deletions.

import type { MirrorWriter, PulledRecord } from '../store/mirror-writer.ts';
import { mirrorIds } from '../store/mirror-writer.ts';
import { foldCase } from '../domain/scim/schema.ts';
import type { PullContext, UserLookup } from '../sync/source.ts';

export function stopIfAborted(signal: AbortSignal): void {
  if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('the run was stopped');
}

/** Work through `items`, `concurrency` at a time, until done or the run stops. */
export async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>, signal: AbortSignal): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      stopIfAborted(signal);
      await work(items[next++]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

/** Write users; those whose userName another user holds go to `conflicts`. */
export async function writeUsers(ctx: PullContext, w: MirrorWriter, records: PulledRecord[], conflicts: PulledRecord[]): Promise<void> {
  const r = await w.upsertUsers(records);
  ctx.count({ mirrorCreated: r.created, mirrorUpdated: r.updated });
  if (r.conflicts.length) {
    const byId = new Map(records.map((x) => [x.id, x]));
    for (const c of r.conflicts) conflicts.push(byId.get(c.id)!);
  }
}

/** Users that could not take their userName: once more, after the run's deletions and renames; then counted and logged. */
export async function retryConflicts(ctx: PullContext, conflicts: PulledRecord[]): Promise<void> {
  if (conflicts.length === 0) return;
  const still: PulledRecord[] = [];
  await ctx.write((w) => writeUsers(ctx, w, conflicts, still));
  if (still.length) ctx.count({ conflicts: still.length });
  for (const c of still.slice(0, 20)) await ctx.log('warn', `user ${c.id} not synced: another user of this connector has the username '${String(c.doc.userName)}'`);
  if (still.length > 20) await ctx.log('warn', `${still.length - 20} more users not synced because their username is taken`);
}

/**
 * Sync on login, after the provider was asked: `found` is the provider's user (undefined: it has none, or
 * the scope leaves it out for `reason`). The mirror then holds exactly that user with these groups, or no
 * user of that name or id. `prepare` writes the groups first, in the same transaction.
 */
export async function storeOneUser(
  ctx: PullContext,
  username: string,
  found: { record: PulledRecord; groupIds: string[]; prepare?: (w: MirrorWriter) => Promise<void> } | { id?: string; reason?: string },
): Promise<UserLookup> {
  const id = 'record' in found ? found.record.id : found.id;
  const existing = await ctx.db.kysely
    .selectFrom('mirror_users')
    .select('id')
    .where('connector_id', '=', ctx.connectorId)
    .where((eb) => eb.or([eb('user_name_key', '=', foldCase(username)), ...(id !== undefined ? [eb('id', '=', id)] : [])]))
    .execute();
  if (!('record' in found)) {
    if (existing.length) await ctx.write(async (w) => ctx.count({ mirrorDeleted: await w.deleteUsers(existing.map((e) => e.id)) }));
    return found.reason ? { outOfScope: found.reason } : {};
  }
  const conflicts: PulledRecord[] = [];
  await ctx.write(async (w) => {
    await found.prepare?.(w);
    await writeUsers(ctx, w, [found.record], conflicts);
    if (conflicts.length) return;
    const r = await w.setUserGroups(found.record.id, found.groupIds);
    ctx.count({ mirrorMembershipsAdded: r.added, mirrorMembershipsRemoved: r.removed });
  });
  if (conflicts.length) throw new Error(`the username '${String(found.record.doc.userName)}' is held by another user of this connector`);
  return { id: found.record.id };
}

/**
 * The end of a full read: what the provider no longer has (or the scope no longer holds) leaves the
 * mirror — only now, so that a read that failed half-way removed nobody — and the username conflicts are
 * tried once more.
 */
export async function finishFullRead(ctx: PullContext, seenUsers: Set<string>, seenGroups: Set<string>, conflicts: PulledRecord[]): Promise<void> {
  ctx.progress({ phase: 'removals', done: 0, total: null });
  const goneUsers = [...(await mirrorIds(ctx.db, ctx.connectorId, 'mirror_users'))].filter((id) => !seenUsers.has(id));
  const goneGroups = [...(await mirrorIds(ctx.db, ctx.connectorId, 'mirror_groups'))].filter((id) => !seenGroups.has(id));
  if (goneUsers.length || goneGroups.length) {
    await ctx.write(async (w) => {
      const users = await w.deleteUsers(goneUsers);
      const groups = await w.deleteGroups(goneGroups);
      ctx.count({ mirrorDeleted: users + groups });
    });
  }
  await retryConflicts(ctx, conflicts);
}

/**
 * Group member lists for the mirror, a batch of groups per transaction (about `rowsPerWrite` rows), written
 * in order while reading goes on. `keep`: which members to write, asked when the batch is written (a scoped
 * read learns its users as it goes).
 */
export class MemberBatches {
  private pending: { group: string; users: Iterable<string> }[] = [];
  private rows = 0;
  private writing: Promise<void> = Promise.resolve();

  constructor(
    private readonly ctx: PullContext,
    private readonly keep?: (user: string) => boolean,
    private readonly rowsPerWrite = 20_000,
  ) {}

  async add(group: string, users: Iterable<string>, size: number): Promise<void> {
    this.pending.push({ group, users });
    this.rows += size;
    if (this.rows >= this.rowsPerWrite) await this.flush();
  }

  flush(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    this.rows = 0;
    const { ctx, keep } = this;
    this.writing = this.writing.then(() =>
      ctx.write(async (w) => {
        for (const { group, users } of batch) {
          const r = await w.replaceMembers(group, keep ? [...users].filter(keep) : users);
          ctx.count({ mirrorMembershipsAdded: r.added, mirrorMembershipsRemoved: r.removed });
        }
      }),
    );
    return this.writing;
  }
}
