// The application: sign-in, then a sidebar with the sections and the page of the address.

import type { ErrorInfo, ReactNode } from 'react';
import { Component, useEffect } from 'react';
import { BrowserRouter, Navigate, NavLink, Outlet, Route, Routes, useLocation } from 'react-router';
import { ErrorMessage, Loading } from './components.tsx';
import { SessionProvider, useSession, useSessionLoader } from './session.tsx';
import { LoginPage } from './pages/Login.tsx';
import { ChangePasswordPage } from './pages/ChangePassword.tsx';
import { ConnectorsPage } from './pages/Connectors.tsx';
import { NewConnectorPage } from './pages/NewConnector.tsx';
import { ConnectorPage } from './pages/Connector.tsx';
import { RunsPage } from './pages/Runs.tsx';
import { RunPage } from './pages/Run.tsx';
import { DirectoryPage } from './pages/Directory.tsx';
import { UserPage } from './pages/User.tsx';
import { GroupPage } from './pages/Group.tsx';
import { AuditPage } from './pages/Audit.tsx';
import { SettingsPage } from './pages/Settings.tsx';
import { TargetsPage } from './pages/Targets.tsx';
import { NewTargetPage } from './pages/NewTarget.tsx';
import { TargetPage } from './pages/Target.tsx';

export function App() {
  return (
    <BrowserRouter>
      <Root />
    </BrowserRouter>
  );
}

function Root() {
  const [status, apply, reload, signOut] = useSessionLoader();
  if (status.state === 'loading') return <Loading what="Starting" />;
  if (status.state === 'error') {
    return (
      <main className="login">
        <h1>usersync</h1>
        <ErrorMessage error={status.message} />
        <button type="button" onClick={() => void reload()}>
          Try again
        </button>
      </main>
    );
  }
  if (status.state === 'signed-out') return <LoginPage onSignedIn={apply} notice={status.reason} />;
  const { session } = status;
  return (
    <SessionProvider session={session} signOut={signOut} refresh={reload}>
      {session.account.mustChangePassword ? (
        <main className="login" id="main">
          <ChangePasswordPage forced />
        </main>
      ) : (
        <Routes>
          <Route element={<Layout />}>
            <Route index element={<Navigate to="/connectors" replace />} />
            <Route path="connectors" element={<ConnectorsPage />} />
            <Route path="connectors/new" element={<NewConnectorPage />} />
            <Route path="connectors/:id" element={<ConnectorPage />} />
            <Route path="connectors/:id/:tab" element={<ConnectorPage />} />
            <Route path="targets" element={<TargetsPage />} />
            <Route path="targets/new" element={<NewTargetPage />} />
            <Route path="targets/:id" element={<TargetPage />} />
            <Route path="targets/:id/:tab" element={<TargetPage />} />
            <Route path="runs" element={<RunsPage />} />
            <Route path="runs/:id" element={<RunPage />} />
            <Route path="directory" element={<DirectoryPage />} />
            <Route path="directory/users/:id" element={<UserPage />} />
            <Route path="directory/groups/:id" element={<GroupPage />} />
            <Route path="audit" element={<AuditPage />} />
            <Route path="settings" element={<Navigate to="/settings/accounts" replace />} />
            <Route path="settings/:tab" element={<SettingsPage />} />
            <Route path="account/password" element={<ChangePasswordPage />} />
            <Route path="*" element={<NotFound />} />
          </Route>
        </Routes>
      )}
    </SessionProvider>
  );
}

const NAV: [string, string][] = [
  ['/connectors', 'Connectors'],
  ['/targets', 'Targets'],
  ['/runs', 'Sync history'],
  ['/directory', 'Directory'],
  ['/audit', 'Audit log'],
  ['/settings', 'Settings'],
];

function Layout() {
  const { account, signOut } = useSession();
  const location = useLocation();
  useEffect(() => {
    // a new page: start at its top, and let screen readers know
    window.scrollTo(0, 0);
  }, [location.pathname]);
  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <aside className="sidebar">
        <p className="brand">
          <span aria-hidden="true" className="brand-mark">
            ⇄
          </span>{' '}
          usersync
        </p>
        <nav aria-label="Main">
          <ul>
            {NAV.map(([to, label]) => (
              <li key={to}>
                <NavLink to={to}>{label}</NavLink>
              </li>
            ))}
          </ul>
        </nav>
        <div className="account">
          <p>
            <span className="account-name">{account.username}</span>
            <span className="account-role">{account.role === 'administrator' ? 'Administrator' : 'Auditor (read only)'}</span>
          </p>
          <NavLink to="/account/password">Change password</NavLink>
          <button type="button" className="link-button" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </aside>
      <main id="main" tabIndex={-1}>
        <PageErrorBoundary key={location.pathname.split('/').slice(0, 3).join('/')}>
          <Outlet />
        </PageErrorBoundary>
      </main>
    </div>
  );
}

/** A page that fails to render says so in a sentence; the rest of the application keeps working. */
class PageErrorBoundary extends Component<{ children: ReactNode }, { failed: boolean }> {
  override state = { failed: false };

  static getDerivedStateFromError(): { failed: boolean } {
    return { failed: true };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error('the page failed to render', error, info.componentStack);
  }

  override render(): ReactNode {
    if (!this.state.failed) return this.props.children;
    return (
      <div className="error" role="alert">
        <p>This page ran into a problem and cannot be shown. Reload it; if it happens again, the service's log may say more.</p>
        <button type="button" onClick={() => window.location.reload()}>
          Reload the page
        </button>
      </div>
    );
  }
}

function NotFound() {
  return (
    <>
      <h1>Page not found</h1>
      <p>
        There is no page at this address. <NavLink to="/connectors">Go to the connectors.</NavLink>
      </p>
    </>
  );
}
