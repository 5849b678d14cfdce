// Opens the client for one application kind.

import { BitbucketClient } from './bitbucket/client.ts';
import { CloudClient } from './cloud/client.ts';
import { ConfluenceClient } from './confluence/client.ts';
import type { TargetCounters } from './http.ts';
import { JiraClient } from './jira/client.ts';
import type { AppConnection, TargetApp, TargetKind } from './types.ts';

export type { TargetCounters } from './http.ts';

export interface OpenAppOptions {
  /** requests the caller runs at once against this application (sizes the connection pool) */
  concurrency?: number;
  /** stops waits and requests in flight when the service stops */
  signal?: AbortSignal;
}

/** Every client counts its requests, retries and 429s. */
export type CountingTargetApp = TargetApp & { readonly counters: TargetCounters };

export function openApp(kind: TargetKind, conn: AppConnection, options: OpenAppOptions = {}): CountingTargetApp {
  const http = { ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}), ...(options.signal ? { signal: options.signal } : {}) };
  switch (kind) {
    case 'jira':
      return new JiraClient(conn, http);
    case 'confluence':
      return new ConfluenceClient(conn, http);
    case 'bitbucket':
      return new BitbucketClient(conn, http);
    case 'atlassian-cloud':
      return new CloudClient(conn, http);
  }
}
