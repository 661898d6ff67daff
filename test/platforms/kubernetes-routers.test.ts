/**
 * The kubernetes adapter's gateway-api and ingress routers against the real control plane (its
 * Gateway API CRDs installed server-side from the module, as the harness does), with deploy/ and
 * the routers' components applied: the object after each call, a second call that writes nothing
 * (resourceVersion unchanged), foreign rules, filters and annotations untouched, a real 409 from a
 * write that lands between our read and our patch, clear errors before any traffic moves for a
 * missing backend, route, Ingress or CRD, and a 403 for every verb the components' Roles grant.
 * That a weight through a route is held only once its gateways accept the route's generation is
 * tested where a real Gateway controller (Traefik) writes that status: test/e2e/dataplane.e2e.test.ts.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import type { Target } from '../../src/activities/contract.js';
import { GATEWAY_GROUP, KubernetesHttpRoute } from '../../src/routers/gateway-api/kubernetes.js';
import { GatewayApiRouter } from '../../src/routers/gateway-api/behaviour.js';
import { NGINX_CANARY, NGINX_CANARY_WEIGHT } from '../../src/shared/traffic.js';
import type { KubernetesApi } from '../../src/routers/kubernetes-api.js';
import { KubernetesPlatform, toFailure } from '../../src/platforms/kubernetes-platform.js';
import { ErrorType } from '../../src/shared/errors.js';
import { targetOf } from '../../src/shared/target.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { installGatewayApi } from '../k8s-harness/control-plane.js';
import { progress, rejection } from '../helpers/platform-calls.js';
import { endpointPods, fileNamespace, startClusterWithManifests } from '../helpers/kubernetes.js';
import { eventually } from '../helpers/eventually.js';
import type { Cluster } from '../helpers/kubernetes.js';
import { trafficThrough } from '../../src/activities/traffic.js';

const ROUTERS = fileURLToPath(new URL('../../deploy/routers/', import.meta.url));
const manifest = <T>(path: string) => parseYaml(readFileSync(`${ROUTERS}${path}`, 'utf8')) as T;
const V1 = 'registry.internal/detection-api:v2.1.0';
const NS = fileNamespace(import.meta.url);
const MERGE = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);

const gatewayTarget = targetOf(
  parseDeploymentSpec({
    app: 'detection-api',
    namespace: NS,
    image: V1,
    strategy: 'canary',
    traffic: { router: 'gateway-api', httpRoute: 'detection-api' },
  }),
);
const ingressTarget = targetOf(
  parseDeploymentSpec({
    app: 'detection-api',
    namespace: NS,
    image: V1,
    strategy: 'canary',
    traffic: { router: 'ingress' },
  }),
);

interface Route {
  metadata: { resourceVersion: string; annotations?: Record<string, string> };
  spec: {
    rules: {
      matches?: unknown[];
      filters?: unknown[];
      backendRefs: { name: string; port?: number; weight?: number }[];
    }[];
  };
}

describe('the gateway-api and ingress routers against a real control plane', () => {
  let cluster: Cluster;
  let platform: KubernetesPlatform;
  let custom: k8s.CustomObjectsApi;
  let networking: k8s.NetworkingV1Api;
  let objects: k8s.KubernetesObjectApi;

  const readRoute = async () =>
    (await custom.getNamespacedCustomObject({
      group: GATEWAY_GROUP,
      version: 'v1',
      namespace: NS,
      plural: 'httproutes',
      name: 'detection-api',
    })) as Route;
  const readIngress = (name: string) => networking.readNamespacedIngress({ name, namespace: NS });
  const weights = (route: Route, rule = 0) =>
    Object.fromEntries(route.spec.rules[rule]!.backendRefs.map((r) => [r.name, r.weight]));
  /** The example route plus a rule of another team's, which the router must never touch. */
  const FOREIGN_RULE = {
    matches: [{ path: { type: 'PathPrefix', value: '/docs' } }],
    filters: [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }],
    backendRefs: [{ name: 'docs', port: 80 }],
  };
  const applyRoute = async () => {
    const route = manifest<k8s.KubernetesObject & { spec: Route['spec'] }>('gateway-api/httproute.yaml');
    route.metadata = { ...route.metadata, namespace: NS };
    route.spec.rules = [...route.spec.rules, FOREIGN_RULE];
    await objects.patch(route, undefined, undefined, 'router-test', true, k8s.PatchStrategy.ServerSideApply);
  };
  const applyIngress = async () => {
    const ingress = manifest<k8s.V1Ingress>('ingress/ingress.yaml');
    ingress.metadata = { ...ingress.metadata, namespace: NS };
    ingress.spec!.rules!.push({
      host: 'docs.internal.example.com',
      http: {
        paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'docs', port: { number: 80 } } } }],
      },
    });
    await objects.patch(ingress, undefined, undefined, 'router-test', true, k8s.PatchStrategy.ServerSideApply);
  };

  before(async () => {
    cluster = await startClusterWithManifests({ namespace: NS });
    const config = cluster.plane.adminConfig();
    platform = new KubernetesPlatform(config);
    custom = config.makeApiClient(k8s.CustomObjectsApi);
    networking = config.makeApiClient(k8s.NetworkingV1Api);
    objects = k8s.KubernetesObjectApi.makeApiClient(config);
    await applyRoute();
    await applyIngress();
    await networking
      .deleteNamespacedIngress({ name: 'detection-api-ingress-canary', namespace: NS })
      .catch(() => undefined);
    // The canary slot runs two replicas, so the weighted slots both have endpoints.
    await platform.deploySlot({ target: gatewayTarget, slot: 'green', image: V1, version: 'v2.1.0', replicas: 2 });
    await platform.waitForSlotReady(
      { target: gatewayTarget, slot: 'green', replicas: 2, timeoutSeconds: 60 },
      progress(),
    );
    // Ready pods reach the slot Services' EndpointSlices a moment later: the figures below count them.
    // Blue's may still lag too when an earlier file on the shared control plane replaced its pods.
    await eventually(
      async () =>
        (await endpointPods(cluster, 'detection-api-green', NS)).length === 2 &&
        (await endpointPods(cluster, 'detection-api-blue', NS)).length === 3,
      'three blue and two green endpoints',
    );
  });

  after(async () => {
    await platform?.scaleSlot({ target: gatewayTarget, slot: 'green', replicas: 0 }, progress());
    await cluster?.plane.stop();
  });

  it('gateway-api: reads the live slot from the weights, writes only the slot backendRefs, and writes nothing the second time', async () => {
    assert.equal((await platform.describe(gatewayTarget)).activeSlot, 'blue');
    const request = {
      target: gatewayTarget,
      router: 'gateway-api' as const,
      stable: 'blue' as const,
      canary: 'green' as const,
    };
    const original = await readRoute();

    assert.deepEqual(await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 25 }), {
      changed: true,
      previous: 'weights detection-api-blue 100, detection-api-green 0',
    });
    const at25 = await readRoute();
    assert.deepEqual(weights(at25), { 'detection-api-blue': 75, 'detection-api-green': 25 });
    assert.deepEqual(at25.spec.rules[0]!.filters, original.spec.rules[0]!.filters, 'the rule’s filter is kept');
    assert.deepEqual(at25.spec.rules[0]!.matches, original.spec.rules[0]!.matches);
    assert.deepEqual(
      at25.spec.rules[1],
      original.spec.rules[1],
      'the foreign rule is byte for byte as its owner wrote it',
    );
    const verified = await trafficThrough(platform.routers).verifyTrafficWeight(
      { ...request, weight: 25, timeoutSeconds: 30 },
      progress(),
    );
    assert.deepEqual([verified.weight, verified.endpoints], [25, { blue: 3, green: 2 }]);

    assert.deepEqual(await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 25 }), {
      changed: false,
      previous: 'weights detection-api-blue 75, detection-api-green 25',
    });
    assert.equal(
      (await readRoute()).metadata.resourceVersion,
      at25.metadata.resourceVersion,
      'the second call wrote nothing',
    );
    const split = await rejection(platform.describe(gatewayTarget));
    assert.equal(split.type, ErrorType.PreconditionFailed);
    assert.match(
      split.message,
      new RegExp(
        `httproute detection-api in namespace ${NS} weighs detection-api-blue 75, detection-api-green 25: no slot takes all the traffic`,
      ),
    );

    const unheld = await rejection(
      trafficThrough(platform.routers).verifyTrafficWeight({ ...request, weight: 50, timeoutSeconds: 1 }, progress()),
    );
    assert.equal(unheld.type, ErrorType.TrafficNotVerified);
    assert.match(
      unheld.message,
      /does not hold 50 % for green after 1 s: it weighs detection-api-blue 75, detection-api-green 25, with 3 ready endpoints behind blue and 2 behind green/,
    );

    await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 100 });
    assert.deepEqual(weights(await readRoute()), { 'detection-api-blue': 0, 'detection-api-green': 100 });
    assert.equal((await platform.describe(gatewayTarget)).activeSlot, 'green');
    await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 0 });
    assert.deepEqual(weights(await readRoute()), { 'detection-api-blue': 100, 'detection-api-green': 0 });
    assert.deepEqual((await readRoute()).spec.rules[1], original.spec.rules[1]);
  });

  it('gateway-api: blue-green is a 0/100 switch, verified by the weights and the new slot’s endpoints', async () => {
    assert.deepEqual(await trafficThrough(platform.routers).switchTraffic({ target: gatewayTarget, slot: 'green' }), {
      changed: true,
      previousSlot: 'blue',
    });
    assert.deepEqual(weights(await readRoute()), { 'detection-api-blue': 0, 'detection-api-green': 100 });
    assert.equal(
      (
        await trafficThrough(platform.routers).verifyTraffic(
          { target: gatewayTarget, slot: 'green', timeoutSeconds: 30 },
          progress(),
        )
      ).endpoints,
      2,
    );
    const resourceVersion = (await readRoute()).metadata.resourceVersion;
    assert.deepEqual(await trafficThrough(platform.routers).switchTraffic({ target: gatewayTarget, slot: 'green' }), {
      changed: false,
      previousSlot: 'green',
    });
    assert.equal((await readRoute()).metadata.resourceVersion, resourceVersion);
    await trafficThrough(platform.routers).switchTraffic({ target: gatewayTarget, slot: 'blue' });
    await trafficThrough(platform.routers).verifyTraffic(
      { target: gatewayTarget, slot: 'blue', timeoutSeconds: 30 },
      progress(),
    );
  });

  it('gateway-api: a rule naming one slot gets the other beside it, with the same port and filters', async () => {
    const route = await readRoute();
    const only = {
      ...route.spec.rules[0]!,
      backendRefs: [
        {
          name: 'detection-api-blue',
          port: 8000,
          filters: [
            { type: 'RequestHeaderModifier', requestHeaderModifier: { add: [{ name: 'x-slot', value: 'a' }] } },
          ],
        },
      ],
    };
    await custom.patchNamespacedCustomObject(
      {
        group: GATEWAY_GROUP,
        version: 'v1',
        namespace: NS,
        plural: 'httproutes',
        name: 'detection-api',
        body: { spec: { rules: [only, FOREIGN_RULE] } },
      },
      MERGE,
    );
    await trafficThrough(platform.routers).setTrafficWeight({
      target: gatewayTarget,
      router: 'gateway-api',
      stable: 'blue',
      canary: 'green',
      weight: 5,
    });
    const refs = (await readRoute()).spec.rules[0]!.backendRefs;
    assert.deepEqual(refs, [
      { ...only.backendRefs[0], group: '', kind: 'Service', weight: 95 },
      { ...only.backendRefs[0], group: '', kind: 'Service', name: 'detection-api-green', weight: 5 },
    ]);
    await applyRoute();
    await trafficThrough(platform.routers).setTrafficWeight({
      target: gatewayTarget,
      router: 'gateway-api',
      stable: 'blue',
      canary: 'green',
      weight: 0,
    });
  });

  it('gateway-api: a write landing between our read and our patch is a real 409, read again; neither write is lost', async () => {
    const config = cluster.plane.adminConfig();
    let patches = 0;
    const realCustom = config.makeApiClient(k8s.CustomObjectsApi);
    // Before our first patch reaches the server, another writer (an admin's kubectl) labels the route.
    const interleaved = new Proxy(realCustom, {
      get(api, key) {
        if (key !== 'patchNamespacedCustomObject') return Reflect.get(api, key) as unknown;
        return async (...args: Parameters<k8s.CustomObjectsApi['patchNamespacedCustomObject']>) => {
          patches += 1;
          if (patches === 1) {
            await realCustom.patchNamespacedCustomObject(
              {
                group: GATEWAY_GROUP,
                version: 'v1',
                namespace: NS,
                plural: 'httproutes',
                name: 'detection-api',
                body: { metadata: { labels: { team: 'edge' } } },
              },
              MERGE,
            );
          }
          return await realCustom.patchNamespacedCustomObject(...args);
        };
      },
    });
    const router = new GatewayApiRouter(new KubernetesHttpRoute(apiOf(config, { custom: interleaved })));
    const report = await router.setWeight({ target: gatewayTarget, stable: 'blue', canary: 'green', weight: 50 });
    assert.equal(report.changed, true);
    assert.equal(patches, 2, 'the first patch met a 409 and was computed again from a fresh read');
    const route = (await readRoute()) as Route & { metadata: { labels?: Record<string, string> } };
    assert.equal(route.metadata.labels?.['team'], 'edge', 'the other writer’s change survives');
    assert.deepEqual(weights(route), { 'detection-api-blue': 50, 'detection-api-green': 50 });
    await trafficThrough(platform.routers).setTrafficWeight({
      target: gatewayTarget,
      router: 'gateway-api',
      stable: 'blue',
      canary: 'green',
      weight: 0,
    });
  });

  it('gateway-api: a missing backend, route or rule is a clear error before any traffic moves', async () => {
    const before = (await readRoute()).metadata.resourceVersion;
    const missingBackend = retarget(gatewayTarget, {
      slotServices: { blue: 'detection-api-blue', green: 'no-such-green' },
    });
    const backend = await rejection(
      trafficThrough(platform.routers).setTrafficWeight({
        target: missingBackend,
        router: 'gateway-api',
        stable: 'blue',
        canary: 'green',
        weight: 5,
      }),
    );
    assert.equal(backend.type, ErrorType.NotFound);
    assert.match(
      backend.message,
      new RegExp(`read service no-such-green \\(slot green's backend\\): not found in namespace ${NS}`),
    );
    const route = await rejection(platform.describe(retarget(gatewayTarget, { httpRoute: 'no-such-route' })));
    assert.equal(route.type, ErrorType.NotFound);
    assert.match(
      route.message,
      new RegExp(
        `read httproute no-such-route: not found in namespace ${NS} \\(httproutes.gateway.networking.k8s.io "no-such-route" not found\\)`,
      ),
    );
    // Services that exist, but that no rule of the route names.
    const unnamed = retarget(gatewayTarget, {
      slotServices: { blue: 'detection-api-service', green: 'detection-api-service' },
    });
    const rule = await rejection(
      trafficThrough(platform.routers).setTrafficWeight({
        target: unnamed,
        router: 'gateway-api',
        stable: 'blue',
        canary: 'green',
        weight: 5,
      }),
    );
    assert.equal(rule.type, ErrorType.PreconditionFailed);
    assert.match(
      rule.message,
      new RegExp(
        `httproute detection-api in namespace ${NS} has no rule with a backendRef to detection-api-service or detection-api-service`,
      ),
    );
    assert.equal((await readRoute()).metadata.resourceVersion, before, 'nothing was written');
  });

  it('ingress: blue-green switches the backend of the slot paths only; other hosts, TLS and annotations stay', async () => {
    assert.equal((await platform.describe(ingressTarget)).activeSlot, 'blue');
    const original = await readIngress('detection-api-ingress');
    assert.deepEqual(await trafficThrough(platform.routers).switchTraffic({ target: ingressTarget, slot: 'green' }), {
      changed: true,
      previousSlot: 'blue',
    });
    const switched = await readIngress('detection-api-ingress');
    assert.equal(switched.spec!.rules![0]!.http!.paths[0]!.backend.service!.name, 'detection-api-green');
    assert.equal(switched.spec!.rules![0]!.http!.paths[0]!.backend.service!.port!.number, 8000);
    assert.deepEqual(switched.spec!.rules![1], original.spec!.rules![1], 'the docs host is untouched');
    assert.deepEqual([switched.spec!.tls, switched.spec!.ingressClassName], [original.spec!.tls, 'nginx']);
    assert.equal(switched.metadata!.annotations!['nginx.ingress.kubernetes.io/limit-rps'], '200');
    assert.equal(
      (
        await trafficThrough(platform.routers).verifyTraffic(
          { target: ingressTarget, slot: 'green', timeoutSeconds: 30 },
          progress(),
        )
      ).endpoints,
      2,
    );
    assert.equal((await platform.describe(ingressTarget)).activeSlot, 'green');
    assert.deepEqual(await trafficThrough(platform.routers).switchTraffic({ target: ingressTarget, slot: 'green' }), {
      changed: false,
      previousSlot: 'green',
    });
    assert.equal(
      (await readIngress('detection-api-ingress')).metadata!.resourceVersion,
      switched.metadata!.resourceVersion,
      'the second call wrote nothing',
    );
    await assert.rejects(readIngress('detection-api-ingress-canary'), 'blue-green makes no canary Ingress');
    await trafficThrough(platform.routers).switchTraffic({ target: ingressTarget, slot: 'blue' });
  });

  it('ingress: a canary goes through NGINX canary annotations on a second Ingress over the canary slot; promotion moves the stable backend and lets go', async () => {
    const request = {
      target: ingressTarget,
      router: 'ingress' as const,
      stable: 'blue' as const,
      canary: 'green' as const,
    };
    assert.deepEqual(await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 5 }), {
      changed: true,
      previous: `ingress detection-api-ingress in namespace ${NS} sends to blue`,
    });
    const made = await readIngress('detection-api-ingress-canary');
    assert.deepEqual(
      [made.metadata!.annotations![NGINX_CANARY], made.metadata!.annotations![NGINX_CANARY_WEIGHT]],
      ['true', '5'],
    );
    assert.equal(made.spec!.ingressClassName, 'nginx');
    assert.deepEqual(
      JSON.parse(JSON.stringify(made.spec!.rules)),
      [
        {
          host: 'detection-api.internal.example.com',
          http: {
            paths: [
              {
                path: '/',
                pathType: 'Prefix',
                backend: { service: { name: 'detection-api-green', port: { number: 8000 } } },
              },
            ],
          },
        },
      ],
      'only the slot paths, over the canary',
    );
    assert.equal(
      (await readIngress('detection-api-ingress')).spec!.rules![0]!.http!.paths[0]!.backend.service!.name,
      'detection-api-blue',
    );
    const at5 = await trafficThrough(platform.routers).verifyTrafficWeight(
      { ...request, weight: 5, timeoutSeconds: 30 },
      progress(),
    );
    assert.deepEqual([at5.weight, at5.endpoints], [5, { blue: 3, green: 2 }]);

    // Someone's own annotation on the canary Ingress stays through our writes.
    await networking.patchNamespacedIngress(
      {
        name: 'detection-api-ingress-canary',
        namespace: NS,
        body: { metadata: { annotations: { 'example.com/owner': 'edge' } } },
      },
      MERGE,
    );
    await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 50 });
    const at50 = await readIngress('detection-api-ingress-canary');
    assert.deepEqual(
      [at50.metadata!.annotations![NGINX_CANARY_WEIGHT], at50.metadata!.annotations!['example.com/owner']],
      ['50', 'edge'],
    );
    assert.deepEqual(await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 50 }), {
      changed: false,
      previous: `ingress detection-api-ingress in namespace ${NS} sends to blue, canary ingress detection-api-ingress-canary sends 50 % to green`,
    });
    assert.equal(
      (await readIngress('detection-api-ingress-canary')).metadata!.resourceVersion,
      at50.metadata!.resourceVersion,
      'the second call wrote nothing',
    );

    await trafficThrough(platform.routers).setTrafficWeight({ ...request, weight: 100 });
    assert.equal(
      (await readIngress('detection-api-ingress')).spec!.rules![0]!.http!.paths[0]!.backend.service!.name,
      'detection-api-green',
    );
    assert.equal((await readIngress('detection-api-ingress-canary')).metadata!.annotations![NGINX_CANARY_WEIGHT], '0');
    assert.equal(
      (
        await trafficThrough(platform.routers).verifyTrafficWeight(
          { ...request, weight: 100, timeoutSeconds: 30 },
          progress(),
        )
      ).weight,
      100,
    );
    assert.equal((await platform.describe(ingressTarget)).activeSlot, 'green');

    // The next canary runs the other way: the canary Ingress turns to blue in the same write as its weight.
    const back = { ...request, stable: 'green' as const, canary: 'blue' as const };
    await trafficThrough(platform.routers).setTrafficWeight({ ...back, weight: 25 });
    const turned = await readIngress('detection-api-ingress-canary');
    assert.deepEqual(
      [
        turned.spec!.rules![0]!.http!.paths[0]!.backend.service!.name,
        turned.metadata!.annotations![NGINX_CANARY_WEIGHT],
      ],
      ['detection-api-blue', '25'],
    );
    await trafficThrough(platform.routers).setTrafficWeight({ ...back, weight: 0 });
    await trafficThrough(platform.routers).verifyTrafficWeight({ ...back, weight: 0, timeoutSeconds: 30 }, progress());
    await trafficThrough(platform.routers).switchTraffic({ target: ingressTarget, slot: 'blue' });
    assert.equal((await platform.describe(ingressTarget)).activeSlot, 'blue');
  });

  it('ingress: a missing backend or Ingress, or an Ingress naming neither slot, is a clear error before any traffic moves', async () => {
    const before = (await readIngress('detection-api-ingress')).metadata!.resourceVersion;
    const backend = await rejection(
      trafficThrough(platform.routers).switchTraffic({
        target: retarget(ingressTarget, { slotServices: { blue: 'detection-api-blue', green: 'no-such-green' } }),
        slot: 'green',
      }),
    );
    assert.equal(backend.type, ErrorType.NotFound);
    assert.match(backend.message, /read service no-such-green \(slot green's backend\): not found/);
    const missing = await rejection(platform.describe(retarget(ingressTarget, { ingress: 'no-such-ingress' })));
    assert.equal(missing.type, ErrorType.NotFound);
    assert.match(missing.message, new RegExp(`read ingress no-such-ingress: not found in namespace ${NS}`));
    const neither = await rejection(
      platform.describe(retarget(ingressTarget, { slotServices: { blue: 'a', green: 'b' } })),
    );
    assert.equal(neither.type, ErrorType.PreconditionFailed);
    assert.match(
      neither.message,
      new RegExp(`ingress detection-api-ingress in namespace ${NS} has no path whose backend is a or b`),
    );
    assert.equal((await readIngress('detection-api-ingress')).metadata!.resourceVersion, before, 'nothing was written');
  });

  it('needs every verb of each router Role: without any one, a router step is refused with 403', async () => {
    const rbac = cluster.rbac;
    const base = parseYaml(
      readFileSync(fileURLToPath(new URL('../../deploy/worker/role.yaml', import.meta.url)), 'utf8'),
    ) as k8s.V1Role;
    const weigh = (p: KubernetesPlatform, target: Target, weight: number) =>
      trafficThrough(p.routers).setTrafficWeight({
        target,
        router: target.traffic!.router,
        stable: 'blue',
        canary: 'green',
        weight,
      });
    const cases = [
      { component: 'gateway-api', target: gatewayTarget },
      // The first canary makes the canary Ingress (create), the next step patches it.
      { component: 'ingress', target: ingressTarget },
    ];
    const denied: string[] = [];
    // Names of this run's own: a development rerun on the same control plane finds the last run's.
    const run = Math.floor(Math.random() * 1e6);
    let serial = 0;
    for (const { component, target } of cases) {
      const role = manifest<k8s.V1Role>(`${component}/role.yaml`);
      const grants = role.rules!.flatMap((rule, index) => rule.verbs.map((verb) => ({ index, verb })));
      for (const without of [null, ...grants]) {
        // A name of its own per variant: RBAC's informers can never answer from another variant's Role.
        const name = `router-rbac-${run}-${serial++}`;
        const rules = role
          .rules!.map((rule, index) => ({
            ...rule,
            verbs: rule.verbs.filter((verb) => !(without && index === without.index && verb === without.verb)),
          }))
          .filter((r) => r.verbs.length > 0);
        await cluster.core.createNamespacedServiceAccount({ namespace: NS, body: { metadata: { name } } });
        for (const [roleName, roleRules] of [
          [`${name}-base`, base.rules!],
          [name, rules],
        ] as const) {
          await rbac.createNamespacedRole({
            namespace: NS,
            body: { metadata: { name: roleName }, rules: [...roleRules] },
          });
          await rbac.createNamespacedRoleBinding({
            namespace: NS,
            body: {
              metadata: { name: roleName },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: roleName },
              subjects: [{ kind: 'ServiceAccount', name, namespace: NS }],
            },
          });
        }
        await networking
          .deleteNamespacedIngress({ name: 'detection-api-ingress-canary', namespace: NS })
          .catch(() => undefined);
        const restricted = new KubernetesPlatform(
          cluster.plane.configForToken(await cluster.plane.mintToken(NS, name)),
        );
        // RBAC reads its objects from informers: give the new Roles a moment to be seen.
        await new Promise((resolve) => setTimeout(resolve, 500));
        const outcome = await weigh(restricted, target, 5)
          .then(() => weigh(restricted, target, 10))
          .then(
            () => 'allowed',
            (error: unknown) => (error as { type?: string }).type ?? String(error),
          );
        if (without === null) assert.equal(outcome, 'allowed', `${component}: the Role as shipped is enough`);
        else {
          assert.equal(outcome, ErrorType.Forbidden, `${component} without ${without.verb}`);
          denied.push(`${component}:${without.verb}`);
        }
        await weigh(platform, target, 0);
      }
    }
    assert.deepEqual(denied, [
      'gateway-api:get',
      'gateway-api:patch',
      'ingress:get',
      'ingress:patch',
      'ingress:create',
    ]);
  });

  it('gateway-api: without the HTTPRoute CRD, says to install the Gateway API before anything moves', async () => {
    const extensions = cluster.plane.adminConfig().makeApiClient(k8s.ApiextensionsV1Api);
    await extensions.deleteCustomResourceDefinition({ name: 'httproutes.gateway.networking.k8s.io' });
    try {
      const failure = await waitForRejection(() =>
        trafficThrough(platform.routers).setTrafficWeight({
          target: gatewayTarget,
          router: 'gateway-api',
          stable: 'blue',
          canary: 'green',
          weight: 5,
        }),
      );
      assert.equal(failure.type, ErrorType.NotFound);
      assert.match(
        failure.message,
        /the API server does not serve httproutes.gateway.networking.k8s.io\/v1: install the Gateway API CRDs/,
      );
    } finally {
      await installGatewayApi(cluster.plane.adminConfig());
      await applyRoute();
    }
  });
});

/** A target naming other router objects. */
function retarget(target: Target, traffic: Partial<NonNullable<Target['traffic']>>): Target {
  return { ...target, traffic: { ...target.traffic!, ...traffic } };
}

/** The adapter's API clients for `config`, some replaced; the call wrapper maps errors as the adapter's does. */
function apiOf(config: k8s.KubeConfig, replace: Partial<KubernetesApi>): KubernetesApi {
  return {
    core: config.makeApiClient(k8s.CoreV1Api),
    apps: config.makeApiClient(k8s.AppsV1Api),
    discovery: config.makeApiClient(k8s.DiscoveryV1Api),
    networking: config.makeApiClient(k8s.NetworkingV1Api),
    custom: config.makeApiClient(k8s.CustomObjectsApi),
    call: async (what, target, request) => {
      try {
        return await request();
      } catch (error) {
        throw toFailure(error, what, target.namespace);
      }
    },
    ...replace,
  };
}

/**
 * The failure `call` ends in once the CRD's removal is complete: its routes are deleted first, and
 * the API server stops serving the kind within seconds.
 */
async function waitForRejection(call: () => Promise<unknown>) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const error = await call().then(
      () => null,
      (e: unknown) => e,
    );
    if (Date.now() > deadline || (error instanceof Error && /does not serve/.test(error.message)))
      return await rejection(Promise.reject(error ?? new Error('the call still succeeds')));
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
