/**
 * The README and the pages under docs/ link to each other and to the repository's files: every
 * relative link names a file or folder that exists, and every #anchor a heading of the page it
 * points to (slugged as GitHub slugs them). Links inside code are not links.
 */
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const PAGES = [
  'README.md',
  ...readdirSync(join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

/** The page without its fenced code blocks and inline code. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  const headings = prose(readFileSync(file, 'utf8')).match(/^#{1,6} .+$/gm) ?? [];
  return new Set(headings.map((h) => slug(h.replace(/^#+ /, ''))));
}

describe('the documentation links', () => {
  it('has the README and a page per concern', () => {
    for (const page of [
      'cli',
      'deployments',
      'spec',
      'monitoring',
      'gitops',
      'configuration',
      'operations',
      'architecture',
      'testing',
    ]) {
      assert.ok(PAGES.includes(`docs/${page}.md`), `docs/${page}.md`);
    }
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length;
    assert.ok(readme <= 250, `the README is a front door of at most 250 lines, not ${readme}`);
  });

  for (const page of PAGES) {
    it(`resolves every relative link and anchor of ${page}`, () => {
      const file = join(ROOT, page);
      const broken: string[] = [];
      for (const [, target] of prose(readFileSync(file, 'utf8')).matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^(https?:|mailto:)/.test(target!)) continue;
        const [path, anchor] = target!.split('#');
        const resolved = path ? resolve(dirname(file), path) : file;
        if (!existsSync(resolved)) {
          broken.push(`${target}: no ${relative(ROOT, resolved)}`);
          continue;
        }
        if (anchor && resolved.endsWith('.md') && !anchorsOf(resolved).has(anchor))
          broken.push(`${target}: no heading #${anchor}`);
      }
      assert.deepEqual(broken, []);
    });
  }
});
