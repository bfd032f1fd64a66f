package localecr

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an ECR control-plane error: HTTP status plus the `__type` code and
// message that ECR's JSON 1.1 protocol carries and the AWS SDKs map to typed errors.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newAPIError(code, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, message: fmt.Sprintf(format, args...)}
}

func invalidParameter(format string, args ...any) *apiError {
	return newAPIError("InvalidParameterException", format, args...)
}

func (s *Server) repoNotFound(name string) *apiError {
	return newAPIError("RepositoryNotFoundException",
		"The repository with name '%s' does not exist in the registry with id '%s'", name, s.account)
}

func (s *Server) imageNotFound(repo string, id imageID) *apiError {
	return newAPIError("ImageNotFoundException",
		"The image with imageId {imageDigest:'%s', imageTag:'%s'} does not exist within the repository with name '%s' in the registry with id '%s'",
		orNull(id.Digest), orNull(id.Tag), repo, s.account)
}

func orNull(s string) string {
	if s == "" {
		return "null"
	}
	return s
}

func writeAPIError(w http.ResponseWriter, e *apiError) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]string{"__type": e.code, "message": e.message})
}

// ociError is an error of the OCI Distribution API, written as the spec's envelope
// {"errors":[{"code","message","detail"}]}.
type ociError struct {
	status  int
	code    string
	message string
	detail  map[string]any
}

// with adds a detail field (what the request named: digest, upload id, size).
func (e *ociError) with(key string, v any) *ociError {
	if e.detail == nil {
		e.detail = map[string]any{}
	}
	e.detail[key] = v
	return e
}

func (e *ociError) Error() string { return e.code + ": " + e.message }

func newOCIError(status int, code, format string, args ...any) *ociError {
	return &ociError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func writeOCIError(w http.ResponseWriter, e *ociError) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	type item struct {
		Code    string         `json:"code"`
		Message string         `json:"message"`
		Detail  map[string]any `json:"detail"`
	}
	detail := e.detail
	if detail == nil {
		detail = map[string]any{}
	}
	_ = json.NewEncoder(w).Encode(struct {
		Errors []item `json:"errors"`
	}{[]item{{e.code, e.message, detail}}})
}
