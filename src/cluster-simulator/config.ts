/**
 * The local platform's configuration file: which Services and Deployments exist, as a small
 * cluster would hold them, and how an image reference becomes a command to run. Validated with
 * zod at start, so a mistake names its field before any process starts.
 */
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError } from '../config/env.js';
import { imageReference } from '../deployment-spec/deployment-spec.js';

const name = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a DNS-1123 label: lowercase letters, digits and -')
  .max(63);
const labels = z.record(z.string().min(1), z.string());
const address = z.string().regex(/^[^\s:]+:[0-9]{1,5}$/, 'must be host:port');

const ServiceSchema = z.object({
  name,
  namespace: name.default('default'),
  /** Where the Service's router listens, on loopback. */
  listen: address,
  /** The labels a Deployment must carry for its ready replicas to be endpoints. */
  selector: labels.refine((s) => Object.keys(s).length > 0, 'must select at least one label'),
});

/** A Gateway API HTTPRoute, played: its listener stands for the Gateway, its backendRefs name Services. */
const HttpRouteSchema = z.object({
  name,
  namespace: name.default('default'),
  /** Where the gateway's listener for this route listens, on loopback. */
  listen: address,
  backendRefs: z
    .array(z.object({ name, weight: z.number().int().min(0).default(1) }).strict())
    .min(1, 'must name at least one Service'),
});

/**
 * An Ingress, played as NGINX Ingress plays it: an Ingress with `listen` is an entry point whose
 * backend Service takes the traffic, unless a canary Ingress (annotation
 * `nginx.ingress.kubernetes.io/canary: "true"`) for the same host takes its `canary-weight`.
 */
const IngressSchema = z.object({
  name,
  namespace: name.default('default'),
  listen: address.optional(),
  host: z.string().min(1),
  backend: name,
  annotations: z.record(z.string()).default({}),
});

const DeploymentSchema = z.object({
  name,
  namespace: name.default('default'),
  labels: labels.default({}),
  /** The container whose image is set (the spec's `container`). */
  container: name,
  image: imageReference.nullable().default(null),
  replicas: z.number().int().min(0).max(50).default(0),
  readinessPath: z.string().startsWith('/').default('/ready'),
  /**
   * How often a ready pod is probed (a kubelet's periodSeconds; the reference's probe says 5). A pod
   * not ready yet is probed every 250 ms, as a startup probe would, so that it joins at once.
   */
  readinessPeriodSeconds: z.number().min(0.1).max(300).default(5),
  terminationGracePeriodSeconds: z.number().int().min(0).max(600).default(30),
});

/** How to run an image: a repository (any tag), with environment added for particular tags. */
const ImageSchema = z.object({
  repository: z.string().min(1),
  /**
   * argv; `{{node}}` (this Node.js), `{{port}}`, `{{tag}}`, `{{image}}`, `{{pod}}`,
   * `{{namespace}}`, `{{dataDir}}` and `{{label.KEY}}` are filled in.
   */
  command: z.array(z.string().min(1)).min(1),
  env: z.record(z.string()).default({}),
  /** Environment for particular tags, over `env`: a version with a fault injected, for instance. */
  tags: z.record(z.object({ env: z.record(z.string()).default({}) })).default({}),
});

export const LocalPlatformConfigSchema = z
  .object({
    /** The control API the worker's adapter talks to; loopback only. */
    control: address.default('127.0.0.1:7070'),
    /** Working directories of the replicas and the Prometheus targets file. */
    stateDir: z.string().min(1).default('.state/local-platform'),
    services: z.array(ServiceSchema).min(1),
    routes: z.array(HttpRouteSchema).default([]),
    ingresses: z.array(IngressSchema).default([]),
    deployments: z.array(DeploymentSchema).min(1),
    images: z.array(ImageSchema).min(1),
  })
  .superRefine((config, ctx) => {
    const seen = new Set<string>();
    for (const [index, deployment] of config.deployments.entries()) {
      const key = `${deployment.namespace}/${deployment.name}`;
      if (seen.has(key))
        ctx.addIssue({ code: 'custom', path: ['deployments', index, 'name'], message: `${key} is declared twice` });
      seen.add(key);
    }
  });

export type LocalPlatformConfig = z.output<typeof LocalPlatformConfigSchema>;
export type ServiceConfig = LocalPlatformConfig['services'][number];
export type HttpRouteConfig = LocalPlatformConfig['routes'][number];
export type IngressConfig = LocalPlatformConfig['ingresses'][number];
export type DeploymentConfig = LocalPlatformConfig['deployments'][number];
export type ImageConfig = LocalPlatformConfig['images'][number];

/** Validates a configuration object; the error names every field at fault and its rule. */
export function parseLocalPlatformConfig(input: unknown, source = 'local platform configuration'): LocalPlatformConfig {
  const result = LocalPlatformConfigSchema.safeParse(input);
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `  - ${i.path.join('.') || '(root)'}: ${i.message}`);
  throw new ConfigError(`${source} is invalid:\n${lines.join('\n')}`);
}

/** Reads a YAML file; relative `stateDir` is taken from the current directory, as the commands run. */
export function loadLocalPlatformConfig(file: string): LocalPlatformConfig {
  const config = parseLocalPlatformConfig(parseYaml(readFileSync(file, 'utf8')), file);
  return { ...config, stateDir: resolve(config.stateDir) };
}

/** The directory a configuration file sits in, for commands given relative to it. */
export const configDir = (file: string): string => dirname(resolve(file));
