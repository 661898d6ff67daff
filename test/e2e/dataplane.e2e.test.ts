/**
 * Zero downtime as traffic sees it, through real data planes on the real node
 * (test/helpers/dataplane.ts): 500 detections/s from vegeta, open-loop, through each entry point
 * while deployments run through its router:
 * - the Service through kube-proxy's rules (service-selector, replica-ratio);
 * - Traefik's Gateway listener (gateway-api: the HTTPRoute's weights, its status written by Traefik);
 * - Traefik's NGINX Ingress entry (ingress: the backend switch, the canary annotations).
 * Every request is attributed to the pod that answered it. The assertions are on what the traffic
 * saw: no failed request during a switch, an abort or a scale-down; the aborted slot answering
 * nothing once its abort is accepted and the old slot drained; each canary step's served share
 * within 1 point of its weight; once a switch is verified (each deployment verifies its full
 * routes by traffic, traffic.probe), every new connection reaching the new slot.
 *
 * The suite runs 4 of the 35 cases bench:dataplane runs (SAMPLE below: a switch, an abort, a canary
 * and a faulty version's rollback, each through another entry point, chosen by a fixed seed), after
 * a check that Traefik writes the HTTPRoute's status and the router heeds it, and a switch through
 * the Service with the node's kube-proxy paused (its rules late, as on a starved node).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { KubernetesPlatform } from '../../src/platforms/kubernetes-platform.js';
import { parseDeploymentSpec } from '../../src/deployment-spec/deployment-spec.js';
import { GATEWAY_GROUP } from '../../src/routers/gateway-api/kubernetes.js';
import { otherSlot } from '../../src/shared/slots.js';
import { targetOf } from '../../src/shared/target.js';
import {
  abortDuringMonitoring,
  blueGreenSwitch,
  canary,
  canarySteps,
  faultyRollback,
  IMAGE,
  prepare,
  ROUTERS,
  startDataPlane,
  whyFailed,
} from '../helpers/dataplane.js';
import type { DataPlane, Figures } from '../helpers/dataplane.js';
import { fileNamespace } from '../helpers/kubernetes.js';
import { GATEWAY_CONTROLLER } from '../k8s-harness/traefik.js';
import { trafficThrough } from '../../src/activities/traffic.js';

const NS = fileNamespace(import.meta.url);
const TASK_QUEUE = 'bluegreen-dataplane-e2e';
const RATE = 500;
/**
 * The suite's sample of bench:dataplane's 35 cases: one of each kind, each through a different
 * entry point, the pairing rotated by a fixed seed (the switch among the routers that switch at
 * once, the canary among the weighted data planes, whose shares are exact).
 */
const SEED = 0;
const SAMPLE = {
  switch: (['service-selector', 'gateway-api', 'ingress'] as const)[SEED % 3]!,
  abort: ROUTERS[(SEED + 1) % ROUTERS.length]!,
  canary: (['gateway-api', 'ingress'] as const)[SEED % 2]!,
  faulty: ROUTERS[(SEED + 3) % ROUTERS.length]!,
};

const show = (figures: Figures) =>
  console.log(
    `${figures.router} ${figures.scenario}: ${JSON.stringify({ ...figures, router: undefined, scenario: undefined })}`,
  );

describe(
  'traffic through real data planes during deployments, on a real node',
  { skip: process.getuid?.() !== 0 ? 'a real node needs root' : false },
  () => {
    let dataPlane: DataPlane;

    before(async () => {
      dataPlane = await startDataPlane(NS, TASK_QUEUE);
    });

    after(async () => {
      await dataPlane?.stop();
    });

    it("gateway-api: Traefik writes the HTTPRoute's status, and a weight is held only once Traefik has accepted the route's generation", async () => {
      const custom = dataPlane.plane.adminConfig().makeApiClient(k8s.CustomObjectsApi);
      const readRoute = async () =>
        (await custom.getNamespacedCustomObject({
          group: GATEWAY_GROUP,
          version: 'v1',
          namespace: NS,
          plural: 'httproutes',
          name: 'detection-api',
        })) as {
          metadata: { generation: number };
          spec: { rules: Record<string, unknown>[] };
          status?: {
            parents?: {
              controllerName: string;
              conditions: { type: string; status: string; observedGeneration: number }[];
            }[];
          };
        };
      await prepare(dataPlane, dataPlane.entryPoints['gateway-api']);
      const route = await readRoute();
      const parent = route.status?.parents?.[0];
      assert.equal(parent?.controllerName, GATEWAY_CONTROLLER);
      assert.deepEqual(
        parent?.conditions
          .filter((c) => c.type === 'Accepted' || c.type === 'ResolvedRefs')
          .map((c) => [c.type, c.status, c.observedGeneration]),
        [
          ['Accepted', 'True', route.metadata.generation],
          ['ResolvedRefs', 'True', route.metadata.generation],
        ],
      );

      // A route whose parent names a listener the Gateway does not have, everything on the live slot:
      // Traefik refuses it, and the router's verification says so in Traefik's words instead of
      // holding a weight nobody serves.
      const live = await dataPlane.liveSlot();
      const { spec } = route;
      await custom.createNamespacedCustomObject({
        group: GATEWAY_GROUP,
        version: 'v1',
        namespace: NS,
        plural: 'httproutes',
        body: {
          apiVersion: `${GATEWAY_GROUP}/v1`,
          kind: 'HTTPRoute',
          metadata: { name: 'detection-api-refused' },
          spec: {
            ...spec,
            parentRefs: [{ name: 'platform-gateway', sectionName: 'no-such-listener' }],
            rules: [
              {
                ...spec.rules[0],
                backendRefs: (['blue', 'green'] as const).map((slot) => ({
                  name: `detection-api-${slot}`,
                  port: 8000,
                  weight: slot === live ? 100 : 0,
                })),
              },
            ],
          },
        },
      });
      const target = targetOf(
        parseDeploymentSpec({
          app: 'detection-api',
          namespace: NS,
          image: IMAGE('v2.2.0'),
          strategy: 'canary',
          traffic: { router: 'gateway-api', httpRoute: 'detection-api-refused' },
        }),
      );
      const platform = new KubernetesPlatform(dataPlane.plane.adminConfig());
      const progress = { heartbeat: () => undefined, signal: new AbortController().signal };
      await assert.rejects(
        trafficThrough(platform.routers).verifyTrafficWeight(
          { target, router: 'gateway-api', stable: otherSlot(live), canary: live, weight: 100, timeoutSeconds: 20 },
          progress,
        ),
        /its gateways report platform-gateway: Accepted False \(NoMatchingParent\)/,
      );
    });

    it(`${SAMPLE.switch}: a blue-green switch and the old slot's scale-down under ${RATE} requests/s fail no request`, async () => {
      const figures = await blueGreenSwitch(dataPlane, dataPlane.entryPoints[SAMPLE.switch], RATE);
      show(figures);
      assert.equal(figures.outcome, 'Succeeded');
      assert.ok(figures.sent > RATE * 10, `${figures.sent} requests sent`);
      assert.equal(figures.failed.total, 0, whyFailed(figures));
      assert.ok(figures.propagationMs !== undefined, 'the new slot answered once the router was written');
      assert.deepEqual(figures.newConnectionsAtMonitoring, { toNew: 20, sent: 20 });
    });

    it(`service-selector: with kube-proxy paused 8 s from the smoke suite on, the switch is verified by traffic: the monitor starts only once new connections reach the new slot`, async () => {
      // The EndpointSlices move at the switch, kube-proxy's rules only once it resumes. Read back
      // alone (traffic.probe left out), the monitor started while all 20 new connections still
      // went to the old slot (0 of 20, and 19.9 s until vegeta's first answer from the new one).
      const figures = await blueGreenSwitch(dataPlane, dataPlane.entryPoints['service-selector'], RATE, {
        stallKubeProxyMs: 8_000,
      });
      show(figures);
      assert.equal(figures.outcome, 'Succeeded');
      assert.deepEqual(figures.newConnectionsAtMonitoring, { toNew: 20, sent: 20 });
      assert.equal(figures.failed.total, 0, whyFailed(figures));
    });

    it(`${SAMPLE.abort}: an abort during monitoring under ${RATE} requests/s fails no request, and the aborted slot answers nothing once the abort is done`, async () => {
      const figures = await abortDuringMonitoring(dataPlane, dataPlane.entryPoints[SAMPLE.abort], RATE);
      show(figures);
      assert.equal(figures.outcome, 'RolledBack/Aborted');
      assert.equal(figures.failed.total, 0, whyFailed(figures));
      assert.ok(figures.abortReadBackMs !== undefined, 'the router was read back on the live slot');
      assert.equal(figures.abortedAnsweredAfterDone, 0, 'the aborted slot answered nothing once the abort was done');
    });

    it(`${SAMPLE.canary}: a canary ${canarySteps(SAMPLE.canary).join(' → ')} % serves each step's weight within 1 point at ${RATE} requests/s`, async () => {
      const figures = await canary(dataPlane, dataPlane.entryPoints[SAMPLE.canary], RATE, 7);
      show(figures);
      assert.equal(figures.outcome, 'Succeeded');
      assert.deepEqual(
        figures.shares!.map((s) => s.weight),
        canarySteps(SAMPLE.canary).filter((w) => w < 100),
      );
      for (const share of figures.shares!) {
        assert.ok(share.requests > RATE * 3, `${share.requests} requests during the ${share.weight} % hold`);
        assert.ok(
          Math.abs(share.served - share.weight) <= 1,
          `${share.weight} % set, ${share.served.toFixed(2)} % served`,
        );
      }
      assert.equal(figures.failed.total, 0, whyFailed(figures));
    });

    it(`${SAMPLE.faulty}: a version that crashes once live is rolled back on its restarts, no request failing before it was live, and the live slot answers again`, async () => {
      const entry = dataPlane.entryPoints[SAMPLE.faulty];
      const figures = await faultyRollback(dataPlane, entry, RATE);
      show(figures);
      assert.equal(figures.outcome, 'RolledBack/pod-restarts');
      assert.equal(
        figures.failed.total,
        figures.blastRadius,
        'every failed request came once the faulty version was live',
      );
      assert.equal(await prepare(dataPlane, entry), await dataPlane.liveSlot());
    });
  },
);
