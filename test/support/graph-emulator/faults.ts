// Injectable faults, matched per request and used up one by one.

export type FaultKind =
  /** 429 TooManyRequests, with Retry-After unless retryAfter is null */
  | 'throttle'
  /** 503 ServiceUnavailable (Retry-After if given) */
  | 'unavailable'
  /** 504 GatewayTimeout */
  | 'gatewayTimeout'
  /** the socket is destroyed: before any byte ('beforeHeaders') or after half the body ('midBody', default) */
  | 'drop'
  /** 401 InvalidAuthenticationToken as for an expired token; the presented token is expired for good */
  | 'expiredToken'
  /** 403 Authorization_RequestDenied */
  | 'forbidden'
  /** 410 Gone (syncStateNotFound) on a delta request */
  | 'deltaGone'
  /** a list/delta page with no items that still carries a nextLink to the same position */
  | 'emptyPage';

export interface FaultSpec {
  kind: FaultKind;
  /**
   * which requests: a RegExp or a string tested against the path (without the query), e.g.
   * '/v1.0/users' (prefix match on a segment boundary) or /\/members$/. Default: every Graph call.
   */
  match?: string | RegExp;
  method?: string;
  /** how many requests it affects (default 1; Infinity for all) */
  count?: number;
  /** seconds for Retry-After; fractional allowed; null leaves the header out. Default 1 for 429. */
  retryAfter?: number | string | null;
  /** for 'drop' */
  phase?: 'beforeHeaders' | 'midBody';
}

export interface ActiveFault extends Required<Pick<FaultSpec, 'kind' | 'count'>> {
  spec: FaultSpec;
  hits: number;
}

function matches(spec: FaultSpec, method: string, path: string): boolean {
  if (spec.method && spec.method.toUpperCase() !== method.toUpperCase()) return false;
  const m = spec.match;
  if (m === undefined) return path.startsWith('/v1.0/') || path === '/v1.0';
  if (m instanceof RegExp) return m.test(path);
  const lower = path.toLowerCase();
  const prefix = m.toLowerCase();
  return lower === prefix || lower.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`) || lower.startsWith(`${prefix}?`);
}

export class Faults {
  private readonly active: ActiveFault[] = [];

  /** register a fault; returns it so tests can look at `hits` */
  add(spec: FaultSpec): ActiveFault {
    const f: ActiveFault = { spec, kind: spec.kind, count: spec.count ?? 1, hits: 0 };
    this.active.push(f);
    return f;
  }

  throttle(match?: string | RegExp, opts: { count?: number; retryAfter?: number | string | null } = {}): ActiveFault {
    return this.add({ kind: 'throttle', match, ...opts });
  }

  unavailable(match?: string | RegExp, opts: { count?: number; retryAfter?: number | string | null; status?: 503 | 504 } = {}): ActiveFault {
    return this.add({ kind: opts.status === 504 ? 'gatewayTimeout' : 'unavailable', match, count: opts.count, retryAfter: opts.retryAfter });
  }

  drop(match?: string | RegExp, opts: { count?: number; phase?: 'beforeHeaders' | 'midBody' } = {}): ActiveFault {
    return this.add({ kind: 'drop', match, ...opts });
  }

  /** the next Graph call (matching) is answered as if its token had expired */
  expireTokenOnNextCall(match?: string | RegExp): ActiveFault {
    return this.add({ kind: 'expiredToken', match });
  }

  /** the next delta call answers 410 Gone */
  goneOnNextDelta(count = 1): ActiveFault {
    return this.add({ kind: 'deltaGone', match: /\/delta$/i, count });
  }

  clear(): void {
    this.active.length = 0;
  }

  get pending(): readonly ActiveFault[] {
    return this.active;
  }

  /** take the first matching fault of the given kinds, using up one of its count */
  take(method: string, path: string, kinds: readonly FaultKind[]): ActiveFault | undefined {
    for (let i = 0; i < this.active.length; i++) {
      const f = this.active[i]!;
      if (!kinds.includes(f.kind) || !matches(f.spec, method, path)) continue;
      f.hits++;
      if (f.hits >= f.count) this.active.splice(i, 1);
      return f;
    }
    return undefined;
  }
}
