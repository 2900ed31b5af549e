package provider

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// connectionModel is the nvme_connection resource's data.
type connectionModel struct {
	ID             types.String `tfsdk:"id"`
	Transport      types.String `tfsdk:"transport"`
	TrAddr         types.String `tfsdk:"traddr"`
	TrSvcID        types.String `tfsdk:"trsvcid"`
	SubsystemNQN   types.String `tfsdk:"subsystem_nqn"`
	NSID           types.Int64  `tfsdk:"nsid"`
	NamespaceUUID  types.String `tfsdk:"namespace_uuid"`
	NamespaceNGUID types.String `tfsdk:"namespace_nguid"`
	HostTrAddr     types.String `tfsdk:"host_traddr"`
	HostIface      types.String `tfsdk:"host_iface"`
	CtrlLossTmo    types.Int64  `tfsdk:"ctrl_loss_tmo"`
	ReconnectDelay types.Int64  `tfsdk:"reconnect_delay"`
	KeepAliveTmo   types.Int64  `tfsdk:"keep_alive_tmo"`
	FastIOFailTmo  types.Int64  `tfsdk:"fast_io_fail_tmo"`
	NrIOQueues     types.Int64  `tfsdk:"nr_io_queues"`
	QueueSize      types.Int64  `tfsdk:"queue_size"`
	HdrDigest      types.Bool   `tfsdk:"hdr_digest"`
	DataDigest     types.Bool   `tfsdk:"data_digest"`
	TOS            types.Int64  `tfsdk:"tos"`

	VolumeContext  types.Map    `tfsdk:"volume_context"`
	ExternalID     types.String `tfsdk:"external_id"`
	FabricsOptions types.String `tfsdk:"fabrics_options"`
	ConnectArgs    types.List   `tfsdk:"connect_args"`
}

// settings returns every input by its volume-context key.
func (m *connectionModel) settings() map[string]attr.Value {
	return map[string]attr.Value{
		nvme.KeyTransport:      m.Transport,
		nvme.KeyTrAddr:         m.TrAddr,
		nvme.KeyTrSvcID:        m.TrSvcID,
		nvme.KeyNQN:            m.SubsystemNQN,
		nvme.KeyNSID:           m.NSID,
		nvme.KeyUUID:           m.NamespaceUUID,
		nvme.KeyNGUID:          m.NamespaceNGUID,
		nvme.KeyHostTrAddr:     m.HostTrAddr,
		nvme.KeyHostIface:      m.HostIface,
		nvme.KeyCtrlLossTmo:    m.CtrlLossTmo,
		nvme.KeyReconnectDelay: m.ReconnectDelay,
		nvme.KeyKeepAliveTmo:   m.KeepAliveTmo,
		nvme.KeyFastIOFailTmo:  m.FastIOFailTmo,
		nvme.KeyNrIOQueues:     m.NrIOQueues,
		nvme.KeyQueueSize:      m.QueueSize,
		nvme.KeyHdrDigest:      m.HdrDigest,
		nvme.KeyDataDigest:     m.DataDigest,
		nvme.KeyTOS:            m.TOS,
	}
}

// reconnectField points at the model's field for a reconnection key.
func (m *connectionModel) reconnectField(key string) *types.Int64 {
	switch key {
	case nvme.KeyCtrlLossTmo:
		return &m.CtrlLossTmo
	case nvme.KeyReconnectDelay:
		return &m.ReconnectDelay
	case nvme.KeyKeepAliveTmo:
		return &m.KeepAliveTmo
	case nvme.KeyFastIOFailTmo:
		return &m.FastIOFailTmo
	}
	return nil
}

// volumeContextInput renders the inputs as the volume context the plugin
// would receive. Null settings are left out, as a user writing the context
// by hand would; unknown ones are left out and listed in pending.
func (m *connectionModel) volumeContextInput() (ctx map[string]string, pending map[string]bool) {
	ctx = make(map[string]string)
	pending = make(map[string]bool)
	for key, v := range m.settings() {
		if v.IsUnknown() {
			pending[key] = true
			continue
		}
		if s, ok := valueText(v); ok {
			ctx[key] = s
		}
	}
	return ctx, pending
}

// valueText renders a known, non-null value in the form the volume context
// carries it. Integers are written in decimal: the core refuses anything
// else, and the kernel would read a leading zero as octal.
func valueText(v attr.Value) (string, bool) {
	if v.IsNull() || v.IsUnknown() {
		return "", false
	}
	switch t := v.(type) {
	case types.String:
		return t.ValueString(), true
	case types.Int64:
		return strconv.FormatInt(t.ValueInt64(), 10), true
	case types.Bool:
		return strconv.FormatBool(t.ValueBool()), true
	}
	return "", false
}

// setOutputs fills the computed attributes from the validated volume. They
// depend on nothing but the volume and the host identity, so the plan and
// the apply compute the same values.
func (m *connectionModel) setOutputs(vol nvme.Volume, host *nvme.Host) diag.Diagnostics {
	var diags diag.Diagnostics
	vc := vol.ToVolumeContext()
	m.ID = types.StringValue(connectionID(vc))
	m.ExternalID = types.StringValue(vol.ExternalID())
	elems := make(map[string]attr.Value, len(vc))
	for k, v := range vc {
		elems[k] = types.StringValue(v)
	}
	var d diag.Diagnostics
	m.VolumeContext, d = types.MapValue(types.StringType, elems)
	diags.Append(d...)

	m.FabricsOptions = types.StringNull()
	m.ConnectArgs = types.ListNull(types.StringType)
	// The kernel takes literal addresses only; a host name is resolved on
	// the node, so what it would connect to is not known here.
	if host == nil || !vol.Target.IsIPAddress() {
		return diags
	}
	conn := nvme.Connection{Host: *host, Target: vol.Target, Config: vol.Config}
	opts, err := conn.FabricsOptions()
	if err != nil {
		diags.AddError("Cannot render fabrics_options", err.Error())
		return diags
	}
	m.FabricsOptions = types.StringValue(opts)
	args, err := conn.BuildConnectArgs()
	switch {
	case errors.Is(err, nvme.ErrInvalid):
		// A setting nvme-cli cannot express (a 0 it would drop): the
		// volume is valid for the plugin's fabrics connector, so this is
		// not an error, and connect_args stays null as documented.
		return diags
	case err != nil:
		diags.AddError("Cannot render connect_args", err.Error())
		return diags
	}
	list := make([]attr.Value, len(args))
	for i, a := range args {
		list[i] = types.StringValue(a)
	}
	m.ConnectArgs, d = types.ListValue(types.StringType, list)
	diags.Append(d...)
	return diags
}

// setOutputsUnknown marks the computed attributes as known only after
// apply, because an input they depend on is.
func (m *connectionModel) setOutputsUnknown() {
	m.ID = types.StringUnknown()
	m.ExternalID = types.StringUnknown()
	m.VolumeContext = types.MapUnknown(types.StringType)
	m.FabricsOptions = types.StringUnknown()
	m.ConnectArgs = types.ListUnknown(types.StringType)
}

// connectionID is the identity part of a volume context in the import id
// format (key=value pairs joined by commas, in the documented key order):
// importing a resource by its own id gives it back.
func connectionID(vc map[string]string) string {
	parts := make([]string, 0, len(identityKeys))
	for _, k := range nvme.VolumeContextKeys() {
		if v, ok := vc[k]; ok && slices.Contains(identityKeys, k) {
			parts = append(parts, k+"="+v)
		}
	}
	return strings.Join(parts, ",")
}

// setInputs sets every input from a parsed volume, as import does: the
// volume context is all there is to know about a connection.
func (m *connectionModel) setInputs(vol nvme.Volume) {
	str := func(s string) types.String {
		if s == "" {
			return types.StringNull()
		}
		return types.StringValue(s)
	}
	num := func(p *int) types.Int64 {
		if p == nil {
			return types.Int64Null()
		}
		return types.Int64Value(int64(*p))
	}
	t, c, ns := vol.Target, vol.Config, vol.Namespace
	m.Transport = types.StringValue(t.Transport)
	m.TrAddr = types.StringValue(t.TrAddr)
	m.TrSvcID = types.StringValue(t.TrSvcID)
	m.SubsystemNQN = types.StringValue(t.NQN)
	m.NSID = types.Int64Null()
	if ns.NSID != 0 {
		m.NSID = types.Int64Value(int64(ns.NSID))
	}
	m.NamespaceUUID = str(ns.UUID)
	m.NamespaceNGUID = str(ns.NGUID)
	m.HostTrAddr = str(t.HostTrAddr)
	m.HostIface = str(t.HostIface)
	m.CtrlLossTmo = types.Int64Value(int64(c.CtrlLossTmo))
	m.ReconnectDelay = types.Int64Value(int64(c.ReconnectDelay))
	m.KeepAliveTmo = num(c.KeepAliveTmo)
	m.FastIOFailTmo = num(c.FastIOFailTmo)
	m.NrIOQueues = num(c.NrIOQueues)
	m.QueueSize = num(c.QueueSize)
	m.TOS = num(c.TOS)
	m.HdrDigest = types.BoolValue(c.HdrDigest)
	m.DataDigest = types.BoolValue(c.DataDigest)
}

// parseImportID reads the import id format: volume-context key=value pairs
// joined by commas. Values never hold a comma (the core refuses it, because
// the kernel splits its options on it), so the split is unambiguous.
func parseImportID(id string) (map[string]string, error) {
	m := make(map[string]string)
	for _, pair := range strings.Split(id, ",") {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not a key=value pair: %w", pair, errImportID)
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("%s is given twice: %w", k, errImportID)
		}
		m[k] = v
	}
	return m, nil
}

var errImportID = errors.New(`expected volume-context settings as key=value pairs joined by commas, for example "traddr=192.0.2.10,nqn=nqn.2014-08.org.example:vol1,nsid=1"`)
