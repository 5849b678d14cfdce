// CPU profiling from inside a server process (node:inspector), switched on and off around one
// scenario, and a plain-text summary of a .cpuprofile: self and inclusive share of samples per function
// and self share per area (our source files, each package, Node internals, GC, idle).

import fs from 'node:fs';
import { Session } from 'node:inspector/promises';
import path from 'node:path';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

let session: Session | undefined;

export async function startProfiling(intervalUs = 200): Promise<void> {
  if (session) throw new Error('already profiling');
  session = new Session();
  session.connect();
  await session.post('Profiler.enable');
  await session.post('Profiler.setSamplingInterval', { interval: intervalUs });
  await session.post('Profiler.start');
}

export async function stopProfiling(file: string): Promise<string> {
  if (!session) throw new Error('not profiling');
  const { profile } = (await session.post('Profiler.stop')) as { profile: CpuProfile };
  await session.post('Profiler.disable');
  session.disconnect();
  session = undefined;
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(profile));
  return file;
}

function shortUrl(url: string, root: string): string {
  let u = url.replace(/^file:\/\//, '');
  if (u.startsWith(root)) u = u.slice(root.length + 1);
  return u;
}

// better-sqlite3's native methods: the time SQLite itself spends (statements, commits, checkpoints)
const SQLITE_NATIVE = new Set(['run', 'all', 'get', 'iterate', 'exec', 'Statement', 'prepare', 'pragma', 'Database']);

/** Where a frame belongs: `src/…` file, a package name, `node:` internals, or a pseudo-frame. */
export function areaOf(frame: CallFrame, root: string): string {
  const name = frame.functionName;
  if (!frame.url) {
    if (name === '(garbage collector)' || name === '(idle)' || name === '(program)' || name === '(root)') return name;
    if (SQLITE_NATIVE.has(name)) return 'SQLite (native, via better-sqlite3)';
    if (/^write/.test(name)) return 'socket writes (native)';
    if (name === 'runMicrotasks') return 'promise/microtask machinery';
    return '(other native)';
  }
  const u = shortUrl(frame.url, root);
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(u);
  if (nm) return `pkg:${nm[1]}`;
  if (u.startsWith('node:')) return 'node internals';
  if (u.startsWith('src/') || u.startsWith('bench/')) return u;
  return u;
}

export interface ProfileSummary {
  totalSamples: number;
  durationMs: number;
  bySelf: { fn: string; where: string; selfPct: number }[];
  byInclusive: { fn: string; where: string; totalPct: number }[];
  byArea: { area: string; selfPct: number }[];
}

/** Summarise one or more profiles of the same thing (a scenario measured in several slices). */
export function summarise(profiles: CpuProfile[], root: string, top = 25): ProfileSummary {
  const self = new Map<string, number>();
  const incl = new Map<string, number>();
  const area = new Map<string, number>();
  let totalSamples = 0;
  let durationMs = 0;
  for (const profile of profiles) {
    durationMs += (profile.endTime - profile.startTime) / 1000;
    const byId = new Map<number, ProfileNode>();
    const parent = new Map<number, number>();
    for (const n of profile.nodes) byId.set(n.id, n);
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const keyOf = (n: ProfileNode): string => {
      const f = n.callFrame;
      // (files compiled on the fly by tsx report line 1 for everything: leave the line out there)
      const where = f.url ? `${shortUrl(f.url, root)}${f.lineNumber > 0 ? `:${f.lineNumber + 1}` : ''}` : '';
      if (!f.functionName && f.url) {
        // name an anonymous function after the function it was called from (callbacks, arrow functions)
        let p = parent.get(n.id);
        while (p !== undefined && !byId.get(p)!.callFrame.functionName) p = parent.get(p);
        const outer = p !== undefined ? byId.get(p)!.callFrame.functionName : '';
        if (outer && !outer.startsWith('(')) return `(anonymous, called from ${outer})\u0000${where}`;
      }
      return `${f.functionName || '(anonymous)'}\u0000${where}`;
    };
    for (const id of profile.samples ?? []) {
      const node = byId.get(id);
      if (!node) continue;
      totalSamples++;
      const k = keyOf(node);
      self.set(k, (self.get(k) ?? 0) + 1);
      const a = areaOf(node.callFrame, root);
      area.set(a, (area.get(a) ?? 0) + 1);
      const seen = new Set<string>();
      for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
        const kk = keyOf(byId.get(cur)!);
        if (seen.has(kk)) continue;
        seen.add(kk);
        incl.set(kk, (incl.get(kk) ?? 0) + 1);
      }
    }
  }
  const total = totalSamples || 1;
  const split = (k: string) => {
    const [fn, where] = k.split('\u0000');
    return { fn: fn!, where: where ?? '' };
  };
  const pct = (n: number) => Math.round((1000 * n) / total) / 10;
  return {
    totalSamples,
    durationMs,
    bySelf: [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, n]) => ({ ...split(k), selfPct: pct(n) })),
    byInclusive: [...incl.entries()]
      .filter(([k]) => !k.startsWith('(root)'))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, n]) => ({ ...split(k), totalPct: pct(n) })),
    byArea: [...area.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([a, n]) => ({ area: a, selfPct: pct(n) })),
  };
}
