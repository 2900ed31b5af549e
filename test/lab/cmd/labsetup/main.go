// Command labsetup builds the lab's nvmet target inside the VM (run by
// /init after the modules are loaded): the host identity in /etc/nvme, one
// loop device over a tmpfs file per namespace, then subsystems and port in
// configfs, all from labtarget's layout so tests and target cannot disagree.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"

	"github.com/nvmeof/nvmeof/test/lab/labtarget"
)

func main() {
	configfs := flag.String("configfs", labtarget.ConfigfsRoot, "nvmet configfs directory")
	backing := flag.String("backing", "/run/lab/backing", "tmpfs directory for the namespaces' files")
	etc := flag.String("etc", "/etc/nvme", "where hostnqn and hostid are written")
	flag.Parse()

	log := hclog.New(&hclog.LoggerOptions{Name: "labsetup", Output: os.Stderr})
	if err := setup(context.Background(), log, *configfs, *backing, *etc); err != nil {
		log.Error("target setup failed", "error", err)
		os.Exit(1)
	}
}

func setup(ctx context.Context, log hclog.Logger, configfs, backing, etc string) error {
	if err := labtarget.HostIdentityFiles(etc, labtarget.HostNQN, labtarget.HostID); err != nil {
		return err
	}
	if err := os.MkdirAll(backing, 0o750); err != nil {
		return fmt.Errorf("backing directory: %w", err)
	}
	subsystems := labtarget.Subsystems()
	devices := map[string]string{}
	loop := 0
	for _, s := range subsystems {
		for _, ns := range s.Namespaces {
			device := fmt.Sprintf("/dev/loop%d", loop)
			file := filepath.Join(backing, fmt.Sprintf("ns%d.img", loop))
			if err := labtarget.AttachLoop(ctx, file, labtarget.NamespaceSize, device); err != nil {
				return fmt.Errorf("%s nsid %d: %w", s.NQN, ns.NSID, err)
			}
			devices[labtarget.DeviceKey(s.NQN, ns.NSID)] = device
			loop++
		}
	}
	target := labtarget.Nvmet{Root: configfs}
	if err := target.Create(subsystems, devices); err != nil {
		return err
	}
	// SubsystemAuth asks HostNQN for DH-HMAC-CHAP where nvmet can; on a
	// kernel without it the subsystem only checks the host NQN.
	auth, err := target.TargetAuth()
	if err != nil {
		return err
	}
	if auth {
		if err := target.SetHostAuth(labtarget.HostNQN, labtarget.LabHostAuth()); err != nil {
			return err
		}
	}
	log.Info("nvmet target ready", "subsystems", len(subsystems), "namespaces", loop,
		"address", labtarget.TrAddr+":"+labtarget.TrSvcID, "dhchap", auth)
	return nil
}
