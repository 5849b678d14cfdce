// One bound LDAP connection for a run (ldapts): TLS (ldaps:// or StartTLS, with the administrator's CA),
// paged searches (RFC 2696) yielding a page at a time, AD range retrieval for long member lists, and
// failures sorted into what an administrator can act on: cannot reach, TLS failed, bind refused, base DN
// not found.

import type { ConnectionOptions } from 'node:tls';
import type { Control, Entry } from 'ldapts';
import { Client, InvalidCredentialsError, NoSuchObjectError, ResultCodeError, StrongAuthRequiredError, ConfidentialityRequiredError } from 'ldapts';
import type { LdapSourceSettings } from './config.ts';
import { parseRange } from './map.ts';

export type LdapFailureKind = 'unreachable' | 'tls' | 'bind' | 'base-dn' | 'timeout' | 'protocol';

/** A failure with its kind and a sentence for the administrator. */
export class LdapError extends Error {
  constructor(
    readonly kind: LdapFailureKind,
    message: string,
    cause?: unknown,
  ) {
    super(message, { cause });
  }
}

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE', 'EADDRNOTAVAIL']);

/** Sort an error from ldapts or the socket into a kind the test action and the run log can name. */
export function classify(e: unknown, url: string, where = ''): LdapError {
  if (e instanceof LdapError) return e;
  const err = e as NodeJS.ErrnoException & { code?: string | number };
  const message = err instanceof Error ? err.message : String(e);
  const code = typeof err.code === 'string' ? err.code : '';
  if (e instanceof InvalidCredentialsError) return new LdapError('bind', `the server refused the bind DN and password (invalid credentials)`, e);
  if (e instanceof StrongAuthRequiredError || e instanceof ConfidentialityRequiredError) {
    return new LdapError('bind', `the server refuses a simple bind without encryption: use ldaps:// or StartTLS (${message})`, e);
  }
  if (e instanceof NoSuchObjectError) return new LdapError('base-dn', `${where || 'the base DN'} was not found on the server`, e);
  if (/CERT|SELF_SIGNED|UNABLE_TO_(GET|VERIFY)|ALTNAME|ERR_SSL|ERR_TLS|EPROTO/i.test(code) || /certificate|TLS|SSL|wrong version number/i.test(message)) {
    return new LdapError('tls', `TLS failed with ${url}: ${message}`, e);
  }
  if (code === 'ETIMEDOUT' || /timeout|timed out/i.test(message)) return new LdapError('timeout', `${url} did not answer in time: ${message}`, e);
  if (UNREACHABLE.has(code) || /connect|socket|closed/i.test(message)) return new LdapError('unreachable', `cannot reach ${url}: ${message}`, e);
  if (e instanceof ResultCodeError) return new LdapError('protocol', `${where ? `${where}: ` : ''}${message} (LDAP result ${e.code})`, e);
  return new LdapError('protocol', `${where ? `${where}: ` : ''}${message}`, e);
}

export interface SearchSpec {
  filter: string;
  scope?: 'base' | 'one' | 'sub';
  attributes: string[];
  /** names whose values stay binary (objectGUID) */
  binary?: string[];
  controls?: Control[];
  /** unpaged (a base search, the RootDSE) */
  unpaged?: boolean;
}

export class LdapConnection {
  private constructor(
    private readonly client: Client,
    private readonly settings: LdapSourceSettings,
    /** the server this connection reached */
    readonly url: string,
  ) {}

  /** Connect, upgrade to TLS when asked, and bind as the sync account. */
  /**
   * Connect to the first server that answers (the URL, then the failover URLs in order), upgrade to TLS
   * when asked, and bind as the sync account. Only a server that cannot be reached sends us on to the
   * next: a refused bind or a certificate problem would be the same on every server.
   */
  static async open(s: LdapSourceSettings, password: string): Promise<LdapConnection> {
    const urls = [s.url, ...s.failoverUrls];
    let last: LdapError | undefined;
    for (const url of urls) {
      try {
        return await LdapConnection.openOne(s, url, password);
      } catch (e) {
        last = e as LdapError;
        if (last.kind !== 'unreachable' && last.kind !== 'timeout') throw last;
      }
    }
    throw urls.length > 1 ? new LdapError(last!.kind, `no server answered: ${urls.join(', ')} (last: ${last!.message})`, last) : last!;
  }

  private static async openOne(s: LdapSourceSettings, url: string, password: string): Promise<LdapConnection> {
    const tls: ConnectionOptions = {
      ...(s.caCertificate ? { ca: [s.caCertificate] } : {}),
      ...(s.tlsServerName ? { servername: s.tlsServerName } : {}),
      minVersion: 'TLSv1.2',
    };
    // ldapts 8 turns TLS on at connect time whenever tlsOptions is given: only for ldaps://
    const client = new Client({
      url,
      timeout: s.timeoutSeconds * 1000,
      connectTimeout: s.connectTimeoutSeconds * 1000,
      ...(url.startsWith('ldaps:') ? { tlsOptions: tls } : {}),
    });
    const conn = new LdapConnection(client, s, url);
    try {
      if (s.startTls) await client.startTLS(tls);
      await client.bind(s.bindDn, password);
      return conn;
    } catch (e) {
      conn.close();
      throw classify(e, url);
    }
  }

  close(): void {
    void this.client.unbind().catch(() => {});
  }

  /** The RootDSE: naming contexts, supported controls, AD's highestCommittedUSN and dsServiceName. */
  async rootDse(attributes: string[] = ['*', '+']): Promise<Map<string, string[]>> {
    const [entry] = await this.search('', { filter: '(objectClass=*)', scope: 'base', attributes, unpaged: true });
    const out = new Map<string, string[]>();
    if (entry) for (const [k, v] of Object.entries(entry)) if (k !== 'dn') out.set(k.toLowerCase(), (Array.isArray(v) ? v : [v]).map((x) => (Buffer.isBuffer(x) ? x.toString('hex') : String(x))));
    return out;
  }

  /** Every entry of a search (small results: RootDSE, one entry, a lookup). */
  async search(base: string, spec: SearchSpec): Promise<Entry[]> {
    const out: Entry[] = [];
    for await (const page of this.pages(base, spec)) out.push(...page);
    return out;
  }

  /** A search a page at a time; AD referrals (searchReferences) are left alone. */
  async *pages(base: string, spec: SearchSpec): AsyncGenerator<Entry[]> {
    const options = {
      scope: spec.scope ?? this.settings.searchScope,
      filter: spec.filter,
      attributes: spec.attributes,
      explicitBufferAttributes: spec.binary ?? [],
      ...(spec.unpaged ? {} : { paged: { pageSize: this.settings.pageSize } }),
    };
    try {
      if (spec.unpaged) {
        const r = await this.client.search(base, options, spec.controls);
        yield r.searchEntries;
        return;
      }
      for await (const r of this.client.searchPaginated(base, options, spec.controls)) yield r.searchEntries;
    } catch (e) {
      throw classify(e, this.url, `searching ${base || 'the RootDSE'}`);
    }
  }

  /**
   * The whole value list of a multi-valued attribute (a group's members). When the server sent it in
   * slices (AD: `member;range=0-1499`), the rest is asked for slice by slice from where the last ended.
   */
  async completeValues(entry: Entry, attribute: string): Promise<(string | Buffer)[]> {
    const first = this.slice(entry, attribute);
    let values = first.values;
    let next = first.next;
    for (let guard = 0; next !== null && guard < 100_000; guard++) {
      const want = this.settings.rangeSize ? `${attribute};range=${next}-${next + this.settings.rangeSize - 1}` : `${attribute};range=${next}-*`;
      const [more] = await this.search(entry.dn, { filter: '(objectClass=*)', scope: 'base', attributes: [want], unpaged: true });
      if (!more) break;
      const slice = this.slice(more, attribute);
      values = values.concat(slice.values);
      // a server that sends nothing new would loop for ever
      next = slice.next !== null && slice.next > next ? slice.next : null;
    }
    return values;
  }

  /**
   * The values of one answer, and where the next slice starts (null: none). ldapts also lists every
   * requested attribute the server did not send, empty: `member;range=300-399: []` beside the
   * `member;range=300-*` that holds the values. A range ending in `*` is the last.
   */
  private slice(entry: Entry, attribute: string): { values: (string | Buffer)[]; next: number | null } {
    const lower = attribute.toLowerCase();
    let values: (string | Buffer)[] = [];
    let last = false;
    let high = -1;
    for (const [key, v] of Object.entries(entry)) {
      const list = Array.isArray(v) ? (v as (string | Buffer)[]) : [v as string | Buffer];
      if (key.toLowerCase() === lower) {
        values = values.concat(list);
        continue;
      }
      const range = parseRange(key, attribute);
      if (!range) continue;
      if (range.high === null) last = true;
      if (list.length === 0) continue;
      values = values.concat(list);
      if (range.high !== null) high = Math.max(high, range.high);
    }
    return { values, next: last || high < 0 ? null : high + 1 };
  }

  /** The attribute to ask for when a member list should come in client-sized slices (rangeSize set). */
  memberRequest(attribute: string): string {
    return this.settings.rangeSize ? `${attribute};range=0-${this.settings.rangeSize - 1}` : attribute;
  }
}

/**
 * More bound connections for work in parallel. OpenLDAP allows one paged search at a time per connection
 * (a second one's cookie is refused as "invalid or old"), so searches that run side by side each take a
 * connection of their own, opened on first need and kept for the run.
 */
export class ConnectionPool {
  private readonly idle: LdapConnection[] = [];
  private readonly opened: LdapConnection[] = [];

  constructor(private readonly open: () => Promise<LdapConnection>) {}

  async use<T>(work: (conn: LdapConnection) => Promise<T>): Promise<T> {
    let conn = this.idle.pop();
    if (!conn) {
      conn = await this.open();
      this.opened.push(conn);
    }
    let broken = false;
    try {
      return await work(conn);
    } catch (e) {
      // a dropped connection (the server restarted, an idle timeout) is not handed out again
      broken = e instanceof LdapError && (e.kind === 'unreachable' || e.kind === 'timeout');
      throw e;
    } finally {
      if (broken) {
        conn.close();
        this.opened.splice(this.opened.indexOf(conn), 1);
      } else this.idle.push(conn);
    }
  }

  close(): void {
    for (const c of this.opened) c.close();
    this.opened.length = 0;
    this.idle.length = 0;
  }
}
