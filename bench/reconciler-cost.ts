// Diagnostic: how much of a write's cost is the reconciler's. The service under test (bench/scim-server.ts)
// takes POST /Users and PATCH add-member load in alternating slices with its reconciler paused and
// running; after each paused slice the reconciler is resumed and the time it needs for the backlog (in
// batches of up to 500 marks) is recorded. Run: `npx tsx bench/reconciler-cost.ts` (about 1½ minutes;
// not part of `npm run bench`, which always measures with the reconciler running).

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { IpcClient } from './lib/ipc.ts';
import type { RequestShape, Slice } from './lib/load.ts';
import { combine, runLoad } from './lib/load.ts';
import { userBody } from './lib/seed.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const ROUNDS = 4;
const SLICE_S = 2.5;
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'usersync-reconciler-cost-'));
const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'bench', 'scim-server.ts')], {
  cwd: ROOT,
  env: { ...process.env, BENCH_DB: path.join(dir, 'usersync.db'), NODE_ENV: 'production' },
  stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
});
const ipc = new IpcClient(child);
try {
  const lines = readline.createInterface({ input: child.stdout! });
  const ready = await new Promise<{ port: number; token: string }>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`the server exited (code ${code})`)));
    lines.on('line', (l) => {
      if (l.startsWith('READY ')) resolve(JSON.parse(l.slice(6)) as { port: number; token: string });
    });
  });
  const url = `http://127.0.0.1:${ready.port}`;
  const headers = { authorization: `Bearer ${ready.token}`, 'content-type': 'application/scim+json' };
  const pool = (await ipc.call<{ ids: string[] }>('seedUsers', { prefix: 'pool.', count: 40_000, marks: true })).ids;
  const res = await fetch(`${url}/scim/v2/bench/Groups`, { method: 'POST', headers, body: JSON.stringify({ displayName: 'reconciler cost' }) });
  const groupId = ((await res.json()) as { id: string }).id;
  await ipc.call('idle');

  let n = 0;
  let k = 0;
  const post = (): RequestShape => ({ method: 'POST', path: '/scim/v2/bench/Users', body: JSON.stringify(userBody(`rc.${n}@example.com`, n++)) });
  const patch = (): RequestShape => ({
    method: 'PATCH',
    path: `/scim/v2/bench/Groups/${groupId}`,
    body: JSON.stringify({ schemas: ['urn:ietf:params:scim:api:messages:2.0:PatchOp'], Operations: [{ op: 'Add', path: 'members', value: [{ value: pool[k++ % pool.length] }] }] }),
  });

  for (const [name, next] of [
    ['POST /Users', post],
    ['PATCH add-member', patch],
  ] as const) {
    await runLoad({ url, headers, next }, { durationS: 2, connections: 10 }); // warm-up
    await ipc.call('idle');
    const paused: Slice[] = [];
    const running: Slice[] = [];
    let drainMs = 0;
    let drained = 0;
    for (let r = 0; r < ROUNDS; r++) {
      for (const mode of r % 2 === 0 ? (['paused', 'running'] as const) : (['running', 'paused'] as const)) {
        if (mode === 'paused') {
          await ipc.call('reconcilerStop');
          const slice = await runLoad({ url, headers, next }, { durationS: SLICE_S, connections: 10 });
          paused.push(slice);
          await ipc.call('reconcilerStart');
          drainMs += (await ipc.call<{ ms: number }>('idle')).ms;
          drained += slice.latencies.length;
        } else {
          running.push(await runLoad({ url, headers, next }, { durationS: SLICE_S, connections: 10 }));
          await ipc.call('idle');
        }
      }
    }
    const p = combine(paused);
    const q = combine(running);
    process.stdout.write(
      `${name}: reconciler paused ${p.rps.toFixed(0)} req/s (p50 ${p.p50.toFixed(2)} ms, p99 ${p.p99.toFixed(2)} ms); ` +
        `running ${q.rps.toFixed(0)} req/s (p50 ${q.p50.toFixed(2)} ms, p99 ${q.p99.toFixed(2)} ms); running/paused ${(q.rps / p.rps).toFixed(2)}\n` +
        `  per request: ${(1e6 / p.rps).toFixed(0)} µs paused, ${(1e6 / q.rps).toFixed(0)} µs running; the paused backlog (${drained} marks) took ` +
        `${drainMs.toFixed(0)} ms in batches of up to 500 = ${((drainMs * 1000) / Math.max(1, drained)).toFixed(0)} µs per mark\n`,
    );
  }
} finally {
  await ipc.call('shutdown').catch(() => {});
  await new Promise((r) => setTimeout(r, 500));
  fs.rmSync(dir, { recursive: true, force: true });
}
