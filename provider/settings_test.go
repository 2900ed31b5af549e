package provider

import (
	"math/big"
	"slices"
	"testing"

	"github.com/hashicorp/terraform-plugin-go/tftypes"

	"github.com/nvmeof/nvmeof/shared/nvme"
)

// TestSettingsCoverTheCore: every volume-context key of the core has one
// row in the settings tables, so a key the core gains fails here until the
// resource has its attribute.
func TestSettingsCoverTheCore(t *testing.T) {
	var keys []string
	for _, s := range slices.Concat(connectionSettings, namespaceSettings) {
		if slices.Contains(keys, s.key) {
			t.Errorf("%s has two rows", s.key)
		}
		keys = append(keys, s.key)
	}
	core := nvme.VolumeContextKeys()
	slices.Sort(keys)
	slices.Sort(core)
	if !slices.Equal(keys, core) {
		t.Fatalf("the tables have the keys %v, the core %v", keys, core)
	}
}

// TestSettingsFallbacks: a setting's fallback is what the plugin assumes
// when the key is absent, so the plan shows the value that applies.
func TestSettingsFallbacks(t *testing.T) {
	vol, err := nvme.ParseVolumeContext(map[string]string{nvme.KeyTrAddr: "192.0.2.1", nvme.KeyNQN: "nqn.2014-08.org.example:x", nvme.KeyNSID: "1"})
	if err != nil {
		t.Fatal(err)
	}
	rendered := vol.ToVolumeContext()
	for _, s := range connectionSettings {
		if s.required {
			continue
		}
		got, present := rendered[s.key]
		switch {
		case s.kind == kindBool:
			// The core leaves a flag that is off out of the context.
			if present || s.fallback != "false" {
				t.Errorf("%s: rendered %q (present %t), fallback %q", s.key, got, present, s.fallback)
			}
		case got != s.fallback:
			t.Errorf("%s: the plugin assumes %q, the table's fallback is %q", s.key, got, s.fallback)
		}
	}
}

func TestSettingText(t *testing.T) {
	str, num, flag := settingByKey[nvme.KeyTrAddr], settingByKey[nvme.KeyCtrlLossTmo], settingByKey[nvme.KeyHdrDigest]
	big1e30, _ := new(big.Float).SetString("1e30")
	tests := []struct {
		name  string
		s     setting
		v     tftypes.Value
		want  string
		state valueState
	}{
		{"string", str, tftypes.NewValue(tftypes.String, "192.0.2.1"), "192.0.2.1", valueKnown},
		{"null", str, tftypes.NewValue(tftypes.String, nil), "", valueNull},
		{"unknown", num, tftypes.NewValue(tftypes.Number, tftypes.UnknownValue), "", valueUnknown},
		{"negative", num, tftypes.NewValue(tftypes.Number, -1), "-1", valueKnown},
		// The core refuses these with its own message; they must reach it
		// as written, not rounded or wrapped.
		{"fraction", num, tftypes.NewValue(tftypes.Number, 1.5), "1.5", valueKnown},
		{"huge", num, tftypes.NewValue(tftypes.Number, big1e30), "1000000000000000000000000000000", valueKnown},
		{"bool", flag, tftypes.NewValue(tftypes.Bool, true), "true", valueKnown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, state, err := tt.s.text(tt.v)
			if err != nil || got != tt.want || state != tt.state {
				t.Fatalf("text = %q, %v, %v; want %q, %v", got, state, err, tt.want, tt.state)
			}
			if state != valueKnown {
				return
			}
			back, err := tt.s.value(got)
			if err != nil {
				t.Fatal(err)
			}
			if again, _, _ := tt.s.text(back); again != got {
				t.Fatalf("value(%q) renders back as %q", got, again)
			}
		})
	}
}
