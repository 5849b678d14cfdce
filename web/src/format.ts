// How values read on the page: dates, durations, sizes, counters, changes.

import type { Change, Counters } from './api.ts';

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateTime.format(d);
}

export function formatDuration(startIso: string, endIso: string | null, now = Date.now()): string {
  const start = Date.parse(startIso);
  const end = endIso ? Date.parse(endIso) : now;
  if (Number.isNaN(start) || Number.isNaN(end)) return '—';
  const ms = Math.max(0, end - start);
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s % 60);
  if (m < 60) return `${m} min ${rest} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

export function formatBytes(n: number | null | undefined): string {
  if (!n) return '—';
  if (n < 1024 * 1024) return `${Math.round(n / 1024)} KB`;
  if (n < 1024 * 1024 * 1024) return `${Math.round(n / (1024 * 1024))} MB`;
  return `${(n / (1024 * 1024 * 1024)).toFixed(1)} GB`;
}

export function formatNumber(n: number): string {
  return n.toLocaleString();
}

/** Counters in the order a person reads a run, with their names. */
export const COUNTER_LABELS: [string, string][] = [
  ['fetched', 'read from the provider'],
  ['read', 'records evaluated'],
  ['mirrorCreated', 'mirror: new'],
  ['mirrorUpdated', 'mirror: changed'],
  ['mirrorDeleted', 'mirror: removed'],
  ['mirrorMembershipsAdded', 'mirror: memberships added'],
  ['mirrorMembershipsRemoved', 'mirror: memberships removed'],
  ['created', 'users created'],
  ['updated', 'users updated'],
  ['adopted', 'local users adopted'],
  ['activated', 'users activated'],
  ['deactivated', 'users deactivated'],
  ['deleted', 'users deleted'],
  ['skipped', 'skipped'],
  ['conflicts', 'username conflicts'],
  ['held', 'held for approval'],
  ['seatsHeld', 'held by licence seats'],
  ['groupsCreated', 'groups created'],
  ['groupsRenamed', 'groups renamed'],
  ['groupsOrphaned', 'groups orphaned'],
  ['groupsDeleted', 'groups deleted'],
  ['membershipsAdded', 'memberships added'],
  ['membershipsRemoved', 'memberships removed'],
];

export function counterEntries(counters: Counters | null | undefined): [string, string, number][] {
  if (!counters) return [];
  const known = new Set(COUNTER_LABELS.map(([k]) => k));
  const out: [string, string, number][] = [];
  for (const [k, label] of COUNTER_LABELS) if (counters[k]) out.push([k, label, counters[k]!]);
  for (const [k, v] of Object.entries(counters)) if (!known.has(k) && v) out.push([k, k, v]);
  return out;
}

/** The few counters that say most, in one line: "12 created, 3 updated, 40 memberships added". */
export function counterSummary(counters: Counters | null | undefined): string {
  const main = ['created', 'updated', 'activated', 'deactivated', 'deleted', 'groupsCreated', 'membershipsAdded', 'membershipsRemoved', 'conflicts', 'held'];
  const parts = counterEntries(counters)
    .filter(([k]) => main.includes(k))
    .map(([, label, n]) => `${formatNumber(n)} ${label}`);
  return parts.length ? parts.join(', ') : 'no changes';
}

function str(v: unknown): string {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'string') return v;
  return JSON.stringify(v);
}

/**
 * Names of the users and groups that a list of changes creates or names, by id: membership changes carry
 * ids only, and read better with the names the same run gives.
 */
export function namesIn(changes: Pick<Change, 'entity' | 'entityId' | 'data'>[]): Map<string, string> {
  const names = new Map<string, string>();
  for (const c of changes) {
    const d = c.data ?? {};
    const after = (d.after ?? {}) as Record<string, unknown>;
    const name = c.entity === 'user' ? (d.username ?? after.username) : c.entity === 'group' ? (d.name ?? d.to) : undefined;
    if (typeof name === 'string') names.set(c.entityId, name);
  }
  return names;
}

/** One change of the change feed (or of a plan) as a sentence. */
export function describeChange(c: Pick<Change, 'entity' | 'op' | 'data'> & { entityId?: string }, names?: Map<string, string>): string {
  const d = c.data ?? {};
  const after = (d.after ?? {}) as Record<string, unknown>;
  const name = str(d.username ?? after.username ?? d.name ?? c.entityId);
  switch (`${c.entity}.${c.op}`) {
    case 'user.create':
      return `create user ${name}${after.email ? ` <${str(after.email)}>` : ''}`;
    case 'user.update':
    case 'user.adopt':
    case 'user.activate': {
      const changes = d.changes as Record<string, unknown> | undefined;
      const fields = changes ? Object.keys(changes) : [];
      const verb = c.op === 'adopt' ? 'adopt local user' : c.op === 'activate' ? 'activate user' : 'update user';
      return `${verb} ${name}${fields.length ? ` (${fields.join(', ')})` : ''}`;
    }
    case 'user.deactivate':
      return `deactivate user ${name}${d.reason ? `: ${str(d.reason)}` : ''}`;
    case 'user.delete':
      return `delete user ${name}${d.reason ? `: ${str(d.reason)}` : ''}`;
    case 'group.create':
      return `create group ${name}`;
    case 'group.rename':
      return `rename group ${str(d.from)} to ${str(d.to)}`;
    case 'group.delete':
      return `delete group ${name}${d.reason ? `: ${str(d.reason)}` : ''}`;
    case 'membership.add':
    case 'membership.remove': {
      const who = str(d.username ?? names?.get(String(d.userId)) ?? d.userId);
      const group = str(d.groupName ?? d.group ?? names?.get(String(d.groupId)) ?? d.groupId);
      const by = d.managedBy ? ` (${str(d.managedBy)})` : '';
      return c.op === 'add' ? `add ${who} to ${group}${by}` : `remove ${who} from ${group}${by}`;
    }
    default:
      return `${c.entity} ${c.op} ${name}`;
  }
}

/** What manages a membership, in words: `connector:entra` → "connector entra". */
export function describeManagedBy(managedBy: string): string {
  if (managedBy === 'local') return 'local (added by hand)';
  const [kind, id] = managedBy.split(':', 2) as [string, string | undefined];
  if (!id) return managedBy;
  switch (kind) {
    case 'connector':
      return `connector ${id}`;
    case 'default':
      return `default group of connector ${id}`;
    case 'always':
      return `always-assigned group of connector ${id}`;
    default:
      return managedBy;
  }
}

/** The connector id in a `managedBy` value, when there is one. */
export function managedByConnector(managedBy: string): string | undefined {
  const m = /^(?:connector|default|always):(.+)$/.exec(managedBy);
  return m?.[1];
}

export const KIND_LABELS: Record<string, string> = {
  scim: 'SCIM 2.0 (push)',
  graph: 'Microsoft Graph (pull)',
  ldap: 'LDAP / Active Directory (pull)',
};

export const TRIGGER_LABELS: Record<string, string> = {
  manual: 'Sync now',
  schedule: 'Schedule',
  'on-demand': 'One user (on demand)',
  startup: 'Start-up',
  'settings-change': 'Settings change',
  push: 'SCIM push',
  'scim-push': 'SCIM push',
};

export function triggerLabel(t: string): string {
  return TRIGGER_LABELS[t] ?? t;
}
