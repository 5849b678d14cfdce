// Injectable faults, matched per request and used up one by one. A faulted request is answered
// before the fake looks at it, so it never changes state.

export type FaultStatus = 401 | 403 | 404 | 409 | 429 | 500 | 502 | 503;

interface FaultMatch {
  /** tested against the path without the query, as sent; a string matches as a substring */
  match?: string | RegExp;
  method?: string;
  /** how many requests it affects (default 1; Infinity for all) */
  count?: number;
}

export type FaultSpec =
  | (FaultMatch & {
      status: FaultStatus;
      /** seconds, sent as Retry-After; no header when left out */
      retryAfter?: number;
    })
  /** never answered: the request is held until the client gives up or the fake closes */
  | (FaultMatch & { timeout: true });

export interface ActiveFault {
  spec: FaultSpec;
  count: number;
  /** requests it has answered so far */
  hits: number;
}

function matches(spec: FaultSpec, method: string, path: string): boolean {
  if (spec.method && spec.method.toUpperCase() !== method) return false;
  const m = spec.match;
  if (m === undefined) return true;
  if (m instanceof RegExp) {
    m.lastIndex = 0;
    return m.test(path);
  }
  return path.includes(m);
}

export class Faults {
  private readonly active: ActiveFault[] = [];

  /** register a fault; returns it so tests can look at `hits` */
  add(spec: FaultSpec): ActiveFault {
    const count = spec.count ?? 1;
    if (!(count > 0)) throw new Error(`fault count must be positive, got ${count}`);
    const f: ActiveFault = { spec, count, hits: 0 };
    this.active.push(f);
    return f;
  }

  clear(): void {
    this.active.length = 0;
  }

  /** faults not used up yet */
  get pending(): readonly ActiveFault[] {
    return this.active;
  }

  /** the first matching fault, one of its uses taken */
  take(method: string, path: string): ActiveFault | undefined {
    for (let i = 0; i < this.active.length; i++) {
      const f = this.active[i]!;
      if (!matches(f.spec, method, path)) continue;
      f.hits++;
      if (f.hits >= f.count) this.active.splice(i, 1);
      return f;
    }
    return undefined;
  }
}
