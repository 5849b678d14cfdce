// A running service with an admin token, and the checks an administrator makes: the admin API, who is in
// the directory, and in which groups. Source-specific rigs (Graph, LDAP) build on it.

import type { TestServer } from './server.ts';
import { startTestServer } from './server.ts';
import type { Dialect } from '../../src/store/db.ts';
import { directoryKey } from '../../src/domain/rules.ts';

export interface DirectoryUserView {
  username: string;
  email: string | null;
  active: boolean;
  displayName: string;
  attributes: Record<string, string>;
}

export interface ServiceRig {
  server: TestServer;
  adminToken: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  api(path: string, init?: { method?: string; body?: unknown; token?: string }): Promise<{ status: number; body: any }>;
  /** run a sync and wait for it; returns the run outcome */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  sync(id: string, mode?: 'auto' | 'full' | 'delta'): Promise<any>;
  /** a connector's directory users by source id */
  directoryUsers(connectorId: string): Promise<Map<string, DirectoryUserView>>;
  /** directory group names of a user, by username */
  groupsOf(username: string): Promise<string[]>;
  close(): Promise<void>;
}

export async function startServiceRig(dialect: Dialect, opts: { schedulerTickMs?: number; bulkMarkThreshold?: number } = {}): Promise<ServiceRig> {
  const server = await startTestServer(dialect, {
    ...(opts.schedulerTickMs ? { schedulerTickMs: opts.schedulerTickMs } : {}),
    ...(opts.bulkMarkThreshold ? { bulkMarkThreshold: opts.bulkMarkThreshold } : {}),
  });
  const adminToken = (await server.service.adminTokens.create('tests', 'test')).token;
  const api: ServiceRig['api'] = async (path, init = {}) => {
    const res = await fetch(`${server.origin}/api${path}`, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${init.token ?? adminToken}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  return {
    server,
    adminToken,
    api,
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
    close: () => server.close(),
  };
}
