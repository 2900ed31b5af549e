package provider

import (
	"fmt"
	"regexp"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/knownvalue"
	"github.com/hashicorp/terraform-plugin-testing/plancheck"
	"github.com/hashicorp/terraform-plugin-testing/statecheck"
	"github.com/hashicorp/terraform-plugin-testing/terraform"
)

// declaredTwice matches the plan error for two connections to one
// subsystem: terraform names the address of the one planned second, the
// message names the other by its namespaces, and says to merge them.
// Which of the two is planned second is terraform's choice, so both orders
// match. Each pair is an address and the namespaces phrase of it.
func declaredTwice(subsystem string, a, b [2]string) *regexp.Regexp {
	order := func(second, first [2]string) string {
		return `Error: Subsystem declared twice[\s\S]*?with ` + regexp.QuoteMeta(second[0]) + `,[\s\S]*?` +
			`Another[\s│]+nvme_connection[\s│]+of[\s│]+this[\s│]+configuration,[\s│]+the[\s│]+one[\s│]+with[\s│]+` +
			looseText(first[1]).String() + `,[\s│]+connects[\s│]+to[\s│]+the[\s│]+same[\s│]+` + looseText(subsystem).String() +
			`[\s│]+as[\s│]+this[\s│]+one[\s│]+\(with[\s│]+` + looseText(second[1]).String() + `\)[\s\S]*?` +
			looseText("Merge them into one nvme_connection that lists all their namespaces in its namespaces map.").String()
	}
	return regexp.MustCompile(`(?:` + order(a, b) + `)|(?:` + order(b, a) + `)`)
}

const testSubsystem = "subsystem " + testNQN + " at tcp " + testAddr + " port 4420"

func TestAccConnection_subsystemDeclaredTwice(t *testing.T) {
	tests := []struct {
		name   string
		config string
		want   *regexp.Regexp
	}{{
		// The shape of the first examples/terraform: a setting that differs
		// between two volumes of one subsystem.
		name: "two resources with different settings",
		config: connection("postgres", `fast_io_fail_tmo = -1`, `namespaces = { postgres = { nsid = 1 } }`) +
			connection("uploads", `fast_io_fail_tmo = 30`, `namespaces = { uploads = { nsid = 2 } }`),
		want: declaredTwice(testSubsystem,
			[2]string{"nvme_connection.postgres", `namespaces "postgres"`}, [2]string{"nvme_connection.uploads", `namespaces "uploads"`}),
	}, {
		name:   "two resources that agree",
		config: connection("a", `namespaces = { a = { nsid = 1 } }`) + connection("b", `namespaces = { b = { nsid = 2 } }`),
		want:   declaredTwice(testSubsystem, [2]string{"nvme_connection.a", `namespaces "a"`}, [2]string{"nvme_connection.b", `namespaces "b"`}),
	}, {
		name:   "instances of one resource",
		config: connection("fleet", `count = 2`, `namespaces = { "vol${count.index}" = { nsid = count.index + 1 } }`),
		want: declaredTwice(testSubsystem,
			[2]string{"nvme_connection.fleet[0]", `namespaces "vol0"`}, [2]string{"nvme_connection.fleet[1]", `namespaces "vol1"`}),
	}, {
		name: "one address spelled two ways",
		config: connection("a", `traddr = "2001:db8::10"`, `namespaces = { a = { nsid = 1 } }`) +
			connection("b", `traddr = "2001:DB8:0:0::10"`, `namespaces = { b = { nsid = 2 } }`),
		want: declaredTwice("subsystem "+testNQN+" at tcp 2001:db8::10 port 4420",
			[2]string{"nvme_connection.a", `namespaces "a"`}, [2]string{"nvme_connection.b", `namespaces "b"`}),
	}, {
		name: "an IPv4 address and its IPv6-mapped form",
		config: connection("a", `namespaces = { a = { nsid = 1 } }`) +
			connection("b", `traddr = "::ffff:`+testAddr+`"`, `namespaces = { b = { nsid = 2 } }`),
		want: declaredTwice(testSubsystem, [2]string{"nvme_connection.a", `namespaces "a"`}, [2]string{"nvme_connection.b", `namespaces "b"`}),
	}, {
		name: "a host name in other capitals",
		config: connection("a", `traddr = "storage-1.example"`, `namespaces = { a = { nsid = 1 } }`) +
			connection("b", `traddr = "Storage-1.Example."`, `namespaces = { b = { nsid = 2 } }`),
		want: declaredTwice("subsystem "+testNQN+" at tcp storage-1.example port 4420",
			[2]string{"nvme_connection.a", `namespaces "a"`}, [2]string{"nvme_connection.b", `namespaces "b"`}),
	}, {
		// One connection's second path is another's first: the same
		// controller, declared twice with settings that could disagree.
		name: "a further portal of one is the first of another",
		config: connection("a", `namespaces = { a = { nsid = 1 } }`, portalsLine(`traddr = "198.51.100.10", host_iface = "eth2"`)) +
			connection("b", `traddr = "198.51.100.10"`, `namespaces = { b = { nsid = 2 } }`),
		want: declaredTwice("subsystem "+testNQN+" at tcp 198.51.100.10 port 4420",
			[2]string{"nvme_connection.a", `namespaces "a"`}, [2]string{"nvme_connection.b", `namespaces "b"`}),
	}, {
		name: "two connections sharing a further portal",
		config: connection("a", `namespaces = { a = { nsid = 1 } }`, portalsLine(`traddr = "2001:db8::20"`)) +
			connection("b", `traddr = "192.0.2.11"`, `namespaces = { b = { nsid = 2 } }`, portalsLine(`traddr = "2001:DB8::20", trsvcid = "4420"`)),
		want: declaredTwice("subsystem "+testNQN+" at tcp 2001:db8::20 port 4420",
			[2]string{"nvme_connection.a", `namespaces "a"`}, [2]string{"nvme_connection.b", `namespaces "b"`}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resource.ParallelTest(t, resource.TestCase{
				ProtoV6ProviderFactories: protoV6Providers,
				Steps:                    []resource.TestStep{{Config: tt.config, ExpectError: tt.want}},
			})
		})
	}
}

// TestAccConnection_subsystemsThatDiffer: the same NQN on another port or
// address, or another NQN at the same portal, is another subsystem (or
// another controller of it): no error. So is a connection whose further
// portals are all its own.
func TestAccConnection_subsystemsThatDiffer(t *testing.T) {
	config := connection("a", portalsLine(`traddr = "198.51.100.10"`)) +
		// The same port of the second address, left from another interface,
		// would be another controller of a's; another port is not.
		connection("other_second_port", `traddr = "192.0.2.12"`, portalsLine(`traddr = "198.51.100.10", trsvcid = "4421"`)) +
		connection("other_port", `trsvcid = "4421"`) +
		connection("other_addr", `traddr = "192.0.2.11"`) +
		connection("other_nqn", `subsystem_nqn = "nqn.2014-08.org.example:vol2"`)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps:                    []resource.TestStep{{Config: config}},
	})
}

// TestAccConnection_subsystemClaimNoMisfire walks two connections through
// everything that plans a resource again, more than once in one walk, or
// not at all: none of it may see a connection as its own duplicate.
func TestAccConnection_subsystemClaimNoMisfire(t *testing.T) {
	const a, b = "nvme_connection.a", "nvme_connection.b"
	pair := func(aLines, bLines []string) string {
		return connection("a", append([]string{`namespaces = { a = { nsid = 1 } }`}, aLines...)...) +
			connection("b", append([]string{`subsystem_nqn = "nqn.2014-08.org.example:vol2"`, `namespaces = { b = { nsid = 2 } }`}, bLines...)...)
	}
	base := pair(nil, nil)
	// The import id of a, as the acceptance framework builds it from the
	// state: the id attribute, then the namespaces.
	importA := func(s string) string { return s + ";a:nsid=1" }
	cbd := "lifecycle {\n  create_before_destroy = true\n}"
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{
			{Config: base},
			// A plan of the unchanged configuration (the framework also
			// re-plans after every apply).
			{Config: base, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(a, plancheck.ResourceActionNoop), plancheck.ExpectResourceAction(b, plancheck.ResourceActionNoop),
			}}},
			{RefreshState: true},
			{
				ResourceName: a, ImportState: true, ImportStateVerify: true,
				ImportStateIdFunc: stateAttr(a, "id", importA),
			},
			{
				// An import block: imported, read and planned in one walk,
				// beside the other connection.
				Config: base, ResourceName: a, ImportState: true, ImportStateKind: resource.ImportBlockWithID,
				ImportStateIdFunc: stateAttr(a, "id", importA),
			},
			// Tainted: planned once, as a create over the tainted object.
			{Config: base, Taint: []string{a}, ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(a, plancheck.ResourceActionDestroyBeforeCreate),
			}}},
			// Another port replaces: planned twice in one walk, the second
			// time with a null prior state.
			{Config: pair([]string{`trsvcid = "4421"`}, nil), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(a, plancheck.ResourceActionDestroyBeforeCreate),
			}}},
			// The same with create_before_destroy.
			{Config: pair([]string{`trsvcid = "4422"`, cbd}, nil), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(a, plancheck.ResourceActionCreateBeforeDestroy),
			}}},
			// The two swap subsystems in one plan: the claims are made on
			// the planned values.
			{Config: connection("a", `subsystem_nqn = "nqn.2014-08.org.example:vol2"`, `namespaces = { a = { nsid = 1 } }`) +
				connection("b", `namespaces = { b = { nsid = 2 } }`), ConfigPlanChecks: resource.ConfigPlanChecks{PreApply: []plancheck.PlanCheck{
				plancheck.ExpectResourceAction(a, plancheck.ResourceActionDestroyBeforeCreate),
				plancheck.ExpectResourceAction(b, plancheck.ResourceActionDestroyBeforeCreate),
			}}},
			// One goes, a new one takes its subsystem: the one destroyed
			// claims nothing.
			{Config: connection("b", `namespaces = { b = { nsid = 2 } }`) +
				connection("c", `subsystem_nqn = "nqn.2014-08.org.example:vol2"`, `namespaces = { a = { nsid = 1 } }`),
				ConfigStateChecks: []statecheck.StateCheck{
					statecheck.ExpectKnownValue("nvme_connection.c", at("external_ids"), knownvalue.MapExact(map[string]knownvalue.Check{
						"a": knownvalue.StringExact("nqn.2014-08.org.example:vol2/nsid:1"),
					})),
				}},
		},
	})
}

// stateAttr returns an ImportStateIdFunc reading an attribute of a resource
// in the state, through f.
func stateAttr(address, name string, f func(string) string) resource.ImportStateIdFunc {
	return func(s *terraform.State) (string, error) {
		rs, ok := s.RootModule().Resources[address]
		if !ok {
			return "", fmt.Errorf("%s is not in the state", address)
		}
		return f(rs.Primary.Attributes[name]), nil
	}
}
