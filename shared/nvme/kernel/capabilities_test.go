package kernel

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme/kernel/kerneltest"
)

// Excerpts of Debian's kernel configs.
const (
	bookwormConfig = "CONFIG_NVME_CORE=m\nCONFIG_NVME_FABRICS=m\nCONFIG_NVME_TCP=m\n# CONFIG_NVME_AUTH is not set\n# CONFIG_NVME_TARGET_AUTH is not set\n"
	trixieConfig   = "CONFIG_NVME_KEYRING=m\nCONFIG_NVME_AUTH=m\nCONFIG_NVME_TCP=m\nCONFIG_NVME_TCP_TLS=y\nCONFIG_NVME_HOST_AUTH=y\nCONFIG_NVME_TARGET_AUTH=y\n"
	// A 6.7+ kernel whose target has auth but whose host does not:
	// CONFIG_NVME_AUTH is set for the target's sake.
	targetOnlyConfig = "CONFIG_NVME_AUTH=m\n# CONFIG_NVME_HOST_AUTH is not set\nCONFIG_NVME_TARGET_AUTH=y\n# CONFIG_NVME_TCP_TLS is not set\n"
	// A kernel older than NVMe authentication: neither option exists.
	oldConfig = "CONFIG_NVME_CORE=m\nCONFIG_NVME_TCP=m\n"

	bookwormParm = "multipath:turn on native support for multiple controllers per subsystem (bool)\n" +
		"iopolicy:Default multipath I/O policy; 'numa' (default) or 'round-robin'\n"
	trixieParm = "iopolicy:Default multipath I/O policy; 'numa' (default), 'round-robin' or 'queue-depth'\n"
)

func writeFile(t *testing.T, path string, data []byte) string {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func gz(t *testing.T, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func params(text string, err error) func(context.Context, string) (string, error) {
	return func(_ context.Context, module string) (string, error) {
		if module != "nvme_core" {
			return "", errors.New("unexpected module " + module)
		}
		return text, err
	}
}

func TestDetectCapabilitiesFromConfig(t *testing.T) {
	tests := []struct {
		name         string
		config       string
		gzipped      bool
		parm         string
		wantAuth     Support
		wantOption   string
		wantTLS      Support
		wantPolicies []string
	}{
		{name: "bookworm 6.1", config: bookwormConfig, parm: bookwormParm, wantAuth: Missing, wantOption: OptionAuthOld,
			wantTLS: Missing, wantPolicies: []string{"numa", "round-robin"}},
		{name: "trixie 6.12, /proc/config.gz", config: trixieConfig, gzipped: true, parm: trixieParm, wantAuth: Supported,
			wantOption: OptionHostAuth, wantTLS: Supported, wantPolicies: []string{"numa", "round-robin", "queue-depth"}},
		{name: "target auth only", config: targetOnlyConfig, wantAuth: Missing, wantOption: OptionHostAuth, wantTLS: Missing},
		{name: "older than auth", config: oldConfig, wantAuth: Missing, wantOption: OptionAuthOld, wantTLS: Missing},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			file := filepath.Join(dir, "config-6.x")
			data := []byte(tt.config)
			if tt.gzipped {
				file, data = filepath.Join(dir, "config.gz"), gz(t, tt.config)
			}
			writeFile(t, file, data)
			caps := DetectCapabilities(t.Context(), CapabilityConfig{
				SysfsRoot: dir, Release: "6.x-test", ConfigFiles: []string{filepath.Join(dir, "missing.gz"), file},
				ModuleParams: params(tt.parm, nil),
			})
			if caps.HostAuth.Support != tt.wantAuth || caps.HostAuth.Option != tt.wantOption || caps.HostAuth.Source != file {
				t.Errorf("HostAuth = %+v, want %s by %s from %s", caps.HostAuth, tt.wantAuth, tt.wantOption, file)
			}
			if caps.TLS.Support != tt.wantTLS {
				t.Errorf("TLS = %+v, want %s", caps.TLS, tt.wantTLS)
			}
			if !reflect.DeepEqual(caps.IOPolicies, tt.wantPolicies) {
				t.Errorf("IOPolicies = %v, want %v", caps.IOPolicies, tt.wantPolicies)
			}
			err := caps.CheckHostAuth()
			if (err != nil) != (tt.wantAuth == Missing) {
				t.Fatalf("CheckHostAuth() = %v with auth %s", err, caps.HostAuth.Support)
			}
			if err != nil && (!errors.Is(err, ErrNoHostAuth) || !strings.Contains(err.Error(), "6.x-test") || !strings.Contains(err.Error(), tt.wantOption)) {
				t.Errorf("CheckHostAuth() = %v, want ErrNoHostAuth naming the kernel and %s", err, tt.wantOption)
			}
		})
	}
}

// TestDetectCapabilitiesFromSysfs: without a readable config (a plugin
// container without /boot), a fabrics controller's attributes tell.
func TestDetectCapabilitiesFromSysfs(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, h *kerneltest.Host)
		want   Support
		source string
	}{
		{name: "controller with dhchap_secret", want: Supported, source: "controller nvme0", setup: func(t *testing.T, h *kerneltest.Host) {
			withAuthAttrs(t, h, adminConnect(t, h, adminOptions(nqnOne)), map[string]string{"dhchap_secret": "none"})
		}},
		{name: "controller without", want: Missing, source: "no dhchap_secret", setup: func(t *testing.T, h *kerneltest.Host) {
			adminConnect(t, h, adminOptions(nqnOne))
		}},
		{name: "nvme_core holds nvme_auth", want: Supported, source: "nvme_auth", setup: func(t *testing.T, h *kerneltest.Host) {
			if err := os.MkdirAll(filepath.Join(h.SysfsRoot(), "module/nvme_auth/holders/nvme_core"), 0o755); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "nothing to go by", want: Unknown, source: "no kernel config", setup: func(*testing.T, *kerneltest.Host) {}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := kerneltest.New(t)
			h.AddTarget("127.0.0.1", "4420", nqnOne, nsOne)
			tt.setup(t, h)
			caps := DetectCapabilities(t.Context(), CapabilityConfig{
				SysfsRoot: h.SysfsRoot(), Release: "6.x-test", ConfigFiles: []string{filepath.Join(t.TempDir(), "no-config")},
				ModuleParams: params("", errors.New("modinfo: not found")),
			})
			if caps.HostAuth.Support != tt.want || !strings.Contains(caps.HostAuth.Source, tt.source) {
				t.Errorf("HostAuth = %+v, want %s from %q", caps.HostAuth, tt.want, tt.source)
			}
			if caps.IOPolicies != nil {
				t.Errorf("IOPolicies = %v without modinfo, want nil (unknown)", caps.IOPolicies)
			}
			if tt.want == Unknown && caps.CheckHostAuth() != nil {
				t.Errorf("CheckHostAuth() refuses on an unknown kernel: %v", caps.CheckHostAuth())
			}
		})
	}
}
