/**
 * Monitoring against Prometheus as teams run it, on the embedded stack: Prometheus scraping every
 * `scrape` seconds, steady traffic, no operator. A healthy release passes without pausing (the
 * monitor waits out the warm-up the scrape interval needs, read from Prometheus's targets); a
 * faulty one is rolled back on its error rate. One file per interval
 * (test/e2e/scrape-interval-*.e2e.test.ts), so that the two run side by side.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { deploymentResult } from '../../src/client/deployment-client.js';
import { DETECTION_API_TARGET } from '../../src/demo/stack.js';
import type { EmbeddedStack } from '../../src/demo/stack.js';
import { deployTagAtScrapeInterval, startStackUnderTraffic, stopStackUnderTraffic } from './embedded-stack.js';
import type { StackUnderTraffic } from './embedded-stack.js';

export function describeScrapeInterval(scrape: number): void {
  describe(`monitoring with Prometheus scraping every ${scrape} s, unattended`, () => {
    let stack: EmbeddedStack;
    const running: Partial<StackUnderTraffic> = {};

    before(async () => {
      Object.assign(
        running,
        await startStackUnderTraffic({ taskQueue: `bluegreen-scrape-${scrape}s`, scrapeIntervalSeconds: scrape }),
      );
      stack = running.stack!;
    });

    after(() => stopStackUnderTraffic(running));

    it('passes a healthy release without pausing for an operator', async () => {
      const result = await deploymentResult(await deployTagAtScrapeInterval(stack, 'v2.2.0', scrape));
      assert.equal(result.outcome, 'Succeeded', result.message);
      const monitor = result.status.monitor!;
      assert.deepEqual(
        [monitor.scrapeIntervalSeconds, monitor.warmUpSeconds],
        [scrape, 2 * scrape + 5],
        'the warm-up comes from the scrape interval Prometheus reports',
      );
      assert.ok(
        !result.status.transitions.some((t) => t.phase === 'Paused'),
        `never paused: ${result.status.transitions.map((t) => t.phase).join(', ')}`,
      );
      assert.ok(
        monitor.successful >= 3,
        `judged on data: ${monitor.successful} successful ticks, ${monitor.inconclusive} without data`,
      );
      assert.deepEqual(result.warnings, []);
      assert.equal((await stack.local!.platform.describe(DETECTION_API_TARGET)).activeSlot, 'green');
    });

    it('rolls a faulty release back on its error rate', async () => {
      const result = await deploymentResult(await deployTagAtScrapeInterval(stack, 'v2.3.0', scrape));
      assert.deepEqual(
        [result.outcome, result.reason, result.failedCheck],
        ['RolledBack', 'SloBreach', 'error-rate'],
        result.message,
      );
      assert.ok(!result.status.transitions.some((t) => t.phase === 'Paused'));
      const live = await stack.local!.platform.describe(DETECTION_API_TARGET);
      assert.deepEqual(
        [live.activeSlot, live.slots.blue.replicas],
        ['green', 0],
        'traffic back on the healthy version',
      );
      const monitoring = new Date(result.status.transitions.find((t) => t.phase === 'Monitoring')!.at).getTime();
      const rollingBack = new Date(result.status.transitions.find((t) => t.phase === 'RollingBack')!.at).getTime();
      process.stdout.write(
        `# scrape ${scrape} s: breach seen ${((rollingBack - monitoring) / 1000).toFixed(1)} s into monitoring (warm-up ${result.status.monitor?.warmUpSeconds} s)\n`,
      );
    });
  });
}
