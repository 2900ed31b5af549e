package provider

import (
	"fmt"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// attrSubsystemNQN is the attribute of the volume-context key nqn: in a
// Terraform configuration "nqn" alone would be ambiguous next to the
// provider's host_nqn.
const attrSubsystemNQN = "subsystem_nqn"

// hostKeyAttributes are the provider attributes of the host identity's
// keys, which read better there with an underscore.
var hostKeyAttributes = map[string]string{
	nvme.KeyHostNQN: attrHostNQN,
	nvme.KeyHostID:  attrHostID,
}

// attributeForKey returns the attribute that sets a volume-context key: a
// resource attribute, a namespace's attribute, an element of
// additional_portals, or a provider attribute.
func attributeForKey(key string) string {
	if s, ok := settingByKey[key]; ok {
		return s.attribute()
	}
	if base, n, ok := portalOfKey(key); ok {
		return fmt.Sprintf("%s[%d].%s", attrAdditionalPortals, n-2, base)
	}
	if a, ok := hostKeyAttributes[key]; ok {
		return a
	}
	return key
}
