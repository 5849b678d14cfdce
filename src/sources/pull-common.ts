// What every pull source does alike: bounded concurrency that stops with the run, and writing users to
// the mirror with username conflicts kept aside and tried once more after the run's renames and deletions.

import type { MirrorWriter, PulledRecord } from '../store/mirror-writer.ts';
import type { PullContext } from '../sync/source.ts';

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
