package broker_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/docaxis/docaxis/broker"
	"github.com/docaxis/docaxis/broker/bustest"
	"github.com/docaxis/docaxis/signing"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

func TestTLSListenerRefusesClientsWithoutTheCA(t *testing.T) {
	var caPool *x509.CertPool
	var bus *bustest.Bus
	bus = bustest.Start(t, bustest.WithAuth(), func(b *bustest.Bus) {
		caPool = signing.NewTrust(b.CA.Cert).Pool()
		cert, key, err := b.CA.IssueServer([]string{"127.0.0.1", "localhost"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		kp, _ := signing.EncodeKey(key)
		pair, err := tls.X509KeyPair(signing.EncodeCerts(cert, b.CA.Cert), kp)
		if err != nil {
			t.Fatal(err)
		}
		prev := b.Config.Configure
		b.Config.Configure = func(o *server.Options) error {
			if err := prev(o); err != nil {
				return err
			}
			o.TLSConfig = &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
			o.TLS = true
			o.TLSTimeout = 5
			return nil
		}
	}, bustest.WithAdminOptions(func(b *bustest.Bus) []nats.Option {
		return []nats.Option{nats.Secure(&tls.Config{RootCAs: caPool, MinVersion: tls.VersionTLS12})}
	}))
	bus.AddAgency(govOffice, "VPCP")
	url := "tls://" + bus.Listen
	creds := bus.AgencyCreds(govOffice)

	_, err := nats.Connect(url, nats.UserCredentials(creds), nats.MaxReconnects(0))
	if err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("client without the CA: %v", err)
	}
	_, err = nats.Connect("nats://"+bus.Listen, nats.UserCredentials(creds), nats.MaxReconnects(0))
	if err == nil {
		t.Fatal("plain-text client connected to a TLS listener")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := broker.Connect(ctx, url, broker.WithAgencyCredentials(creds), broker.WithTrust(bus.Trust),
		broker.WithNATSOptions(nats.Secure(&tls.Config{RootCAs: caPool, MinVersion: tls.VersionTLS12})))
	if err != nil {
		t.Fatalf("client with the CA: %v", err)
	}
	c.Close()
}
