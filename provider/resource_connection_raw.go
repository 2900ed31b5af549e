package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/attr"
	"github.com/hashicorp/terraform-plugin-framework/types"
	"github.com/hashicorp/terraform-plugin-go/tftypes"
)

// The plan is read and written through an explicit table of the model's
// fields rather than the framework's reflection (Plan.Get and Plan.Set):
// reflection walks the struct tags and compiles a regular expression per
// field on every call, which made up a quarter of the provider's time in
// planning provider/bench/plan.sh. TestConnectionModelFields keeps the
// table and the tfsdk tags in step.

// modelField is one attribute of connectionModel: its name in the schema
// and a pointer to the field holding it.
type modelField struct {
	name string
	// ptr is a *types.String, *types.Int64, *types.Bool, *types.Map or
	// *types.List: the kinds of value the schema has.
	ptr any
}

// fields lists every attribute of the model.
func (m *connectionModel) fields() []modelField {
	return []modelField{
		{"id", &m.ID},
		{"transport", &m.Transport},
		{"traddr", &m.TrAddr},
		{"trsvcid", &m.TrSvcID},
		{"subsystem_nqn", &m.SubsystemNQN},
		{"nsid", &m.NSID},
		{"namespace_uuid", &m.NamespaceUUID},
		{"namespace_nguid", &m.NamespaceNGUID},
		{"host_traddr", &m.HostTrAddr},
		{"host_iface", &m.HostIface},
		{"ctrl_loss_tmo", &m.CtrlLossTmo},
		{"reconnect_delay", &m.ReconnectDelay},
		{"keep_alive_tmo", &m.KeepAliveTmo},
		{"fast_io_fail_tmo", &m.FastIOFailTmo},
		{"nr_io_queues", &m.NrIOQueues},
		{"queue_size", &m.QueueSize},
		{"hdr_digest", &m.HdrDigest},
		{"data_digest", &m.DataDigest},
		{"tos", &m.TOS},
		{"volume_context", &m.VolumeContext},
		{"external_id", &m.ExternalID},
		{"fabrics_options", &m.FabricsOptions},
		{"connect_args", &m.ConnectArgs},
	}
}

var (
	stringMapType  = types.MapType{ElemType: types.StringType}
	stringListType = types.ListType{ElemType: types.StringType}
)

// fromTerraform sets every field from an object of the resource's type, as
// Plan.Get would.
func (m *connectionModel) fromTerraform(ctx context.Context, obj tftypes.Value) error {
	var attrs map[string]tftypes.Value
	if err := obj.As(&attrs); err != nil {
		return fmt.Errorf("read %s object: %w", TypeName+"_connection", err)
	}
	for _, f := range m.fields() {
		if err := f.set(ctx, attrs[f.name]); err != nil {
			return fmt.Errorf("read %s: %w", f.name, err)
		}
	}
	return nil
}

// toTerraform renders the model as an object of type t, as Plan.Set would.
func (m *connectionModel) toTerraform(ctx context.Context, t tftypes.Type) (tftypes.Value, error) {
	fields := m.fields()
	attrs := make(map[string]tftypes.Value, len(fields))
	for _, f := range fields {
		v, err := f.value()
		if err != nil {
			return tftypes.Value{}, err
		}
		attrs[f.name], err = v.ToTerraformValue(ctx)
		if err != nil {
			return tftypes.Value{}, fmt.Errorf("render %s: %w", f.name, err)
		}
	}
	if err := tftypes.ValidateValue(t, attrs); err != nil {
		return tftypes.Value{}, fmt.Errorf("render %s object: %w", TypeName+"_connection", err)
	}
	return tftypes.NewValue(t, attrs), nil
}

func (f modelField) value() (attr.Value, error) {
	switch p := f.ptr.(type) {
	case *types.String:
		return *p, nil
	case *types.Int64:
		return *p, nil
	case *types.Bool:
		return *p, nil
	case *types.Map:
		return *p, nil
	case *types.List:
		return *p, nil
	}
	return nil, fmt.Errorf("field %s has unexpected type %T", f.name, f.ptr)
}

func (f modelField) set(ctx context.Context, raw tftypes.Value) error {
	var (
		v   attr.Value
		err error
	)
	switch p := f.ptr.(type) {
	case *types.String:
		if v, err = types.StringType.ValueFromTerraform(ctx, raw); err == nil {
			*p, err = assertValue[types.String](v)
		}
	case *types.Int64:
		if v, err = types.Int64Type.ValueFromTerraform(ctx, raw); err == nil {
			*p, err = assertValue[types.Int64](v)
		}
	case *types.Bool:
		if v, err = types.BoolType.ValueFromTerraform(ctx, raw); err == nil {
			*p, err = assertValue[types.Bool](v)
		}
	case *types.Map:
		if v, err = stringMapType.ValueFromTerraform(ctx, raw); err == nil {
			*p, err = assertValue[types.Map](v)
		}
	case *types.List:
		if v, err = stringListType.ValueFromTerraform(ctx, raw); err == nil {
			*p, err = assertValue[types.List](v)
		}
	default:
		err = fmt.Errorf("field %s has unexpected type %T", f.name, f.ptr)
	}
	return err
}

func assertValue[T attr.Value](v attr.Value) (T, error) {
	t, ok := v.(T)
	if !ok {
		return t, fmt.Errorf("got %T, want %T", v, t)
	}
	return t, nil
}
