// What a change of a target's scope or cleanup policy would do to the users usersync owns there: how many
// would leave the scope (and get the cleanup policy: deactivated, deleted, …), how many already out of it
// would get a new policy, and how many would come in. A save that affects owned users must name that
// number (a mistyped group pattern must not deactivate half of Jira).

import type { TargetStore } from '../store/targets.ts';
import { groupInScope, userOutOfScope } from './scope.ts';
import type { TargetSettings } from './settings.ts';

export interface ScopeImpact {
  /** owned users in the scope now, out of it after */
  leaving: number;
  /** with a new cleanup policy: owned users out of the scope before and after, who get the new policy */
  repoliced: number;
  /** a few of their usernames, for the question */
  leavingExamples: string[];
  /** directory users out of the scope now, in it after */
  entering: number;
}

type Scope = Pick<TargetSettings, 'connectors' | 'groups' | 'users' | 'localUsers'>;

export async function scopeImpact(store: TargetStore, targetId: string, before: Scope, after: Scope, policyChanged: boolean): Promise<ScopeImpact> {
  const groups = await store.directoryGroupsAll();
  const inBefore = new Set(groups.filter((g) => groupInScope(before, g)).map((g) => g.id));
  const inAfter = new Set(groups.filter((g) => groupInScope(after, g)).map((g) => g.id));
  const counts = new Map<string, { before: number; after: number }>();
  for await (const page of store.directoryMembershipPages()) {
    for (const m of page) {
      const c = counts.get(m.userId) ?? { before: 0, after: 0 };
      if (inBefore.has(m.groupId)) c.before++;
      if (inAfter.has(m.groupId)) c.after++;
      counts.set(m.userId, c);
    }
  }
  const owned = new Set((await store.ledgerAll(targetId, 'user')).filter((l) => !l.pending).map((l) => l.localId));
  const impact: ScopeImpact = { leaving: 0, repoliced: 0, leavingExamples: [], entering: 0 };
  for await (const page of store.directoryUserPages()) {
    for (const u of page) {
      const c = counts.get(u.id) ?? { before: 0, after: 0 };
      const wasIn = userOutOfScope(before, u, c.before) === undefined;
      const isIn = userOutOfScope(after, u, c.after) === undefined;
      if (wasIn && !isIn && owned.has(u.id)) {
        impact.leaving++;
        if (impact.leavingExamples.length < 10) impact.leavingExamples.push(u.username);
      } else if (!wasIn && isIn) impact.entering++;
      else if (!wasIn && !isIn && policyChanged && owned.has(u.id)) impact.repoliced++;
    }
  }
  return impact;
}
