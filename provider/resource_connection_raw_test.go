package provider

import (
	"context"
	"reflect"
	"testing"

	"github.com/hashicorp/terraform-plugin-framework/tfsdk"
	"github.com/hashicorp/terraform-plugin-framework/types"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// TestConnectionModelFields: the field table names every field of the
// model by its tfsdk tag, so nothing is left out of the plan.
func TestConnectionModelFields(t *testing.T) {
	var m connectionModel
	fields := m.fields()
	byName := make(map[string]any, len(fields))
	for _, f := range fields {
		byName[f.name] = f.ptr
	}
	v := reflect.ValueOf(&m).Elem()
	if len(fields) != v.NumField() || len(byName) != v.NumField() {
		t.Fatalf("the table has %d fields (%d names), the model %d", len(fields), len(byName), v.NumField())
	}
	for i := range v.NumField() {
		tag := v.Type().Field(i).Tag.Get("tfsdk")
		ptr, ok := byName[tag]
		if !ok {
			t.Errorf("field %s (%s) is not in the table", v.Type().Field(i).Name, tag)
			continue
		}
		if reflect.ValueOf(ptr).Pointer() != v.Field(i).Addr().Pointer() {
			t.Errorf("the table's %s points at another field than %s", tag, v.Type().Field(i).Name)
		}
	}
}

// TestConnectionModelTerraform: reading and writing through the table gives
// what the framework's reflection gives, for known, null and unknown values.
func TestConnectionModelTerraform(t *testing.T) {
	ctx := context.Background()
	known := connectionModel{}
	known.setInputs(testVolume(nil))
	if diags := known.setOutputs(testVolume(nil), &nvme.Host{NQN: testHostNQN, ID: testHostID}); diags.HasError() {
		t.Fatal(diags)
	}
	unknown := known
	unknown.NSID = types.Int64Unknown()
	unknown.TrAddr = types.StringUnknown()
	unknown.HdrDigest = types.BoolUnknown()
	unknown.setOutputsUnknown()
	nulls := known
	nulls.setInputs(nvme.Volume{})
	nulls.FabricsOptions = types.StringNull()
	nulls.ConnectArgs = types.ListNull(types.StringType)
	nulls.VolumeContext = types.MapNull(types.StringType)

	for name, m := range map[string]connectionModel{"known": known, "unknown": unknown, "null": nulls} {
		t.Run(name, func(t *testing.T) {
			want := tfsdk.Plan{Schema: connectionSchema()}
			if diags := want.Set(ctx, &m); diags.HasError() {
				t.Fatal(diags)
			}
			got, err := m.toTerraform(ctx, want.Raw.Type())
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(want.Raw) {
				t.Fatalf("toTerraform = %s\nPlan.Set gives %s", got, want.Raw)
			}
			var read, reflected connectionModel
			if err := read.fromTerraform(ctx, want.Raw); err != nil {
				t.Fatal(err)
			}
			if diags := want.Get(ctx, &reflected); diags.HasError() {
				t.Fatal(diags)
			}
			if !reflect.DeepEqual(read, reflected) {
				t.Fatalf("fromTerraform = %+v\nPlan.Get gives %+v", read, reflected)
			}
		})
	}
}
