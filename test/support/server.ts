// A running service on a random loopback port, with one SCIM connector and its token.

import type { Dialect } from '../../src/store/db.ts';
import { loadConfig } from '../../src/config.ts';
import type { Service } from '../../src/server/app.ts';
import { buildService } from '../../src/server/app.ts';
import { SecretBox } from '../../src/store/secrets.ts';
import type { TestStore } from './store.ts';
import { openTestStore } from './store.ts';

export interface TestServer {
  service: Service;
  store: TestStore;
  origin: string;
  connectorId: string;
  token: string;
  /** `${origin}/scim/v2/${connectorId}` */
  base: string;
  /** fetch relative to base with the bearer token and SCIM content type */
  scim(path: string, init?: { method?: string; body?: unknown; token?: string | null; headers?: Record<string, string> }): Promise<ScimResponse>;
  close(): Promise<void>;
}

export interface ScimResponse {
  status: number;
  headers: Headers;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

export async function scimFetch(
  url: string,
  token: string | null,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<ScimResponse> {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (token !== null) headers.authorization = `Bearer ${token}`;
  let body: string | undefined;
  if (init.body !== undefined) {
    body = typeof init.body === 'string' ? init.body : JSON.stringify(init.body);
    headers['content-type'] ??= 'application/scim+json; charset=utf-8';
  }
  const res = await fetch(url, { method: init.method ?? 'GET', headers, ...(body !== undefined ? { body } : {}) });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

export async function startTestServer(
  dialect: Dialect = 'sqlite',
  opts: { env?: Record<string, string>; reconcile?: boolean; schedulerTickMs?: number; bulkMarkThreshold?: number; targetTickMs?: number } = {},
): Promise<TestServer> {
  const store = await openTestStore(dialect);
  const config = loadConfig({ PUSH_QUIET_PERIOD_SECONDS: '1', ...opts.env });
  const service = await buildService(store.db, config, {
    logger: false,
    reconcile: opts.reconcile ?? true,
    secrets: SecretBox.forTests(),
    ...(opts.schedulerTickMs ? { schedulerTickMs: opts.schedulerTickMs } : {}),
    ...(opts.bulkMarkThreshold ? { bulkMarkThreshold: opts.bulkMarkThreshold } : {}),
    ...(opts.targetTickMs ? { targetTickMs: opts.targetTickMs } : {}),
  });
  const connector = await service.connectors.create({ id: 'entra', name: 'Entra ID', kind: 'scim' }, 'test');
  const { token } = await service.connectors.createToken(connector.id, 'test', 'test');
  await service.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = service.app.server.address();
  const port = typeof addr === 'object' && addr ? addr.port : 0;
  const origin = `http://127.0.0.1:${port}`;
  const base = `${origin}/scim/v2/${connector.id}`;
  return {
    service,
    store,
    origin,
    connectorId: connector.id,
    token,
    base,
    scim: (path, init = {}) => scimFetch(`${base}${path}`, init.token === undefined ? token : init.token, init),
    async close() {
      await service.app.close();
      await store.cleanup();
    },
  };
}
