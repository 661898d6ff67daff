#!/usr/bin/env node
// The `bluegreen` command. Installed from the package, it runs the compiled CLI in dist/; in a
// checkout of the repository (where src/ is), it runs the TypeScript itself through tsx, a dev
// dependency, so that no build can be stale.
import { existsSync } from 'node:fs';

const source = new URL('../src/client/cli.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL('../dist/client/cli.js', import.meta.url).href);
}
process.exitCode = await cli.runCli(process.argv.slice(2));
