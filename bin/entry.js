// Which code a command runs, given its module under src/ (`client/cli`):
// - installed from the package (no src/ beside bin/): the compiled module in dist/;
// - in a checkout: the TypeScript itself through tsx, a dev dependency, so that no build can be
//   stale;
// - under the test suite, which transpiles src/ once per run and names the copy in
//   BLUEGREEN_COMPILED_SRC: that copy (a CLI starts in 0.6 CPU-seconds against tsx's 1.3, and the
//   suite starts the commands dozens of times).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export async function importEntry(module) {
  const source = new URL(`../src/${module}.ts`, import.meta.url);
  if (!existsSync(source)) return import(new URL(`../dist/${module}.js`, import.meta.url).href);
  const compiled = process.env.BLUEGREEN_COMPILED_SRC && join(process.env.BLUEGREEN_COMPILED_SRC, `${module}.js`);
  if (compiled && existsSync(compiled)) return import(pathToFileURL(compiled).href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(source.href);
}
