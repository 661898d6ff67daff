/**
 * `npm run generate:crd`: writes deploy/gitops/release-crd.yaml and release-train-crd.yaml, the
 * `Release` and `ReleaseTrain` CRDs, from the deployment spec's and the train spec's zod schemas
 * (src/gitops/release-crd.ts). Run it after changing either spec; a test fails while a file and its
 * schema differ.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { releaseCrdYaml, releaseTrainCrdYaml } from '../src/gitops/release-crd.js';

for (const [file, yaml] of [
  ['release-crd.yaml', releaseCrdYaml()],
  ['release-train-crd.yaml', releaseTrainCrdYaml()],
] as const) {
  const path = fileURLToPath(new URL(`../deploy/gitops/${file}`, import.meta.url));
  writeFileSync(path, yaml);
  process.stdout.write(`wrote ${path}\n`);
}
