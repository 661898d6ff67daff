/**
 * The `Release` custom resource (group bluegreen.dev): a deployment declared in git. Its spec is
 * the deployment spec, less the namespace (the resource's own) and with the app defaulting to the
 * resource's name; its status is what the controller mirrors from the workflow. The CRD's OpenAPI
 * schema is generated from the same zod schema the CLI and the worker validate with, so the API
 * server refuses a bad field with its path before anything runs, and `kubectl explain` works.
 * `npm run generate:crd` writes deploy/gitops/release-crd.yaml; a test keeps the two equal.
 */
import { stringify } from 'yaml';
import { zodToJsonSchema } from 'zod-to-json-schema';
import { SpecInputSchema } from '../deployment-spec/deployment-spec.js';
import { RELEASE_GROUP, RELEASE_KIND, RELEASE_PLURAL, RELEASE_VERSION } from './release-resource.js';
import { TrainSpecSchema } from '../train/train-spec.js';
import { RELEASE_TRAIN_KIND, RELEASE_TRAIN_PLURAL } from './release-train-resource.js';

/** An OpenAPI v3 schema node, as a CRD carries it. */
export type Schema = { [key: string]: unknown };

/**
 * The spec's schema, made structural as the API server requires: no defaults (the worker applies
 * them, so the stored object stays as written), no `additionalProperties: false` (unknown fields
 * are refused by the API server's strict field validation instead), and a subtree whose shape is
 * a union of types (a smoke check's `expectJson` values, a request `body`) kept as written,
 * unvalidated there (`x-kubernetes-preserve-unknown-fields`); the worker's zod parse still judges it.
 */
export function releaseSpecSchema(): Schema {
  const generated = zodToJsonSchema(
    SpecInputSchema.innerType().omit({ namespace: true, undoOf: true }).partial({ app: true }),
    {
      target: 'openApi3',
      $refStrategy: 'none',
      pipeStrategy: 'input',
      effectStrategy: 'input',
    },
  ) as Schema;
  return structural(generated);
}

function structural(node: Schema): Schema {
  if (node['anyOf'] || node['oneOf'] || node['allOf'] || node['type'] === undefined)
    return { 'x-kubernetes-preserve-unknown-fields': true };
  const out: Schema = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'default' || key === '$schema') continue;
    if (key === 'additionalProperties') {
      if (value !== false && typeof value === 'object') out[key] = structural(value as Schema);
      continue;
    }
    if (key === 'properties')
      out[key] = Object.fromEntries(
        Object.entries(value as Record<string, Schema>).map(([name, child]) => [name, structural(child)]),
      );
    else if (key === 'items') out[key] = structural(value as Schema);
    else out[key] = value;
  }
  return out;
}

/** The status the controller writes: the workflow's progress and result, and conditions. */
const STATUS_SCHEMA: Schema = {
  type: 'object',
  properties: {
    phase: {
      type: 'string',
      description:
        'The deployment phase: Preflight, Deploying, SmokeTesting, Switching, Monitoring, ..., Succeeded, ' +
        'RolledBack, Failed.',
    },
    step: { type: 'integer', description: "The canary's current step (1-based); absent for blue-green." },
    weight: { type: 'number', description: "The canary's share of the traffic, in percent." },
    outcome: { type: 'string', description: 'Succeeded, RolledBack or Failed, once the deployment has ended.' },
    reason: { type: 'string', description: 'Why it rolled back or failed (SloBreach, SmokeFailed, Aborted, ...).' },
    message: { type: 'string' },
    liveSlot: { type: 'string', description: 'The slot that serves the traffic now.' },
    image: { type: 'string', description: 'The image live now.' },
    workflowId: { type: 'string' },
    runId: { type: 'string' },
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'The generation whose deployment the status describes.',
    },
    lastRequest: {
      type: 'object',
      description:
        'The answer to the last operator request made with an annotation (bluegreen.dev/abort, approve or ' +
        'promote); the controller removes the annotation once answered.',
      properties: {
        verb: { type: 'string', description: 'abort, approve or promote' },
        value: {
          type: 'string',
          description: "The annotation's value: the abort's reason, the approval's note, or promote's 'full'.",
        },
        answer: {
          type: 'string',
          enum: ['Accepted', 'Recorded', 'Refused'],
          description:
            'Accepted by the workflow; Recorded by Temporal while no worker answered (it takes effect once one ' +
            'runs); or Refused, and why.',
        },
        message: { type: 'string' },
        runId: { type: 'string' },
        time: { type: 'string', format: 'date-time' },
      },
    },
    plan: {
      type: 'object',
      description:
        'The last plan asked for with the annotation bluegreen.dev/plan: what a deployment of the spec would do, ' +
        'checked, nothing changed.',
      properties: {
        id: { type: 'string', description: 'The plan workflow: bluegreen deploy --plan-id takes it.' },
        generation: { type: 'integer', format: 'int64', description: 'The generation whose spec was planned.' },
        plannedAt: { type: 'string', format: 'date-time' },
        verdict: { type: 'string', enum: ['WouldProceed', 'WouldFail', 'InvalidSpec', 'Unreadable'] },
        lines: {
          type: 'array',
          items: { type: 'string' },
          description: 'The plan as bluegreen plan prints it, or why there is none.',
        },
      },
    },
    conditions: {
      type: 'array',
      description: 'Progressing, Healthy and Degraded, in the shape of metav1.Condition.',
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
      items: {
        type: 'object',
        required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
        properties: {
          type: { type: 'string' },
          status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
          observedGeneration: { type: 'integer', format: 'int64' },
          lastTransitionTime: { type: 'string', format: 'date-time' },
          reason: { type: 'string' },
          message: { type: 'string' },
        },
      },
    },
  },
};

/** A printer column of `kubectl get`. */
const column = (name: string, type: string, jsonPath: string, description: string) => ({
  name,
  type,
  jsonPath,
  description,
});

/** A namespaced CRD of group bluegreen.dev, one version, with a status subresource. */
function customResourceDefinition({
  kind,
  plural,
  shortName,
  columns,
  description,
  spec,
  status,
}: {
  kind: string;
  plural: string;
  shortName: string;
  columns: Schema[];
  description: string;
  spec: Schema;
  status: Schema;
}): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.${RELEASE_GROUP}` },
    spec: {
      group: RELEASE_GROUP,
      names: {
        kind,
        listKind: `${kind}List`,
        plural,
        singular: kind.toLowerCase(),
        shortNames: [shortName],
        categories: ['bluegreen'],
      },
      scope: 'Namespaced',
      versions: [
        {
          name: RELEASE_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [...columns, column('Age', 'date', '.metadata.creationTimestamp', '')],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description,
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  };
}

/** The CustomResourceDefinition of `Release`, as applied to a cluster. */
export function releaseCrd(): Schema {
  return customResourceDefinition({
    kind: RELEASE_KIND,
    plural: RELEASE_PLURAL,
    shortName: 'rel',
    columns: [
      column('Image', 'string', '.spec.image', 'The image declared'),
      column('Phase', 'string', '.status.phase', 'The deployment phase'),
      column('Step', 'integer', '.status.step', "The canary's step"),
      column('Weight', 'number', '.status.weight', "The canary's share of the traffic, in percent"),
      column('Outcome', 'string', '.status.outcome', 'Succeeded, RolledBack or Failed'),
    ],
    description:
      'A deployment of one app, declared: a change of its spec starts a blue-green or canary deployment ' +
      'as a Temporal workflow.',
    spec: {
      ...releaseSpecSchema(),
      description:
        "The deployment spec (docs/spec.md); app defaults to the resource name, the namespace is the resource's.",
    },
    status: STATUS_SCHEMA,
  });
}

/** The CRD as deploy/gitops/release-crd.yaml holds it. */
export function releaseCrdYaml(): string {
  return (
    `# Generated from the deployment spec's zod schema by \`npm run generate:crd\` (src/gitops/release-crd.ts): do ` +
    `not edit.\n${stringify(releaseCrd(), { lineWidth: 0 })}`
  );
}

/**
 * The train spec's schema, made structural: the base deployment spec and each cluster's and
 * stage's overrides are kept as written (the controller merges and validates them with the deployment spec's zod
 * schema, naming the stage), the rest checked by the API server.
 */
export function releaseTrainSpecSchema(): Schema {
  const generated = structural(
    zodToJsonSchema(TrainSpecSchema, {
      target: 'openApi3',
      $refStrategy: 'none',
      pipeStrategy: 'input',
      effectStrategy: 'input',
    }) as Schema,
  );
  const kept = (description: string): Schema => ({
    type: 'object',
    description,
    'x-kubernetes-preserve-unknown-fields': true,
  });
  const properties = generated['properties'] as Record<string, Schema>;
  properties['base'] = kept(
    "The app's deployment spec without its image (docs/spec.md): what every stage starts from.",
  );
  const stage = (properties['stages']!['items'] as Schema)['properties'] as Record<string, Schema>;
  stage['overrides'] = kept('Fields of the base this stage changes: merged object by object, lists replaced.');
  const cluster = (properties['clusters']!['additionalProperties'] as Schema)['properties'] as Record<string, Schema>;
  cluster['overrides'] = kept(
    "Fields of the base this cluster's deployments change on every stage (its namespace...).",
  );
  return generated;
}

const TRAIN_STATUS_SCHEMA: Schema = {
  type: 'object',
  properties: {
    state: {
      type: 'string',
      description: 'Running, Succeeded, Held, RolledBack, Failed or Aborted (the train); Waiting or Invalid.',
    },
    message: { type: 'string' },
    image: { type: 'string' },
    version: { type: 'string' },
    stages: {
      type: 'array',
      description: "Each stage: its state, until when it waits, and each cluster's state.",
      items: {
        type: 'object',
        properties: {
          name: { type: 'string' },
          state: { type: 'string' },
          waitingUntil: { type: 'string', format: 'date-time' },
          clusters: { type: 'string' },
        },
      },
    },
    workflowId: { type: 'string' },
    runId: { type: 'string' },
    observedGeneration: {
      type: 'integer',
      format: 'int64',
      description: 'The generation whose train the status describes.',
    },
  },
};

/** The CustomResourceDefinition of `ReleaseTrain`, as applied to a cluster. */
export function releaseTrainCrd(): Schema {
  return customResourceDefinition({
    kind: RELEASE_TRAIN_KIND,
    plural: RELEASE_TRAIN_PLURAL,
    shortName: 'train',
    columns: [
      column('Image', 'string', '.spec.image', 'The image declared'),
      column('State', 'string', '.status.state', "The train's state"),
      column('Message', 'string', '.status.message', 'What the train does now, or how it ended'),
    ],
    description:
      'A release train, declared: a change of its spec (its image, say) takes the version through its ' +
      'stages, cluster by cluster, as a Temporal workflow.',
    spec: {
      ...releaseTrainSpecSchema(),
      description: "The train spec (docs/trains.md); the train's name defaults to the resource name.",
    },
    status: TRAIN_STATUS_SCHEMA,
  });
}

/** The CRD as deploy/gitops/release-train-crd.yaml holds it. */
export function releaseTrainCrdYaml(): string {
  return (
    `# Generated from the train spec's zod schema by \`npm run generate:crd\` (src/gitops/release-crd.ts): do ` +
    `not edit.\n${stringify(releaseTrainCrd(), { lineWidth: 0 })}`
  );
}
