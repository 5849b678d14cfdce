// How the bench drivers write numbers, times and runs: on stdout and in the results files.

export const log = (s: string) => process.stdout.write(`${s}\n`);
export const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : 'n/a');
export const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : 'n/a');
export const f2 = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : 'n/a');
export const mb = (bytes: number) => bytes / 1024 / 1024;
export const verdict = (ok: boolean) => (ok ? 'met' : '**not met**');
export const check = (ok: boolean) => (ok ? 'ok' : '**wrong**');
/** now, to the second, as the results files write it */
export const nowUtc = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');
/** os.loadavg() as the results files write it */
export const loadText = (load: number[]) => load.map((x) => x.toFixed(2)).join(' / ');
export const counters = (c: Record<string, number>) =>
  Object.entries(c)
    .map(([k, v]) => `${k} ${f0(v)}`)
    .join(', ') || 'none';
/** how long each phase of a sync lasted */
export const spans = (f: { phases: { phase: string; atS: number }[]; wallS: number }) => f.phases.map((p, i) => `${p.phase} ${f1((f.phases[i + 1]?.atS ?? f.wallS) - p.atS)} s`).join(', ');
export const runLog = (run: { log: { message: string }[] }) => run.log.map((l) => `"${l.message}"`).join('; ');

export function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
export const median = (xs: number[]) => quantile([...xs].sort((a, b) => a - b), 0.5);
