// The audit log: who changed what, when.

import { useState } from 'react';
import type { AuditEntry } from '../api.ts';
import { api } from '../api.ts';
import { DataTable, ErrorMessage, Loading, PageHeader, SelectField, useLoad } from '../components.tsx';
import { formatDate } from '../format.ts';

/** Flat details as "key: value" pairs; nested values (settings before and after) are named, and shown on request. */
function describeDetails(details: unknown): { text: string; nested: boolean } {
  if (details === null || details === undefined) return { text: '', nested: false };
  if (typeof details !== 'object' || Array.isArray(details)) return { text: JSON.stringify(details), nested: false };
  const parts: string[] = [];
  let nested = false;
  for (const [k, v] of Object.entries(details as Record<string, unknown>)) {
    if (v !== null && typeof v === 'object') {
      nested = true;
      parts.push(k);
    } else parts.push(`${k}: ${String(v)}`);
  }
  return { text: parts.join(', '), nested };
}

export function AuditPage() {
  const [limit, setLimit] = useState<'100' | '500' | '1000'>('100');
  const [filter, setFilter] = useState('');
  // the service searches the whole log, not only the entries shown
  const audit = useLoad((signal) => api.get<{ entries: AuditEntry[] }>('/audit', { limit, ...(filter.trim() ? { search: filter.trim() } : {}) }, signal), [limit, filter]);
  const shown = audit.data?.entries ?? [];
  return (
    <>
      <PageHeader title="Audit log">
        <button type="button" onClick={audit.reload} disabled={audit.loading}>
          Refresh
        </button>
      </PageHeader>
      <p className="muted lead">Every change made by an administrator, a token or the command line.</p>
      <div className="filters">
        <div className="field">
          <label htmlFor="audit-filter">Filter by actor, action or target</label>
          <input id="audit-filter" type="search" value={filter} onChange={(e) => setFilter(e.target.value)} />
        </div>
        <SelectField
          label="Entries"
          value={limit}
          onChange={setLimit}
          options={[
            ['100', 'The newest 100'],
            ['500', 'The newest 500'],
            ['1000', 'The newest 1,000'],
          ]}
        />
      </div>
      <ErrorMessage error={audit.error} />
      {audit.data ? (
        <DataTable
          caption="Audit log"
          columns={['When', 'Who', 'Action', 'Target', 'Details']}
          rows={shown}
          empty="No entries."
          row={(e) => {
            const { text, nested } = describeDetails(e.details);
            return (
              <tr key={e.seq}>
                <td className="nowrap">{formatDate(e.at)}</td>
                <td>{e.actor}</td>
                <td className="mono">{e.action}</td>
                <td className="mono">{e.target ?? '—'}</td>
                <td className="details-cell">
                  {nested ? (
                    <details>
                      <summary>{text}</summary>
                      <pre className="json">{JSON.stringify(e.details, null, 2)}</pre>
                    </details>
                  ) : (
                    text
                  )}
                </td>
              </tr>
            );
          }}
        />
      ) : (
        <Loading />
      )}
    </>
  );
}
