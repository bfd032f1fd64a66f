package localbus

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
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
