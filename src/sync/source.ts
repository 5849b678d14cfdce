// What a pull source (Graph, LDAP) can do, as small capabilities: read everything, read what changed,
// read one user on demand, test its connection. The run around it (lease, run record, progress,
// reconciliation) is src/sync/pull.ts; a source only reads its provider and writes the mirror.

import type { Db } from '../store/db.ts';
import type { MirrorWriter, RunMarks } from '../store/mirror-writer.ts';
import type { RunCounters } from './runs.ts';

export interface Progress {
  /** what is being read: 'users', 'groups', 'members', … */
  phase: string;
  done: number;
  /** null when the provider cannot say in advance */
  total: number | null;
}

export interface PullContext {
  db: Db;
  connectorId: string;
  runId: string;
  marks: RunMarks;
  /** one transaction with a mirror writer for this run */
  write<T>(work: (w: MirrorWriter) => Promise<T>): Promise<T>;
  /** a line in the run's log */
  log(level: 'info' | 'warn' | 'error', message: string): Promise<void>;
  progress(p: Progress): void;
  count(add: RunCounters): void;
  /** aborted when the run must stop (the lease was lost, the service stops) */
  signal: AbortSignal;
}

export type DeltaOutcome = 'done' | 'full-needed';

export interface UserLookup {
  /** the user the provider has under that username, now in the mirror; undefined: none (removed from the mirror) */
  id?: string;
  /** why the user is not synced, when the provider has it but the scope leaves it out */
  outOfScope?: string;
}

export interface ConnectionCheck {
  name: string;
  ok: boolean;
  message: string;
}

export interface ConnectionTest {
  ok: boolean;
  checks: ConnectionCheck[];
  /** permissions the app lacks for these settings */
  missingPermissions: string[];
  /** what kind of failure stopped the test, when one did: unreachable, tls, bind, base-dn, … */
  failure?: string;
}

export interface UserSearch {
  found: boolean;
  /** entries that matched the username; the first is shown */
  matches: number;
  /** the provider's entry as read, binary values converted */
  entry?: { dn?: string; attributes: Record<string, string[]> };
  /** the record the mirror would hold */
  record?: { id: string; doc: Record<string, unknown> };
  /** why the source leaves the user out */
  skipped?: string;
  /** the provider groups the user is in, as the mirror would hold them */
  groups: { id: string; name: string }[];
}

export interface PullSource {
  /** read everything in scope; afterwards the mirror is exactly the provider's view */
  full(ctx: PullContext): Promise<void>;
  /** read what changed since the last run; 'full-needed' when that cannot be known (no or expired state) */
  delta?(ctx: PullContext): Promise<DeltaOutcome>;
  /** read one user (and its groups) by username, for sync on login */
  user?(ctx: PullContext, username: string): Promise<UserLookup>;
  test(): Promise<ConnectionTest>;
  /** the test user search: the entry as the provider has it, the mirror record and its groups; reads only */
  searchUser?(username: string): Promise<UserSearch>;
  close(): void;
}
