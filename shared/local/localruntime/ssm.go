package localruntime

import (
	"context"
	"encoding/base64"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

type parameter struct {
	name    string
	history []*paramVersion // oldest first; at most maxVersions
	nextVer int64
}

type paramVersion struct {
	version      int64
	typ, value   string
	description  string
	tier         string
	dataType     string
	labels       []string
	lastModified time.Time
}

// SSM keeps the last 100 versions of a parameter.
const maxVersions = 100

var (
	paramNameRE = regexp.MustCompile(`^[A-Za-z0-9_.\-/]+$`)
	labelRE     = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,100}$`)
)

func (s *Server) ssmOps() map[string]jsonOp {
	return map[string]jsonOp{
		"PutParameter":          s.putParameter,
		"GetParameter":          s.getParameter,
		"GetParameterHistory":   s.getParameterHistory,
		"LabelParameterVersion": s.labelParameterVersion,
		"DeleteParameter":       s.deleteParameter,
	}
}

func ssmValidation(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "ValidationException", format, args...)
}

func parameterNotFound(name string) *apiError {
	return newError(http.StatusBadRequest, "ParameterNotFound", "Parameter %s not found.", name)
}

func (s *Server) parameterARN(name string) string {
	if !strings.HasPrefix(name, "/") {
		name = "/" + name
	}
	return "arn:aws:ssm:" + s.region + ":" + s.account + ":parameter" + name
}

func (s *Server) putParameter(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Name, Value, Type, Description, Tier, DataType string
		Overwrite                                      bool
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.Name == "" || len(in.Name) > 2048 || !paramNameRE.MatchString(in.Name) || strings.Contains(in.Name, "//") {
		return nil, ssmValidation("Parameter name: can't be prefixed with \"aws\" or \"ssm\" (case-insensitive). It must use only letters, numbers, or the following symbols: . (period), - (hyphen), _ (underscore). Special characters are not allowed. All sub-paths, if specified, must use the forward slash symbol \"/\". Valid example: /get/parameters2-/by1./path0_.")
	}
	if low := strings.ToLower(strings.TrimPrefix(in.Name, "/")); strings.HasPrefix(low, "aws") || strings.HasPrefix(low, "ssm") {
		return nil, ssmValidation("No access to reserved parameter name: %s.", in.Name)
	}
	if in.Value == "" {
		return nil, ssmValidation("1 validation error detected: Value '' at 'value' failed to satisfy constraint: Member must have length greater than or equal to 1.")
	}
	if len(in.Value) > 4096 && in.Tier != "Advanced" {
		return nil, ssmValidation("Standard tier parameters support a maximum parameter value of 4096 characters. To create a larger parameter value, upgrade the parameter to use the advanced-parameter tier.")
	}
	switch in.Type {
	case "", "String", "StringList", "SecureString":
	default:
		return nil, ssmValidation("1 validation error detected: Value '%s' at 'type' failed to satisfy constraint: Member must satisfy enum value set: [SecureString, StringList, String]", in.Type)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, exists := s.params[in.Name]
	if exists && !in.Overwrite {
		return nil, newError(http.StatusBadRequest, "ParameterAlreadyExists", "The parameter already exists. To overwrite this value, set the overwrite option in the request to true.")
	}
	if !exists && in.Type == "" {
		return nil, ssmValidation("A parameter type is required when you create a parameter.")
	}
	if !exists {
		p = &parameter{name: in.Name, nextVer: 1}
		s.params[in.Name] = p
	}
	v := &paramVersion{version: p.nextVer, typ: in.Type, value: in.Value, description: in.Description, tier: in.Tier, dataType: in.DataType, lastModified: s.clock.Now()}
	if last := p.latest(); last != nil {
		if v.typ == "" {
			v.typ = last.typ
		}
		if in.Description == "" {
			v.description = last.description
		}
	}
	if v.tier == "" || v.tier == "Intelligent-Tiering" {
		v.tier = "Standard"
	}
	if v.dataType == "" {
		v.dataType = "text"
	}
	p.nextVer++
	p.history = append(p.history, v)
	if len(p.history) > maxVersions {
		if len(p.history[0].labels) > 0 {
			p.history = p.history[:len(p.history)-1]
			p.nextVer--
			return nil, newError(http.StatusBadRequest, "ParameterMaxVersionLimitExceeded",
				"You attempted to create a new version of %s by calling the PutParameter API with the overwrite flag. Version %d, the oldest version, can't be deleted because it has a label associated with it. Move the label to another version of the parameter, and try again.", in.Name, p.history[0].version)
		}
		p.history = p.history[1:]
	}
	return map[string]any{"Version": v.version, "Tier": v.tier}, nil
}

func (p *parameter) latest() *paramVersion {
	if len(p.history) == 0 {
		return nil
	}
	return p.history[len(p.history)-1]
}

func (s *Server) paramOut(p *parameter, v *paramVersion, selector string) map[string]any {
	out := map[string]any{"Name": p.name, "Type": v.typ, "Value": v.value, "Version": v.version,
		"LastModifiedDate": epochTime(v.lastModified), "ARN": s.parameterARN(p.name), "DataType": v.dataType}
	if selector != "" {
		out["Selector"] = selector
	}
	return out
}

func (s *Server) getParameter(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Name           string
		WithDecryption bool
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	name, selector := in.Name, ""
	if i := strings.LastIndex(in.Name, ":"); i >= 0 {
		name, selector = in.Name[:i], in.Name[i:]
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.params[name]
	if !ok {
		return nil, parameterNotFound(in.Name)
	}
	v := p.latest()
	if selector != "" {
		sel := selector[1:]
		v = nil
		if n, err := strconv.ParseInt(sel, 10, 64); err == nil {
			for _, h := range p.history {
				if h.version == n {
					v = h
				}
			}
			if v == nil {
				return nil, newError(http.StatusBadRequest, "ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", n, name)
			}
		} else {
			for _, h := range p.history {
				for _, l := range h.labels {
					if l == sel {
						v = h
					}
				}
			}
			if v == nil {
				return nil, parameterNotFound(in.Name)
			}
		}
	}
	return map[string]any{"Parameter": s.paramOut(p, v, selector)}, nil
}

func (s *Server) getParameterHistory(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Name           string
		MaxResults     int
		NextToken      string
		WithDecryption bool
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if in.MaxResults == 0 {
		in.MaxResults = 50
	}
	if in.MaxResults < 1 || in.MaxResults > 50 {
		return nil, ssmValidation("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 50", in.MaxResults)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.params[in.Name]
	if !ok {
		return nil, parameterNotFound(in.Name)
	}
	start := 0
	if in.NextToken != "" {
		raw, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		n, perr := strconv.ParseInt(string(raw), 10, 64)
		if err != nil || perr != nil {
			return nil, newError(http.StatusBadRequest, "InvalidNextToken", "The specified token isn't valid.")
		}
		for start < len(p.history) && p.history[start].version <= n {
			start++
		}
	}
	end := min(start+in.MaxResults, len(p.history))
	out := []any{}
	for _, v := range p.history[start:end] {
		labels := v.labels
		if labels == nil {
			labels = []string{}
		}
		out = append(out, map[string]any{"Name": p.name, "Type": v.typ, "Value": v.value, "Version": v.version,
			"LastModifiedDate": epochTime(v.lastModified), "LastModifiedUser": "arn:aws:iam::" + s.account + ":root",
			"Description": v.description, "Labels": labels, "Tier": v.tier, "Policies": []any{}, "DataType": v.dataType})
	}
	res := map[string]any{"Parameters": out}
	if end < len(p.history) {
		res["NextToken"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(p.history[end-1].version, 10)))
	}
	return res, nil
}

func (s *Server) labelParameterVersion(_ context.Context, body []byte) (any, *apiError) {
	var in struct {
		Name             string
		ParameterVersion *int64
		Labels           []string
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if len(in.Labels) == 0 || len(in.Labels) > 10 {
		return nil, ssmValidation("1 validation error detected: Value at 'labels' failed to satisfy constraint: Member must have length between 1 and 10")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.params[in.Name]
	if !ok {
		return nil, parameterNotFound(in.Name)
	}
	target := p.latest()
	if in.ParameterVersion != nil {
		target = nil
		for _, h := range p.history {
			if h.version == *in.ParameterVersion {
				target = h
			}
		}
		if target == nil {
			return nil, newError(http.StatusBadRequest, "ParameterVersionNotFound", "Systems Manager could not find version %d of %s. Verify the version and try again.", *in.ParameterVersion, in.Name)
		}
	}
	invalid := []string{}
	for _, l := range in.Labels {
		low := strings.ToLower(l)
		if !labelRE.MatchString(l) || isDigits(l[:1]) || strings.HasPrefix(low, "aws") || strings.HasPrefix(low, "ssm") {
			invalid = append(invalid, l)
			continue
		}
		// A label names one version: moving it takes it off the one it was on.
		for _, h := range p.history {
			h.labels = removeString(h.labels, l)
		}
		target.labels = append(target.labels, l)
	}
	return map[string]any{"InvalidLabels": invalid, "ParameterVersion": target.version}, nil
}

func removeString(list []string, s string) []string {
	out := list[:0]
	for _, v := range list {
		if v != s {
			out = append(out, v)
		}
	}
	return out
}

func (s *Server) deleteParameter(_ context.Context, body []byte) (any, *apiError) {
	var in struct{ Name string }
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.params[in.Name]; !ok {
		return nil, parameterNotFound(in.Name)
	}
	delete(s.params, in.Name)
	return map[string]any{}, nil
}
