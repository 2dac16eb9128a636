package main

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

type etcdServer struct {
	*embed.Etcd
	clientURL string
}

// startEtcd runs a one-member etcd on loopback. Its ports are chosen on the first start and kept in
// dir/ports: the member's peer address is part of its stored identity, so a restart must reuse it.
func startEtcd(dir string) (*etcdServer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	clientPort, peerPort, err := etcdPorts(filepath.Join(dir, "ports"))
	if err != nil {
		return nil, err
	}
	clientURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%s", clientPort)}
	peerURL := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%s", peerPort)}

	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "data")
	cfg.ListenClientUrls = []url.URL{clientURL}
	cfg.AdvertiseClientUrls = []url.URL{clientURL}
	cfg.ListenPeerUrls = []url.URL{peerURL}
	cfg.AdvertisePeerUrls = []url.URL{peerURL}
	cfg.InitialCluster = fmt.Sprintf("%s=%s", cfg.Name, peerURL.String())
	cfg.LogLevel = "error"
	// A test cluster: fsync buys nothing (a killed process keeps its page cache) and costs seconds.
	cfg.UnsafeNoFsync = true

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return &etcdServer{Etcd: e, clientURL: clientURL.String()}, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(60 * time.Second):
		e.Close()
		return nil, fmt.Errorf("not ready after 60s")
	}
}

func etcdPorts(file string) (client, peer string, err error) {
	if saved, err := os.ReadFile(file); err == nil {
		parts := strings.Fields(string(saved))
		if len(parts) == 2 {
			return parts[0], parts[1], nil
		}
	}
	// Both listeners stay open until both ports are known, so the two differ.
	clientListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	defer clientListener.Close()
	peerListener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", "", err
	}
	defer peerListener.Close()
	_, client, _ = net.SplitHostPort(clientListener.Addr().String())
	_, peer, _ = net.SplitHostPort(peerListener.Addr().String())
	return client, peer, os.WriteFile(file, []byte(client+" "+peer+"\n"), 0o600)
}
