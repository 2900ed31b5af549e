package provider

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// attrAdditionalPortals lists the portals of the subsystem beyond the one
// traddr, trsvcid, host_traddr and host_iface name: one more path each.
// Element i is portal i+2 of the volume context (traddr_2, ...), so every
// check and message is the core's, and each portal is checked on its own.
const attrAdditionalPortals = "additional_portals"

// portalSettings are one element's attributes, by the key of portal 1.
var portalSettings = []setting{
	{key: nvme.KeyTrAddr, kind: kindString, required: true,
		description: "Address of the target on this path: an IPv4 or IPv6 address, or a host name the node resolves."},
	{key: nvme.KeyTrSvcID, kind: kindString, fallback: nvme.DefaultTrSvcID, description: fmt.Sprintf(
		"Port of the target on this path, in decimal. Defaults to `%s` (not to the first portal's).", nvme.DefaultTrSvcID)},
	{key: nvme.KeyHostTrAddr, kind: kindString, description: "Local address this path leaves from."},
	{key: nvme.KeyHostIface, kind: kindString, description: "Local interface this path leaves from."},
}

const additionalPortalsDescription = "Further portals of the subsystem, each one more path to every namespace (native " +
	"NVMe multipath on the node moves I/O between them): element 1 is the volume context's `traddr_2`, `trsvcid_2`, " +
	"`host_traddr_2` and `host_iface_2`, and so on. Each is checked on its own with the plugin's rules; no portal may repeat " +
	"another, the first included. The first portal stays `traddr`, `trsvcid`, `host_traddr` and `host_iface`, which also " +
	"name the connection (`id`, replacement); portals here are updated in place."

// portalsSchema is the additional_portals attribute.
func portalsSchema() schema.Attribute {
	attrs := make(map[string]schema.Attribute, len(portalSettings))
	for _, s := range portalSettings {
		attrs[s.attribute()] = s.schemaAttribute("")
	}
	return schema.ListNestedAttribute{
		Optional:            true,
		NestedObject:        schema.NestedAttributeObject{Attributes: attrs},
		MarkdownDescription: fmt.Sprintf("%s At most %d portals in all.", additionalPortalsDescription, nvme.MaxPortals),
	}
}

// readPortals decodes additional_portals into volume-context text, element
// i as portal i+2. An unknown list leaves the connection pending under the
// attribute's name; an unknown value pends under its key.
func readPortals(attrs map[string]tftypes.Value, vc map[string]string, pending map[string]bool) error {
	raw, ok := attrs[attrAdditionalPortals]
	if !ok || raw.IsNull() {
		return nil
	}
	if !raw.IsKnown() {
		pending[attrAdditionalPortals] = true
		return nil
	}
	var elems []tftypes.Value
	if err := raw.As(&elems); err != nil {
		return fmt.Errorf("read %s: %w", attrAdditionalPortals, err)
	}
	for i, e := range elems {
		n := i + 2
		if !e.IsKnown() {
			pending[nvme.PortalKey(nvme.KeyTrAddr, n)] = true
			continue
		}
		if e.IsNull() {
			// No address at all: the core says traddr_n is required.
			vc[nvme.PortalKey(nvme.KeyTrSvcID, n)] = nvme.DefaultTrSvcID
			continue
		}
		var fields map[string]tftypes.Value
		if err := e.As(&fields); err != nil {
			return fmt.Errorf("read %s[%d]: %w", attrAdditionalPortals, i, err)
		}
		for _, s := range portalSettings {
			text, state, err := s.text(fields[s.attribute()])
			if err != nil {
				return fmt.Errorf("%s[%d]: %w", attrAdditionalPortals, i, err)
			}
			key := nvme.PortalKey(s.key, n)
			switch state {
			case valueKnown:
				vc[key] = text
			case valueUnknown:
				pending[key] = true
			case valueNull:
			}
		}
	}
	return nil
}

// writePortals sets additional_portals from a parsed volume, as a
// configuration naming exactly those portals would plan: null when there
// are none.
func writePortals(vol nvme.Volume, listType tftypes.List, attrs map[string]tftypes.Value) error {
	if len(vol.MorePortals) == 0 {
		attrs[attrAdditionalPortals] = tftypes.NewValue(listType, nil)
		return nil
	}
	objType, ok := listType.ElementType.(tftypes.Object)
	if !ok {
		return fmt.Errorf("%s is not a list of objects in the resource's type", attrAdditionalPortals)
	}
	vc := vol.ToVolumeContext()
	elems := make([]tftypes.Value, 0, len(vol.MorePortals))
	for i := range vol.MorePortals {
		fields := make(map[string]tftypes.Value, len(portalSettings))
		for _, s := range portalSettings {
			text, ok := vc[nvme.PortalKey(s.key, i+2)]
			if !ok {
				fields[s.attribute()] = tftypes.NewValue(s.tfType(), nil)
				continue
			}
			v, err := s.value(text)
			if err != nil {
				return err
			}
			fields[s.attribute()] = v
		}
		elems = append(elems, tftypes.NewValue(objType, fields))
	}
	attrs[attrAdditionalPortals] = tftypes.NewValue(listType, elems)
	return nil
}

// portalOfKey splits a further portal's key ("trsvcid_3") into the key of
// portal 1 and the portal's number; ok is false for every other key.
func portalOfKey(key string) (base string, n int, ok bool) {
	i := strings.LastIndexByte(key, '_')
	if i <= 0 {
		return "", 0, false
	}
	n, err := strconv.Atoi(key[i+1:])
	if err != nil || n < 2 || n > nvme.MaxPortals+1 || nvme.PortalKey(key[:i], n) != key {
		return "", 0, false
	}
	for _, s := range portalSettings {
		if s.key == key[:i] {
			return s.key, n, true
		}
	}
	return "", 0, false
}

// portalNumber is the portal a per-portal key belongs to: 1 for traddr,
// trsvcid, host_traddr and host_iface, n for their "_n" forms.
func portalNumber(key string) (int, bool) {
	if _, n, ok := portalOfKey(key); ok {
		return n, true
	}
	for _, s := range portalSettings {
		if s.key == key {
			return 1, true
		}
	}
	return 0, false
}

// portalPath is where a diagnostic about a further portal's key goes: its
// element of additional_portals, whose line terraform (1.11) can quote (it
// finds no line for an attribute inside one, and would quote the
// resource's first line, or even the top-level attribute of the same
// name); the summary names the attribute. A count beyond the maximum
// points at the list itself.
func portalPath(n int) path.Path {
	if n > nvme.MaxPortals {
		return path.Root(attrAdditionalPortals)
	}
	return path.Root(attrAdditionalPortals).AtListIndex(n - 2)
}

// resolvePortals fills in, in each element of additional_portals the
// configuration leaves a field of null, the plugin's fallback (trsvcid
// 4420), so the plan shows the value that applies, as for the first
// portal. Elements and lists known only at apply are left as they are.
func resolvePortals(plan, config map[string]tftypes.Value) error {
	raw := plan[attrAdditionalPortals]
	if raw.IsNull() || !raw.IsKnown() {
		return nil
	}
	listType, ok := raw.Type().(tftypes.List)
	if !ok {
		return fmt.Errorf("%s is not a list", attrAdditionalPortals)
	}
	var elems, own []tftypes.Value
	if err := raw.As(&elems); err != nil {
		return fmt.Errorf("read %s: %w", attrAdditionalPortals, err)
	}
	if c := config[attrAdditionalPortals]; c.IsKnown() && !c.IsNull() {
		if err := c.As(&own); err != nil {
			return fmt.Errorf("read %s: %w", attrAdditionalPortals, err)
		}
	}
	for i, e := range elems {
		if !e.IsKnown() || e.IsNull() {
			continue
		}
		var fields, ownFields map[string]tftypes.Value
		if err := e.As(&fields); err != nil {
			return fmt.Errorf("read %s[%d]: %w", attrAdditionalPortals, i, err)
		}
		if i < len(own) && own[i].IsKnown() && !own[i].IsNull() {
			if err := own[i].As(&ownFields); err != nil {
				return fmt.Errorf("read %s[%d]: %w", attrAdditionalPortals, i, err)
			}
		}
		for _, s := range portalSettings {
			if s.fallback == "" {
				continue
			}
			name := s.attribute()
			if v, ok := ownFields[name]; ok && !v.IsNull() {
				fields[name] = v
				continue
			}
			v, err := s.value(s.fallback)
			if err != nil {
				return err
			}
			fields[name] = v
		}
		elems[i] = tftypes.NewValue(e.Type(), fields)
	}
	plan[attrAdditionalPortals] = tftypes.NewValue(listType, elems)
	return nil
}
