// Table types for Kysely. Booleans are stored as integers 0/1 and timestamps as ISO 8601 text on both
// databases, so the same rows read the same everywhere. JSON is text, except `search` documents, which
// are jsonb on PostgreSQL (filters read them) and text on SQLite (json_extract reads them).

import type { ColumnType, Generated } from 'kysely';

export interface ConnectorTable {
  id: string;
  name: string;
  kind: string;
  enabled: number;
  settings: string;
  source: ColumnType<string, string | undefined, string>;
  created_at: string;
  updated_at: string;
}

export interface ScimTokenTable {
  id: string;
  connector_id: string;
  token_hash: string;
  label: string;
  created_at: string;
  revoked_at: string | null;
}

export interface MirrorUserTable {
  connector_id: string;
  id: string;
  user_name: string;
  user_name_key: string;
  external_id: string | null;
  resource: string;
  search: ColumnType<unknown, string, string>;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface MirrorGroupTable {
  connector_id: string;
  id: string;
  display_name: string;
  display_name_key: string;
  external_id: string | null;
  resource: string;
  search: ColumnType<unknown, string, string>;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface MirrorMemberTable {
  connector_id: string;
  group_id: string;
  member_id: string;
  member_type: 'User' | 'Group';
}

export interface MirrorUserEmailTable {
  connector_id: string;
  user_id: string;
  value_key: string;
}

/** `connector`: re-evaluate the whole connector (a pull run changed too much to mark record by record) */
export type DirtyKind = 'user' | 'group' | 'membership' | 'connector';

export interface DirtyMarkTable {
  seq: Generated<number>;
  connector_id: string;
  kind: DirtyKind;
  /** the user or group id; for memberships the group id */
  ref: string;
  /** for memberships the member id, else '' */
  ref2: string;
  /** the pull run that wrote it (null: SCIM push, which opens its own run) */
  run_id: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface DirectoryUserTable {
  id: string;
  username: string;
  username_key: string;
  email: string | null;
  display_name: string;
  active: number;
  attributes: string;
  /** null: a local user (created by an administrator or imported from an application) */
  owner_connector_id: string | null;
  source_id: string | null;
  /** 1 while the owning connector's rules keep the user in scope */
  in_scope: ColumnType<number, number | undefined, number>;
  created_at: string;
  updated_at: string;
}

export interface DirectoryGroupTable {
  id: string;
  name: string;
  name_key: string;
  owner_connector_id: string | null;
  source_id: string | null;
  created_at: string;
  updated_at: string;
}

export interface DirectoryMembershipTable {
  group_id: string;
  user_id: string;
  /** what manages it: `connector:<id>`, `local`, or a rule */
  managed_by: string;
  created_at: string;
}

export interface GroupLinkTable {
  connector_id: string;
  source_id: string;
  group_id: string;
}

export interface ChangeFeedTable {
  seq: Generated<number>;
  at: string;
  connector_id: string | null;
  run_id: string | null;
  entity: 'user' | 'group' | 'membership';
  entity_id: string;
  op: string;
  data: string;
}

export interface RunTable {
  id: string;
  connector_id: string;
  trigger: string;
  status: string;
  started_at: string;
  ended_at: string | null;
  last_activity_at: string;
  counters: string;
  peak_rss: number;
  holder: string;
  error: string | null;
  /** pull runs: 'reading', 'reconciling', '' once ended */
  phase: ColumnType<string, string | undefined, string>;
  progress: ColumnType<string, string | undefined, string>;
}

export interface SourceStateTable {
  connector_id: string;
  name: string;
  value: string;
  updated_at: string;
}

export interface RunLogTable {
  seq: Generated<number>;
  run_id: string;
  at: string;
  level: string;
  message: string;
}

export interface LeaseTable {
  name: string;
  holder: string;
  expires_at: number;
}

export interface AuditTable {
  seq: Generated<number>;
  at: string;
  actor: string;
  action: string;
  target: string;
  details: string;
}

export interface HeldChangeTable {
  seq: Generated<number>;
  run_id: string;
  connector_id: string;
  user_id: string;
  /** deactivate or delete */
  op: string;
  data: string;
  /** held, approved, rejected */
  status: string;
}

export interface AdminTokenTable {
  id: string;
  token_hash: string;
  label: string;
  scope: ColumnType<string, string | undefined, string>;
  created_at: string;
  revoked_at: string | null;
  created_by: ColumnType<string | null, string | null | undefined, string | null>;
}

export interface AdminAccountTable {
  id: string;
  username: string;
  username_key: string;
  /** scrypt$N$r$p$salt$hash (base64) */
  password_hash: string;
  role: 'administrator' | 'auditor';
  disabled: ColumnType<number, number | undefined, number>;
  must_change_password: ColumnType<number, number | undefined, number>;
  failed_logins: ColumnType<number, number | undefined, number>;
  locked_until: string | null;
  last_login_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface AdminSessionTable {
  id_hash: string;
  account_id: string;
  csrf_token: string;
  created_at: string;
  last_seen_at: string;
  expires_at: string;
  ip: ColumnType<string, string | undefined, string>;
  user_agent: ColumnType<string, string | undefined, string>;
}

export interface AppSettingTable {
  name: string;
  value: string;
  updated_at: string;
}

export interface AlertTable {
  seq: Generated<number>;
  at: string;
  /** held-run | target-parked | target-unavailable | connector-failing | credential-expiry | test */
  kind: string;
  /** one alert per key: raising the same key again does nothing */
  dedupe_key: string;
  connector_id: string | null;
  subject: string;
  message: string;
  details: ColumnType<string, string | undefined, string>;
  /** per channel: {"webhook": {"ok": true, "at": …} | {"error": …}, "email": …} */
  deliveries: ColumnType<string, string | undefined, string>;
  attempts: ColumnType<number, number | undefined, number>;
  next_attempt_at: string | null;
  delivered_at: string | null;
}

export interface TargetTable {
  id: string;
  name: string;
  kind: string;
  enabled: number;
  paused: ColumnType<number, number | undefined, number>;
  /** new | awaiting-adoption | active */
  phase: ColumnType<string, string | undefined, string>;
  settings: string;
  /** every change-feed row up to this one has been turned into target_work */
  cursor_seq: ColumnType<number | string, number | undefined, number>;
  /** JSON: the application's availability (unavailableUntil, failures, lastError), last delivery */
  status: ColumnType<string, string | undefined, string>;
  created_at: string;
  updated_at: string;
}

export interface TargetObjectTable {
  target_id: string;
  kind: 'user' | 'group' | 'membership';
  local_id: string;
  remote_name: string;
  remote_id: string | null;
  /** JSON: users {email, displayName, active} as last delivered or read; groups, memberships {} */
  state: ColumnType<string, string | undefined, string>;
  /** created | adopted */
  origin: string;
  /** 1 from just before a create is sent until it is known to have happened */
  pending: ColumnType<number, number | undefined, number>;
  updated_at: string;
}

export interface TargetWorkTable {
  target_id: string;
  /** u:<directory user id> | g:<directory group id> */
  key: string;
  /** the latest change-feed row behind it (0: queued by a comparison or an adoption) */
  seq: ColumnType<number | string, number | undefined, number>;
  attempts: ColumnType<number, number | undefined, number>;
  next_at: string;
  parked_at: string | null;
  error_code: string | null;
  error: string | null;
  /** raised by every change to the row (a new change, a retry, a failed try) */
  version: ColumnType<number, number | undefined, number>;
  created_at: string;
  updated_at: string;
}

export interface TargetComparisonTable {
  id: string;
  target_id: string;
  /** report (change nothing) | fix (repair what the ledger owns) */
  mode: string;
  /** queued | running | done | failed */
  status: string;
  requested_by: string;
  requested_at: string;
  started_at: string | null;
  ended_at: string | null;
  summary: ColumnType<string, string | undefined, string>;
  error: string | null;
}

export interface TargetComparisonItemTable {
  comparison_id: string;
  n: number;
  category: string;
  entity: string;
  local_id: string | null;
  remote_name: string;
  detail: ColumnType<string, string | undefined, string>;
}

export interface TargetEventTable {
  seq: Generated<number>;
  target_id: string;
  at: string;
  action: string;
  /** the user or group, by the application's name for it */
  subject: string;
  detail: ColumnType<string, string | undefined, string>;
}

export interface Database {
  connectors: ConnectorTable;
  scim_tokens: ScimTokenTable;
  mirror_users: MirrorUserTable;
  mirror_groups: MirrorGroupTable;
  mirror_members: MirrorMemberTable;
  mirror_user_emails: MirrorUserEmailTable;
  dirty_marks: DirtyMarkTable;
  directory_users: DirectoryUserTable;
  directory_groups: DirectoryGroupTable;
  directory_memberships: DirectoryMembershipTable;
  group_links: GroupLinkTable;
  change_feed: ChangeFeedTable;
  runs: RunTable;
  run_logs: RunLogTable;
  leases: LeaseTable;
  audit_log: AuditTable;
  held_changes: HeldChangeTable;
  admin_tokens: AdminTokenTable;
  source_state: SourceStateTable;
  admin_accounts: AdminAccountTable;
  admin_sessions: AdminSessionTable;
  app_settings: AppSettingTable;
  alerts: AlertTable;
  targets: TargetTable;
  target_objects: TargetObjectTable;
  target_work: TargetWorkTable;
  target_comparisons: TargetComparisonTable;
  target_comparison_items: TargetComparisonItemTable;
  target_events: TargetEventTable;
}
