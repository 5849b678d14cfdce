// The retry policy as each client meets it over real HTTP: 429 with Retry-After (held for every
// request of the client), 5xx retried, timeouts retried, retries used up, refused credentials.

import { afterEach, describe, expect, it } from 'vitest';
import type { CountingTargetApp } from '../../../src/targets/apps.ts';
import { TARGET_KINDS } from '../../../src/targets/types.ts';
import { startAtlassianFake } from '../../support/atlassian/index.ts';
import type { AtlassianFake } from '../../support/atlassian/types.ts';
import { expectNoViolations, open, targetError } from './support.ts';

describe.each(TARGET_KINDS)('%s client under faults', (kind) => {
  let fake: AtlassianFake | undefined;
  let app: CountingTargetApp | undefined;

  afterEach(async () => {
    await app?.close?.();
    await fake?.close();
    app = undefined;
    fake = undefined;
  });

  async function start(extra: Parameters<typeof open>[2] = {}): Promise<{ fake: AtlassianFake; app: CountingTargetApp }> {
    fake = await startAtlassianFake(kind);
    fake.addUser({ name: 'alice', displayName: 'Alice' });
    app = open(kind, fake, extra);
    return { fake, app };
  }

  it('waits as Retry-After says on 429, and holds back the requests sent meanwhile', async () => {
    const { fake, app } = await start();
    fake.faults.add({ status: 429, retryAfter: 1, count: 1 });
    const t0 = Date.now();
    const first = app.getUser('alice');
    // the others start once the application has throttled the first
    while (!fake.requests.some((r) => r.status === 429)) await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 20));
    const others = [app.getUser('alice'), app.getUser('nobody'), app.getUser('alice')];
    const [a, b, c, d] = await Promise.all([first, ...others]);
    expect(a?.name).toBe('alice');
    expect(b?.name).toBe('alice');
    expect(c).toBeUndefined();
    expect(d?.name).toBe('alice');
    const throttledAt = fake.requests.find((r) => r.status === 429)!.at;
    const after = fake.requests.filter((r) => r.status !== 429);
    expect(after.length).toBeGreaterThanOrEqual(4);
    // nothing went out while the application asked for quiet (timer slack allowed)
    for (const r of after) expect(r.at - throttledAt).toBeGreaterThanOrEqual(950);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(app.counters.throttled).toBe(1);
    expect(app.counters.retries).toBe(1);
    expectNoViolations(fake);
  });

  it('retries 500 and 502 and then succeeds', async () => {
    const { fake, app } = await start();
    fake.faults.add({ status: 500, count: 1 });
    fake.faults.add({ status: 502, count: 1 });
    expect((await app.getUser('alice'))?.name).toBe('alice');
    expect(fake.requests.map((r) => r.status).slice(0, 2)).toEqual([500, 502]);
    expect(app.counters.retries).toBe(2);
    expectNoViolations(fake);
  });

  it('retries a request that timed out', async () => {
    const { fake, app } = await start({ timeoutMs: 300 });
    fake.faults.add({ timeout: true, count: 1 });
    const t0 = Date.now();
    expect((await app.getUser('alice'))?.name).toBe('alice');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(app.counters.retries).toBe(1);
    expectNoViolations(fake);
  });

  it("reports the application unavailable once the retries are used up, in the product's words", async () => {
    const { fake, app } = await start({ retries: 2, maxRetryWaitMs: 50 });
    fake.faults.add({ status: 503, count: Infinity });
    const err = await targetError(app.getUser('alice'));
    expect(err.code).toBe('unavailable');
    expect(err.status).toBe(503);
    expect(err.appWide).toBe(true);
    expect(err.message).toMatch(/after 3 tries/);
    expect(err.message).toMatch(/Service temporarily unavailable/);
    expect(fake.requests.length).toBe(3);
    expectNoViolations(fake);
  });

  it('reports timeouts as unavailable once the retries are used up', async () => {
    const { fake, app } = await start({ retries: 1, timeoutMs: 200, maxRetryWaitMs: 50 });
    fake.faults.add({ timeout: true, count: Infinity });
    const err = await targetError(app.getUser('alice'));
    expect(err.code).toBe('unavailable');
    expect(err.message).toMatch(/did not answer within 200 ms/);
    expectNoViolations(fake);
  });

  it('reports throttling that does not let up as throttled, with the wait asked for', async () => {
    const { fake, app } = await start({ retries: 2 });
    fake.faults.add({ status: 429, retryAfter: 0, count: Infinity });
    const err = await targetError(app.getUser('alice'));
    expect(err.code).toBe('throttled');
    expect(err.retryAfterMs).toBe(0);
    expect(app.counters.throttled).toBe(3);
    expectNoViolations(fake);
  });

  it('maps refused credentials to auth at once, without retrying', async () => {
    const { fake } = await start();
    app = open(kind, fake, { auth: { type: 'token', token: 'wrong-token' } });
    const err = await targetError(app.getUser('alice'));
    expect(err.code).toBe('auth');
    expect(err.status).toBe(401);
    expect(err.message).not.toContain('wrong-token');
    expect(fake.requests.length).toBe(1);
    const checks = await app.test();
    expect(checks.some((c) => !c.ok)).toBe(true);
    expectNoViolations(fake);
  });

  it('passes its self-test with admin credentials', async () => {
    const { fake, app } = await start();
    fake.addGroup('staff');
    const checks = await app.test();
    expect(checks.length).toBeGreaterThan(0);
    for (const c of checks) {
      expect(c.ok, c.message).toBe(true);
      expect(c.message).toMatch(/\.$/);
    }
    expectNoViolations(fake);
  });
});
