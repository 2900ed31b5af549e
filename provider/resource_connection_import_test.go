package provider

import (
	"fmt"

	"strings"
	"testing"

	"github.com/hashicorp/terraform-plugin-testing/helper/resource"
	"github.com/hashicorp/terraform-plugin-testing/terraform"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

func TestAccConnection_import(t *testing.T) {
	const uuid = "0e3f7c2a-51b4-4d8e-9a6c-2b7d1e4f8a90"
	tuned := connectionConfig(providerWithHost, `ctrl_loss_tmo = 600`, `keep_alive_tmo = 30`, `hdr_digest = true`,
		`namespaces = { data = { nsid = 1 }, logs = { nsid = 2, uuid = "`+uuid+`", format_policy = "never" } }`)
	// Each namespace's whole volume context, as a user copies them from
	// the Nomad volumes: the connection part stays empty.
	fromVolumeContexts := func(s *terraform.State) (string, error) {
		rs, ok := s.RootModule().Resources[testResource]
		if !ok {
			return "", fmt.Errorf("%s not in the state", testResource)
		}
		parts := []string{""}
		for _, name := range []string{"data", "logs"} {
			var pairs []string
			for _, k := range nvme.VolumeContextKeys() {
				if v, ok := rs.Primary.Attributes["volume_contexts."+name+"."+k]; ok {
					pairs = append(pairs, k+"="+v)
				}
			}
			parts = append(parts, name+":"+strings.Join(pairs, ","))
		}
		return strings.Join(parts, ";"), nil
	}
	withID := func(suffix string) resource.ImportStateIdFunc {
		return stateAttr(testResource, "id", func(id string) string { return id + suffix })
	}
	importError := func(id string, want string) resource.TestStep {
		return resource.TestStep{ResourceName: testResource, ImportState: true, ImportStateId: id, ExpectError: looseText(want)}
	}
	base := "traddr=" + testAddr + ",nqn=" + testNQN
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{
			{Config: connectionConfig(providerWithHost)},
			{
				// The id plus the namespaces imports the resource back.
				ResourceName: testResource, ImportState: true, ImportStateVerify: true,
				ImportStateIdFunc: withID(";data:nsid=1"),
			},
			{Config: tuned},
			{
				ResourceName: testResource, ImportState: true, ImportStateVerify: true,
				ImportStateIdFunc: withID(",ctrl_loss_tmo=600,keep_alive_tmo=30,hdr_digest=true;data:nsid=1;logs:nsid=2,uuid=" + uuid + ",format_policy=never"),
			},
			{ResourceName: testResource, ImportState: true, ImportStateVerify: true, ImportStateIdFunc: fromVolumeContexts},
			{
				// camelCase aliases are read as the plugin reads them.
				ResourceName: testResource, ImportState: true, ImportStateVerify: true,
				ImportStateId: base + ",ctrlLossTmo=600,keepAliveTmo=30,hdrDigest=true;data:nsid=1;logs:nsid=2,uuid=" + strings.ToUpper(uuid) + ",formatPolicy=never",
			},
			importError(base+";data:nsid=0", coreMessage(t, baseContext(map[string]string{"nsid": "0"}), nvme.KeyNSID)),
			importError(base+",ctrl_los_tmo=5;data:nsid=1", coreMessage(t, baseContext(map[string]string{"ctrl_los_tmo": "5"}), "ctrl_los_tmo")),
			importError(base, "no namespace given: "+errImportID.Error()),
			importError(base+";data:nsid=1,fast_io_fail_tmo=-1;logs:nsid=2", `namespaces "data" and "logs" disagree on fast_io_fail_tmo -1 -> kernel default`),
			importError(base+";data:nsid=1;logs:nsid=1", `namespaces "data" and "logs" both select nsid 1 of this subsystem`),
			importError(base+";my data:nsid=1", `invalid namespace name "my data": `+namespaceNameRule),
			importError(testNQN, `connection settings: setting 1 is not a key=value pair`),
		},
	})
}

// TestAccConnection_importedPlansClean: an imported connection plans no
// change against the configuration that says the same.
func TestAccConnection_importedPlansClean(t *testing.T) {
	config := connectionConfig("", `namespaces = { data = { nsid = 1 }, logs = { nguid = "3a1c5e7f9b2d4c6e8a0f1b3d5e7f9a2c" } }`)
	resource.ParallelTest(t, resource.TestCase{
		ProtoV6ProviderFactories: protoV6Providers,
		Steps: []resource.TestStep{{
			Config: config, ResourceName: testResource, ImportState: true, ImportStateKind: resource.ImportBlockWithID,
			ImportStateId: "traddr=" + testAddr + ",nqn=" + testNQN + ";data:nsid=1;logs:nguid=3a1c5e7f9b2d4c6e8a0f1b3d5e7f9a2c",
		}},
	})
}
