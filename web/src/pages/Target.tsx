// One target, in tabs: Overview (state, backlog, pause, enable, connection test, delete), Comparison (the
// latest full comparison by category, running one, adopting the first), Parked (work given up on until
// retried), Activity (what it did in the application) and Settings (the form of Add target).

import { useEffect, useState } from 'react';
import { Link, NavLink, useLocation, useNavigate, useParams } from 'react-router';
import type { ComparisonDetail, ComparisonItem, ComparisonMode, ComparisonSummary, TargetDetail, TargetEvent, TargetSettings, TargetTest } from '../api.ts';
import { ApiError, sentence, targetApi } from '../api.ts';
import { ACTIONS_COLUMN, Badge, ConnectionChecks, DataTable, ErrorMessage, IssuesContext, Loading, Notice, PageHeader, Section, SelectField, TextField, useAction, useConfirm, useLoad } from '../components.tsx';
import { formatDate, formatNumber } from '../format.ts';
import { useSession } from '../session.tsx';
import type { TargetDraft } from './NewTarget.tsx';
import { draftFromSettings, TargetSettingsFields, targetSettingsBody } from './NewTarget.tsx';
import { PhaseBadge, targetKindLabel, unavailability } from './Targets.tsx';

const TABS: [string, string][] = [
  ['overview', 'Overview'],
  ['comparison', 'Comparison'],
  ['parked', 'Parked'],
  ['activity', 'Activity'],
  ['settings', 'Settings'],
];

/** Whether something is moving that the page should follow closely. */
function isBusy(t: TargetDetail): boolean {
  const c = t.lastComparison;
  if (t.phase === 'new' || c?.status === 'queued' || c?.status === 'running') return true;
  return t.phase === 'active' && t.enabled && !t.paused && t.backlog.pending + t.backlog.feedRows > 0;
}

export function TargetPage() {
  const { id = '', tab = 'overview' } = useParams();
  const location = useLocation();
  const target = useLoad((signal) => targetApi.get(id, signal), [id]);
  const t = target.data;
  const busy = t ? isBusy(t) : false;
  const { reload } = target;

  // the state changes by itself (comparisons, delivery): follow it, closely while something moves
  useEffect(() => {
    const timer = setInterval(reload, busy ? 1500 : 10_000);
    return () => clearInterval(timer);
  }, [busy, reload]);

  if (target.error && !t) {
    return (
      <>
        <PageHeader title="Target" back={{ to: '/targets', label: 'Targets' }} />
        <ErrorMessage error={target.error} />
      </>
    );
  }
  if (!t) return <Loading />;
  const created = (location.state as { created?: boolean } | null)?.created;

  return (
    <>
      <PageHeader
        title={
          <>
            {t.name} <Badge tone="info">{targetKindLabel(t.kind)}</Badge> <PhaseBadge target={t} />
          </>
        }
        back={{ to: '/targets', label: 'Targets' }}
      />
      {created && t.phase !== 'active' ? (
        <Notice kind="success">The target is created and its first comparison has started. Nothing is sent until you review it and adopt the matches.</Notice>
      ) : null}
      <nav className="tabs" aria-label="Target sections">
        <ul>
          {TABS.map(([name, label]) => (
            <li key={name}>
              <NavLink to={`/targets/${encodeURIComponent(id)}/${name}`} className={name === tab ? 'active' : undefined} aria-current={name === tab ? 'page' : undefined}>
                {label}
                {name === 'parked' && t.backlog.parked > 0 ? <span className="tab-count"> ({formatNumber(t.backlog.parked)})</span> : null}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      {tab === 'overview' ? <OverviewTab target={t} reload={reload} /> : null}
      {tab === 'comparison' ? <ComparisonTab target={t} reload={reload} /> : null}
      {tab === 'parked' ? <ParkedTab target={t} reload={reload} /> : null}
      {tab === 'activity' ? <ActivityTab target={t} /> : null}
      {tab === 'settings' ? <SettingsTab target={t} reload={reload} /> : null}
      {!TABS.some(([name]) => name === tab) ? <p>There is no such section. Choose one above.</p> : null}
    </>
  );
}

// ------------------------------------------------------------------------------------------- overview

const PHASE_TEXT: Record<string, string> = {
  new: 'Its first comparison is queued or running. Nothing is sent yet.',
  'awaiting-adoption': 'The first comparison is done. Review it and adopt the matches to start delivery; nothing is sent until then.',
  active: 'Changes in the directory are delivered as they happen.',
};

function OverviewTab({ target: t, reload }: { target: TargetDetail; reload: () => void }) {
  const { canChange } = useSession();
  const navigate = useNavigate();
  const [confirm, dialog] = useConfirm();
  const action = useAction();
  const testing = useAction();
  const [test, setTest] = useState<TargetTest>();
  const [done, setDone] = useState('');
  const down = unavailability(t);
  const app = targetKindLabel(t.kind);

  const change = async (c: { paused?: boolean; enabled?: boolean }, said: string) => {
    setDone('');
    const r = await action.run(() => targetApi.update(t.id, c));
    if (r) {
      setDone(said);
      reload();
    }
  };

  const remove = async () => {
    const ok = await confirm({
      title: `Delete the target ${t.name}?`,
      message: (
        <p>
          usersync forgets which users, groups and memberships it created or adopted in {app}, and stops delivering to it. Nothing is changed in {app}: the users and
          groups stay there. This cannot be undone.
        </p>
      ),
      confirmLabel: 'Delete target',
      danger: true,
    });
    if (!ok) return;
    const deleted = await action.run(async () => {
      await targetApi.remove(t.id);
      return true;
    });
    if (deleted) navigate('/targets');
  };

  const runTest = async () => {
    setTest(undefined);
    const r = await testing.run(() => targetApi.test(t.id));
    if (r) setTest(r);
  };

  return (
    <>
      {dialog}
      <Section title="State">
        <dl className="props">
          <dt>Phase</dt>
          <dd>
            <PhaseBadge target={t} /> {!t.enabled ? 'Neither compared nor delivered to.' : t.paused ? 'Changes are collected and sent when it is resumed.' : PHASE_TEXT[t.phase]}
          </dd>
          <dt>Application</dt>
          <dd>
            {app} at <span className="mono">{t.settings.baseUrl || '—'}</span>
          </dd>
          <dt>Availability</dt>
          <dd>{down ? <span className="text-bad">{down}</span> : t.phase === 'active' ? 'Available' : '—'}</dd>
          <dt>Last delivery</dt>
          <dd>{formatDate(t.status.lastDeliveryAt)}</dd>
          <dt>Latest comparison</dt>
          <dd>
            {t.lastComparison ? (
              <Link to={`/targets/${encodeURIComponent(t.id)}/comparison`}>
                {COMPARISON_STATUS[t.lastComparison.status]} ({t.lastComparison.mode === 'fix' ? 'repair' : 'report'}), {formatDate(t.lastComparison.endedAt ?? t.lastComparison.requestedAt)}
              </Link>
            ) : (
              'none yet'
            )}
          </dd>
        </dl>
      </Section>
      <Section title="Backlog" description="What is still to be delivered. Parked work waits until it is retried or changes in the directory.">
        <dl className="props">
          <dt>Directory changes not yet looked at</dt>
          <dd>{formatNumber(t.backlog.feedRows)}</dd>
          <dt>Users and groups waiting</dt>
          <dd>{formatNumber(t.backlog.pending)}</dd>
          <dt>Parked</dt>
          <dd>
            {t.backlog.parked > 0 ? (
              <Link to={`/targets/${encodeURIComponent(t.id)}/parked`} className="parked-count">
                {formatNumber(t.backlog.parked)} parked
              </Link>
            ) : (
              '0'
            )}
          </dd>
        </dl>
      </Section>
      <Section title={`Owned in ${app}`} description="What usersync created or adopted, and so may change.">
        <dl className="counters">
          <div className="counter">
            <dt>users</dt>
            <dd>{formatNumber(t.owned.user)}</dd>
          </div>
          <div className="counter">
            <dt>groups</dt>
            <dd>{formatNumber(t.owned.group)}</dd>
          </div>
          <div className="counter">
            <dt>memberships</dt>
            <dd>{formatNumber(t.owned.membership)}</dd>
          </div>
        </dl>
      </Section>
      <Section title="Actions">
        <div className="form-actions">
          {canChange ? (
            <>
              <button type="button" onClick={() => void change({ paused: !t.paused }, t.paused ? 'Resumed: what was collected meanwhile is sent now.' : 'Paused: changes are collected and sent when it is resumed.')} disabled={action.busy}>
                {t.paused ? 'Resume' : 'Pause'}
              </button>
              <button type="button" onClick={() => void change({ enabled: !t.enabled }, t.enabled ? 'Disabled.' : 'Enabled.')} disabled={action.busy}>
                {t.enabled ? 'Disable' : 'Enable'}
              </button>
            </>
          ) : null}
          <button type="button" onClick={() => void runTest()} disabled={testing.busy}>
            {testing.busy ? 'Testing…' : 'Test connection'}
          </button>
          {canChange ? (
            <button type="button" className="danger-outline" onClick={() => void remove()} disabled={action.busy}>
              Delete
            </button>
          ) : null}
        </div>
        <ErrorMessage error={action.error} />
        <div aria-live="polite">
          {done ? <Notice kind="success">{done}</Notice> : null}
          {testing.busy ? <p className="muted">Testing the connection with the saved settings…</p> : null}
          <ErrorMessage error={testing.error} />
          {test ? <ConnectionChecks ok={test.ok} checks={test.checks} /> : null}
        </div>
      </Section>
      <p className="muted small">Created {formatDate(t.createdAt)}.</p>
    </>
  );
}

// ----------------------------------------------------------------------------------------- comparison

const COMPARISON_STATUS: Record<string, string> = { queued: 'queued', running: 'running', done: 'done', failed: 'failed' };

/** A short name per category; the API's sentence says what it means. */
const CATEGORY_LABELS: Record<string, string> = {
  'user-missing': 'Users to create',
  'user-match': 'Users matched by username',
  'user-match-email': 'Users matched by e-mail',
  'user-owned-missing': 'Owned users gone from the application',
  'user-drift': 'Owned users that differ',
  'user-invalid': 'Users the application would refuse',
  'user-unmanaged': 'Users only in the application',
  'group-missing': 'Groups to create',
  'group-match': 'Groups matched by name',
  'group-owned-missing': 'Owned groups gone from the application',
  'group-unmanaged': 'Groups only in the application',
  'membership-missing': 'Memberships removed in the application',
  'membership-to-add': 'Memberships to add',
  'membership-match': 'Memberships already there',
  'membership-extra': 'Other memberships in owned groups',
  'user-ok': 'Owned users as wanted',
  'group-ok': 'Owned groups as wanted',
};

const OK_TEXT: Record<string, string> = {
  'user-ok': 'owned, and the application has them as the directory wants',
  'group-ok': 'owned, and present in the application',
};

const categoryLabel = (c: string) => CATEGORY_LABELS[c] ?? c;

/** The comparison's counts, in the order of the API's categories, then the owned ones that are fine. */
function summaryRows(summary: ComparisonSummary, categories: Record<string, string>): [string, number, string][] {
  const rows: [string, number, string][] = [];
  for (const [c, text] of Object.entries(categories)) if (summary[c]) rows.push([c, summary[c]!, text]);
  for (const c of ['user-ok', 'group-ok']) if (summary[c]) rows.push([c, summary[c]!, OK_TEXT[c]!]);
  return rows;
}

function itemDetail(it: ComparisonItem): string {
  const d = it.detail;
  const parts: string[] = [];
  if (typeof d.problem === 'string') parts.push(sentence(d.problem));
  if (Array.isArray(d.fields) && d.fields.length) parts.push(`Differs in: ${d.fields.join(', ')}.`);
  if (it.category === 'user-match-email' && typeof d.username === 'string') parts.push(`Directory user ${d.username}.`);
  if (typeof d.email === 'string') parts.push(`E-mail ${d.email}.`);
  if (Array.isArray(d.drift) && d.drift.length) parts.push(`Would be updated: ${d.drift.join(', ')}.`);
  if (typeof d.active === 'boolean' && it.entity === 'user' && !d.active) parts.push('Inactive.');
  if (typeof d.groups === 'number' && d.groups > 0) parts.push(`In ${d.groups} group${d.groups === 1 ? '' : 's'}.`);
  return parts.join(' ');
}

const PAGE = 100;

/** The items of one comparison, all categories or one, a page at a time. */
function ComparisonItems({ targetId, comparison, category }: { targetId: string; comparison: string; category: string }) {
  const first = useLoad((signal) => targetApi.comparison(targetId, comparison, { ...(category ? { category } : {}), limit: PAGE }, signal), [targetId, comparison, category]);
  const [more, setMore] = useState<ComparisonItem[]>([]);
  const [exhausted, setExhausted] = useState(false);
  const action = useAction();
  if (first.error) return <ErrorMessage error={first.error} />;
  if (!first.data) return <Loading what="Loading the items" />;
  const items = [...first.data.items, ...more];
  const last = items[items.length - 1];
  const canMore = !exhausted && first.data.items.length === PAGE;
  const loadMore = async () => {
    if (!last) return;
    const r = await action.run(() => targetApi.comparison(targetId, comparison, { ...(category ? { category } : {}), limit: PAGE, after: last.n }));
    if (r) {
      setMore([...more, ...r.items]);
      if (r.items.length < PAGE) setExhausted(true);
    }
  };
  return (
    <>
      <DataTable
        caption={category ? `Items: ${categoryLabel(category)}` : 'Items of the comparison'}
        columns={['Category', 'Name', 'Details']}
        rows={items}
        empty="No items."
        row={(it) => (
          <tr key={it.n}>
            <td>{categoryLabel(it.category)}</td>
            <td className="mono">{it.remoteName}</td>
            <td>{itemDetail(it)}</td>
          </tr>
        )}
      />
      <ErrorMessage error={action.error} />
      {canMore ? (
        <div className="form-actions">
          <button type="button" onClick={() => void loadMore()} disabled={action.busy}>
            {action.busy ? 'Loading…' : `Show ${PAGE} more`}
          </button>
        </div>
      ) : null}
      <p className="muted small" aria-live="polite">
        {formatNumber(items.length)} item{items.length === 1 ? '' : 's'} shown.
      </p>
    </>
  );
}

function ComparisonTab({ target: t, reload }: { target: TargetDetail; reload: () => void }) {
  const { canChange } = useSession();
  const [confirm, dialog] = useConfirm();
  const action = useAction();
  const [category, setCategory] = useState('');
  const [done, setDone] = useState('');
  const latest = t.lastComparison;
  // the full comparison (with the categories' sentences) once the latest one is finished
  const detail = useLoad(
    (signal) => (latest && latest.status === 'done' ? targetApi.comparison(t.id, latest.id, { limit: 1 }, signal) : Promise.resolve<ComparisonDetail | undefined>(undefined)),
    [t.id, latest?.id, latest?.status],
  );
  const history = useLoad((signal) => targetApi.comparisons(t.id, 10, signal), [t.id, latest?.id, latest?.status]);
  const app = targetKindLabel(t.kind);
  const running = latest?.status === 'queued' || latest?.status === 'running';
  const d = detail.data;
  const summary = latest?.summary ?? {};
  const n = (c: string) => summary[c] ?? 0;
  const matchedUsers = n('user-match') + n('user-match-email');
  const matches = matchedUsers + n('group-match');

  const compare = async (mode: ComparisonMode) => {
    setDone('');
    if (mode === 'fix') {
      const ok = await confirm({
        title: 'Run a comparison and repair?',
        message: (
          <p>
            usersync reads {app}'s users and groups and sets back what it created or adopted to what the directory says: users deleted or changed by hand are
            created or corrected again, memberships it made are added again. Nothing usersync does not own is changed.
          </p>
        ),
        confirmLabel: 'Compare and repair',
      });
      if (!ok) return;
    }
    const r = await action.run(async () => {
      try {
        return await targetApi.compare(t.id, mode);
      } catch (e) {
        if (e instanceof ApiError && e.code === 'busy') return { id: '', status: 'queued' as const, mode };
        throw e;
      }
    });
    if (r) {
      setDone(r.id ? 'The comparison is queued.' : 'A comparison of this target is already queued or running; here is its progress.');
      setCategory('');
      reload();
    }
  };

  const adopt = async () => {
    if (!latest) return;
    const cleanup = t.settings.cleanup;
    const ok = await confirm({
      title: `Adopt ${formatNumber(matches)} match${matches === 1 ? '' : 'es'} and start delivery?`,
      message: (
        <>
          <p>
            Adopting means usersync takes charge of the {formatNumber(matchedUsers)} user{matchedUsers === 1 ? '' : 's'} and {formatNumber(n('group-match'))} group
            {n('group-match') === 1 ? '' : 's'} that already exist in {app} (with their {formatNumber(n('membership-match'))} membership
            {n('membership-match') === 1 ? '' : 's'}): from now on it keeps them as the directory has them
            {cleanup === 'none' ? '' : `, and ${CLEANUP_TEXT[cleanup]} a user who leaves the scope or is deleted in the directory`}.
          </p>
          <p>
            Delivery then starts: usersync creates the {formatNumber(n('user-missing'))} missing user{n('user-missing') === 1 ? '' : 's'} and {formatNumber(n('group-missing'))} missing group
            {n('group-missing') === 1 ? '' : 's'}, and adds the memberships the directory wants. Users and groups only in {app} are left alone.
          </p>
          {n('user-invalid') ? (
            <p>
              {formatNumber(n('user-invalid'))} user{n('user-invalid') === 1 ? '' : 's'} would be refused by {app}; they are parked until fixed.
            </p>
          ) : null}
        </>
      ),
      confirmLabel: 'Adopt and start delivery',
    });
    if (!ok) return;
    const r = await action.run(() => targetApi.adopt(t.id, latest.id));
    if (r) {
      setDone(
        `Adopted ${formatNumber(r.adopted.users)} user${r.adopted.users === 1 ? '' : 's'}, ${formatNumber(r.adopted.groups)} group${r.adopted.groups === 1 ? '' : 's'} and ${formatNumber(r.adopted.memberships)} membership${r.adopted.memberships === 1 ? '' : 's'}. Delivery has started.`,
      );
      reload();
    }
  };

  const rows = d ? summaryRows(summary, d.categories) : [];
  const present = rows.filter(([c]) => c in (d?.categories ?? {}));

  return (
    <>
      {dialog}
      <section className="card" aria-labelledby="comparison-title">
        <h2 id="comparison-title">Latest comparison</h2>
        <p className="muted">
          A full comparison reads {app}'s users, groups and memberships and sets them against the directory and what usersync owns. A report changes nothing.
        </p>
        <div aria-live="polite" className="comparison-status">
          {!latest ? <p>No comparison yet.</p> : null}
          {latest?.status === 'queued' ? <p>The comparison ({latest.mode === 'fix' ? 'repair' : 'report'}) is queued and starts in a moment…</p> : null}
          {latest?.status === 'running' ? (
            <p>
              Comparing: reading {app}'s users, groups and memberships…
              {summary.readAppUsers ? ` ${formatNumber(summary.readAppUsers)} users` : ''}
              {summary.readAppGroups ? `, ${formatNumber(summary.readAppGroups)} groups` : ''}
              {summary.readGroupMembers ? `, the members of ${formatNumber(summary.readGroupMembers)} groups` : ''}
              {summary.readDirectoryUsers ? `; ${formatNumber(summary.readDirectoryUsers)} directory users compared` : ''}
              {summary.readAppUsers ? ' so far.' : ''}
            </p>
          ) : null}
          {latest?.status === 'done' ? (
            <p>
              Finished {formatDate(latest.endedAt)} ({latest.mode === 'fix' ? 'repair' : 'report'}).
              {latest.mode === 'fix' && summary.queued ? ` ${formatNumber(summary.queued)} users and groups were queued for repair.` : ''}
            </p>
          ) : null}
          {latest?.status === 'failed' ? (
            <div className="error" role="alert">
              <p>The comparison failed: {sentence(latest.error ?? 'no reason given')}</p>
            </div>
          ) : null}
          {done ? <Notice kind="success">{done}</Notice> : null}
        </div>
        {running ? (
          <div className="progress-bar indeterminate" role="progressbar" aria-label="Comparison progress" aria-valuetext={latest?.status ?? 'working'}>
            <div className="progress-fill" />
          </div>
        ) : null}
        <ErrorMessage error={action.error} />
        {canChange ? (
          <div className="form-actions">
            <button type="button" className={t.phase === 'awaiting-adoption' ? undefined : 'primary'} onClick={() => void compare('report')} disabled={action.busy || running || !t.enabled}>
              Run comparison (report)
            </button>
            {t.phase === 'active' ? (
              <button type="button" onClick={() => void compare('fix')} disabled={action.busy || running || !t.enabled}>
                Run comparison and repair
              </button>
            ) : null}
          </div>
        ) : null}
      </section>

      {t.phase === 'awaiting-adoption' && latest?.status === 'done' && canChange ? (
        <section className="card adopt-card" aria-labelledby="adopt-title">
          <h2 id="adopt-title">Review, then adopt</h2>
          <p>
            The comparison found {formatNumber(matchedUsers)} user{matchedUsers === 1 ? '' : 's'} and {formatNumber(n('group-match'))} group{n('group-match') === 1 ? '' : 's'} that already exist in {app},{' '}
            {formatNumber(n('user-missing'))} user{n('user-missing') === 1 ? '' : 's'} and {formatNumber(n('group-missing'))} group{n('group-missing') === 1 ? '' : 's'} to create. Look at the items below; when
            they are right, adopt the matches and delivery starts.
          </p>
          <button type="button" className="primary" onClick={() => void adopt()} disabled={action.busy}>
            {matches === 0 ? 'Start delivery (nothing to adopt)' : `Adopt ${formatNumber(matches)} match${matches === 1 ? '' : 'es'} and start delivery`}
          </button>
        </section>
      ) : null}
      {t.phase === 'awaiting-adoption' && latest?.status !== 'done' && !running ? (
        <Notice kind="warning">The latest comparison did not finish. Run it again to review and adopt.</Notice>
      ) : null}

      {latest?.status === 'done' ? (
        <section className="card" aria-labelledby="summary-title">
          <h2 id="summary-title">Summary</h2>
          <ErrorMessage error={detail.error} />
          {!d && !detail.error ? <Loading /> : null}
          {d ? (
            <DataTable
              caption="Comparison summary by category"
              className="category-table"
              columns={['Category', 'Count', 'Meaning']}
              rows={rows}
              empty="The application and the directory agree: nothing to report."
              row={([c, count, text]) => (
                <tr key={c}>
                  <th scope="row">{categoryLabel(c)}</th>
                  <td className="num">{formatNumber(count)}</td>
                  <td>{sentence(text)}</td>
                </tr>
              )}
            />
          ) : null}
        </section>
      ) : null}

      {latest?.status === 'done' && d ? (
        <section className="card" aria-labelledby="items-title">
          <h2 id="items-title">Items</h2>
          <div className="filters">
            <SelectField
              label="Category"
              value={category}
              onChange={setCategory}
              options={[['', 'All categories'] as const, ...present.map(([c, count]) => [c, `${categoryLabel(c)} (${formatNumber(count)})`] as const)]}
            />
          </div>
          <ComparisonItems key={`${latest.id}:${category}`} targetId={t.id} comparison={latest.id} category={category} />
        </section>
      ) : null}

      <Section title="Earlier comparisons">
        <ErrorMessage error={history.error} />
        {history.data ? (
          <DataTable
            caption="Comparisons of this target"
            columns={['Requested', 'Mode', 'Status', 'By', 'Ended']}
            rows={history.data.comparisons}
            empty="None yet."
            row={(c) => (
              <tr key={c.id}>
                <td className="nowrap">{formatDate(c.requestedAt)}</td>
                <td>{c.mode === 'fix' ? 'repair' : 'report'}</td>
                <td>
                  <Badge tone={c.status === 'done' ? 'good' : c.status === 'failed' ? 'bad' : 'info'}>{COMPARISON_STATUS[c.status] ?? c.status}</Badge>
                  {c.error ? <div className="sub">{c.error}</div> : null}
                </td>
                <td>{c.requestedBy}</td>
                <td className="nowrap">{formatDate(c.endedAt)}</td>
              </tr>
            )}
          />
        ) : (
          <Loading />
        )}
      </Section>
    </>
  );
}

const CLEANUP_TEXT: Record<string, string> = {
  deactivate: 'deactivates',
  delete: 'deletes',
  'remove-groups': 'removes the groups it added from',
};

// --------------------------------------------------------------------------------------------- parked

function ParkedTab({ target: t, reload }: { target: TargetDetail; reload: () => void }) {
  const { canChange } = useSession();
  const [tick, setTick] = useState(0);
  // read again with every refresh of the target: a retried change parked again leaves the count as it was
  const list = useLoad((signal) => targetApi.parked(t.id, { limit: 200 }, signal), [t, tick]);
  const action = useAction();
  const [done, setDone] = useState('');

  const retry = async (keys?: string[]) => {
    setDone('');
    const r = await action.run(() => targetApi.retry(t.id, keys));
    if (r) {
      setDone(r.retried === 0 ? 'Nothing was parked any more.' : `${formatNumber(r.retried)} queued again; they are tried in a moment.`);
      setTick((x) => x + 1);
      reload();
    }
  };

  const rows = list.data?.parked ?? [];
  return (
    <Section title="Parked" description="Users and groups whose delivery kept failing, or that the application refused. Each waits until it is retried or changes in the directory; the others are delivered meanwhile.">
      {canChange && rows.length ? (
        <div className="form-actions">
          <button type="button" onClick={() => void retry()} disabled={action.busy}>
            Retry all
          </button>
        </div>
      ) : null}
      <ErrorMessage error={action.error || list.error} />
      <div aria-live="polite">{done ? <Notice kind="success">{done}</Notice> : null}</div>
      {list.data ? (
        <DataTable
          caption="Parked users and groups"
          columns={['User or group', 'Code', 'Error', 'Attempts', 'Parked', canChange ? ACTIONS_COLUMN : null]}
          rows={rows}
          empty="Nothing is parked."
          row={(w) => {
            const name = w.name ?? `${w.id} (no longer in the directory)`;
            return (
              <tr key={w.key}>
                <td>
                  {w.entity === 'user' ? <Link to={`/directory/users/${encodeURIComponent(w.id)}`}>{name}</Link> : <Link to={`/directory/groups/${encodeURIComponent(w.id)}`}>{name}</Link>}
                  <div className="sub">{w.entity}</div>
                </td>
                <td>{w.code ? <Badge tone="bad">{w.code}</Badge> : '—'}</td>
                <td>{w.error ? sentence(w.error) : '—'}</td>
                <td className="num">{formatNumber(w.attempts)}</td>
                <td className="nowrap">
                  {formatDate(w.parkedAt)}
                  <div className="sub">queued {formatDate(w.since)}</div>
                </td>
                {canChange ? (
                  <td className="row-actions">
                    <button type="button" className="small" aria-label={`Retry ${w.name ?? w.id}`} onClick={() => void retry([w.key])} disabled={action.busy}>
                      Retry
                    </button>
                  </td>
                ) : null}
              </tr>
            );
          }}
        />
      ) : (
        <Loading />
      )}
      {rows.length >= 200 ? <p className="muted small">The first 200 are shown; Retry all retries every one.</p> : null}
    </Section>
  );
}

// ------------------------------------------------------------------------------------------- activity

const EVENT_TEXT: Record<string, string> = {
  created: 'User created',
  updated: 'User updated',
  renamed: 'User renamed',
  activated: 'User activated',
  deactivated: 'User deactivated',
  deleted: 'User deleted',
  'groups-added': 'Added to groups',
  'groups-removed': 'Removed from groups',
  'group-created': 'Group created',
  'group-adopted': 'Group adopted',
  'group-renamed': 'Group renamed',
  'group-deleted': 'Group deleted',
  'leads-handed-over': 'Leads handed over',
  parked: 'Parked',
};

function ActivityTab({ target: t }: { target: TargetDetail }) {
  const [search, setSearch] = useState('');
  const [older, setOlder] = useState<TargetEvent[]>([]);
  const [more, setMore] = useState(true);
  // the newest page follows the target's refreshes; older pages are added below on request
  const latest = useLoad((signal) => targetApi.events(t.id, { limit: 100, ...(search.trim() ? { search: search.trim() } : {}) }, signal), [t, search]);
  const action = useAction();
  useEffect(() => {
    setOlder([]);
    setMore(true);
  }, [search]);
  const rows = [...(latest.data?.events ?? []), ...older];
  const loadOlder = async () => {
    const last = rows[rows.length - 1];
    if (!last) return;
    const r = await action.run(() => targetApi.events(t.id, { limit: 100, before: last.seq, ...(search.trim() ? { search: search.trim() } : {}) }));
    if (r) {
      setOlder((o) => [...o, ...r.events]);
      if (r.events.length < 100) setMore(false);
    }
  };
  const app = targetKindLabel(t.kind);
  return (
    <Section title="Activity" description={`What usersync did in ${app}, newest first: users created, changed, deactivated or deleted, their groups, groups made or removed, and changes parked. Kept as long as the change feed.`}>
      <TextField label="Find a user or group" value={search} onChange={setSearch} />
      <ErrorMessage error={latest.error || action.error} />
      <DataTable
        caption="Target activity"
        columns={['When', 'What', 'User or group', 'Detail']}
        rows={rows}
        empty={search.trim() ? 'Nothing about that name.' : 'Nothing yet.'}
        row={(e) => (
          <tr key={e.seq}>
            <td>{formatDate(e.at)}</td>
            <td>{e.action === 'parked' ? <Badge tone="warn">{EVENT_TEXT[e.action]}</Badge> : (EVENT_TEXT[e.action] ?? e.action)}</td>
            <td>{e.subject}</td>
            <td>{e.detail}</td>
          </tr>
        )}
      />
      {rows.length >= 100 && more ? (
        <button type="button" onClick={() => void loadOlder()} disabled={action.busy}>
          {action.busy ? 'Loading…' : 'Show older'}
        </button>
      ) : null}
    </Section>
  );
}

// ------------------------------------------------------------------------------------------- settings

function SettingsTab({ target: t, reload }: { target: TargetDetail; reload: () => void }) {
  const { canChange } = useSession();
  const [name, setName] = useState(t.name);
  const [draft, setDraftState] = useState<TargetDraft>(() => draftFromSettings(t.settings));
  const [saved, setSaved] = useState<TargetDraft>(() => draftFromSettings(t.settings));
  const [secretStored, setSecretStored] = useState(t.settings.secret.set);
  const [secret, setSecret] = useState('');
  const [done, setDone] = useState('');
  const action = useAction();
  const [confirm, dialog] = useConfirm();
  const dirty = !!secret || name.trim() !== t.name || JSON.stringify(draft) !== JSON.stringify(saved);
  const setDraft = (d: TargetDraft) => {
    setDraftState(d);
    setDone('');
  };

  const save = async () => {
    setDone('');
    const r = await action.run(async () => {
      let s: TargetSettings;
      try {
        s = await targetApi.saveSettings(t.id, targetSettingsBody(draft, secret));
      } catch (e) {
        // the change would take managed users out of the scope: say how many, and save only if confirmed
        if (!(e instanceof ApiError && e.code === 'confirm_scope_change')) throw e;
        const d = e.details as { affected: number; leavingExamples: string[] };
        const ok = await confirm({
          title: `Change the scope for ${formatNumber(d.affected)} managed user${d.affected === 1 ? '' : 's'}?`,
          message: (
            <>
              <p>{e.message.replace(/ Save again with .*$/, '')}</p>
              {d.leavingExamples.length ? <p className="muted">For example: {d.leavingExamples.join(', ')}.</p> : null}
            </>
          ),
          confirmLabel: 'Save and apply',
          danger: true,
        });
        if (!ok) return undefined;
        s = await targetApi.saveSettings(t.id, targetSettingsBody(draft, secret), d.affected);
      }
      if (name.trim() && name.trim() !== t.name) await targetApi.update(t.id, { name: name.trim() });
      return s;
    });
    if (r) {
      const next = draftFromSettings(r);
      setSaved(next);
      setDraftState(next);
      setSecret('');
      setSecretStored(r.secret.set);
      setDone(t.phase === 'active' ? 'The settings are saved. A change of scope or policy looks at every user and group again.' : 'The settings are saved.');
      reload();
    }
  };

  return (
    <form
      onSubmit={(e) => {
        e.preventDefault();
        void save();
      }}
    >
      {dialog}
      <Section title="Target">
        <fieldset className="plain" disabled={!canChange}>
          <div className="field-row">
            <TextField label="Target name" value={name} onChange={setName} required />
            <TextField label="Target ID" value={t.id} onChange={() => {}} readOnly mono hint="Used in URLs and on the command line; it cannot change." />
          </div>
        </fieldset>
      </Section>
      <Section title="Settings">
        <IssuesContext.Provider value={action.issues}>
          <TargetSettingsFields kind={t.kind} draft={draft} setDraft={setDraft} secret={secret} setSecret={setSecret} secretStored={secretStored} disabled={!canChange} />
        </IssuesContext.Provider>
      </Section>
      <ErrorMessage error={action.error} issues={action.issues} />
      <div aria-live="polite">{done && !dirty ? <Notice kind="success">{done}</Notice> : null}</div>
      {canChange ? (
        <div className="form-actions">
          <button type="submit" className="primary" disabled={!dirty || action.busy}>
            {action.busy ? 'Saving…' : 'Save settings'}
          </button>
          <button
            type="button"
            disabled={!dirty || action.busy}
            onClick={() => {
              setDraftState(structuredClone(saved));
              setName(t.name);
              setSecret('');
              action.clear();
            }}
          >
            Discard changes
          </button>
        </div>
      ) : null}
      {t.phase !== 'active' ? <p className="hint">Nothing is sent until the first comparison has been reviewed and adopted.</p> : null}
    </form>
  );
}
