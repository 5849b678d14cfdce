// The targets: the applications that receive the directory, with their phase, backlog and availability.

import { Link } from 'react-router';
import type { Target, TargetKind } from '../api.ts';
import { targetApi } from '../api.ts';
import { Badge, DataTable, ErrorMessage, Loading, PageHeader, useLoad } from '../components.tsx';
import { formatDate, formatNumber } from '../format.ts';
import { useSession } from '../session.tsx';

export const TARGET_KIND_LABELS: Record<TargetKind, string> = {
  jira: 'Jira',
  confluence: 'Confluence',
  bitbucket: 'Bitbucket',
  'atlassian-cloud': 'Atlassian Cloud',
};

export function targetKindLabel(kind: string): string {
  return TARGET_KIND_LABELS[kind as TargetKind] ?? kind;
}

type Tone = 'neutral' | 'good' | 'bad' | 'warn' | 'info';

/** The phase a person reads: disabled and paused say more than where the lifecycle is. */
export function phaseOf(t: Pick<Target, 'enabled' | 'paused' | 'phase'>): { label: string; tone: Tone } {
  if (!t.enabled) return { label: 'Disabled', tone: 'neutral' };
  if (t.paused) return { label: 'Paused', tone: 'warn' };
  switch (t.phase) {
    case 'new':
      return { label: 'New', tone: 'info' };
    case 'awaiting-adoption':
      return { label: 'Awaiting adoption', tone: 'warn' };
    case 'active':
      return { label: 'Delivering', tone: 'good' };
  }
}

export function PhaseBadge({ target }: { target: Pick<Target, 'enabled' | 'paused' | 'phase'> }) {
  const p = phaseOf(target);
  return <Badge tone={p.tone}>{p.label}</Badge>;
}

/** Whether the application is being waited for, as a sentence; undefined when nothing is wrong. */
export function unavailability(t: Pick<Target, 'status'>, now = Date.now()): string | undefined {
  const s = t.status;
  const until = s.unavailableUntil ? Date.parse(s.unavailableUntil) : NaN;
  if (!Number.isNaN(until) && until > now) return `Unavailable: ${s.lastError ?? 'no answer'}, next try ${formatDate(s.unavailableUntil)}`;
  if (s.lastError && s.unavailableSince) return `Unavailable since ${formatDate(s.unavailableSince)}: ${s.lastError}, trying again`;
  if (s.lastError) return `Last error: ${s.lastError}`;
  return undefined;
}

export function Backlog({ target }: { target: Pick<Target, 'backlog'> }) {
  const { pending, parked, feedRows } = target.backlog;
  return (
    <span className="backlog">
      <span>{formatNumber(pending + feedRows)} pending</span>
      {', '}
      {parked > 0 ? <strong className="parked-count">{formatNumber(parked)} parked</strong> : <span>0 parked</span>}
    </span>
  );
}

export function TargetsPage() {
  const { canChange } = useSession();
  const list = useLoad((signal) => targetApi.list(signal), []);
  return (
    <>
      <PageHeader title="Targets">
        {canChange ? (
          <Link className="button primary" to="/targets/new">
            Add target
          </Link>
        ) : null}
      </PageHeader>
      <p className="muted lead">
        Each target is an application that receives the directory: its users, groups and memberships, as its scope says. A new target sends nothing until its first
        comparison has been reviewed and adopted.
      </p>
      <ErrorMessage error={list.error} />
      {list.loading && !list.data ? <Loading /> : null}
      {list.data ? (
        <DataTable
          caption="Targets"
          columns={['Name', 'Kind', 'Phase', 'Backlog', 'Availability', 'Last delivery']}
          rows={list.data.targets}
          empty={`No targets yet.${canChange ? ' Add one to deliver the directory to Jira, Confluence, Bitbucket or Atlassian Cloud.' : ''}`}
          row={(t) => {
            const down = unavailability(t);
            return (
              <tr key={t.id}>
                <td>
                  <Link to={`/targets/${encodeURIComponent(t.id)}`}>{t.name}</Link>
                  <div className="sub mono">{t.id}</div>
                </td>
                <td>{targetKindLabel(t.kind)}</td>
                <td>
                  <PhaseBadge target={t} />
                </td>
                <td>
                  <Backlog target={t} />
                </td>
                <td>{down ? <span className="text-bad">{down}</span> : t.phase === 'active' ? 'Available' : '—'}</td>
                <td>{formatDate(t.status.lastDeliveryAt)}</td>
              </tr>
            );
          }}
        />
      ) : null}
    </>
  );
}
