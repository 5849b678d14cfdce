// Load: autocannon against a loopback URL, every request built fresh by `next()` (unique bodies,
// distinct ids). Latencies are taken from each response at sub-millisecond precision (the summary
// histogram autocannon reports rounds to whole milliseconds, too coarse at these speeds), so that
// slices of one scenario measured at different moments can be merged exactly.

import autocannon from 'autocannon';

export interface RequestShape {
  method: 'GET' | 'POST' | 'PATCH';
  path: string;
  body?: string;
}

export interface LoadSpec {
  url: string;
  headers: Record<string, string>;
  next: () => RequestShape;
}

/** One stretch of load. */
export interface Slice {
  durationS: number;
  /** latencies of the 2xx responses, ms */
  latencies: number[];
  statusCodes: Record<string, number>;
  errors: number;
}

export interface Measurement {
  durationS: number;
  ok: number;
  rps: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  errors: number;
  statusCodes: Record<string, number>;
}

export async function runLoad(spec: LoadSpec, opts: { durationS: number; connections: number }): Promise<Slice> {
  const latencies: number[] = [];
  const instance = autocannon({
    url: spec.url,
    connections: opts.connections,
    duration: opts.durationS,
    timeout: 30,
    headers: spec.headers,
    requests: [
      {
        setupRequest: (req) => {
          const r = spec.next();
          req.method = r.method;
          req.path = r.path;
          if (r.body !== undefined) req.body = r.body;
          return req;
        },
      },
    ],
  });
  instance.on('response', (_client: unknown, status: number, _bytes: number, ms: number) => {
    if (status >= 200 && status < 300) latencies.push(ms);
  });
  const result = await instance;
  const statusCodes: Record<string, number> = {};
  for (const [code, s] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = Number(s.count);
  return { durationS: result.duration, latencies, statusCodes, errors: result.errors };
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

/** The figures of one or more slices of the same scenario taken together. */
export function combine(slices: Slice[]): Measurement {
  const sorted = Float64Array.from(slices.flatMap((s) => s.latencies)).sort();
  const durationS = slices.reduce((t, s) => t + s.durationS, 0);
  const statusCodes: Record<string, number> = {};
  for (const s of slices) for (const [c, n] of Object.entries(s.statusCodes)) statusCodes[c] = (statusCodes[c] ?? 0) + n;
  return {
    durationS,
    ok: sorted.length,
    rps: sorted.length / durationS,
    p50: percentile(sorted, 50),
    p90: percentile(sorted, 90),
    p99: percentile(sorted, 99),
    max: sorted.length ? sorted[sorted.length - 1]! : NaN,
    errors: slices.reduce((t, s) => t + s.errors, 0),
    statusCodes,
  };
}
