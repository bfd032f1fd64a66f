package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestDeployTargets(t *testing.T) {
	cfg, err := Parse([]byte(minimal + `    deploy:
      targets:
        - repositories: "shop/*"
          ecs: {cluster: prod, service: web, container: app}
        - repositories: shop/api
          lambda: {function: api, alias: live}
`))
	if err != nil {
		t.Fatal(err)
	}
	d := cfg.Environments["prod"].Deploy
	if got := d.ParameterName("shop/web"); got != "/regflow/shop/web" {
		t.Errorf("default parameter = %q", got)
	}
	var kinds []string
	for _, tg := range d.TargetsFor("shop/api") {
		if tg.ECS != nil {
			kinds = append(kinds, "ecs")
		}
		if tg.Lambda != nil {
			kinds = append(kinds, "lambda")
		}
	}
	if !slices.Equal(kinds, []string{"ecs", "lambda"}) {
		t.Errorf("targets of shop/api = %v", kinds)
	}
	if n := len(d.TargetsFor("other/x")); n != 0 {
		t.Errorf("other/x has %d targets", n)
	}
	if got := (Deploy{NoParameter: true}).ParameterName("x"); got != "" {
		t.Errorf("switched off: %q", got)
	}
}

func TestBadDeployTargetNamesTheField(t *testing.T) {
	for _, tc := range []struct {
		name, deploy, field, message string
	}{
		{"neither runtime", `{targets: [{repositories: shop/web}]}`, "environments.prod.deploy.targets[0]", "one of ecs or lambda"},
		{"both runtimes", `{targets: [{repositories: shop/web, ecs: {cluster: c, service: s, container: a}, lambda: {function: f, alias: live}}]}`, "environments.prod.deploy.targets[0]", "both ecs and lambda"},
		{"no repositories", `{targets: [{ecs: {cluster: c, service: s, container: a}}]}`, "environments.prod.deploy.targets[0].repositories", "is required"},
		{"bad glob", `{targets: [{repositories: "shop/[", ecs: {cluster: c, service: s, container: a}}]}`, "environments.prod.deploy.targets[0].repositories", "glob"},
		{"bad cluster", `{targets: [{repositories: x, ecs: {cluster: "my cluster", service: s, container: a}}]}`, "environments.prod.deploy.targets[0].ecs.cluster", "ECS name"},
		{"missing container", `{targets: [{repositories: x, ecs: {cluster: c, service: s}}]}`, "environments.prod.deploy.targets[0].ecs.container", "ECS name"},
		{"same container twice", `{targets: [{repositories: x, ecs: {cluster: c, service: s, container: a}}, {repositories: y, ecs: {cluster: c, service: s, container: a}}]}`, "environments.prod.deploy.targets[1].ecs", "same container as targets[0]"},
		{"numeric alias", `{targets: [{repositories: x, lambda: {function: f, alias: "7"}}]}`, "environments.prod.deploy.targets[0].lambda.alias", "not only digits"},
		{"no alias", `{targets: [{repositories: x, lambda: {function: f}}]}`, "environments.prod.deploy.targets[0].lambda.alias", "alias name"},
		{"bad function", `{targets: [{repositories: x, lambda: {function: "a:b:c", alias: live}}]}`, "environments.prod.deploy.targets[0].lambda.function", "function name"},
		{"parameter without repository", `{parameter: /regflow/release}`, "environments.prod.deploy.parameter", "must contain {repository}"},
		{"parameter not a path", `{parameter: "regflow {repository}"}`, "environments.prod.deploy.parameter", "SSM parameter path"},
		{"reserved parameter", `{parameter: "/aws/{repository}"}`, "environments.prod.deploy.parameter", "reserves"},
		{"parameter switched off and set", `{parameter: "/x/{repository}", noParameter: true}`, "environments.prod.deploy.parameter", "noParameter"},
		{"role elsewhere", `{role: "arn:aws:iam::444444444444:role/regflow-deployment"}`, "environments.prod.deploy.role", "account 444444444444"},
		{"unknown key", `{target: []}`, `"target"`, "unknown field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(minimal + "    deploy: " + tc.deploy + "\n"))
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), tc.field) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("error %q should name %q and say %q", err, tc.field, tc.message)
			}
		})
	}
}

func TestTheSourceEnvironmentHasNoDeployTargets(t *testing.T) {
	src := strings.Replace(minimal, `dev: {account: "111111111111"}`, `dev: {account: "111111111111", deploy: {targets: [{repositories: x, lambda: {function: f, alias: live}}]}}`, 1)
	_, err := Parse([]byte(src))
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Field != "environments.dev.deploy" || !strings.Contains(fe.Rule, "receives no promotion") {
		t.Fatalf("err = %v", err)
	}
}
