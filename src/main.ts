// The usersync command: `serve` runs the service; the other commands manage connectors and tokens
// directly in the store (the same DATABASE_URL as the service).

import os from 'node:os';
import { Command, CommanderError } from 'commander';
import { loadConfig } from './config.ts';
import type { Config } from './config.ts';
import { buildService } from './server/app.ts';
import type { Db } from './store/db.ts';
import { openStore } from './store/db.ts';
import type { ConnectorKind } from './store/connectors.ts';
import { ConnectorStore } from './store/connectors.ts';

const actor = `cli:${os.userInfo().username}`;

async function withStore<T>(fn: (db: Db, config: Config) => Promise<T>): Promise<T> {
  const config = loadConfig();
  const db = await openStore({ url: config.databaseUrl, sqliteSynchronous: config.sqliteSynchronous });
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
  const db = await openStore({ url: config.databaseUrl, sqliteSynchronous: config.sqliteSynchronous });
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
  return program;
}

class UserError extends Error {}

async function main(argv: string[]): Promise<void> {
  try {
    await buildCli().parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    const msg = e instanceof Error ? e.message : String(e);
    process.stderr.write(`usersync: ${msg}\n`);
    process.exit(e instanceof UserError ? 2 : 1);
  }
}

void main(process.argv);
