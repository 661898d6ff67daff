/**
 * The `Release` resource as the API server serves it: its group, version, kind and plural, and its
 * shape. Kept apart from the CRD's generator (release-crd.ts) so that the controller does not load
 * the JSON-schema conversion it never runs.
 */
import type * as k8s from '@kubernetes/client-node';
import type { ReleaseStatus } from './release-status.js';

export const RELEASE_GROUP = 'bluegreen.dev';
export const RELEASE_VERSION = 'v1alpha1';
export const RELEASE_KIND = 'Release';
export const RELEASE_PLURAL = 'releases';

/** A Release as read: its spec is the deployment spec less `namespace`, checked by the controller. */
export interface Release extends k8s.KubernetesObject {
  spec: Record<string, unknown> & { app?: string };
  status?: Partial<ReleaseStatus>;
}
