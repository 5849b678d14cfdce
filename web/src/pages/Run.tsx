// One run: what started it, how it went, its counters, log lines, the changes it made, and the changes
// held by the deletion limit with Approve / Reject.

import { useState } from 'react';
import { Link, useParams } from 'react-router';
import type { Run } from '../api.ts';
import { api } from '../api.ts';
import { CounterList, DataTable, ErrorMessage, Loading, Notice, PageHeader, Section, StatusBadge, useAction, useConfirm, useLoad } from '../components.tsx';
import { describeChange, formatBytes, formatDate, formatDuration, namesIn, triggerLabel } from '../format.ts';
import { RunProgressPanel } from '../progress.tsx';
import { useSession } from '../session.tsx';

export function RunPage() {
  const { id = '' } = useParams();
  const { canChange } = useSession();
  const run = useLoad((signal) => api.get<Run>(`/runs/${encodeURIComponent(id)}`, undefined, signal), [id]);
  const [confirm, dialog] = useConfirm();
  const [outcome, setOutcome] = useState('');
  const action = useAction();

  if (run.error && !run.data) {
    return (
      <>
        <PageHeader title="Run" back={{ to: '/runs', label: 'Sync history' }} />
        <ErrorMessage error={run.error} />
      </>
    );
  }
  const r = run.data;
  if (!r) return <Loading />;
  const waiting = r.held.filter((h) => h.status === 'held');
  const names = namesIn(r.changes);

  const decide = async (approve: boolean) => {
    const ok = await confirm({
      title: approve ? 'Approve the held changes?' : 'Reject the held changes?',
      message: approve ? (
        <p>
          {waiting.length} deactivation{waiting.length === 1 ? '' : 's'} and deletion{waiting.length === 1 ? '' : 's'} held by the deletion limit will be applied now (those no longer
          wanted are skipped).
        </p>
      ) : (
        <p>The {waiting.length} held change{waiting.length === 1 ? '' : 's'} will be dropped; the users stay as they are.</p>
      ),
      confirmLabel: approve ? 'Approve and apply' : 'Reject',
      danger: approve,
    });
    if (!ok) return;
    const res = await action.run(() => api.post<{ applied?: number; skipped?: number; rejected?: number }>(`/runs/${encodeURIComponent(id)}/${approve ? 'approve' : 'reject'}`));
    if (res) {
      setOutcome(approve ? `Approved: ${res.applied ?? 0} applied, ${res.skipped ?? 0} skipped.` : `Rejected: ${res.rejected ?? 0} dropped.`);
      run.reload();
    }
  };

  return (
    <>
      <PageHeader
        title={
          <>
            Run of {formatDate(r.startedAt)} <StatusBadge status={r.status} />
          </>
        }
        back={{ to: '/runs', label: 'Sync history' }}
      >
        <button type="button" onClick={run.reload} disabled={run.loading}>
          Refresh
        </button>
      </PageHeader>
      {dialog}
      {r.status === 'running' ? <RunProgressPanel runId={r.id} title="This run is going on" onEnd={run.reload} /> : null}
      <Section title="Summary">
        <dl className="props">
          <dt>Connector</dt>
          <dd>
            <Link to={`/connectors/${encodeURIComponent(r.connectorId)}/history`}>{r.connectorId}</Link>
          </dd>
          <dt>Trigger</dt>
          <dd>{triggerLabel(r.trigger)}</dd>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={r.status} />
            {r.phase ? ` (${r.phase})` : ''}
          </dd>
          <dt>Started</dt>
          <dd>{formatDate(r.startedAt)}</dd>
          <dt>Ended</dt>
          <dd>{formatDate(r.endedAt)}</dd>
          <dt>Duration</dt>
          <dd>{formatDuration(r.startedAt, r.endedAt)}</dd>
          <dt>Peak memory</dt>
          <dd>{formatBytes(r.peakRss)}</dd>
          <dt>Run ID</dt>
          <dd className="mono">{r.id}</dd>
        </dl>
        {r.error ? <ErrorMessage error={r.error} /> : null}
      </Section>
      <Section title="Counters">
        <CounterList counters={r.counters} empty="Nothing changed." />
      </Section>
      {r.held.length ? (
        <Section title="Held changes" description="Deactivations and deletions over the connector's deletion limit wait here for a decision.">
          <div aria-live="polite">{outcome ? <Notice kind="success">{outcome}</Notice> : null}</div>
          <ErrorMessage error={action.error} />
          <DataTable
            caption="Held changes"
            columns={['User', 'Change', 'Why', 'Decision']}
            rows={r.held}
            row={(h, i) => (
              <tr key={i}>
                <td>
                  <Link to={`/directory/users/${encodeURIComponent(h.userId)}`}>{h.username ?? h.userId}</Link>
                </td>
                <td>{h.op}</td>
                <td>{h.reason ?? '—'}</td>
                <td>
                  <StatusBadge status={h.status} />
                </td>
              </tr>
            )}
          />
          {canChange && waiting.length ? (
            <div className="form-actions">
              <button type="button" className="primary" onClick={() => void decide(true)} disabled={action.busy}>
                Approve
              </button>
              <button type="button" onClick={() => void decide(false)} disabled={action.busy}>
                Reject
              </button>
            </div>
          ) : null}
        </Section>
      ) : null}
      <Section title={`Changes made${r.changes.length >= 1000 ? ' (the first 1,000)' : ''}`}>
        <DataTable
          caption="Changes made by this run"
          columns={['#', 'What', 'Change']}
          rows={r.changes}
          empty="This run changed nothing in the directory."
          row={(c) => (
            <tr key={c.seq ?? c.entityId}>
              <td className="mono">{c.seq}</td>
              <td>{c.entity}</td>
              <td>
                {c.entity === 'user' ? (
                  <Link to={`/directory/users/${encodeURIComponent(c.entityId)}`}>{describeChange(c, names)}</Link>
                ) : c.entity === 'group' && c.op !== 'delete' ? (
                  <Link to={`/directory/groups/${encodeURIComponent(c.entityId)}`}>{describeChange(c, names)}</Link>
                ) : (
                  describeChange(c, names)
                )}
              </td>
            </tr>
          )}
        />
      </Section>
      <Section title="Log">
        {r.log.length === 0 ? <p className="muted">No log lines.</p> : null}
        <ul className="log">
          {r.log.map((l, i) => (
            <li key={i} className={`log-${l.level}`}>
              <time dateTime={l.at}>{formatDate(l.at)}</time> <span className="log-level">{l.level}</span> {l.message}
            </li>
          ))}
        </ul>
      </Section>
    </>
  );
}
