// The usersync command: `serve` runs the service; the other commands manage connectors and tokens
// directly in the store (the same DATABASE_URL as the service).

import fs from 'node:fs';
import os from 'node:os';
import { Command, CommanderError } from 'commander';
import { loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { buildService } from './server/app.ts';
import type { Db } from './store/db.ts';
import { openStore } from './store/db.ts';
import type { ConnectorKind } from './store/connectors.ts';
import { AdminTokenStore } from './admin/tokens.ts';
import { SettingsError, settingsPatch } from './domain/settings-validate.ts';
import { audit, ConnectorStore } from './store/connectors.ts';
import { ConflictError, loadSettings, NotFoundError, Reconciler } from './sync/reconciler.ts';

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
  if ((await connectors.list()).length === 0) {
    // First start: a ready SCIM connector, its token shown this once.
    const connector = await connectors.create({ id: 'default', name: 'Default SCIM connector', kind: 'scim' }, 'system:first-start');
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
  const shutdown = async (signal: string) => {
    service.app.log.info(`${signal}: shutting down`);
    await service.app.close();
    await db.close();
    process.exit(0);
  };
  process.once('SIGTERM', () => void shutdown('SIGTERM'));
  process.once('SIGINT', () => void shutdown('SIGINT'));
  await service.app.listen({ host: config.host, port: config.port });
  service.app.log.info({ database: db.dialect }, 'usersync is ready');
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
    .description('create a connector (a SCIM connector also gets a token, shown once)')
    .option('--id <id>', 'connector id (lower-case letters, digits, dashes); random when omitted')
    .option('--kind <kind>', 'scim, graph or ldap', 'scim')
    .action((name: string, o: { id?: string; kind: string }) =>
      withStore(async (db, config) => {
        const store = new ConnectorStore(db);
        const c = await store.create({ ...(o.id ? { id: o.id } : {}), name, kind: o.kind as ConnectorKind }, actor);
        console.log(`created connector ${c.id} (${c.kind})`);
        if (c.kind === 'scim') {
          const { token } = await store.createToken(c.id, 'created with the connector', actor);
          console.log(`SCIM Base URL: ${scimBaseUrl(config, c.id)}`);
          console.log(`Bearer token:  ${token}`);
          console.log('The token is shown only now.');
        }
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
  const adminToken = program.command('admin-token').description('manage admin API tokens (for /api)');
  adminToken
    .command('create')
    .description('create an admin API token (shown once)')
    .option('--label <label>', 'a note to recognise the token by', '')
    .action((o: { label: string }) =>
      withStore(async (db) => {
        const { token: value, info } = await new AdminTokenStore(db).create(o.label, actor);
        console.log(`admin token ${info.id} created:`);
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
        console.log(table(list.map((t) => ({ id: t.id, label: t.label, created: t.createdAt, revoked: t.revokedAt ?? '' }))));
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
    .command('sync <connector>')
    .description('re-evaluate every user, group and membership of a connector from its mirror now')
    .action((connectorId: string) =>
      withStore(async (db) => {
        if (!(await new ConnectorStore(db).get(connectorId))) throw new UserError(`no connector '${connectorId}'`);
        await audit(db.kysely, actor, 'connector.sync', connectorId, {});
        const report = await new Reconciler(db).fullPass(connectorId, 'manual');
        console.log(`run ${report.runId}: ${report.status}`);
        printCounters(report.counters);
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

function readJson(file: string): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`cannot read ${file}: ${(e as Error).message}`);
  }
}

function printCounters(counters: Record<string, number | undefined>): void {
  const parts = Object.entries(counters).filter(([, v]) => v).map(([k, v]) => `${k} ${v}`);
  console.log(parts.length ? `  ${parts.join(', ')}` : '  no changes');
}

function describeChange(data: unknown): string {
  const d = data as Record<string, unknown>;
  return String(d.username ?? d.name ?? (d.from !== undefined ? `${String(d.from)} → ${String(d.to)}` : JSON.stringify(d)));
}

class UserError extends Error {}

async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`usersync: ${msg}\n`);
    process.exit(e instanceof UserError || e instanceof SettingsError ? 2 : 1);
  }
}

void main(process.argv);
