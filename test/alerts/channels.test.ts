// The webhook channel against real HTTP(S) servers: the signature a receiver checks, and each failure an
// administrator may meet, as a sentence: no answer in time, a redirect, an untrusted certificate, an
// unknown host. Nothing of the URL's path (which may hold a token) is repeated in a sentence.

import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { AlertRecord } from '../../src/alerts/channels.ts';
import { emailText, sendWebhook, signBody, webhookBody } from '../../src/alerts/channels.ts';
import { generateCertificate } from '../support/graph-emulator/index.ts';
import { startWebhookReceiver } from './support.ts';

const alert: AlertRecord = {
  seq: 7,
  at: '2026-11-22T12:00:00.000Z',
  kind: 'held-run',
  connectorId: 'entra',
  subject: 'Connector "Entra – Zürich": 3 changes held for approval',
  message: 'Run r1 went over the deletion limit.',
  details: { runId: 'r1', held: 3 },
};

/** How a receiver checks a request: the HMAC of the raw body, compared in constant time. */
function verify(secret: string, rawBody: string, header: string | undefined): boolean {
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(rawBody).digest('hex')}`);
  const got = Buffer.from(header ?? '');
  return got.length === expected.length && timingSafeEqual(got, expected);
}

describe('the webhook channel', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    await Promise.all(closers.splice(0).map((c) => c()));
  });

  async function serve(handler: http.RequestListener, tls?: { cert: string; key: string }): Promise<string> {
    const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    );
    return `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('sends the documented JSON, signed so that a receiver can check it, and unsigned without a secret', async () => {
    const hook = await startWebhookReceiver();
    closers.push(() => hook.close());
    expect(await sendWebhook({ url: hook.url, secret: 's3cret' }, alert)).toEqual({ ok: true });
    expect(await sendWebhook({ url: hook.url, secret: null }, alert)).toEqual({ ok: true });
    const [signed, unsigned] = hook.requests;
    expect(JSON.parse(signed!.body)).toEqual({ kind: 'held-run', subject: alert.subject, message: alert.message, connectorId: 'entra', details: { runId: 'r1', held: 3 }, at: alert.at, seq: 7, service: 'usersync' });
    expect(signed!.body).toBe(webhookBody(alert));
    expect(verify('s3cret', signed!.body, signed!.headers['x-usersync-signature'] as string)).toBe(true);
    expect(verify('other', signed!.body, signed!.headers['x-usersync-signature'] as string)).toBe(false);
    expect(verify('s3cret', signed!.body.replace('3 changes', '9 changes'), signed!.headers['x-usersync-signature'] as string)).toBe(false);
    expect(signed!.headers['x-usersync-signature']).toBe(signBody('s3cret', signed!.body));
    expect(signed!.headers['x-usersync-timestamp']).toMatch(/^\d{10}$/);
    expect(unsigned!.headers['x-usersync-signature']).toBeUndefined();
    expect(unsigned!.headers['x-usersync-timestamp']).toBeUndefined();
    expect(unsigned!.headers['content-type']).toBe('application/json');
  });

  it('gives up on a receiver that does not answer in time', async () => {
    const base = await serve(() => {
      // never answers
    });
    const t0 = Date.now();
    expect(await sendWebhook({ url: `${base}/hook/T0KEN`, secret: null }, alert, { timeoutMs: 300 })).toEqual({ ok: false, error: `the webhook at ${new URL(base).host} did not answer within 0.3 seconds` });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('does not follow a redirect, and says where it points (without its path)', async () => {
    const base = await serve((_req, res) => {
      res.writeHead(302, { location: 'https://elsewhere.example.com/new/T0KEN' });
      res.end();
    });
    const r = await sendWebhook({ url: `${base}/hook/T0KEN`, secret: null }, alert);
    expect(r).toEqual({ ok: false, error: `the webhook at ${new URL(base).host} answered HTTP 302 (a redirect to https://elsewhere.example.com/…); enter the address it redirects to` });
  });

  it('refuses a certificate it does not trust, and names an unknown host', async () => {
    const base = await serve((_req, res) => res.end(), await generateCertificate());
    const r = await sendWebhook({ url: `${base}/hook`, secret: null }, alert);
    expect(r).toEqual({ ok: false, error: `the TLS certificate of the webhook at ${new URL(base).host} is not trusted (DEPTH_ZERO_SELF_SIGNED_CERT)` });
    expect(await sendWebhook({ url: 'https://no-such-host.invalid/hook/T0KEN', secret: null }, alert)).toEqual({ ok: false, error: 'the host name no-such-host.invalid of the webhook was not found (DNS)' });
  });

  it('writes the e-mail body as plain text with what identifies the alert', () => {
    expect(emailText(alert)).toBe('Run r1 went over the deletion limit.\n\nConnector: entra\nAlert: held-run (#7), raised 2026-11-22T12:00:00.000Z\n\n-- \nusersync\n');
  });
});
