// The parts of a pull-source bench's results file that bench/graph-sync.ts and bench/ldap-sync.ts write alike:
// the head, figure 1's time and RSS rows, figure 2's "nothing written" rows, and the CPU profile sections.

import fs from 'node:fs';
import path from 'node:path';
import type { BenchRun, ProfileSection, Stats, SyncTiming } from './driver.ts';
import { ROOT } from './driver.ts';
import { counters, f0, f1, loadText, log, mb, nowUtc, verdict } from './format.ts';
import { revision } from './machine.ts';

/**
 * The head of a results file: title, date, machine, code, load; then what ran in which process, when the
 * times start and end, and (at other sizes than the issue's) that the figures are not the issue's.
 */
export function reportHead(
  title: string,
  b: BenchRun,
  o: { loadAfter: number[]; totalS: number; processes: string; reduced?: { users: number; groups: number; memberships: number } },
): string[] {
  const { date, mach, loadBefore } = b;
  const L = [
    `# ${title} — ${date} — ${mach.host}`,
    '',
    `- Date (UTC): ${nowUtc()}`,
    `- Machine: ${mach.host} — ${mach.model}, ${mach.cores} cores, ${f1(mach.memGb)} GB memory (shared with other work), ${mach.platform}`,
    `- Node ${mach.node}; code measured: ${mach.code}`,
    `- Load average (1/5/15 min) before: ${loadText(loadBefore)}, after: ${loadText(o.loadAfter)}; whole run ${o.totalS.toFixed(0)} s`,
    o.processes,
    '- Times are wall-clock times of the admin API call as the client sees them; POST …/sync answers when the run has ended (read into the mirror and reconciled into the directory).',
    '',
  ];
  const r = o.reduced;
  if (r) L.push(`**Reduced size (${f0(r.users)} users, ${f0(r.groups)} groups, ${f0(r.memberships)} memberships): not the issue's figures.**`, '');
  return L;
}

/** The head of a store's table of figures, then figure 1's rows on time and peak RSS. */
export function fullSyncRows(full: SyncTiming<string>, target: { fullS: number; rssMb: number }): string[] {
  const runRss = mb(full.run.peakRss);
  const extRss = Math.max(full.rss.sampledMb, full.rss.hwmMb ?? 0);
  return [
    '| # | Figure | Measured | Target | Verdict |',
    '|---|---|---|---|---|',
    `| 1 | Full sync (POST …/sync \`{"mode":"full"}\`, answered when the run ended \`${full.run.status}\`) | **${f1(full.wallS)} s** (run ${f1(full.runS)} s: reading into the mirror ${f1(full.readingS ?? NaN)} s, reconciling ${f1(full.runS - (full.readingS ?? NaN))} s) | < ${target.fullS} s | ${verdict(full.wallS < target.fullS)} |`,
    `| 1 | Peak RSS of the service, the run's own \`peakRss\` | ${f0(runRss)} MB | < ${target.rssMb} MB | ${verdict(runRss < target.rssMb)} |`,
    `| 1 | Peak RSS of the service process, from outside (/proc: VmRSS every 50 ms, ${f0(full.rss.samples)} samples; VmHWM reset before the sync) | ${f0(full.rss.sampledMb)} MB sampled; VmHWM ${full.rss.hwmMb === null ? 'n/a' : `${f0(full.rss.hwmMb)} MB`} | < ${target.rssMb} MB | ${verdict(extRss < target.rssMb)} |`,
  ];
}

/** Figure 2's rows: a second full sync with nothing changed, which should write nothing. */
export function secondSyncRows(sec: SyncTiming<string> & { before: Stats; after: Stats }, runFeed: number): string[] {
  const dirUnchanged =
    sec.before.usersUpdatedAt === sec.after.usersUpdatedAt &&
    sec.before.groupsUpdatedAt === sec.after.groupsUpdatedAt &&
    sec.before.membershipsCreatedAt === sec.after.membershipsCreatedAt &&
    sec.before.users === sec.after.users &&
    sec.before.groups === sec.after.groups &&
    sec.before.memberships === sec.after.memberships;
  const mirrorWrites = ['mirrorCreated', 'mirrorUpdated', 'mirrorDeleted', 'mirrorMembershipsAdded', 'mirrorMembershipsRemoved'].map((k) => sec.run.counters[k] ?? 0);
  const mirrorUnchanged =
    sec.before.mirrorUserVersions === sec.after.mirrorUserVersions &&
    sec.before.mirrorGroupVersions === sec.after.mirrorGroupVersions &&
    sec.before.mirrorUsersUpdatedAt === sec.after.mirrorUsersUpdatedAt &&
    sec.before.mirrorMembers === sec.after.mirrorMembers;
  return [
    `| 2 | Second full sync, nothing changed: time | ${f1(sec.wallS)} s (reading ${f1(sec.readingS ?? NaN)} s) | (reported) | |`,
    `| 2 | … change-feed rows of the run (whole feed before → after) | **${f0(runFeed)}** (${f0(sec.before.changeFeed)} → ${f0(sec.after.changeFeed)}) | 0 | ${verdict(runFeed === 0 && sec.before.changeFeed === sec.after.changeFeed)} |`,
    `| 2 | … directory rows written (latest users.updated_at, groups.updated_at, memberships.created_at and row counts, before vs after) | ${dirUnchanged ? 'none: all unchanged' : `changed: users ${sec.before.usersUpdatedAt} → ${sec.after.usersUpdatedAt}, groups ${sec.before.groupsUpdatedAt} → ${sec.after.groupsUpdatedAt}, memberships ${sec.before.membershipsCreatedAt} → ${sec.after.membershipsCreatedAt}`} | none | ${verdict(dirUnchanged)} |`,
    `| 2 | … mirror writes (run counters mirrorCreated / Updated / Deleted / MembershipsAdded / Removed; sum of mirror versions, latest updated_at, member rows) | ${mirrorWrites.map(f0).join(' / ')}; ${mirrorUnchanged ? 'unchanged' : 'changed'} | 0; unchanged | ${verdict(mirrorWrites.every((x) => x === 0) && mirrorUnchanged)} |`,
    `| 2 | … run counters | ${counters(sec.run.counters)} | | |`,
  ];
}

// ---------------------------------------------------------------------------------------------------
// CPU profile sections

export const PROFILE_HEADING = '## CPU profile — ';

/**
 * A store's CPU profile section: what was profiled (`pgNote`: how to read it on PostgreSQL; `profiled`: the
 * profiled run's own figures), then each step's tables: self time by area, top functions, SQL statements and plans.
 */
export function profileSection(store: string, profiles: ProfileSection[], o: { load: number[]; pgNote: string; profiled: string }): string[] {
  const L: string[] = [`${PROFILE_HEADING}${store}`, ''];
  L.push(
    `A separate run with \`--profile\` (${nowUtc()}, code: ${revision()}, load average after it ${loadText(o.load)}): ` +
      'node:inspector sampling (500 µs) in the service process for each step, and every SQL statement timed by its text ' +
      '(IN- and VALUES-lists folded). Profiled figures are slower than the figures above and are not the result. ' +
      "Frames in bench/lib/graph-service.ts are that SQL timer's wrapper: their self time is the timer's overhead plus native statement time V8 attributes to the caller. " +
      o.pgNote,
    '',
    o.profiled,
    '',
  );
  for (const p of profiles) {
    L.push(`### ${store}: ${p.label}`, '', `${f0(p.summary.totalSamples)} samples over ${f0(p.summary.durationMs)} ms.`, '');
    L.push('Self time by area:', '', '| Area | self % |', '|---|---:|');
    for (const x of p.summary.byArea.slice(0, 12)) L.push(`| ${x.area} | ${x.selfPct} |`);
    L.push('', 'Top functions by self time:', '', '| Function | Where | self % |', '|---|---|---:|');
    for (const x of p.summary.bySelf.slice(0, 15)) L.push(`| ${x.fn} | ${x.where} | ${x.selfPct} |`);
    L.push('', 'Top functions by inclusive time:', '', '| Function | Where | total % |', '|---|---|---:|');
    for (const x of p.summary.byInclusive.slice(0, 25)) L.push(`| ${x.fn} | ${x.where} | ${x.totalPct} |`);
    L.push('', `SQL statements by total time (all statements: ${f0(p.sql.totalMs)} ms):`, '', '| Statement | calls | total ms | rows |', '|---|---:|---:|---:|');
    for (const x of p.sql.statements.slice(0, 12)) L.push(`| \`${x.sql.replace(/\|/g, '\\|').replace(/`/g, "'")}\` | ${f0(x.n)} | ${f0(x.ms)} | ${f0(x.rows)} |`);
    L.push('');
    for (const x of p.sql.plans) {
      L.push(`Plan of a statement that took ${f0(x.ms)} ms (EXPLAIN on another connection right after it): \`${x.sql.slice(0, 200).replace(/`/g, "'")}…\``, '', '```', x.plan, '```', '');
    }
  }
  return L;
}

/**
 * Sections measured apart from the day's figures (a CPU profile, a variant): printed, and with `record` put
 * into the day's results file `out` if it exists, replacing older ones with the same first line.
 */
export function putSections(out: string, sections: string[], o: { record: boolean; headings: string[]; what: string }): void {
  log('');
  log(sections.join('\n'));
  if (o.record && fs.existsSync(out)) {
    mergeSections(out, sections, o.headings);
    log(`${o.what} written into ${path.relative(ROOT, out)}`);
  }
}

/**
 * Put sections into the day's results file, replacing older ones with the same first line; the rest stays.
 * The file is cut into parts at each line that starts with one of `headings`.
 */
function mergeSections(out: string, sections: string[], headings: string[]): void {
  const heads = sections.map((x) => x.split('\n', 1)[0]!);
  const parts = fs.readFileSync(out, 'utf8').split(new RegExp(`\n(?=${headings.join('|')})`));
  const kept = parts.filter((p, i) => i === 0 || !heads.includes(p.split('\n', 1)[0]!));
  fs.writeFileSync(out, `${[...kept.map((p) => p.trimEnd()), ...sections.map((x) => x.trimEnd())].join('\n\n')}\n`);
}
