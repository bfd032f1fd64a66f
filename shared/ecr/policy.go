package ecr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"

	"github.com/aws/aws-sdk-go-v2/aws"
	ecrsdk "github.com/aws/aws-sdk-go-v2/service/ecr"
	"github.com/aws/aws-sdk-go-v2/service/ecr/types"
)

// Statement ids of the repository policy statements regflow owns on a promotion target;
// statements with other ids are someone else's and are kept as they are.
const (
	PolicySidAllowPush     = "RegflowPromotionRolePushes"
	PolicySidDenyOtherPush = "RegflowNobodyElsePushes"
)

// PushActions are the ECR actions that write an image into a repository.
func PushActions() []string {
	return []string{"ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload"}
}

// PushPolicyStatements are regflow's statements for a repository only role may push to:
// an Allow for the role, and a Deny for every other principal. The Deny is what makes it
// hold within the account too, where an identity policy alone would let a principal push;
// aws:PrincipalArn is the role's ARN for each of its sessions.
func PushPolicyStatements(role string) []map[string]any {
	return []map[string]any{
		{"Sid": PolicySidAllowPush, "Effect": "Allow", "Principal": map[string]any{"AWS": role}, "Action": PushActions()},
		{"Sid": PolicySidDenyOtherPush, "Effect": "Deny", "Principal": "*", "Action": PushActions(),
			"Condition": map[string]any{"ArnNotEquals": map[string]any{"aws:PrincipalArn": role}}},
	}
}

// ensurePushPolicy makes the repository policy carry regflow's push statements for role,
// keeping any other statements; it writes only when they are missing or differ. An empty
// role changes nothing. fresh skips the read of a repository just created.
func (c *Client) ensurePushPolicy(ctx context.Context, repo, role string, fresh bool) error {
	if role == "" {
		return nil
	}
	doc := map[string]any{"Version": "2012-10-17"}
	var others []any
	if !fresh {
		out, err := c.api.GetRepositoryPolicy(ctx, &ecrsdk.GetRepositoryPolicyInput{RegistryId: c.registryID, RepositoryName: aws.String(repo)})
		var none *types.RepositoryPolicyNotFoundException
		switch {
		case errors.As(err, &none):
		case err != nil:
			return fmt.Errorf("read repository policy of %s: %w", repo, translate(err, repo, ""))
		default:
			if err := json.Unmarshal([]byte(aws.ToString(out.PolicyText)), &doc); err != nil {
				return fmt.Errorf("repository policy of %s is not JSON: %w", repo, err)
			}
			var mine []any
			for _, st := range statements(doc["Statement"]) {
				if m, ok := st.(map[string]any); ok && (m["Sid"] == PolicySidAllowPush || m["Sid"] == PolicySidDenyOtherPush) {
					mine = append(mine, st)
					continue
				}
				others = append(others, st)
			}
			if sameJSON(mine, PushPolicyStatements(role)) {
				return nil
			}
		}
	}
	all := others
	for _, st := range PushPolicyStatements(role) {
		all = append(all, st)
	}
	doc["Statement"] = all
	text, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode repository policy of %s: %w", repo, err)
	}
	if _, err := c.api.SetRepositoryPolicy(ctx, &ecrsdk.SetRepositoryPolicyInput{
		RegistryId: c.registryID, RepositoryName: aws.String(repo), PolicyText: aws.String(string(text)),
	}); err != nil {
		return fmt.Errorf("set repository policy of %s (only %s may push): %w", repo, role, translate(err, repo, ""))
	}
	return nil
}

// statements reads a policy's Statement, which may be one object or a list.
func statements(v any) []any {
	switch v := v.(type) {
	case []any:
		return v
	case nil:
		return nil
	}
	return []any{v}
}

// sameJSON compares two values as their JSON documents say, whatever Go types hold them.
func sameJSON(a, b any) bool {
	var x, y any
	ab, err1 := json.Marshal(a)
	bb, err2 := json.Marshal(b)
	if err1 != nil || err2 != nil || json.Unmarshal(ab, &x) != nil || json.Unmarshal(bb, &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}
