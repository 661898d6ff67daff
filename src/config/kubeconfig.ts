/**
 * Where a process finds its Kubernetes API server: a kubeconfig file, or the in-cluster
 * ServiceAccount. Read once, by the worker's kubernetes platform and by the Release controller, so
 * that both take the same settings and refuse a bad one the same way.
 */
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { z } from 'zod';
import { ConfigError, parseEnv } from './env.js';

export const KubeConfigEnvSchema = z.object({
  /** A kubeconfig file; without it, $KUBECONFIG, then ~/.kube/config, then the in-cluster ServiceAccount. */
  BLUEGREEN_KUBECONFIG: z.string().min(1).optional(),
  /** The kubeconfig context to use instead of its current one. */
  BLUEGREEN_KUBE_CONTEXT: z.string().min(1).optional(),
});

/** The KubeConfig the environment names; a ConfigError naming the variable when it cannot work. */
export function loadKubeConfig(
  env: NodeJS.ProcessEnv,
  settings: z.output<typeof KubeConfigEnvSchema> = parseEnv(KubeConfigEnvSchema, env),
): k8s.KubeConfig {
  const config = new k8s.KubeConfig();
  const file = settings.BLUEGREEN_KUBECONFIG ?? env['KUBECONFIG'] ?? join(homedir(), '.kube', 'config');
  if (existsSync(file)) {
    try {
      config.loadFromFile(file);
    } catch (error) {
      throw new ConfigError(`kubeconfig ${file} cannot be read: ${(error as Error).message}`);
    }
  } else if (env['KUBERNETES_SERVICE_HOST']) {
    config.loadFromCluster();
  } else {
    throw new ConfigError(
      `no kubeconfig at ${file} and not running in a cluster: set BLUEGREEN_KUBECONFIG (or KUBECONFIG) to a ` +
        `kubeconfig file, or run in a pod with a ServiceAccount`,
    );
  }
  const context = settings.BLUEGREEN_KUBE_CONTEXT;
  if (context) {
    if (!config.getContextObject(context)) {
      throw new ConfigError(
        `BLUEGREEN_KUBE_CONTEXT: no context '${context}' in ${file}; it has ${
          config
            .getContexts()
            .map((c) => c.name)
            .join(', ') || 'none'
        }`,
      );
    }
    config.setCurrentContext(context);
  }
  return config;
}
