// Command k8s-harness is one binary holding a real Kubernetes control plane for the tests:
// embedded etcd, kube-apiserver, kube-controller-manager and kube-scheduler from one pinned
// Kubernetes release, plus a node simulator that stands in for kubelets (there is no container
// runtime on the machines this project is tested on). The TypeScript helper in
// test/helpers/k8s-harness.ts starts each part as its own process:
//
//	k8s-harness etcd --data-dir DIR --client-url URL --peer-url URL
//	k8s-harness kube-apiserver FLAGS...
//	k8s-harness kube-controller-manager FLAGS...
//	k8s-harness kube-scheduler FLAGS...
//	k8s-harness node-simulator --kubeconfig FILE --nodes N
package main

import (
	"fmt"
	"os"

	"k8s.io/component-base/cli"
	apiserver "k8s.io/kubernetes/cmd/kube-apiserver/app"
	controllermanager "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	scheduler "k8s.io/kubernetes/cmd/kube-scheduler/app"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: k8s-harness etcd|kube-apiserver|kube-controller-manager|kube-scheduler|node-simulator [flags]")
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
	default:
		fmt.Fprintf(os.Stderr, "k8s-harness: unknown part %q\n", part)
		os.Exit(2)
	}
}
