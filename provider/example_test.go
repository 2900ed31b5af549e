package provider

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// exampleDir is the complete example; its nvme part is nvme.tf and volumes/.
const exampleDir = "../examples/terraform"

// TestAccExample runs terraform plan and apply on the nvme part of
// examples/terraform with a build of this provider (through dev_overrides,
// as its README describes) and checks the outputs the Nomad part consumes:
// each volume context parses in the plugin to the configured volume. The
// Nomad provider cannot be installed offline, so nomad.tf and versions.tf
// stay out; a versions file naming only nvme stands in.
func TestAccExample(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	copyFile(t, filepath.Join(exampleDir, "nvme.tf"), filepath.Join(c.dir, "nvme.tf"))
	copyFile(t, filepath.Join(exampleDir, "volumes", "main.tf"), filepath.Join(c.dir, "volumes", "main.tf"))
	c.write("versions.tf", versionsTF)

	// `terraform get` installs the local module only; init would also look
	// the provider up in the registry, which dev_overrides makes needless.
	c.must("get", "-no-color")
	c.must("plan", "-input=false", "-no-color", "-out=example.tfplan")
	c.must("apply", "-input=false", "-no-color", "example.tfplan")

	var outputs struct {
		VolumeContexts struct {
			Value map[string]map[string]string `json:"value"`
		} `json:"volume_contexts"`
		ExternalIDs struct {
			Value map[string]string `json:"value"`
		} `json:"external_ids"`
	}
	if err := json.Unmarshal([]byte(c.must("output", "-json")), &outputs); err != nil {
		t.Fatalf("decode terraform output: %v", err)
	}

	const databases, fleet = "nqn.2014-08.org.example:databases", "nqn.2014-08.org.example:fleet"
	const uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"
	target := func(nqn string) nvme.Target {
		return nvme.Target{Transport: "tcp", TrAddr: "192.0.2.10", TrSvcID: "4420", NQN: nqn}
	}
	policy := func(fastIOFailTmo int) nvme.ConnectionConfig {
		return nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 5, KeepAliveTmo: intPtr(10), FastIOFailTmo: intPtr(fastIOFailTmo)}
	}
	want := map[string]nvme.Volume{
		// The provider's policy, but fast_io_fail_tmo of its own subsystem,
		// reached over two paths (database_paths' default).
		"postgres": {Target: target(databases), Namespace: nvme.NamespaceSelector{NSID: 1, UUID: uuid}, Config: policy(-1),
			MorePortals: []nvme.Portal{{TrAddr: "198.51.100.10", TrSvcID: "4420"}}, IOPolicy: nvme.IOPolicyRoundRobin},
		// The provider's policy throughout, one subsystem for both.
		"uploads": {Target: target(fleet), Namespace: nvme.NamespaceSelector{NSID: 1}, Config: policy(30)},
		"logs":    {Target: target(fleet), Namespace: nvme.NamespaceSelector{NSID: 2}, Config: policy(30)},
	}
	wantIDs := map[string]string{"postgres": databases + "/uuid:" + uuid, "uploads": fleet + "/nsid:1", "logs": fleet + "/nsid:2"}
	if err := checkVolumeContexts(outputs.VolumeContexts.Value, want); err != nil {
		t.Error(err)
	}
	if !reflect.DeepEqual(outputs.ExternalIDs.Value, wantIDs) {
		t.Errorf("external_ids = %v, want %v", outputs.ExternalIDs.Value, wantIDs)
	}
}

// TestAccExample_firstShape plans the shape of the first examples/terraform
// (testdata/first-example): two nvme_connection resources for one
// subsystem in a module, one of them with a fast_io_fail_tmo of its own. It
// applied then and failed on the node; it must fail the plan now, naming
// the resource terraform planned second by its address and the other by
// its namespaces, and saying to merge them.
func TestAccExample_firstShape(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, name := range []string{"main.tf", "volumes/main.tf"} {
		copyFile(t, filepath.Join("testdata", "first-example", name), filepath.Join(c.dir, name))
	}
	c.must("get", "-no-color")
	c.must("validate", "-no-color")
	_, errOut, ok := c.run("plan", "-input=false", "-no-color")
	if ok {
		t.Fatal("terraform plan accepted two connections to one subsystem")
	}
	want := declaredTwice("subsystem nqn.2014-08.org.example:fleet at tcp 192.0.2.10 port 4420",
		[2]string{"module.volumes.nvme_connection.postgres", `namespaces "postgres"`},
		[2]string{"module.volumes.nvme_connection.uploads", `namespaces "uploads"`})
	if !want.MatchString(errOut) {
		t.Fatalf("terraform plan failed otherwise:\n%s", errOut)
	}
	if n := strings.Count(errOut, "Error:"); n != 1 {
		t.Fatalf("want one error, got %d:\n%s", n, errOut)
	}
}
