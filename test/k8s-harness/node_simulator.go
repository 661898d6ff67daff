package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/utils/ptr"
)

// simulatedByLabel marks the nodes this simulator owns.
const simulatedByLabel = "k8s-harness.bluegreen.dev/simulated"

// runNodeSimulator plays the kubelets of N nodes: it registers the nodes and keeps their leases
// fresh, and for every pod the scheduler binds to them it writes the status a kubelet would
// write once the containers run and pass readiness. A pod being deleted is removed after its
// containers "stop" (at once). Once a pod's status is written, the simulator leaves it alone,
// so a test may patch pods/status itself to raise restartCount or make a pod unready.
func runNodeSimulator(args []string) int {
	flags := flag.NewFlagSet("node-simulator", flag.ContinueOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of a user allowed to write nodes and pods")
	nodeCount := flags.Int("nodes", 2, "number of simulated nodes")
	readyDelay := flags.Duration("ready-delay", 200*time.Millisecond, "time from binding to a pod's Ready")
	kubeletPort := flags.Int("kubelet-port", 0, "port of the kubelet API (container logs) on each node's address; 0: none")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "node-simulator: %v\n", err)
		return 2
	}
	config.QPS, config.Burst = 200, 400
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "node-simulator: %v\n", err)
		return 2
	}

	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	sim := &simulator{client: client, readyDelay: *readyDelay, kubeletPort: *kubeletPort, ips: map[string]string{}, restarts: map[string]int32{}}
	for i := 0; i < *nodeCount; i++ {
		name := fmt.Sprintf("sim-node-%d", i)
		if err := sim.registerNode(ctx, name, i); err != nil {
			fmt.Fprintf(os.Stderr, "node-simulator: register %s: %v\n", name, err)
			return 1
		}
		sim.nodes = append(sim.nodes, name)
	}
	go sim.heartbeat(ctx)
	if *kubeletPort > 0 {
		if err := sim.serveContainerLogs(ctx, *kubeletPort); err != nil {
			fmt.Fprintf(os.Stderr, "node-simulator: kubelet API: %v\n", err)
			return 1
		}
	}
	if err := sim.runPods(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "node-simulator: %v\n", err)
		return 1
	}
	return 0
}

type simulator struct {
	client      kubernetes.Interface
	readyDelay  time.Duration
	kubeletPort int
	nodes       []string

	mu       sync.Mutex
	ips      map[string]string // pod UID -> IP
	nextIP   int
	restarts map[string]int32 // pod UID/container -> the restart count last seen
}

func (s *simulator) registerNode(ctx context.Context, name string, index int) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:   name,
			Labels: map[string]string{"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", simulatedByLabel: "true"},
		},
	}
	created, err := s.client.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		created, err = s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return err
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("250"),
	}
	created.Status = corev1.NodeStatus{
		Capacity:    capacity,
		Allocatable: capacity,
		Phase:       corev1.NodeRunning,
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: nodeAddress(index)},
			{Type: corev1.NodeHostName, Address: name},
		},
		NodeInfo:        corev1.NodeSystemInfo{KubeletVersion: "v1.36.3-sim", OperatingSystem: "linux", Architecture: "amd64"},
		Conditions:      nodeConditions(),
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(s.kubeletPort)}},
	}
	_, err = s.client.CoreV1().Nodes().UpdateStatus(ctx, created, metav1.UpdateOptions{})
	return err
}

func nodeConditions() []corev1.NodeCondition {
	now := metav1.Now()
	condition := func(kind corev1.NodeConditionType, status corev1.ConditionStatus, reason string) corev1.NodeCondition {
		return corev1.NodeCondition{Type: kind, Status: status, Reason: reason, LastHeartbeatTime: now, LastTransitionTime: now}
	}
	return []corev1.NodeCondition{
		condition(corev1.NodeReady, corev1.ConditionTrue, "KubeletReady"),
		condition(corev1.NodeMemoryPressure, corev1.ConditionFalse, "KubeletHasSufficientMemory"),
		condition(corev1.NodeDiskPressure, corev1.ConditionFalse, "KubeletHasNoDiskPressure"),
		condition(corev1.NodePIDPressure, corev1.ConditionFalse, "KubeletHasSufficientPID"),
	}
}

// heartbeat renews each node's Lease every 10 s, as a kubelet does, so the node lifecycle
// controller keeps the nodes Ready and untainted; and, as a kubelet's node status loop does, it
// reports Ready again when the controller marked a node Unknown (an API server outage longer than
// the lease, say). Without that, the node would stay Unknown and tainted for good, and the
// controller would mark every pod on it not Ready again each time one was reported Ready.
func (s *simulator) heartbeat(ctx context.Context) {
	for {
		for _, name := range s.nodes {
			if err := s.renewLease(ctx, name); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "node-simulator: lease %s: %v\n", name, err)
			}
			if err := s.reportNodeReady(ctx, name); err != nil && ctx.Err() == nil {
				fmt.Fprintf(os.Stderr, "node-simulator: node status %s: %v\n", name, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Second):
		}
	}
}

// reportNodeReady writes the node's conditions afresh when its Ready condition is not True.
func (s *simulator) reportNodeReady(ctx context.Context, name string) error {
	node, err := s.client.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for _, condition := range node.Status.Conditions {
		if condition.Type == corev1.NodeReady && condition.Status == corev1.ConditionTrue {
			return nil
		}
	}
	node.Status.Conditions = nodeConditions()
	_, err = s.client.CoreV1().Nodes().UpdateStatus(ctx, node, metav1.UpdateOptions{})
	if err == nil {
		fmt.Fprintf(os.Stderr, "node-simulator: %s reported Ready again\n", name)
	}
	return err
}

func (s *simulator) renewLease(ctx context.Context, node string) error {
	leases := s.client.CoordinationV1().Leases(corev1.NamespaceNodeLease)
	now := metav1.NewMicroTime(time.Now())
	lease, err := leases.Get(ctx, node, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		_, err = leases.Create(ctx, &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Name: node},
			Spec: coordinationv1.LeaseSpec{
				HolderIdentity:       ptr.To(node),
				LeaseDurationSeconds: ptr.To[int32](40),
				RenewTime:            &now,
			},
		}, metav1.CreateOptions{})
		return err
	}
	if err != nil {
		return err
	}
	lease.Spec.RenewTime = &now
	_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
	return err
}

// runPods watches pods bound to any node and plays the kubelet for the simulated ones.
func (s *simulator) runPods(ctx context.Context) error {
	// Resynced every 10 s, as a kubelet's status manager syncs its pods' status: a pod the node
	// lifecycle controller marked not Ready is reported Ready again even if no event follows.
	factory := informers.NewSharedInformerFactoryWithOptions(s.client, 10*time.Second,
		informers.WithTweakListOptions(func(options *metav1.ListOptions) {
			options.FieldSelector = fields.OneTermNotEqualSelector("spec.nodeName", "").String()
		}))
	queue := make(chan *corev1.Pod, 1024)
	handle := func(obj interface{}) {
		if pod, ok := obj.(*corev1.Pod); ok && s.owns(pod.Spec.NodeName) {
			queue <- pod
		}
	}
	_, err := factory.Core().V1().Pods().Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    handle,
		UpdateFunc: func(_, obj interface{}) { handle(obj) },
		DeleteFunc: func(obj interface{}) {
			if pod, ok := obj.(*corev1.Pod); ok {
				s.mu.Lock()
				delete(s.ips, string(pod.UID))
				s.mu.Unlock()
			}
		},
	})
	if err != nil {
		return err
	}
	factory.Start(ctx.Done())
	fmt.Fprintf(os.Stderr, "node-simulator: %d nodes ready\n", len(s.nodes))
	for {
		select {
		case <-ctx.Done():
			factory.Shutdown()
			return nil
		case pod := <-queue:
			go s.reconcilePod(ctx, pod)
		}
	}
}

func (s *simulator) owns(node string) bool {
	for _, name := range s.nodes {
		if name == node {
			return true
		}
	}
	return false
}

func (s *simulator) reconcilePod(ctx context.Context, pod *corev1.Pod) {
	pods := s.client.CoreV1().Pods(pod.Namespace)
	if pod.DeletionTimestamp != nil {
		// The containers stop at once; the kubelet's final step is the forced delete.
		err := pods.Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To[int64](0),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
			fmt.Fprintf(os.Stderr, "node-simulator: delete %s/%s: %v\n", pod.Namespace, pod.Name, err)
		}
		return
	}
	if len(pod.Status.ContainerStatuses) > 0 || pod.Status.Phase != corev1.PodPending {
		// Started already: from here on the status is the test's to change, but for one thing a
		// kubelet does. The node lifecycle controller marks a pod Ready=False (and only that
		// condition) when its node's lease went stale, say through an API server outage; once the
		// node is back, its kubelet reports the containers' readiness again.
		s.reportReadyAgain(ctx, pod)
		s.noticeRestarts(ctx, pod)
		return
	}
	select {
	case <-ctx.Done():
		return
	case <-time.After(s.readyDelay):
	}
	s.startPod(ctx, pod)
}

// noticeRestarts reports each container whose restart count rose since the last look.
func (s *simulator) noticeRestarts(ctx context.Context, pod *corev1.Pod) {
	for _, container := range pod.Status.ContainerStatuses {
		key := string(pod.UID) + "/" + container.Name
		s.mu.Lock()
		seen, known := s.restarts[key]
		s.restarts[key] = container.RestartCount
		s.mu.Unlock()
		if known && container.RestartCount > seen {
			s.reportRestart(ctx, pod, container)
		}
	}
}

// reportReadyAgain sets Ready back to True on a pod whose containers are ready but which the node
// lifecycle controller marked not Ready (a test that makes a pod unready sets ContainersReady too).
func (s *simulator) reportReadyAgain(ctx context.Context, pod *corev1.Pod) {
	var ready, containersReady *corev1.PodCondition
	for i := range pod.Status.Conditions {
		switch pod.Status.Conditions[i].Type {
		case corev1.PodReady:
			ready = &pod.Status.Conditions[i]
		case corev1.ContainersReady:
			containersReady = &pod.Status.Conditions[i]
		}
	}
	if ready == nil || containersReady == nil || ready.Status != corev1.ConditionFalse || containersReady.Status != corev1.ConditionTrue || pod.DeletionTimestamp != nil {
		return
	}
	updated := pod.DeepCopy()
	for i := range updated.Status.Conditions {
		if updated.Status.Conditions[i].Type == corev1.PodReady {
			updated.Status.Conditions[i].Status = corev1.ConditionTrue
			updated.Status.Conditions[i].LastTransitionTime = metav1.Now()
		}
	}
	_, err := s.client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, updated, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "node-simulator: report %s/%s ready again: %v\n", pod.Namespace, pod.Name, err)
	}
}

func (s *simulator) startPod(ctx context.Context, pod *corev1.Pod) {
	pods := s.client.CoreV1().Pods(pod.Namespace)
	current, err := pods.Get(ctx, pod.Name, metav1.GetOptions{})
	if err != nil || current.UID != pod.UID || current.DeletionTimestamp != nil || len(current.Status.ContainerStatuses) > 0 {
		return
	}
	now := metav1.Now()
	ip := s.podIP(string(pod.UID))
	hostIP := "127.0.1.1"
	current.Status.Phase = corev1.PodRunning
	current.Status.HostIP = hostIP
	current.Status.HostIPs = []corev1.HostIP{{IP: hostIP}}
	current.Status.PodIP = ip
	current.Status.PodIPs = []corev1.PodIP{{IP: ip}}
	current.Status.StartTime = &now
	current.Status.Conditions = []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodInitialized, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.ContainersReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	current.Status.ContainerStatuses = nil
	for _, container := range current.Spec.Containers {
		current.Status.ContainerStatuses = append(current.Status.ContainerStatuses, corev1.ContainerStatus{
			Name:         container.Name,
			Image:        container.Image,
			ImageID:      "sim://" + container.Image,
			ContainerID:  "sim://" + string(pod.UID) + "/" + container.Name,
			Ready:        true,
			Started:      ptr.To(true),
			RestartCount: 0,
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	_, err = pods.UpdateStatus(ctx, current, metav1.UpdateOptions{})
	if err != nil && !apierrors.IsNotFound(err) && ctx.Err() == nil {
		if apierrors.IsConflict(err) {
			s.startPod(ctx, pod)
			return
		}
		fmt.Fprintf(os.Stderr, "node-simulator: status %s/%s: %v\n", pod.Namespace, pod.Name, err)
	}
}

// podIP hands out a unique address per pod from 10.244.0.0/16.
func (s *simulator) podIP(uid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ip, ok := s.ips[uid]; ok {
		return ip
	}
	s.nextIP++
	ip := fmt.Sprintf("10.244.%d.%d", (s.nextIP/250)%250, s.nextIP%250+1)
	s.ips[uid] = ip
	return ip
}
