// Command test-apiserver runs a real kube-apiserver (k8s.io/kubernetes, cmd/kube-apiserver/app) on an
// embedded etcd, bound to 127.0.0.1 only, for the service's cluster tests.
//
//	test-apiserver --dir DIR --port PORT
//
// DIR keeps the etcd data, the certificates and keys (made on the first start, reused after) and
// admin.kubeconfig, so a restart with the same DIR and PORT is the same cluster: every client's
// credentials stay valid and a watch can resume from its resourceVersion. "ready" is printed once
// /readyz answers ok; SIGTERM stops the API server, then etcd.
package main

import (
	"crypto/tls"
	"crypto/x509"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/kubernetes/cmd/kube-apiserver/app"
)

func main() {
	dir := flag.String("dir", "", "state directory: etcd data, certificates, admin.kubeconfig")
	port := flag.Int("port", 0, "the API server's secure port on 127.0.0.1")
	flag.Parse()
	if *dir == "" || *port == 0 {
		fmt.Fprintln(os.Stderr, "usage: test-apiserver --dir DIR --port PORT")
		os.Exit(2)
	}
	if err := run(*dir, *port); err != nil {
		fmt.Fprintln(os.Stderr, "test-apiserver:", err)
		os.Exit(1)
	}
}

func run(dir string, port int) error {
	pki, err := ensurePKI(filepath.Join(dir, "pki"))
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	server := fmt.Sprintf("https://127.0.0.1:%d", port)
	if err := writeAdminKubeconfig(filepath.Join(dir, "admin.kubeconfig"), server, pki); err != nil {
		return fmt.Errorf("admin kubeconfig: %w", err)
	}
	etcd, err := startEtcd(filepath.Join(dir, "etcd"))
	if err != nil {
		return fmt.Errorf("etcd: %w", err)
	}
	// The API server returns without closing its etcd clients, and etcd's graceful stop waits for their
	// streams: give it a moment, then exit anyway (every write is in etcd's WAL, replayed at the next start).
	defer func() {
		closed := make(chan struct{})
		go func() {
			etcd.Close()
			close(closed)
		}()
		select {
		case <-closed:
		case <-time.After(3 * time.Second):
		}
	}()

	cmd := app.NewAPIServerCommand()
	cmd.SetArgs([]string{
		"--etcd-servers=" + etcd.clientURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(port),
		"--cert-dir=" + filepath.Join(dir, "pki"),
		"--tls-cert-file=" + pki.servingCert,
		"--tls-private-key-file=" + pki.servingKey,
		"--client-ca-file=" + pki.caCert,
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file=" + pki.saPublicKey,
		"--service-account-signing-key-file=" + pki.saPrivateKey,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.96.0.0/24",
		// No kubelets, no network: the "kubernetes" Service's endpoints would point nowhere.
		"--endpoint-reconciler-type=none",
		// On SIGTERM, end open watches (clients reconnect, as to a restarted control plane) instead of
		// waiting up to the request timeout (60 s) for them.
		"--shutdown-watch-termination-grace-period=2s",
		"--profiling=false",
		"--v=0",
	})
	go announceReady(server, pki)
	return cmd.Execute()
}

// announceReady prints "ready" once /readyz answers 200 to the admin, so a test can start clients.
func announceReady(server string, pki *pkiFiles) {
	cert, err := tls.LoadX509KeyPair(pki.adminCert, pki.adminKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "test-apiserver: admin certificate:", err)
		os.Exit(1)
	}
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(pki.caCert)
	roots.AppendCertsFromPEM(caPEM)
	client := &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}}},
	}
	for {
		response, err := client.Get(server + "/readyz")
		if err == nil {
			io.Copy(io.Discard, response.Body)
			response.Body.Close()
			if response.StatusCode == http.StatusOK {
				fmt.Println("ready", server)
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}
