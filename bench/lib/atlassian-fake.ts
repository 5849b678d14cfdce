// An Atlassian fake (test/support/atlassian) in a process of its own, for `npm run bench -- targets`: its
// CPU (validating every request against the OpenAPI document) must not count as the delivery's. Prints
// `READY {url, token}` once listening; the driver asks for its state over the IPC channel.
//
//   BENCH_FAKE_KIND=jira BENCH_FAKE_LATENCY_MS=10 node --import tsx bench/lib/atlassian-fake.ts

import type { FakeKind } from '../../test/support/atlassian/index.ts';
import { startAtlassianFake } from '../../test/support/atlassian/index.ts';
import { serveIpc, shutdownAfter } from './ipc.ts';

const kind = (process.env.BENCH_FAKE_KIND ?? 'jira') as FakeKind;
const fake = await startAtlassianFake(kind, { latencyMs: Number(process.env.BENCH_FAKE_LATENCY_MS ?? 0) });

serveIpc({
  stats: () => {
    const users = fake.users();
    const groups = fake.groups();
    let memberships = 0;
    for (const g of groups) memberships += fake.members(g).length;
    const writes = fake.requests.filter((r) => r.method !== 'GET').length;
    return { users: users.length, groups: groups.length, memberships, requests: fake.requests.length, writes, maxInFlight: fake.maxInFlight, violations: fake.violations.slice(0, 5), violationCount: fake.violations.length };
  },
  shutdown: shutdownAfter(() => fake.close()),
});

process.stdout.write(`READY ${JSON.stringify({ url: fake.url, token: fake.token, pid: process.pid })}\n`);
