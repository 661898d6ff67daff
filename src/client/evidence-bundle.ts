/**
 * `bluegreen evidence`: a rollback's evidence written out for people. Logs and events as text,
 * each SLO's series as CSV and as an SVG chart with its threshold, the switch and the breach
 * marked (a person reads a chart faster than a table), and a summary to start from.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { formatValue, judgeValue, AnalysisResult } from '../shared/analysis.js';
import type { Comparison } from '../shared/analysis.js';
import { summarizeEvidence } from '../shared/evidence.js';
import type { Evidence, SloSeries } from '../shared/evidence.js';

export interface WrittenFile {
  path: string;
  bytes: number;
}

/** A file name from anything: letters, digits, dot, dash and underscore. */
const safe = (name: string) => name.replace(/[^A-Za-z0-9._-]+/g, '_');
const iso = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString();

export function writeEvidenceBundle(evidence: Evidence, dir: string): WrittenFile[] {
  const written: WrittenFile[] = [];
  const write = (path: string, content: string) => {
    const full = join(dir, path);
    mkdirSync(join(full, '..'), { recursive: true });
    writeFileSync(full, content);
    written.push({ path, bytes: Buffer.byteLength(content) });
  };
  const summary = summarizeEvidence(evidence);
  write(
    'summary.md',
    [
      `# Evidence: ${evidence.slot} running ${evidence.image}`,
      '',
      `- captured ${evidence.collectedAt}, before ${evidence.slot} was scaled down; series from ` +
        `${evidence.from} to ${evidence.to}`,
      `- traffic moved to ${evidence.slot}: ${evidence.switchedAt ?? 'never'}`,
      `- breach: ${summary.breach ?? 'none (rolled back for another reason)'}`,
      `- restarted pods: ${summary.restartedPods.join(', ') || 'none'}`,
      `- events: ${summary.events}, warnings: ${summary.warningEvents.length}`,
      ...(summary.problems.length > 0 ? ['', '## Not captured', '', ...summary.problems.map((p) => `- ${p}`)] : []),
      '',
      '## Log lines that look like errors',
      '',
      ...(summary.errorLines.length > 0 ? summary.errorLines.map((line) => `    ${line}`) : ['none']),
      '',
      '## Pod template: other slot → this one',
      '',
      ...(evidence.platform.templateDiff.length > 0
        ? evidence.platform.templateDiff.map((line) => `- ${line}`)
        : ['no difference']),
      '',
    ].join('\n'),
  );
  for (const c of evidence.platform.containers) {
    const base = `logs/${safe(c.pod)}.${safe(c.container)}`;
    write(`${base}.log`, c.logError ? `(log not read: ${c.logError})\n` : `${c.log.join('\n')}\n`);
    if (c.previousLog) write(`${base}.previous.log`, `${c.previousLog.join('\n')}\n`);
  }
  write(
    'events.txt',
    [
      'TIME\tTYPE\tREASON\tOBJECT\tCOUNT\tMESSAGE',
      ...evidence.platform.events.map((e) => [e.at ?? '-', e.type, e.reason, e.object, e.count, e.message].join('\t')),
    ].join('\n') + '\n',
  );
  write('template-diff.txt', evidence.platform.templateDiff.join('\n') + '\n');
  for (const series of evidence.series) {
    write(
      `series/${safe(series.name)}.csv`,
      ['time,unix_seconds,value', ...series.points.map(([t, v]) => `${iso(t)},${t},${v}`)].join('\n') + '\n',
    );
    write(`charts/${safe(series.name)}.svg`, chart(series, evidence));
  }
  return written;
}

/** The first point after the switch (or the start) that breaks the SLO's rule. */
export function firstBreach(series: SloSeries, switchedAt: string | null): [number, number] | null {
  const after = switchedAt ? Date.parse(switchedAt) / 1000 : -Infinity;
  return (
    series.points.find(
      ([t, v]) =>
        t >= after && judgeValue(v, series.comparison as Comparison, series.threshold) === AnalysisResult.Failed,
    ) ?? null
  );
}

const escape = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** One SLO over time: the series, its threshold (dashed), the switch and the first breach. */
export function chart(
  series: SloSeries,
  evidence: Pick<Evidence, 'slot' | 'version' | 'switchedAt' | 'from' | 'to'>,
): string {
  const [width, height, left, right, top, bottom] = [800, 320, 70, 20, 40, 40];
  const start = Date.parse(evidence.from) / 1000;
  const end = Math.max(Date.parse(evidence.to) / 1000, start + 1);
  const values = series.points.map(([, v]) => v);
  const high = Math.max(series.threshold, ...values) * 1.15 || 1;
  const low = Math.min(0, ...values);
  const x = (t: number) => left + ((t - start) / (end - start)) * (width - left - right);
  const y = (v: number) => top + (1 - (v - low) / (high - low)) * (height - top - bottom);
  const rule = `must be ${series.comparison} ${series.threshold}`;
  const title = `${series.name} on ${evidence.slot} (${evidence.version}): ${rule}`;
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" ` +
      `font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15">${escape(title)}</text>`,
    `<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="#888"/>`,
    `<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="#888"/>`,
    `<text x="${left - 6}" y="${y(high) + 4}" text-anchor="end">${formatValue(high)}</text>`,
    `<text x="${left - 6}" y="${y(low) + 4}" text-anchor="end">${formatValue(low)}</text>`,
    `<text x="${left}" y="${height - 12}">${iso(start).slice(11, 19)}</text>`,
    `<text x="${width - right}" y="${height - 12}" text-anchor="end">${iso(end).slice(11, 19)} UTC</text>`,
    `<line class="threshold" x1="${left}" y1="${y(series.threshold)}" x2="${width - right}" ` +
      `y2="${y(series.threshold)}" stroke="#d33" stroke-dasharray="6 4"/>`,
    `<text x="${width - right}" y="${y(series.threshold) - 5}" text-anchor="end" fill="#d33">threshold ` +
      `${series.threshold}</text>`,
  ];
  if (evidence.switchedAt) {
    const at = x(Date.parse(evidence.switchedAt) / 1000);
    parts.push(
      `<line class="switch" x1="${at}" y1="${top}" x2="${at}" y2="${height - bottom}" stroke="#36c" ` +
        `stroke-dasharray="3 3"/>`,
    );
    parts.push(`<text x="${at + 4}" y="${top + 12}" fill="#36c">switch</text>`);
  }
  if (series.points.length > 0) {
    const points = series.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(' ');
    parts.push(`<polyline class="series" points="${points}" fill="none" stroke="#222" stroke-width="1.5"/>`);
  } else {
    parts.push(
      `<text x="${width / 2}" y="${height / 2}" text-anchor="middle" ` +
        `fill="#888">${escape(series.error ?? 'no data in the span')}</text>`,
    );
  }
  const breach = firstBreach(series, evidence.switchedAt);
  if (breach) {
    const [t, v] = breach;
    parts.push(`<circle class="breach" cx="${x(t).toFixed(1)}" cy="${y(v).toFixed(1)}" r="5" fill="#d33"/>`);
    parts.push(
      `<text x="${x(t) + 8}" y="${y(v) - 8}" ` +
        `fill="#d33">${escape(`breach: ${formatValue(v)} at ${iso(t).slice(11, 19)}`)}</text>`,
    );
  }
  parts.push('</svg>', '');
  return parts.join('\n');
}
