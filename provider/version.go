package provider

import "runtime/debug"

// devVersion names a build that carries no module version: `go build` in
// the checkout, or `go run`.
const devVersion = "dev"

// VersionFromBuildInfo returns the module version the binary was built
// from: a release tag when it was installed with `go install ...@vX.Y.Z`,
// "dev" for a build in the checkout.
func VersionFromBuildInfo() string {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return devVersion
	}
	return versionOf(info)
}

func versionOf(info *debug.BuildInfo) string {
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	return devVersion
}
