// The admin REST API as the UI uses it: the same endpoints as every other client (src/admin/routes.ts).
// The session cookie goes along by itself; every request that changes something carries the session's
// CSRF token. Error answers ({error: {code, message, details}}) become an ApiError with the message.

import type { UserPreview } from '../../src/domain/rules.ts';
import type { ConnectorSettings } from '../../src/domain/settings.ts';
import type { SettingsIssue } from '../../src/domain/settings-check.ts';
import type { TargetSettings as ServerTargetSettings } from '../../src/targets/defaults.ts';
import type { TargetKind } from '../../src/targets/types.ts';

export type { SettingsIssue };

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }

  /** settings validation problems (`invalid_settings`), each with its path */
  get issues(): SettingsIssue[] {
    return Array.isArray(this.details) ? (this.details as SettingsIssue[]).filter((d) => d && typeof d.path === 'string') : [];
  }
}

let csrfToken = '';
/** Called when an answer says the session is gone (401 outside the session endpoints). */
let onUnauthenticated: () => void = () => {};

export function setCsrfToken(token: string): void {
  csrfToken = token;
}

export function onSessionLost(handler: () => void): void {
  onUnauthenticated = handler;
}

/** A sentence for a person: the first letter up, a full stop at the end. */
export function sentence(text: string): string {
  const t = text.trim();
  if (!t) return t;
  const first = t[0]!.toUpperCase() + t.slice(1);
  return /[.!?)]$/.test(first) ? first : `${first}.`;
}

function errorFrom(status: number, body: unknown): ApiError {
  const e = (body as { error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined)?.error;
  if (e && typeof e.message === 'string') return new ApiError(status, typeof e.code === 'string' ? e.code : 'error', e.message, e.details);
  if (status === 502 || status === 503 || status === 504) return new ApiError(status, 'unavailable', 'the service cannot be reached right now; try again in a moment');
  return new ApiError(status, 'error', `the service answered with an unexpected error (HTTP ${status})`);
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  query?: Record<string, string | number | boolean | undefined | null>;
  signal?: AbortSignal;
  headers?: Record<string, string>;
}

export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const method = opts.method ?? 'GET';
  const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let url = `/api${path}`;
  if (opts.query) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(opts.query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
    const s = q.toString();
    if (s) url += `?${s}`;
  }
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers,
      credentials: 'same-origin',
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network', 'the service cannot be reached; check that it is running and try again');
  }
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const err = errorFrom(res.status, parsed);
    if (res.status === 401 && !path.startsWith('/session')) onUnauthenticated();
    throw err;
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string, query?: RequestOptions['query'], signal?: AbortSignal) => request<T>(path, { ...(query ? { query } : {}), ...(signal ? { signal } : {}) }),
  post: <T>(path: string, body?: unknown, query?: RequestOptions['query']) => request<T>(path, { method: 'POST', body: body ?? {}, ...(query ? { query } : {}) }),
  put: <T>(path: string, body: unknown, query?: RequestOptions['query'], headers?: Record<string, string>) => request<T>(path, { method: 'PUT', body, ...(query ? { query } : {}), ...(headers ? { headers } : {}) }),
  patch: <T>(path: string, body: unknown) => request<T>(path, { method: 'PATCH', body }),
  del: <T = void>(path: string) => request<T>(path, { method: 'DELETE' }),
};

/** The message of anything thrown, as a sentence; never a stack trace. */
export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) return sentence(e.message);
  if (e instanceof Error && e.name === 'AbortError') return '';
  return 'Something went wrong in the page; reload it and try again.';
}

// ----------------------------------------------------------------------------------------- answers

export type Role = 'administrator' | 'auditor';

export interface Account {
  id: string;
  username: string;
  role: Role;
  mustChangePassword: boolean;
}

export interface Session {
  account: Account;
  csrfToken: string;
}

export type ConnectorKind = 'scim' | 'graph' | 'ldap';
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'aborted' | 'held';

export interface LastRun {
  id: string;
  status: RunStatus;
  trigger: string;
  startedAt: string;
  endedAt: string | null;
}

export interface Connector {
  id: string;
  name: string;
  kind: ConnectorKind;
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
  lastRun?: LastRun | null;
  scimBaseUrl?: string;
}

export interface ConnectorDetail extends Connector {
  settings: ConnectorSettings;
  /** the stored settings' version: sent back as If-Match, so that a save never overwrites someone else's */
  settingsVersion: string;
  source?: Record<string, unknown>;
  currentRun?: string | null;
}

export type Counters = Record<string, number>;

export interface RunSummary {
  id: string;
  connectorId: string;
  trigger: string;
  status: RunStatus;
  phase: string | null;
  startedAt: string;
  endedAt: string | null;
  counters: Counters;
  peakRss: number;
  error: string | null;
}

export interface Change {
  seq?: number;
  entity: 'user' | 'group' | 'membership';
  entityId: string;
  op: string;
  data: Record<string, unknown>;
}

export interface HeldChange {
  userId: string;
  op: string;
  status: 'held' | 'approved' | 'rejected';
  username?: string;
  reason?: string;
}

export interface Run extends RunSummary {
  progress: Progress | null;
  log: { at: string; level: string; message: string }[];
  held: HeldChange[];
  changes: Change[];
}

export interface Progress {
  phase: string;
  done: number;
  total: number | null;
}

export interface RunProgress {
  status: RunStatus;
  phase: string | null;
  progress: Progress | null;
  counters: Counters;
  error: string | null;
}

export interface PassReport {
  runId: string;
  status: string;
  counters: Counters;
  totalChanges: number;
  changes: Change[];
  held: { userId: string; username: string; op: string; reason: string }[];
  seats: { group: string; seats: number; before: number; after: number }[];
  merges: { group: string; sources: string[] }[];
  log: { level: string; message: string }[];
  /** a preview only: users the plan creates or changes that a target would refuse */
  targetProblems?: TargetProblem[];
}

export interface DirectoryUser {
  id: string;
  username: string;
  email: string | null;
  displayName: string;
  active: boolean;
  attributes: Record<string, string>;
  owner: 'local' | { connectorId: string; sourceId: string | null };
  inScope: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface HistoryEntry {
  seq: number;
  at: string;
  op: string;
  runId: string | null;
  data: Record<string, unknown>;
  entity?: string;
}

export interface UserInTarget {
  targetId: string;
  target: string;
  kind: string;
  remoteName: string | null;
  origin: 'created' | 'adopted' | null;
  active: boolean | null;
  state: 'delivered' | 'pending' | 'parked' | 'not-delivered';
  error: string | null;
  updatedAt: string | null;
}

export interface DirectoryUserDetail extends DirectoryUser {
  groups: { id: string; name: string; managedBy: string }[];
  history: HistoryEntry[];
  /** the user in each target (older services leave it out) */
  targets?: UserInTarget[];
}

export interface DirectoryGroup {
  id: string;
  name: string;
  owner: 'local' | { connectorId: string; sourceId: string | null } | string | null;
  memberCount: number;
}

export interface DirectoryGroupDetail {
  id: string;
  name: string;
  owner: DirectoryGroup['owner'];
  members: { id: string; username: string; displayName: string; managedBy: string }[];
  history: HistoryEntry[];
}

export interface ConnectionTest {
  ok: boolean;
  checks: { name: string; ok: boolean; message: string }[];
  missingPermissions: string[];
  failure?: string;
}

export interface UserSearch {
  found: boolean;
  matches: number;
  entry?: { dn?: string; attributes: Record<string, string[]> };
  record?: { id: string; doc: Record<string, unknown> };
  skipped?: string;
  groups: { id: string; name: string }[];
  /** what the current rules make of the record (previewUser of src/domain/rules.ts), and who has the name now */
  directory: (UserPreview & { existing: { id: string; username: string; active: boolean; ownedBy: string | null; sameRecord: boolean } | null }) | null;
}

export interface AuditEntry {
  seq: number;
  at: string;
  actor: string;
  action: string;
  target: string | null;
  details: unknown;
}

export interface AccountRow {
  id: string;
  username: string;
  role: Role;
  disabled: boolean;
  locked: boolean;
  lastLoginAt: string | null;
  createdAt: string;
}

export type TokenScope = 'admin' | 'auditor' | 'sync' | 'sync-user';

export interface AdminTokenRow {
  id: string;
  label: string;
  scope: TokenScope;
  createdAt: string;
  revokedAt: string | null;
}

export interface ScimTokenRow {
  id: string;
  label: string;
  createdAt: string;
  revokedAt: string | null;
}

export interface AlertSettings {
  webhook: { enabled: boolean; url: string | null; secret: { set: boolean } | null };
  email: {
    enabled: boolean;
    host: string | null;
    port: number;
    security: 'tls' | 'starttls' | 'none';
    username: string | null;
    password: { set: boolean } | null;
    from: string | null;
    to: string[];
    /** an extra CA (PEM) to trust for the SMTP server */
    caCertificate?: string | null;
  };
  rules: { failingRuns: number; credentialExpiryDays: number };
}

export interface AlertRow {
  seq: number;
  at: string;
  kind: string;
  connectorId: string | null;
  subject: string;
  message: string;
  deliveries: unknown;
  deliveredAt: string | null;
}

// ---------------------------------------------------------------------------------------- settings
// The settings document as the API sends and takes it: the service's own types (src/domain/settings.ts).

export type { AttributeMapping, ConnectorSettings, GroupSyncSettings, Transform, UserSyncSettings } from '../../src/domain/settings.ts';

// ------------------------------------------------------------------------------------------ targets
// Applications that receive the directory (src/targets/routes.ts).

export type { TargetKind };
export type TargetPhase = 'new' | 'awaiting-adoption' | 'active';
export type { CleanupPolicy } from '../../src/targets/defaults.ts';
export type ComparisonStatus = 'queued' | 'running' | 'done' | 'failed';
export type ComparisonMode = 'report' | 'fix';
export type { ScheduleSettings } from '../../src/domain/schedule.ts';

/** A target's settings as the API answers them: the secret only said to be set. */
/** A target's settings as the API shows them: the secret only said to be set (src/targets/defaults.ts). */
export type TargetSettings = Omit<ServerTargetSettings, 'secret'> & { secret: { set: boolean } };

/** Settings as sent: a secret typed in sets it; left out, the stored one is kept. */
export type TargetSettingsInput = Omit<TargetSettings, 'secret'> & { secret?: string };

export interface TargetStatus {
  unavailableUntil?: string;
  unavailableSince?: string;
  failures?: number;
  lastError?: string;
  lastDeliveryAt?: string;
  lastScheduledComparisonAt?: string;
}

/** Counts by comparison category, and `user-ok`, `group-ok`, `queued` (what a repair queued); while running, what has been read so far. */
export type ComparisonSummary = Record<string, number>;

export interface ComparisonBrief {
  id: string;
  mode: ComparisonMode;
  status: ComparisonStatus;
  requestedAt: string;
  endedAt: string | null;
  summary: ComparisonSummary;
  error: string | null;
}

export interface Target {
  id: string;
  name: string;
  kind: TargetKind;
  enabled: boolean;
  paused: boolean;
  phase: TargetPhase;
  backlog: { feedRows: number; pending: number; parked: number };
  owned: { user: number; group: number; membership: number };
  status: TargetStatus;
  lastComparison: ComparisonBrief | null;
  createdAt: string;
  updatedAt: string;
}

export interface TargetDetail extends Target {
  settings: TargetSettings;
}

export interface Comparison extends ComparisonBrief {
  requestedBy: string;
  startedAt: string | null;
}

export interface ComparisonItem {
  n: number;
  category: string;
  entity: 'user' | 'group' | 'membership';
  localId: string | null;
  remoteName: string;
  detail: Record<string, unknown>;
}

export interface ComparisonDetail extends Comparison {
  /** what each category means, as a sentence */
  categories: Record<string, string>;
  items: ComparisonItem[];
}

export interface ParkedWork {
  key: string;
  entity: 'user' | 'group';
  id: string;
  name: string | null;
  attempts: number;
  parkedAt: string;
  code: string | null;
  error: string | null;
  since: string;
}

export interface TargetTest {
  ok: boolean;
  checks: { name: string; ok: boolean; message: string }[];
}

export interface TargetProblem {
  targetId: string;
  /** e.g. "Jira 'Jira DC'" */
  target: string;
  username: string;
  problem: string;
}

const targetPath = (id: string, rest = '') => `/targets/${encodeURIComponent(id)}${rest}`;

export const targetApi = {
  list: (signal?: AbortSignal) => api.get<{ targets: Target[] }>('/targets', undefined, signal),
  get: (id: string, signal?: AbortSignal) => api.get<TargetDetail>(targetPath(id), undefined, signal),
  create: (body: { name: string; kind: TargetKind; id?: string; settings: TargetSettingsInput }) => api.post<TargetDetail>('/targets', body),
  update: (id: string, change: { name?: string; enabled?: boolean; paused?: boolean }) => api.patch<Target>(targetPath(id), change),
  remove: (id: string) => api.del(targetPath(id)),
  /** `confirmLeaving`: the number of managed users a change of scope or policy affects, as a 409 `confirm_scope_change` named it */
  saveSettings: (id: string, settings: TargetSettingsInput, confirmLeaving?: number) =>
    api.put<TargetSettings>(targetPath(id, '/settings'), settings, confirmLeaving !== undefined ? { confirmLeaving: String(confirmLeaving) } : undefined),
  test: (id: string) => api.post<TargetTest>(targetPath(id, '/test')),
  comparisons: (id: string, limit = 10, signal?: AbortSignal) => api.get<{ comparisons: Comparison[] }>(targetPath(id, '/comparisons'), { limit }, signal),
  comparison: (id: string, comparisonId: string, query: { category?: string; limit?: number; after?: number } = {}, signal?: AbortSignal) =>
    api.get<ComparisonDetail>(targetPath(id, `/comparisons/${encodeURIComponent(comparisonId)}`), query, signal),
  compare: (id: string, mode: ComparisonMode) => api.post<{ id: string; status: 'queued'; mode: ComparisonMode }>(targetPath(id, '/comparisons'), { mode }),
  adopt: (id: string, comparisonId: string) => api.post<{ adopted: { users: number; groups: number; memberships: number }; phase: 'active' }>(targetPath(id, '/adopt'), { comparisonId }),
  parked: (id: string, query: { limit?: number; after?: string } = {}, signal?: AbortSignal) => api.get<{ parked: ParkedWork[] }>(targetPath(id, '/parked'), query, signal),
  retry: (id: string, keys?: string[]) => api.post<{ retried: number }>(targetPath(id, '/parked/retry'), keys ? { keys } : {}),
  events: (id: string, query: { limit?: number; before?: number; search?: string } = {}, signal?: AbortSignal) =>
    api.get<{ events: TargetEvent[] }>(
      targetPath(id, '/events'),
      {
        ...(query.limit !== undefined ? { limit: String(query.limit) } : {}),
        ...(query.before !== undefined ? { before: String(query.before) } : {}),
        ...(query.search ? { search: query.search } : {}),
      },
      signal,
    ),
};

/** One thing a target did in its application (src/targets/routes.ts, GET …/events). */
export interface TargetEvent {
  seq: number;
  at: string;
  action: string;
  subject: string;
  detail: string;
}
