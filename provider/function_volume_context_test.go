package provider

import (
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfversion"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

func TestAccVolumeContextFunction(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		want    map[string]string
		wantErr map[string]string // the volume context whose core error is expected
		errKey  string
	}{{
		name: "defaults written out",
		args: `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1 }`,
		want: map[string]string{"transport": "tcp", "traddr": testAddr, "trsvcid": "4420", "nqn": testNQN, "nsid": "1", "ctrl_loss_tmo": "-1", "reconnect_delay": "5"},
	}, {
		name: "aliases, bare values, nulls and metadata keys normalised",
		args: `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", uuid = "0E3F7C2A-51B4-4D8E-9A6C-2B7D1E4F8A90", ctrlLossTmo = 600, hdrDigest = true, tos = null, "example.com/owner" = "team-a" }`,
		want: map[string]string{"transport": "tcp", "traddr": testAddr, "trsvcid": "4420", "nqn": testNQN, "uuid": "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90",
			"ctrl_loss_tmo": "600", "reconnect_delay": "5", "hdr_digest": "true"},
	}, {
		name: "a format policy",
		args: `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, format_policy = "if-no-filesystem" }`,
		want: map[string]string{"transport": "tcp", "traddr": testAddr, "trsvcid": "4420", "nqn": testNQN, "nsid": "1", "ctrl_loss_tmo": "-1", "reconnect_delay": "5",
			"format_policy": "if-no-filesystem"},
	}, {
		name:    "a format policy that does not exist",
		args:    `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, format_policy = "always" }`,
		wantErr: baseContext(map[string]string{"format_policy": "always"}),
		errKey:  nvme.KeyFormatPolicy,
	}, {
		name:    "out of range",
		args:    `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, queue_size = 8 }`,
		wantErr: baseContext(map[string]string{"queue_size": "8"}),
		errKey:  "queue_size",
	}, {
		name:    "typo in a key",
		args:    `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, ctrl_los_tmo = 5 }`,
		wantErr: baseContext(map[string]string{"ctrl_los_tmo": "5"}),
		errKey:  "ctrl_los_tmo",
	}, {
		name:    "resource attribute names are not volume-context keys",
		args:    `{ traddr = "` + testAddr + `", subsystem_nqn = "` + testNQN + `", nsid = 1 }`,
		wantErr: map[string]string{"traddr": testAddr, "subsystem_nqn": testNQN, "nsid": "1"},
		errKey:  "subsystem_nqn",
	}, {
		name:    "the same setting twice",
		args:    `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, ctrl_loss_tmo = 5, ctrlLossTmo = 6 }`,
		wantErr: baseContext(map[string]string{"ctrl_loss_tmo": "5", "ctrlLossTmo": "6"}),
		errKey:  nvme.KeyCtrlLossTmo,
	}, {
		name: "two portals, the second's port written out",
		args: `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, traddr_2 = "2001:DB8::20", hostIface2 = "eth2", iopolicy = "round-robin" }`,
		want: map[string]string{"transport": "tcp", "traddr": testAddr, "trsvcid": "4420", "nqn": testNQN, "nsid": "1", "ctrl_loss_tmo": "-1", "reconnect_delay": "5",
			"traddr_2": "2001:DB8::20", "trsvcid_2": "4420", "host_iface_2": "eth2", "iopolicy": "round-robin"},
	}, {
		name:    "a second portal that would add an option",
		args:    `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, traddr_2 = "198.51.100.10", trsvcid_2 = "4420,hostnqn=x" }`,
		wantErr: baseContext(map[string]string{"traddr_2": "198.51.100.10", "trsvcid_2": "4420,hostnqn=x"}),
		errKey:  "trsvcid_2",
	}, {
		name:    "the first portal again",
		args:    `{ traddr = "` + testAddr + `", nqn = "` + testNQN + `", nsid = 1, traddr_2 = "::ffff:` + testAddr + `" }`,
		wantErr: baseContext(map[string]string{"traddr_2": "::ffff:" + testAddr}),
		errKey:  "traddr_2",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step := resource.TestStep{Config: `output "context" { value = provider::nvme::volume_context(` + tt.args + `) }`}
			if tt.wantErr != nil {
				step.ExpectError = coreError(t, tt.wantErr, tt.errKey)
			} else {
				step.ConfigStateChecks = []statecheck.StateCheck{statecheck.ExpectKnownOutputValue("context", exactStrings(tt.want))}
			}
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Providers,
				TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.RequireAbove(tfversion.Version1_8_0)},
				Steps:                    []resource.TestStep{step},
			})
		})
	}
}

// TestAccVolumeContextFunction_matchesTheResource: for the same settings,
// the function and the resource give the same volume context, the
// resource's defaults written out the same way.
func TestAccVolumeContextFunction_matchesTheResource(t *testing.T) {
	config := connectionConfig("", `keep_alive_tmo = 30`, `hdr_digest = true`,
		`namespaces = { data = { nsid = 1, uuid = "0E3F7C2A-51B4-4D8E-9A6C-2B7D1E4F8A90", format_policy = "never" } }`) + `
output "same" {
  value = provider::nvme::volume_context({
    traddr         = "` + testAddr + `"
    nqn            = "` + testNQN + `"
    nsid           = 1
    uuid           = "0E3F7C2A-51B4-4D8E-9A6C-2B7D1E4F8A90"
    keep_alive_tmo = 30
    hdr_digest     = true
    format_policy  = "never"
  }) == nvme_connection.test.volume_contexts["data"]
}
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		TerraformVersionChecks:   []tfversion.TerraformVersionCheck{tfversion.RequireAbove(tfversion.Version1_8_0)},
		Steps: []resource.TestStep{{
			Config:            config,
			ConfigStateChecks: []statecheck.StateCheck{statecheck.ExpectKnownOutputValue("same", knownvalue.Bool(true))},
		}},
	})
}
