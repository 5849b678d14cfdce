// Local, stateful fakes of the Atlassian user-management APIs (Jira, Confluence, Bitbucket Data
// Center, Atlassian Cloud SCIM), served over HTTP on 127.0.0.1. See README.md in this folder.

import { randomUUID } from 'node:crypto';
import { createBitbucket, seedBitbucket } from './bitbucket.ts';
import { createCloud } from './cloud.ts';
import { createConfluence } from './confluence.ts';
import { createJira } from './jira.ts';
import { makeEnv, serve } from './server.ts';
import type { Product, ProductEnv } from './server.ts';
import type { AtlassianFake, FakeKind, FakeOptions } from './types.ts';

export { Faults } from './faults.ts';
export type { ActiveFault, FaultSpec, FaultStatus } from './faults.ts';
export { Contract, SPECS_DIR, SPEC_FILES } from './contract.ts';
export { BITBUCKET_DEFAULT_GROUP } from './bitbucket.ts';
export { DEFAULT_BASIC_PASSWORD, DEFAULT_BASIC_USER, DEFAULT_TOKEN } from './server.ts';
export { FAKE_KINDS } from './types.ts';
export type { AtlassianFake, FakeKind, FakeOptions, FakeProject, FakeUser, RequestLogEntry } from './types.ts';

function createProduct(kind: FakeKind, env: ProductEnv): Product {
  switch (kind) {
    case 'jira':
      return createJira(env);
    case 'confluence':
      return createConfluence(env);
    case 'bitbucket': {
      const product = createBitbucket(env);
      seedBitbucket(product);
      return product;
    }
    case 'atlassian-cloud':
      return createCloud(env);
    default:
      throw new Error(`unknown fake kind ${String(kind)}`);
  }
}

export async function startAtlassianFake(kind: FakeKind, options: FakeOptions = {}): Promise<AtlassianFake> {
  const env = makeEnv(kind, options, options.directoryId ?? randomUUID());
  return serve(createProduct(kind, env), env);
}

/** the operations a fake serves, as "METHOD /path" in its document's terms */
export function fakeOperations(kind: FakeKind): string[] {
  return Object.keys(createProduct(kind, makeEnv(kind, {}, 'directory')).routes);
}
