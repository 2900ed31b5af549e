package provider

import "fmt"

// Environment variables that ask for logs from Terraform, from providers,
// or from the plugin SDK's own loggers.
var logRequestVars = []string{"TF_LOG", "TF_LOG_PROVIDER", "TF_LOG_PATH", "TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK"}

// sdkLogVars set the plugin SDK's loggers' levels.
var sdkLogVars = []string{"TF_LOG_SDK", "TF_LOG_SDK_PROTO", "TF_LOG_SDK_FRAMEWORK"}

// QuietSDKLogs turns the plugin SDK's own loggers off when no log was asked
// for. They default to TRACE, so every RPC writes a dozen JSON lines to
// stderr that Terraform parses and then discards: measured, that doubled
// the time of planning 500 connections (docs/PERFORMANCE.md). With any
// TF_LOG* variable set, nothing changes.
func QuietSDKLogs(lookupEnv func(string) (string, bool), setenv func(key, value string) error) error {
	for _, k := range logRequestVars {
		if _, set := lookupEnv(k); set {
			return nil
		}
	}
	for _, k := range sdkLogVars {
		if err := setenv(k, "off"); err != nil {
			return fmt.Errorf("turn off %s: %w", k, err)
		}
	}
	return nil
}
