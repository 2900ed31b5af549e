package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// ModifyPlan applies the provider's defaults, validates the whole volume
// through the core, and computes every output, so that the plan shows the
// volume context Nomad will get. It is deterministic: Terraform plans twice
// and requires the same answer.
func (r *connectionResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	var config, plan connectionModel
	resp.Diagnostics.Append(req.Config.Get(ctx, &config)...)
	resp.Diagnostics.Append(req.Plan.Get(ctx, &plan)...)
	if resp.Diagnostics.HasError() {
		return
	}

	origin := make(map[string]string)
	for _, key := range reconnectKeys {
		value, inherited := r.data.defaults.resolve(key, *config.reconnectField(key))
		*plan.reconnectField(key) = value
		if inherited {
			origin[key] = fromDefaultsOrigin
		}
	}

	vc, pending := plan.volumeContextInput()
	vol, err := nvme.ParseVolumeContext(vc)
	if err != nil {
		reporter := fieldReporter{
			pathOf:  func(key string) path.Path { return path.Root(attributeForKey(key)) },
			pending: pending,
			origin:  origin,
		}
		resp.Diagnostics.Append(reporter.report(err)...)
	}
	if resp.Diagnostics.HasError() {
		return
	}

	if err != nil || len(pending) > 0 {
		// Some input is known only at apply; the outputs are then too.
		plan.setOutputsUnknown()
	} else {
		resp.Diagnostics.Append(plan.setOutputs(ctx, vol, r.data.host)...)
	}
	resp.Diagnostics.Append(resp.Plan.Set(ctx, &plan)...)
}
