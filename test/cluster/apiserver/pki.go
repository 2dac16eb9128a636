package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

type pkiFiles struct {
	caCert, servingCert, servingKey, adminCert, adminKey, saPrivateKey, saPublicKey string
}

// ensurePKI makes, on the first start only, a CA, the API server's serving certificate, an admin client
// certificate (group system:masters) and the service-account token signing key pair.
func ensurePKI(dir string) (*pkiFiles, error) {
	files := &pkiFiles{
		caCert:       filepath.Join(dir, "ca.crt"),
		servingCert:  filepath.Join(dir, "apiserver.crt"),
		servingKey:   filepath.Join(dir, "apiserver.key"),
		adminCert:    filepath.Join(dir, "admin.crt"),
		adminKey:     filepath.Join(dir, "admin.key"),
		saPrivateKey: filepath.Join(dir, "sa.key"),
		saPublicKey:  filepath.Join(dir, "sa.pub"),
	}
	if _, err := os.Stat(files.saPublicKey); err == nil {
		return files, nil // written last: everything else is there
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}

	caKey, err := newKey()
	if err != nil {
		return nil, err
	}
	caTemplate := &x509.Certificate{
		Subject:               pkix.Name{CommonName: "kube-event-rules test CA"},
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caCert, err := sign(caTemplate, caKey, nil, nil)
	if err != nil {
		return nil, err
	}

	servingKey, err := newKey()
	if err != nil {
		return nil, err
	}
	servingCert, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")},
		DNSNames:    []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}, servingKey, caCert, caKey)
	if err != nil {
		return nil, err
	}

	adminKey, err := newKey()
	if err != nil {
		return nil, err
	}
	adminCert, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kubernetes-admin", Organization: []string{"system:masters"}},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, adminKey, caCert, caKey)
	if err != nil {
		return nil, err
	}

	saKey, err := newKey()
	if err != nil {
		return nil, err
	}
	saPublic, err := x509.MarshalPKIXPublicKey(saKey.Public())
	if err != nil {
		return nil, err
	}

	for _, write := range []struct {
		path, kind string
		der        []byte
	}{
		{files.caCert, "CERTIFICATE", caCert.Raw},
		{files.servingCert, "CERTIFICATE", servingCert.Raw},
		{files.servingKey, "PRIVATE KEY", mustPKCS8(servingKey)},
		{files.adminCert, "CERTIFICATE", adminCert.Raw},
		{files.adminKey, "PRIVATE KEY", mustPKCS8(adminKey)},
		{files.saPrivateKey, "PRIVATE KEY", mustPKCS8(saKey)},
		{files.saPublicKey, "PUBLIC KEY", saPublic},
	} {
		if err := os.WriteFile(write.path, pem.EncodeToMemory(&pem.Block{Type: write.kind, Bytes: write.der}), 0o600); err != nil {
			return nil, err
		}
	}
	return files, nil
}

func newKey() (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }

// sign issues template for key's public half, signed by parent (self-signed when parent is nil).
func sign(template *x509.Certificate, key *ecdsa.PrivateKey, parent *x509.Certificate, parentKey crypto.Signer) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	template.SerialNumber = serial
	template.NotBefore = time.Now().Add(-time.Hour)
	template.NotAfter = time.Now().Add(10 * 365 * 24 * time.Hour)
	if parent == nil {
		parent, parentKey = template, key
	}
	der, err := x509.CreateCertificate(rand.Reader, template, parent, key.Public(), parentKey)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

func mustPKCS8(key *ecdsa.PrivateKey) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return der
}

// writeAdminKubeconfig writes a kubeconfig with the credentials inline, for kubectl and the tests.
func writeAdminKubeconfig(path, server string, files *pkiFiles) error {
	inline := func(file string) (string, error) {
		data, err := os.ReadFile(file)
		return base64.StdEncoding.EncodeToString(data), err
	}
	ca, err := inline(files.caCert)
	if err != nil {
		return err
	}
	cert, err := inline(files.adminCert)
	if err != nil {
		return err
	}
	key, err := inline(files.adminKey)
	if err != nil {
		return err
	}
	config := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: admin
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: admin
  context:
    cluster: test
    user: admin
current-context: admin
`, server, ca, cert, key)
	return os.WriteFile(path, []byte(config), 0o600)
}
