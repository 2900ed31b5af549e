// Package examplecheck checks the Nomad files users copy (examples/nomad)
// without a nomad binary: formatting as `nomad fmt` writes it, decoding
// as Nomad decodes job and volume files, what Nomad refuses, and what the
// plugin would refuse when a job claims a volume. `make nomad-examples`
// runs it through cmd/nomad-examples.
package examplecheck

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/csi/driver"
	"github.com/nvmeof/nvmeof/csi/nomadvolume"
	"github.com/nvmeof/nvmeof/test/nomad/jobspec"
)

// Result is what was found in one file.
type Result struct {
	File     string
	Kind     string // "job", "volume"
	Summary  string
	Problems []string
	Notes    []string
}

// drivers that can mount volumes into tasks; raw_exec cannot.
var mountingDrivers = []string{"exec", "docker", "podman", "java", "qemu", "exec2"}

// Check checks every .hcl and .nomad file under dir.
func Check(dir string) ([]Result, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && (strings.HasSuffix(path, ".hcl") || strings.HasSuffix(path, ".nomad")) {
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no .hcl or .nomad file in %s", dir)
	}
	results := make([]Result, 0, len(files))
	volumes := map[string]*nomadvolume.Spec{}
	for _, f := range files {
		r, spec := checkFile(f)
		if spec != nil {
			volumes[spec.Volume.ID] = spec
		}
		results = append(results, r)
	}
	// Claims need the volumes, so jobs are checked again against them.
	for i := range results {
		if results[i].Kind == "job" {
			results[i].Problems = append(results[i].Problems, claimProblems(results[i].File, volumes)...)
		}
	}
	return results, nil
}

func checkFile(path string) (Result, *nomadvolume.Spec) {
	r := Result{File: path}
	src, err := os.ReadFile(path) //nolint:gosec // files of the directory being checked
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r, nil
	}
	file, diags := hclsyntax.ParseConfig(src, path, hcl.InitialPos)
	if diags.HasErrors() {
		r.Problems = append(r.Problems, "nomad fmt: "+diags.Error())
		return r, nil
	}
	if p := formatProblem(src); p != "" {
		r.Problems = append(r.Problems, p)
	}
	body, _ := file.Body.(*hclsyntax.Body)
	if body != nil && slices.ContainsFunc(body.Blocks, func(b *hclsyntax.Block) bool { return b.Type == "job" }) {
		r.Kind = "job"
		checkJob(path, &r)
		return r, nil
	}
	r.Kind = "volume"
	spec, err := nomadvolume.ParseFile(path)
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return r, nil
	}
	for _, p := range nomadvolume.Check(spec) {
		r.Problems = append(r.Problems, p.String())
	}
	r.Notes = append(r.Notes, nomadvolume.Notes(spec)...)
	r.Summary = fmt.Sprintf("volume %q: %d capabilities, %d context keys", spec.Volume.ID, len(spec.Volume.RequestedCapabilities), len(spec.Volume.Context))
	return r, spec
}

// formatProblem compares a file with its canonical formatting, which is
// what `nomad fmt -check` does (hclwrite.Format), and names the first line
// that differs.
func formatProblem(src []byte) string {
	canonical := hclwrite.Format(src)
	if bytes.Equal(canonical, src) {
		return ""
	}
	got, want := strings.Split(string(src), "\n"), strings.Split(string(canonical), "\n")
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("nomad fmt: not in canonical format: line %d is %q, nomad fmt writes %q", i+1, got[i], want[i])
		}
	}
	return fmt.Sprintf("nomad fmt: not in canonical format: %d lines, nomad fmt writes %d", len(got), len(want))
}

func checkJob(path string, r *Result) {
	job, err := jobspec.ParseFile(path, nil)
	if err != nil {
		r.Problems = append(r.Problems, err.Error())
		return
	}
	if err := jobspec.Validate(job); err != nil {
		r.Problems = append(r.Problems, strings.Split(err.Error(), "\n")...)
	}
	var parts []string
	for _, tg := range job.TaskGroups {
		for _, t := range tg.Tasks {
			if p := t.CSIPluginConfig; p != nil {
				parts = append(parts, fmt.Sprintf("plugin %s (%s, %s)", p.ID, p.Type, t.Driver))
				r.Problems = append(r.Problems, pluginProblems(tg, t)...)
			}
		}
		if len(tg.Volumes) > 0 {
			parts = append(parts, fmt.Sprintf("group %s: %d volume(s)", *tg.Name, len(tg.Volumes)))
			if !slices.ContainsFunc(tg.Tasks, func(t *api.Task) bool { return slices.Contains(mountingDrivers, t.Driver) }) {
				r.Problems = append(r.Problems, fmt.Sprintf("group %q: no task supports CSI: drivers %v cannot mount volumes (raw_exec cannot)", *tg.Name, taskDrivers(tg)))
			}
		}
	}
	r.Summary = fmt.Sprintf("job %q (%s): %s", *job.ID, *job.Type, strings.Join(parts, "; "))
}

func taskDrivers(tg *api.TaskGroup) []string {
	var out []string
	for _, t := range tg.Tasks {
		out = append(out, t.Driver)
	}
	return out
}

// pluginProblems: a plugin without filesystem isolation (raw_exec) gets
// the plugin-side paths in its RPCs, so stage_publish_base_dir must be
// the host path Nomad uses, <data_dir>/client/csi/<type>/<id> (Nomad
// issues 11885, 19165).
func pluginProblems(tg *api.TaskGroup, t *api.Task) []string {
	if t.Driver != "raw_exec" {
		return nil
	}
	p := t.CSIPluginConfig
	want := filepath.Join("client", "csi", string(p.Type), p.ID)
	if !strings.HasSuffix(filepath.Clean(p.StagePublishBaseDir), "/"+want) {
		return []string{fmt.Sprintf("group %q task %q: under raw_exec, stage_publish_base_dir %q must be <data_dir>/%s, "+
			"the host path Nomad uses, or the plugin is sent paths that do not exist on the host", *tg.Name, t.Name, p.StagePublishBaseDir, want)}
	}
	return nil
}

// claimProblems checks what the plugin would receive for every CSI volume
// of a job whose source is a volume of the directory: the capability from
// the job's modes and the merged mount options, with the volume's context
// and secrets, through the plugin's own checks. A source that names no
// volume of the directory is a problem: the example would not run.
func claimProblems(path string, volumes map[string]*nomadvolume.Spec) []string {
	job, err := jobspec.ParseFile(path, nil)
	if err != nil {
		return nil // reported already
	}
	var out []string
	for _, tg := range job.TaskGroups {
		for alias, req := range tg.Volumes {
			if req.Type != api.CSIVolumeTypeCSI || req.Source == "" {
				continue
			}
			where := fmt.Sprintf("group %q volume %q", *tg.Name, alias)
			spec, ok := volumes[req.Source]
			if !ok && req.PerAlloc {
				spec, ok = volumes[req.Source+"[0]"]
			}
			if !ok {
				out = append(out, fmt.Sprintf("%s: source %q names no volume file of the directory", where, req.Source))
				continue
			}
			out = append(out, claimOf(where, req, spec.Volume)...)
		}
	}
	slices.Sort(out)
	return out
}

func claimOf(where string, req *api.VolumeRequest, vol *api.CSIVolume) []string {
	access, attachment := api.CSIVolumeAccessMode(req.AccessMode), api.CSIVolumeAttachmentMode(req.AttachmentMode)
	capability, err := nomadvolume.Capability(access, attachment, nomadvolume.MergeMountOptions(vol.MountOptions, req.MountOptions))
	if err != nil {
		return []string{where + ": " + err.Error()}
	}
	usage := nomadvolume.Usage(req.ReadOnly, attachment, access)
	staging := filepath.Join(nomadvolume.DefaultStagePublishBaseDir, "staging", "default", vol.ID, usage)
	target := filepath.Join(nomadvolume.DefaultStagePublishBaseDir, "per-alloc", "ALLOC", vol.ID, usage)
	id := nomadvolume.RemoteID(vol)
	var out []string
	for _, e := range driver.StageProblems(&csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging,
		VolumeCapability: capability, Secrets: vol.Secrets, VolumeContext: vol.Context}) {
		out = append(out, fmt.Sprintf("%s: the plugin would refuse the claim: %s", where, nomadvolume.PluginWords(e, "stage volume "+id+" at "+staging)))
	}
	for _, e := range driver.PublishProblems(&csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging,
		TargetPath: target, VolumeCapability: capability, Readonly: req.ReadOnly}) {
		out = append(out, fmt.Sprintf("%s: the plugin would refuse the claim: %s", where, nomadvolume.PluginWords(e, "publish volume "+id+" at "+target)))
	}
	return out
}

// Failed reports whether any result has a problem.
func Failed(results []Result) error {
	n := 0
	for _, r := range results {
		n += len(r.Problems)
	}
	if n > 0 {
		return fmt.Errorf("%d problem(s)", n)
	}
	return nil
}
