package promoter_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"

	"github.com/regflow/regflow/shared/ecr"
)

// TestTargetRepositoryOnlyTakesPromotions: the promoter creates staging's repository with a
// policy letting only staging's promotion role push, and keeps it without rewriting it on
// every promotion.
func TestTargetRepositoryOnlyTakesPromotions(t *testing.T) {
	st, _ := start(t)
	ctx := context.Background()
	first, _ := pushSigned(t, st, "dev", "shop/web", sha1, 41)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", first, sha1))

	out, err := st.ECRClient("staging").GetRepositoryPolicy(ctx, &ecrsdk.GetRepositoryPolicyInput{RepositoryName: aws.String("shop/web")})
	if err != nil {
		t.Fatalf("staging's repository has no policy after a promotion: %v", err)
	}
	role := st.Config.Environments["staging"].PromotionRole
	text := aws.ToString(out.PolicyText)
	for _, want := range []string{ecr.PolicySidAllowPush, ecr.PolicySidDenyOtherPush, `"ArnNotEquals":{"aws:PrincipalArn":"` + role + `"}`, "ecr:PutImage", "ecr:CompleteLayerUpload"} {
		if !strings.Contains(text, want) {
			t.Fatalf("staging's repository policy lacks %s:\n%s", want, text)
		}
	}
	sets := st.ECR["staging"].RequestCounts()["SetRepositoryPolicy"]
	second, _ := pushSigned(t, st, "dev", "shop/web", sha2, 42)
	publishApproved(t, st, approve(t, st, "staging", "shop/web", second, sha2))
	if n := st.ECR["staging"].RequestCounts()["SetRepositoryPolicy"]; n != sets {
		t.Fatalf("a second promotion rewrote a policy already right (%d → %d calls)", sets, n)
	}
}
