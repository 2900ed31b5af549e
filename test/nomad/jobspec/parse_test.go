package jobspec_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/nomad/api"

	"github.com/nvmeof/nvmeof/test/nomad/jobspec"
)

const examples = "../../../examples/nomad/"

func TestParseApp(t *testing.T) {
	job, err := jobspec.ParseFile(examples+"app.nomad.hcl", map[string]string{"volume_id": "lab-data"})
	if err != nil {
		t.Fatal(err)
	}
	if *job.ID != "nvme-app" || *job.Type != "service" || *job.Namespace != "default" {
		t.Errorf("job %s type %s namespace %s", *job.ID, *job.Type, *job.Namespace)
	}
	tg := job.TaskGroups[0]
	want := &api.VolumeRequest{Name: "data", Type: "csi", Source: "lab-data", AccessMode: "single-node-writer", AttachmentMode: "file-system"}
	if !reflect.DeepEqual(tg.Volumes["data"], want) {
		t.Errorf("volume %+v, want %+v", tg.Volumes["data"], want)
	}
	task := tg.Tasks[0]
	if task.Driver != "exec" || *task.VolumeMounts[0].Volume != "data" || *task.VolumeMounts[0].Destination != "/data" ||
		*task.VolumeMounts[0].PropagationMode != "private" {
		t.Errorf("task %+v, mount %+v", task, task.VolumeMounts[0])
	}
	args, ok := task.Config["args"].([]any)
	if !ok || len(args) != 2 || !strings.Contains(args[1].(string), "echo \"line $n $(date +%s)\" >> /data/log") {
		t.Errorf("config args %#v", task.Config["args"])
	}
	if *task.KillTimeout != 5*time.Second || *task.RestartPolicy.Attempts != 2 {
		t.Errorf("canonical defaults: kill_timeout %v, restart %+v", *task.KillTimeout, task.RestartPolicy)
	}
	if err := jobspec.Validate(job); err != nil {
		t.Error(err)
	}
}

func TestParsePluginRawExec(t *testing.T) {
	job, err := jobspec.ParseFile(examples+"plugin-raw-exec.nomad.hcl", map[string]string{
		"plugin_path": "/lab/bin/nvmeof-csi", "nomad_data_dir": "/var/nomad",
	})
	if err != nil {
		t.Fatal(err)
	}
	task := job.TaskGroups[0].Tasks[0]
	want := &api.TaskCSIPluginConfig{ID: "nvmeof", Type: "node", MountDir: "/csi",
		StagePublishBaseDir: "/var/nomad/client/csi/node/nvmeof", HealthTimeout: 30 * time.Second}
	if !reflect.DeepEqual(task.CSIPluginConfig, want) {
		t.Errorf("csi_plugin %+v, want %+v", task.CSIPluginConfig, want)
	}
	// Variables are resolved; what the client fills in stays for it.
	wantArgs := []any{"--endpoint=${CSI_ENDPOINT}", "--state-dir=/var/lib/nvmeof-csi", "--metrics-addr=127.0.0.1:9810"}
	if task.Config["command"] != "/lab/bin/nvmeof-csi" || !reflect.DeepEqual(task.Config["args"], wantArgs) {
		t.Errorf("config %#v", task.Config)
	}
	rp := job.TaskGroups[0].RestartPolicy
	if *rp.Attempts != 10 || *rp.Delay != 5*time.Second || *rp.Interval != 5*time.Minute || *rp.Mode != "delay" {
		t.Errorf("restart %+v", rp)
	}
	if *job.Type != "system" || *task.KillTimeout != 45*time.Second {
		t.Errorf("type %s kill_timeout %v", *job.Type, *task.KillTimeout)
	}
	if err := jobspec.Validate(job); err != nil {
		t.Error(err)
	}
}

func TestParseDockerPlugin(t *testing.T) {
	job, err := jobspec.ParseFile(examples+"plugin.nomad.hcl", nil)
	if err != nil {
		t.Fatal(err)
	}
	task := job.TaskGroups[0].Tasks[0]
	// The docker config's mount blocks are the driver's; its attributes
	// are read, runtime references kept.
	if task.Config["image"] != "nvmeof/nvmeof-csi:latest" || task.Config["privileged"] != true ||
		!reflect.DeepEqual(task.Config["args"].([]any)[2], "--metrics-addr=${NOMAD_ADDR_metrics}") {
		t.Errorf("config %#v", task.Config)
	}
	if task.CSIPluginConfig.StagePublishBaseDir != "/local/csi" {
		t.Errorf("default stage_publish_base_dir %q", task.CSIPluginConfig.StagePublishBaseDir)
	}
}

func TestParseErrors(t *testing.T) {
	const job = `
variable "n" {
  type    = number
  default = 1
}
job "j" {
  group "g" {
    count = var.n
    volume "v" {
      type            = "csi"
      source          = "vol"
      access_mode     = "multi-node-reader-only"
      attachment_mode = "file-system"
      read_only       = true
      %s
    }
    task "t" {
      driver = "exec"
      %s
    }
  }
}
`
	tests := []struct {
		name         string
		volume, task string
		vars         map[string]string
		want         string
		wantCount    int
	}{
		{name: "good", wantCount: 1},
		{name: "a number variable from -var", vars: map[string]string{"n": "3"}, wantCount: 3},
		{name: "a misspelt volume argument", volume: `acess_mode = "x"`, want: `An argument named "acess_mode" is not expected here`},
		{name: "a misspelt volume_mount argument", task: "volume_mount {\n volume = \"v\"\n dest = \"/d\"\n}", want: `An argument named "dest" is not expected here`},
		{name: "mount_options block", volume: "mount_options {\n mount_flags = [\"noatime\"]\n}", wantCount: 1},
		{name: "two mount_options blocks", volume: "mount_options {\n}\nmount_options {\n}", want: "Duplicate mount_options block"},
		{name: "bad duration", task: "csi_plugin {\n id = \"p\"\n type = \"node\"\n health_timeout = \"soon\"\n}", want: `a duration is required, such as "30s"`},
		{name: "bad kill_timeout", task: `kill_timeout = "1 minute"`, want: "Invalid kill_timeout"},
		{name: "undeclared -var", vars: map[string]string{"m": "1"}, want: "Undeclared variable m"},
		{name: "wrong -var type", vars: map[string]string{"n": "many"}, want: `Invalid value for variable n`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := strings.Replace(strings.Replace(job, "%s", tc.volume, 1), "%s", tc.task, 1)
			j, err := jobspec.Parse([]byte(src), "j.nomad.hcl", tc.vars)
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "j.nomad.hcl:") {
					t.Fatalf("error %v, want one naming j.nomad.hcl and saying %q", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *j.TaskGroups[0].Count != tc.wantCount {
				t.Errorf("count %d, want %d", *j.TaskGroups[0].Count, tc.wantCount)
			}
		})
	}
}

func TestParseRuntimeReferences(t *testing.T) {
	src := `
variable "dir" {
  default = "/srv"
}
job "j" {
  group "g" {
    task "t" {
      driver = "raw_exec"
      config {
        command = "${NOMAD_TASK_DIR}/run"
        args    = ["${var.dir}/${NOMAD_ALLOC_ID}", "${attr.kernel.name}", "plain", 3, true]
      }
      env {
        WHERE = "${var.dir}:${meta.rack}"
      }
    }
  }
}
`
	j, err := jobspec.Parse([]byte(src), "j.nomad.hcl", nil)
	if err != nil {
		t.Fatal(err)
	}
	task := j.TaskGroups[0].Tasks[0]
	if task.Config["command"] != "${NOMAD_TASK_DIR}/run" {
		t.Errorf("command %q", task.Config["command"])
	}
	want := []any{"/srv/${NOMAD_ALLOC_ID}", "${attr.kernel.name}", "plain", 3, true}
	if !reflect.DeepEqual(task.Config["args"], want) {
		t.Errorf("args %#v, want %#v", task.Config["args"], want)
	}
	if task.Env["WHERE"] != "/srv:${meta.rack}" {
		t.Errorf("env %q", task.Env["WHERE"])
	}
}
