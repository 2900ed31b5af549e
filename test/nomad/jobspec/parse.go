// Package jobspec reads the parts of Nomad job files (HCL2) that matter to
// a CSI plugin into the api module's job types, the way Nomad's jobspec2
// does, and checks them as Nomad's job validation does (Validate).
//
// jobspec2 lives in the BUSL-licensed Nomad module, so the project has its
// own reader. It models what the Nomad-faithful driver (../nomadclient)
// runs: the job's type, namespace and update block; each group's count,
// restart policy, update block and `volume` blocks; each task's driver,
// kill_timeout, config attributes, env, restart policy, `volume_mount` and
// `csi_plugin` blocks. Those blocks are decoded strictly (an unknown
// argument is an error, as in Nomad); other blocks and attributes of jobs,
// groups and tasks are parsed as HCL but not interpreted. Variables
// (`variable` blocks, values given like -var) are resolved; references to
// what the client fills in at run time (${CSI_ENDPOINT}, ${NOMAD_*},
// ${attr.*}, ${meta.*}) stay in the strings, as Nomad leaves them.
package jobspec

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/nomad/api"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// ParseFile reads a job file; vars are the -var values.
func ParseFile(path string, vars map[string]string) (*api.Job, error) {
	src, err := os.ReadFile(path) //nolint:gosec // the caller names the job file
	if err != nil {
		return nil, fmt.Errorf("read job file: %w", err)
	}
	return Parse(src, path, vars)
}

var (
	fileSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "job", LabelNames: []string{"name"}},
	}}
	jobSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "namespace"}, {Name: "datacenters"}, {Name: "priority"}, {Name: "region"}},
		Blocks:     []hcl.BlockHeaderSchema{{Type: "group", LabelNames: []string{"name"}}, {Type: "update"}},
	}
	groupSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "count"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "task", LabelNames: []string{"name"}}, {Type: "volume", LabelNames: []string{"name"}},
			{Type: "restart"}, {Type: "update"},
		},
	}
	taskSchema = &hcl.BodySchema{
		Attributes: []hcl.AttributeSchema{{Name: "driver", Required: true}, {Name: "kill_timeout"}, {Name: "user"}},
		Blocks: []hcl.BlockHeaderSchema{
			{Type: "config"}, {Type: "env"}, {Type: "volume_mount"}, {Type: "csi_plugin"}, {Type: "restart"},
		},
	}
)

// Parse reads one job file. Errors name the file, line and field.
func Parse(src []byte, filename string, vars map[string]string) (*api.Job, error) {
	file, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, diags
	}
	content, diags := file.Body.Content(fileSchema)
	if diags.HasErrors() {
		return nil, diags
	}
	declared := content.Blocks.OfType("variable")
	for _, name := range slices.Sorted(maps.Keys(vars)) {
		if !slices.ContainsFunc(declared, func(b *hcl.Block) bool { return b.Labels[0] == name }) {
			return nil, fmt.Errorf("%s: Undeclared variable %s: a value was given for a variable the job file does not declare", filename, name)
		}
	}
	values, diags := variables(declared, vars)
	if diags.HasErrors() {
		return nil, diags
	}
	e := &evaluator{src: src, ctx: &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(values)}}}
	jobs := content.Blocks.OfType("job")
	if len(jobs) != 1 {
		return nil, fmt.Errorf("%s: %d job blocks; a job file holds exactly one", filename, len(jobs))
	}
	job, diags := e.job(jobs[0])
	if diags.HasErrors() {
		return nil, diags
	}
	job.Canonicalize()
	return job, nil
}

// variables resolves the file's variable blocks: a -var value converted to
// the declared type, else the default. A -var for an undeclared variable,
// or a variable left without a value, is an error.
func variables(blocks hcl.Blocks, given map[string]string) (map[string]cty.Value, hcl.Diagnostics) {
	schema := &hcl.BodySchema{Attributes: []hcl.AttributeSchema{{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}},
		Blocks: []hcl.BlockHeaderSchema{{Type: "validation"}}}
	values := map[string]cty.Value{}
	var diags hcl.Diagnostics
	for _, b := range blocks {
		name := b.Labels[0]
		c, d := b.Body.Content(schema)
		diags = append(diags, d...)
		ty := cty.DynamicPseudoType
		if a, ok := c.Attributes["type"]; ok {
			t, d := typeexpr.TypeConstraint(a.Expr)
			diags = append(diags, d...)
			ty = t
		}
		raw, isGiven := given[name]
		switch {
		case isGiven:
			v, err := fromFlag(raw, ty)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for variable " + name,
					Detail: err.Error(), Subject: b.DefRange.Ptr()})
				continue
			}
			values[name] = v
		case c.Attributes["default"] != nil:
			v, d := c.Attributes["default"].Expr.Value(nil)
			diags = append(diags, d...)
			cv, err := convert.Convert(v, ty)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid default for variable " + name,
					Detail: err.Error(), Subject: b.DefRange.Ptr()})
				continue
			}
			values[name] = cv
		default:
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Unset variable " + name,
				Detail: "the variable has no default; give it a value", Subject: b.DefRange.Ptr()})
		}
	}
	return values, diags
}

// fromFlag converts a -var value: a string type takes it as it is, others
// parse it as an HCL expression (a number, a list, ...).
func fromFlag(raw string, ty cty.Type) (cty.Value, error) {
	if ty == cty.String || ty == cty.DynamicPseudoType {
		return cty.StringVal(raw), nil
	}
	expr, diags := hclsyntax.ParseExpression([]byte(raw), "-var", hcl.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	v, diags := expr.Value(nil)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	cv, err := convert.Convert(v, ty)
	if err != nil {
		return cty.NilVal, fmt.Errorf("%q is not a %s: %w", raw, ty.FriendlyName(), err)
	}
	return cv, nil
}

func (e *evaluator) job(b *hcl.Block) (*api.Job, hcl.Diagnostics) {
	c, _, diags := b.Body.PartialContent(jobSchema)
	job := &api.Job{ID: &b.Labels[0], Name: &b.Labels[0]}
	diags = append(diags, e.attrs(c.Attributes, map[string]any{
		"type": &job.Type, "namespace": &job.Namespace, "datacenters": &job.Datacenters, "priority": &job.Priority, "region": &job.Region,
	})...)
	for _, u := range c.Blocks.OfType("update") {
		job.Update = &api.UpdateStrategy{}
		diags = append(diags, e.decodeBlock(u, job.Update)...)
	}
	for _, g := range c.Blocks.OfType("group") {
		tg, d := e.group(g)
		diags = append(diags, d...)
		job.TaskGroups = append(job.TaskGroups, tg)
	}
	return job, diags
}

func (e *evaluator) group(b *hcl.Block) (*api.TaskGroup, hcl.Diagnostics) {
	c, _, diags := b.Body.PartialContent(groupSchema)
	tg := &api.TaskGroup{Name: &b.Labels[0]}
	diags = append(diags, e.attrs(c.Attributes, map[string]any{"count": &tg.Count})...)
	for _, v := range c.Blocks.OfType("volume") {
		if tg.Volumes == nil {
			tg.Volumes = map[string]*api.VolumeRequest{}
		}
		if _, dup := tg.Volumes[v.Labels[0]]; dup {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Duplicate volume " + v.Labels[0], Subject: v.DefRange.Ptr()})
			continue
		}
		req := &api.VolumeRequest{}
		diags = append(diags, e.decodeBlock(v, req)...)
		tg.Volumes[v.Labels[0]] = req
	}
	for _, r := range c.Blocks.OfType("restart") {
		tg.RestartPolicy = &api.RestartPolicy{}
		diags = append(diags, e.decodeBlock(r, tg.RestartPolicy)...)
	}
	for _, u := range c.Blocks.OfType("update") {
		tg.Update = &api.UpdateStrategy{}
		diags = append(diags, e.decodeBlock(u, tg.Update)...)
	}
	for _, t := range c.Blocks.OfType("task") {
		task, d := e.task(t)
		diags = append(diags, d...)
		tg.Tasks = append(tg.Tasks, task)
	}
	return tg, diags
}

func (e *evaluator) task(b *hcl.Block) (*api.Task, hcl.Diagnostics) {
	c, _, diags := b.Body.PartialContent(taskSchema)
	task := &api.Task{Name: b.Labels[0]}
	var killTimeout string
	diags = append(diags, e.attrs(c.Attributes, map[string]any{"driver": &task.Driver, "user": &task.User, "kill_timeout": &killTimeout})...)
	if killTimeout != "" {
		d, err := time.ParseDuration(killTimeout)
		if err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid kill_timeout",
				Detail: err.Error(), Subject: c.Attributes["kill_timeout"].Expr.Range().Ptr()})
		}
		task.KillTimeout = &d
	}
	for _, cfg := range c.Blocks.OfType("config") {
		// Driver configs are free-form (jobspec2 decodes them with the
		// driver's own schema): the attributes are what the driver uses.
		attrs, d := cfg.Body.JustAttributes()
		if d.HasErrors() {
			// Nested blocks (docker's mount {}) are the driver's business.
			attrs, _, d = partialAttributes(cfg.Body)
		}
		diags = append(diags, d...)
		task.Config = map[string]any{}
		for name, a := range attrs {
			v, d := e.value(a.Expr)
			diags = append(diags, d...)
			g, err := goValue(v)
			if err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid config " + name, Detail: err.Error(), Subject: a.Range.Ptr()})
			}
			task.Config[name] = g
		}
	}
	for _, env := range c.Blocks.OfType("env") {
		attrs, d := env.Body.JustAttributes()
		diags = append(diags, d...)
		task.Env = map[string]string{}
		for name, a := range attrs {
			v, d := e.value(a.Expr)
			diags = append(diags, d...)
			s, err := convert.Convert(v, cty.String)
			if err != nil || s.IsNull() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid env " + name, Detail: "a string is required", Subject: a.Range.Ptr()})
				continue
			}
			task.Env[name] = s.AsString()
		}
	}
	for _, vm := range c.Blocks.OfType("volume_mount") {
		m := &api.VolumeMount{}
		diags = append(diags, e.decodeBlock(vm, m)...)
		task.VolumeMounts = append(task.VolumeMounts, m)
	}
	for _, p := range c.Blocks.OfType("csi_plugin") {
		task.CSIPluginConfig = &api.TaskCSIPluginConfig{}
		diags = append(diags, e.decodeBlock(p, task.CSIPluginConfig)...)
	}
	for _, r := range c.Blocks.OfType("restart") {
		task.RestartPolicy = &api.RestartPolicy{}
		diags = append(diags, e.decodeBlock(r, task.RestartPolicy)...)
	}
	return task, diags
}

// partialAttributes returns a body's attributes, leaving its blocks.
func partialAttributes(body hcl.Body) (hcl.Attributes, hcl.Body, hcl.Diagnostics) {
	sb, ok := body.(*hclsyntax.Body)
	if !ok {
		return nil, body, hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unsupported body"}}
	}
	attrs := hcl.Attributes{}
	for name, a := range sb.Attributes {
		attrs[name] = a.AsHCLAttribute()
	}
	return attrs, body, nil
}

// attrs decodes the named attributes into pointers to fields.
func (e *evaluator) attrs(attrs hcl.Attributes, into map[string]any) hcl.Diagnostics {
	var diags hcl.Diagnostics
	for name, target := range into {
		a, ok := attrs[name]
		if !ok {
			continue
		}
		v, d := e.value(a.Expr)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if err := assignTo(target, v); err != nil {
			diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for " + name,
				Detail: err.Error(), Subject: a.Expr.Range().Ptr()})
		}
	}
	return diags
}
