package localruntime

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

type function struct {
	name     string
	latest   *version
	versions []*version // published, version n at index n-1
	aliases  map[string]*alias
	// updateDue is when an InProgress update of $LATEST finishes.
	updateDue time.Time
}

// version is $LATEST or a published version: its configuration and image.
type version struct {
	number       string // "$LATEST", "1", ...
	config       map[string]any
	imageURI     string
	resolved     string // repo@digest, or "" when the tag did not resolve
	codeSha256   string
	description  string
	lastModified time.Time
	revisionID   string
	updateStatus string // Successful, InProgress
}

type alias struct {
	name, version, description, revisionID string
}

var (
	functionNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	aliasNameRE    = regexp.MustCompile(`^(?:[A-Za-z0-9_-]*[A-Za-z_-][A-Za-z0-9_-]*)$`)
)

// lambdaOp names a Lambda REST request by its operation, for faults and counters.
func lambdaOp(req *http.Request) string {
	parts := strings.Split(strings.Trim(strings.TrimPrefix(req.URL.Path, lambdaPrefix), "/"), "/")
	m := req.Method
	switch {
	case len(parts) == 1 && parts[0] == "functions":
		if m == http.MethodPost {
			return "CreateFunction"
		}
		return "ListFunctions"
	case len(parts) == 2:
		return "GetFunction"
	case len(parts) == 3 && parts[2] == "code":
		return "UpdateFunctionCode"
	case len(parts) == 3 && parts[2] == "configuration":
		return "GetFunctionConfiguration"
	case len(parts) == 3 && parts[2] == "versions":
		if m == http.MethodPost {
			return "PublishVersion"
		}
		return "ListVersionsByFunction"
	case len(parts) == 3 && parts[2] == "aliases":
		if m == http.MethodPost {
			return "CreateAlias"
		}
		return "ListAliases"
	case len(parts) == 4 && parts[2] == "aliases":
		if m == http.MethodPut {
			return "UpdateAlias"
		}
		return "GetAlias"
	}
	return "Unknown"
}

func (s *Server) functionARN(name string) string {
	return "arn:aws:lambda:" + s.region + ":" + s.account + ":function:" + name
}

// splitFunction takes a name, a partial (name:qualifier) or full ARN.
func splitFunction(ref string) (name, qualifier string) {
	if strings.HasPrefix(ref, "arn:") {
		_, ref, _ = strings.Cut(ref, ":function:")
	} else if _, rest, ok := strings.Cut(ref, ":function:"); ok {
		ref = rest // account:function:name
	}
	name, qualifier, _ = strings.Cut(ref, ":")
	return name, qualifier
}

func lambdaNotFound(what string) *apiError {
	return newError(http.StatusNotFound, "ResourceNotFoundException", "%s", what)
}

func lambdaInvalid(format string, args ...any) *apiError {
	return newError(http.StatusBadRequest, "InvalidParameterValueException", format, args...)
}

func (s *Server) serveLambda(w http.ResponseWriter, req *http.Request) {
	op := lambdaOp(req)
	parts := strings.Split(strings.Trim(strings.TrimPrefix(req.URL.Path, lambdaPrefix), "/"), "/")
	body, err := io.ReadAll(io.LimitReader(req.Body, 8<<20))
	if err != nil {
		writeRESTError(w, lambdaInvalid("could not read the request body"))
		return
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	var fn string
	if len(parts) >= 2 {
		fn = parts[1]
	}
	q := req.URL.Query()
	var (
		out    any
		status = http.StatusOK
		aerr   *apiError
	)
	s.mu.Lock()
	s.settleUpdates(s.clock.Now())
	switch op {
	case "CreateFunction":
		out, aerr = s.createFunction(body)
		status = http.StatusCreated
	case "ListFunctions":
		out, aerr = s.listFunctions(q.Get("Marker"), q.Get("MaxItems"))
	case "GetFunction":
		out, aerr = s.getFunction(fn, q.Get("Qualifier"), true)
	case "GetFunctionConfiguration":
		out, aerr = s.getFunction(fn, q.Get("Qualifier"), false)
	case "UpdateFunctionCode":
		out, aerr = s.updateFunctionCode(req.Context(), fn, body)
	case "PublishVersion":
		out, aerr = s.publishVersion(fn, body)
		status = http.StatusCreated
	case "ListVersionsByFunction":
		out, aerr = s.listVersions(fn)
	case "CreateAlias":
		out, aerr = s.createAlias(fn, body)
		status = http.StatusCreated
	case "ListAliases":
		out, aerr = s.listAliases(fn, q.Get("FunctionVersion"))
	case "GetAlias":
		out, aerr = s.getAlias(fn, parts[3])
	case "UpdateAlias":
		out, aerr = s.updateAlias(fn, parts[3], body)
	default:
		aerr = newError(http.StatusBadRequest, "InvalidParameterValueException", "the local runtime does not implement %s %s", req.Method, req.URL.Path)
	}
	s.mu.Unlock()
	if aerr != nil {
		writeRESTError(w, aerr)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(out)
}

// findFunction resolves name (s.mu held).
func (s *Server) findFunction(ref string) (*function, string, *apiError) {
	name, qual := splitFunction(ref)
	f, ok := s.functions[name]
	if !ok {
		return nil, qual, lambdaNotFound("Function not found: " + s.functionARN(name))
	}
	return f, qual, nil
}

func lambdaTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000-0700") }

func newRevision() string { return newUUID() }

func (s *Server) resolveLambdaImage(ctx context.Context, image string) string {
	if imageDigest(image) != "" {
		return image
	}
	if s.opts.ResolveImage == nil {
		return ""
	}
	d, err := s.opts.ResolveImage(ctx, image)
	if err != nil {
		return ""
	}
	repo := image
	if i := strings.LastIndex(image, ":"); i > strings.LastIndex(image, "/") {
		repo = image[:i]
	}
	return repo + "@" + d
}

func codeSha(resolved, image string) string {
	if d := imageDigest(resolved); strings.HasPrefix(d, "sha256:") {
		return strings.TrimPrefix(d, "sha256:")
	}
	sum := sha256.Sum256([]byte(image))
	return hex.EncodeToString(sum[:])
}

type functionIn struct {
	FunctionName string `json:"FunctionName"`
	Role         string `json:"Role"`
	PackageType  string `json:"PackageType"`
	Code         struct {
		ImageURI string `json:"ImageUri"`
		ZipFile  []byte `json:"ZipFile"`
	} `json:"Code"`
	Description   string                                 `json:"Description"`
	Timeout       *int                                   `json:"Timeout"`
	MemorySize    *int                                   `json:"MemorySize"`
	Publish       bool                                   `json:"Publish"`
	Architectures []string                               `json:"Architectures"`
	Environment   *struct{ Variables map[string]string } `json:"Environment"`
}

func (s *Server) createFunction(body []byte) (any, *apiError) {
	var in functionIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	if !functionNameRE.MatchString(in.FunctionName) {
		return nil, lambdaInvalid("1 validation error detected: Value '%s' at 'functionName' failed to satisfy constraint: Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_]+)(:(\\$LATEST|[a-zA-Z0-9-_]+))?", in.FunctionName)
	}
	if in.PackageType != "Image" || in.Code.ImageURI == "" {
		return nil, lambdaInvalid("the local Lambda runs functions packaged as images only: set PackageType Image and Code.ImageUri")
	}
	if in.Role == "" {
		return nil, lambdaInvalid("The role defined for the function cannot be assumed by Lambda.")
	}
	if _, dup := s.functions[in.FunctionName]; dup {
		return nil, newError(http.StatusConflict, "ResourceConflictException", "Function already exist: %s", in.FunctionName)
	}
	timeout, memory := 3, 128
	if in.Timeout != nil {
		timeout = *in.Timeout
	}
	if in.MemorySize != nil {
		memory = *in.MemorySize
	}
	arch := in.Architectures
	if len(arch) == 0 {
		arch = []string{"x86_64"}
	}
	cfg := map[string]any{
		"FunctionName": in.FunctionName, "Role": in.Role, "PackageType": "Image", "Description": in.Description,
		"Timeout": timeout, "MemorySize": memory, "Architectures": arch, "CodeSize": 0,
		"TracingConfig": map[string]any{"Mode": "PassThrough"}, "EphemeralStorage": map[string]any{"Size": 512},
		"LoggingConfig": map[string]any{"LogFormat": "Text", "LogGroup": "/aws/lambda/" + in.FunctionName},
		"SnapStart":     map[string]any{"ApplyOn": "None", "OptimizationStatus": "Off"},
	}
	if in.Environment != nil {
		cfg["Environment"] = map[string]any{"Variables": in.Environment.Variables}
	}
	f := &function{name: in.FunctionName, aliases: map[string]*alias{}}
	resolved := s.resolveLambdaImage(s.ctx, in.Code.ImageURI)
	f.latest = &version{number: "$LATEST", config: cfg, imageURI: in.Code.ImageURI, resolved: resolved, codeSha256: codeSha(resolved, in.Code.ImageURI),
		description: in.Description, lastModified: s.clock.Now(), revisionID: newRevision(), updateStatus: "Successful"}
	s.functions[f.name] = f
	out := s.configOut(f, f.latest)
	if in.Publish {
		// Lambda answers with the published version's number but the unqualified ARN.
		out = s.configOut(f, s.publish(f, ""))
		out["FunctionArn"] = s.functionARN(f.name)
	}
	return out, nil
}

func (s *Server) configOut(f *function, v *version) map[string]any {
	out := map[string]any{}
	for k, val := range v.config {
		out[k] = val
	}
	arn := s.functionARN(f.name) + ":" + v.number
	if v.number == "$LATEST" {
		arn = s.functionARN(f.name)
	}
	out["FunctionArn"], out["Version"], out["CodeSha256"] = arn, v.number, v.codeSha256
	out["LastModified"], out["RevisionId"], out["Description"] = lambdaTime(v.lastModified), v.revisionID, v.description
	out["State"], out["LastUpdateStatus"] = "Active", v.updateStatus
	return out
}

func (s *Server) getFunction(ref, qualifier string, withCode bool) (any, *apiError) {
	f, q, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	if qualifier == "" {
		qualifier = q
	}
	v, e := s.qualified(f, qualifier)
	if e != nil {
		return nil, e
	}
	if !withCode {
		return s.configOut(f, v), nil
	}
	code := map[string]any{"RepositoryType": "ECR", "ImageUri": v.imageURI}
	if v.resolved != "" {
		code["ResolvedImageUri"] = v.resolved
	}
	return map[string]any{"Configuration": s.configOut(f, v), "Code": code, "Tags": map[string]string{}}, nil
}

// qualified resolves a version number, an alias or $LATEST (s.mu held).
func (s *Server) qualified(f *function, qualifier string) (*version, *apiError) {
	switch {
	case qualifier == "" || qualifier == "$LATEST":
		return f.latest, nil
	case isDigits(qualifier):
		n, _ := strconv.Atoi(qualifier)
		if n < 1 || n > len(f.versions) {
			return nil, lambdaNotFound("Function not found: " + s.functionARN(f.name) + ":" + qualifier)
		}
		return f.versions[n-1], nil
	}
	a, ok := f.aliases[qualifier]
	if !ok {
		return nil, lambdaNotFound("Function not found: " + s.functionARN(f.name) + ":" + qualifier)
	}
	return s.qualified(f, a.version)
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func (s *Server) updateFunctionCode(ctx context.Context, ref string, body []byte) (any, *apiError) {
	var in struct {
		ImageURI string `json:"ImageUri"`
		ZipFile  []byte `json:"ZipFile"`
		Publish  bool   `json:"Publish"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f, _, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	if in.ImageURI == "" {
		return nil, lambdaInvalid("Please provide ImageUri when updating a function with packageType Image.")
	}
	if f.latest.updateStatus == "InProgress" {
		return nil, s.updateConflict(f)
	}
	l := f.latest
	resolved := s.resolveLambdaImage(ctx, in.ImageURI)
	l.imageURI, l.resolved, l.codeSha256 = in.ImageURI, resolved, codeSha(resolved, in.ImageURI)
	l.lastModified, l.revisionID, l.updateStatus = s.clock.Now(), newRevision(), "InProgress"
	f.updateDue = s.clock.Now().Add(s.opts.UpdateDelay)
	if in.Publish {
		// Lambda publishes once the update is done; locally at once, as the version's code.
		v := s.publish(f, "")
		return s.configOut(f, v), nil
	}
	return s.configOut(f, l), nil
}

func (s *Server) updateConflict(f *function) *apiError {
	return newError(http.StatusConflict, "ResourceConflictException",
		"The operation cannot be performed at this time. An update is in progress for resource: %s", s.functionARN(f.name))
}

// settleUpdates finishes the Lambda updates that are due (s.mu held).
func (s *Server) settleUpdates(now time.Time) {
	for _, f := range s.functions {
		if f.latest.updateStatus == "InProgress" && !now.Before(f.updateDue) {
			f.latest.updateStatus = "Successful"
		}
	}
}

// publish publishes $LATEST, or returns the last version when $LATEST's code and
// configuration have not changed since it, as Lambda does (s.mu held).
func (s *Server) publish(f *function, description string) *version {
	l := f.latest
	if n := len(f.versions); n > 0 {
		last := f.versions[n-1]
		if last.codeSha256 == l.codeSha256 && last.imageURI == l.imageURI {
			return last
		}
	}
	v := *l
	v.number = strconv.Itoa(len(f.versions) + 1)
	v.updateStatus = "Successful"
	v.revisionID = newRevision()
	if description != "" {
		v.description = description
	}
	f.versions = append(f.versions, &v)
	return &v
}

func (s *Server) publishVersion(ref string, body []byte) (any, *apiError) {
	var in struct {
		Description string `json:"Description"`
		CodeSha256  string `json:"CodeSha256"`
		RevisionID  string `json:"RevisionId"`
	}
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f, _, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	if f.latest.updateStatus == "InProgress" {
		return nil, s.updateConflict(f)
	}
	if in.CodeSha256 != "" && in.CodeSha256 != f.latest.codeSha256 {
		return nil, lambdaInvalid("CodeSHA256 (%s) is different from current CodeSHA256 in $LATEST (%s). Please try again with the CodeSHA256 in $LATEST.", in.CodeSha256, f.latest.codeSha256)
	}
	if in.RevisionID != "" && in.RevisionID != f.latest.revisionID {
		return nil, newError(http.StatusPreconditionFailed, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	}
	return s.configOut(f, s.publish(f, in.Description)), nil
}

func (s *Server) listVersions(ref string) (any, *apiError) {
	f, _, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	out := []any{s.configOut(f, f.latest)}
	for _, v := range f.versions {
		out = append(out, s.configOut(f, v))
	}
	return map[string]any{"Versions": out}, nil
}

func (s *Server) listFunctions(marker, maxItems string) (any, *apiError) {
	names := sortedKeys(s.functions)
	limit := 50
	if maxItems != "" {
		n, err := strconv.Atoi(maxItems)
		if err != nil || n < 1 || n > 10000 {
			return nil, lambdaInvalid("1 validation error detected: Value '%s' at 'maxItems' failed to satisfy constraint: Member must have value between 1 and 10000", maxItems)
		}
		limit = n
	}
	start := 0
	if marker != "" {
		raw, err := base64.RawURLEncoding.DecodeString(marker)
		if err != nil {
			return nil, lambdaInvalid("Invalid marker")
		}
		start = sort.SearchStrings(names, string(raw))
	}
	end := min(start+limit, len(names))
	fns := []any{}
	for _, n := range names[start:end] {
		fns = append(fns, s.configOut(s.functions[n], s.functions[n].latest))
	}
	out := map[string]any{"Functions": fns}
	if end < len(names) {
		out["NextMarker"] = base64.RawURLEncoding.EncodeToString([]byte(names[end]))
	}
	return out, nil
}

func (s *Server) aliasOut(f *function, a *alias) map[string]any {
	return map[string]any{"AliasArn": s.functionARN(f.name) + ":" + a.name, "Name": a.name, "FunctionVersion": a.version,
		"Description": a.description, "RevisionId": a.revisionID}
}

type aliasIn struct {
	Name            string  `json:"Name"`
	FunctionVersion string  `json:"FunctionVersion"`
	Description     *string `json:"Description"`
	RevisionID      string  `json:"RevisionId"`
}

func (s *Server) aliasTarget(f *function, v string) *apiError {
	if v == "$LATEST" {
		return nil
	}
	if n, err := strconv.Atoi(v); err != nil || n < 1 || n > len(f.versions) {
		return lambdaNotFound("Function not found: " + s.functionARN(f.name) + ":" + v)
	}
	return nil
}

func (s *Server) createAlias(ref string, body []byte) (any, *apiError) {
	var in aliasIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f, _, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	if !aliasNameRE.MatchString(in.Name) || len(in.Name) > 128 {
		return nil, lambdaInvalid("1 validation error detected: Value '%s' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)", in.Name)
	}
	if _, dup := f.aliases[in.Name]; dup {
		return nil, newError(http.StatusConflict, "ResourceConflictException", "Alias already exists: %s:%s", s.functionARN(f.name), in.Name)
	}
	if e := s.aliasTarget(f, in.FunctionVersion); e != nil {
		return nil, e
	}
	a := &alias{name: in.Name, version: in.FunctionVersion, revisionID: newRevision()}
	if in.Description != nil {
		a.description = *in.Description
	}
	f.aliases[a.name] = a
	return s.aliasOut(f, a), nil
}

func (s *Server) findAlias(f *function, name string) (*alias, *apiError) {
	a, ok := f.aliases[name]
	if !ok {
		return nil, lambdaNotFound("Cannot find alias arn: " + s.functionARN(f.name) + ":" + name)
	}
	return a, nil
}

func (s *Server) getAlias(ref, name string) (any, *apiError) {
	f, _, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	a, e := s.findAlias(f, name)
	if e != nil {
		return nil, e
	}
	return s.aliasOut(f, a), nil
}

func (s *Server) updateAlias(ref, name string, body []byte) (any, *apiError) {
	var in aliasIn
	if e := decode(body, &in); e != nil {
		return nil, e
	}
	f, _, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	a, e := s.findAlias(f, name)
	if e != nil {
		return nil, e
	}
	if in.RevisionID != "" && in.RevisionID != a.revisionID {
		return nil, newError(http.StatusPreconditionFailed, "PreconditionFailedException", "The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id")
	}
	if in.FunctionVersion != "" {
		if e := s.aliasTarget(f, in.FunctionVersion); e != nil {
			return nil, e
		}
		a.version = in.FunctionVersion
	}
	if in.Description != nil {
		a.description = *in.Description
	}
	a.revisionID = newRevision()
	return s.aliasOut(f, a), nil
}

func (s *Server) listAliases(ref, functionVersion string) (any, *apiError) {
	f, _, e := s.findFunction(ref)
	if e != nil {
		return nil, e
	}
	out := []any{}
	for _, n := range sortedKeys(f.aliases) {
		if functionVersion == "" || f.aliases[n].version == functionVersion {
			out = append(out, s.aliasOut(f, f.aliases[n]))
		}
	}
	return map[string]any{"Aliases": out}, nil
}

// Function is what a function's alias runs (for demos and tests).
type Function struct {
	Name, Alias, Version, Image string
}

// Functions lists each alias of each function and the image its version runs.
func (s *Server) Functions() []Function {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Function
	for _, n := range sortedKeys(s.functions) {
		f := s.functions[n]
		for _, an := range sortedKeys(f.aliases) {
			a := f.aliases[an]
			v, e := s.qualified(f, a.version)
			if e != nil {
				continue
			}
			img := v.resolved
			if img == "" {
				img = v.imageURI
			}
			out = append(out, Function{Name: n, Alias: an, Version: a.version, Image: img})
		}
	}
	return out
}
