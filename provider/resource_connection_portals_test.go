package provider

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// portalsLine renders additional_portals from HCL object bodies.
func portalsLine(objects ...string) string {
	items := make([]string, len(objects))
	for i, o := range objects {
		items[i] = "  { " + o + " },"
	}
	return "additional_portals = [\n" + strings.Join(items, "\n") + "\n]"
}

// TestAccConnection_portals: a connection with further portals renders
// them into every namespace's volume context as the plugin reads them;
// adding one updates the resource in place; the first portal still names
// (and replaces) it.
func TestAccConnection_portals(t *testing.T) {
	two := portalsLine(`traddr = "198.51.100.10", host_iface = "eth2"`)
	three := portalsLine(`traddr = "198.51.100.10", host_iface = "eth2"`, `traddr = "2001:db8::3", trsvcid = "4421", host_traddr = "2001:db8::1"`)
	wantTwo := map[string]string{
		"transport": "tcp", "traddr": testAddr, "trsvcid": "4420", "nqn": testNQN, "nsid": "1", "host_iface": "eth1",
		"ctrl_loss_tmo": "-1", "reconnect_delay": "5", "iopolicy": "round-robin",
		"traddr_2": "198.51.100.10", "trsvcid_2": "4420", "host_iface_2": "eth2",
	}
	wantThree := map[string]string{"traddr_3": "2001:db8::3", "trsvcid_3": "4421", "host_traddr_3": "2001:db8::1"}
	for k, v := range wantTwo {
		wantThree[k] = v
	}
	volume := func(more ...nvme.Portal) nvme.Volume {
		return testVolume(func(v *nvme.Volume) {
			v.Target.HostIface = "eth1"
			v.IOPolicy = nvme.IOPolicyRoundRobin
			v.MorePortals = more
		})
	}
	portal2 := nvme.Portal{TrAddr: "198.51.100.10", TrSvcID: "4420", HostIface: "eth2"}
	portal3 := nvme.Portal{TrAddr: "2001:db8::3", TrSvcID: "4421", HostTrAddr: "2001:db8::1"}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: connectionConfig("", `host_iface = "eth1"`, `iopolicy = "round-robin"`, two),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectKnownValue(testResource, at("volume_contexts"),
					knownvalue.MapExact(map[string]knownvalue.Check{"data": exactStrings(wantTwo)})),
				// The portals do not change the namespace's identity.
				plancheck.ExpectKnownValue(testResource, at("external_ids"),
					knownvalue.MapExact(map[string]knownvalue.Check{"data": knownvalue.StringExact(testNQN + "/nsid:1")})),
				plancheck.ExpectKnownValue(testResource, at("id"), knownvalue.StringExact("transport=tcp,traddr="+testAddr+",trsvcid=4420,nqn="+testNQN)),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(testResource, one(volume(portal2)))},
		}, {
			Config: connectionConfig("", `host_iface = "eth1"`, `iopolicy = "round-robin"`, three),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionUpdate),
				plancheck.ExpectKnownValue(testResource, at("volume_contexts"),
					knownvalue.MapExact(map[string]knownvalue.Check{"data": exactStrings(wantThree)})),
			}},
			ConfigStateChecks: []statecheck.StateCheck{roundTrip(testResource, one(volume(portal2, portal3)))},
		}, {
			ResourceName: testResource, ImportState: true, ImportStateVerify: true,
			ImportStateId: "traddr=" + testAddr + ",nqn=" + testNQN + ",host_iface=eth1,iopolicy=round-robin," +
				"traddr_2=198.51.100.10,host_iface_2=eth2,traddr_3=2001:db8::3,trsvcid_3=4421,host_traddr_3=2001:db8::1;data:nsid=1",
		}, {
			Config: connectionConfig("", `traddr = "192.0.2.11"`, `host_iface = "eth1"`, `iopolicy = "round-robin"`, three),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(testResource, plancheck.ResourceActionReplace),
			}},
		}},
	})
}

// portalInvalidCases: every field of every portal is checked with the
// core's rules; the diagnostic carries the core's message for the same
// volume context, names the element's attribute and quotes the element's
// line. invalidCases includes them: `terraform validate` and a plan refuse
// each.
func portalInvalidCases(t *testing.T) []invalidCase {
	t.Helper()
	with := func(kv ...string) map[string]string {
		m := baseContext(map[string]string{"traddr_2": "198.51.100.10"})
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tooMany := make([]string, 0, nvme.MaxPortals)
	for i := range nvme.MaxPortals {
		tooMany = append(tooMany, fmt.Sprintf(`traddr = "198.51.100.%d"`, 10+i))
	}
	return []invalidCase{
		{"portal traddr injection", connectionConfig("", portalsLine(`traddr = "198.51.100.10,ctrl_loss_tmo=0"`)),
			coreError(t, with("traddr_2", "198.51.100.10,ctrl_loss_tmo=0"), "traddr_2"), "additional_portals[0].traddr", `\{ traddr = "198\.51\.100\.10,`},
		{"portal trsvcid newline", connectionConfig("", portalsLine(`traddr = "198.51.100.10"`, `traddr = "198.51.100.11", trsvcid = "4420\nhostnqn=x"`)),
			coreError(t, with("traddr_3", "198.51.100.11", "trsvcid_3", "4420\nhostnqn=x"), "trsvcid_3"), "additional_portals[1].trsvcid", `\{ traddr = "198\.51\.100\.11"`},
		{"portal host_traddr host name", connectionConfig("", portalsLine(`traddr = "198.51.100.10", host_traddr = "client.example"`)),
			coreError(t, with("host_traddr_2", "client.example"), "host_traddr_2"), "additional_portals[0].host_traddr", `\{ traddr = "198\.51\.100\.10", host_traddr`},
		{"portal host_iface with a slash", connectionConfig("", portalsLine(`traddr = "198.51.100.10", host_iface = "eth0/x"`)),
			coreError(t, with("host_iface_2", "eth0/x"), "host_iface_2"), "additional_portals[0].host_iface", `\{ traddr = "198\.51\.100\.10", host_iface`},
		{"portal that is the first again", connectionConfig("", portalsLine(`traddr = "`+testAddr+`"`)),
			coreError(t, with("traddr_2", testAddr), "traddr_2"), "additional_portals[0].traddr", `\{ traddr = "192\.0\.2\.10" \}`},
		{"too many portals", connectionConfig("", portalsLine(tooMany...)),
			looseText(fmt.Sprintf("invalid traddr_9 %q: a volume has at most %d portals", "198.51.100.17", nvme.MaxPortals)), "additional_portals[7].traddr", "additional_portals ="},
		{"iopolicy", connectionConfig("", `iopolicy = "service-time"`),
			coreError(t, baseContext(map[string]string{"iopolicy": "service-time"}), "iopolicy"), "iopolicy", ""},
	}
}

func TestPortalKeys(t *testing.T) {
	tests := []struct {
		key  string
		attr string
		ok   bool
	}{
		{"traddr_2", "additional_portals[0].traddr", true},
		{"host_iface_8", "additional_portals[6].host_iface", true},
		{"trsvcid_9", "additional_portals[7].trsvcid", true},
		{"traddr", "traddr", false},
		{"traddr_02", "traddr_02", false},
		{"nsid_2", "nsid_2", false},
		{"traddr_1", "traddr_1", false},
	}
	for _, tt := range tests {
		if _, _, ok := portalOfKey(tt.key); ok != tt.ok {
			t.Errorf("portalOfKey(%q) ok = %v", tt.key, ok)
		}
		if got := attributeForKey(tt.key); got != tt.attr {
			t.Errorf("attributeForKey(%q) = %q, want %q", tt.key, got, tt.attr)
		}
	}
	if p := connectionPath("traddr_9"); p.String() != attrAdditionalPortals {
		t.Errorf("connectionPath(traddr_9) = %s: a count beyond the maximum points at the list", p)
	}
	if !regexp.MustCompile(`^additional_portals\[1\]$`).MatchString(connectionPath("trsvcid_3").String()) {
		t.Errorf("connectionPath(trsvcid_3) = %s", connectionPath("trsvcid_3"))
	}
}

func TestImportVolumesComparePortals(t *testing.T) {
	base := map[string]string{"traddr": testAddr, "nqn": testNQN}
	_, err := importVolumes(base, []importNamespace{
		{"a", map[string]string{"nsid": "1", "traddr_2": "198.51.100.10"}},
		{"b", map[string]string{"nsid": "2"}},
	})
	if err == nil || !strings.Contains(err.Error(), `namespaces "a" and "b" name different portals`) {
		t.Fatalf("importVolumes = %v", err)
	}
	_, err = importVolumes(base, []importNamespace{
		{"a", map[string]string{"nsid": "1", "iopolicy": "numa"}},
		{"b", map[string]string{"nsid": "2", "iopolicy": "round-robin"}},
	})
	if err == nil || !strings.Contains(err.Error(), "disagree on iopolicy") {
		t.Fatalf("importVolumes = %v", err)
	}
}

// TestAccConnection_portalsUnknownAtPlan: a portal's value known only at
// apply leaves the volume contexts unknown in the plan, and the rules wait
// for it (planned with the default port, this portal would be the first
// one again); the value applied is read back in every form; one that turns
// out to make the portal the first again is refused at apply.
func TestAccConnection_portalsUnknownAtPlan(t *testing.T) {
	config := func(port string) string {
		return `
resource "terraform_data" "port" {
  input = "` + port + `"
}
` + connectionConfig("", portalsLine(`traddr = "`+testAddr+`", trsvcid = terraform_data.port.output`))
	}
	unknownPort := resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
		plancheck.ExpectUnknownValue(testResource, at("volume_contexts").AtMapKey("data")),
		plancheck.ExpectUnknownValue(testResource, at("additional_portals").AtSliceIndex(0).AtMapKey("trsvcid")),
	}}
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config:           config("4421"),
			ConfigPlanChecks: unknownPort,
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(testResource, at("additional_portals").AtSliceIndex(0).AtMapKey("trsvcid"), knownvalue.StringExact("4421")),
				roundTrip(testResource, one(testVolume(func(v *nvme.Volume) {
					v.MorePortals = []nvme.Portal{{TrAddr: testAddr, TrSvcID: "4421"}}
				}))),
			},
		}, {
			// A Nomad volume's whole context as the namespace part, with the
			// plugin's camelCase aliases: the same state.
			ResourceName: testResource, ImportState: true, ImportStateVerify: true,
			ImportStateId: ";data:traddr=" + testAddr + ",nqn=" + testNQN + ",nsid=1,trAddr2=" + testAddr + ",trSvcId2=4421",
		}, {
			Config:           config("4420"),
			ConfigPlanChecks: unknownPort,
			ExpectError:      coreError(t, baseContext(map[string]string{"traddr_2": testAddr, "trsvcid_2": "4420"}), "traddr_2"),
		}},
	})
}
