// A running service plus a Graph emulator, with helpers to create Graph connectors and call the admin API.

import type { GraphEmulator } from '../../support/graph-emulator/index.ts';
import { startGraphEmulator } from '../../support/graph-emulator/index.ts';
import type { TestServer } from '../../support/server.ts';
import { startTestServer } from '../../support/server.ts';
import type { Dialect } from '../../../src/store/db.ts';
import { directoryKey } from '../../../src/domain/rules.ts';

export interface GraphRig {
  emu: GraphEmulator;
  server: TestServer;
  adminToken: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  api(path: string, init?: { method?: string; body?: unknown; token?: string }): Promise<{ status: number; body: any }>;
  /** the source settings that point a connector at the emulator */
  source(extra?: Record<string, unknown>): Record<string, unknown>;
  createConnector(id: string, extra?: Record<string, unknown>, settings?: unknown): Promise<void>;
  /** run a sync and wait for it; returns the run outcome */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  sync(id: string, mode?: 'auto' | 'full' | 'delta'): Promise<any>;
  directoryUsers(connectorId: string): Promise<Map<string, { username: string; email: string | null; active: boolean; displayName: string; attributes: Record<string, string> }>>;
  /** directory group names of a user, by username */
  groupsOf(username: string): Promise<string[]>;
  close(): Promise<void>;
}

/** Source settings that point a Graph connector at the emulator (trusting its certificate through the settings). */
export function emulatorSource(emu: GraphEmulator, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    tenantId: emu.tenantId,
    clientId: emu.clientId,
    clientSecret: emu.clientSecret,
    cloud: 'custom',
    authorityHost: emu.authorityHost,
    graphUrl: emu.url,
    caCertificate: emu.caCert,
    schedule: { kind: 'off' },
    ...extra,
  };
}

export async function startGraphRig(dialect: Dialect, opts: { emulator?: Parameters<typeof startGraphEmulator>[0]; schedulerTickMs?: number; bulkMarkThreshold?: number } = {}): Promise<GraphRig> {
  const emu = await startGraphEmulator(opts.emulator);
  const server = await startTestServer(dialect, {
    ...(opts.schedulerTickMs ? { schedulerTickMs: opts.schedulerTickMs } : {}),
    ...(opts.bulkMarkThreshold ? { bulkMarkThreshold: opts.bulkMarkThreshold } : {}),
  });
  const adminToken = (await server.service.adminTokens.create('tests', 'test')).token;
  const api: GraphRig['api'] = async (path, init = {}) => {
    const res = await fetch(`${server.origin}/api${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? adminToken}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  const source = (extra: Record<string, unknown> = {}) => emulatorSource(emu, extra);
  const rig: GraphRig = {
    emu,
    server,
    adminToken,
    api,
    source,
    async createConnector(id, extra = {}, settings) {
      const res = await api('/connectors', { method: 'POST', body: { id, name: `Graph ${id}`, kind: 'graph', source: source(extra), ...(settings ? { settings } : {}) } });
      if (res.status !== 201) throw new Error(`creating connector ${id}: ${res.status} ${JSON.stringify(res.body)}`);
    },
    async sync(id, mode = 'auto') {
      const res = await api(`/connectors/${id}/sync`, { method: 'POST', body: { mode } });
      if (res.status !== 200) throw new Error(`sync ${id}: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body;
    },
    async directoryUsers(connectorId) {
      const rows = await server.store.db.kysely.selectFrom('directory_users').selectAll().where('owner_connector_id', '=', connectorId).execute();
      return new Map(
        rows.map((r) => [
          r.source_id!,
          { username: r.username, email: r.email, active: Number(r.active) === 1, displayName: r.display_name, attributes: JSON.parse(r.attributes) as Record<string, string> },
        ]),
      );
    },
    async groupsOf(username) {
      const rows = await server.store.db.kysely
        .selectFrom('directory_memberships as m')
        .innerJoin('directory_groups as g', 'g.id', 'm.group_id')
        .innerJoin('directory_users as u', 'u.id', 'm.user_id')
        .select('g.name')
        .distinct()
        .where('u.username_key', '=', directoryKey(username))
        .execute();
      return rows.map((r) => r.name).sort();
    },
    async close() {
      await server.close();
      await emu.close();
    },
  };
  return rig;
}
