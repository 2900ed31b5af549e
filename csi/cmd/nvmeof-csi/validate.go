package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/nvmeof/nvmeof/csi/nomadvolume"
	"github.com/nvmeof/nvmeof/shared/nvme"
)

const validateUsage = `usage: nvmeof-csi validate FILE...

Reads Nomad CSI volume specs (what 'nomad volume register' reads, HCL or
JSON) and checks each as Nomad and this plugin would: keys Nomad drops
without a word, what Nomad's server refuses at register, and, for every
capability, what NodeStageVolume and NodePublishVolume would refuse when a
job claims the volume: the context, the secrets, the access and attachment
modes and the mount options, with the plugin's own rules and messages.
Nomad checks none of the context before a job claims the volume.

Exit status: 0 when every file is fine, 1 when any has a problem, 2 on
wrong usage.
`

// runValidate is `nvmeof-csi validate`: it never touches the node.
func runValidate(args []string, stdout, stderr io.Writer) int {
	fset := flag.NewFlagSet("nvmeof-csi validate", flag.ContinueOnError)
	fset.SetOutput(stderr)
	fset.Usage = func() { _, _ = io.WriteString(stderr, validateUsage) }
	if err := fset.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fset.NArg() == 0 {
		_, _ = io.WriteString(stderr, validateUsage)
		return 2
	}
	failed := 0
	for _, file := range fset.Args() {
		if !validateFile(stdout, file) {
			failed++
		}
	}
	if failed > 0 {
		_, _ = fmt.Fprintf(stdout, "%d of %d files have problems\n", failed, fset.NArg())
		return 1
	}
	return 0
}

// validateFile reports one file and whether it is fine.
func validateFile(w io.Writer, file string) bool {
	spec, err := nomadvolume.ParseFile(file)
	if err != nil {
		_, _ = fmt.Fprintf(w, "%s: cannot be read as Nomad reads it:\n  %s\n", file, strings.ReplaceAll(err.Error(), "\n", "\n  "))
		return false
	}
	v := spec.Volume
	_, _ = fmt.Fprintf(w, "%s: volume %q, volume_id %q, plugin %q\n", file, v.ID, nomadvolume.RemoteID(v), v.PluginID)
	problems := nomadvolume.Check(spec)
	for _, p := range problems {
		_, _ = fmt.Fprintf(w, "  problem  %s\n", p)
	}
	for _, n := range nomadvolume.Notes(spec) {
		_, _ = fmt.Fprintf(w, "  note     %s\n", n)
	}
	if len(problems) > 0 {
		_, _ = fmt.Fprintf(w, "%s: %d problem(s)\n", file, len(problems))
		return false
	}
	for _, c := range v.RequestedCapabilities {
		line := fmt.Sprintf("  ok       capability %s/%s", c.AccessMode, c.AttachmentMode)
		if c.AttachmentMode == "file-system" {
			mo := nomadvolume.MergeMountOptions(v.MountOptions, nil)
			fs := mo.FSType
			if fs == "" {
				fs = "ext4 (the plugin's default)"
			}
			line += ": " + fs
			if len(mo.MountFlags) > 0 {
				// Mount flags may be sensitive (Nomad redacts them): count only.
				line += fmt.Sprintf(", %d mount flag(s)", len(mo.MountFlags))
			}
		}
		_, _ = fmt.Fprintln(w, line)
	}
	// Check found no problem, so the context parses.
	vol, err := nvme.ParseVolumeContext(v.Context)
	if err == nil {
		_, _ = fmt.Fprintf(w, "  ok       context: %s at %s:%s (%s), namespace %s, ctrl_loss_tmo %d, reconnect_delay %d\n",
			vol.Target.NQN, vol.Target.TrAddr, vol.Target.TrSvcID, vol.Target.Transport, vol.Namespace,
			vol.Config.CtrlLossTmo, vol.Config.ReconnectDelay)
	}
	if len(v.Secrets) > 0 {
		_, _ = fmt.Fprintf(w, "  ok       secrets: %s\n", strings.Join(slices.Sorted(maps.Keys(v.Secrets)), ", "))
	}
	_, _ = fmt.Fprintf(w, "%s: OK\n", file)
	return true
}
