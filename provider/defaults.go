package provider

import (
	"strconv"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// reconnectDefaults is the provider's defaults block: the fleet's
// reconnection policy.
type reconnectDefaults struct {
	CtrlLossTmo    types.Int64 `tfsdk:"ctrl_loss_tmo"`
	ReconnectDelay types.Int64 `tfsdk:"reconnect_delay"`
	KeepAliveTmo   types.Int64 `tfsdk:"keep_alive_tmo"`
	FastIOFailTmo  types.Int64 `tfsdk:"fast_io_fail_tmo"`
}

// byKey returns the block's values by volume-context key.
func (d reconnectDefaults) byKey() map[string]types.Int64 {
	return map[string]types.Int64{
		nvme.KeyCtrlLossTmo:    d.CtrlLossTmo,
		nvme.KeyReconnectDelay: d.ReconnectDelay,
		nvme.KeyKeepAliveTmo:   d.KeepAliveTmo,
		nvme.KeyFastIOFailTmo:  d.FastIOFailTmo,
	}
}

// coreDefaults are the values the plugin assumes when a volume context
// leaves a setting out; null means the kernel's own default.
var coreDefaults = map[string]types.Int64{
	nvme.KeyCtrlLossTmo:    types.Int64Value(nvme.DefaultCtrlLossTmo),
	nvme.KeyReconnectDelay: types.Int64Value(nvme.DefaultReconnectDelay),
	nvme.KeyKeepAliveTmo:   types.Int64Null(),
	nvme.KeyFastIOFailTmo:  types.Int64Null(),
}

// fromDefaultsOrigin is how a diagnostic says a value was inherited.
const fromDefaultsOrigin = "comes from the provider's defaults block"

// resolve returns the value a resource gets for key: its own when it sets
// one, else the provider's default, else the plugin's. inherited tells
// whether the provider's default was taken.
func (d reconnectDefaults) resolve(key string, own types.Int64) (value types.Int64, inherited bool) {
	if !own.IsNull() {
		return own, false
	}
	if v := d.byKey()[key]; !v.IsNull() {
		return v, true
	}
	return coreDefaults[key], false
}

// validate checks the block on its own, with the plugin's defaults for
// what it leaves out, so a self-contradicting policy is reported where it is
// written. The block is a fragment of a volume context: the core parses it
// like one, and only the errors about the block's own keys are reported;
// the missing target keys are each resource's business.
func (d reconnectDefaults) validate() diag.Diagnostics {
	m := make(map[string]string, len(reconnectKeys))
	pending := make(map[string]bool)
	for key, v := range d.byKey() {
		switch {
		case v.IsUnknown():
			pending[key] = true
		case !v.IsNull():
			m[key] = strconv.FormatInt(v.ValueInt64(), 10)
		}
	}
	_, err := nvme.ParseVolumeContext(m)
	if err == nil {
		return nil
	}
	var own nvme.FieldErrors
	for _, fe := range nvme.AsFieldErrors(err) {
		if _, set := m[fe.Key]; set {
			own = append(own, fe)
		}
	}
	if len(own) == 0 {
		return nil
	}
	r := fieldReporter{
		pathOf:  func(key string) path.Path { return path.Root("defaults").AtName(key) },
		pending: pending,
	}
	return r.report(own)
}
