// Command terraform-provider-nvme serves the nvme provider to Terraform over
// plugin protocol 6.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/hashicorp/terraform-plugin-go/tfprotov6/tf6server"

	"github.com/nvmeof/nvmeof/provider"
)

func main() {
	var debug bool
	flag.BoolVar(&debug, "debug", false, "serve for a debugger: print TF_REATTACH_PROVIDERS instead of waiting for Terraform to start the provider")
	flag.Parse()
	if err := provider.QuietSDKLogs(os.LookupEnv, os.Setenv); err != nil {
		log.Fatal(err)
	}

	var opts []tf6server.ServeOpt
	if debug {
		opts = append(opts, tf6server.WithManagedDebug())
	}
	if err := tf6server.Serve(provider.Address, provider.NewServer(provider.VersionFromBuildInfo()), opts...); err != nil {
		log.Fatal(err)
	}
}
