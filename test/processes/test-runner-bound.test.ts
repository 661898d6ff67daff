/**
 * The suite's bound on a test file (scripts/run-tests.sh): a file ended at its bound takes the
 * processes it started with it, so none holds the runner's pipe and the runner, and CI, end.
 * Without test/helpers/stop-descendants-on-exit.mjs the runner below would wait for `sleep 120`.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURE = fileURLToPath(new URL('./fixtures/overruns-its-bound.ts', import.meta.url));

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z '); // a zombie has ended
  } catch {
    return false;
  }
};

describe('a test file ended at its bound', () => {
  it('stops the processes it started, and the runner ends with the file failed', async () => {
    const pidFile = join(mkdtempSync(join(tmpdir(), 'runner-bound-')), 'pid');
    // A runner of its own, not a child of this one (NODE_TEST_CONTEXT would make it one).
    const env = { ...process.env };
    delete env['NODE_TEST_CONTEXT'];
    const { code, stdout } = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const runner = execFile(
        process.execPath,
        [
          '--import',
          'tsx',
          '--import',
          './test/helpers/stop-descendants-on-exit.mjs',
          '--test',
          '--test-timeout=2000',
          FIXTURE,
        ],
        { cwd: ROOT, env: { ...env, PID_FILE: pidFile }, timeout: 60_000 },
        (error, stdout) => resolve({ code: error ? ((error as { code?: number }).code ?? null) : 0, stdout }),
      );
      runner.stdin?.end();
    });
    assert.equal(code, 1, 'the runner ended by itself, reporting the file failed');
    assert.match(stdout, /# cancelled 1/);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    assert.equal(alive(pid), false, `the file's process ${pid} is gone`);
  });
});
