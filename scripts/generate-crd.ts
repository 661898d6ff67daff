/**
 * `npm run generate:crd`: writes deploy/gitops/release-crd.yaml, the `Release` CRD, from the
 * deployment spec's zod schema (src/gitops/release-crd.ts). Run it after changing the spec; a test
 * fails while the file and the schema differ.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { releaseCrdYaml } from '../src/gitops/release-crd.js';

const path = fileURLToPath(new URL('../deploy/gitops/release-crd.yaml', import.meta.url));
writeFileSync(path, releaseCrdYaml());
process.stdout.write(`wrote ${path}\n`);
