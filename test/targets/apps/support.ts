// Helpers for driving the application clients against the Atlassian fakes.

import { expect } from 'vitest';
import type { CountingTargetApp } from '../../../src/targets/apps.ts';
import { openApp } from '../../../src/targets/apps.ts';
import type { AppConnection, TargetKind, WantedUser } from '../../../src/targets/types.ts';
import { TargetError } from '../../../src/targets/types.ts';
import type { AtlassianFake } from '../../support/atlassian/types.ts';

export function connection(fake: AtlassianFake, extra: Partial<AppConnection> = {}): AppConnection {
  return { baseUrl: fake.url, auth: { type: 'token', token: fake.token }, timeoutMs: 2000, retries: 3, maxRetryWaitMs: 2000, ...extra };
}

export function open(kind: TargetKind, fake: AtlassianFake, extra: Partial<AppConnection> = {}): CountingTargetApp {
  return openApp(kind, connection(fake, extra));
}

/** every page of a listing, and how many pages there were */
export async function collect<T>(pages: AsyncIterable<T[]>): Promise<{ items: T[]; pages: number }> {
  const items: T[] = [];
  let n = 0;
  for await (const page of pages) {
    n++;
    items.push(...page);
  }
  return { items, pages: n };
}

export function wanted(name: string, extra: Partial<WantedUser> = {}): WantedUser {
  return { name, email: `${name}@example.com`, displayName: `User ${name}`, active: true, directoryId: `dir-${name}`, ...extra };
}

/** the TargetError a promise rejects with (fails the test when it resolves or throws something else) */
export async function targetError(p: Promise<unknown>): Promise<TargetError> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e, 'expected a TargetError').toBeInstanceOf(TargetError);
  return e as TargetError;
}

/**
 * The contract check: every request the client sent fits the product's OpenAPI document (and the
 * fake's answers fit it too).
 */
export function expectNoViolations(fake: AtlassianFake): void {
  expect(fake.violations).toEqual([]);
}
