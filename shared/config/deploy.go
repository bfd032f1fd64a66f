package config

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/regflow/regflow/shared/glob"
)

// Deploy says how a release reaches what runs in an environment. Promotion copies the
// digest, then hands it over here; a rollback hands over the previous digest, nothing copied.
type Deploy struct {
	// Parameter is the SSM parameter holding the environment's release of a repository, as
	// JSON; "{repository}" is replaced. Its version history is the release history.
	// Default DefaultParameter.
	Parameter string `json:"parameter"`
	// NoParameter switches the SSM parameter off.
	NoParameter bool `json:"noParameter"`
	// Role is what the promoter assumes in the environment's account to deploy; default the
	// environment stack's regflow-deployment role.
	Role string `json:"role"`
	// Targets are the services and functions that run the repositories' images.
	Targets []DeployTarget `json:"targets"`
}

// DefaultParameter is the SSM parameter name template when none is configured.
const DefaultParameter = "/regflow/{repository}"

// DeployTarget is one runtime of the images of the repositories its glob matches.
type DeployTarget struct {
	Repositories string        `json:"repositories"`
	ECS          *ECSTarget    `json:"ecs"`
	Lambda       *LambdaTarget `json:"lambda"`
}

// ECSTarget is a container of an ECS service's task definition.
type ECSTarget struct {
	Cluster   string `json:"cluster"`
	Service   string `json:"service"`
	Container string `json:"container"`
}

// LambdaTarget is a Lambda function packaged as an image, reached through an alias.
type LambdaTarget struct {
	Function string `json:"function"`
	Alias    string `json:"alias"`
}

// ParameterName is the SSM parameter of repo's release, or "" when switched off.
func (d Deploy) ParameterName(repo string) string {
	if d.NoParameter {
		return ""
	}
	p := d.Parameter
	if p == "" {
		p = DefaultParameter
	}
	return strings.ReplaceAll(p, "{repository}", repo)
}

// TargetsFor are the targets that run repo's images.
func (d Deploy) TargetsFor(repo string) []DeployTarget {
	var out []DeployTarget
	for _, t := range d.Targets {
		if glob.Match(t.Repositories, repo) {
			out = append(out, t)
		}
	}
	return out
}

// The names AWS accepts (ECS: up to 255 letters, digits, hyphens and underscores; Lambda:
// a name, partial or full ARN; aliases not all digits; SSM: letters, digits and _.-/).
var (
	ecsNameRE       = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)
	lambdaFunction  = regexp.MustCompile(`^(arn:aws[a-zA-Z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:)?[A-Za-z0-9_-]{1,64}$`)
	lambdaAliasRE   = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
	allDigitsRE     = regexp.MustCompile(`^[0-9]+$`)
	ssmParameterRE  = regexp.MustCompile(`^/[A-Za-z0-9_.\-/{}]+$`)
	repositoryValue = "{repository}"
)

// validateDeploy checks one environment's deploy section; bad reports each problem.
func validateDeploy(f string, env Environment, isSource bool, bad func(field, rule string, args ...any)) {
	d := env.Deploy
	f += ".deploy"
	if isSource && (len(d.Targets) > 0 || d.Parameter != "" || d.Role != "") {
		bad(f, "the source environment receives no promotion (CI deploys it); move its targets to the next environment")
		return
	}
	if d.Parameter != "" {
		switch {
		case d.NoParameter:
			bad(f+".parameter", "is set while noParameter switches the parameter off; keep one")
		case !ssmParameterRE.MatchString(d.Parameter) || strings.Contains(d.Parameter, "//") || len(d.Parameter) > 1011:
			bad(f+".parameter", "%q must be an SSM parameter path such as /regflow/{repository} (letters, digits, _.-/)", d.Parameter)
		case !strings.Contains(d.Parameter, repositoryValue):
			bad(f+".parameter", "%q must contain {repository}: each repository has its own release", d.Parameter)
		case strings.HasPrefix(strings.ToLower(d.Parameter), "/aws") || strings.HasPrefix(strings.ToLower(d.Parameter), "/ssm"):
			bad(f+".parameter", "%q: SSM reserves names beginning with aws or ssm", d.Parameter)
		}
	}
	if d.Role != "" {
		m := roleRE.FindStringSubmatch(d.Role)
		switch {
		case m == nil:
			bad(f+".role", "%q must be an IAM role ARN such as arn:aws:iam::222222222222:role/regflow-deployment", d.Role)
		case m[1] != env.Account:
			bad(f+".role", "role is in account %s but the environment is account %s", m[1], env.Account)
		}
	}
	seen := map[string]int{}
	for i, t := range d.Targets {
		tf := fmt.Sprintf("%s.targets[%d]", f, i)
		if t.Repositories == "" {
			bad(tf+".repositories", "is required: a glob of the repositories this target runs, such as shop/web")
		} else if err := glob.Valid(t.Repositories); err != nil {
			bad(tf+".repositories", "%q must be a glob such as shop/*: %v", t.Repositories, err)
		}
		switch {
		case t.ECS == nil && t.Lambda == nil:
			bad(tf, "needs one of ecs or lambda")
		case t.ECS != nil && t.Lambda != nil:
			bad(tf, "has both ecs and lambda; one target is one runtime")
		case t.ECS != nil:
			for field, v := range map[string]string{"cluster": t.ECS.Cluster, "service": t.ECS.Service, "container": t.ECS.Container} {
				if !ecsNameRE.MatchString(v) {
					bad(tf+".ecs."+field, "%q must be an ECS name: 1 to 255 letters, digits, hyphens and underscores", v)
				}
			}
			key := "ecs " + t.ECS.Cluster + "/" + t.ECS.Service + "/" + t.ECS.Container
			if j, dup := seen[key]; dup {
				bad(tf+".ecs", "the same container as targets[%d]: one container runs one repository's image", j)
			}
			seen[key] = i
		case t.Lambda != nil:
			if !lambdaFunction.MatchString(t.Lambda.Function) {
				bad(tf+".lambda.function", "%q must be a Lambda function name (1 to 64 letters, digits, hyphens, underscores) or its ARN", t.Lambda.Function)
			}
			if !lambdaAliasRE.MatchString(t.Lambda.Alias) || allDigitsRE.MatchString(t.Lambda.Alias) {
				bad(tf+".lambda.alias", "%q must be an alias name (letters, digits, hyphens, underscores; not only digits): regflow moves the alias, never $LATEST", t.Lambda.Alias)
			}
			key := "lambda " + t.Lambda.Function + ":" + t.Lambda.Alias
			if j, dup := seen[key]; dup {
				bad(tf+".lambda", "the same alias as targets[%d]", j)
			}
			seen[key] = i
		}
	}
}
