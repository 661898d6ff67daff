/**
 * A real Kubernetes node on this machine, joined to a control plane of the harness: containerd v2
 * (built by scripts/setup.sh from the Go module proxy) running Debian's runc, the kubelet and
 * kube-proxy of the harness binary, Debian's CNI plugins on a bridge. Pods run for real: their
 * containers are processes here, the kubelet reports their readiness and restarts, and requests to
 * a Service's ClusterIP go through kube-proxy's iptables rules to pod IPs. Pods resolve Service
 * names through the node's cluster DNS (the harness's cluster-dns part).
 *
 * No registry is reachable, so every image the node runs is imported from an archive
 * (`importImage`): the pause image built from Kubernetes' own pause.c, pinned in containerd's
 * config, and the images the project builds with podman.
 *
 * Bridge names, iptables chains and cgroups are host-wide, so one real node runs per machine: a
 * second is refused, naming the first. `stop()` ends every container and process it started,
 * unmounts what they mounted, and removes its network state, leaving the host as it found it.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import { Resolver } from 'node:dns/promises';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { freePort } from '../../src/processes/processes.js';
import { Parts, until } from './parts.js';

const run = promisify(execFile);

/** The node's name, its address and its pods', and the host-wide names it takes. */
export const REAL_NODE = {
  name: 'real-node',
  ip: '10.250.0.1',
  podCidr: '10.244.0.0/24',
  /** The CNI bridge its pods are on. */
  bridge: 'bluegreen-cni0',
  /** A bridge of no ports that holds the node's address (the kernel here has no dummy device). */
  addressBridge: 'bluegreen-node0',
  /** The domain of Service names (SERVICE.NAMESPACE.svc.DOMAIN), answered by the node's cluster DNS on its address. */
  clusterDomain: 'cluster.local',
  /** The sandbox image every pod starts with, built from pause.c and imported at start. */
  pauseImage: 'registry.k8s.io/pause:3.10',
} as const;

const LOCK = '/run/bluegreen-real-node.pid';

/** A container's ID without its runtime's prefix (`containerd://`). */
const bareId = (containerId: string) => containerId.replace(/^containerd:\/\//, '');

/**
 * `read()`, or `fallback` if what it reads is gone: a container that exits takes its cgroup with it
 * (ENOENT once removed; ENODEV while the kernel removes it, as a stop's clean-up once met).
 */
function unlessGone<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENODEV') return fallback;
    throw error;
  }
}

/** A cgroup directory and every one under it, deepest first. */
function cgroupsUnder(path: string): string[] {
  const entries = unlessGone(() => readdirSync(path, { withFileTypes: true }), []);
  return [...entries.filter((e) => e.isDirectory()).flatMap((e) => cgroupsUnder(join(path, e.name))), path];
}

/** A container's memory cgroup (cgroup v1, as the kubelet's cgroupfs driver lays it out): its peak use, in bytes. */
export function containerMemory(containerId: string): { peak(): number } {
  const id = bareId(containerId);
  const dir = cgroupsUnder('/sys/fs/cgroup/memory/kubepods').find((group) => group.endsWith(`/${id}`));
  if (!dir) throw new Error(`no memory cgroup for container ${id}`);
  return { peak: () => Number(readFileSync(join(dir, 'memory.max_usage_in_bytes'), 'utf8')) };
}

/** The processes on this machine of a container (its ID, with or without `containerd://`): those whose cgroup names it. */
export function containerProcesses(containerId: string): number[] {
  const id = bareId(containerId);
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .filter((pid) => unlessGone(() => readFileSync(`/proc/${pid}/cgroup`, 'utf8').includes(id), false))
    .map(Number);
}

export interface RealNode {
  name: string;
  ip: string;
  /**
   * Starts containerd, then the kubelet and kube-proxy against the control plane (`kubeconfigPath`:
   * the admin's), and returns once the node is Ready and kube-proxy has written its rules.
   */
  join(plane: { kubeconfigPath: string; adminConfig: () => k8s.KubeConfig }): Promise<void>;
  /** Imports an image archive (docker-archive or oci-archive) into the node's containerd. */
  importImage(archive: string): Promise<void>;
  /**
   * Pauses kube-proxy (SIGSTOP) for `ms`, then resumes it: the rules in the kernel go on routing
   * as they were, and every EndpointSlice change meanwhile is written only once it resumes, as on
   * a node whose kube-proxy is starved of CPU.
   */
  stallKubeProxy(ms: number): Promise<void>;
  /** Stops the kubelet and kube-proxy, every container and containerd, and unmounts what they mounted. */
  stop(): Promise<void>;
  /** Then (once the control plane bound to its address has stopped): its network state, the host's settings, the lock. */
  release(): Promise<void>;
}

/** Where containerd's binaries (scripts/setup.sh --real-node) and the pause image archive are. */
const NODE_TOOLS = join(fileURLToPath(new URL('../..', import.meta.url)), '.tools/node');

export interface RealNodeOptions {
  dir: string;
  /** The harness binary, whose kubelet and kube-proxy parts run. */
  harness: string;
  log?: (line: string) => void;
}

/** Runs `command` and fails with its output when it fails. */
async function sh(command: string, args: string[]): Promise<string> {
  try {
    return (await run(command, args, { maxBuffer: 16 * 1024 * 1024 })).stdout;
  } catch (error) {
    const { stderr, stdout } = error as { stderr?: string; stdout?: string };
    throw new Error(`${command} ${args.join(' ')}: ${(stderr || stdout || (error as Error).message).trim()}`, { cause: error });
  }
}

const quietly = (command: string, args: string[]) => run(command, args).catch(() => undefined);

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * Takes the machine's one real node, or says who holds it. The lock holds its process and its
 * directory; a lock whose process is gone names the directory of a node that ended without its
 * `stop()` (its process killed), for the new node to clear what that one left.
 */
function takeLock(dir: string): string | null {
  let left: string | null = null;
  if (existsSync(LOCK)) {
    const [holder, holderDir] = readFileSync(LOCK, 'utf8').trim().split(' ');
    if (Number(holder) && isAlive(Number(holder))) {
      throw new Error(`a real node already runs on this machine (process ${holder}, ${LOCK}): bridges, iptables chains and cgroups are host-wide, so one runs at a time`);
    }
    left = holderDir || null;
  }
  writeFileSync(LOCK, `${process.pid} ${dir}`);
  return left;
}

/**
 * Takes the machine's one real node and gives it its address (a control plane for it binds there),
 * ready to `join` a control plane.
 */
export async function prepareRealNode({ dir, harness, log = () => undefined }: RealNodeOptions): Promise<RealNode> {
  const left = takeLock(dir);
  if (left) {
    // A node whose process was killed: its containers, shims and mounts outlived it.
    await killCgroup('kubepods');
    killShims(join(left, 'containerd'));
    unmountUnder(left);
    log(`cleared what a real node killed before its stop() left in ${left}`);
  }
  // However this process ends (a file ended at its bound exits on SIGTERM), the shims and the mounts
  // its pods made go with it (a process killed outright leaves them to the next node's start);
  // stop() does it all in order when the node ends normally.
  const unmountAtExit = () => {
    killShims(join(dir, 'containerd'));
    unmountUnder(dir);
  };
  process.once('exit', unmountAtExit);
  const binaries = {
    containerd: join(NODE_TOOLS, 'containerd'),
    ctr: join(NODE_TOOLS, 'ctr'),
    pauseArchive: join(NODE_TOOLS, 'pause.tar'),
  };
  const parts = new Parts(join(dir, 'logs'));
  const alive = () => parts.alive();
  const containerdDir = join(dir, 'containerd');
  const socket = join(containerdDir, 'containerd.sock');
  const ctr = (...args: string[]) => sh(binaries.ctr, ['--address', socket, '--namespace', 'k8s.io', ...args]);
  // What the node changes on the host, to put back when it stops.
  const host = {
    forwarding: readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(),
    bridgeNf: readFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', 'utf8').trim(),
    rootPropagation: (await sh('findmnt', ['--noheadings', '--output', 'PROPAGATION', '/'])).trim(),
  };

  const stop = async () => {
    // The kubelet first, so that it restarts nothing; then every container (each is in the pods'
    // cgroups), containerd, and the shims that outlive it. Every step runs even if one before it
    // failed (a process left running would outlive the test); the first failure is reported.
    const steps = [
      () => parts.stop('cluster-dns'),
      () => parts.stop('kube-proxy'),
      () => parts.stop('kubelet'),
      () => killCgroup('kubepods'),
      () => parts.stop('containerd'),
      async () => killShims(containerdDir),
      async () => unmountUnder(dir),
      async () => void process.off('exit', unmountAtExit),
    ];
    let failure: unknown = null;
    for (const step of steps) await step().catch((error: unknown) => (failure ??= error));
    if (failure) throw failure;
  };
  const release = async () => {
    await removeNetwork();
    writeFileSync('/proc/sys/net/ipv4/ip_forward', host.forwarding);
    writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', host.bridgeNf);
    if (host.rootPropagation === 'private') await quietly('mount', ['--make-rprivate', '/']);
    rmSync(LOCK, { force: true });
  };

  try {
    await sh('mount', ['--make-rshared', '/']);
    await setUpNetwork(dir);
  } catch (error) {
    await release().catch(() => undefined);
    throw error;
  }

  const joinPlane = async ({ kubeconfigPath, adminConfig }: { kubeconfigPath: string; adminConfig: () => k8s.KubeConfig }) => {
    const started = performance.now();

    // containerd, with the CRI plugin, on a socket of its own; the pause image pinned.
    mkdirSync(containerdDir, { recursive: true });
    const config = join(containerdDir, 'config.toml');
    writeFileSync(config, containerdConfig(containerdDir, join(dir, 'cni')));
    parts.launch('containerd', binaries.containerd, ['--config', config], { ...process.env, PATH: `${NODE_TOOLS}:${process.env['PATH']}` });
    await until(async () => (await ctr('version')).includes('Server'), 'containerd', 30_000, alive);
    await ctr('images', 'import', '--all-platforms', binaries.pauseArchive);
    log(`containerd up, pause image imported (${((performance.now() - started) / 1000).toFixed(1)} s)`);

    // The kubelet, registering the node with the admin's credentials.
    const kubeletDir = join(dir, 'kubelet');
    mkdirSync(kubeletDir, { recursive: true });
    const kubeletConfig = join(kubeletDir, 'config.yaml');
    writeFileSync(kubeletConfig, kubeletConfiguration(socket, await freePort(), await freePort()));
    parts.launch('kubelet', harness, [
      'kubelet',
      `--config=${kubeletConfig}`,
      `--kubeconfig=${kubeconfigPath}`,
      `--root-dir=${join(kubeletDir, 'root')}`,
      `--cert-dir=${join(kubeletDir, 'pki')}`,
      `--hostname-override=${REAL_NODE.name}`,
      `--node-ip=${REAL_NODE.ip}`,
      '--v=1',
    ]);
    const core = adminConfig().makeApiClient(k8s.CoreV1Api);
    await until(
      async () => (await core.readNode({ name: REAL_NODE.name })).status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
      'the real node Ready',
      90_000,
      alive,
    );

    const proxyConfig = join(dir, 'kube-proxy.yaml');
    writeFileSync(proxyConfig, kubeProxyConfiguration(kubeconfigPath, await freePort(), await freePort()));
    parts.launch('kube-proxy', harness, ['kube-proxy', `--config=${proxyConfig}`, '--v=1']);
    await until(async () => (await sh('iptables', ['-t', 'nat', '-S', 'KUBE-SERVICES'])).includes('KUBE-SVC'), "kube-proxy's Service rules", 30_000, alive);

    // Cluster DNS on the node's address (the kubelet's clusterDNS): Service names for the pods.
    parts.launch('cluster-dns', harness, ['cluster-dns', `--kubeconfig=${kubeconfigPath}`, `--listen=${REAL_NODE.ip}:53`, `--domain=${REAL_NODE.clusterDomain}`]);
    const resolver = new Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([REAL_NODE.ip]);
    const kubernetesService = `kubernetes.default.svc.${REAL_NODE.clusterDomain}`;
    await until(async () => (await resolver.resolve4(kubernetesService).catch(() => [])).length === 1, `cluster DNS answering ${kubernetesService}`, 30_000, alive);
    log(`real node ${REAL_NODE.name} Ready at ${REAL_NODE.ip} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  };
  return {
    name: REAL_NODE.name,
    ip: REAL_NODE.ip,
    join: async (plane) => {
      try {
        await joinPlane(plane);
      } catch (error) {
        await stop().catch(() => undefined);
        await release().catch(() => undefined);
        throw error;
      }
    },
    importImage: async (archive) => void (await ctr('images', 'import', '--all-platforms', archive)),
    stallKubeProxy: async (ms) => {
      parts.signal('kube-proxy', 'SIGSTOP');
      try {
        await new Promise((resolve) => setTimeout(resolve, ms));
      } finally {
        parts.signal('kube-proxy', 'SIGCONT');
      }
    },
    stop,
    release,
  };
}


/** The node's address on a bridge of its own, forwarding on, and the CNI bridge's configuration. */
async function setUpNetwork(dir: string): Promise<void> {
  await quietly('ip', ['link', 'del', REAL_NODE.addressBridge]);
  await sh('ip', ['link', 'add', REAL_NODE.addressBridge, 'type', 'bridge']);
  await sh('ip', ['addr', 'add', `${REAL_NODE.ip}/32`, 'dev', REAL_NODE.addressBridge]);
  await sh('ip', ['link', 'set', REAL_NODE.addressBridge, 'up']);
  writeFileSync('/proc/sys/net/ipv4/ip_forward', '1');
  writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1');
  const netd = join(dir, 'cni', 'net.d');
  mkdirSync(netd, { recursive: true });
  writeFileSync(
    join(netd, '10-bluegreen.conflist'),
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: 'bluegreen',
        plugins: [
          {
            type: 'bridge',
            bridge: REAL_NODE.bridge,
            isGateway: true,
            ipMasq: true,
            hairpinMode: true,
            ipam: { type: 'host-local', ranges: [[{ subnet: REAL_NODE.podCidr }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: join(dir, 'cni', 'ipam') },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ),
  );
}

/** Removes both bridges, and kube-proxy's and CNI's chains. */
async function removeNetwork(): Promise<void> {
  await quietly('ip', ['link', 'del', REAL_NODE.bridge]);
  await quietly('ip', ['link', 'del', REAL_NODE.addressBridge]);
  // Each table restored without kube-proxy's and CNI's chains and the rules that jump to them.
  for (const table of ['nat', 'filter', 'mangle']) {
    const saved = await sh('iptables-save', ['-t', table]).catch(() => '');
    if (!/KUBE-|CNI-/.test(saved)) continue;
    const kept = saved
      .split('\n')
      .filter((line) => !/^:(KUBE-|CNI-)/.test(line) && !/(^-A (KUBE-|CNI-))|( -j (KUBE-|CNI-))/.test(line))
      .join('\n');
    await new Promise<void>((resolve) => {
      const restore = spawn('iptables-restore', ['--table', table], { stdio: ['pipe', 'ignore', 'ignore'] });
      restore.on('close', () => resolve());
      restore.stdin!.end(kept);
    });
  }
}

/** SIGKILLs every process in the cgroup `name` (under each v1 controller) and removes the cgroups, deepest first. */
async function killCgroup(name: string): Promise<void> {
  const roots = readdirSync('/sys/fs/cgroup').map((c) => join('/sys/fs/cgroup', c, name)).filter(existsSync);
  const procsOf = (group: string) => unlessGone(() => readFileSync(join(group, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean), []);
  for (let pass = 0; pass < 5; pass++) {
    for (const root of roots) {
      for (const group of cgroupsUnder(root)) {
        for (const pid of procsOf(group)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  for (const root of roots) for (const group of cgroupsUnder(root)) await quietly('rmdir', [group]);
}

/** containerd's runc shims outlive containerd: they are found by the socket directory in their command line. */
function killShims(containerdDir: string): void {
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const command = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (command.includes('containerd-shim') && command.includes(containerdDir)) process.kill(Number(entry), 'SIGKILL');
    } catch {
      // gone
    }
  }
}

/** Every mount under `dir` (overlay rootfs, shm, secrets) and the pods' network namespaces, deepest first. */
function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => Boolean(m) && (m!.startsWith(`${dir}/`) || m!.startsWith('/run/netns/cni-')))
    .sort((a, b) => b.length - a.length);
}

/**
 * Unmounts every mount under `dir`, deepest first, then removes the pods' network-namespace files.
 * Synchronous, so that a process's 'exit' handler can run it too.
 */
function unmountUnder(dir: string): void {
  for (let pass = 0; pass < 3; pass++) {
    const mounts = mountsUnder(dir);
    if (mounts.length === 0) break;
    for (const mount of mounts) spawnSync('umount', ['-l', mount], { stdio: 'ignore' });
  }
  removeNetnsFiles();
}

/**
 * The CNI plugins name each pod's network namespace `/run/netns/cni-*`; once unmounted, the file
 * stays. Only the machine's one real node makes them, so those no longer mounted are its leftovers.
 */
function removeNetnsFiles(): void {
  const mounted = new Set(mountsUnder('/run/netns'));
  for (const name of unlessGone(() => readdirSync('/run/netns'), [] as string[])) {
    const path = join('/run/netns', name);
    if (name.startsWith('cni-') && !mounted.has(path)) rmSync(path, { force: true });
  }
}

function containerdConfig(root: string, cni: string): string {
  return `version = 3
root = '${join(root, 'root')}'
state = '${join(root, 'state')}'

[grpc]
  address = '${join(root, 'containerd.sock')}'

[ttrpc]
  address = '${join(root, 'containerd.sock.ttrpc')}'

[plugins]
  [plugins.'io.containerd.cri.v1.images']
    snapshotter = 'overlayfs'
    [plugins.'io.containerd.cri.v1.images'.pinned_images]
      sandbox = '${REAL_NODE.pauseImage}'
  [plugins.'io.containerd.cri.v1.runtime']
    enable_selinux = false
    # Root here lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj below the
    # runtime's own (the pause container asks for -998): keep each at least at containerd's.
    restrict_oom_score_adj = true
    [plugins.'io.containerd.cri.v1.runtime'.containerd]
      default_runtime_name = 'runc'
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
        runtime_type = 'io.containerd.runc.v2'
        [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
          SystemdCgroup = false
          BinaryName = '/usr/sbin/runc'
    [plugins.'io.containerd.cri.v1.runtime'.cni]
      bin_dirs = ['/usr/lib/cni']
      conf_dir = '${join(cni, 'net.d')}'
  [plugins.'io.containerd.grpc.v1.cri']
    disable_tcp_service = true
  [plugins.'io.containerd.snapshotter.v1.overlayfs']
    root_path = '${join(root, 'root', 'overlayfs')}'
`;
}

function kubeletConfiguration(socket: string, port: number, healthzPort: number): string {
  return `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# The kernel here mounts cgroup v1 only; the kubelet refuses it unless told (since 1.35).
failCgroupV1: false
cgroupDriver: cgroupfs
# The host's resolver is not for pods: they ask the node's cluster DNS, for Service names only.
resolvConf: ""
clusterDNS: [${REAL_NODE.ip}]
clusterDomain: ${REAL_NODE.clusterDomain}
containerRuntimeEndpoint: unix://${socket}
address: ${REAL_NODE.ip}
port: ${port}
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: ${healthzPort}
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
failSwapOn: false
podCIDR: ${REAL_NODE.podCidr}
serializeImagePulls: false
# Test machines keep little free disk: evict on memory only, never collect the imported images.
evictionHard:
  memory.available: 100Mi
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
staticPodPath: ""
maxPods: 110
`;
}

function kubeProxyConfiguration(kubeconfigPath: string, metricsPort: number, healthzPort: number): string {
  return `apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${kubeconfigPath}
hostnameOverride: ${REAL_NODE.name}
mode: iptables
clusterCIDR: ${REAL_NODE.podCidr}
bindAddress: ${REAL_NODE.ip}
metricsBindAddress: 127.0.0.1:${metricsPort}
healthzBindAddress: 127.0.0.1:${healthzPort}
# Leave the host's conntrack table size alone.
conntrack:
  maxPerCore: 0
  min: 0
`;
}
