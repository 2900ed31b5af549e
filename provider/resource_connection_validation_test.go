package provider

import (
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// invalidCase is a configuration the provider must refuse with the core's
// message (want) in a diagnostic on the attribute that sets the offending
// key: its summary names the attribute, and the source line terraform
// quotes holds line.
type invalidCase struct {
	name   string
	config string
	want   *regexp.Regexp
	// attribute is the summary's attribute; line matches the quoted line
	// (by default "<attribute> =").
	attribute string
	line      string
}

// invalidCases are the bad values known in the configuration itself:
// `terraform validate` must refuse them (TestValidateCLI), and so must a
// plan.
func invalidCases(t *testing.T) []invalidCase {
	t.Helper()
	longNQN := "nqn.2014-08.org.example:" + strings.Repeat("x", nvme.MaxNQNLength)
	// A namespace's diagnostics point at its entry of the map.
	ns := func(body string) string { return "namespaces = {\n  data = { " + body + " }\n}" }
	const entry = `data = \{`
	return append([]invalidCase{
		{"transport", connectionConfig("", `transport = "rdma"`), coreError(t, baseContext(map[string]string{"transport": "rdma"}), "transport"), "transport", ""},
		{"traddr", connectionConfig("", `traddr = "10.0.0.300"`), coreError(t, baseContext(map[string]string{"traddr": "10.0.0.300"}), "traddr"), "traddr", ""},
		{"trsvcid zero", connectionConfig("", `trsvcid = "0"`), coreError(t, baseContext(map[string]string{"trsvcid": "0"}), "trsvcid"), "trsvcid", ""},
		{"trsvcid leading zero", connectionConfig("", `trsvcid = "04420"`), coreError(t, baseContext(map[string]string{"trsvcid": "04420"}), "trsvcid"), "trsvcid", ""},
		{"trsvcid too big", connectionConfig("", `trsvcid = "65536"`), coreError(t, baseContext(map[string]string{"trsvcid": "65536"}), "trsvcid"), "trsvcid", ""},
		{"subsystem_nqn too long", connectionConfig("", `subsystem_nqn = "`+longNQN+`"`), coreError(t, baseContext(map[string]string{"nqn": longNQN}), "nqn"), "subsystem_nqn", ""},
		{"subsystem_nqn with comma", connectionConfig("", `subsystem_nqn = "nqn.2014-08.org.example:a,b"`),
			coreError(t, baseContext(map[string]string{"nqn": "nqn.2014-08.org.example:a,b"}), "nqn"), "subsystem_nqn", ""},
		{"host_traddr host name", connectionConfig("", `host_traddr = "client.example"`), coreError(t, baseContext(map[string]string{"host_traddr": "client.example"}), "host_traddr"), "host_traddr", ""},
		{"host_iface too long", connectionConfig("", `host_iface = "a-very-long-interface"`), coreError(t, baseContext(map[string]string{"host_iface": "a-very-long-interface"}), "host_iface"), "host_iface", ""},
		{"ctrl_loss_tmo below -1", connectionConfig("", `ctrl_loss_tmo = -2`), coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "-2"}), "ctrl_loss_tmo"), "ctrl_loss_tmo", ""},
		{"ctrl_loss_tmo beyond int32", connectionConfig("", `ctrl_loss_tmo = 4294967296`), coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "4294967296"}), "ctrl_loss_tmo"), "ctrl_loss_tmo", ""},
		{"ctrl_loss_tmo shorter than reconnect_delay", connectionConfig("", `ctrl_loss_tmo = 3`, `reconnect_delay = 10`),
			coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "3", "reconnect_delay": "10"}), "ctrl_loss_tmo"), "ctrl_loss_tmo", ""},
		{"reconnect_delay zero", connectionConfig("", `reconnect_delay = 0`), coreError(t, baseContext(map[string]string{"reconnect_delay": "0"}), "reconnect_delay"), "reconnect_delay", ""},
		{"keep_alive_tmo zero", connectionConfig("", `keep_alive_tmo = 0`), coreError(t, baseContext(map[string]string{"keep_alive_tmo": "0"}), "keep_alive_tmo"), "keep_alive_tmo", ""},
		{"fast_io_fail_tmo below -1", connectionConfig("", `fast_io_fail_tmo = -5`), coreError(t, baseContext(map[string]string{"fast_io_fail_tmo": "-5"}), "fast_io_fail_tmo"), "fast_io_fail_tmo", ""},
		{"fast_io_fail_tmo longer than ctrl_loss_tmo", connectionConfig("", `ctrl_loss_tmo = 30`, `fast_io_fail_tmo = 60`),
			coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "30", "fast_io_fail_tmo": "60"}), "fast_io_fail_tmo"), "fast_io_fail_tmo", ""},
		{"nr_io_queues zero", connectionConfig("", `nr_io_queues = 0`), coreError(t, baseContext(map[string]string{"nr_io_queues": "0"}), "nr_io_queues"), "nr_io_queues", ""},
		{"queue_size too small", connectionConfig("", `queue_size = 8`), coreError(t, baseContext(map[string]string{"queue_size": "8"}), "queue_size"), "queue_size", ""},
		{"tos too big", connectionConfig("", `tos = 256`), coreError(t, baseContext(map[string]string{"tos": "256"}), "tos"), "tos", ""},
		{"no namespace selector", connectionConfig("", ns("")),
			coreError(t, map[string]string{"traddr": testAddr, "nqn": testNQN}, "nsid"), "nsid", `data = \{`},
		{"nsid zero", connectionConfig("", ns("nsid = 0")), coreError(t, baseContext(map[string]string{"nsid": "0"}), "nsid"), "nsid", entry},
		{"nsid too big", connectionConfig("", ns("nsid = 4294967295")), coreError(t, baseContext(map[string]string{"nsid": "4294967295"}), "nsid"), "nsid", entry},
		{"uuid", connectionConfig("", ns(`nsid = 1, uuid = "not-a-uuid"`)), coreError(t, baseContext(map[string]string{"uuid": "not-a-uuid"}), "uuid"), "uuid", entry},
		{"format_policy", connectionConfig("", ns(`nsid = 1, format_policy = "always"`)),
			coreError(t, baseContext(map[string]string{"format_policy": "always"}), "format_policy"), "format_policy", entry},
		{"nguid", connectionConfig("", ns(`nguid = "abc"`)), coreError(t, baseContext(map[string]string{"nguid": "abc"}), "nguid"), "nguid", entry},
		{"namespace name", connectionConfig("", `namespaces = { "my data" = { nsid = 1 } }`),
			looseText(`invalid namespace name "my data": ` + namespaceNameRule), "Invalid namespace name", `namespaces =`},
		{"namespace selected twice", connectionConfig("", "namespaces = {\n  a = { nsid = 1 }\n  b = { nsid = 1, uuid = \"0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90\" }\n}"),
			looseText(`namespaces "a" and "b" both select nsid 1 of this subsystem`), "Namespace declared twice", `b = \{`},
		{"no namespaces", connectionConfig("", `namespaces = {}`), looseText("a connection declares at least one namespace of its subsystem"), "No namespaces", `namespaces =`},
		{"provider defaults out of range", `
provider "nvme" {
  defaults {
    reconnect_delay = 0
  }
}
` + connection("test"), coreError(t, baseContext(map[string]string{"reconnect_delay": "0"}), "reconnect_delay"), "reconnect_delay", ""},
		{"provider defaults contradict themselves", `
provider "nvme" {
  defaults {
    ctrl_loss_tmo   = 20
    reconnect_delay = 30
  }
}
` + connection("test"), coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "20", "reconnect_delay": "30"}), "ctrl_loss_tmo"), "ctrl_loss_tmo", ""},
		{"provider host_id", `
provider "nvme" {
  host_nqn = "` + testHostNQN + `"
  host_id  = "not-a-uuid"
}
` + connection("test"), looseText(nvme.Host{NQN: testHostNQN, ID: "not-a-uuid"}.Validate().Error()), "host_id", ""},
	}, portalInvalidCases(t)...)
}

// TestAccConnection_invalid plans every kind of invalid input and expects
// the core's message for the same volume context, on the attribute that
// sets the offending key.
func TestAccConnection_invalid(t *testing.T) {
	cases := append(invalidCases(t),
		// Known only once the provider is configured: refused by the plan.
		invalidCase{"cross-field with an inherited default", `
provider "nvme" {
  defaults {
    reconnect_delay = 30
  }
}
` + connection("test", `ctrl_loss_tmo = 10`),
			coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "10", "reconnect_delay": "30"}), "ctrl_loss_tmo"), "ctrl_loss_tmo", ""},
		invalidCase{"provider host_id missing", `
provider "nvme" {
  host_nqn = "` + testHostNQN + `"
}
` + connection("test"), looseText(nvme.Host{NQN: testHostNQN}.Validate().Error()), "host_id", `provider "nvme"`},
	)
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Providers,
				Steps:                    []resource.TestStep{{Config: tt.config, ExpectError: tt.diagnostic()}},
			})
		})
	}
}

// diagnostic matches terraform's rendering of the expected diagnostic:
//
//	Error: Invalid ctrl_loss_tmo
//	  with nvme_connection.test,
//	  on terraform_plugin_test.tf line 5, in resource "nvme_connection" "test":
//	   5:   ctrl_loss_tmo = -2
//	invalid ctrl_loss_tmo "-2": must be ...
//
// so the editor and the CLI point at the right line with the right words.
func (c invalidCase) diagnostic() *regexp.Regexp {
	return regexp.MustCompile(`Error: ` + regexp.QuoteMeta(c.summary()) + `\b[\s\S]*?\d+:[^\n]*` + c.lineRegexp().String() + `[\s\S]*?` + c.want.String())
}

// summary is the diagnostic's summary.
func (c invalidCase) summary() string {
	if strings.Contains(c.attribute, " ") {
		return c.attribute
	}
	return "Invalid " + c.attribute
}

// lineRegexp matches the source line the diagnostic points at.
func (c invalidCase) lineRegexp() *regexp.Regexp {
	if c.line != "" {
		return regexp.MustCompile(c.line)
	}
	return regexp.MustCompile(`\b` + regexp.QuoteMeta(c.attribute) + `\s*=`)
}

// TestAccConnection_unknownAtPlan: an input known only at apply makes the
// outputs that depend on it unknown in the plan instead of wrong, keeps the
// namespace names known (for_each over volume_contexts works), and rules
// that involve it wait for its value.
func TestAccConnection_unknownAtPlan(t *testing.T) {
	config := `
resource "terraform_data" "addr" {
  input = "` + testAddr + `"
}

resource "terraform_data" "delay" {
  input = 10
}

` + connection("test",
		`traddr = terraform_data.addr.output`,
		`ctrl_loss_tmo = 3`,
		`reconnect_delay = terraform_data.delay.output`,
		`namespaces = { data = { nsid = 1 }, logs = { nsid = 2 } }`,
	) + `
output "names" {
  value = keys(nvme_connection.test.volume_contexts)
}
`
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: config,
			// ctrl_loss_tmo 3 is shorter than reconnect_delay 10: the rule is
			// checked, and fails, once the value is known at apply.
			ExpectError: coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "3", "reconnect_delay": "10"}), "ctrl_loss_tmo"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectUnknownValue(testResource, at("volume_contexts").AtMapKey("data")),
				plancheck.ExpectUnknownValue(testResource, at("volume_contexts").AtMapKey("logs")),
				plancheck.ExpectUnknownValue(testResource, at("external_ids").AtMapKey("data")),
				plancheck.ExpectUnknownValue(testResource, at("id")),
				// The names are known, so for_each over volume_contexts works.
				plancheck.ExpectKnownOutputValue("names", knownvalue.ListExact([]knownvalue.Check{
					knownvalue.StringExact("data"), knownvalue.StringExact("logs"),
				})),
			}},
		}, {
			Config: strings.Replace(config, "ctrl_loss_tmo = 3", "ctrl_loss_tmo = 30", 1),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(testResource, at("external_ids"), knownvalue.MapExact(map[string]knownvalue.Check{
					"data": knownvalue.StringExact(testNQN + "/nsid:1"), "logs": knownvalue.StringExact(testNQN + "/nsid:2"),
				})),
				roundTrip(testResource, map[string]nvme.Volume{
					"data": testVolume(func(v *nvme.Volume) { v.Config.CtrlLossTmo, v.Config.ReconnectDelay = 30, 10 }),
					"logs": testVolume(func(v *nvme.Volume) {
						v.Config.CtrlLossTmo, v.Config.ReconnectDelay = 30, 10
						v.Namespace.NSID = 2
					}),
				}),
			},
		}},
	})
}
