/**
 * Open-loop load from vegeta (scripts/setup.sh --dataplane builds it into .tools/vegeta): one
 * detection POSTed every 1/rate seconds whatever the answers do, as sensors send them, each
 * request's answer kept with the replica and version that gave it (the detection API's
 * x-served-by and x-app-version) and classified as a user of the service would see it.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stopProcess } from '../../src/processes/processes.js';

export const VEGETA = fileURLToPath(new URL('../../.tools/vegeta', import.meta.url));

/** What became of one request. */
export type Outcome =
  | 'ok'
  /** A 5xx from a replica of the version called faulty. */
  | 'faulty-5xx'
  /** Any other 5xx: a replica's, or the router's own (no endpoint, upstream gone). */
  | 'other-5xx'
  /** An answer that is neither 2xx nor 5xx. */
  | 'other-answer'
  | 'refused-or-reset'
  | 'timeout';

export interface Answer {
  /** When the request was sent and when its answer (or failure) came, in ms since the epoch. */
  sentAt: number;
  at: number;
  code: number;
  error: string;
  /** The replica and version that answered, when one did. */
  pod: string | null;
  version: string | null;
}

const DETECTION = JSON.stringify({
  source: 'dataplane-uav',
  latitude: 34.0522,
  longitude: -118.2437,
  accuracy_meters: 12,
  confidence: 0.93,
});

export function classify(answer: Answer, faultyVersion?: string): Outcome {
  if (answer.code >= 200 && answer.code < 300) return 'ok';
  if (answer.code >= 500) return faultyVersion && answer.version === faultyVersion ? 'faulty-5xx' : 'other-5xx';
  if (answer.code > 0) return 'other-answer';
  return /timeout|deadline/i.test(answer.error) ? 'timeout' : 'refused-or-reset';
}

/** Counts of each outcome among `answers`. */
export function tally(answers: readonly Answer[], faultyVersion?: string): Record<Outcome, number> {
  const counts: Record<Outcome, number> = {
    ok: 0,
    'faulty-5xx': 0,
    'other-5xx': 0,
    'other-answer': 0,
    'refused-or-reset': 0,
    timeout: 0,
  };
  for (const answer of answers) counts[classify(answer, faultyVersion)] += 1;
  return counts;
}

/** The answers that did not succeed, other than the faulty version's own 5xx. */
export const failures = (answers: readonly Answer[], faultyVersion?: string) =>
  answers.filter((a) => !['ok', 'faulty-5xx'].includes(classify(a, faultyVersion)));

export class OpenLoopLoad {
  private constructor(
    private readonly attack: ChildProcess,
    private readonly results: string,
    readonly rate: number,
  ) {}

  /**
   * Starts POSTing detections to `url` + /api/detections at `rate` per second, with `host` as the
   * Host header when a router routes by it. Each request times out after 5 s.
   */
  static start({ url, rate, host }: { url: string; rate: number; host?: string }): OpenLoopLoad {
    const dir = mkdtempSync(join(tmpdir(), 'open-loop-load-'));
    const targets = join(dir, 'targets.json');
    writeFileSync(
      targets,
      JSON.stringify({
        method: 'POST',
        url: `${url}/api/detections`,
        body: Buffer.from(DETECTION).toString('base64'),
        header: { 'Content-Type': ['application/json'], ...(host ? { Host: [host] } : {}) },
      }) + '\n',
    );
    const results = join(dir, 'results.bin');
    const attack = spawn(
      VEGETA,
      ['attack', '-format=json', `-targets=${targets}`, `-rate=${rate}/s`, '-timeout=5s', `-output=${results}`],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let stderr = '';
    attack.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    attack.once('exit', (code, signal) => {
      if (code && signal === null) process.stderr.write(`vegeta attack exited ${code}: ${stderr}\n`);
    });
    return new OpenLoopLoad(attack, results, rate);
  }

  /** Stops sending (vegeta writes the answers of the requests in flight) and returns every answer. */
  async stop(): Promise<Answer[]> {
    await stopProcess(this.attack, 15_000);
    const encode = spawn(VEGETA, ['encode', '--to', 'json', this.results], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    encode.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    await new Promise((resolve) => encode.once('close', resolve));
    // The results (8 to 25 MB a case) are read: a bench's dozens of cases left them all in /tmp.
    rmSync(dirname(this.results), { recursive: true, force: true });
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const result = JSON.parse(line) as {
          timestamp: string;
          latency: number;
          code: number;
          error: string;
          headers: Record<string, string[]> | null;
        };
        const sentAt = new Date(result.timestamp).getTime();
        const header = (name: string) => result.headers?.[name]?.[0] ?? null;
        return {
          sentAt,
          at: sentAt + result.latency / 1e6,
          code: result.code,
          error: result.error,
          pod: header('X-Served-By'),
          version: header('X-App-Version'),
        };
      })
      .sort((a, b) => a.sentAt - b.sentAt);
  }
}
