package jobspec

import (
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// decodeBlock decodes a block strictly into out, a pointer to one of the
// api module's structs, following its `hcl` tags as Nomad's jobspec2
// does: `name,optional` attributes, `name` required ones, `name,block`
// nested blocks, `name,label` block labels. An argument the struct does
// not have is an error, as it is for Nomad. Durations are strings ("30s").
func (e *evaluator) decodeBlock(block *hcl.Block, out any) hcl.Diagnostics {
	rv := reflect.ValueOf(out).Elem()
	fields := tagsOf(rv.Type())
	var diags hcl.Diagnostics
	labels := 0
	for _, f := range fields {
		if f.kind == "label" {
			if labels < len(block.Labels) {
				rv.Field(f.index).SetString(block.Labels[labels])
			}
			labels++
		}
	}
	return append(diags, e.decodeBody(block.Body, rv, fields)...)
}

type tagField struct {
	name, kind string // kind: attr, required, block, label
	index      int
}

func tagsOf(t reflect.Type) []tagField {
	var out []tagField
	for i := range t.NumField() {
		tag, ok := t.Field(i).Tag.Lookup("hcl")
		if !ok || tag == "-" {
			continue
		}
		name, kind, _ := strings.Cut(tag, ",")
		switch kind {
		case "optional":
			kind = "attr"
		case "":
			kind = "required"
		case "block", "label":
		default:
			continue // remain, key: not in the structs decoded here
		}
		out = append(out, tagField{name: name, kind: kind, index: i})
	}
	return out
}

func (e *evaluator) decodeBody(body hcl.Body, rv reflect.Value, fields []tagField) hcl.Diagnostics {
	schema := &hcl.BodySchema{}
	for _, f := range fields {
		switch f.kind {
		case "attr", "required":
			schema.Attributes = append(schema.Attributes, hcl.AttributeSchema{Name: f.name, Required: f.kind == "required"})
		case "block":
			schema.Blocks = append(schema.Blocks, hcl.BlockHeaderSchema{Type: f.name, LabelNames: labelNames(rv.Field(f.index).Type())})
		}
	}
	content, diags := body.Content(schema)
	for _, f := range fields {
		field := rv.Field(f.index)
		switch f.kind {
		case "attr", "required":
			attr, ok := content.Attributes[f.name]
			if !ok {
				continue
			}
			v, d := e.value(attr.Expr)
			diags = append(diags, d...)
			if d.HasErrors() {
				continue
			}
			if err := assign(field, v); err != nil {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for " + f.name,
					Detail: err.Error(), Subject: attr.Expr.Range().Ptr()})
			}
		case "block":
			for _, b := range content.Blocks.OfType(f.name) {
				diags = append(diags, e.decodeNested(b, field)...)
			}
		}
	}
	return diags
}

// decodeNested fills a block field: *T (one block; a second is an error),
// []*T (each appends), or map[string]string (the block's attributes).
func (e *evaluator) decodeNested(b *hcl.Block, field reflect.Value) hcl.Diagnostics {
	t := field.Type()
	switch {
	case t.Kind() == reflect.Map:
		attrs, diags := b.Body.JustAttributes()
		m := reflect.MakeMap(t)
		for name, a := range attrs {
			v, d := e.value(a.Expr)
			diags = append(diags, d...)
			s, err := convert.Convert(v, cty.String)
			if err != nil || s.IsNull() {
				diags = append(diags, &hcl.Diagnostic{Severity: hcl.DiagError, Summary: "Invalid value for " + name,
					Detail: "a string is required", Subject: a.Expr.Range().Ptr()})
				continue
			}
			m.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(s.AsString()))
		}
		field.Set(m)
		return diags
	case t.Kind() == reflect.Pointer:
		if !field.IsNil() {
			return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Duplicate " + b.Type + " block",
				Detail: "only one " + b.Type + " block is allowed here", Subject: b.DefRange.Ptr()}}
		}
		v := reflect.New(t.Elem())
		diags := e.decodeBlock(b, v.Interface())
		field.Set(v)
		return diags
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Pointer:
		v := reflect.New(t.Elem().Elem())
		diags := e.decodeBlock(b, v.Interface())
		field.Set(reflect.Append(field, v))
		return diags
	}
	return hcl.Diagnostics{{Severity: hcl.DiagError, Summary: "Unsupported block " + b.Type, Subject: b.DefRange.Ptr()}}
}

func labelNames(t reflect.Type) []string {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for _, f := range tagsOf(t) {
		if f.kind == "label" {
			names = append(names, f.name)
		}
	}
	return names
}

// assignTo stores v through a pointer to a field.
func assignTo(target any, v cty.Value) error {
	return assign(reflect.ValueOf(target).Elem(), v)
}

var durationType = reflect.TypeFor[time.Duration]()

// assign stores v in field, converting as Nomad's decoder does; pointers
// are allocated.
func assign(field reflect.Value, v cty.Value) error {
	if v.IsNull() {
		return nil
	}
	if !v.IsWhollyKnown() {
		return fmt.Errorf("the value is not known while parsing")
	}
	if field.Kind() == reflect.Pointer {
		p := reflect.New(field.Type().Elem())
		if err := assign(p.Elem(), v); err != nil {
			return err
		}
		field.Set(p)
		return nil
	}
	if field.Type() == durationType {
		s, err := convert.Convert(v, cty.String)
		if err != nil {
			return fmt.Errorf("a duration is required, such as \"30s\": %w", err)
		}
		d, err := time.ParseDuration(s.AsString())
		if err != nil {
			return fmt.Errorf("a duration is required, such as \"30s\": %w", err)
		}
		field.SetInt(int64(d))
		return nil
	}
	switch field.Kind() {
	case reflect.String:
		s, err := convert.Convert(v, cty.String)
		if err != nil {
			return fmt.Errorf("a string is required: %w", err)
		}
		field.SetString(s.AsString())
	case reflect.Bool:
		b, err := convert.Convert(v, cty.Bool)
		if err != nil {
			return fmt.Errorf("a bool is required: %w", err)
		}
		field.SetBool(b.True())
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Uint64, reflect.Uint32, reflect.Uint8:
		n, err := convert.Convert(v, cty.Number)
		if err != nil {
			return fmt.Errorf("a number is required: %w", err)
		}
		bf := n.AsBigFloat()
		i, acc := bf.Int64()
		if acc != big.Exact {
			return fmt.Errorf("a whole number is required, not %s", bf.String())
		}
		if field.CanInt() {
			field.SetInt(i)
		} else {
			if i < 0 {
				return fmt.Errorf("%d is negative", i)
			}
			field.SetUint(uint64(i))
		}
	case reflect.Slice:
		if !v.Type().IsTupleType() && !v.Type().IsListType() && !v.Type().IsSetType() {
			return fmt.Errorf("a list is required")
		}
		s := reflect.MakeSlice(field.Type(), 0, v.LengthInt())
		for it := v.ElementIterator(); it.Next(); {
			_, el := it.Element()
			item := reflect.New(field.Type().Elem()).Elem()
			if err := assign(item, el); err != nil {
				return err
			}
			s = reflect.Append(s, item)
		}
		field.Set(s)
	default:
		return fmt.Errorf("the driver's decoder cannot store a %s", field.Type())
	}
	return nil
}

// goValue turns a value into what Nomad puts in a task's config map:
// strings, bools, int or float64 numbers, lists and maps of those.
func goValue(v cty.Value) (any, error) {
	if v.IsNull() {
		return nil, nil
	}
	if !v.IsWhollyKnown() {
		return nil, fmt.Errorf("the value is not known while parsing")
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return v.AsString(), nil
	case t == cty.Bool:
		return v.True(), nil
	case t == cty.Number:
		bf := v.AsBigFloat()
		if i, acc := bf.Int64(); acc == big.Exact {
			return int(i), nil
		}
		f, _ := bf.Float64()
		return f, nil
	case t.IsTupleType() || t.IsListType() || t.IsSetType():
		var out []any
		for it := v.ElementIterator(); it.Next(); {
			_, el := it.Element()
			g, err := goValue(el)
			if err != nil {
				return nil, err
			}
			out = append(out, g)
		}
		return out, nil
	case t.IsObjectType() || t.IsMapType():
		out := map[string]any{}
		for it := v.ElementIterator(); it.Next(); {
			k, el := it.Element()
			g, err := goValue(el)
			if err != nil {
				return nil, err
			}
			out[k.AsString()] = g
		}
		return out, nil
	}
	return nil, fmt.Errorf("unsupported value type %s", t.FriendlyName())
}
