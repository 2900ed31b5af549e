package provider

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

const testResource = "nvme_connection.test"

// connectionConfig is a provider block (may be empty) and one
// nvme_connection with the minimal settings plus extra attribute lines.
func connectionConfig(providerBlock string, extra ...string) string {
	return providerBlock + fmt.Sprintf(`
resource "nvme_connection" "test" {
  traddr        = %q
  subsystem_nqn = %q
  nsid          = 1
%s
}
`, testAddr, testNQN, indent(extra))
}

func indent(lines []string) string {
	for i, l := range lines {
		lines[i] = "  " + l
	}
	return strings.Join(lines, "\n")
}

func at(name string) tfjsonpath.Path { return tfjsonpath.New(name) }

func TestAccConnection_defaults(t *testing.T) {
	wantContext := map[string]string{
		"transport": "tcp", "traddr": testAddr, "trsvcid": "4420", "nqn": testNQN, "nsid": "1",
		"ctrl_loss_tmo": "-1", "reconnect_delay": "5",
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: connectionConfig(""),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionCreate),
				plancheck.ExpectKnownValue(testResource, at("volume_context"), exactStrings(wantContext)),
				plancheck.ExpectKnownValue(testResource, at("id"), knownvalue.StringExact("transport=tcp,traddr="+testAddr+",trsvcid=4420,nqn="+testNQN+",nsid=1")),
				plancheck.ExpectKnownValue(testResource, at("external_id"), knownvalue.StringExact(testNQN+"/nsid:1")),
				plancheck.ExpectKnownValue(testResource, at("ctrl_loss_tmo"), knownvalue.Int64Exact(-1)),
				plancheck.ExpectKnownValue(testResource, at("reconnect_delay"), knownvalue.Int64Exact(5)),
				// Without a host identity there is no option string to show.
				plancheck.ExpectKnownValue(testResource, at("fabrics_options"), knownvalue.Null()),
				plancheck.ExpectKnownValue(testResource, at("connect_args"), knownvalue.Null()),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(testResource, at("transport"), knownvalue.StringExact("tcp")),
				statecheck.ExpectKnownValue(testResource, at("trsvcid"), knownvalue.StringExact("4420")),
				statecheck.ExpectKnownValue(testResource, at("keep_alive_tmo"), knownvalue.Null()),
				statecheck.ExpectKnownValue(testResource, at("fast_io_fail_tmo"), knownvalue.Null()),
				statecheck.ExpectKnownValue(testResource, at("hdr_digest"), knownvalue.Bool(false)),
				statecheck.ExpectKnownValue(testResource, at("data_digest"), knownvalue.Bool(false)),
				roundTrip(testResource, testVolume(nil)),
			},
		}},
	})
}

func TestAccConnection_everySettingWithHost(t *testing.T) {
	const uuid = "0E3F7C2A-51B4-4D8E-9A6C-2B7D1E4F8A90"
	const nguid = "3a1c-5e7f-9b2d-4c6e-8a0f-1b3d5e7f9a2c"
	config := connectionConfig(providerWithHost,
		`namespace_uuid   = "`+uuid+`"`,
		`namespace_nguid  = "`+nguid+`"`,
		`trsvcid          = "4421"`,
		`host_traddr      = "192.0.2.1"`,
		`host_iface       = "eth1"`,
		`ctrl_loss_tmo    = 600`,
		`reconnect_delay  = 10`,
		`keep_alive_tmo   = 30`,
		`fast_io_fail_tmo = 60`,
		`nr_io_queues     = 4`,
		`queue_size       = 128`,
		`hdr_digest       = true`,
		`data_digest      = true`,
		`tos              = 16`,
	)
	lowerUUID, bareNGUID := strings.ToLower(uuid), strings.ReplaceAll(nguid, "-", "")
	wantOptions := "nqn=" + testNQN + ",transport=tcp,traddr=" + testAddr + ",trsvcid=4421,host_traddr=192.0.2.1,host_iface=eth1," +
		"hostnqn=" + testHostNQN + ",hostid=" + testHostID + ",nr_io_queues=4,queue_size=128,keep_alive_tmo=30," +
		"reconnect_delay=10,ctrl_loss_tmo=600,fast_io_fail_tmo=60,tos=16,hdr_digest,data_digest"
	wantArgs := []string{"connect", "-n", testNQN, "-t", "tcp", "-a", testAddr, "-s", "4421", "-w", "192.0.2.1", "-f", "eth1",
		"-q", testHostNQN, "-I", testHostID, "-i", "4", "-Q", "128", "-k", "30", "-c", "10", "-l", "600", "-F", "60", "-T", "16", "-g", "-G"}
	argChecks := make([]knownvalue.Check, len(wantArgs))
	for i, a := range wantArgs {
		argChecks[i] = knownvalue.StringExact(a)
	}
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectKnownValue(testResource, at("fabrics_options"), knownvalue.StringExact(wantOptions)),
				plancheck.ExpectKnownValue(testResource, at("connect_args"), knownvalue.ListExact(argChecks)),
				plancheck.ExpectKnownValue(testResource, at("external_id"), knownvalue.StringExact(testNQN+"/uuid:"+lowerUUID)),
				plancheck.ExpectKnownValue(testResource, at("volume_context").AtMapKey("uuid"), knownvalue.StringExact(lowerUUID)),
				plancheck.ExpectKnownValue(testResource, at("volume_context").AtMapKey("nguid"), knownvalue.StringExact(bareNGUID)),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				// The attribute keeps what the user wrote; the context is canonical.
				statecheck.ExpectKnownValue(testResource, at("namespace_uuid"), knownvalue.StringExact(uuid)),
				roundTrip(testResource, testVolume(func(v *nvme.Volume) {
					v.Target.TrSvcID, v.Target.HostTrAddr, v.Target.HostIface = "4421", "192.0.2.1", "eth1"
					v.Namespace.UUID, v.Namespace.NGUID = lowerUUID, bareNGUID
					v.Config = nvme.ConnectionConfig{
						CtrlLossTmo: 600, ReconnectDelay: 10, KeepAliveTmo: intPtr(30), FastIOFailTmo: intPtr(60),
						NrIOQueues: intPtr(4), QueueSize: intPtr(128), TOS: intPtr(16), HdrDigest: true, DataDigest: true,
					}
				})),
			},
		}},
	})
}

// TestAccConnection_renderingLimits covers the documented cases where the
// kernel option string or the nvme-cli arguments cannot be rendered: the
// volume stays valid and the attribute is null.
func TestAccConnection_renderingLimits(t *testing.T) {
	tests := []struct {
		name        string
		config      string
		wantOptions knownvalue.Check
		wantArgs    knownvalue.Check
		want        nvme.Volume
	}{{
		name: "host name traddr is resolved on the node",
		config: providerWithHost + `
resource "nvme_connection" "test" {
  traddr        = "storage-1.example.internal"
  subsystem_nqn = "` + testNQN + `"
  nsid          = 1
}
`,
		wantOptions: knownvalue.Null(),
		wantArgs:    knownvalue.Null(),
		want:        testVolume(func(v *nvme.Volume) { v.Target.TrAddr = "storage-1.example.internal" }),
	}, {
		name:        "ctrl_loss_tmo 0 is beyond nvme-cli",
		config:      connectionConfig(providerWithHost, "ctrl_loss_tmo = 0"),
		wantOptions: knownvalue.NotNull(),
		wantArgs:    knownvalue.Null(),
		want:        testVolume(func(v *nvme.Volume) { v.Config.CtrlLossTmo = 0 }),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Providers,
				Steps: []resource.TestStep{{
					Config: tt.config,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue(testResource, at("fabrics_options"), tt.wantOptions),
						plancheck.ExpectKnownValue(testResource, at("connect_args"), tt.wantArgs),
					}},
					ConfigStateChecks: []statecheck.StateCheck{roundTrip(testResource, tt.want)},
				}},
			})
		})
	}
}

func TestAccConnection_updateInPlaceOrReplace(t *testing.T) {
	step := func(action plancheck.ResourceActionType, want nvme.Volume, extra ...string) resource.TestStep {
		return resource.TestStep{
			Config: connectionConfig("", extra...),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(testResource, action),
				plancheck.ExpectKnownValue(testResource, at("volume_context"), knownvalue.NotNull()),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(testResource, want)},
		}
	}
	type change struct {
		line   string
		action plancheck.ResourceActionType
		adjust func(*nvme.Volume)
	}
	changes := []change{
		{`ctrl_loss_tmo = 600`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.CtrlLossTmo = 600 }},
		{`reconnect_delay = 2`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.ReconnectDelay = 2 }},
		{`keep_alive_tmo = 15`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.KeepAliveTmo = intPtr(15) }},
		{`fast_io_fail_tmo = 20`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.FastIOFailTmo = intPtr(20) }},
		{`nr_io_queues = 2`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.NrIOQueues = intPtr(2) }},
		{`queue_size = 64`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.QueueSize = intPtr(64) }},
		{`tos = 8`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.TOS = intPtr(8) }},
		{`hdr_digest = true`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.HdrDigest = true }},
		{`data_digest = true`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Config.DataDigest = true }},
		{`host_traddr = "192.0.2.1"`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Target.HostTrAddr = "192.0.2.1" }},
		{`host_iface = "eth0"`, plancheck.ResourceActionUpdate, func(v *nvme.Volume) { v.Target.HostIface = "eth0" }},
		{`trsvcid = "4421"`, plancheck.ResourceActionDestroyBeforeCreate, func(v *nvme.Volume) { v.Target.TrSvcID = "4421" }},
		{`namespace_uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"`, plancheck.ResourceActionDestroyBeforeCreate,
			func(v *nvme.Volume) { v.Namespace.UUID = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90" }},
		{`namespace_nguid = "3a1c5e7f9b2d4c6e8a0f1b3d5e7f9a2c"`, plancheck.ResourceActionDestroyBeforeCreate,
			func(v *nvme.Volume) { v.Namespace.NGUID = "3a1c5e7f9b2d4c6e8a0f1b3d5e7f9a2c" }},
	}
	steps := []resource.TestStep{step(plancheck.ResourceActionCreate, testVolume(nil))}
	var lines []string
	var adjustments []func(*nvme.Volume)
	for _, c := range changes {
		lines = append(lines, c.line)
		adjustments = append(adjustments, c.adjust)
		want := testVolume(func(v *nvme.Volume) {
			for _, a := range adjustments {
				a(v)
			}
		})
		steps = append(steps, step(c.action, want, lines...))
	}
	// The identity attributes set in connectionConfig itself.
	replaceIn := func(old, replacement string, adjust func(*nvme.Volume)) resource.TestStep {
		s := step(plancheck.ResourceActionDestroyBeforeCreate, testVolume(func(v *nvme.Volume) {
			for _, a := range adjustments {
				a(v)
			}
			adjust(v)
		}), lines...)
		s.Config = strings.Replace(s.Config, old, replacement, 1)
		return s
	}
	steps = append(steps,
		replaceIn(`nsid          = 1`, `nsid          = 2`, func(v *nvme.Volume) { v.Namespace.NSID = 2 }),
		replaceIn(testAddr, "192.0.2.20", func(v *nvme.Volume) { v.Target.TrAddr = "192.0.2.20" }),
		replaceIn(testNQN, "nqn.2014-08.org.example:vol2", func(v *nvme.Volume) { v.Target.NQN = "nqn.2014-08.org.example:vol2" }),
	)
	resource.Test(t, resource.TestCase{ProtoV6ProviderFactories: protoV6Providers, Steps: steps})
}

func TestAccConnection_providerDefaults(t *testing.T) {
	providerBlock := func(ctrlLossTmo int) string {
		return fmt.Sprintf(`
provider "nvme" {
  defaults {
    ctrl_loss_tmo    = %d
    reconnect_delay  = 10
    keep_alive_tmo   = 30
    fast_io_fail_tmo = 60
  }
}
`, ctrlLossTmo)
	}
	resources := `
resource "nvme_connection" "inherits" {
  traddr        = "` + testAddr + `"
  subsystem_nqn = "` + testNQN + `"
  nsid          = 1
}

resource "nvme_connection" "overrides" {
  traddr           = "` + testAddr + `"
  subsystem_nqn    = "` + testNQN + `"
  nsid             = 2
  ctrl_loss_tmo    = -1
  reconnect_delay  = 3
  fast_io_fail_tmo = -1
}
`
	const inherits, overrides = "nvme_connection.inherits", "nvme_connection.overrides"
	inherited := func(ctrlLossTmo int) nvme.Volume {
		return testVolume(func(v *nvme.Volume) {
			v.Config = nvme.ConnectionConfig{CtrlLossTmo: ctrlLossTmo, ReconnectDelay: 10, KeepAliveTmo: intPtr(30), FastIOFailTmo: intPtr(60)}
		})
	}
	overridden := testVolume(func(v *nvme.Volume) {
		v.Namespace.NSID = 2
		// keep_alive_tmo is not set on the resource: the default still applies.
		v.Config = nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 3, KeepAliveTmo: intPtr(30), FastIOFailTmo: intPtr(-1)}
	})
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: providerBlock(600) + resources,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectKnownValue(inherits, at("ctrl_loss_tmo"), knownvalue.Int64Exact(600)),
				plancheck.ExpectKnownValue(inherits, at("volume_context").AtMapKey("reconnect_delay"), knownvalue.StringExact("10")),
				plancheck.ExpectKnownValue(overrides, at("ctrl_loss_tmo"), knownvalue.Int64Exact(-1)),
				plancheck.ExpectKnownValue(overrides, at("keep_alive_tmo"), knownvalue.Int64Exact(30)),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(inherits, inherited(600)), roundTrip(overrides, overridden)},
		}, {
			// A new fleet policy updates the resources that inherit it, in
			// place, and leaves the ones that set their own alone.
			Config: providerBlock(1200) + resources,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(inherits, plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction(overrides, plancheck.ResourceActionNoop),
				plancheck.ExpectKnownValue(inherits, at("volume_context").AtMapKey("ctrl_loss_tmo"), knownvalue.StringExact("1200")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(inherits, inherited(1200)), roundTrip(overrides, overridden)},
		}},
	})
}

func TestAccConnection_import(t *testing.T) {
	// The whole volume context as an import id: what a user copies from a
	// Nomad volume's context.
	fromVolumeContext := func(s *terraform.State) (string, error) {
		rs, ok := s.RootModule().Resources[testResource]
		if !ok {
			return "", fmt.Errorf("%s not in the state", testResource)
		}
		var pairs []string
		for _, k := range nvme.VolumeContextKeys() {
			if v, ok := rs.Primary.Attributes["volume_context."+k]; ok {
				pairs = append(pairs, k+"="+v)
			}
		}
		return strings.Join(pairs, ","), nil
	}
	tuned := connectionConfig(providerWithHost, `ctrl_loss_tmo = 600`, `keep_alive_tmo = 30`, `hdr_digest = true`,
		`namespace_uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"`)
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{
			{Config: connectionConfig(providerWithHost)},
			{
				// The resource's own id imports it back.
				ResourceName:      testResource,
				ImportState:       true,
				ImportStateVerify: true,
			},
			{Config: tuned},
			{
				ResourceName:      testResource,
				ImportState:       true,
				ImportStateIdFunc: fromVolumeContext,
				ImportStateVerify: true,
			},
			{
				// camelCase aliases are read as the plugin reads them.
				ResourceName:      testResource,
				ImportState:       true,
				ImportStateId:     "traddr=" + testAddr + ",nqn=" + testNQN + ",nsid=1,uuid=0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90,ctrlLossTmo=600,keepAliveTmo=30,hdrDigest=true",
				ImportStateVerify: true,
			},
			{
				ResourceName:  testResource,
				ImportState:   true,
				ImportStateId: "traddr=" + testAddr + ",nqn=" + testNQN + ",nsid=0",
				ExpectError:   coreError(t, baseContext(map[string]string{"nsid": "0"}), nvme.KeyNSID),
			},
			{
				ResourceName:  testResource,
				ImportState:   true,
				ImportStateId: "traddr=" + testAddr + ",nqn=" + testNQN + ",nsid=1,ctrl_los_tmo=5",
				ExpectError:   coreError(t, baseContext(map[string]string{"ctrl_los_tmo": "5"}), "ctrl_los_tmo"),
			},
			{
				ResourceName:  testResource,
				ImportState:   true,
				ImportStateId: testNQN,
				ExpectError:   looseText(errImportID.Error()),
			},
		},
	})
}
