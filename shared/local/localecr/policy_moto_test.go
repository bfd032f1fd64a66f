package localecr_test

import (
	"encoding/json"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/google/go-cmp/cmp"
)

// TestRepositoryPolicyAgainstMoto: SetRepositoryPolicy and GetRepositoryPolicy give the
// same results on moto and the local ECR: the policy as set (compared as JSON), the
// missing-policy and missing-repository errors, and the refusal of a malformed policy.
func TestRepositoryPolicyAgainstMoto(t *testing.T) {
	p := newPair(t)
	ctx := ctxT(t)
	const policy = `{"Version":"2012-10-17","Statement":[{"Sid":"PushOnly","Effect":"Deny","Principal":"*",` +
		`"Action":["ecr:PutImage","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload"],` +
		`"Condition":{"ArnNotEquals":{"aws:PrincipalArn":"arn:aws:iam::123456789012:role/regflow-promotion"}}}]}`
	asJSON := func(s string) any {
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return "not JSON: " + s
		}
		return v
	}
	set := func(repo, text string) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.SetRepositoryPolicy(ctx, &ecr.SetRepositoryPolicyInput{RepositoryName: aws.String(repo), PolicyText: aws.String(text)})
			if err != nil {
				return result(nil, err, true)
			}
			return result(map[string]any{"registry": aws.ToString(out.RegistryId), "repo": aws.ToString(out.RepositoryName), "policy": asJSON(aws.ToString(out.PolicyText))}, nil, false)
		}
	}
	get := func(repo string) func(c *ecr.Client) outcome {
		return func(c *ecr.Client) outcome {
			out, err := c.GetRepositoryPolicy(ctx, &ecr.GetRepositoryPolicyInput{RepositoryName: aws.String(repo)})
			if err != nil {
				return result(nil, err, true)
			}
			return result(map[string]any{"registry": aws.ToString(out.RegistryId), "repo": aws.ToString(out.RepositoryName), "policy": asJSON(aws.ToString(out.PolicyText))}, nil, false)
		}
	}
	for _, c := range []*ecr.Client{p.moto, p.local} {
		if _, err := c.CreateRepository(ctx, &ecr.CreateRepositoryInput{RepositoryName: aws.String("policy/app")}); err != nil {
			t.Fatal(err)
		}
	}
	for _, step := range []struct {
		name string
		call func(c *ecr.Client) outcome
	}{
		{"get before any policy", get("policy/app")},
		{"get on a missing repository", get("policy/nope")},
		{"set on a missing repository", set("policy/nope", policy)},
		{"set a malformed policy", set("policy/app", `{"Statement":`)},
		{"set", set("policy/app", policy)},
		{"get", get("policy/app")},
		{"set again", set("policy/app", policy)},
	} {
		m, l := step.call(p.moto), step.call(p.local)
		if diff := cmp.Diff(m, l); diff != "" {
			t.Errorf("%s (-moto +local):\n%s", step.name, diff)
		}
	}
}
