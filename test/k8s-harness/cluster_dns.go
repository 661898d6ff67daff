package main

// The real node's cluster DNS: answers the names Kubernetes gives Services
// (SERVICE.NAMESPACE.svc.DOMAIN, A records of their ClusterIP), as CoreDNS's kubernetes plugin
// does for ClusterIP Services, from a watch of the Services through the API server. Nothing else
// is answered (NXDOMAIN): the pods here reach no other name, and the host's resolver is not theirs.
// The kubelet points pods at it (clusterDNS), with the search path that makes `NAME.NAMESPACE.svc`
// resolve.

import (
	"context"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

func runClusterDNS(args []string) int {
	flags := flag.NewFlagSet("cluster-dns", flag.ContinueOnError)
	kubeconfig := flags.String("kubeconfig", "", "kubeconfig of a user allowed to list and watch Services")
	listen := flags.String("listen", "", "address to answer on, UDP and TCP (HOST:PORT)")
	domain := flags.String("domain", "cluster.local", "the cluster's domain")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	config, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster-dns: %v\n", err)
		return 2
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cluster-dns: %v\n", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()

	factory := informers.NewSharedInformerFactory(client, 0)
	services := factory.Core().V1().Services()
	lister := services.Lister()
	informer := services.Informer()
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		fmt.Fprintln(os.Stderr, "cluster-dns: the Services never synced")
		return 1
	}

	suffix := ".svc." + strings.Trim(*domain, ".") + "."
	handler := dns.HandlerFunc(func(w dns.ResponseWriter, request *dns.Msg) {
		answer := new(dns.Msg)
		answer.SetReply(request)
		answer.Authoritative = true
		answer.Rcode = dns.RcodeNameError
		for _, question := range request.Question {
			name := strings.ToLower(question.Name)
			if !strings.HasSuffix(name, suffix) {
				continue
			}
			parts := strings.Split(strings.TrimSuffix(name, suffix), ".")
			if len(parts) != 2 {
				continue
			}
			service, err := lister.Services(parts[1]).Get(parts[0])
			if err != nil || service.Spec.ClusterIP == "" || service.Spec.ClusterIP == corev1.ClusterIPNone {
				continue
			}
			answer.Rcode = dns.RcodeSuccess
			ip := net.ParseIP(service.Spec.ClusterIP).To4()
			if question.Qtype == dns.TypeA && ip != nil {
				answer.Answer = append(answer.Answer, &dns.A{Hdr: dns.RR_Header{Name: question.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 5}, A: ip})
			}
		}
		_ = w.WriteMsg(answer)
	})

	servers := []*dns.Server{{Addr: *listen, Net: "udp", Handler: handler}, {Addr: *listen, Net: "tcp", Handler: handler}}
	failed := make(chan error, len(servers))
	var started sync.WaitGroup
	for _, server := range servers {
		started.Add(1)
		server.NotifyStartedFunc = started.Done
		go func(server *dns.Server) { failed <- server.ListenAndServe() }(server)
	}
	go func() {
		started.Wait()
		fmt.Fprintf(os.Stderr, "cluster-dns: answering *%s on %s\n", suffix, *listen)
	}()
	select {
	case <-ctx.Done():
	case err := <-failed:
		fmt.Fprintf(os.Stderr, "cluster-dns: %v\n", err)
		return 1
	}
	for _, server := range servers {
		_ = server.Shutdown()
	}
	return 0
}
