package provider

import (
	"context"

	"github.com/hashicorp/terraform-plugin-framework/function"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

var _ function.Function = (*volumeContextFunction)(nil)

// volumeContextFunction is provider::nvme::volume_context: the volume
// context without a resource, for configurations that write Nomad volume
// specs directly.
type volumeContextFunction struct{}

// NewVolumeContextFunction returns the volume_context function.
func NewVolumeContextFunction() function.Function { return &volumeContextFunction{} }

func (f *volumeContextFunction) Metadata(_ context.Context, _ function.MetadataRequest, resp *function.MetadataResponse) {
	resp.Name = "volume_context"
}

func (f *volumeContextFunction) Definition(_ context.Context, _ function.DefinitionRequest, resp *function.DefinitionResponse) {
	resp.Definition = function.Definition{
		Summary: "Validate a volume context and render it in canonical form",
		MarkdownDescription: "Parses `settings` exactly as the `nvmeof-csi` plugin parses a Nomad volume's `context` " +
			"and returns the canonical volume context: snake_case keys, the plugin's defaults for `transport`, " +
			"`trsvcid`, `ctrl_loss_tmo` and `reconnect_delay` written out, UUID and NGUID in lower case. An invalid " +
			"setting fails the call with the plugin's own message. The provider's `defaults` block does not apply: " +
			"functions see only their arguments. Needs Terraform 1.8 or later.",
		Parameters: []function.Parameter{
			function.MapParameter{
				Name:        "settings",
				ElementType: types.StringType,
				MarkdownDescription: "Volume-context keys and values, e.g. `{ traddr = \"192.0.2.10\", nqn = \"nqn.2014-08.org.example:vol1\", nsid = 1 }`. " +
					"Numbers and booleans may be written bare; camelCase aliases are accepted; a null value counts as unset; " +
					"keys holding `/` are ignored, as the plugin ignores them.",
			},
		},
		Return: function.MapReturn{ElementType: types.StringType},
	}
}

func (f *volumeContextFunction) Run(ctx context.Context, req function.RunRequest, resp *function.RunResponse) {
	var settings map[string]types.String
	resp.Error = function.ConcatFuncErrors(req.Arguments.Get(ctx, &settings))
	if resp.Error != nil {
		return
	}
	vc := make(map[string]string, len(settings))
	for k, v := range settings {
		if !v.IsNull() {
			vc[k] = v.ValueString()
		}
	}
	vol, err := nvme.ParseVolumeContext(vc)
	if err != nil {
		resp.Error = function.NewArgumentFuncError(0, err.Error())
		return
	}
	resp.Error = function.ConcatFuncErrors(resp.Result.Set(ctx, vol.ToVolumeContext()))
}
