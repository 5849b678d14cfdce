// One migration set for SQLite and PostgreSQL. Kysely's Migrator applies them under a lock
// (a PostgreSQL advisory lock), so several instances can start at once.

import type { ColumnDefinitionBuilder, Kysely, Migration, MigrationProvider } from 'kysely';
import { Migrator, sql } from 'kysely';
import type { Db, Dialect } from './db.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type AnyDb = Kysely<any>;

function migrations(dialect: Dialect): Record<string, Migration> {
  const json = dialect === 'postgres' ? 'jsonb' : 'text';
  const seq = dialect === 'postgres' ? 'bigserial' : 'integer';
  const seqColumn = (c: ColumnDefinitionBuilder) =>
    dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement();

  return {
    '0001_foundation': {
      async up(db: AnyDb) {
        await db.schema
          .createTable('connectors')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('settings', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('scim_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connector_id', 'text', (c) => c.notNull().references('connectors.id').onDelete('cascade'))
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('label', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute();
        await db.schema.createIndex('scim_tokens_connector').on('scim_tokens').columns(['connector_id']).execute();

        // The mirror: what each identity provider says, SCIM-shaped. Keys used by Entra's lookups are
        // columns (folded in JavaScript where the comparison ignores case), the rest is the search document.
        await db.schema
          .createTable('mirror_users')
          .addColumn('connector_id', 'text', (c) => c.notNull().references('connectors.id').onDelete('cascade'))
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('user_name', 'text', (c) => c.notNull())
          .addColumn('user_name_key', 'text', (c) => c.notNull())
          .addColumn('external_id', 'text')
          .addColumn('resource', 'text', (c) => c.notNull())
          .addColumn('search', json, (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('mirror_users_pk', ['connector_id', 'id'])
          .addUniqueConstraint('mirror_users_user_name', ['connector_id', 'user_name_key'])
          .execute();
        // (…, id): equality lookups come out in the listing order, so the planner has no reason to scan instead
        await db.schema.createIndex('mirror_users_external_id').on('mirror_users').columns(['connector_id', 'external_id', 'id']).execute();

        await db.schema
          .createTable('mirror_groups')
          .addColumn('connector_id', 'text', (c) => c.notNull().references('connectors.id').onDelete('cascade'))
          .addColumn('id', 'text', (c) => c.notNull())
          .addColumn('display_name', 'text', (c) => c.notNull())
          .addColumn('display_name_key', 'text', (c) => c.notNull())
          .addColumn('external_id', 'text')
          .addColumn('resource', 'text', (c) => c.notNull())
          .addColumn('search', json, (c) => c.notNull())
          .addColumn('version', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('mirror_groups_pk', ['connector_id', 'id'])
          .addUniqueConstraint('mirror_groups_display_name', ['connector_id', 'display_name_key'])
          .execute();
        await db.schema.createIndex('mirror_groups_external_id').on('mirror_groups').columns(['connector_id', 'external_id', 'id']).execute();

        // Memberships live in their own table: adding or removing one is a single-row set operation.
        await db.schema
          .createTable('mirror_members')
          .addColumn('connector_id', 'text', (c) => c.notNull())
          .addColumn('group_id', 'text', (c) => c.notNull())
          .addColumn('member_id', 'text', (c) => c.notNull())
          .addColumn('member_type', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('mirror_members_pk', ['connector_id', 'group_id', 'member_id'])
          .addForeignKeyConstraint('mirror_members_group', ['connector_id', 'group_id'], 'mirror_groups', ['connector_id', 'id'], (c) => c.onDelete('cascade'))
          .execute();
        await db.schema.createIndex('mirror_members_member').on('mirror_members').columns(['connector_id', 'member_id']).execute();

        // Every e-mail value of every user, folded: Entra may match users by emails[type eq "work"].value,
        // and a JSON scan per lookup does not scale to 100,000 users.
        // One B-tree only (each index is another page every insert writes): rows are removed by their
        // full key, which the store computes from the document being replaced.
        let emails = db.schema
          .createTable('mirror_user_emails')
          .addColumn('connector_id', 'text', (c) => c.notNull())
          .addColumn('value_key', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('mirror_user_emails_pk', ['connector_id', 'value_key', 'user_id']);
        if (dialect === 'sqlite') emails = emails.modifyEnd(sql`without rowid`);
        await emails.execute();

        await db.schema
          .createTable('dirty_marks')
          .addColumn('seq', seq, seqColumn)
          .addColumn('connector_id', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('ref', 'text', (c) => c.notNull())
          .addColumn('ref2', 'text', (c) => c.notNull().defaultTo(''))
          .execute();

        await db.schema
          .createTable('directory_users')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('username_key', 'text', (c) => c.notNull().unique())
          .addColumn('email', 'text')
          .addColumn('display_name', 'text', (c) => c.notNull())
          .addColumn('active', 'integer', (c) => c.notNull())
          .addColumn('attributes', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('owner_connector_id', 'text')
          .addColumn('source_id', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addUniqueConstraint('directory_users_source', ['owner_connector_id', 'source_id'])
          .execute();

        await db.schema
          .createTable('directory_groups')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('name_key', 'text', (c) => c.notNull().unique())
          .addColumn('owner_connector_id', 'text')
          .addColumn('source_id', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addUniqueConstraint('directory_groups_source', ['owner_connector_id', 'source_id'])
          .execute();

        await db.schema
          .createTable('directory_memberships')
          .addColumn('group_id', 'text', (c) => c.notNull().references('directory_groups.id').onDelete('cascade'))
          .addColumn('user_id', 'text', (c) => c.notNull().references('directory_users.id').onDelete('cascade'))
          .addColumn('managed_by', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('directory_memberships_pk', ['group_id', 'user_id', 'managed_by'])
          .execute();
        await db.schema.createIndex('directory_memberships_user').on('directory_memberships').columns(['user_id']).execute();

        // Which directory groups a provider group feeds (one for on-the-fly mapping, several for manual).
        await db.schema
          .createTable('group_links')
          .addColumn('connector_id', 'text', (c) => c.notNull())
          .addColumn('source_id', 'text', (c) => c.notNull())
          .addColumn('group_id', 'text', (c) => c.notNull().references('directory_groups.id').onDelete('cascade'))
          .addPrimaryKeyConstraint('group_links_pk', ['connector_id', 'source_id', 'group_id'])
          .execute();
        await db.schema.createIndex('group_links_group').on('group_links').columns(['connector_id', 'group_id', 'source_id']).execute();

        await db.schema
          .createTable('change_feed')
          .addColumn('seq', seq, seqColumn)
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'text')
          .addColumn('run_id', 'text')
          .addColumn('entity', 'text', (c) => c.notNull())
          .addColumn('entity_id', 'text', (c) => c.notNull())
          .addColumn('op', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('change_feed_entity').on('change_feed').columns(['entity', 'entity_id']).execute();
        await db.schema.createIndex('change_feed_run').on('change_feed').columns(['run_id']).execute();

        await db.schema
          .createTable('runs')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('connector_id', 'text', (c) => c.notNull())
          .addColumn('trigger', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('started_at', 'text', (c) => c.notNull())
          .addColumn('ended_at', 'text')
          .addColumn('last_activity_at', 'text', (c) => c.notNull())
          .addColumn('counters', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('peak_rss', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('error', 'text')
          .execute();
        await db.schema.createIndex('runs_connector').on('runs').columns(['connector_id', 'status']).execute();

        await db.schema
          .createTable('run_logs')
          .addColumn('seq', seq, seqColumn)
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('level', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('run_logs_run').on('run_logs').columns(['run_id']).execute();

        await db.schema
          .createTable('leases')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('holder', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'bigint', (c) => c.notNull())
          .execute();

        await db.schema
          .createTable('audit_log')
          .addColumn('seq', seq, seqColumn)
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('target', 'text', (c) => c.notNull())
          .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
          .execute();
      },
    },
    '0002_rules': {
      async up(db: AnyDb) {
        // Whether the connector's rules currently keep the user in scope (bookkeeping for membership
        // passes: memberships of out-of-scope users are left as they are).
        await db.schema.alterTable('directory_users').addColumn('in_scope', 'integer', (c) => c.notNull().defaultTo(1)).execute();
        await db.schema.createIndex('directory_users_owner').on('directory_users').columns(['owner_connector_id', 'in_scope']).execute();

        // Deactivations and deletions a run could not apply because they exceed the deletion limit.
        await db.schema
          .createTable('held_changes')
          .addColumn('seq', seq, seqColumn)
          .addColumn('run_id', 'text', (c) => c.notNull())
          .addColumn('connector_id', 'text', (c) => c.notNull())
          .addColumn('user_id', 'text', (c) => c.notNull())
          .addColumn('op', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('held'))
          .execute();
        await db.schema.createIndex('held_changes_run').on('held_changes').columns(['run_id', 'status']).execute();

        await db.schema
          .createTable('admin_tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('token_hash', 'text', (c) => c.notNull().unique())
          .addColumn('label', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('revoked_at', 'text')
          .execute();
      },
    },
    '0003_pull_sources': {
      async up(db: AnyDb) {
        // A pull connector's source settings (Graph, LDAP): JSON, with secrets sealed by the secret key.
        await db.schema.alterTable('connectors').addColumn('source', 'text', (c) => c.notNull().defaultTo('{}')).execute();
        // Runs: what a pull run is doing now ('reading' the provider, 'reconciling', '' when done) and
        // its progress, which any instance can serve.
        await db.schema.alterTable('runs').addColumn('phase', 'text', (c) => c.notNull().defaultTo('')).execute();
        await db.schema.alterTable('runs').addColumn('progress', 'text', (c) => c.notNull().defaultTo('{}')).execute();
        await db.schema.createIndex('runs_connector_started').on('runs').columns(['connector_id', 'started_at']).execute();
        await db.schema.createIndex('runs_phase').on('runs').columns(['phase']).execute();
        // Marks written by a pull run carry its id: the reconciler attributes the changes to that run,
        // and leaves them alone while the run is still reading.
        await db.schema.alterTable('dirty_marks').addColumn('run_id', 'text').execute();
        await db.schema.createIndex('dirty_marks_run').on('dirty_marks').columns(['run_id']).execute();
        // What a pull source remembers between runs: delta links, nested-group edges.
        await db.schema
          .createTable('source_state')
          .addColumn('connector_id', 'text', (c) => c.notNull().references('connectors.id').onDelete('cascade'))
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('source_state_pk', ['connector_id', 'name'])
          .execute();
        // A member's groups: covering (with group_id), or SQLite prefers the primary key's covering
        // index and scans a connector's every membership for `connector_id = ? AND member_id IN (…)`.
        await db.schema.dropIndex('mirror_members_member').execute();
        await db.schema.createIndex('mirror_members_member').on('mirror_members').columns(['connector_id', 'member_id', 'group_id']).execute();
        // 'admin' tokens may do anything; 'sync-user' tokens only ask for one user's sync (an SSO layer's)
        await db.schema.alterTable('admin_tokens').addColumn('scope', 'text', (c) => c.notNull().defaultTo('admin')).execute();
      },
    },
    '0004_accounts_alerts': {
      async up(db: AnyDb) {
        // People who administer usersync: a scrypt password hash, a role, and the lockout bookkeeping.
        await db.schema
          .createTable('admin_accounts')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('username', 'text', (c) => c.notNull())
          .addColumn('username_key', 'text', (c) => c.notNull().unique())
          .addColumn('password_hash', 'text', (c) => c.notNull())
          .addColumn('role', 'text', (c) => c.notNull())
          .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('must_change_password', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('locked_until', 'text')
          .addColumn('last_login_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        // Browser sessions: only the SHA-256 of the cookie's value is stored, so a copy of the database
        // logs nobody in. The CSRF token is bound to the session.
        await db.schema
          .createTable('admin_sessions')
          .addColumn('id_hash', 'text', (c) => c.primaryKey())
          .addColumn('account_id', 'text', (c) => c.notNull().references('admin_accounts.id').onDelete('cascade'))
          .addColumn('csrf_token', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('last_seen_at', 'text', (c) => c.notNull())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .addColumn('ip', 'text', (c) => c.notNull().defaultTo(''))
          .addColumn('user_agent', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema.createIndex('admin_sessions_account').on('admin_sessions').columns(['account_id']).execute();
        // Service-wide settings edited from the admin API (alert channels, …): JSON, secrets sealed.
        await db.schema
          .createTable('app_settings')
          .addColumn('name', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        // Alerts raised, once per dedupe key, and their delivery to each channel.
        await db.schema
          .createTable('alerts')
          .addColumn('seq', seq, seqColumn)
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
          .addColumn('connector_id', 'text')
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('message', 'text', (c) => c.notNull())
          .addColumn('details', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('deliveries', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_attempt_at', 'text')
          .addColumn('delivered_at', 'text')
          .execute();
        await db.schema.createIndex('alerts_pending').on('alerts').columns(['delivered_at', 'next_attempt_at']).execute();
        // A user's page lists its membership changes; a membership's feed id is '<group id>:<user id>', so
        // an index on the id's user part, over membership rows only (the same expression as memberUserIdSql)
        await sql`CREATE INDEX change_feed_member_user ON change_feed (${memberUserIdSql(dialect)}, seq) WHERE entity = 'membership'`.execute(db);
        // the runs page lists the latest runs of all connectors
        await db.schema.createIndex('runs_started').on('runs').columns(['started_at']).execute();
        // Admin tokens name the account that made them (null: made by the command line)
        await db.schema.alterTable('admin_tokens').addColumn('created_by', 'text').execute();
      },
    },
    '0005_targets': {
      async up(db: AnyDb) {
        // Applications that receive the directory. settings: JSON, credentials sealed. cursor_seq: every
        // change-feed row up to it has been turned into work below. phase: new → awaiting-adoption
        // (after the first comparison) → active (delivering).
        await db.schema
          .createTable('targets')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('enabled', 'integer', (c) => c.notNull().defaultTo(1))
          .addColumn('paused', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('phase', 'text', (c) => c.notNull().defaultTo('new'))
          .addColumn('settings', 'text', (c) => c.notNull())
          .addColumn('cursor_seq', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('status', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        // The ledger: what usersync created or adopted in each application; only these are ever changed.
        // kind user: local_id = directory user id; group: directory group id; membership: '<user id>:<group id>'
        // (user first, so a user's memberships are one range of the primary key).
        await db.schema
          .createTable('target_objects')
          .addColumn('target_id', 'text', (c) => c.notNull().references('targets.id').onDelete('cascade'))
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('local_id', 'text', (c) => c.notNull())
          .addColumn('remote_name', 'text', (c) => c.notNull())
          .addColumn('remote_id', 'text')
          .addColumn('state', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('origin', 'text', (c) => c.notNull())
          .addColumn('pending', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('target_objects_pk', ['target_id', 'kind', 'local_id'])
          .execute();
        // What each target still has to bring up to date: one row per user ('u:<id>') or group ('g:<id>').
        // A row that keeps failing is parked (parked_at) and waits for a retry; the others go on.
        await db.schema
          .createTable('target_work')
          .addColumn('target_id', 'text', (c) => c.notNull().references('targets.id').onDelete('cascade'))
          .addColumn('key', 'text', (c) => c.notNull())
          .addColumn('seq', 'bigint', (c) => c.notNull().defaultTo(0))
          .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('next_at', 'text', (c) => c.notNull())
          .addColumn('parked_at', 'text')
          .addColumn('error_code', 'text')
          .addColumn('error', 'text')
          // raised by every change to the row: a round finishes a row only if nobody touched it meanwhile
          .addColumn('version', 'integer', (c) => c.notNull().defaultTo(0))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('target_work_pk', ['target_id', 'key'])
          .execute();
        await db.schema.createIndex('target_work_due').on('target_work').columns(['target_id', 'parked_at', 'next_at']).execute();
        // Full comparisons of a target with the directory, and what each found.
        await db.schema
          .createTable('target_comparisons')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('target_id', 'text', (c) => c.notNull().references('targets.id').onDelete('cascade'))
          .addColumn('mode', 'text', (c) => c.notNull())
          .addColumn('status', 'text', (c) => c.notNull())
          .addColumn('requested_by', 'text', (c) => c.notNull())
          .addColumn('requested_at', 'text', (c) => c.notNull())
          .addColumn('started_at', 'text')
          .addColumn('ended_at', 'text')
          .addColumn('summary', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('error', 'text')
          .execute();
        await db.schema.createIndex('target_comparisons_target').on('target_comparisons').columns(['target_id', 'requested_at']).execute();
        await db.schema
          .createTable('target_comparison_items')
          .addColumn('comparison_id', 'text', (c) => c.notNull().references('target_comparisons.id').onDelete('cascade'))
          .addColumn('n', 'integer', (c) => c.notNull())
          .addColumn('category', 'text', (c) => c.notNull())
          .addColumn('entity', 'text', (c) => c.notNull())
          .addColumn('local_id', 'text')
          .addColumn('remote_name', 'text', (c) => c.notNull())
          .addColumn('detail', 'text', (c) => c.notNull().defaultTo('{}'))
          .addPrimaryKeyConstraint('target_comparison_items_pk', ['comparison_id', 'n'])
          .execute();
        await db.schema.createIndex('target_comparison_items_category').on('target_comparison_items').columns(['comparison_id', 'category', 'n']).execute();
        // What each target did in its application, newest last: what an administrator reads to learn what
        // happened in Jira last night. Pruned with the change feed.
        await db.schema
          .createTable('target_events')
          .addColumn('seq', seq, seqColumn)
          .addColumn('target_id', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          /** created, updated, renamed, activated, deactivated, deleted, groups-added, groups-removed, group-created, group-deleted, group-renamed, parked */
          .addColumn('action', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('detail', 'text', (c) => c.notNull().defaultTo(''))
          .execute();
        await db.schema.createIndex('target_events_target').on('target_events').columns(['target_id', 'seq']).execute();
      },
    },
  };
}

/** The user id in a membership's change-feed id '<group id>:<user id>', as the index `change_feed_member_user` has it. */
export function memberUserIdSql(dialect: Dialect) {
  return dialect === 'postgres' ? sql`(split_part(entity_id, ':', 2))` : sql`substr(entity_id, instr(entity_id, ':') + 1)`;
}

class StaticProvider implements MigrationProvider {
  constructor(private readonly set: Record<string, Migration>) {}
  async getMigrations(): Promise<Record<string, Migration>> {
    return this.set;
  }
}

export async function migrateToLatest(db: Db): Promise<void> {
  const migrator = new Migrator({
    db: db.kysely,
    provider: new StaticProvider(migrations(db.dialect)),
    // Kysely looks for its own tables by name; name the schema so another schema's tables don't count
    ...(db.pgSchema ? { migrationTableSchema: db.pgSchema } : {}),
  });
  for (let attempt = 0; ; attempt++) {
    const { error } = await migrator.migrateToLatest();
    if (!error) return;
    const code = (error as { code?: string }).code;
    // SQLite: another process may hold the write lock for a moment. PostgreSQL: Kysely's introspection
    // reads every schema's tables, and fails (3F000, or XX000 "cache lookup failed for namespace") when
    // another schema is dropped meanwhile; the migrations run in a transaction, so trying again is safe.
    const catalogRace = code === 'XX000' && /cache lookup failed/.test((error as Error).message);
    const transient = code?.startsWith('SQLITE_BUSY') || code === '3F000' || code === '42P01' || catalogRace;
    if (!transient || attempt >= 20) throw error;
    await new Promise((r) => setTimeout(r, 100 + Math.random() * 200));
  }
}

export { sql };
