// The admin web UI: the static files Vite builds into web/dist, served at '/', with index.html for any
// other page path (the UI routes in the browser). Nothing is fetched from elsewhere; a strict content
// security policy says so to the browser too.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';

export const WEB_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'web', 'dist');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
};

/** Paths that belong to the service itself: never answered with the UI's page. */
const SERVICE_PREFIXES = ['/api/', '/scim/', '/metrics', '/healthz', '/readyz'];

export async function registerWebUi(app: FastifyInstance, root = WEB_ROOT): Promise<void> {
  const built = fs.existsSync(path.join(root, 'index.html'));
  if (built) {
    await app.register(fastifyStatic, {
      root,
      prefix: '/',
      index: false,
      cacheControl: false,
      // a route per built file, so unknown /api and /scim paths keep their own not-found answers
      wildcard: false,
      setHeaders: (res, file) => {
        for (const [k, v] of Object.entries(SECURITY_HEADERS)) res.setHeader(k, v);
        // file names under assets/ carry their content hash, so they never change
        res.setHeader('cache-control', file.includes(`${path.sep}assets${path.sep}`) ? 'public, max-age=31536000, immutable' : 'no-cache');
      },
    });
  }
  const page = async (reply: FastifyReply) => {
    reply.headers({ ...SECURITY_HEADERS, 'cache-control': 'no-cache' });
    if (!built) return reply.code(503).type('text/plain; charset=utf-8').send('The admin web UI is not built. Run `npm run build:web` (npm start does it), then reload.\n');
    return reply.type('text/html; charset=utf-8').sendFile('index.html');
  };
  app.get('/', (_req, reply) => page(reply));
  app.setNotFoundHandler(async (req, reply) => {
    const p = req.url.split('?')[0]!;
    const isPage = (req.method === 'GET' || req.method === 'HEAD') && !SERVICE_PREFIXES.some((s) => p === s.replace(/\/$/, '') || p.startsWith(s)) && !path.extname(p);
    if (isPage) return page(reply);
    return reply.code(404).type('application/json').send({ error: { code: 'not_found', message: `no such path: ${p}` } });
  });
}
