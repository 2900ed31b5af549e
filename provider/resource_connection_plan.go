package provider

import (
	"context"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-framework/resource"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// ModifyPlan applies the provider's defaults, validates the whole volume
// through the core, and computes every output, so that the plan shows the
// volume context Nomad will get. It is deterministic: Terraform plans twice
// and requires the same answer.
//
// It runs once per resource on every plan, so it reads and writes the raw
// plan (see connectionModel.fields) and decides replacement itself instead
// of through per-attribute plan modifiers.
func (r *connectionResource) ModifyPlan(ctx context.Context, req resource.ModifyPlanRequest, resp *resource.ModifyPlanResponse) {
	if req.Plan.Raw.IsNull() {
		return // destroy
	}
	replaced, err := replacedIdentity(req.State.Raw, req.Plan.Raw)
	if err != nil {
		resp.Diagnostics.AddError("Cannot compare the plan with the state", err.Error())
		return
	}
	resp.RequiresReplace.Append(replaced...)

	var config, plan connectionModel
	if err := config.fromTerraform(ctx, req.Config.Raw); err != nil {
		resp.Diagnostics.AddError("Cannot read the configuration", err.Error())
		return
	}
	if err := plan.fromTerraform(ctx, req.Plan.Raw); err != nil {
		resp.Diagnostics.AddError("Cannot read the plan", err.Error())
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
		resp.Diagnostics.Append(plan.setOutputs(vol, r.data.host)...)
	}
	raw, err := plan.toTerraform(ctx, req.Plan.Raw.Type())
	if err != nil {
		resp.Diagnostics.AddError("Cannot write the plan", err.Error())
		return
	}
	resp.Plan.Raw = raw
}

// replacedIdentity returns the identity attributes (identityKeys) whose
// planned value differs from the state's: another target or namespace is
// another volume. Creating and destroying replace nothing.
func replacedIdentity(state, plan tftypes.Value) (path.Paths, error) {
	if state.IsNull() || plan.IsNull() {
		return nil, nil
	}
	var before, after map[string]tftypes.Value
	if err := state.As(&before); err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	if err := plan.As(&after); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	var replaced path.Paths
	for _, key := range identityKeys {
		name := attributeForKey(key)
		if !after[name].Equal(before[name]) {
			replaced = append(replaced, path.Root(name))
		}
	}
	return replaced, nil
}
