package main

// MQTT_USERNAME / MQTT_PASSWORD_FILE and MQTT_TLS / MQTT_CA_FILE against a
// real Mosquitto that demands them.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

func TestMQTTPasswordAuthentication(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	dir := brokerDir(t)
	passwords := filepath.Join(dir, "passwd")
	if out, err := exec.Command("mosquitto_passwd", "-b", "-c", passwords, "worker", "s3cret-pw").CombinedOutput(); err != nil {
		t.Skipf("skipping: mosquitto_passwd failed (%v): %s", err, out)
	}
	if err := os.Chmod(passwords, 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := startBroker(dir, 0, "allow_anonymous false", "password_file "+passwords)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	master := startFakeMaster(t, "test-token")
	env := baseEnv(t, b.port, master)
	obs := newObserver(t, b.port, env["MQTT_TOPIC_PREFIX"]+"/#", func(o *mqtt.ClientOptions) {
		o.SetUsername("worker").SetPassword("s3cret-pw")
	})

	// A wrong password: refused, retried, logged without the password.
	wrong := filepath.Join(dir, "wrong")
	if err := os.WriteFile(wrong, []byte("not-the-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["MQTT_USERNAME"], env["MQTT_PASSWORD_FILE"] = "worker", wrong
	refused := startWorker(t, env)
	t.Logf("worker with a wrong password: %s", refused.waitOutput(t, wait, "MQTT connect failed"))
	if strings.Contains(refused.out.String(), "not-the-pw") {
		t.Error("the MQTT password appears in the worker's output")
	}
	refused.signal(syscall.SIGTERM)
	refused.waitExit(t, wait)

	// The right password, from the file: registered.
	right := filepath.Join(dir, "right")
	if err := os.WriteFile(right, []byte("s3cret-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env["MQTT_PASSWORD_FILE"] = right
	w := startWorker(t, env)
	obs.waitFor(t, wait, w.topic("register"), map[string]any{"worker_id": w.id, "language": "go"})
	obs.publish(t, w.topic("tasks"), taskPayload("q_auth", "hello", false))
	master.waitResult(t, "q_auth", wait)
}

func TestMQTTOverTLSWithCAFile(t *testing.T) {
	t.Parallel()
	requireBroker(t)
	dir := brokerDir(t)
	caFile, certFile, keyFile := writeTestPKI(t, dir)
	b, err := startBroker(dir, 0, "allow_anonymous true",
		"cafile "+caFile, "certfile "+certFile, "keyfile "+keyFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	roots := x509.NewCertPool()
	caPEM, _ := os.ReadFile(caFile)
	roots.AppendCertsFromPEM(caPEM)

	master := startFakeMaster(t, "test-token")
	env := baseEnv(t, b.port, master)
	env["MQTT_TLS"], env["MQTT_CA_FILE"] = "true", caFile
	obs := newObserver(t, b.port, env["MQTT_TOPIC_PREFIX"]+"/#", func(o *mqtt.ClientOptions) {
		o.SetTLSConfig(&tls.Config{RootCAs: roots})
	})
	w := startWorker(t, env)
	obs.waitFor(t, wait, w.topic("register"), map[string]any{"worker_id": w.id})
	obs.publish(t, w.topic("tasks"), taskPayload("q_tls", "hello", false))
	master.waitResult(t, "q_tls", wait)

	// Without the CA the broker's certificate is not trusted: no session.
	env2 := baseEnv(t, b.port, master)
	env2["WORKER_ID"] += "-noca"
	env2["MQTT_TLS"] = "true"
	untrusting := startWorker(t, env2)
	line := untrusting.waitOutput(t, wait, "MQTT connect failed", "certificate")
	t.Logf("worker without the CA: %s", line)
}

// writeTestPKI makes a CA and a server certificate for 127.0.0.1.
func writeTestPKI(t *testing.T, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTemplate, caTemplate, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	serverKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	serverTemplate := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	serverDER, err := x509.CreateCertificate(rand.Reader, serverTemplate, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(serverKey)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key")
	writePEM(t, caFile, "CERTIFICATE", caDER)
	writePEM(t, certFile, "CERTIFICATE", serverDER)
	writePEM(t, keyFile, "EC PRIVATE KEY", keyDER)
	return caFile, certFile, keyFile
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
}
