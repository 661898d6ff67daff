/**
 * The reference detection API as a real process on a loopback port, and a real TCP listener that
 * receives its CoT events the way a TAK server's streaming input would.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import type { Server, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { XMLParser } from 'fast-xml-parser';
import { eventually } from './eventually.js';
import { freePort, waitUntilReady } from '../../src/processes/processes.js';

export { freePort };

const MAIN = fileURLToPath(new URL('../../examples/detection-api/src/main.ts', import.meta.url));

/** A queue file in a fresh temporary directory. */
export function tempQueuePath(): string {
  return join(mkdtempSync(join(tmpdir(), 'detection-api-')), 'queue.sqlite');
}

export interface DetectionApiProcess {
  url: string;
  child: ChildProcess;
  output: () => string;
  /** Resolves with the exit code (or signal name) once the process has exited. */
  exited: Promise<number | string>;
  kill(signal: NodeJS.Signals): void;
}

/** Starts the service and waits until /ready answers 200 (bounded: 20 s). */
export async function startDetectionApi(env: Record<string, string>): Promise<DetectionApiProcess> {
  const port = env['PORT'] ? Number(env['PORT']) : await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN], {
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (chunk) => (output += chunk));
  child.stderr!.on('data', (chunk) => (output += chunk));
  const exited = new Promise<number | string>((resolve) =>
    child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)),
  );
  const url = `http://127.0.0.1:${port}`;
  await waitUntilReady('detection-api', child, `${url}/ready`, { output: () => output });
  return { url, child, output: () => output, exited, kill: (signal) => child.kill(signal) };
}

export interface CotEvent {
  uid: string;
  type: string;
  how: string;
  time: string;
  start: string;
  stale: string;
  point: { lat: number; lon: number; ce: number; hae: number; le: number };
  remarks: string;
}

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseAttributeValue: true,
  parseTagValue: false,
});

/** A TCP listener that plays the TAK server's CoT input and parses every event it receives. */
export class TakListener {
  readonly events: CotEvent[] = [];
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private buffer = '';

  constructor(readonly port: number) {}

  static async start(): Promise<TakListener> {
    const listener = new TakListener(await freePort());
    await listener.listen();
    return listener;
  }

  async listen(): Promise<void> {
    const server = createServer((socket) => {
      this.sockets.add(socket);
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => this.receive(chunk));
      socket.on('close', () => this.sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.server = server;
  }

  /** Stops listening and drops every connection: TAK is down. */
  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    const server = this.server;
    this.server = null;
    if (server) await new Promise((resolve) => server.close(resolve));
  }

  async waitForEvents(count: number, timeoutMs = 15_000): Promise<CotEvent[]> {
    await eventually(async () => this.events.length >= count, `${count} CoT events`, timeoutMs);
    return this.events;
  }

  private receive(chunk: string): void {
    this.buffer += chunk;
    let end: number;
    while ((end = this.buffer.indexOf('</event>')) >= 0) {
      const xml = this.buffer.slice(0, end + '</event>'.length);
      this.buffer = this.buffer.slice(end + '</event>'.length);
      const { event } = parser.parse(xml) as {
        event: Record<string, unknown> & { point: CotEvent['point']; detail: { remarks: string } };
      };
      this.events.push({
        uid: String(event['uid']),
        type: String(event['type']),
        how: String(event['how']),
        time: String(event['time']),
        start: String(event['start']),
        stale: String(event['stale']),
        point: event.point,
        remarks: String(event.detail.remarks),
      });
    }
  }
}

/** POSTs a detection; returns status and JSON body. */
export async function postDetection(
  url: string,
  body: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${url}/api/detections`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

export const SEED_DETECTION = {
  source: 'test-uav',
  latitude: 34.0522,
  longitude: -118.2437,
  accuracy_meters: 50,
  confidence: 0.92,
};
