/**
 * Mutual TLS in front of a Temporal dev server, which takes no TLS itself: a real TLS endpoint
 * (node:tls, HTTP/2 by ALPN) that requires a client certificate signed by its CA and passes the
 * decrypted gRPC stream to the dev server, as a TLS-terminating ingress would. With it, a worker
 * connects with the credentials production uses (CA, client certificate and key, API key).
 *
 * The certificates are made by the openssl command line: a CA, a server certificate for localhost
 * and 127.0.0.1, and a client certificate.
 */
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer } from 'node:tls';
import type { Server, TLSSocket } from 'node:tls';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface TemporalCredentials {
  caFile: string;
  certFile: string;
  keyFile: string;
  serverName: string;
}

/** Writes a CA and, signed by it, a server and a client certificate into `dir`. */
export async function makeCredentials(
  dir: string,
): Promise<TemporalCredentials & { serverCertFile: string; serverKeyFile: string }> {
  const path = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => run('openssl', args);
  await openssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '2',
    '-subj',
    '/CN=bluegreen test CA',
    '-keyout',
    path('ca.key'),
    '-out',
    path('ca.crt'),
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  );
  for (const [name, extensions] of [
    ['server', 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n'],
    ['client', 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n'],
  ] as const) {
    writeFileSync(path(`${name}.ext`), extensions);
    await openssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=bluegreen ${name}`,
      '-keyout',
      path(`${name}.key`),
      '-out',
      path(`${name}.csr`),
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      path(`${name}.csr`),
      '-CA',
      path('ca.crt'),
      '-CAkey',
      path('ca.key'),
      '-CAcreateserial',
      '-days',
      '2',
      '-extfile',
      path(`${name}.ext`),
      '-out',
      path(`${name}.crt`),
    );
  }
  return {
    caFile: path('ca.crt'),
    certFile: path('client.crt'),
    keyFile: path('client.key'),
    serverCertFile: path('server.crt'),
    serverKeyFile: path('server.key'),
    serverName: 'localhost',
  };
}

export class TemporalTlsTerminator {
  /** Connections refused for want of a valid client certificate. */
  refused = 0;
  /** Connections that presented one and were passed on. */
  accepted = 0;

  private readonly sockets = new Set<TLSSocket>();

  private constructor(private readonly server: Server) {}

  /** Listens on a free loopback port; each authenticated connection is piped to `upstreamPort`. */
  static async start({
    upstreamPort,
    caFile,
    serverCertFile,
    serverKeyFile,
  }: {
    upstreamPort: number;
    caFile: string;
    serverCertFile: string;
    serverKeyFile: string;
  }): Promise<TemporalTlsTerminator> {
    let terminator: TemporalTlsTerminator | null = null;
    const server = createServer(
      {
        ca: readFileSync(caFile),
        cert: readFileSync(serverCertFile),
        key: readFileSync(serverKeyFile),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ['h2'],
      },
      (socket: TLSSocket) => {
        terminator!.accepted += 1;
        terminator!.sockets.add(socket);
        socket.on('close', () => terminator!.sockets.delete(socket));
        const upstream = connect(upstreamPort, '127.0.0.1');
        socket.pipe(upstream).pipe(socket);
        const close = () => {
          socket.destroy();
          upstream.destroy();
        };
        socket.on('error', close);
        upstream.on('error', close);
        socket.on('close', close);
        upstream.on('close', close);
      },
    );
    terminator = new TemporalTlsTerminator(server);
    server.on('tlsClientError', () => (terminator!.refused += 1));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return terminator;
  }

  get address(): string {
    return `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
