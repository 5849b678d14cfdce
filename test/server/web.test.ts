// The admin UI's files as the service serves them: pages fall back to index.html, files are cached by
// their hashed names, every answer carries a strict content security policy, and the service's own
// paths keep their own answers.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerWebUi } from '../../src/server/web.ts';

describe('the web UI files', () => {
  let app: FastifyInstance;
  let dir: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-web-'));
    fs.mkdirSync(path.join(dir, 'assets'));
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>usersync</title><div id="root"></div>');
    fs.writeFileSync(path.join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
    app = Fastify();
    app.get('/api/connectors', async () => ({ connectors: [] }));
    await registerWebUi(app, dir);
    await app.ready();
  });
  afterAll(async () => {
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('answers a page path with index.html, not cached, under a strict content security policy', async () => {
    for (const url of ['/', '/connectors', '/connectors/entra/group-sync', '/runs/abc?x=1']) {
      const res = await app.inject({ url });
      expect([url, res.statusCode]).toEqual([url, 200]);
      expect(res.headers['content-type']).toMatch(/^text\/html/);
      expect(res.body).toContain('<div id="root">');
      expect(res.headers['cache-control']).toBe('no-cache');
      expect(String(res.headers['content-security-policy'])).toMatch(/default-src 'self'; script-src 'self';.*frame-ancestors 'none'/);
      expect(res.headers['x-frame-options']).toBe('DENY');
    }
  });

  it('serves hashed assets for a year, and keeps service paths and missing files out of the fallback', async () => {
    const asset = await app.inject({ url: '/assets/index-abc123.js' });
    expect(asset.statusCode).toBe(200);
    expect(asset.headers['cache-control']).toMatch(/max-age=31536000, immutable/);
    expect(asset.headers['content-security-policy']).toBeDefined();
    for (const url of ['/assets/missing.js', '/api/nothing', '/scim/v2/x/Nothing', '/metricsx/y.txt']) {
      const res = await app.inject({ url });
      expect([url, res.statusCode]).toEqual([url, 404]);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
    }
    expect((await app.inject({ url: '/api/connectors' })).json()).toEqual({ connectors: [] });
    expect((await app.inject({ method: 'POST', url: '/connectors' })).statusCode).toBe(404);
  });

  it('says how to build the UI when it is not built', async () => {
    const bare = Fastify();
    await registerWebUi(bare, path.join(dir, 'not-there'));
    const res = await bare.inject({ url: '/connectors' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toMatch(/npm run build:web/);
    await bare.close();
  });
});
