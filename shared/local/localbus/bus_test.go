package localbus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/regflow/regflow/shared/route"
)

func TestLocalRouting(t *testing.T) {
	var failures []string
	b := NewBus(slog.New(slog.NewTextHandler(io.Discard, nil)), func(rule string, err error) { failures = append(failures, rule) })
	var got []string
	b.Subscribe(Rule{Name: "push", Sources: []string{"aws.ecr"}, DetailTypes: []string{"ECR Image Action"}}, func(context.Context, []byte) error {
		got = append(got, "push")
		return nil
	})
	b.Subscribe(Rule{Name: "any-regflow", Sources: []string{"regflow"}}, func(context.Context, []byte) error {
		got = append(got, "regflow")
		return errors.New("boom")
	})
	b.Subscribe(Rule{Name: "fine", Match: func(e []byte) bool { return len(e) > 1000 }}, func(context.Context, []byte) error {
		got = append(got, "never")
		return nil
	})
	ctx := context.Background()
	if err := b.Publish(ctx, []byte(`{"source":"aws.ecr","detail-type":"ECR Image Action"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, []byte(`{"source":"aws.ecr","detail-type":"ECR Image Scan"}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, []byte(`{"source":"regflow","detail-type":"Promotion Approved"}`)); err == nil {
		t.Fatal("a failing target's error must reach the publisher")
	}
	if err := b.Publish(ctx, []byte(`nope`)); err == nil {
		t.Fatal("non-JSON must be refused")
	}
	if len(got) != 2 || got[0] != "push" || got[1] != "regflow" {
		t.Fatalf("deliveries = %v", got)
	}
	if len(failures) != 1 || failures[0] != "any-regflow" {
		t.Fatalf("failures = %v", failures)
	}
}

func TestSubscribeRoutes(t *testing.T) {
	routes := []route.Route{
		{ID: "Push", Name: "push", On: route.Regflow, Function: "guard", Pattern: &route.Pattern{
			Sources: []string{"aws.ecr"}, Accounts: []string{"111111111111"},
			Detail: []route.Field{{Path: []string{"action-type"}, Values: []string{"PUSH"}}},
		}},
		{ID: "Approved", Name: "approved", On: route.Regflow, Function: "promote", Pattern: &route.Pattern{
			Sources: []string{"regflow"}, Accounts: []string{"999999999999"},
		}},
		// Neither is subscribed: the schedule and the forwarding rule reach no handler.
		{ID: "Tick", Name: "tick", On: route.Default, Function: "sweep", Schedule: "rate(1 day)"},
		{ID: "Fwd", Name: "fwd", On: route.Default, Forward: true, Pattern: &route.Pattern{Sources: []string{"aws.ecr"}}},
	}
	var got []string
	record := func(name string) Handler {
		return func(_ context.Context, e []byte) error {
			got = append(got, name+" "+string(e))
			return nil
		}
	}
	b := NewBus(slog.New(slog.DiscardHandler), nil)
	err := b.SubscribeRoutes(routes, map[string]Handler{"guard": record("guard")})
	if err == nil || !strings.Contains(err.Error(), "Approved") || !strings.Contains(err.Error(), `"promote"`) {
		t.Fatalf("a route without a handler: %v", err)
	}
	if err := b.SubscribeRoutes(routes, map[string]Handler{"guard": record("guard"), "promote": record("promote")}); err != nil {
		t.Fatal(err)
	}
	b.AssignAccount("999999999999")
	ctx := context.Background()
	for _, e := range []string{
		`{"source":"aws.ecr","account":"111111111111","detail":{"action-type":"PUSH"}}`,
		`{"source":"aws.ecr","account":"222222222222","detail":{"action-type":"PUSH"}}`,
		`{"source":"regflow","detail":{}}`,
	} {
		if err := b.Publish(ctx, []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	want := []string{
		`guard {"source":"aws.ecr","account":"111111111111","detail":{"action-type":"PUSH"}}`,
		`promote {"account":"999999999999","detail":{},"source":"regflow"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("deliveries:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
