// One connector, in the sections administrators know: Configuration, User sync settings, Group sync
// settings, Preview, Sync history; with Sync now and its live progress.

import { useEffect, useMemo, useState } from 'react';
import { NavLink, useLocation, useNavigate, useParams } from 'react-router';
import type { ConnectorDetail, ConnectorSettings, SettingsIssue } from '../api.ts';
import { ApiError, api, errorMessage } from '../api.ts';
import { Badge, ErrorMessage, IssuesContext, Loading, Notice, PageHeader, useAction, useConfirm, useLoad } from '../components.tsx';
import { KIND_LABELS } from '../format.ts';
import { localIssues } from '../forms/rules.ts';
import { RunProgressPanel } from '../progress.tsx';
import { useSession } from '../session.tsx';
import { ConfigurationTab } from './connector/Configuration.tsx';
import { UserSettingsTab } from './connector/UserSettings.tsx';
import { GroupSettingsTab } from './connector/GroupSettings.tsx';
import { PreviewTab } from './connector/Preview.tsx';
import { HistoryTab } from './connector/History.tsx';

const TABS: [string, string][] = [
  ['configuration', 'Configuration'],
  ['users', 'User sync settings'],
  ['groups', 'Group sync settings'],
  ['preview', 'Preview'],
  ['history', 'Sync history'],
];

/** The settings being edited, shared by the settings tabs and the preview. */
export interface SettingsDraft {
  saved: ConnectorSettings;
  draft: ConnectorSettings;
  setDraft: (s: ConnectorSettings) => void;
  dirty: boolean;
  /** problems found in the page and by the service */
  issues: SettingsIssue[];
  localIssues: SettingsIssue[];
  setServerIssues: (i: SettingsIssue[]) => void;
  save: () => Promise<boolean>;
  saving: boolean;
  saveError: string;
  saved_: string;
  discard: () => void;
}

export function ConnectorPage() {
  const { id = '', tab = 'configuration' } = useParams();
  const { canChange } = useSession();
  const navigate = useNavigate();
  const location = useLocation();
  const connector = useLoad((signal) => api.get<ConnectorDetail>(`/connectors/${encodeURIComponent(id)}`, undefined, signal), [id]);
  const [activeRun, setActiveRun] = useState<string | null>(null);
  const [historyTick, setHistoryTick] = useState(0);
  const [notice, setNotice] = useState('');
  const [confirm, dialog] = useConfirm();
  const action = useAction();

  // the settings being edited
  const [saved, setSaved] = useState<ConnectorSettings>();
  const [draft, setDraftState] = useState<ConnectorSettings>();
  const [serverIssues, setServerIssues] = useState<SettingsIssue[]>([]);
  const [saving, setSaving] = useState(false);
  const [settingsVersion, setSettingsVersion] = useState<string>();
  const [saveError, setSaveError] = useState('');
  const [savedNote, setSavedNote] = useState('');

  useEffect(() => {
    const c = connector.data;
    if (!c) return;
    setSaved(c.settings);
    setSettingsVersion(c.settingsVersion);
    setDraftState((d) => d ?? structuredClone(c.settings));
    if (c.currentRun) setActiveRun((r) => r ?? c.currentRun ?? null);
  }, [connector.data]);

  const local = useMemo(() => (draft ? localIssues(draft) : []), [draft]);
  const dirty = !!draft && !!saved && JSON.stringify(draft) !== JSON.stringify(saved);
  const dirtyTab: Record<string, boolean> = {
    users: !!draft && !!saved && JSON.stringify([draft.user, draft.safety]) !== JSON.stringify([saved.user, saved.safety]),
    groups: !!draft && !!saved && JSON.stringify(draft.group) !== JSON.stringify(saved.group),
  };

  const settings: SettingsDraft | undefined =
    saved && draft
      ? {
          saved,
          draft,
          setDraft: (s) => {
            setDraftState(s);
            setServerIssues([]);
            setSaveError('');
            setSavedNote('');
          },
          dirty,
          issues: [...local, ...serverIssues],
          localIssues: local,
          setServerIssues,
          saving,
          saveError,
          saved_: savedNote,
          discard: () => {
            setDraftState(structuredClone(saved));
            setServerIssues([]);
            setSaveError('');
          },
          save: async () => {
            setSaving(true);
            setSaveError('');
            setSavedNote('');
            try {
              const r = await api.put<{ settings: ConnectorSettings; settingsVersion: string }>(
                `/connectors/${encodeURIComponent(id)}/settings`,
                draft,
                { wait: false },
                settingsVersion ? { 'if-match': `"${settingsVersion}"` } : undefined,
              );
              setSaved(r.settings);
              setSettingsVersion(r.settingsVersion);
              setDraftState(structuredClone(r.settings));
              setServerIssues([]);
              setSavedNote('The settings are saved. The directory is being re-evaluated with them; the run shows in the sync history.');
              setHistoryTick((t) => t + 1);
              return true;
            } catch (e) {
              setSaveError(errorMessage(e));
              if (e instanceof ApiError) setServerIssues(e.issues);
              return false;
            } finally {
              setSaving(false);
            }
          },
        }
      : undefined;

  if (connector.error && !connector.data) {
    return (
      <>
        <PageHeader title="Connector" back={{ to: '/connectors', label: 'Connectors' }} />
        <ErrorMessage error={connector.error} />
      </>
    );
  }
  const c = connector.data;
  if (!c || !settings) return <Loading />;

  const syncNow = async () => {
    setNotice('');
    await action.run(async () => {
      try {
        const r = await api.post<{ runId?: string; status: string }>(`/connectors/${encodeURIComponent(id)}/sync`, {}, { wait: false });
        if (r.runId) setActiveRun(r.runId);
        else {
          setNotice('The directory is being re-evaluated from what the identity provider has sent; the run shows in the sync history.');
          setHistoryTick((t) => t + 1);
        }
      } catch (e) {
        // already running: follow that run
        const running = e instanceof ApiError && e.code === 'busy' ? (e.details as { runId?: string | null } | undefined)?.runId : undefined;
        if (running) {
          setActiveRun(running);
          setNotice('This connector was already running; here is that run.');
        } else throw e;
      }
    });
  };

  const remove = async () => {
    const ok = await confirm({
      title: `Delete the connector ${c.name}?`,
      message: (
        <p>
          Its mirror and its tokens go; the directory users and groups it brought stay. {c.kind === 'scim' ? 'The identity provider will get 401 from its SCIM URL.' : ''} This cannot be undone.
        </p>
      ),
      confirmLabel: 'Delete connector',
      danger: true,
    });
    if (!ok) return;
    const done = await action.run(async () => {
      await api.del(`/connectors/${encodeURIComponent(id)}`);
      return true;
    });
    if (done) navigate('/connectors');
  };

  const created = (location.state as { created?: boolean } | null)?.created;

  return (
    <>
      <PageHeader
        title={
          <>
            {c.name} <Badge tone="info">{KIND_LABELS[c.kind] ?? c.kind}</Badge> {c.enabled ? null : <Badge tone="warn">disabled</Badge>}
          </>
        }
        back={{ to: '/connectors', label: 'Connectors' }}
      >
        {canChange ? (
          <>
            <button type="button" className="primary" onClick={() => void syncNow()} disabled={action.busy || !c.enabled || !!activeRun}>
              Sync now
            </button>
            <button type="button" className="danger-outline" onClick={() => void remove()} disabled={action.busy}>
              Delete
            </button>
          </>
        ) : null}
      </PageHeader>
      {dialog}
      {created ? <Notice kind="success">The connector is created. Test its connection below, then look at its user and group sync settings.</Notice> : null}
      <ErrorMessage error={action.error} />
      {notice ? <Notice>{notice}</Notice> : null}
      {activeRun ? (
        <RunProgressPanel
          key={activeRun}
          runId={activeRun}
          onEnd={() => {
            setHistoryTick((t) => t + 1);
            connector.reload();
          }}
        />
      ) : null}
      {activeRun ? (
        <p>
          <button type="button" className="link-button" onClick={() => setActiveRun(null)}>
            Hide the progress
          </button>
        </p>
      ) : null}

      <nav className="tabs" aria-label="Connector sections">
        <ul>
          {TABS.map(([t, label]) => (
            <li key={t}>
              <NavLink to={`/connectors/${encodeURIComponent(id)}/${t}`} className={t === tab ? 'active' : undefined} aria-current={t === tab ? 'page' : undefined}>
                {label}
                {dirtyTab[t] ? <span className="dirty-dot" aria-label="(unsaved changes)" /> : null}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>

      <IssuesContext.Provider value={settings.issues}>
        {tab === 'configuration' ? <ConfigurationTab connector={c} onChanged={connector.reload} /> : null}
        {tab === 'users' ? <UserSettingsTab settings={settings} connectorId={id} /> : null}
        {tab === 'groups' ? <GroupSettingsTab settings={settings} connectorId={id} /> : null}
        {tab === 'preview' ? <PreviewTab settings={settings} connectorId={id} /> : null}
        {tab === 'history' ? <HistoryTab connectorId={id} tick={historyTick} /> : null}
        {!TABS.some(([t]) => t === tab) ? <p>There is no such section. Choose one above.</p> : null}
      </IssuesContext.Provider>
    </>
  );
}
