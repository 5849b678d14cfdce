// Settings: admin accounts (administrators only), API tokens, alerts.

import { Navigate, NavLink, useParams } from 'react-router';
import { PageHeader } from '../components.tsx';
import { useSession } from '../session.tsx';
import { AccountsSettings } from './settings/Accounts.tsx';
import { AlertsSettings } from './settings/Alerts.tsx';
import { ApiTokensSettings } from './settings/ApiTokens.tsx';

export function SettingsPage() {
  const { tab = 'accounts' } = useParams();
  const { account } = useSession();
  const admin = account.role === 'administrator';
  const tabs: [string, string][] = [...(admin ? [['accounts', 'Accounts'] as [string, string]] : []), ['tokens', 'API tokens'], ['alerts', 'Alerts']];
  if (!tabs.some(([t]) => t === tab)) return <Navigate to={`/settings/${tabs[0]![0]}`} replace />;
  return (
    <>
      <PageHeader title="Settings" />
      <nav className="tabs" aria-label="Settings sections">
        <ul>
          {tabs.map(([t, label]) => (
            <li key={t}>
              <NavLink to={`/settings/${t}`} className={t === tab ? 'active' : undefined} aria-current={t === tab ? 'page' : undefined}>
                {label}
              </NavLink>
            </li>
          ))}
        </ul>
      </nav>
      {tab === 'accounts' ? <AccountsSettings /> : null}
      {tab === 'tokens' ? <ApiTokensSettings /> : null}
      {tab === 'alerts' ? <AlertsSettings /> : null}
    </>
  );
}
