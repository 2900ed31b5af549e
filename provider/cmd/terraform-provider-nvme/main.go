// Command terraform-provider-nvme serves the nvme provider to Terraform over
// plugin protocol 6.
package main

import (
	"context"
	"flag"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-framework/providerserver"

	"github.com/nvmeof/nvmeof/provider"
)

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "serve for a debugger: print TF_REATTACH_PROVIDERS instead of waiting for Terraform to start the provider")
	flag.Parse()
	if err := provider.QuietSDKLogs(os.LookupEnv, os.Setenv); err != nil {
		log.Fatal(err)
	}

	opts := providerserver.ServeOpts{
		Address:         provider.Address,
		Debug:           debug,
		ProtocolVersion: 6,
	}
	if err := providerserver.Serve(context.Background(), provider.New(provider.VersionFromBuildInfo()), opts); err != nil {
		log.Fatal(err)
	}
}
