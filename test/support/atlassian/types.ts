// The public shape of the Atlassian fakes (see README.md in this folder).

import type { Faults } from './faults.ts';

export type FakeKind = 'jira' | 'confluence' | 'bitbucket' | 'atlassian-cloud';

export const FAKE_KINDS: readonly FakeKind[] = ['jira', 'confluence', 'bitbucket', 'atlassian-cloud'];

export interface FakeOptions {
  /** default: token 'fake-admin-token' accepted as `Authorization: Bearer`; basic admin:admin-password also accepted */
  token?: string;
  basicUser?: string;
  basicPassword?: string;
  /** added before every answer (ms), for benchmarks */
  latencyMs?: number;
  /** licence seats (see README for what counts as licensed per product); default unlimited */
  seats?: number;
  /** Cloud only: e-mail domains the organisation verified (default ['example.com']) */
  verifiedDomains?: string[];
  /** Confluence only: how long an asynchronous user delete takes (default 50 ms) */
  deleteDelayMs?: number;
  /** Cloud only: the SCIM directory id in the URL (default: a random UUID) */
  directoryId?: string;
}

export interface FakeUser {
  name: string;
  email: string | null;
  displayName: string;
  active: boolean;
  /** Jira user key, Confluence userKey, Bitbucket numeric id, Cloud SCIM id */
  id: string;
}

export interface RequestLogEntry {
  method: string;
  /** as sent, without the query (percent-encoding kept) */
  path: string;
  /** decoded query parameters; the last value wins */
  query: Record<string, string>;
  status: number;
  /** Date.now() when the answer was sent */
  at: number;
}

export interface FakeProject {
  key: string;
  name: string;
  /** the lead's username */
  lead: string;
  components: { id: string; name: string; lead?: string }[];
}

export interface AtlassianFake {
  kind: FakeKind;
  /**
   * the base URL a client is configured with: jira, bitbucket `http://127.0.0.1:<port>`;
   * confluence `http://127.0.0.1:<port>/confluence`; atlassian-cloud
   * `http://127.0.0.1:<port>/scim/directory/<directoryId>`
   */
  url: string;
  token: string;
  faults: Faults;
  /** requests and responses that do not fit the (overlaid) OpenAPI document, as sentences */
  violations: string[];
  /** answered requests, in order */
  requests: RequestLogEntry[];
  /** the highest number of requests in flight at once since start or resetStats() */
  readonly maxInFlight: number;
  /** empties `requests` and restarts `maxInFlight` from the requests now in flight */
  resetStats(): void;

  users(): FakeUser[];
  user(name: string): FakeUser | undefined;
  groups(): string[];
  /** usernames, sorted */
  members(group: string): string[];
  groupsOf(user: string): string[];
  addUser(u: { name: string; email?: string | null; displayName?: string; active?: boolean }): FakeUser;
  updateUser(name: string, change: Partial<Omit<FakeUser, 'name' | 'id'>>): void;
  removeUser(name: string): void;
  addGroup(name: string): void;
  removeGroup(name: string): void;
  addMember(group: string, user: string): void;
  removeMember(group: string, user: string): void;

  /** Jira only; throws elsewhere */
  addProject?(p: { key: string; name: string; lead: string; components?: { name: string; lead?: string }[] }): void;
  /** Jira only; undefined elsewhere */
  project?(key: string): FakeProject | undefined;

  close(): Promise<void>;
}
