// Command k8s-harness is one binary holding a real Kubernetes for the tests, from one pinned
// Kubernetes release: embedded etcd, kube-apiserver, kube-controller-manager and kube-scheduler;
// a node simulator that stands in for kubelets where a simulated node is the point; and the
// kubelet, kube-proxy and cluster DNS of a real node. One binary, so that their shared packages build once.
// The TypeScript helper in test/k8s-harness/control-plane.ts starts each part as its own process:
//
//	k8s-harness etcd --data-dir DIR --client-url URL --peer-url URL
//	k8s-harness kube-apiserver FLAGS...
//	k8s-harness kube-controller-manager FLAGS...
//	k8s-harness kube-scheduler FLAGS...
//	k8s-harness node-simulator --kubeconfig FILE --nodes N
//	k8s-harness kubelet FLAGS...
//	k8s-harness kube-proxy FLAGS...
//	k8s-harness cluster-dns --kubeconfig FILE --listen HOST:PORT
//
// scripts/setup.sh links it with Kubernetes' version variables set, as Kubernetes' own build does,
// so that every part reports the release it is (kubectl version, the nodes' kubeletVersion).
package main

import (
	"context"
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	_ "k8s.io/component-base/logs/json/register"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	proxy "k8s.io/kubernetes/cmd/kube-proxy/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
	kubelet "k8s.io/kubernetes/cmd/kubelet/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: k8s-harness etcd|kube-apiserver|kube-controller-manager|kube-scheduler|node-simulator|kubelet|kube-proxy|cluster-dns [flags]")
		os.Exit(2)
	}
	part := os.Args[1]
	// Each part parses os.Args[1:] as its own flags, as if it were its own binary.
	os.Args = append([]string{part}, os.Args[2:]...)
	switch part {
	case "etcd":
		os.Exit(runEtcd(os.Args[1:]))
	case "kube-apiserver":
		os.Exit(cli.Run(apiserver.NewAPIServerCommand()))
	case "kube-controller-manager":
		os.Exit(cli.Run(controllermanager.NewControllerManagerCommand()))
	case "kube-scheduler":
		os.Exit(cli.Run(scheduler.NewSchedulerCommand()))
	case "node-simulator":
		os.Exit(runNodeSimulator(os.Args[1:]))
	case "kubelet":
		os.Exit(cli.Run(kubelet.NewKubeletCommand(context.Background())))
	case "kube-proxy":
		os.Exit(cli.Run(proxy.NewProxyCommand()))
	case "cluster-dns":
		os.Exit(runClusterDNS(os.Args[1:]))
	default:
		fmt.Fprintf(os.Stderr, "k8s-harness: unknown part %q\n", part)
		os.Exit(2)
	}
}
