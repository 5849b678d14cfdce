// Leases: a named lock with an expiry, held by one instance at a time (several instances may share one
// PostgreSQL). Taking an expired lease is allowed, so a killed holder never blocks the others for long.

import { sql } from 'kysely';
import type { Db } from '../store/db.ts';

/** Take or renew `name` for `holder` for `ttlMs`; true when this holder has it now. */
export async function acquireLease(db: Db, name: string, holder: string, ttlMs: number): Promise<boolean> {
  const nowMs = Date.now();
  await sql`INSERT INTO leases (name, holder, expires_at) VALUES (${name}, ${holder}, ${nowMs + ttlMs})
    ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
    WHERE leases.holder = excluded.holder OR leases.expires_at < ${nowMs}`.execute(db.kysely);
  const row = await db.kysely.selectFrom('leases').select('holder').where('name', '=', name).executeTakeFirst();
  return row?.holder === holder;
}

export async function releaseLease(db: Db, name: string, holder: string): Promise<void> {
  await db.kysely.deleteFrom('leases').where('name', '=', name).where('holder', '=', holder).execute();
}
