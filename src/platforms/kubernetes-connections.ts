/**
 * API clients whose connections to the API server are kept alive. client-node builds a new
 * https.Agent for every request, so each request would open, and handshake, a TLS connection of
 * its own: hundreds a minute when many deployments poll, one a lease renewal for the controller.
 */
import { Agent } from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { ConfigError } from '../config/env.js';

/**
 * The kubeconfig's authentication, with connections kept alive: one agent is kept for the TLS
 * identity (CA, client certificate and key) and replaced when a credential rotates; proxies and
 * plain HTTP keep the agent client-node made.
 */
class KeptAliveConnections implements k8s.SecurityAuthentication {
  private kept: { identity: string; agent: Agent } | null = null;

  constructor(private readonly config: k8s.KubeConfig) {}

  getName(): string {
    return 'kubeconfig, connections kept alive';
  }

  async applySecurityAuthentication(context: k8s.RequestContext): Promise<void> {
    await this.config.applySecurityAuthentication(context);
    const made = context.getAgent();
    if (!(made instanceof Agent)) return;
    const { ca, cert, key, pfx, passphrase, rejectUnauthorized, servername } = made.options;
    const identity = [ca, cert, key, pfx, passphrase, rejectUnauthorized, servername]
      .map((v) => (v === undefined ? '' : String(v)))
      .join('\0');
    if (this.kept?.identity !== identity)
      this.kept = { identity, agent: new Agent({ ...made.options, keepAlive: true }) };
    context.setAgent(this.kept.agent);
  }
}

/**
 * The configuration client-node's API classes take (`new k8s.CoreV1Api(configuration)`), in place
 * of `config.makeApiClient`: the kubeconfig's current cluster and credentials, one kept-alive
 * agent for every API made from it.
 */
export function keptAliveConfiguration(config: k8s.KubeConfig): k8s.Configuration {
  const cluster = config.getCurrentCluster();
  if (!cluster)
    throw new ConfigError('the kubeconfig has no current cluster: set its current-context, or BLUEGREEN_KUBE_CONTEXT');
  return k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: new KeptAliveConnections(config) },
  });
}
