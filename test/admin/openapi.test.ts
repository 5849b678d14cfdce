// The OpenAPI description of the admin API: served without a token, valid OpenAPI 3.1, and describing
// exactly the routes the running service has under /api.

import { compileErrors, validate } from '@readme/openapi-parser';
import type { FastifyInstance, HTTPMethods } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument } from '../../src/admin/openapi.ts';
import type { TestServer } from '../support/server.ts';
import { startTestServer } from '../support/server.ts';

const METHODS = ['get', 'put', 'post', 'patch', 'delete'] as const;

/**
 * Every (method, path) the app registered, read from Fastify's route tree (`printRoutes`): each line is a
 * node whose path continues its parent's, with the methods it answers in parentheses.
 */
function registeredRoutes(app: FastifyInstance): { method: string; url: string }[] {
  const routes: { method: string; url: string }[] = [];
  const parents: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split('\n')) {
    if (!line.trim()) continue;
    const m = /^((?:│ {3}| {4})*)(?:├── |└── )(\S+)(?: \(([A-Z, ]+)\))?\s*$/.exec(line);
    if (!m) throw new Error(`cannot read this line of the route tree: ${JSON.stringify(line)}`);
    const depth = m[1]!.length / 4;
    parents.length = depth;
    const url = (depth > 0 ? parents[depth - 1]! : '') + m[2]!;
    parents[depth] = url;
    for (const method of m[3]?.split(', ') ?? []) routes.push({ method, url });
  }
  return routes;
}

/** `/api/connectors/:id` → `/api/connectors/{id}` */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, '{$1}');

function operations(doc: typeof openApiDocument) {
  return Object.entries(doc.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((m) => ({ method: m.toUpperCase(), path, op: item[m]! })));
}

describe('the OpenAPI description of the admin API', () => {
  let server: TestServer;
  let admin: string;
  let syncUserOnly: string;

  beforeAll(async () => {
    server = await startTestServer('sqlite');
    admin = (await server.service.adminTokens.create('automation', 'test')).token;
    syncUserOnly = (await server.service.adminTokens.create('portal', 'test', 'sync-user')).token;
  });
  afterAll(async () => server.close());

  const get = (path: string, token?: string) => fetch(`${server.origin}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

  it('is served at /api/openapi.json without a token, and with any token', async () => {
    const res = await get('/api/openapi.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    const doc = (await res.json()) as { openapi: string };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc).toEqual(JSON.parse(JSON.stringify(openApiDocument)));
    expect((await get('/api/openapi.json', syncUserOnly)).status).toBe(200);
    expect((await get('/api/openapi.json', 'usa_wrong')).status).toBe(200);
  });

  it('lets only that route through without a token', async () => {
    for (const path of ['/api/connectors', '/api/openapi', '/api/openapi.json/x', '/api/runs', '/api/audit']) {
      const res = await get(path);
      expect(res.status, path).toBe(401);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('unauthenticated');
    }
    expect((await get('/api/connectors', syncUserOnly)).status).toBe(403);
    expect((await get('/api/connectors', admin)).status).toBe(200);
  });

  it('describes exactly the routes registered under /api', async () => {
    const app = server.service.app;
    const registered = registeredRoutes(app);
    // the reading of the tree is right: every route read is one Fastify has, and the familiar ones are there
    for (const r of registered) expect(app.hasRoute({ method: r.method as HTTPMethods, url: r.url }), `${r.method} ${r.url}`).toBe(true);
    expect(registered).toContainEqual({ method: 'GET', url: '/healthz' });
    expect(registered).toContainEqual({ method: 'POST', url: '/api/connectors/:id/sync-user' });

    // HEAD is Fastify's own for every GET route (exposeHeadRoutes): not described
    const api = registered.filter((r) => r.url.startsWith('/api/') && r.method !== 'HEAD').map((r) => `${r.method} ${openApiPath(r.url)}`);
    const described = operations(openApiDocument).map((o) => `${o.method} ${o.path}`);
    expect(new Set(api).size).toBe(api.length);
    expect(described.sort()).toEqual(api.sort());
    expect(described).toContain('GET /api/openapi.json');
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const doc = (await (await get('/api/openapi.json')).json()) as Parameters<typeof validate>[0];
    const result = await validate(doc);
    expect(result.valid, compileErrors(result)).toBe(true);
    expect(result.warnings).toEqual([]);
  });

  it('names every operation uniquely, answers each, and resolves every reference', () => {
    const ops = operations(openApiDocument);
    const ids = ops.map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === 'string' && id.length > 0)).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { method, path, op } of ops) {
      const name = `${method} ${path}`;
      expect(Object.keys(op.responses).some((s) => /^2\d\d$/.test(s)), name).toBe(true);
      // every operation but the description needs a token, and says so
      if (path === '/api/openapi.json') expect(op.security, name).toEqual([]);
      else expect(op.responses['401'], name).toBeDefined();
    }

    const refs: string[] = [];
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') {
        for (const [k, x] of Object.entries(v)) {
          if (k === '$ref' && typeof x === 'string') refs.push(x);
          else walk(x);
        }
      }
    };
    walk(openApiDocument);
    expect(refs.length).toBeGreaterThan(0);
    for (const ref of new Set(refs)) {
      expect(ref, ref).toMatch(/^#\//);
      const target = ref
        .slice(2)
        .split('/')
        .reduce<unknown>((node, key) => (node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined), openApiDocument);
      expect(target, ref).toBeDefined();
    }
    // and every component is used
    const used = new Set(refs.map((r) => r.split('/').slice(2).join('/')));
    for (const [kind, entries] of Object.entries(openApiDocument.components)) {
      if (kind === 'securitySchemes') continue;
      for (const name of Object.keys(entries)) expect(used.has(`${kind}/${name}`), `${kind}/${name} is never referred to`).toBe(true);
    }
  });
});
