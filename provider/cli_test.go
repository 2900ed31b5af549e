package provider

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// The terraform CLI driven directly, with a build of this provider through
// dev_overrides (no registry, no init), for what the acceptance framework
// cannot do: `terraform validate`, -target, -replace, and configurations
// with modules.

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// TestMain removes the provider build the CLI tests share.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// cli is a working directory and the environment to run terraform in it.
type cli struct {
	t      *testing.T
	tf     string
	dir    string
	config string // CLI configuration file
}

// newCLI builds the provider (once per test binary) and returns a fresh
// working directory. Acceptance tests only: they need the terraform CLI.
func newCLI(t *testing.T) *cli {
	t.Helper()
	if os.Getenv("TF_ACC") == "" {
		t.Skip("acceptance test: set TF_ACC=1 (make test-provider-acc does)")
	}
	tf := terraformPath(t)
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "terraform-provider-nvme-")
		if buildErr != nil {
			return
		}
		out, err := exec.CommandContext(context.Background(), "go", "build", "-o", filepath.Join(buildDir, "terraform-provider-nvme"), "./cmd/terraform-provider-nvme").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build the provider: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	c := &cli{t: t, tf: tf, dir: t.TempDir(), config: filepath.Join(t.TempDir(), "terraformrc")}
	writeFile(t, c.config, `provider_installation {
  dev_overrides {
    "nvmeof/nvme" = "`+buildDir+`"
  }
  direct {}
}
`)
	return c
}

// versionsTF names the provider's source, as every configuration must.
const versionsTF = `terraform {
  required_providers {
    nvme = {
      source = "nvmeof/nvme"
    }
  }
}
`

// write puts a file into the working directory.
func (c *cli) write(name, content string) {
	c.t.Helper()
	writeFile(c.t, filepath.Join(c.dir, name), content)
}

// run runs terraform and returns its stdout, its stderr and whether it
// succeeded; only a failure to start is fatal.
func (c *cli) run(args ...string) (stdout, stderr string, ok bool) {
	c.t.Helper()
	cmd := exec.CommandContext(c.t.Context(), c.tf, append([]string{"-chdir=" + c.dir}, args...)...)
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+c.config, "CHECKPOINT_DISABLE=1", "TF_IN_AUTOMATION=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		c.t.Fatalf("terraform %v: %v", args, err)
	}
	return out.String(), errOut.String(), err == nil
}

// must runs terraform and fails the test when it fails.
func (c *cli) must(args ...string) string {
	c.t.Helper()
	out, errOut, ok := c.run(args...)
	if !ok {
		c.t.Fatalf("terraform %v failed:\n%s\n%s", args, out, errOut)
	}
	return out
}

// terraformPath is the CLI the acceptance tests use.
func terraformPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("TF_ACC_TERRAFORM_PATH"); p != "" {
		return p
	}
	p, err := exec.LookPath("terraform")
	if err != nil {
		t.Fatalf("no terraform CLI: set TF_ACC_TERRAFORM_PATH or put terraform on PATH: %v", err)
	}
	return p
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, to, string(b))
}
