package sweep

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/regflow/regflow/shared/retention"
)

// Use is one place an image of a registry runs, as its account's ECS and Lambda say.
type Use struct {
	Repository string `json:"repository"`
	// Digest is what runs; a task definition naming its image by tag only has Tag
	// instead, resolved by the sweep against the repository's listing.
	Digest string `json:"digest,omitempty"`
	Tag    string `json:"tag,omitempty"`
	// Where names the runner the way people do: "ECS service prod/web", "ECS task
	// batch/report", "Lambda function api:live".
	Where string `json:"where"`
	// Tasks counts running ECS tasks (0 for a service's task definition, a function).
	Tasks int `json:"tasks,omitempty"`
}

// InUse reads what runs in a registry's account and region: every ECS cluster's running
// tasks (containers[].imageDigest) and services' task definitions, every Lambda
// function's $LATEST and aliased versions (their resolved images). Only images of the
// registry itself are returned.
type InUse interface {
	Running(ctx context.Context) ([]Use, error)
}

// ErrNoInUse is what an InUse source returns where this setup reads no ECS or Lambda for
// a registry (a local environment without control planes): the sweep goes on without
// in-use protection there and its report says so. Any other error stops the registry's
// deletes.
var ErrNoInUse = errors.New("this setup reads no ECS or Lambda for this registry")

// InUseSource reaches a registry's in-use reads (the sweeper role's, in AWS).
type InUseSource func(ctx context.Context, t Target) (InUse, error)

// Running is what runs in one registry, by repository, as read once for a run.
type Running struct {
	// Uses by repository.
	Uses map[string][]Use `json:"uses,omitempty"`
	// NotRead says why nothing was read (ErrNoInUse); empty when it was.
	NotRead string `json:"notRead,omitempty"`
}

// ReadRunning reads what runs in t's account once. A nil source reads nothing.
func ReadRunning(ctx context.Context, src InUseSource, t Target) (Running, error) {
	if src == nil {
		return Running{NotRead: "no in-use source configured"}, nil
	}
	u, err := src(ctx, t)
	var uses []Use
	if err == nil {
		uses, err = u.Running(ctx)
	}
	if errors.Is(err, ErrNoInUse) {
		return Running{NotRead: err.Error()}, nil
	}
	if err != nil {
		return Running{}, fmt.Errorf("read what runs in %s (ECS tasks and services, Lambda functions), so this registry deletes nothing: %w", t, err)
	}
	out := Running{Uses: map[string][]Use{}}
	for _, u := range uses {
		out.Uses[u.Repository] = append(out.Uses[u.Repository], u)
	}
	return out, nil
}

// Drift is a digest that runs but no environment's release pointer names as current.
type Drift struct {
	Repository string `json:"repository"`
	Digest     string `json:"digest"`
	Where      string `json:"where"`
}

// inUseOf resolves repo's uses against its listing (tags to digests) and merges them per
// digest and place: "ECS service prod/web, 3 tasks". Uses of digests or tags the
// listing lacks are dropped (nothing to delete there).
func inUseOf(uses []Use, imgs []retention.Image) []retention.InUse {
	if len(uses) == 0 {
		return nil
	}
	byTag := map[string]string{}
	have := make(map[string]bool, len(imgs))
	for _, img := range imgs {
		have[img.Digest] = true
		for _, t := range img.Tags {
			byTag[t] = img.Digest
		}
	}
	type key struct{ digest, where string }
	tasks := map[key]int{}
	var order []key
	for _, u := range uses {
		d := u.Digest
		if d == "" {
			d = byTag[u.Tag]
		}
		if d == "" || !have[d] {
			continue
		}
		k := key{d, u.Where}
		if _, ok := tasks[k]; !ok {
			order = append(order, k)
		}
		tasks[k] += u.Tasks
	}
	out := make([]retention.InUse, 0, len(order))
	for _, k := range order {
		where := k.where
		switch n := tasks[k]; {
		case n == 1:
			where += ", 1 task"
		case n > 1:
			where += fmt.Sprintf(", %d tasks", n)
		}
		out = append(out, retention.InUse{Digest: k.digest, Where: where})
	}
	slices.SortFunc(out, func(a, b retention.InUse) int {
		return cmp.Or(strings.Compare(a.Digest, b.Digest), strings.Compare(a.Where, b.Where))
	})
	return out
}

// drift lists the running digests of repo that no release pointer names as current,
// once each, with every place it runs.
func drift(repo string, inUse []retention.InUse, prot retention.Protected) []Drift {
	var out []Drift
	for _, u := range inUse { // sorted by digest
		if slices.ContainsFunc(prot.Releases, func(r retention.Release) bool { return r.Current == u.Digest }) {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Digest == u.Digest {
			out[n-1].Where += "; " + u.Where
			continue
		}
		out = append(out, Drift{Repository: repo, Digest: u.Digest, Where: u.Where})
	}
	return out
}
