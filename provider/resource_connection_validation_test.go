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

// TestAccConnection_invalid plans every kind of invalid input and expects
// the core's message for the same volume context, on the attribute that
// sets the offending key.
func TestAccConnection_invalid(t *testing.T) {
	longNQN := "nqn.2014-08.org.example:" + strings.Repeat("x", nvme.MaxNQNLength)
	tests := []struct {
		name   string
		config string
		want   *regexp.Regexp
		// attribute is the path the diagnostic must name.
		attribute string
	}{
		{"transport", connectionConfig("", `transport = "rdma"`), coreError(t, baseContext(map[string]string{"transport": "rdma"}), "transport"), "transport"},
		{"traddr", `
resource "nvme_connection" "test" {
  traddr        = "10.0.0.300"
  subsystem_nqn = "` + testNQN + `"
  nsid          = 1
}`, coreError(t, baseContext(map[string]string{"traddr": "10.0.0.300"}), "traddr"), "traddr"},
		{"trsvcid zero", connectionConfig("", `trsvcid = "0"`), coreError(t, baseContext(map[string]string{"trsvcid": "0"}), "trsvcid"), "trsvcid"},
		{"trsvcid leading zero", connectionConfig("", `trsvcid = "04420"`), coreError(t, baseContext(map[string]string{"trsvcid": "04420"}), "trsvcid"), "trsvcid"},
		{"trsvcid too big", connectionConfig("", `trsvcid = "65536"`), coreError(t, baseContext(map[string]string{"trsvcid": "65536"}), "trsvcid"), "trsvcid"},
		{"subsystem_nqn too long", `
resource "nvme_connection" "test" {
  traddr        = "` + testAddr + `"
  subsystem_nqn = "` + longNQN + `"
  nsid          = 1
}`, coreError(t, baseContext(map[string]string{"nqn": longNQN}), "nqn"), "subsystem_nqn"},
		{"subsystem_nqn with comma", `
resource "nvme_connection" "test" {
  traddr        = "` + testAddr + `"
  subsystem_nqn = "nqn.2014-08.org.example:a,b"
  nsid          = 1
}`, coreError(t, baseContext(map[string]string{"nqn": "nqn.2014-08.org.example:a,b"}), "nqn"), "subsystem_nqn"},
		{"no namespace selector", `
resource "nvme_connection" "test" {
  traddr        = "` + testAddr + `"
  subsystem_nqn = "` + testNQN + `"
}`, coreError(t, map[string]string{"traddr": testAddr, "nqn": testNQN}, "nsid"), "nsid"},
		{"nsid zero", withNSID("0"), coreError(t, baseContext(map[string]string{"nsid": "0"}), "nsid"), "nsid"},
		{"nsid too big", withNSID("4294967295"), coreError(t, baseContext(map[string]string{"nsid": "4294967295"}), "nsid"), "nsid"},
		{"namespace_uuid", connectionConfig("", `namespace_uuid = "not-a-uuid"`), coreError(t, baseContext(map[string]string{"uuid": "not-a-uuid"}), "uuid"), "namespace_uuid"},
		{"namespace_nguid", connectionConfig("", `namespace_nguid = "abc"`), coreError(t, baseContext(map[string]string{"nguid": "abc"}), "nguid"), "namespace_nguid"},
		{"host_traddr host name", connectionConfig("", `host_traddr = "client.example"`), coreError(t, baseContext(map[string]string{"host_traddr": "client.example"}), "host_traddr"), "host_traddr"},
		{"host_iface too long", connectionConfig("", `host_iface = "a-very-long-interface"`), coreError(t, baseContext(map[string]string{"host_iface": "a-very-long-interface"}), "host_iface"), "host_iface"},
		{"ctrl_loss_tmo below -1", connectionConfig("", `ctrl_loss_tmo = -2`), coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "-2"}), "ctrl_loss_tmo"), "ctrl_loss_tmo"},
		{"ctrl_loss_tmo beyond int32", connectionConfig("", `ctrl_loss_tmo = 4294967296`), coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "4294967296"}), "ctrl_loss_tmo"), "ctrl_loss_tmo"},
		{"ctrl_loss_tmo shorter than reconnect_delay", connectionConfig("", `ctrl_loss_tmo = 3`, `reconnect_delay = 10`),
			coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "3", "reconnect_delay": "10"}), "ctrl_loss_tmo"), "ctrl_loss_tmo"},
		{"reconnect_delay zero", connectionConfig("", `reconnect_delay = 0`), coreError(t, baseContext(map[string]string{"reconnect_delay": "0"}), "reconnect_delay"), "reconnect_delay"},
		{"keep_alive_tmo zero", connectionConfig("", `keep_alive_tmo = 0`), coreError(t, baseContext(map[string]string{"keep_alive_tmo": "0"}), "keep_alive_tmo"), "keep_alive_tmo"},
		{"fast_io_fail_tmo below -1", connectionConfig("", `fast_io_fail_tmo = -5`), coreError(t, baseContext(map[string]string{"fast_io_fail_tmo": "-5"}), "fast_io_fail_tmo"), "fast_io_fail_tmo"},
		{"fast_io_fail_tmo longer than ctrl_loss_tmo", connectionConfig("", `ctrl_loss_tmo = 30`, `fast_io_fail_tmo = 60`),
			coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "30", "fast_io_fail_tmo": "60"}), "fast_io_fail_tmo"), "fast_io_fail_tmo"},
		{"nr_io_queues zero", connectionConfig("", `nr_io_queues = 0`), coreError(t, baseContext(map[string]string{"nr_io_queues": "0"}), "nr_io_queues"), "nr_io_queues"},
		{"queue_size too small", connectionConfig("", `queue_size = 8`), coreError(t, baseContext(map[string]string{"queue_size": "8"}), "queue_size"), "queue_size"},
		{"tos too big", connectionConfig("", `tos = 256`), coreError(t, baseContext(map[string]string{"tos": "256"}), "tos"), "tos"},
		{"cross-field with an inherited default", `
provider "nvme" {
  defaults {
    reconnect_delay = 30
  }
}
` + connectionConfig("", `ctrl_loss_tmo = 10`),
			coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "10", "reconnect_delay": "30"}), "ctrl_loss_tmo"), "ctrl_loss_tmo"},
		{"provider defaults out of range", `
provider "nvme" {
  defaults {
    reconnect_delay = 0
  }
}
` + connectionConfig(""), coreError(t, baseContext(map[string]string{"reconnect_delay": "0"}), "reconnect_delay"), "defaults.reconnect_delay"},
		{"provider defaults contradict themselves", `
provider "nvme" {
  defaults {
    ctrl_loss_tmo   = 20
    reconnect_delay = 30
  }
}
` + connectionConfig(""), coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "20", "reconnect_delay": "30"}), "ctrl_loss_tmo"), "defaults.ctrl_loss_tmo"},
		{"provider host_id", `
provider "nvme" {
  host_nqn = "` + testHostNQN + `"
  host_id  = "not-a-uuid"
}
` + connectionConfig(""), looseText(nvme.Host{NQN: testHostNQN, ID: "not-a-uuid"}.Validate().Error()), "host_id"},
		{"provider host_id missing", `
provider "nvme" {
  host_nqn = "` + testHostNQN + `"
}
` + connectionConfig(""), looseText(nvme.Host{NQN: testHostNQN}.Validate().Error()), "host_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resource.Test(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Providers,
				Steps:                    []resource.TestStep{{Config: tt.config, ExpectError: onAttribute(tt.attribute, tt.want)}},
			})
		})
	}
}

// onAttribute matches a diagnostic whose summary names the attribute
// ("Invalid <name>"; for a block attribute, its last name) and whose detail
// holds the expected message, so the editor and the CLI point at the right
// line with the right words.
func onAttribute(attribute string, message *regexp.Regexp) *regexp.Regexp {
	name := attribute[strings.LastIndex(attribute, ".")+1:]
	return regexp.MustCompile(`Error: Invalid ` + regexp.QuoteMeta(name) + `\b[\s\S]*?` + message.String())
}

// withNSID is the minimal test connection with another nsid.
func withNSID(nsid string) string {
	return replaceLine(connectionConfig(""), "nsid          = 1", "nsid          = "+nsid)
}

// replaceLine replaces the one occurrence of old in config.
func replaceLine(config, old, replacement string) string {
	return strings.Replace(config, old, replacement, 1)
}

// TestAccConnection_unknownAtPlan: an input known only at apply makes the
// outputs unknown in the plan instead of wrong, and rules that involve it
// wait for its value.
func TestAccConnection_unknownAtPlan(t *testing.T) {
	config := `
resource "terraform_data" "addr" {
  input = "` + testAddr + `"
}

resource "terraform_data" "delay" {
  input = 10
}

resource "nvme_connection" "test" {
  traddr          = terraform_data.addr.output
  subsystem_nqn   = "` + testNQN + `"
  nsid            = 1
  ctrl_loss_tmo   = 3
  reconnect_delay = terraform_data.delay.output
}
`
	resource.Test(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: config,
			// ctrl_loss_tmo 3 is shorter than reconnect_delay 10: the rule is
			// checked, and fails, once the value is known at apply.
			ExpectError: coreError(t, baseContext(map[string]string{"ctrl_loss_tmo": "3", "reconnect_delay": "10"}), "ctrl_loss_tmo"),
			ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectUnknownValue(testResource, at("volume_context")),
				plancheck.ExpectUnknownValue(testResource, at("id")),
				plancheck.ExpectUnknownValue(testResource, at("external_id")),
			}},
		}, {
			Config: replaceLine(config, "ctrl_loss_tmo   = 3", "ctrl_loss_tmo   = 30"),
			ConfigStateChecks: []statecheck.StateCheck{
				statecheck.ExpectKnownValue(testResource, at("external_id"), knownvalue.StringExact(testNQN+"/nsid:1")),
				roundTrip(testResource, testVolume(func(v *nvme.Volume) { v.Config.CtrlLossTmo, v.Config.ReconnectDelay = 30, 10 })),
			},
		}},
	})
}
