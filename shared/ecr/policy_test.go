package ecr_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/ecr"
	"github.com/regflow/regflow/shared/local/localecr"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
)

const pushRole = "arn:aws:iam::123456789012:role/regflow-promotion"

// policyStatements decodes a repository policy's statements by Sid.
func policyStatements(t *testing.T, text string) map[string]map[string]any {
	t.Helper()
	var doc struct {
		Statement []map[string]any
	}
	if err := json.Unmarshal([]byte(text), &doc); err != nil {
		t.Fatalf("policy %s: %v", text, err)
	}
	out := map[string]map[string]any{}
	for _, s := range doc.Statement {
		sid, _ := s["Sid"].(string)
		out[sid] = s
	}
	return out
}

func list(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = []string{v}
	case []any:
		for _, x := range v {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	slices.Sort(out)
	return out
}

// TestEnsureRepositoryPolicy: a promotion target gets (and keeps) a repository policy
// that lets only the promotion role push, against moto and the local ECR; statements
// someone else added are kept, and a second call changes nothing.
func TestEnsureRepositoryPolicy(t *testing.T) {
	if testing.Short() {
		t.Skip("needs moto_server")
	}
	moto := testenv.MotoServer(t)
	local, err := localecr.New(localecr.Options{Account: "123456789012"})
	if err != nil {
		t.Fatal(err)
	}
	if err := local.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = local.Close() })
	for name, endpoint := range map[string]string{"moto": moto.Endpoint, "local": local.URL()} {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			api := ecrsdk.NewFromConfig(testenv.AWSConfig(endpoint))
			c := ecr.New(api, "")
			s := regflow.RepositorySettings{Mutability: regflow.WantImmutable(nil), PushRole: pushRole}
			if created, err := c.EnsureRepository(ctx, "policy/new", s); err != nil || !created {
				t.Fatalf("EnsureRepository = %v, %v", created, err)
			}
			out, err := api.GetRepositoryPolicy(ctx, &ecrsdk.GetRepositoryPolicyInput{RepositoryName: aws.String("policy/new")})
			if err != nil {
				t.Fatalf("the new repository has no policy: %v", err)
			}
			st := policyStatements(t, aws.ToString(out.PolicyText))
			want := []string{"ecr:CompleteLayerUpload", "ecr:InitiateLayerUpload", "ecr:PutImage", "ecr:UploadLayerPart"}
			allow, deny := st[ecr.PolicySidAllowPush], st[ecr.PolicySidDenyOtherPush]
			if allow == nil || allow["Effect"] != "Allow" || !slices.Equal(list(allow["Action"]), want) ||
				!slices.Equal(list(allow["Principal"].(map[string]any)["AWS"]), []string{pushRole}) {
				t.Fatalf("allow statement = %v", allow)
			}
			cond, _ := deny["Condition"].(map[string]any)
			notRole, _ := cond["ArnNotEquals"].(map[string]any)
			if deny == nil || deny["Effect"] != "Deny" || deny["Principal"] != "*" || !slices.Equal(list(deny["Action"]), want) ||
				!slices.Equal(list(notRole["aws:PrincipalArn"]), []string{pushRole}) {
				t.Fatalf("deny statement = %v: every other principal must be denied the push actions", deny)
			}

			// A repository that already exists, with a statement of someone else's: that
			// statement stays, regflow's are added once.
			if _, err := api.CreateRepository(ctx, &ecrsdk.CreateRepositoryInput{RepositoryName: aws.String("policy/old")}); err != nil {
				t.Fatal(err)
			}
			pull := `{"Version":"2012-10-17","Statement":[{"Sid":"EcsPulls","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:root"},"Action":["ecr:BatchGetImage"]}]}`
			if _, err := api.SetRepositoryPolicy(ctx, &ecrsdk.SetRepositoryPolicyInput{RepositoryName: aws.String("policy/old"), PolicyText: aws.String(pull)}); err != nil {
				t.Fatal(err)
			}
			for range 2 {
				if created, err := c.EnsureRepository(ctx, "policy/old", s); err != nil || created {
					t.Fatalf("EnsureRepository of an existing repository = %v, %v", created, err)
				}
			}
			out, err = api.GetRepositoryPolicy(ctx, &ecrsdk.GetRepositoryPolicyInput{RepositoryName: aws.String("policy/old")})
			if err != nil {
				t.Fatal(err)
			}
			st = policyStatements(t, aws.ToString(out.PolicyText))
			if len(st) != 3 || st["EcsPulls"] == nil || st[ecr.PolicySidAllowPush] == nil || st[ecr.PolicySidDenyOtherPush] == nil {
				t.Fatalf("policy after EnsureRepository = %s", aws.ToString(out.PolicyText))
			}
		})
	}
	// Idempotent: a repository whose policy already says it is not written again.
	before := local.RequestCounts()["SetRepositoryPolicy"]
	c := ecr.New(ecrsdk.NewFromConfig(testenv.AWSConfig(local.URL())), "")
	if _, err := c.EnsureRepository(context.Background(), "policy/new", regflow.RepositorySettings{Mutability: regflow.WantImmutable(nil), PushRole: pushRole}); err != nil {
		t.Fatal(err)
	}
	if after := local.RequestCounts()["SetRepositoryPolicy"]; after != before {
		t.Fatalf("SetRepositoryPolicy called %d more times on a repository already right", after-before)
	}
}
