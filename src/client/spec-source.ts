/**
 * Where a spec comes from: a YAML file, then flags on top (`--image`, `--replicas`, `--set
 * path=value`), then validation. Nothing connects anywhere before this has succeeded.
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { parseDeploymentSpec, SpecValidationError } from '../deployment-spec/deployment-spec.js';
import type { DeploymentSpec } from '../deployment-spec/deployment-spec.js';

export interface SpecSources {
  /** Path of a YAML (or JSON) spec file. */
  file?: string;
  app?: string;
  namespace?: string;
  image?: string;
  version?: string;
  replicas?: string;
  /** Deploy even onto an active slot that breaches its gated SLOs (the spec's allowUnstableActive). */
  allowUnstableActive?: boolean;
  /** `path.to.field=value` overrides; the value is read as YAML (numbers, booleans, lists). */
  set?: string[];
}

type Json = Record<string, unknown>;

function readSpecFile(file: string): Json {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new SpecValidationError([{ path: '(file)', message: `cannot read ${file}: ${(error as Error).message}` }]);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    const where = error instanceof YAMLParseError && error.linePos ? ` at line ${error.linePos[0].line}` : '';
    throw new SpecValidationError([
      { path: '(file)', message: `${file} is not valid YAML${where}: ${(error as Error).message}` },
    ]);
  }
  if (document === null || document === undefined) return {};
  if (typeof document !== 'object' || Array.isArray(document)) {
    throw new SpecValidationError([{ path: '(file)', message: `${file} must hold a mapping of spec fields` }]);
  }
  return document as Json;
}

/** Sets a dotted path in a plain object, creating the objects on the way. */
function setPath(target: Json, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Json;
  }
  node[keys[keys.length - 1]!] = value;
}

/** Builds and validates a spec; throws `SpecValidationError` naming every bad field. */
export function loadSpec(sources: SpecSources): DeploymentSpec {
  const spec: Json = sources.file ? readSpecFile(sources.file) : {};
  const flags: [keyof SpecSources, string][] = [
    ['app', 'app'],
    ['namespace', 'namespace'],
    ['image', 'image'],
    ['version', 'version'],
  ];
  for (const [flag, field] of flags) {
    if (sources[flag] !== undefined) spec[field] = sources[flag];
  }
  if (sources.replicas !== undefined) spec['replicas'] = Number(sources.replicas);
  if (sources.allowUnstableActive) spec['allowUnstableActive'] = true;
  for (const assignment of sources.set ?? []) {
    const equals = assignment.indexOf('=');
    if (equals <= 0) {
      throw new SpecValidationError([
        { path: '(--set)', message: `'${assignment}' must be path=value, e.g. monitor.durationSeconds=60` },
      ]);
    }
    setPath(spec, assignment.slice(0, equals), parseYaml(assignment.slice(equals + 1)));
  }
  return parseDeploymentSpec(spec);
}
