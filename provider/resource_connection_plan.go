package provider

import (
	"encoding/json"
	"fmt"

	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// claimPrivateKey holds the subsystem registry's token in a plan's private
// data (see subsystemRegistry).
const claimPrivateKey = "subsystem_claim"

// validateConnection checks what is known of a configuration with the
// core, so that `terraform validate` already refuses a bad value with the
// plugin's message. The provider is not configured during validation: a
// setting the resource leaves to the provider's defaults block is treated
// as not known yet, and every rule involving it waits for the plan.
func validateConnection(config tftypes.Value) diag.Diagnostics {
	var diags diag.Diagnostics
	var attrs map[string]tftypes.Value
	if err := config.As(&attrs); err != nil {
		diags.AddError("Cannot read the configuration", errNotObject("configuration", err).Error())
		return diags
	}
	in, err := readConnection(attrs)
	if err != nil {
		diags.AddError("Cannot read the configuration", err.Error())
		return diags
	}
	for _, s := range connectionSettings {
		if s.inherited && attrs[s.attribute()].IsNull() {
			in.pending[s.key] = true
		}
	}
	_, diags = in.check(nil)
	return diags
}

// planRequest is what terraform hands over to plan one nvme_connection.
type planRequest struct {
	config, prior, proposed tftypes.Value
	priorPrivate            []byte
}

// planResponse is the plan of one nvme_connection.
type planResponse struct {
	planned         tftypes.Value
	requiresReplace path.Paths
	private         []byte
	diags           diag.Diagnostics
}

// planConnection applies the provider's defaults, validates every
// namespace's volume context through the core, computes every output,
// decides replacement and claims the subsystem for this plan. It is
// deterministic: Terraform plans twice and requires the same answer.
func planConnection(data *providerData, req planRequest) planResponse {
	resp := planResponse{planned: req.proposed, private: req.priorPrivate}
	if req.proposed.IsNull() {
		return resp // destroy
	}
	var plan, config map[string]tftypes.Value
	if err := req.proposed.As(&plan); err != nil {
		resp.diags.AddError("Cannot read the plan", errNotObject("plan", err).Error())
		return resp
	}
	if err := req.config.As(&config); err != nil {
		resp.diags.AddError("Cannot read the configuration", errNotObject("configuration", err).Error())
		return resp
	}
	origin, err := resolveSettings(data, plan, config)
	if err == nil {
		err = resolvePortals(plan, config)
	}
	if err != nil {
		resp.diags.AddError("Cannot apply the provider's defaults", err.Error())
		return resp
	}
	in, err := readConnection(plan)
	if err != nil {
		resp.diags.AddError("Cannot read the plan", err.Error())
		return resp
	}
	checked, diags := in.check(origin)
	resp.diags.Append(diags...)
	if resp.diags.HasError() {
		return resp
	}
	if err := setOutputs(plan, in, checked, data.host); err != nil {
		resp.diags.AddError("Cannot compute the outputs", err.Error())
		return resp
	}
	if !req.prior.IsNull() {
		replaced, err := replacedTarget(req.prior, plan)
		if err != nil {
			resp.diags.AddError("Cannot compare the plan with the state", err.Error())
			return resp
		}
		resp.requiresReplace = replaced
	}
	if keys := claimKeys(in, checked); len(keys) > 0 {
		resp.private, diags = claimSubsystem(data.registry, keys, in, req.priorPrivate)
		resp.diags.Append(diags...)
		if resp.diags.HasError() {
			return resp
		}
	}
	if err := tftypes.ValidateValue(req.proposed.Type(), plan); err != nil {
		resp.diags.AddError("Cannot write the plan", err.Error())
		return resp
	}
	resp.planned = tftypes.NewValue(req.proposed.Type(), plan)
	return resp
}

// resolveSettings fills in every computed setting the configuration leaves
// null: the provider's default when it has one, else the plugin's. It
// returns, by key, where an inherited value came from.
func resolveSettings(data *providerData, plan, config map[string]tftypes.Value) (map[string]string, error) {
	origin := make(map[string]string)
	for _, s := range connectionSettings {
		if !s.computed() {
			continue
		}
		name := s.attribute()
		if own := config[name]; !own.IsNull() {
			plan[name] = own
			continue
		}
		if d, ok := data.defaults[s.key]; s.inherited && ok && !d.IsNull() {
			plan[name] = d
			origin[s.key] = fromDefaultsOrigin
			continue
		}
		plan[name] = tftypes.NewValue(s.tfType(), nil)
		if s.fallback != "" {
			v, err := s.value(s.fallback)
			if err != nil {
				return nil, err
			}
			plan[name] = v
		}
	}
	return origin, nil
}

// replacedTarget returns the target attributes whose planned value is
// another target than the state's: another controller, so the resource is
// replaced. An address spelled differently but the same (IPv6 has many
// spellings) is updated in place.
func replacedTarget(state tftypes.Value, plan map[string]tftypes.Value) (path.Paths, error) {
	var before map[string]tftypes.Value
	if err := state.As(&before); err != nil {
		return nil, errNotObject("state", err)
	}
	var replaced path.Paths
	for _, s := range connectionSettings {
		if !s.replaces {
			continue
		}
		name := s.attribute()
		old, oldState, err := s.text(before[name])
		if err != nil {
			return nil, err
		}
		now, nowState, err := s.text(plan[name])
		if err != nil {
			return nil, err
		}
		same := oldState == nowState && oldState != valueUnknown && old == now
		if s.key == nvme.KeyTrAddr && oldState == valueKnown && nowState == valueKnown {
			same = newSubsystemKey(nvme.Target{TrAddr: old}).traddr == newSubsystemKey(nvme.Target{TrAddr: now}).traddr
		}
		if !same {
			replaced = append(replaced, path.Root(name))
		}
	}
	return replaced, nil
}

// claimKeys are the subsystem at every portal of the connection, once all
// of it is known; the subsystem at the first portal while a further one
// waits for apply (the apply's plan claims them all); none while the first
// portal is unknown.
func claimKeys(in connectionInput, checked checkedConnection) []subsystemKey {
	if checked.connection != nil {
		vol := *checked.connection
		keys := make([]subsystemKey, 0, len(vol.MorePortals)+1)
		for _, p := range vol.Portals() {
			keys = append(keys, newSubsystemKey(vol.Target.WithPortal(p)))
		}
		return keys
	}
	if target, known := in.target(); known {
		return []subsystemKey{newSubsystemKey(target)}
	}
	return nil
}

// claimSubsystem claims the connection's subsystem at each of keys for
// this plan and returns the private data to plan with, or refuses the
// resource when another nvme_connection of the plan holds one of them.
func claimSubsystem(registry *subsystemRegistry, keys []subsystemKey, in connectionInput, priorPrivate []byte) ([]byte, diag.Diagnostics) {
	var diags diag.Diagnostics
	if registry == nil {
		return priorPrivate, nil // not configured: nothing to compare with
	}
	private, err := decodePrivate(priorPrivate)
	if err != nil {
		diags.AddError("Cannot read the private state", err.Error())
		return priorPrivate, diags
	}
	var prior string
	// A token this provider wrote; anything else is no token.
	_ = json.Unmarshal(private[claimPrivateKey], &prior)
	var names []string
	if !in.namespacesUnknown {
		names = in.names()
	}
	token, refused := registry.claim(keys, prior, names)
	if refused != nil {
		diags.AddAttributeError(path.Root(attrSubsystemNQN), "Subsystem declared twice", conflictDetail(refused.key, refused.holder, names))
		return priorPrivate, diags
	}
	b, err := json.Marshal(token)
	if err != nil {
		diags.AddError("Cannot record the subsystem claim", fmt.Sprintf("encode the claim token: %v", err))
		return priorPrivate, diags
	}
	private[claimPrivateKey] = b
	out, err := json.Marshal(private)
	if err != nil {
		diags.AddError("Cannot record the subsystem claim", fmt.Sprintf("encode the private state: %v", err))
		return priorPrivate, diags
	}
	return out, diags
}

// decodePrivate reads private state as the framework writes it: a JSON
// object of JSON values, each as bytes.
func decodePrivate(b []byte) (map[string][]byte, error) {
	m := make(map[string][]byte)
	if len(b) == 0 {
		return m, nil
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode private state: %w", err)
	}
	return m, nil
}
