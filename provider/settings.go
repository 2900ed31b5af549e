package provider

import (
	"fmt"
	"math/big"
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/resource/schema"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// The settings tables are the one place an attribute of nvme_connection is
// declared: they build the schema, decode the plan into volume-context text
// for the core, encode values back, and say where a value left out of the
// configuration comes from. Adding a volume-context key to the resource is
// one row here; TestSettingsCoverTheCore fails until every key of the core
// has its row.

// valueKind is how a setting is typed in Terraform.
type valueKind int

const (
	kindString valueKind = iota
	kindInt
	kindBool
)

// setting is one attribute that sets one volume-context key.
type setting struct {
	key  string // volume-context key
	attr string // attribute name; the key itself when empty
	kind valueKind

	required bool
	// replaces: another value is another controller (another target), so
	// the resource is replaced rather than updated.
	replaces bool
	// inherited: the provider's defaults block supplies the value when the
	// resource leaves it out.
	inherited bool
	// fallback is the value, in volume-context form, the plugin assumes when
	// the key is absent ("" when it then leaves the kernel's default). A
	// setting with a fallback or an inherited value is computed: the plan
	// shows the value that applies.
	fallback string

	description string
}

func (s setting) attribute() string {
	if s.attr != "" {
		return s.attr
	}
	return s.key
}

// computed tells whether the plan fills the attribute in when the
// configuration leaves it null.
func (s setting) computed() bool { return s.inherited || s.fallback != "" }

// connectionSettings are the controller-level settings: declared once per
// connection, because the kernel keeps one set per controller.
var connectionSettings = []setting{
	{key: nvme.KeyTransport, kind: kindString, replaces: true, fallback: nvme.TransportTCP, description: transportDescription},
	{key: nvme.KeyTrAddr, kind: kindString, required: true, replaces: true,
		description: "Address of the target: an IPv4 or IPv6 address, or a host name the node resolves."},
	{key: nvme.KeyTrSvcID, kind: kindString, replaces: true, fallback: nvme.DefaultTrSvcID,
		description: fmt.Sprintf("Port of the target, in decimal. Defaults to `%s` (always passed explicitly: the kernel's own "+
			"default for tcp is the discovery port 8009).", nvme.DefaultTrSvcID)},
	{key: nvme.KeyNQN, attr: attrSubsystemNQN, kind: kindString, required: true, replaces: true,
		description: fmt.Sprintf("NQN of the subsystem, at most %d bytes (volume-context key `nqn`).", nvme.MaxNQNLength)},
	{key: nvme.KeyHostTrAddr, kind: kindString, description: "Local address the connection leaves from."},
	{key: nvme.KeyHostIface, kind: kindString, description: "Local interface the connection leaves from."},

	{key: nvme.KeyCtrlLossTmo, kind: kindInt, inherited: true, fallback: strconv.Itoa(nvme.DefaultCtrlLossTmo), description: ctrlLossTmoDescription},
	{key: nvme.KeyReconnectDelay, kind: kindInt, inherited: true, fallback: strconv.Itoa(nvme.DefaultReconnectDelay), description: reconnectDelayDescription},
	{key: nvme.KeyKeepAliveTmo, kind: kindInt, inherited: true, description: keepAliveTmoDescription},
	{key: nvme.KeyFastIOFailTmo, kind: kindInt, inherited: true, description: fastIOFailTmoDescription},
	{key: nvme.KeyNrIOQueues, kind: kindInt, description: fmt.Sprintf(
		"Number of I/O queues, 1 to %d (the kernel caps it at the CPU count). Unset leaves the kernel's default.", nvme.MaxNrIOQueues)},
	{key: nvme.KeyQueueSize, kind: kindInt, description: fmt.Sprintf(
		"Queue depth, %d to %d. Unset leaves the kernel's default.", nvme.MinQueueSize, nvme.MaxQueueSize)},
	{key: nvme.KeyTOS, kind: kindInt, description: fmt.Sprintf(
		"IP type of service, 0 to %d. Unset leaves the kernel's default.", nvme.MaxTOS)},
	{key: nvme.KeyHdrDigest, kind: kindBool, fallback: "false", description: "Header digest (CRC32C over PDU headers). Defaults to `false`."},
	{key: nvme.KeyDataDigest, kind: kindBool, fallback: "false", description: "Data digest (CRC32C over PDU data). Defaults to `false`."},
	{key: nvme.KeyIOPolicy, kind: kindString, description: ioPolicyDescription},
}

// namespaceSettings pick one namespace of the subsystem, with the core's
// identity rules: nsid finds it, uuid and nguid prove it is the right one.
var namespaceSettings = []setting{
	{key: nvme.KeyNSID, kind: kindInt, description: fmt.Sprintf(
		"Namespace ID, 1 to %d. At least one of `nsid`, `uuid` and `nguid` is required; with `nsid`, the others verify the "+
			"namespace found, so a renumbered target never hands over another volume.", uint32(nvme.MaxNSID))},
	{key: nvme.KeyUUID, kind: kindString, description: "Namespace UUID, 8-4-4-4-12 hexadecimal digits (rendered in lower case)."},
	{key: nvme.KeyNGUID, kind: kindString, description: "Namespace NGUID, 32 hexadecimal digits, dashes allowed (rendered in lower case without dashes)."},
	{key: nvme.KeyFormatPolicy, kind: kindString, description: formatPolicyDescription},
}

// settingByKey finds a setting of either table by its volume-context key.
var settingByKey = func() map[string]setting {
	m := make(map[string]setting, len(connectionSettings)+len(namespaceSettings))
	for _, s := range connectionSettings {
		m[s.key] = s
	}
	for _, s := range namespaceSettings {
		m[s.key] = s
	}
	return m
}()

// isNamespaceKey tells whether a volume-context key belongs to a namespace
// rather than to the connection.
func isNamespaceKey(key string) bool {
	for _, s := range namespaceSettings {
		if s.key == key {
			return true
		}
	}
	return false
}

// schemaAttribute is the resource schema's attribute for s.
func (s setting) schemaAttribute(notes string) schema.Attribute {
	desc := s.description
	if notes != "" {
		desc += " " + notes
	}
	optional := !s.required
	computed := s.computed()
	switch s.kind {
	case kindInt:
		return schema.Int64Attribute{Required: s.required, Optional: optional, Computed: computed, MarkdownDescription: desc}
	case kindBool:
		return schema.BoolAttribute{Required: s.required, Optional: optional, Computed: computed, MarkdownDescription: desc}
	default:
		return schema.StringAttribute{Required: s.required, Optional: optional, Computed: computed, MarkdownDescription: desc}
	}
}

// tfType is the Terraform type of s's attribute.
func (s setting) tfType() tftypes.Type {
	switch s.kind {
	case kindInt:
		return tftypes.Number
	case kindBool:
		return tftypes.Bool
	default:
		return tftypes.String
	}
}

// valueState says whether a decoded value is there.
type valueState int

const (
	valueKnown valueState = iota
	valueNull
	valueUnknown
)

// text renders a value of s's attribute as the volume context carries it.
// Numbers are written in plain decimal whatever their size or fraction: the
// core then refuses what is not an integer in range with its own message,
// and the kernel, which reads a leading zero as octal, never sees one.
func (s setting) text(v tftypes.Value) (string, valueState, error) {
	if !v.IsKnown() {
		return "", valueUnknown, nil
	}
	if v.IsNull() {
		return "", valueNull, nil
	}
	switch s.kind {
	case kindInt:
		var f big.Float
		if err := v.As(&f); err != nil {
			return "", valueNull, fmt.Errorf("read %s: %w", s.attribute(), err)
		}
		return f.Text('f', -1), valueKnown, nil
	case kindBool:
		var b bool
		if err := v.As(&b); err != nil {
			return "", valueNull, fmt.Errorf("read %s: %w", s.attribute(), err)
		}
		return strconv.FormatBool(b), valueKnown, nil
	default:
		var str string
		if err := v.As(&str); err != nil {
			return "", valueNull, fmt.Errorf("read %s: %w", s.attribute(), err)
		}
		return str, valueKnown, nil
	}
}

// value is the attribute value of volume-context text, which the core has
// already accepted: integers are decimal and booleans true or false.
func (s setting) value(text string) (tftypes.Value, error) {
	switch s.kind {
	case kindInt:
		f, ok := new(big.Float).SetString(text)
		if !ok {
			return tftypes.Value{}, fmt.Errorf("%s: %q is not a number", s.attribute(), text)
		}
		return tftypes.NewValue(tftypes.Number, f), nil
	case kindBool:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return tftypes.Value{}, fmt.Errorf("%s: %q is not a boolean: %w", s.attribute(), text, err)
		}
		return tftypes.NewValue(tftypes.Bool, b), nil
	default:
		return tftypes.NewValue(tftypes.String, text), nil
	}
}

// readSettings decodes the table's attributes from attrs into volume-context
// text: known values into vc, unknown ones into pending; nulls are left out,
// as a user writing the context by hand would leave them out.
func readSettings(table []setting, attrs map[string]tftypes.Value, vc map[string]string, pending map[string]bool) error {
	for _, s := range table {
		text, state, err := s.text(attrs[s.attribute()])
		if err != nil {
			return err
		}
		switch state {
		case valueKnown:
			vc[s.key] = text
		case valueUnknown:
			pending[s.key] = true
		case valueNull:
		}
	}
	return nil
}
