package provider

import "github.com/nvmeof/nvmeof/shared/nvme"

// Resource attributes whose names differ from their volume-context keys:
// in a Terraform configuration "nqn" alone would be ambiguous next to the
// provider's host_nqn, and "uuid" could be read as the resource's own id.
const (
	attrSubsystemNQN   = "subsystem_nqn"
	attrNamespaceUUID  = "namespace_uuid"
	attrNamespaceNGUID = "namespace_nguid"
)

// keyAttributes maps the volume-context keys that are renamed in the
// schema; every other key is its own attribute name.
var keyAttributes = map[string]string{
	nvme.KeyNQN:   attrSubsystemNQN,
	nvme.KeyUUID:  attrNamespaceUUID,
	nvme.KeyNGUID: attrNamespaceNGUID,
	// The host identity is set on the provider, where it reads better
	// with an underscore.
	nvme.KeyHostNQN: "host_nqn",
	nvme.KeyHostID:  "host_id",
}

// attributeForKey returns the nvme_connection attribute that sets a
// volume-context key.
func attributeForKey(key string) string {
	if a, ok := keyAttributes[key]; ok {
		return a
	}
	return key
}

// reconnectKeys are the settings the provider's defaults block can supply.
var reconnectKeys = []string{nvme.KeyCtrlLossTmo, nvme.KeyReconnectDelay, nvme.KeyKeepAliveTmo, nvme.KeyFastIOFailTmo}

// identityKeys say which namespace of which subsystem, reached how: a change
// to any of them is another volume, so the resource is replaced. They also
// make up the resource id.
var identityKeys = []string{nvme.KeyTransport, nvme.KeyTrAddr, nvme.KeyTrSvcID, nvme.KeyNQN, nvme.KeyNSID, nvme.KeyUUID, nvme.KeyNGUID}
