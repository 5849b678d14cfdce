// What each target would refuse among the users a preview creates or changes (Confluence's username
// rules, Atlassian Cloud's verified domains, a missing e-mail): shown beside the preview, before anything
// is saved or sent. And, for a user's page, where the user is in each target: owned there under which
// name, waiting, or parked with its error.

import type { Db } from '../store/db.ts';
import { TargetStore } from '../store/targets.ts';
import { targetSettings } from './config.ts';
import { kindName, userProblem } from './scope.ts';
import type { TargetKind } from './types.ts';

export interface TargetProblem {
  targetId: string;
  target: string;
  username: string;
  problem: string;
}

interface PreviewChange {
  entity: string;
  entityId: string;
  op: string;
  data: unknown;
}

export async function targetProblems(db: Db, connectorId: string, changes: PreviewChange[], max = 200): Promise<TargetProblem[]> {
  const store = new TargetStore(db);
  const targets = (await store.list()).filter((t) => t.enabled).map((t) => ({ t, s: targetSettings(t.settings) })).filter(({ s }) => s.connectors === 'all' || s.connectors.includes(connectorId));
  if (!targets.length) return [];
  const users: { id: string; username: string; email: string | null | undefined }[] = [];
  for (const c of changes) {
    if (c.entity !== 'user') continue;
    const d = (c.data ?? {}) as { after?: { username?: string; email?: string | null }; username?: string; changes?: { username?: { to?: string }; email?: { to?: string | null } } };
    if (c.op === 'create' && d.after?.username) users.push({ id: c.entityId, username: d.after.username, email: d.after.email ?? null });
    else if ((c.op === 'update' || c.op === 'adopt') && (d.changes?.username || d.changes?.email)) {
      users.push({ id: c.entityId, username: d.changes.username?.to ?? d.username ?? '', email: d.changes.email ? (d.changes.email.to ?? null) : undefined });
    }
  }
  // an update that keeps its e-mail: the directory has it
  const unknownEmail = users.filter((u) => u.email === undefined).map((u) => u.id);
  const emails = new Map((await store.directoryUsers(unknownEmail)).map((u) => [u.id, u.email]));
  const out: TargetProblem[] = [];
  for (const u of users) {
    const email = u.email === undefined ? (emails.get(u.id) ?? null) : u.email;
    for (const { t, s } of targets) {
      const problem = userProblem(t.kind as TargetKind, s, { name: u.username, email });
      if (problem) out.push({ targetId: t.id, target: `${kindName(t.kind as TargetKind)} '${t.name}'`, username: u.username, problem });
      if (out.length >= max) return out;
    }
  }
  return out;
}

export interface UserInTarget {
  targetId: string;
  target: string;
  kind: string;
  /** the name the application has for the user, when usersync created or adopted it there */
  remoteName: string | null;
  origin: string | null;
  active: boolean | null;
  /** delivered (nothing waits), pending, or parked */
  state: 'delivered' | 'pending' | 'parked' | 'not-delivered';
  error: string | null;
  updatedAt: string | null;
}

export async function userTargets(db: Db, userId: string): Promise<UserInTarget[]> {
  const store = new TargetStore(db);
  const out: UserInTarget[] = [];
  for (const t of await store.list()) {
    const [owned, work] = await Promise.all([
      store.ledgerGet(t.id, 'user', userId),
      store.workRow(t.id, `u:${userId}`),
    ]);
    const state = work ? (work.parkedAt ? 'parked' : 'pending') : owned && !owned.pending ? 'delivered' : 'not-delivered';
    out.push({
      targetId: t.id,
      target: t.name,
      kind: t.kind,
      remoteName: owned?.remoteName ?? null,
      origin: owned?.origin ?? null,
      active: owned ? owned.state.active !== false : null,
      state,
      error: work?.error ?? null,
      updatedAt: work?.updatedAt ?? null,
    });
  }
  return out;
}
