package driver_test

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/shared/nvme/kernel"
)

const testHostKey = "DHHC-1:01:I+efvp4wVPrr1X+p6sJOvUZ1SSDG1iw4AF9yP+DSjRD2s8lh:"

// driverWithCaps is e's node with a kernel that reports caps; calls counts
// how often the driver asked.
func (e *env) driverWithCaps(caps kernel.Capabilities, calls *atomic.Int32) *driver.Driver {
	e.t.Helper()
	d, err := driver.New(driver.Config{
		DriverName: driver.DefaultDriverName, Version: "v0.0.0-test", NodeID: testHost.NQN, Host: testHost,
		StateDir: filepath.Join(e.root, "state"), OperationTimeout: e.opTimeout, NamespaceTimeout: 500 * time.Millisecond,
		Connector: e.fake, Mounter: e.mounter, Exec: e.exec,
		KernelCheck:  func() error { return nil },
		Capabilities: func() kernel.Capabilities { calls.Add(1); return caps },
		Logger:       hclog.New(&hclog.LoggerOptions{Level: hclog.Trace, Output: e.log}),
		Metrics:      e.metrics,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return d
}

// A stage with DH-HMAC-CHAP secrets on a kernel without host
// authentication is refused before any connect, naming the kernel and
// the missing option, never the key.
func TestStageWithSecretsOnAKernelWithoutAuth(t *testing.T) {
	missing := kernel.Capabilities{Release: "6.1.0-57-amd64",
		HostAuth: kernel.Feature{Support: kernel.Missing, Option: kernel.OptionAuthOld, Source: "/boot/config-6.1.0-57-amd64"}}
	tests := []struct {
		name      string
		caps      kernel.Capabilities
		secrets   map[string]string
		wantCode  codes.Code
		wantCalls int32 // Capabilities asked: once by New, again per stage while unknown
	}{
		{name: "missing, secret given", caps: missing, secrets: map[string]string{"dhchap_secret": testHostKey},
			wantCode: codes.FailedPrecondition, wantCalls: 1},
		{name: "missing, no secret", caps: missing, wantCode: codes.OK, wantCalls: 1},
		{name: "supported", caps: kernel.Capabilities{Release: "6.12.118+deb13-amd64",
			HostAuth: kernel.Feature{Support: kernel.Supported, Option: kernel.OptionHostAuth}},
			secrets: map[string]string{"dhchap_secret": testHostKey}, wantCode: codes.OK, wantCalls: 1},
		{name: "unknown is asked again, then tried", caps: kernel.Capabilities{Release: "6.x"},
			secrets: map[string]string{"dhchap_secret": testHostKey}, wantCode: codes.OK, wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			var calls atomic.Int32
			d := e.driverWithCaps(tt.caps, &calls)
			req := e.stageReq("v1", testNQN, "1", blockCap())
			req.Secrets = tt.secrets
			_, err := d.NodeStageVolume(context.Background(), req)
			if code := grpcstatus.Code(err); code != tt.wantCode {
				t.Fatalf("stage = %v (%s), want %s", err, code, tt.wantCode)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Errorf("capabilities asked %d times, want %d", got, tt.wantCalls)
			}
			connects, _ := e.fake.Counts()
			if tt.wantCode != codes.OK {
				if connects != 0 {
					t.Errorf("%d connects before the refusal, want none", connects)
				}
				msg := grpcstatus.Convert(err).Message()
				for _, want := range []string{"6.1.0-57-amd64", kernel.OptionAuthOld} {
					if !strings.Contains(msg, want) {
						t.Errorf("refusal %q does not name %s", msg, want)
					}
				}
				if strings.Contains(msg, testHostKey) || strings.Contains(e.log.String(), testHostKey) {
					t.Error("the key reached the error or the log")
				}
				return
			}
			if connects != 1 {
				t.Errorf("%d connects, want 1", connects)
			}
		})
	}
}

// The start-up log reports the kernel's capabilities once.
func TestCapabilitiesLoggedAtStart(t *testing.T) {
	e := newEnv(t)
	var calls atomic.Int32
	e.driverWithCaps(kernel.Capabilities{Release: "6.12.118+deb13-amd64",
		HostAuth:   kernel.Feature{Support: kernel.Supported, Option: kernel.OptionHostAuth, Source: "/boot/config-6.12.118+deb13-amd64"},
		TLS:        kernel.Feature{Support: kernel.Supported, Option: kernel.OptionTCPTLS, Source: "/boot/config-6.12.118+deb13-amd64"},
		IOPolicies: []string{"numa", "round-robin", "queue-depth"}}, &calls)
	log := e.log.String()
	if n := strings.Count(log, "kernel capabilities"); n != 1 {
		t.Fatalf("%d capability lines in %q, want 1", n, log)
	}
	for _, want := range []string{`kernel="6.12.118+deb13-amd64"`, "dhchap=\"yes (CONFIG_NVME_HOST_AUTH", "tls=\"yes (CONFIG_NVME_TCP_TLS", `iopolicies="numa,round-robin,queue-depth"`} {
		if !strings.Contains(log, want) {
			t.Errorf("start-up log lacks %q:\n%s", want, log)
		}
	}
}
