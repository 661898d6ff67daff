/**
 * TEST DOUBLE, the one fault source the project allows itself: an HTTP proxy between the worker
 * and the real API server that answers some requests itself with faults the real server will not
 * produce on demand. Everything it does not fault is forwarded, unchanged, to the real server.
 *
 * - Transient faults, a share of all requests drawn from a seeded generator: 500, 429 (with
 *   Retry-After), a connection reset, and for writes also 409 (as the real server answers a
 *   conflicting write) and a lost answer: the connection reset after the server made the change.
 * - Optionally, the first try of every write (each later try passes), alternating 409 and a lost
 *   answer: the writes the seeded 20 % would reach only rarely, made certain.
 * - Permanent faults: every request matching a method and path is answered with one status
 *   (403, 404, 422), with the body the real server would send (a `Status` object).
 * - An outage: while `unreachable`, every request is answered 502, as a load balancer in front of
 *   an API server that is down answers.
 */
import { createServer, request as httpsRequest } from 'node:https';
import type { Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { WRITES, WriteTap } from './write-tap.js';
import { join } from 'node:path';

/** 'reset' closes the connection before the request reaches the server; 'lost-answer' after it was answered. */
export type TransientFault = 500 | 429 | 409 | 'reset' | 'lost-answer';
export interface PermanentFault {
  method: string;
  path: RegExp;
  status: 403 | 404 | 422;
}

export interface FaultCounts {
  requests: number;
  transient: Record<string, number>;
  permanent: number;
}

const REASONS: Record<number, string> = {
  403: 'Forbidden',
  404: 'NotFound',
  409: 'Conflict',
  422: 'Invalid',
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'BadGateway',
};

export class FaultInjectingKubeProxy {
  /** Tells the test of each write as it arrives, and can hold writes (an API slow to answer). */
  readonly tap = new WriteTap();
  transientRate = 0;
  faultFirstTryOfWrites = false;
  unreachable = false;
  permanent: PermanentFault[] = [];
  counts: FaultCounts = { requests: 0, transient: {}, permanent: 0 };
  private readonly random: () => number;
  /** Writes whose last try was faulted, by method and path: their next try passes. */
  private readonly faultedWrites = new Set<string>();
  private writeFaults = 0;

  private constructor(
    private readonly server: Server,
    private readonly upstream: URL,
    private readonly ca: Buffer,
    seed: number,
  ) {
    this.random = mulberry32(seed);
  }

  /**
   * Listens on a free loopback port and forwards to `upstream`, both over TLS: it serves the API
   * server's own certificate (`certFile`, `keyFile`), so clients trust it with the same CA.
   */
  static async start({
    upstream,
    caFile,
    certFile,
    keyFile,
    seed = 1,
  }: {
    upstream: string;
    caFile: string;
    certFile: string;
    keyFile: string;
    seed?: number;
  }): Promise<FaultInjectingKubeProxy> {
    let proxy: FaultInjectingKubeProxy | null = null;
    const server = createServer({ cert: readFileSync(certFile), key: readFileSync(keyFile) }, (req, res) =>
      proxy!.handle(req, res),
    );
    proxy = new FaultInjectingKubeProxy(server, new URL(upstream), readFileSync(caFile), seed);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return proxy;
  }

  /** A proxy in front of a test control plane's API server, with its serving certificate. */
  static async inFrontOf(
    plane: { server: string; caFile: string; dir: string },
    seed?: number,
  ): Promise<FaultInjectingKubeProxy> {
    const certs = join(plane.dir, 'certs');
    return await FaultInjectingKubeProxy.start({
      upstream: plane.server,
      caFile: plane.caFile,
      certFile: join(certs, 'apiserver.crt'),
      keyFile: join(certs, 'apiserver.key'),
      ...(seed === undefined ? {} : { seed }),
    });
  }

  get url(): string {
    return `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  /** No faults, counts from zero. */
  reset(): void {
    this.transientRate = 0;
    this.faultFirstTryOfWrites = false;
    this.unreachable = false;
    this.permanent = [];
    this.counts = { requests: 0, transient: {}, permanent: 0 };
    this.tap.writeDelayMs = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    WriteTap.after(this.tap.arrive(req.method ?? 'GET', req.url ?? '/'), () => this.answerOrForward(req, res));
  }

  private answerOrForward(req: IncomingMessage, res: ServerResponse): void {
    this.counts.requests += 1;
    if (this.unreachable) {
      req.resume();
      return answer(res, 502, 'fault-injecting proxy: upstream failed: connect ECONNREFUSED (the API server is down)');
    }
    const rule = this.permanent.find((r) => r.method === req.method && r.path.test(req.url ?? ''));
    if (rule) {
      this.counts.permanent += 1;
      req.resume();
      return answer(
        res,
        rule.status,
        `injected permanent fault: ${req.method} ${req.url} is answered ${rule.status} by the fault-injecting proxy`,
      );
    }
    const fault =
      this.firstTryOfWrite(req) ?? (this.random() < this.transientRate ? this.pick(req.method ?? 'GET') : null);
    if (fault !== null) this.counts.transient[String(fault)] = (this.counts.transient[String(fault)] ?? 0) + 1;
    if (fault === 'lost-answer') return this.forward(req, res, () => res.socket?.destroy());
    if (fault === 'reset') {
      req.socket.destroy();
      return;
    }
    if (fault !== null) {
      req.resume();
      if (fault === 429) res.setHeader('Retry-After', '1');
      return answer(res, fault, `injected transient fault ${fault} by the fault-injecting proxy`);
    }
    this.forward(req, res, null);
  }

  private firstTryOfWrite(req: IncomingMessage): TransientFault | null {
    if (!this.faultFirstTryOfWrites || !WRITES.has(req.method ?? '')) return null;
    const key = `${req.method} ${req.url}`;
    if (this.faultedWrites.delete(key)) return null;
    this.faultedWrites.add(key);
    this.writeFaults += 1;
    return this.writeFaults % 2 === 1 ? 409 : 'lost-answer';
  }

  private pick(method: string): TransientFault {
    const kinds: TransientFault[] = WRITES.has(method) ? [500, 429, 409, 'reset', 'lost-answer'] : [500, 429, 'reset'];
    return kinds[Math.floor(this.random() * kinds.length)]!;
  }

  private forward(req: IncomingMessage, res: ServerResponse, loseAnswer: (() => void) | null): void {
    const upstream = httpsRequest(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers: { ...req.headers, host: this.upstream.host },
        ca: this.ca,
      },
      (answerFromServer) => {
        if (loseAnswer) {
          answerFromServer.resume();
          answerFromServer.on('end', loseAnswer);
          return;
        }
        res.writeHead(answerFromServer.statusCode ?? 502, answerFromServer.headers);
        answerFromServer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      if (!res.headersSent) answer(res, 502, `fault-injecting proxy: upstream failed: ${error.message}`);
      else res.destroy();
    });
    req.pipe(upstream);
  }
}

function answer(res: ServerResponse, code: number, message: string): void {
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason: REASONS[code] ?? 'Unknown',
    code,
  });
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/** A small seeded generator, so a drill's faults fall the same way on every run. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
