/**
 * The real node (test/k8s-harness/real-node.ts): a pod's container is a process on this machine,
 * the kubelet restarts it when it dies and reports the restart, the node reports the release it
 * runs, a second node on the machine is refused, and a stopped node leaves the host as it found it.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { eventually } from '../helpers/eventually.js';
import { HARNESS_BINARY, KUBERNETES_VERSION, startControlPlane } from './control-plane.js';
import type { ControlPlane } from './control-plane.js';
import { containerProcesses, prepareRealNode, REAL_NODE } from './real-node.js';

/** What the node changes on the host: its links, iptables chains, pod cgroups and mounts. */
function hostState(dir: string): Record<string, number> {
  const links = execFileSync('ip', ['-o', 'link']).toString().split('\n').filter((l) => l.includes('bluegreen-')).length;
  const chains = ['nat', 'filter'].reduce((n, table) => n + execFileSync('iptables-save', ['-t', table]).toString().split('\n').filter((l) => /KUBE-|CNI-/.test(l)).length, 0);
  const cgroups = readdirSync('/sys/fs/cgroup').filter((c) => existsSync(join('/sys/fs/cgroup', c, 'kubepods'))).length;
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir)).length;
  return { links, chains, cgroups, mounts };
}

describe('a real node', { skip: process.getuid?.() !== 0 ? 'a real node needs root' : false }, () => {
  let plane: ControlPlane;
  let core: k8s.CoreV1Api;
  const dir = mkdtempSync(join(tmpdir(), 'real-node-'));
  const NS = 'default';
  const forwarding = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();

  before(async () => {
    plane = await startControlPlane({ dir, realNode: true });
    core = plane.adminConfig().makeApiClient(k8s.CoreV1Api);
  });

  after(async () => {
    await plane?.stop().catch(() => undefined);
  });

  it('reports the release it runs and its container runtime, and is Ready', async () => {
    const node = await core.readNode({ name: REAL_NODE.name });
    assert.equal(node.status?.nodeInfo?.kubeletVersion, KUBERNETES_VERSION);
    assert.match(node.status?.nodeInfo?.containerRuntimeVersion ?? '', /^containerd:\/\/2\./);
    assert.deepEqual(node.status?.addresses?.find((a) => a.type === 'InternalIP')?.address, REAL_NODE.ip);
    assert.ok(node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  });

  it("runs a pod whose container is a process on this machine; SIGKILLed, it is restarted and the kubelet reports the restart", async () => {
    await core.createNamespacedPod({
      namespace: NS,
      body: {
        metadata: { name: 'real' },
        spec: { containers: [{ name: 'pause', image: REAL_NODE.pauseImage, imagePullPolicy: 'Never' }], terminationGracePeriodSeconds: 1 },
      },
    });
    const status = async () => (await core.readNamespacedPod({ name: 'real', namespace: NS })).status?.containerStatuses?.[0];
    await eventually(async () => Boolean((await status())?.ready), 'the pod Ready', 60_000);
    const first = (await status())!;
    const id = first.containerID!.replace('containerd://', '');
    const [pid] = containerProcesses(id);
    assert.ok(pid, `a process of container ${id} runs here`);
    assert.equal(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim(), '/pause');

    process.kill(pid, 'SIGKILL');
    await eventually(async () => (await status())?.restartCount === 1 && Boolean((await status())?.ready), 'restartCount 1 and Ready again', 60_000);
    const again = (await status())!;
    assert.equal(again.lastState?.terminated?.exitCode, 137, 'the kubelet saw the SIGKILL');
    const [restarted] = containerProcesses(again.containerID!.replace('containerd://', ''));
    assert.ok(restarted && restarted !== pid, `a new process (${restarted}) replaced ${pid}`);
  });

  it('refuses a second real node on this machine, naming the first', async () => {
    await assert.rejects(prepareRealNode({ dir: mkdtempSync(join(tmpdir(), 'second-node-')), harness: HARNESS_BINARY }), /a real node already runs on this machine \(process \d+/);
  });

  it('leaves the host as it found it when it stops', async () => {
    assert.notDeepEqual(hostState(dir), { links: 0, chains: 0, cgroups: 0, mounts: 0 }, 'the running node changed the host');
    await plane.stop();
    assert.deepEqual(hostState(dir), { links: 0, chains: 0, cgroups: 0, mounts: 0 });
    assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), forwarding);
  });
});
