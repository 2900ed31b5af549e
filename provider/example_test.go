package provider

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// exampleDir is the complete example; its nvme part is nvme.tf and volumes/.
const exampleDir = "../examples/terraform"

// TestAccExample runs terraform plan and apply on the nvme part of
// examples/terraform with a build of this provider (through dev_overrides,
// as its README describes) and checks the outputs the Nomad part consumes.
// The Nomad provider cannot be installed offline, so nomad.tf and
// versions.tf stay out; a versions file naming only nvme stands in.
func TestAccExample(t *testing.T) {
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make test-provider-example does)")
	}
	tf := terraformPath(t)
	pluginDir := t.TempDir()
	build := exec.CommandContext(t.Context(), "go", "build", "-o", filepath.Join(pluginDir, "terraform-provider-nvme"), "./cmd/terraform-provider-nvme")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the provider: %v\n%s", err, out)
	}
	cliConfig := filepath.Join(t.TempDir(), "terraformrc")
	writeFile(t, cliConfig, `provider_installation {
  dev_overrides {
    "nvmeof/nvme" = "`+pluginDir+`"
  }
  direct {}
}
`)

	work := t.TempDir()
	copyFile(t, filepath.Join(exampleDir, "nvme.tf"), filepath.Join(work, "nvme.tf"))
	copyFile(t, filepath.Join(exampleDir, "volumes", "main.tf"), filepath.Join(work, "volumes", "main.tf"))
	writeFile(t, filepath.Join(work, "versions.tf"), `terraform {
  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
  }
}
`)

	run := func(args ...string) []byte {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), tf, append([]string{"-chdir=" + work}, args...)...)
		cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+cliConfig, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("terraform %v: %v\n%s\n%s", args, err, out, stderr.String())
		}
		return out
	}
	// `terraform get` installs the local module only; init would also look
	// the provider up in the registry, which dev_overrides makes needless.
	run("get", "-no-color")
	run("plan", "-input=false", "-no-color", "-out=example.tfplan")
	run("apply", "-input=false", "-no-color", "example.tfplan")

	var outputs struct {
		VolumeContexts struct {
			Value map[string]map[string]string `json:"value"`
		} `json:"volume_contexts"`
		ExternalIDs struct {
			Value map[string]string `json:"value"`
		} `json:"external_ids"`
	}
	if err := json.Unmarshal(run("output", "-json"), &outputs); err != nil {
		t.Fatalf("decode terraform output: %v", err)
	}

	const nqn = "nqn.2014-08.org.example:fleet"
	const uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"
	target := nvme.Target{Transport: "tcp", TrAddr: "192.0.2.10", TrSvcID: "4420", NQN: nqn}
	want := map[string]nvme.Volume{
		// The policy of the provider block, but fast_io_fail_tmo of its own.
		"postgres": {Target: target, Namespace: nvme.NamespaceSelector{NSID: 1, UUID: uuid},
			Config: nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 5, KeepAliveTmo: intPtr(10), FastIOFailTmo: intPtr(-1)}},
		// The policy of the provider block throughout.
		"uploads": {Target: target, Namespace: nvme.NamespaceSelector{NSID: 2},
			Config: nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 5, KeepAliveTmo: intPtr(10), FastIOFailTmo: intPtr(30)}},
	}
	wantIDs := map[string]string{"postgres": nqn + "/uuid:" + uuid, "uploads": nqn + "/nsid:2"}

	if len(outputs.VolumeContexts.Value) != len(want) {
		t.Fatalf("volume_contexts has %d volumes, want %d: %v", len(outputs.VolumeContexts.Value), len(want), outputs.VolumeContexts.Value)
	}
	for name, w := range want {
		got, err := nvme.ParseVolumeContext(outputs.VolumeContexts.Value[name])
		if err != nil {
			t.Errorf("%s: the plugin would reject the volume context: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s: volume context parses to\n%s\nwant\n%s", name, describe(got), describe(w))
		}
	}
	if !reflect.DeepEqual(outputs.ExternalIDs.Value, wantIDs) {
		t.Errorf("external_ids = %v, want %v", outputs.ExternalIDs.Value, wantIDs)
	}
}

// terraformPath is the CLI the acceptance tests use.
func terraformPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("no terraform CLI: set TF_ACC_TERRAFORM_PATH or put terraform on PATH: %v", err)
	}
	return p
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}
