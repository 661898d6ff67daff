#!/usr/bin/env node
// The Release controller (GitOps; configuration from the environment: see the README). Installed
// from the package, it runs the compiled controller in dist/; in a checkout (where src/ is), the
// TypeScript through tsx, as `npm run controller` does.
import { existsSync } from 'node:fs';

const source = new URL('../src/gitops/main.ts', import.meta.url);
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  await import(source.href);
} else {
  await import(new URL('../dist/gitops/main.js', import.meta.url).href);
}
