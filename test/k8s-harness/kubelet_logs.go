package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The simulated kubelet's containers run nothing, so they write nothing: a test says what a
// container wrote with these pod annotations, and the kubelet API serves them as its log, the
// way `kubectl logs` (and the API server's pods/log) reaches a real kubelet.
const (
	logAnnotation         = "k8s-harness.bluegreen.dev/log"
	previousLogAnnotation = "k8s-harness.bluegreen.dev/previous-log"
)

// serveContainerLogs answers the kubelet API's /containerLogs/{namespace}/{pod}/{container} on
// each simulated node's address (127.0.1.N) and `port`, over TLS with a certificate of its own
// (the API server does not verify kubelets unless told to). The log is the pod's annotation, or
// a line saying the container started; ?previous=true reads the previous container's, which
// exists only once the container has restarted. tailLines and limitBytes apply as a kubelet's.
func (s *simulator) serveContainerLogs(ctx context.Context, port int) error {
	certificate, err := selfSignedCertificate(len(s.nodes))
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/containerLogs/", func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
		if len(parts) != 3 {
			http.Error(w, "want /containerLogs/{namespace}/{pod}/{container}", http.StatusBadRequest)
			return
		}
		pod, err := s.client.CoreV1().Pods(parts[0]).Get(r.Context(), parts[1], metav1.GetOptions{})
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		var status *corev1.ContainerStatus
		for i := range pod.Status.ContainerStatuses {
			if pod.Status.ContainerStatuses[i].Name == parts[2] {
				status = &pod.Status.ContainerStatuses[i]
			}
		}
		if status == nil {
			http.Error(w, fmt.Sprintf("container %q in pod %q is not available", parts[2], parts[1]), http.StatusBadRequest)
			return
		}
		query := r.URL.Query()
		text := pod.Annotations[logAnnotation]
		if query.Get("previous") == "true" {
			if status.RestartCount == 0 {
				http.Error(w, fmt.Sprintf("previous terminated container %q in pod %q not found", parts[2], parts[1]), http.StatusBadRequest)
				return
			}
			text = pod.Annotations[previousLogAnnotation]
		} else if text == "" {
			text = fmt.Sprintf("%s sim-kubelet: started container %s from %s", pod.CreationTimestamp.UTC().Format(time.RFC3339), status.Name, status.Image)
		}
		lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
		if tail, err := strconv.Atoi(query.Get("tailLines")); err == nil && tail >= 0 && tail < len(lines) {
			lines = lines[len(lines)-tail:]
		}
		body := strings.Join(lines, "\n") + "\n"
		if limit, err := strconv.Atoi(query.Get("limitBytes")); err == nil && limit > 0 && limit < len(body) {
			body = body[:limit]
		}
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte(body))
	})
	for index := range s.nodes {
		listener, err := tls.Listen("tcp", net.JoinHostPort(nodeAddress(index), strconv.Itoa(port)), &tls.Config{Certificates: []tls.Certificate{certificate}})
		if err != nil {
			return err
		}
		server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = server.Serve(listener) }()
		go func() {
			<-ctx.Done()
			_ = server.Close()
		}()
	}
	fmt.Fprintf(os.Stderr, "node-simulator: kubelet API (container logs) on port %d of %d node addresses\n", port, len(s.nodes))
	return nil
}

// nodeAddress is the InternalIP of the index-th simulated node (loopback, so nothing leaves the host).
func nodeAddress(index int) string {
	return fmt.Sprintf("127.0.1.%d", index+1)
}

func selfSignedCertificate(nodes int) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	template := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "sim-kubelet"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for index := 0; index < nodes; index++ {
		template.IPAddresses = append(template.IPAddresses, net.ParseIP(nodeAddress(index)))
	}
	der, err := x509.CreateCertificate(rand.Reader, template, template, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}

// reportRestart records what a kubelet records when a container restarts: a BackOff event on
// the pod. Called when a pod's restart count has risen since the simulator last saw it.
func (s *simulator) reportRestart(ctx context.Context, pod *corev1.Pod, container corev1.ContainerStatus) {
	now := metav1.Now()
	event := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{
			Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID, APIVersion: "v1",
			FieldPath: fmt.Sprintf("spec.containers{%s}", container.Name),
		},
		Reason:         "BackOff",
		Message:        fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", container.Name, pod.Name, pod.Namespace, pod.UID),
		Source:         corev1.EventSource{Component: "kubelet", Host: pod.Spec.NodeName},
		FirstTimestamp: now,
		LastTimestamp:  now,
		Count:          1,
		Type:           corev1.EventTypeWarning,
	}
	if _, err := s.client.CoreV1().Events(pod.Namespace).Create(ctx, event, metav1.CreateOptions{}); err != nil && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "node-simulator: event for %s/%s: %v\n", pod.Namespace, pod.Name, err)
	}
}
