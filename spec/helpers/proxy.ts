/**
 * A reverse proxy in front of a real registry, on loopback, that can inject faults: answer a
 * request itself (500, 429 with Retry-After, 503), cut a request body or a response body after
 * some bytes (a connection reset), rewrite Location headers to relative form, redirect blob
 * downloads elsewhere. It can also terminate TLS (requiring client certificates).
 */
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';

/** What the proxy does with one request. */
export type Action =
  | { kind: 'forward' }
  | { kind: 'respond'; status: number; headers?: Record<string, string>; body?: string }
  /** Forward, but reset the connection once this many request-body bytes went through. */
  | { kind: 'reset-request'; after: number }
  /** Forward, but reset the connection once this many response-body bytes went through. */
  | { kind: 'reset-response'; after: number };

export interface ProxyRequest { method: string; url: string; headers: http.IncomingHttpHeaders }

export interface ProxyOptions {
  /** The registry, `127.0.0.1:PORT` (plain HTTP). */
  target: string;
  /** Decide per request (default: forward). */
  rule?: ((req: ProxyRequest) => Action) | undefined;
  /** Rewrite absolute Location headers to paths (exercises relative Location handling). */
  relativeLocations?: boolean | undefined;
  /** Serve HTTPS (terminating TLS; the registry is told the scheme with X-Forwarded-Proto). */
  tls?: { key: string | undefined; cert: string; ca?: string; requireClientCert?: boolean };
  /** Change response headers before they are sent (e.g. a redirect). Return undefined to keep them. */
  rewriteResponse?: ((req: ProxyRequest, status: number, headers: http.IncomingHttpHeaders) => { status: number; headers: http.OutgoingHttpHeaders } | undefined) | undefined;
}

export interface Proxy {
  host: string;
  port: number;
  /** Every request seen: method, path and what was done. */
  log: Array<{ method: string; url: string; action: Action['kind']; headers: http.IncomingHttpHeaders; status?: number }>;
  close(): Promise<void>;
}

export async function startProxy(opts: ProxyOptions): Promise<Proxy> {
  const log: Proxy['log'] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const info: ProxyRequest = { method: req.method!, url: req.url!, headers: req.headers };
    const action = opts.rule?.(info) ?? { kind: 'forward' as const };
    const entry: Proxy['log'][number] = { method: info.method, url: info.url, action: action.kind, headers: req.headers };
    log.push(entry);
    if (action.kind === 'respond') {
      req.resume();
      entry.status = action.status;
      res.writeHead(action.status, { 'content-type': 'application/json', ...action.headers });
      res.end(action.body ?? JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: `injected ${action.status}` }] }));
      return;
    }
    const headers = { ...req.headers };
    if (opts.tls) headers['x-forwarded-proto'] = 'https';
    const [host, port] = opts.target.split(':');
    const up = http.request({ host, port: Number(port), method: req.method, path: req.url, headers }, (ur) => {
      let h: http.OutgoingHttpHeaders = { ...ur.headers };
      let status = ur.statusCode!;
      if (opts.relativeLocations && typeof h.location === 'string' && /^https?:\/\//.test(h.location)) {
        const u = new URL(h.location);
        h.location = u.pathname + u.search;
      }
      const re = opts.rewriteResponse?.(info, status, ur.headers);
      if (re) {
        status = re.status;
        h = re.headers;
      }
      entry.status = status;
      res.writeHead(status, h);
      if (action.kind === 'reset-response') {
        let n = 0;
        ur.on('data', (c: Buffer) => {
          n += c.length;
          if (n > action.after) {
            res.write(c.subarray(0, c.length - (n - action.after)));
            res.socket?.destroy();
            ur.destroy();
            return;
          }
          res.write(c);
        });
        ur.on('end', () => res.end());
      } else ur.pipe(res);
    });
    up.on('error', () => res.socket?.destroy());
    if (action.kind === 'reset-request') {
      let n = 0;
      req.on('data', (c: Buffer) => {
        n += c.length;
        if (n > action.after) {
          up.write(c.subarray(0, c.length - (n - action.after)));
          req.socket.destroy();
          up.destroy();
          return;
        }
        up.write(c);
      });
      req.on('end', () => up.end());
    } else req.pipe(up);
  };
  const server = opts.tls
    ? https.createServer({ key: opts.tls.key, cert: opts.tls.cert, ca: opts.tls.ca, requestCert: !!opts.tls.requireClientCert, rejectUnauthorized: !!opts.tls.requireClientCert }, handler)
    : http.createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`, port, log,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections?.();
      server.close(() => r());
    }),
  };
}
