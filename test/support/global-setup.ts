// Before the suite: make sure the local PostgreSQL the store conformance suite needs is up.
// It is started from Debian's packages when it is installed but stopped (as root, like CI).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import pg from 'pg';
import { PG_URL } from './store.ts';

async function reachable(): Promise<boolean> {
  const client = new pg.Client({ connectionString: PG_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

export default async function setup(): Promise<void> {
  if (await reachable()) return;
  const versions = fs.existsSync('/etc/postgresql') ? fs.readdirSync('/etc/postgresql') : [];
  if (versions.length === 0 || process.getuid?.() !== 0) {
    throw new Error(`PostgreSQL is not reachable at ${PG_URL}; start it or set TEST_DATABASE_URL`);
  }
  execFileSync('pg_ctlcluster', ['--skip-systemctl-redirect', versions[0]!, 'main', 'start'], { stdio: 'inherit' });
  for (let i = 0; i < 50 && !(await reachable()); i++) await new Promise((r) => setTimeout(r, 200));
  if (!(await reachable())) throw new Error(`PostgreSQL did not come up at ${PG_URL}`);
}
