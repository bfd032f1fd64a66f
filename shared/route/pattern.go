package route

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Pattern is the subset of an EventBridge event pattern regflow uses. Semantics, as
// EventBridge's: every non-empty part must match (AND); within a part the listed values
// are alternatives (OR); values compare as exact, case-sensitive strings; a field the
// event lacks, or holds as a number, bool, null or object, does not match; an event
// field holding an array matches when any of its elements does.
type Pattern struct {
	Sources     []string
	DetailTypes []string
	Accounts    []string
	// Detail constrains fields inside the event's detail object.
	Detail []Field
}

// Field constrains one field of the detail, Path naming it from the detail down
// (["a", "b"] is detail.a.b).
type Field struct {
	Path   []string
	Values []string
}

// Validate reports a pattern EventBridge would refuse or that could never match.
func (p *Pattern) Validate() error {
	if p == nil {
		return errors.New("route pattern is missing")
	}
	if len(p.Sources) == 0 && len(p.DetailTypes) == 0 && len(p.Accounts) == 0 && len(p.Detail) == 0 {
		return errors.New("route pattern matches every event: name at least a source, detail-type, account or detail field")
	}
	seen := map[string]bool{}
	for _, f := range p.Detail {
		if len(f.Path) == 0 || len(f.Values) == 0 {
			return fmt.Errorf("route pattern detail field %q needs a path and at least one value", strings.Join(f.Path, "."))
		}
		key := strings.Join(f.Path, "\x00")
		if seen[key] {
			return fmt.Errorf("route pattern names detail field %q twice", strings.Join(f.Path, "."))
		}
		seen[key] = true
	}
	// A field that is both a leaf and a parent cannot be rendered as one JSON object.
	if _, err := p.Map(); err != nil {
		return err
	}
	return nil
}

// Match reports whether the event (EventBridge's JSON envelope) matches. Anything that
// is not a JSON object matches nothing.
func (p *Pattern) Match(event []byte) bool {
	ev, err := Decode(event)
	if err != nil {
		return false
	}
	return p.Matches(ev)
}

// Decode parses an event envelope for Matches; it fails unless event is a JSON object.
func Decode(event []byte) (map[string]any, error) {
	d := json.NewDecoder(bytes.NewReader(event))
	d.UseNumber()
	var ev map[string]any
	if err := d.Decode(&ev); err != nil {
		return nil, fmt.Errorf("event is not a JSON object: %w", err)
	}
	if ev == nil {
		return nil, errors.New("event is not a JSON object: null")
	}
	if d.More() {
		return nil, errors.New("event has data after its JSON object")
	}
	return ev, nil
}

// Matches reports whether a decoded event matches.
func (p *Pattern) Matches(ev map[string]any) bool {
	if p == nil || ev == nil {
		return false
	}
	if !field(ev, []string{"source"}, p.Sources) ||
		!field(ev, []string{"detail-type"}, p.DetailTypes) ||
		!field(ev, []string{"account"}, p.Accounts) {
		return false
	}
	for _, f := range p.Detail {
		if !field(ev, append([]string{"detail"}, f.Path...), f.Values) {
			return false
		}
	}
	return true
}

// field checks the value at path against values; no values means unconstrained.
func field(ev map[string]any, path []string, values []string) bool {
	if len(values) == 0 {
		return true
	}
	var v any = ev
	for _, k := range path {
		obj, ok := v.(map[string]any)
		if !ok {
			return false
		}
		if v, ok = obj[k]; !ok {
			return false
		}
	}
	switch v := v.(type) {
	case string:
		return contains(values, v)
	case []any:
		for _, e := range v {
			if s, ok := e.(string); ok && contains(values, s) {
				return true
			}
		}
	}
	return false
}

func contains(set []string, v string) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// Map renders the pattern as EventBridge's pattern object: {"source": [...],
// "detail-type": [...], "account": [...], "detail": {...}}, leaving out empty parts.
func (p *Pattern) Map() (map[string]any, error) {
	out := map[string]any{}
	if len(p.Sources) > 0 {
		out["source"] = append([]string(nil), p.Sources...)
	}
	if len(p.DetailTypes) > 0 {
		out["detail-type"] = append([]string(nil), p.DetailTypes...)
	}
	if len(p.Accounts) > 0 {
		out["account"] = append([]string(nil), p.Accounts...)
	}
	if len(p.Detail) > 0 {
		detail, err := p.DetailMap()
		if err != nil {
			return nil, err
		}
		out["detail"] = detail
	}
	return out, nil
}

// DetailMap renders only the detail part, nested as the paths say.
func (p *Pattern) DetailMap() (map[string]any, error) {
	detail := map[string]any{}
	for _, f := range p.Detail {
		node := detail
		for i, k := range f.Path {
			if i == len(f.Path)-1 {
				if _, taken := node[k]; taken {
					return nil, fmt.Errorf("route pattern detail field %q is named twice or is also a parent", strings.Join(f.Path, "."))
				}
				node[k] = append([]string(nil), f.Values...)
				break
			}
			child, ok := node[k].(map[string]any)
			if !ok {
				if _, taken := node[k]; taken {
					return nil, fmt.Errorf("route pattern detail field %q is both a value and a parent", strings.Join(f.Path[:i+1], "."))
				}
				child = map[string]any{}
				node[k] = child
			}
			node = child
		}
	}
	return detail, nil
}

// JSON renders the pattern as the EventPattern JSON of an AWS::Events::Rule.
func (p *Pattern) JSON() ([]byte, error) {
	m, err := p.Map()
	if err != nil {
		return nil, err
	}
	return json.Marshal(m)
}
