package provider

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// Computed attributes of nvme_connection.
const (
	attrID             = "id"
	attrVolumeContexts = "volume_contexts"
	attrExternalIDs    = "external_ids"
	attrFabricsOptions = "fabrics_options"
	attrConnectArgs    = "connect_args"
)

var (
	stringMap      = tftypes.Map{ElementType: tftypes.String}
	stringMapMap   = tftypes.Map{ElementType: stringMap}
	stringList     = tftypes.List{ElementType: tftypes.String}
	unknownString  = tftypes.NewValue(tftypes.String, tftypes.UnknownValue)
	unknownContext = tftypes.NewValue(stringMap, tftypes.UnknownValue)
)

// identityKeys make up a connection's id: which subsystem, reached how.
var identityKeys = []string{nvme.KeyTransport, nvme.KeyTrAddr, nvme.KeyTrSvcID, nvme.KeyNQN}

// setOutputs writes the computed attributes into attrs. They depend on
// nothing but the inputs and the host identity, so the plan and the apply
// compute the same values. Whatever waits for an unknown input is unknown;
// the names of the namespaces are known whenever the map is, so for_each
// over volume_contexts works at plan time.
func setOutputs(attrs map[string]tftypes.Value, in connectionInput, c checkedConnection, host *nvme.Host) error {
	attrs[attrID] = unknownString
	attrs[attrFabricsOptions] = unknownString
	attrs[attrConnectArgs] = tftypes.NewValue(stringList, tftypes.UnknownValue)
	if c.connection != nil {
		attrs[attrID] = tftypes.NewValue(tftypes.String, connectionID(c.connection.ToVolumeContext()))
		opts, args, err := renderings(*c.connection, host)
		if err != nil {
			return err
		}
		attrs[attrFabricsOptions], attrs[attrConnectArgs] = opts, args
	}

	if in.namespacesUnknown {
		attrs[attrVolumeContexts] = tftypes.NewValue(stringMapMap, tftypes.UnknownValue)
		attrs[attrExternalIDs] = tftypes.NewValue(stringMap, tftypes.UnknownValue)
		return nil
	}
	contexts := make(map[string]tftypes.Value, len(in.namespaces))
	ids := make(map[string]tftypes.Value, len(in.namespaces))
	for name := range in.namespaces {
		vol, ok := c.volumes[name]
		if !ok {
			contexts[name], ids[name] = unknownContext, unknownString
			continue
		}
		contexts[name] = stringMapValue(vol.ToVolumeContext())
		ids[name] = tftypes.NewValue(tftypes.String, vol.ExternalID())
	}
	attrs[attrVolumeContexts] = tftypes.NewValue(stringMapMap, contexts)
	attrs[attrExternalIDs] = tftypes.NewValue(stringMap, ids)
	return nil
}

// renderings are fabrics_options and connect_args: null when the provider
// has no host identity (the option string always carries it) or traddr is a
// host name (the kernel takes addresses only; the node resolves the name);
// connect_args also when nvme-cli cannot express a setting.
func renderings(vol nvme.Volume, host *nvme.Host) (opts, args tftypes.Value, err error) {
	opts, args = tftypes.NewValue(tftypes.String, nil), tftypes.NewValue(stringList, nil)
	if host == nil || !vol.Target.IsIPAddress() {
		return opts, args, nil
	}
	conn := nvme.Connection{Host: *host, Target: vol.Target, Config: vol.Config}
	s, err := conn.FabricsOptions()
	if err != nil {
		return opts, args, fmt.Errorf("render %s: %w", attrFabricsOptions, err)
	}
	opts = tftypes.NewValue(tftypes.String, s)
	list, err := conn.BuildConnectArgs()
	switch {
	case errors.Is(err, nvme.ErrInvalid):
		// A 0 nvme-cli would drop: valid for the plugin's fabrics
		// connector, so not an error; connect_args stays null as documented.
		return opts, args, nil
	case err != nil:
		return opts, args, fmt.Errorf("render %s: %w", attrConnectArgs, err)
	}
	elems := make([]tftypes.Value, len(list))
	for i, a := range list {
		elems[i] = tftypes.NewValue(tftypes.String, a)
	}
	return opts, tftypes.NewValue(stringList, elems), nil
}

func stringMapValue(m map[string]string) tftypes.Value {
	elems := make(map[string]tftypes.Value, len(m))
	for k, v := range m {
		elems[k] = tftypes.NewValue(tftypes.String, v)
	}
	return tftypes.NewValue(stringMap, elems)
}

// connectionID is the identity part of a volume context as key=value pairs
// joined by commas, the form of the import id's first part.
func connectionID(vc map[string]string) string {
	parts := make([]string, 0, len(identityKeys))
	for _, k := range identityKeys {
		if v, ok := vc[k]; ok {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}
