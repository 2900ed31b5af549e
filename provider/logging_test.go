package provider

import (
	"reflect"
	"testing"
)

func TestQuietSDKLogs(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want map[string]string
	}{
		{
			name: "no logs asked for",
			env:  map[string]string{"HOME": "/root"},
			want: map[string]string{"HOME": "/root", "TF_LOG_SDK": "off", "TF_LOG_SDK_PROTO": "off", "TF_LOG_SDK_FRAMEWORK": "off"},
		},
		{name: "TF_LOG set", env: map[string]string{"TF_LOG": "debug"}, want: map[string]string{"TF_LOG": "debug"}},
		{name: "TF_LOG_PROVIDER set", env: map[string]string{"TF_LOG_PROVIDER": "trace"}, want: map[string]string{"TF_LOG_PROVIDER": "trace"}},
		{name: "SDK level chosen", env: map[string]string{"TF_LOG_SDK_PROTO": "debug"}, want: map[string]string{"TF_LOG_SDK_PROTO": "debug"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := make(map[string]string)
			for k, v := range tt.env {
				env[k] = v
			}
			lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
			set := func(k, v string) error { env[k] = v; return nil }
			if err := QuietSDKLogs(lookup, set); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(env, tt.want) {
				t.Fatalf("env = %v, want %v", env, tt.want)
			}
		})
	}
}
