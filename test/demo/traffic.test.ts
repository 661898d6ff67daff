/**
 * The traffic generator's score, against a real HTTP server in a process of its own: a client
 * held up past the server's keep-alive timeout (a busy machine) sends its next requests on
 * connections the server has closed as idle. Those requests were never read, and are sent again,
 * counted apart; they are not the router's failures.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { TrafficGenerator } from '../../src/demo/traffic.js';
import { stopProcess } from '../../src/processes/processes.js';

/** Answers every request; closes a connection idle for 2 s (its answers say `Keep-Alive: timeout=2`). */
const SERVER = `
const { createServer } = require('node:http');
const server = createServer((req, res) => { req.resume(); req.on('end', () => res.end('{}')); });
server.keepAliveTimeout = 2000;
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
`;

/** Holds this thread for `ms` without using the CPU, as a starved process is held. */
function holdThread(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

describe('TrafficGenerator', () => {
  let server: ChildProcess;
  let url = '';

  before(async () => {
    server = spawn(process.execPath, ['-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] });
    const port = await new Promise<string>((resolve) => server.stdout!.once('data', (d: Buffer) => resolve(String(d))));
    url = `http://127.0.0.1:${port.trim()}`;
  });

  after(async () => {
    if (server) await stopProcess(server);
  });

  it('sends again, once, a request that went out on a connection the server had closed as idle, and reports its own stall', async () => {
    const traffic = new TrafficGenerator(url, 50);
    traffic.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    // Held 4 s: the server closes every idle connection at 2 s, before this client's own timer
    // (1 s before the server's hint) can run; the requests due meanwhile go out at once after.
    holdThread(4_000);
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    const score = await traffic.stop();
    assert.equal(score.connectionFailures, 0, score.failureSamples.join('; '));
    assert.ok(score.resentAfterIdleClose >= 1, `${score.resentAfterIdleClose} requests sent again`);
    assert.equal(score.ok, score.sent, 'every request answered once');
    // The hold is the generator's own stall, which it reports beside any request that timed out.
    assert.ok(score.generatorStallMs >= 3_500, `its own stall: ${score.generatorStallMs} ms`);
  });
});
