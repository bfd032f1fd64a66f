package localecr

import (
	"encoding/json"
	"strings"
)

// Repository policies: stored and returned as ECR does, validated for shape. The local ECR
// has no IAM principals, so it does not evaluate them; regflow's tests read them back.

// maxPolicyBytes is ECR's limit on a repository policy's text.
const maxPolicyBytes = 10240

type policyOut struct {
	RegistryID     string `json:"registryId"`
	RepositoryName string `json:"repositoryName"`
	PolicyText     string `json:"policyText"`
}

func (s *Server) opSetRepositoryPolicy(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
		PolicyText     string `json:"policyText"`
		Force          bool   `json:"force"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if !validPolicy(in.PolicyText) {
		return nil, invalidParameter("Invalid parameter at 'PolicyText' failed to satisfy constraint: 'Invalid repository policy provided'")
	}
	r.policy = in.PolicyText
	return policyOut{RegistryID: s.account, RepositoryName: r.name, PolicyText: r.policy}, nil
}

func (s *Server) opGetRepositoryPolicy(body []byte) (any, *apiError) {
	var in struct {
		RegistryID     string `json:"registryId"`
		RepositoryName string `json:"repositoryName"`
	}
	if err := decode(body, &in); err != nil {
		return nil, err
	}
	if err := s.checkRegistry(in.RegistryID, in.RepositoryName); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r, err := s.repo(in.RepositoryName)
	if err != nil {
		return nil, err
	}
	if r.policy == "" {
		return nil, newAPIError("RepositoryPolicyNotFoundException",
			"Repository policy does not exist for the repository with name '%s' in the registry with id '%s'", r.name, s.account)
	}
	return policyOut{RegistryID: s.account, RepositoryName: r.name, PolicyText: r.policy}, nil
}

// validPolicy checks the shape ECR requires: a JSON object of at most 10 KiB with one or
// more statements, each with an Effect of Allow or Deny, a principal and an action.
func validPolicy(text string) bool {
	if len(text) == 0 || len(text) > maxPolicyBytes {
		return false
	}
	var doc struct {
		Statement json.RawMessage `json:"Statement"`
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil || len(doc.Statement) == 0 {
		return false
	}
	var statements []map[string]json.RawMessage
	if strings.HasPrefix(strings.TrimSpace(string(doc.Statement)), "{") {
		var one map[string]json.RawMessage
		if json.Unmarshal(doc.Statement, &one) != nil {
			return false
		}
		statements = append(statements, one)
	} else if json.Unmarshal(doc.Statement, &statements) != nil || len(statements) == 0 {
		return false
	}
	for _, st := range statements {
		var effect string
		if json.Unmarshal(st["Effect"], &effect) != nil || (effect != "Allow" && effect != "Deny") {
			return false
		}
		if st["Principal"] == nil && st["NotPrincipal"] == nil {
			return false
		}
		if st["Action"] == nil && st["NotAction"] == nil {
			return false
		}
	}
	return true
}
