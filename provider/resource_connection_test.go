package provider

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/tfjsonpath"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

const testResource = "nvme_connection.test"

// defaultNamespaces is the namespaces map of the minimal test connection.
const defaultNamespaces = `namespaces = { data = { nsid = 1 } }`

// connection renders an nvme_connection called name with the minimal
// settings (testAddr, testNQN, one namespace "data" with nsid 1); a line
// starting with traddr, subsystem_nqn or namespaces replaces the default.
func connection(name string, lines ...string) string {
	defaults := []string{`traddr = "` + testAddr + `"`, `subsystem_nqn = "` + testNQN + `"`, defaultNamespaces}
	var body []string
	for _, d := range defaults {
		attr := strings.Fields(d)[0]
		if !slices.ContainsFunc(lines, func(l string) bool { return strings.HasPrefix(strings.TrimSpace(l), attr+" ") }) {
			body = append(body, d)
		}
	}
	body = append(body, lines...)
	return fmt.Sprintf("resource \"nvme_connection\" %q {\n%s\n}\n", name, indent(body))
}

// connectionConfig is a provider block (may be empty) and the test
// connection.
func connectionConfig(providerBlock string, lines ...string) string {
	return providerBlock + "\n" + connection("test", lines...)
}

func indent(lines []string) string {
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		for _, part := range strings.Split(l, "\n") {
			out = append(out, "  "+part)
		}
	}
	return strings.Join(out, "\n")
}

func at(name string) tfjsonpath.Path { return tfjsonpath.New(name) }

// one is the wanted volumes of a connection with the single namespace
// "data".
func one(v nvme.Volume) map[string]nvme.Volume { return map[string]nvme.Volume{"data": v} }

func TestAccConnection_defaults(t *testing.T) {
	wantContext := map[string]string{
		"transport": "tcp", "traddr": testAddr, "trsvcid": "4420", "nqn": testNQN, "nsid": "1",
		"ctrl_loss_tmo": "-1", "reconnect_delay": "5",
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: connectionConfig(""),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionCreate),
				plancheck.ExpectKnownValue(testResource, at("volume_contexts"),
					knownvalue.MapExact(map[string]knownvalue.Check{"data": exactStrings(wantContext)})),
				plancheck.ExpectKnownValue(testResource, at("id"), knownvalue.StringExact("transport=tcp,traddr="+testAddr+",trsvcid=4420,nqn="+testNQN)),
				plancheck.ExpectKnownValue(testResource, at("external_ids"),
					knownvalue.MapExact(map[string]knownvalue.Check{"data": knownvalue.StringExact(testNQN + "/nsid:1")})),
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
				roundTrip(testResource, one(testVolume(nil))),
			},
		}},
	})
}

func TestAccConnection_everySettingWithHost(t *testing.T) {
	const uuid = "0E3F7C2A-51B4-4D8E-9A6C-2B7D1E4F8A90"
	const nguid = "3a1c-5e7f-9b2d-4c6e-8a0f-1b3d5e7f9a2c"
	config := connectionConfig(providerWithHost,
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
		`namespaces = {
  postgres = { nsid = 1, uuid = "`+uuid+`", format_policy = "never" }
  uploads  = { nguid = "`+nguid+`", format_policy = "if-no-filesystem" }
  logs     = { nsid = 3 }
}`,
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
	volume := func(ns nvme.NamespaceSelector, policy nvme.FormatPolicy) nvme.Volume {
		return testVolume(func(v *nvme.Volume) {
			v.Target.TrSvcID, v.Target.HostTrAddr, v.Target.HostIface = "4421", "192.0.2.1", "eth1"
			v.Namespace, v.FormatPolicy = ns, policy
			v.Config = nvme.ConnectionConfig{
				CtrlLossTmo: 600, ReconnectDelay: 10, KeepAliveTmo: intPtr(30), FastIOFailTmo: intPtr(60),
				NrIOQueues: intPtr(4), QueueSize: intPtr(128), TOS: intPtr(16), HdrDigest: true, DataDigest: true,
			}
		})
	}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: config,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectKnownValue(testResource, at("fabrics_options"), knownvalue.StringExact(wantOptions)),
				plancheck.ExpectKnownValue(testResource, at("connect_args"), knownvalue.ListExact(argChecks)),
				plancheck.ExpectKnownValue(testResource, at("external_ids"), knownvalue.MapExact(map[string]knownvalue.Check{
					"postgres": knownvalue.StringExact(testNQN + "/uuid:" + lowerUUID),
					"uploads":  knownvalue.StringExact(testNQN + "/nguid:" + bareNGUID),
					"logs":     knownvalue.StringExact(testNQN + "/nsid:3"),
				})),
				plancheck.ExpectKnownValue(testResource, at("volume_contexts").AtMapKey("postgres").AtMapKey("uuid"), knownvalue.StringExact(lowerUUID)),
				plancheck.ExpectKnownValue(testResource, at("volume_contexts").AtMapKey("uploads").AtMapKey("nguid"), knownvalue.StringExact(bareNGUID)),
				plancheck.ExpectKnownValue(testResource, at("volume_contexts").AtMapKey("postgres").AtMapKey("format_policy"), knownvalue.StringExact("never")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{
				// The attribute keeps what the user wrote; the context is canonical.
				statecheck.ExpectKnownValue(testResource, at("namespaces").AtMapKey("postgres").AtMapKey("uuid"), knownvalue.StringExact(uuid)),
				roundTrip(testResource, map[string]nvme.Volume{
					"postgres": volume(nvme.NamespaceSelector{NSID: 1, UUID: lowerUUID}, nvme.FormatNever),
					"uploads":  volume(nvme.NamespaceSelector{NGUID: bareNGUID}, nvme.FormatIfNoFilesystem),
					// Unset: the plugin's default, left out of the context.
					"logs": volume(nvme.NamespaceSelector{NSID: 3}, ""),
				}),
			},
		}},
	})
}

// TestAccConnection_renderingLimits covers the documented cases where the
// kernel option string or the nvme-cli arguments cannot be rendered: the
// volumes stay valid and the attribute is null.
func TestAccConnection_renderingLimits(t *testing.T) {
	tests := []struct {
		name        string
		config      string
		wantOptions knownvalue.Check
		wantArgs    knownvalue.Check
		want        nvme.Volume
	}{{
		name:        "host name traddr is resolved on the node",
		config:      connectionConfig(providerWithHost, `traddr = "storage-1.example.internal"`),
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
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Providers,
				Steps: []resource.TestStep{{
					Config: tt.config,
					ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
						plancheck.ExpectKnownValue(testResource, at("fabrics_options"), tt.wantOptions),
						plancheck.ExpectKnownValue(testResource, at("connect_args"), tt.wantArgs),
					}},
					ConfigStateChecks: []statecheck.StateCheck{roundTrip(testResource, one(tt.want))},
				}},
			})
		})
	}
}

// TestAccConnection_updateInPlaceOrReplace walks one connection through
// every kind of change: each connection setting and each change of the
// namespaces map is made in place; a change of the target replaces it.
func TestAccConnection_updateInPlaceOrReplace(t *testing.T) {
	type change struct {
		name   string
		line   string // a line added to the configuration, or replacing the line of the same attribute
		action plancheck.ResourceActionType
		adjust func(map[string]nvme.Volume)
	}
	every := func(f func(*nvme.Volume)) func(map[string]nvme.Volume) {
		return func(vols map[string]nvme.Volume) {
			for name, v := range vols {
				f(&v)
				vols[name] = v
			}
		}
	}
	update, replace := plancheck.ResourceActionUpdate, plancheck.ResourceActionDestroyBeforeCreate
	changes := []change{
		{"ctrl_loss_tmo", `ctrl_loss_tmo = 600`, update, every(func(v *nvme.Volume) { v.Config.CtrlLossTmo = 600 })},
		{"reconnect_delay", `reconnect_delay = 2`, update, every(func(v *nvme.Volume) { v.Config.ReconnectDelay = 2 })},
		{"keep_alive_tmo", `keep_alive_tmo = 15`, update, every(func(v *nvme.Volume) { v.Config.KeepAliveTmo = intPtr(15) })},
		{"fast_io_fail_tmo", `fast_io_fail_tmo = 20`, update, every(func(v *nvme.Volume) { v.Config.FastIOFailTmo = intPtr(20) })},
		{"nr_io_queues", `nr_io_queues = 2`, update, every(func(v *nvme.Volume) { v.Config.NrIOQueues = intPtr(2) })},
		{"queue_size", `queue_size = 64`, update, every(func(v *nvme.Volume) { v.Config.QueueSize = intPtr(64) })},
		{"tos", `tos = 8`, update, every(func(v *nvme.Volume) { v.Config.TOS = intPtr(8) })},
		{"hdr_digest", `hdr_digest = true`, update, every(func(v *nvme.Volume) { v.Config.HdrDigest = true })},
		{"data_digest", `data_digest = true`, update, every(func(v *nvme.Volume) { v.Config.DataDigest = true })},
		{"host_traddr", `host_traddr = "192.0.2.1"`, update, every(func(v *nvme.Volume) { v.Target.HostTrAddr = "192.0.2.1" })},
		{"host_iface", `host_iface = "eth0"`, update, every(func(v *nvme.Volume) { v.Target.HostIface = "eth0" })},
		{"namespace added", `namespaces = { data = { nsid = 1 }, logs = { nsid = 2 } }`, update, func(vols map[string]nvme.Volume) {
			v := vols["data"]
			v.Namespace = nvme.NamespaceSelector{NSID: 2}
			vols["logs"] = v
		}},
		{"namespace verified by uuid", `namespaces = { data = { nsid = 1 }, logs = { nsid = 2, uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90" } }`, update,
			func(vols map[string]nvme.Volume) {
				v := vols["logs"]
				v.Namespace.UUID = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"
				vols["logs"] = v
			}},
		{"format_policy of one namespace", `namespaces = { data = { nsid = 1, format_policy = "never" }, logs = { nsid = 2, uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90" } }`, update,
			func(vols map[string]nvme.Volume) {
				v := vols["data"]
				v.FormatPolicy = nvme.FormatNever
				vols["data"] = v
			}},
		{"namespace removed", `namespaces = { logs = { nsid = 2, uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90" } }`, update,
			func(vols map[string]nvme.Volume) { delete(vols, "data") }},
		{"trsvcid", `trsvcid = "4421"`, replace, every(func(v *nvme.Volume) { v.Target.TrSvcID = "4421" })},
		{"traddr", `traddr = "2001:db8::10"`, replace, every(func(v *nvme.Volume) { v.Target.TrAddr = "2001:db8::10" })},
		// The same address spelled otherwise is the same target.
		{"traddr respelled", `traddr = "2001:DB8:0::10"`, update, every(func(v *nvme.Volume) { v.Target.TrAddr = "2001:DB8:0::10" })},
		{"subsystem_nqn", `subsystem_nqn = "nqn.2014-08.org.example:vol2"`, replace,
			every(func(v *nvme.Volume) { v.Target.NQN = "nqn.2014-08.org.example:vol2" })},
	}

	want := one(testVolume(nil))
	steps := []resource.TestStep{{Config: connectionConfig(""), ConfigStateChecks: []statecheck.StateCheck{roundTrip(testResource, maps.Clone(want))}}}
	var lines []string
	for _, c := range changes {
		attr := strings.Fields(c.line)[0]
		lines = slices.DeleteFunc(lines, func(l string) bool { return strings.Fields(l)[0] == attr })
		lines = append(lines, c.line)
		c.adjust(want)
		snapshot := maps.Clone(want)
		steps = append(steps, resource.TestStep{
			Config: connectionConfig("", lines...),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				namedCheck(c.name, plancheck.ExpectResourceAction(testResource, c.action)),
				plancheck.ExpectKnownValue(testResource, at("volume_contexts"), knownvalue.NotNull()),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(testResource, snapshot)},
		})
	}
	resource.ParallelTest(t, resource.TestCase{ProtoV6ProviderFactories: protoV6Providers, Steps: steps})
}

// namedCheck prefixes a plan check's failure with the name of the change
// it checks, so a long walk of steps says which one failed.
func namedCheck(name string, check plancheck.PlanCheck) plancheck.PlanCheck {
	return namedPlanCheck{name: name, check: check}
}

type namedPlanCheck struct {
	name  string
	check plancheck.PlanCheck
}

func (c namedPlanCheck) CheckPlan(ctx context.Context, req plancheck.CheckPlanRequest, resp *plancheck.CheckPlanResponse) {
	c.check.CheckPlan(ctx, req, resp)
	if resp.Error != nil {
		resp.Error = fmt.Errorf("%s: %w", c.name, resp.Error)
	}
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
	resources := connection("inherits") + connection("overrides",
		`subsystem_nqn    = "nqn.2014-08.org.example:vol2"`,
		`ctrl_loss_tmo    = -1`,
		`reconnect_delay  = 3`,
		`fast_io_fail_tmo = -1`,
	)
	const inherits, overrides = "nvme_connection.inherits", "nvme_connection.overrides"
	inherited := func(ctrlLossTmo int) map[string]nvme.Volume {
		return one(testVolume(func(v *nvme.Volume) {
			v.Config = nvme.ConnectionConfig{CtrlLossTmo: ctrlLossTmo, ReconnectDelay: 10, KeepAliveTmo: intPtr(30), FastIOFailTmo: intPtr(60)}
		}))
	}
	overridden := one(testVolume(func(v *nvme.Volume) {
		v.Target.NQN = "nqn.2014-08.org.example:vol2"
		// keep_alive_tmo is not set on the resource: the default still applies.
		v.Config = nvme.ConnectionConfig{CtrlLossTmo: -1, ReconnectDelay: 3, KeepAliveTmo: intPtr(30), FastIOFailTmo: intPtr(-1)}
	}))
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: providerBlock(600) + resources,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectKnownValue(inherits, at("ctrl_loss_tmo"), knownvalue.Int64Exact(600)),
				plancheck.ExpectKnownValue(inherits, at("volume_contexts").AtMapKey("data").AtMapKey("reconnect_delay"), knownvalue.StringExact("10")),
				plancheck.ExpectKnownValue(overrides, at("ctrl_loss_tmo"), knownvalue.Int64Exact(-1)),
				plancheck.ExpectKnownValue(overrides, at("keep_alive_tmo"), knownvalue.Int64Exact(30)),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(inherits, inherited(600)), roundTrip(overrides, overridden)},
		}, {
			// A new fleet policy updates the connections that inherit it, in
			// place, and leaves the ones that set their own alone.
			Config: providerBlock(1200) + resources,
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(inherits, plancheck.ResourceActionUpdate),
				plancheck.ExpectResourceAction(overrides, plancheck.ResourceActionNoop),
				plancheck.ExpectKnownValue(inherits, at("volume_contexts").AtMapKey("data").AtMapKey("ctrl_loss_tmo"), knownvalue.StringExact("1200")),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(inherits, inherited(1200)), roundTrip(overrides, overridden)},
		}},
	})
}
