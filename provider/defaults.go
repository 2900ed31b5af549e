package provider

import (
	"github.com/hashicorp/terraform-plugin-framework/diag"
	"github.com/hashicorp/terraform-plugin-framework/path"
	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// fromDefaultsOrigin is how a diagnostic says a value was inherited.
const fromDefaultsOrigin = "comes from the provider's defaults block"

// validateDefaults checks the provider's defaults block on its own, with
// the plugin's defaults for what it leaves out, so a self-contradicting
// policy is reported where it is written. The block is a fragment of a
// volume context: the core parses it like one, and only the errors about
// the block's own keys are reported; the missing target keys are each
// resource's business.
func validateDefaults(defaults map[string]tftypes.Value) (diag.Diagnostics, error) {
	vc := make(map[string]string, len(defaults))
	pending := make(map[string]bool)
	for _, s := range connectionSettings {
		v, ok := defaults[s.key]
		if !ok {
			continue
		}
		text, state, err := s.text(v)
		if err != nil {
			return nil, err
		}
		switch state {
		case valueKnown:
			vc[s.key] = text
		case valueUnknown:
			pending[s.key] = true
		case valueNull:
		}
	}
	_, err := nvme.ParseVolumeContext(vc)
	if err == nil {
		return nil, nil
	}
	var own nvme.FieldErrors
	for _, fe := range nvme.AsFieldErrors(err) {
		if _, set := vc[fe.Key]; set {
			own = append(own, fe)
		}
	}
	if len(own) == 0 {
		return nil, nil
	}
	r := fieldReporter{
		pathOf:  func(key string) path.Path { return path.Root(attrDefaults).AtName(key) },
		pending: pending,
	}
	return r.report(own), nil
}
