// The usersync command: `serve` runs the service; the other commands manage connectors and tokens
// directly in the store (the same DATABASE_URL as the service). `sync`, `sync-user` and `test` of a pull
// connector (Graph) run in this process, under the same per-connector lease as the service's runs.

import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import cliProgress from 'cli-progress';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { buildService } from './server/app.ts';
import type { Db } from './store/db.ts';
import { isUniqueViolation, openStore } from './store/db.ts';
import type { ConnectorKind } from './store/connectors.ts';
import { ADMIN_TOKEN_SCOPES, AdminTokenStore } from './admin/tokens.ts';
import { AccountError, AccountStore, ADMIN_ROLES, generatePassword } from './admin/accounts.ts';
import { SettingsError, settingsPatch } from './domain/settings-validate.ts';
import { audit, ConnectorStore } from './store/connectors.ts';
import { ConflictError, loadSettings, NotFoundError, Reconciler } from './sync/reconciler.ts';
import type { AdminTokenScope } from './admin/tokens.ts';
import type { PullKind } from './sources/registry.ts';
import { isPullKind, openSource, prepareSource, redactSource, resealAllSources, secretFields, storedSecrets } from './sources/registry.ts';
import type { Progress } from './sync/source.ts';
import type { SecretBox } from './store/secrets.ts';
import { loadSecretKeys } from './store/secrets.ts';
import { SECRET_KEY_ENV, keyFileKeys, keysFromEnvironment, newSecretKey, writeKeyFile } from './store/secrets.ts';
import { prune } from './store/retention.ts';
import { resealAlertSecrets } from './alerts/settings.ts';
import { resealAllTargets } from './targets/config.ts';
import { TargetStore } from './store/targets.ts';
import { BackupError, backupSqlite } from './store/backup.ts';
import type { PullMode, RunHandle, RunOutcome, UserSearchReport } from './sync/pull.ts';
import { BusyError, PullRunner } from './sync/pull.ts';

const actor = `cli:${os.userInfo().username}`;

async function withStore<T>(fn: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openStore({ url: config.databaseUrl, sqliteSynchronous: config.sqliteSynchronous, ...(config.databaseSchema ? { pgSchema: config.databaseSchema } : {}) });
  try {
    return await fn(db, config);
  } finally {
    await db.close();
  }
}

function scimBaseUrl(config: Config, connectorId: string): string {
  const root = config.publicBaseUrl ?? `${config.tlsCertFile ? 'https' : 'http'}://${config.host}:${config.port}`;
  return `${root}/scim/v2/${connectorId}`;
}

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '(none)';
  const cols = Object.keys(rows[0]!);
  const width = cols.map((c) => Math.max(c.length, ...rows.map((r) => String(r[c] ?? '').length)));
  const line = (vals: string[]) => vals.map((v, i) => v.padEnd(width[i]!)).join('  ').trimEnd();
  return [line(cols), ...rows.map((r) => line(cols.map((c) => String(r[c] ?? ''))))].join('\n');
}

async function serve(): Promise<void> {
  const config = loadConfig();
  const db = await openStore({ url: config.databaseUrl, sqliteSynchronous: config.sqliteSynchronous, ...(config.databaseSchema ? { pgSchema: config.databaseSchema } : {}) });
  const service = await buildService(db, config);
  const connectors = service.connectors;
  // First start: a ready SCIM connector, its token shown this once. Instances starting together on one
  // database race for it: one creates it, the others find it taken and go on.
  const connector = (await connectors.list()).length === 0 ? await createFirstConnector(connectors) : undefined;
  if (connector) {
    const { token } = await connectors.createToken(connector.id, 'first start', 'system:first-start');
    process.stdout.write(
      [
        '',
        'usersync: created the SCIM connector "default".',
        `  SCIM Base URL (Entra ID "Tenant URL"): ${scimBaseUrl(config, connector.id)}`,
        `  Bearer token ("Secret Token"):        ${token}`,
        '  The token is shown only now; `usersync token create default` makes another.',
        '',
      ].join('\n') + '\n',
    );
  }
  await ensureFirstAdministrator(service.accounts);
  const shutdown = async (signal: string) => {
    service.app.log.info(`${signal}: shutting down`);
    // runs in progress are told to stop and end as failed; should one not answer, leave anyway
    setTimeout(() => process.exit(1), 15_000).unref();
    await service.app.close();
    await db.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  await service.app.listen({ host: config.host, port: config.port });
  service.app.log.info({ database: db.dialect }, 'usersync is ready');
}

/**
 * First start: an administrator account. Its password comes from USERSYNC_ADMIN_PASSWORD, or is made up
 * and printed this once (and must be changed at the first login). Instances starting together race for
 * the name; the losers find it taken.
 */
async function ensureFirstAdministrator(accounts: AccountStore): Promise<void> {
  if ((await accounts.count()) > 0) return;
  const fromEnv = process.env.USERSYNC_ADMIN_PASSWORD;
  const username = process.env.USERSYNC_ADMIN_USERNAME || 'admin';
  const password = fromEnv || generatePassword();
  try {
    await accounts.create({ username, password, role: 'administrator', mustChangePassword: !fromEnv }, 'system:first-start');
  } catch (e) {
    if (e instanceof AccountError && e.code === 'username_taken') return;
    if (e instanceof AccountError) throw new Error(`USERSYNC_ADMIN_USERNAME / USERSYNC_ADMIN_PASSWORD: ${e.message}`);
    throw e;
  }
  process.stdout.write(
    [
      '',
      `usersync: created the administrator account "${username}".`,
      fromEnv ? '  Its password is the one in USERSYNC_ADMIN_PASSWORD.' : `  Password: ${password}`,
      fromEnv ? '' : '  The password is shown only now, and must be changed at the first login.',
      '  Log in to the admin UI at the service\'s address (`usersync account reset-password` if it is lost).',
      '',
    ]
      .filter((l, i, all) => l !== '' || i === 0 || i === all.length - 1)
      .join('\n') + '\n',
  );
}

async function createFirstConnector(connectors: ConnectorStore): Promise<{ id: string } | undefined> {
  try {
    return await connectors.create({ id: 'default', name: 'Default SCIM connector', kind: 'scim' }, 'system:first-start');
  } catch (e) {
    if (isUniqueViolation(e)) return undefined;
    throw e;
  }
}

export function buildCli(): Command {
  const program = new Command('usersync').description('Provision users and groups from identity providers into Atlassian applications.');
  program.exitOverride();

  program.command('serve', { isDefault: true }).description('run the service').action(serve);

  const connector = program.command('connector').description('manage connectors');
  connector
    .command('list')
    .description('list connectors')
    .action(() =>
      withStore(async (db) => {
        const list = await new ConnectorStore(db).list();
        console.log(table(list.map((c) => ({ id: c.id, name: c.name, kind: c.kind, enabled: c.enabled ? 'yes' : 'no', created: c.createdAt }))));
      }),
    );
  connector
    .command('create <name>')
    .description('create a connector (a SCIM connector also gets a token, shown once; a Graph or LDAP connector needs --source)')
    .option('--id <id>', 'connector id (lower-case letters, digits, dashes); random when omitted')
    .option('--kind <kind>', 'scim, graph or ldap', 'scim')
    .option('--source <file>', 'graph, ldap: the source settings with the client secret or bind password (a JSON file, or - for standard input)')
    .action((name: string, o: { id?: string; kind: string; source?: string }) =>
      withStore(async (db, config) => {
        const store = new ConnectorStore(db);
        const kind = o.kind as ConnectorKind;
        if (!isPullKind(kind)) {
          if (o.source) throw new UserError(`--source is for pull connectors (--kind graph or ldap), not for ${kind} connectors`, 1);
          const c = await store.create({ ...(o.id ? { id: o.id } : {}), name, kind }, actor);
          console.log(`created connector ${c.id} (${c.kind})`);
          if (c.kind === 'scim') {
            const { token } = await store.createToken(c.id, 'created with the connector', actor);
            console.log(`SCIM Base URL: ${scimBaseUrl(config, c.id)}`);
            console.log(`Bearer token:  ${token}`);
            console.log('The token is shown only now.');
          }
          return;
        }
        if (!o.source) throw new UserError(`a ${kind} connector needs its source settings: --source <file.json> (or --source - to read them from standard input)`, 1);
        const id = o.id ?? randomUUID();
        if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(id)) throw new UserError(`connector id '${id}' must be lower-case letters, digits and dashes (at most 63)`, 1);
        if (await store.get(id)) throw new UserError(`a connector '${id}' exists already`, 1);
        const input = readJson(o.source, 1);
        const source = sourceOrError(() => prepareSource(kind, id, input, undefined, secretBox(config, true)));
        const c = await store.create({ id, name, kind, source }, actor);
        console.log(`created connector ${c.id} (${c.kind})`);
        console.log(`  check it with \`usersync test ${c.id}\`, run it with \`usersync sync ${c.id}\``);
      }),
    );
  for (const [verb, enabled] of [
    ['disable', false],
    ['enable', true],
  ] as const) {
    connector
      .command(`${verb} <id>`)
      .description(`${verb} a connector (a disabled SCIM connector answers 403)`)
      .action((id: string) =>
        withStore(async (db) => {
          if (!(await new ConnectorStore(db).setEnabled(id, enabled, actor))) throw new UserError(`no connector '${id}'`);
          console.log(`connector ${id} ${verb}d`);
        }),
      );
  }
  connector
    .command('delete <id>')
    .description('delete a connector, its mirror and its tokens (directory users stay)')
    .action((id: string) =>
      withStore(async (db) => {
        if (!(await new ConnectorStore(db).delete(id, actor))) throw new UserError(`no connector '${id}'`);
        console.log(`connector ${id} deleted`);
      }),
    );

  const token = program.command('token').description('manage SCIM bearer tokens');
  token
    .command('list <connector>')
    .description("list a connector's tokens (never their values)")
    .action((connectorId: string) =>
      withStore(async (db) => {
        const store = new ConnectorStore(db);
        if (!(await store.get(connectorId))) throw new UserError(`no connector '${connectorId}'`);
        const list = await store.listTokens(connectorId);
        console.log(table(list.map((t) => ({ id: t.id, label: t.label, created: t.createdAt, revoked: t.revokedAt ?? '' }))));
      }),
    );
  token
    .command('create <connector>')
    .description('create another token (several may be valid at once, for rotation)')
    .option('--label <label>', 'a note to recognise the token by', '')
    .action((connectorId: string, o: { label: string }) =>
      withStore(async (db) => {
        const store = new ConnectorStore(db);
        const c = await store.get(connectorId);
        if (!c) throw new UserError(`no connector '${connectorId}'`);
        if (c.kind !== 'scim') throw new UserError(`connector '${connectorId}' is not a SCIM connector`);
        const { token: value, info } = await store.createToken(connectorId, o.label, actor);
        console.log(`token ${info.id} created for ${connectorId}:`);
        console.log(value);
        console.log('It is shown only now.');
      }),
    );
  token
    .command('revoke <connector> <tokenId>')
    .description('revoke a token (takes effect within two seconds)')
    .action((connectorId: string, tokenId: string) =>
      withStore(async (db) => {
        if (!(await new ConnectorStore(db).revokeToken(connectorId, tokenId, actor))) {
          throw new UserError(`no valid token '${tokenId}' for connector '${connectorId}'`);
        }
        console.log(`token ${tokenId} revoked`);
      }),
    );
  const account = program.command('account').description('manage admin accounts (who logs in to the admin UI)');
  account
    .command('list')
    .description('list admin accounts')
    .action(() =>
      withStore(async (db) => {
        const list = await new AccountStore(db).list();
        console.log(table(list.map((a) => ({ username: a.username, role: a.role, disabled: a.disabled ? 'yes' : '', locked: a.locked ? `until ${a.lockedUntil}` : '', 'last login': a.lastLoginAt ?? '' }))));
      }),
    );
  account
    .command('create <username>')
    .description('create an account; its password is made up, shown once, and must be changed at the first login')
    .addOption(new Option('--role <role>', 'administrator or auditor (read only)').choices([...ADMIN_ROLES]).default('administrator'))
    .action((username: string, o: { role: string }) =>
      withStore(async (db) => {
        const password = generatePassword();
        await new AccountStore(db).create({ username, password, role: o.role, mustChangePassword: true }, actor).catch(accountUserError);
        console.log(`account ${username} (${o.role}) created; password (shown only now): ${password}`);
      }),
    );
  account
    .command('reset-password <username>')
    .description('give an account a new password (shown once, to be changed at the next login); also unlocks it')
    .action((username: string) =>
      withStore(async (db) => {
        const store = new AccountStore(db);
        const a = await store.byUsername(username);
        if (!a) throw new UserError(`no account '${username}'`);
        const password = generatePassword();
        await store.update(a.id, { password }, actor).catch(accountUserError);
        console.log(`new password for ${a.username} (shown only now): ${password}`);
      }),
    );
  account
    .command('unlock <username>')
    .description('unlock an account locked by failed logins')
    .action((username: string) =>
      withStore(async (db) => {
        const store = new AccountStore(db);
        const a = await store.byUsername(username);
        if (!a) throw new UserError(`no account '${username}'`);
        await store.unlock(a.id, actor);
        console.log(`${a.username} unlocked`);
      }),
    );

  const adminToken = program.command('admin-token').description('manage admin API tokens (for /api)');
  adminToken
    .command('create [label]')
    .description('create an admin API token (shown once)')
    .option('--label <label>', 'a note to recognise the token by (or give it as the argument)')
    .addOption(new Option('--scope <scope>', 'admin: the whole API; auditor: read only; sync: start syncs and read runs; sync-user: only POST /api/connectors/{id}/sync-user').choices([...ADMIN_TOKEN_SCOPES]).default('admin'))
    .action((label: string | undefined, o: { label?: string; scope: AdminTokenScope }) =>
      withStore(async (db) => {
        const { token: value, info } = await new AdminTokenStore(db).create(label ?? o.label ?? '', actor, o.scope);
        console.log(`admin token ${info.id} created (scope ${info.scope}):`);
        console.log(value);
        console.log('It is shown only now.');
      }),
    );
  adminToken
    .command('list')
    .description('list admin API tokens (never their values)')
    .action(() =>
      withStore(async (db) => {
        const list = await new AdminTokenStore(db).list();
        console.log(table(list.map((t) => ({ id: t.id, label: t.label, scope: t.scope, created: t.createdAt, revoked: t.revokedAt ?? '' }))));
      }),
    );
  adminToken
    .command('revoke <tokenId>')
    .description('revoke an admin API token')
    .action((tokenId: string) =>
      withStore(async (db) => {
        if (!(await new AdminTokenStore(db).revoke(tokenId, actor))) throw new UserError(`no valid admin token '${tokenId}'`);
        console.log(`admin token ${tokenId} revoked`);
      }),
    );

  program
    .command('settings <connector>')
    .description("show a connector's user and group sync settings, or set them from a JSON file")
    .option('--set <file>', 'JSON file with settings (a partial document updates only what it names)')
    .action((connectorId: string, o: { set?: string }) =>
      withStore(async (db) => {
        if (!(await new ConnectorStore(db).get(connectorId))) throw new UserError(`no connector '${connectorId}'`);
        const current = await loadSettings(db, connectorId);
        if (!o.set) {
          console.log(JSON.stringify(current, null, 2));
          return;
        }
        const next = settingsPatch(current, readJson(o.set));
        await db.transaction(async (trx) => {
          await trx.updateTable('connectors').set({ settings: JSON.stringify(next), updated_at: new Date().toISOString() }).where('id', '=', connectorId).execute();
          await audit(trx, actor, 'settings.update', connectorId, { before: current, after: next });
        });
        const report = await new Reconciler(db).fullPass(connectorId, 'settings-change', next);
        console.log(`settings saved; re-evaluation run ${report.runId}: ${report.status}`);
        printCounters(report.counters);
      }),
    );

  program
    .command('preview <connector>')
    .description('show what a full sync would change, with the stored or the given settings, without changing anything')
    .option('--settings <file>', 'candidate settings (JSON; a partial document changes only what it names)')
    .option('--all', 'list every change, not only the first 50')
    .action((connectorId: string, o: { settings?: string; all?: boolean }) =>
      withStore(async (db) => {
        if (!(await new ConnectorStore(db).get(connectorId))) throw new UserError(`no connector '${connectorId}'`);
        const current = await loadSettings(db, connectorId);
        const candidate = o.settings ? settingsPatch(current, readJson(o.settings)) : current;
        const report = await new Reconciler(db).preview(connectorId, candidate, o.all ? 1_000_000 : 50);
        console.log(`preview for ${connectorId}: ${report.totalChanges} changes${report.held.length ? `, ${report.held.length} held by the deletion limit` : ''}`);
        printCounters(report.counters);
        for (const s of report.seats) console.log(`licence ${s.group}: ${s.before} → ${s.after} of ${s.seats} seats`);
        for (const m of report.merges) console.log(`merged: ${m.sources.join(' + ')} → ${m.group}`);
        for (const c of report.changes) console.log(`  ${c.entity} ${c.op} ${describeChange(c.data)}`);
        if (report.totalChanges > report.changes.length) console.log(`  … ${report.totalChanges - report.changes.length} more (--all lists them)`);
        for (const h of report.held) console.log(`  held: ${h.op} ${describeChange(h.data)}`);
        for (const l of report.log.filter((x) => x.level !== 'info')) console.log(`  ${l.level}: ${l.message}`);
      }),
    );

  program
    .command('source <connector>')
    .description("show a pull connector's source settings (secrets only said to be set), or replace them from a JSON file")
    .option('--set <file>', 'JSON file (or - for standard input) with the whole source settings; secrets left out keep their stored values')
    .action((connectorId: string, o: { set?: string }) =>
      withStore(async (db, config) => {
        const store = new ConnectorStore(db);
        const kind = await pullKind(store, connectorId, 1);
        const stored = (await store.getSource(connectorId)) ?? {};
        if (!o.set) {
          console.log(JSON.stringify(redactSource(kind, stored), null, 2));
          return;
        }
        const input = readJson(o.set, 1);
        // like the API's PUT: the defaults fill what the file leaves out, except the stored secrets
        const next = sourceOrError(() => prepareSource(kind, connectorId, input, storedSecrets(kind, stored), secretBox(config, true)));
        await store.setSource(connectorId, next, actor, secretFields(kind));
        console.log(JSON.stringify(redactSource(kind, next), null, 2));
        process.stderr.write(`source settings of ${connectorId} saved\n`);
      }),
    );

  program
    .command('sync <connector>')
    .description('a pull connector (Graph): read the provider now, here, and reconcile; a SCIM connector: re-evaluate everything from its mirror')
    .addOption(new Option('--full', 'read everything, not only what changed since the last run').conflicts('delta'))
    .addOption(new Option('--delta', 'read only what changed (a full read when there is no usable delta state)'))
    .action((connectorId: string, o: { full?: boolean; delta?: boolean }) =>
      withStore(async (db, config) => {
        const c = await new ConnectorStore(db).get(connectorId);
        if (!c) throw new UserError(`no connector '${connectorId}'`, 1);
        if (isPullKind(c.kind)) {
          process.exitCode = await pullSync(db, config, connectorId, o.full ? 'full' : o.delta ? 'delta' : 'auto');
          return;
        }
        if (o.delta) throw new UserError(`--delta is for pull connectors; '${connectorId}' is a ${c.kind} connector (its sync is a full pass over its mirror)`, 1);
        await audit(db.kysely, actor, 'connector.sync', connectorId, {});
        const report = await new Reconciler(db).fullPass(connectorId, 'manual');
        console.log(`run ${report.runId}: ${report.status}`);
        printCounters(report.counters);
        process.exitCode = exitCodeOf(report.status);
      }),
    );

  program
    .command('sync-user <connector> <username>')
    .description('read one user of a pull connector now (sync on login) and print the result as JSON')
    .action((connectorId: string, username: string) =>
      withStore(async (db, config) => {
        await pullKind(new ConnectorStore(db), connectorId, 1);
        const { runner, reconciler } = pullRunner(db, config);
        try {
          const result = await runner.syncUser(connectorId, username.trim());
          await audit(db.kysely, actor, 'connector.sync-user', connectorId, { username, outcome: result.outcome, runId: result.runId });
          console.log(JSON.stringify(result, null, 2));
        } catch (e) {
          if (e instanceof NotFoundError || e instanceof ConflictError) throw new UserError(e.message, 1);
          throw e;
        } finally {
          await reconciler.stop();
        }
      }),
    );

  const target = program.command('target').description('applications that receive the directory (created in the admin UI or API)');
  target
    .command('list')
    .description('list targets with their phase, backlog and availability')
    .action(() =>
      withStore(async (db) => {
        const store = new TargetStore(db);
        const rows = [];
        for (const t of await store.list()) {
          const w = await store.workCounts(t.id);
          const state = !t.enabled ? 'disabled' : t.paused ? 'paused' : t.phase;
          rows.push({ id: t.id, name: t.name, kind: t.kind, state, pending: w.pending, parked: w.parked, unavailable: t.status.unavailableUntil ? `until ${t.status.unavailableUntil}: ${t.status.lastError ?? ''}` : '' });
        }
        console.log(rows.length ? table(rows) : 'no targets; add one in the admin UI (Targets) or with POST /api/targets');
      }),
    );
  target
    .command('parked <id>')
    .description("a target's parked changes: the user or group, the error, the attempts")
    .action((id: string) =>
      withStore(async (db) => {
        const store = new TargetStore(db);
        if (!(await store.get(id))) throw new UserError(`no target '${id}'`);
        const parked = await store.parked(id, 1000);
        const users = new Map((await store.directoryUsers(parked.filter((p) => p.key.startsWith('u:')).map((p) => p.key.slice(2)))).map((u) => [u.id, u.username]));
        console.log(parked.length ? table(parked.map((p) => ({ key: p.key, name: users.get(p.key.slice(2)) ?? '', code: p.errorCode ?? '', attempts: p.attempts, error: p.error ?? '' }))) : 'nothing parked');
      }),
    );
  target
    .command('retry <id> [keys...]')
    .description('try parked changes again now: all of them, or the keys given (u:<user id>, g:<group id>)')
    .action((id: string, keys: string[]) =>
      withStore(async (db) => {
        const store = new TargetStore(db);
        if (!(await store.get(id))) throw new UserError(`no target '${id}'`);
        const n = await db.transaction(async (trx) => {
          const retried = await store.retryParked(trx, id, keys.length ? keys : undefined);
          await audit(trx, actor, 'target.retry', `target:${id}`, { retried, keys: keys.length ? keys.slice(0, 100) : 'all' });
          return retried;
        });
        await store.setStatus(id, { unavailableUntil: undefined });
        console.log(`${n} parked change${n === 1 ? '' : 's'} queued again; the service delivers them within seconds`);
      }),
    );
  for (const [verb, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    target
      .command(`${verb} <id>`)
      .description(paused ? 'stop sending to a target (changes keep queuing)' : 'send to a paused target again')
      .action((id: string) =>
        withStore(async (db) => {
          const store = new TargetStore(db);
          if (!(await store.get(id))) throw new UserError(`no target '${id}'`);
          await db.transaction(async (trx) => {
            await store.update(trx, id, { paused });
            await audit(trx, actor, `target.${verb}`, `target:${id}`, { paused });
          });
          console.log(`target ${id} ${paused ? 'paused' : 'resumed'}`);
        }),
      );
  }
  target
    .command('compare <id>')
    .description('queue a full comparison; the running service does it (see the UI or GET /api/targets/<id>/comparisons)')
    .option('--fix', 'repair what usersync owns (an adopted target only); without it, only report')
    .action((id: string, o: { fix?: boolean }) =>
      withStore(async (db) => {
        const store = new TargetStore(db);
        const t = await store.get(id);
        if (!t) throw new UserError(`no target '${id}'`);
        if (o.fix && t.phase !== 'active') throw new UserError(`target '${id}' repairs only after its first comparison has been adopted`, 1);
        if (await store.nextQueuedComparison(id)) throw new UserError(`a comparison of '${id}' is queued or running already`, 1);
        const comparisonId = randomUUID();
        await db.transaction(async (trx) => {
          await store.queueComparison(trx, { id: comparisonId, targetId: id, mode: o.fix ? 'fix' : 'report', requestedBy: actor });
          await audit(trx, actor, 'target.compare', `target:${id}`, { comparisonId, mode: o.fix ? 'fix' : 'report' });
        });
        console.log(`comparison ${comparisonId} queued (${o.fix ? 'repair' : 'report'})`);
      }),
    );

  const key = program.command('key').description('the key that seals stored secrets');
  key
    .command('rotate')
    .description('seal every stored secret with a new key; with the key file: a new key is added first, then the old ones are dropped once nothing uses them')
    .option('--keep-old', 'keep the old keys in the key file (e.g. for a backup taken before the rotation)')
    .action((o: { keepOld?: boolean }) =>
      withStore(async (db, config) => {
        const fromEnv = keysFromEnvironment(process.env);
        if (!fromEnv) {
          // a new key first; the old ones still open everything sealed so far (and a running service follows the file)
          secretBox(config, true);
          writeKeyFile(config.dataDir, [newSecretKey(), ...keyFileKeys(config.dataDir)]);
        }
        const box = secretBox(config, false);
        const sources = await resealAllSources(db, box);
        const alertSecrets = await resealAlertSecrets(db, box);
        const targetSecrets = await resealAllTargets(db, box);
        const resealed = sources.resealed + alertSecrets.resealed + targetSecrets.resealed;
        const keysInUse = [...new Set([...sources.keysInUse, ...alertSecrets.keysInUse, ...targetSecrets.keysInUse])];
        const old = box.keyIds.filter((id) => id !== box.currentKeyId);
        const unused = old.filter((id) => !keysInUse.includes(id));
        if (!fromEnv && !o.keepOld && unused.length === old.length) writeKeyFile(config.dataDir, keyFileKeys(config.dataDir).slice(0, 1));
        await audit(db.kysely, actor, 'key.rotate', box.currentKeyId, { resealed, source: fromEnv ? 'environment' : 'key file', retired: fromEnv || o.keepOld ? [] : unused });
        console.log(`sealed ${resealed} stored secret${resealed === 1 ? '' : 's'} again with key ${box.currentKeyId}`);
        if (fromEnv) {
          if (old.length === 0) console.log(`${SECRET_KEY_ENV} holds one key: put a new key first (openssl rand -base64 32), the current one after it, and run this again`);
          else if (unused.length) console.log(`no stored secret uses ${unused.join(', ')} any more: remove ${unused.length === 1 ? 'it' : 'them'} from ${SECRET_KEY_ENV} when every instance runs with the new key`);
        } else if (o.keepOld) console.log(`the old key${old.length === 1 ? '' : 's'} ${old.join(', ')} stay in the key file (--keep-old)`);
        else if (unused.length === old.length) console.log(`the key file now holds only the new key (${old.join(', ')} retired); running services pick it up by themselves`);
        else console.log(`some secrets still use ${old.filter((id) => keysInUse.includes(id)).join(', ')}: the old keys stay in the key file; run this again`);
      }),
    );

  program
    .command('prune')
    .description('delete ended runs, change-feed rows and audit entries older than the retention settings (RETENTION_*_DAYS) now; the service does this hourly')
    .action(() =>
      withStore(async (db, config) => {
        const r = await prune(db, config.retention);
        const { runsDays, changeFeedDays, auditDays } = config.retention;
        const kept = (days: number) => (days > 0 ? `older than ${days} days` : 'none: kept for ever');
        console.log(`runs deleted: ${r.runs} (with ${r.runLogs} log lines; ${kept(runsDays)})`);
        console.log(`change-feed rows deleted: ${r.changeFeed} (${kept(changeFeedDays)})`);
        console.log(`audit entries deleted: ${r.audit} (${kept(auditDays)})`);
        console.log(`target activity entries deleted: ${r.targetEvents} (${kept(changeFeedDays)})`);
      }),
    );

  program
    .command('backup <file>')
    .description('copy the SQLite database to a new file while the service runs (a consistent snapshot, integrity-checked, mode 0600)')
    .action((file: string) =>
      withStore(async (db) => {
        try {
          const r = await backupSqlite(db, file);
          await audit(db.kysely, actor, 'store.backup', r.file, { bytes: r.bytes });
          console.log(`backup written to ${r.file} (${(r.bytes / 1024 / 1024).toFixed(1)} MB in ${(r.ms / 1000).toFixed(1)} s; integrity check ok)`);
          console.log('It holds sealed secrets: keep the secret key (USERSYNC_SECRET_KEY or secret.key) too, apart from it.');
        } catch (e) {
          if (e instanceof BackupError) throw new UserError(e.message, 1);
          throw e;
        }
      }),
    );

  program
    .command('search-user <connector> <username>')
    .description("test user search: show a user's entry at the provider, the record usersync makes of it, and the directory user and groups the current rules would give it; changes nothing")
    .option('--json', 'print the whole result as JSON')
    .action((connectorId: string, username: string, o: { json?: boolean }) =>
      withStore(async (db, config) => {
        await pullKind(new ConnectorStore(db), connectorId, 1);
        const { runner, reconciler } = pullRunner(db, config);
        try {
          const result = await runner.searchUser(connectorId, username.trim());
          if (!result) throw new UserError(`connector '${connectorId}' has no test user search`, 1);
          await audit(db.kysely, actor, 'connector.search-user', connectorId, { username, found: result.found });
          if (o.json) console.log(JSON.stringify(result, null, 2));
          else console.log(describeUserSearch(username, result));
          if (!result.found) process.exitCode = 1;
        } finally {
          await runner.stop();
          await reconciler.stop();
        }
      }),
    );

  program
    .command('test <connector>')
    .description("check a pull connector's credentials, permissions and scope, and name what is missing")
    .action((connectorId: string) =>
      withStore(async (db, config) => {
        await pullKind(new ConnectorStore(db), connectorId, 1);
        const { runner } = pullRunner(db, config);
        await audit(db.kysely, actor, 'connector.test', connectorId, {});
        const result = await runner.test(connectorId);
        for (const check of result.checks) console.log(`${check.ok ? '✓' : '✗'} ${check.name}: ${check.message}`);
        if (result.missingPermissions.length) console.log(`missing permissions: ${result.missingPermissions.join(', ')}`);
        console.log(result.ok ? 'connection ok' : 'connection not ok');
        if (!result.ok) process.exitCode = 1;
      }),
    );

  for (const verb of ['approve', 'reject'] as const) {
    program
      .command(`${verb} <run>`)
      .description(verb === 'approve' ? 'apply the deactivations and deletions a run held at the deletion limit' : "drop a run's held deactivations and deletions")
      .action((runId: string) =>
        withStore(async (db) => {
          const r = new Reconciler(db);
          try {
            const result = verb === 'approve' ? await r.approve(runId, actor) : await r.reject(runId, actor);
            console.log(`run ${runId}: ${JSON.stringify(result)}`);
          } catch (e) {
            if (e instanceof NotFoundError || e instanceof ConflictError) throw new UserError(e.message);
            throw e;
          }
        }),
      );
  }
  return program;
}

/** A JSON document from a file, or from standard input for `-`. */
function readJson(file: string, exitCode = 2): unknown {
  const name = file === '-' ? 'standard input' : file;
  let text: string;
  try {
    text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read ${name}: ${(e as Error).message}`, exitCode);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new UserError(`${name} is not JSON: ${(e as Error).message}`, exitCode);
  }
}

/** The key that seals and opens stored secrets (USERSYNC_SECRET_KEY, or the key file the service uses). */
function secretBox(config: Config, create: boolean): SecretBox {
  return loadSecretKeys({ env: process.env, dataDir: config.dataDir, create });
}

/** Source settings validated and sealed; every problem listed with its path (exit code 1). */
function sourceOrError(prepare: () => Record<string, unknown>): Record<string, unknown> {
  try {
    return prepare();
  } catch (e) {
    if (e instanceof SettingsError) throw new UserError(`invalid source settings:\n${issueLines(e)}`, 1);
    throw e;
  }
}

function issueLines(e: SettingsError): string {
  return e.errors.map((i) => `  ${i.path || '(the whole document)'}: ${i.message}${i.position !== undefined ? ` (at position ${i.position})` : ''}`).join('\n');
}

/** The test user search as an administrator reads it in a terminal. */
function describeUserSearch(username: string, r: UserSearchReport): string {
  if (!r.found) return `no user '${username}' at the provider (searched with the connector's user base and filter)`;
  const lines: string[] = [];
  if (r.matches > 1) lines.push(`${r.matches} entries match '${username}'; the first is shown`);
  if (r.entry) {
    lines.push(`entry${r.entry.dn ? ` ${r.entry.dn}` : ''}`);
    for (const [name, values] of Object.entries(r.entry.attributes)) lines.push(`  ${name}: ${values.join(' | ')}`);
  }
  if (!r.record) return [...lines, `not synced: ${r.skipped ?? 'left out by the source'}`].join('\n');
  lines.push(`record ${r.record.id}`, ...JSON.stringify(r.record.doc, null, 2).split('\n').map((l) => `  ${l}`));
  lines.push(`provider groups (${r.groups.length}): ${r.groups.map((g) => g.name).join(', ') || 'none'}`);
  const d = r.directory;
  if (!d || !d.inScope || !d.user) return [...lines, `directory: not synced (${d?.reason ?? 'left out'})`].join('\n');
  const u = d.user;
  lines.push(`directory user: ${u.username} <${u.email ?? 'no e-mail'}> "${u.displayName}" ${u.active ? 'active' : 'inactive'}${d.existing ? (d.existing.sameRecord ? ' (exists, this record)' : ` (the directory has '${d.existing.username}' already, owned by ${d.existing.ownedBy ?? 'no connector'})`) : ' (would be created)'}`);
  for (const [name, value] of Object.entries(u.attributes)) lines.push(`  ${name}: ${value}`);
  lines.push(`directory groups (${d.groups.length}):`, ...d.groups.map((g) => `  ${g.name}  (${g.because})`));
  if (d.excluded.length) lines.push('left out:', ...d.excluded.map((g) => `  ${g.name}  (${g.reason})`));
  return lines.join('\n');
}

/** The kind of a pull connector; a clear error for a missing or SCIM connector. */
async function pullKind(store: ConnectorStore, connectorId: string, exitCode: number): Promise<PullKind> {
  const c = await store.get(connectorId);
  if (!c) throw new UserError(`no connector '${connectorId}'`, exitCode);
  if (!isPullKind(c.kind)) throw new UserError(`connector '${connectorId}' is a ${c.kind} connector: it has no source to read (this command is for pull connectors: --kind graph or ldap)`, exitCode);
  return c.kind;
}

/** A pull runner in this process, on the configured database, with the service's lease rules. */
function pullRunner(db: Db, config: Config): { runner: PullRunner; reconciler: Reconciler } {
  const log = (level: 'info' | 'warn' | 'error', msg: string, extra?: Record<string, unknown>) => {
    if (level !== 'info') process.stderr.write(`usersync: ${level}: ${msg}${extra?.err ? ` (${String(extra.err)})` : ''}\n`);
  };
  const reconciler = new Reconciler(db, { batchSize: config.reconcileBatchSize, quietPeriodMs: config.pushQuietPeriodMs, runStaleMs: config.runStaleMs, log });
  let secrets: SecretBox | undefined;
  const runner = new PullRunner(db, reconciler, {
    holder: reconciler.holder,
    leaseTtlMs: config.runStaleMs,
    openSource: (c) => {
      if (!isPullKind(c.kind)) throw new Error(`connector ${c.id}: no pull source of kind '${c.kind}'`);
      secrets ??= secretBox(config, false);
      return openSource(c.kind, c.id, c.source, secrets);
    },
    log,
  });
  return { runner, reconciler };
}

/** 0: succeeded; 2: held (deactivations or deletions wait for approval); 1: anything else. */
function exitCodeOf(status: string): number {
  return status === 'succeeded' ? 0 : status === 'held' ? 2 : 1;
}

/** Run a pull here, with a progress bar (or plain lines when stderr is not a terminal); returns the exit code. */
async function pullSync(db: Db, config: Config, connectorId: string, mode: PullMode): Promise<number> {
  const { runner, reconciler } = pullRunner(db, config);
  const view = new ProgressView(process.stderr);
  runner.events.on('progress', (_runId, p) => view.update(p));
  let outcome: RunOutcome;
  try {
    let handle: RunHandle;
    try {
      handle = await runner.start(connectorId, 'manual', mode);
    } catch (e) {
      if (e instanceof BusyError) {
        throw new UserError(e.runId ? `connector ${connectorId} is already running: run ${e.runId} (watch it with GET /api/runs/${e.runId})` : `connector ${connectorId} is already running (its run is starting on another instance)`, 1);
      }
      if (e instanceof NotFoundError || e instanceof ConflictError) throw new UserError(e.message, 1);
      throw e;
    }
    await audit(db.kysely, actor, 'connector.sync', connectorId, { runId: handle.runId, mode });
    process.stderr.write(`run ${handle.runId} started (${mode === 'auto' ? 'what changed, or everything when needed' : mode === 'full' ? 'full read' : 'delta'})\n`);
    // Ctrl-C or a TERM: the run is told to stop and ends as failed; the next run converges.
    const interrupt = (signal: string) => {
      view.stop();
      process.stderr.write(`${signal}: stopping run ${handle.runId}…\n`);
      void runner.stop();
    };
    const onInt = () => interrupt('SIGINT');
    const onTerm = () => interrupt('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    try {
      outcome = await handle.done;
    } finally {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      view.stop();
    }
  } finally {
    await reconciler.stop();
  }
  console.log(`run ${outcome.runId}: ${outcome.status}${outcome.error ? `: ${outcome.error}` : ''}`);
  printCounters(outcome.counters);
  if (outcome.status === 'held') console.log(`  deactivations and deletions over the deletion limit wait: \`usersync approve ${outcome.runId}\` or \`usersync reject ${outcome.runId}\``);
  return exitCodeOf(outcome.status);
}

/** A run's progress on stderr: a bar on a terminal, otherwise a line per phase and at most one a second. */
class ProgressView {
  private bar: cliProgress.SingleBar | undefined;
  private phase = '';
  private lastLine = 0;
  private stopped = false;

  constructor(private readonly out: NodeJS.WriteStream) {}

  update(p: Progress): void {
    if (this.stopped) return;
    if (this.out.isTTY) {
      const payload = { phase: p.phase, known: p.total !== null };
      if (!this.bar) {
        this.bar = new cliProgress.SingleBar({ stream: this.out, format: renderBar, hideCursor: true, barsize: 30, fps: 10 });
        this.bar.start(p.total ?? 0, p.done, payload);
      } else {
        this.bar.setTotal(p.total ?? 0);
        this.bar.update(p.done, payload);
      }
      return;
    }
    const at = Date.now();
    if (p.phase === this.phase && at - this.lastLine < 1000) return;
    this.phase = p.phase;
    this.lastLine = at;
    this.out.write(`${p.phase}: ${p.done}${p.total !== null ? `/${p.total}` : ''}\n`);
  }

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.bar?.stop();
  }
}

function renderBar(_options: cliProgress.Options, params: cliProgress.Params, payload: { phase?: string; known?: boolean }): string {
  const phase = (payload.phase ?? '').padEnd(11);
  if (!payload.known || params.total <= 0) return `${phase} ${params.value}`;
  const share = Math.min(1, Math.max(0, params.value / params.total));
  const width = 30;
  const filled = Math.round(share * width);
  return `${phase} [${'█'.repeat(filled)}${'░'.repeat(width - filled)}] ${params.value}/${params.total} ${Math.floor(share * 100)}%`;
}

function printCounters(counters: Record<string, number | undefined>): void {
  const parts = Object.entries(counters).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`);
  console.log(parts.length ? `  ${parts.join(', ')}` : '  no changes');
}

function describeChange(data: unknown): string {
  const d = data as Record<string, unknown>;
  return String(d.username ?? d.name ?? (d.from !== undefined ? `${String(d.from)} → ${String(d.to)}` : JSON.stringify(d)));
}

/** A mistake of the user's, said plainly, with the exit code to end with (2 unless the command says otherwise). */
class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 2,
  ) {
    super(message);
  }
}

async function main(argv: string[]): Promise<void> {
  let command = '';
  try {
    const cli = buildCli();
    cli.hook('preAction', (_cmd, action) => {
      command = action.name();
    });
    await cli.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    const msg = e instanceof SettingsError ? `invalid settings:\n${issueLines(e)}` : e instanceof Error ? e.message : String(e);
    process.stderr.write(`usersync: ${msg}\n`);
    process.exit(e instanceof UserError ? e.exitCode : e instanceof SettingsError ? 2 : 1);
  }
  // A command is done: end even if a connection pool or a keep-alive socket still holds the event loop.
  if (command !== 'serve') setTimeout(() => process.exit(), 2000).unref();
}

void main(process.argv);

function accountUserError(e: unknown): never {
  if (e instanceof AccountError) throw new UserError(e.message);
  throw e;
}
