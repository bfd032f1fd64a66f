package dynamo_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/store/dynamo"
)

// write is one item write the adapter sent: the operation and the item's partition key.
type write struct{ op, pk string }

// recorder notes every write operation a client sends, before it leaves.
type recorder struct {
	mu     sync.Mutex
	writes []write
}

func (r *recorder) take() []write {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.writes
	r.writes = nil
	return w
}

func pkOf(m map[string]types.AttributeValue) string {
	if s, ok := m[store.AttrPK].(*types.AttributeValueMemberS); ok {
		return s.Value
	}
	return "?"
}

func (r *recorder) middleware(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("recordWrites", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		op := awsmiddleware.GetOperationName(ctx)
		var pks []string
		switch p := in.Parameters.(type) {
		case *dynamodb.PutItemInput:
			pks = []string{pkOf(p.Item)}
		case *dynamodb.UpdateItemInput:
			pks = []string{pkOf(p.Key)}
		case *dynamodb.DeleteItemInput:
			pks = []string{pkOf(p.Key)}
		case *dynamodb.BatchWriteItemInput:
			for _, reqs := range p.RequestItems {
				for _, w := range reqs {
					if w.PutRequest != nil {
						pks = append(pks, pkOf(w.PutRequest.Item))
					}
					if w.DeleteRequest != nil {
						pks = append(pks, pkOf(w.DeleteRequest.Key))
					}
				}
			}
		case *dynamodb.TransactWriteItemsInput, *dynamodb.ExecuteStatementInput, *dynamodb.BatchExecuteStatementInput, *dynamodb.ExecuteTransactionInput:
			pks = []string{"unsupported"}
		}
		r.mu.Lock()
		for _, pk := range pks {
			r.writes = append(r.writes, write{op, pk})
		}
		r.mu.Unlock()
		return next.HandleInitialize(ctx, in)
	}), middleware.Before)
}

// TestEachKindHasItsPartition: every write the adapter makes lands in the partition-key
// prefix of its item kind, and uses only the IAM actions the adapter declares for that
// kind (dynamo.WriteActions, which infra grants under dynamodb:LeadingKeys). So an image
// record, a scan and a verification are three kinds a function can be granted apart.
func TestEachKindHasItsPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	ctx := context.Background()
	rec := &recorder{}
	db := dynamodb.NewFromConfig(testenv.AWSConfig(testenv.DynamoDBLocal(t)), func(o *dynamodb.Options) {
		o.DisableValidateResponseChecksum = true
		o.APIOptions = append(o.APIOptions, rec.middleware)
	})
	if err := dynamo.CreateTable(ctx, db, "kinds"); err != nil {
		t.Fatal(err)
	}
	s := dynamo.New(db, "kinds")
	rec.take()
	t0 := time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)
	const d = "sha256:1111111111111111111111111111111111111111111111111111111111111111"
	req := regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: "app", Digest: d, Status: regflow.StatusPending, Required: 1, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	rb := regflow.NewRollback(regflow.Release{Env: "prod", Repository: "app", Digest: d, Previous: []string{"sha256:prev"}, Version: 2}, "", "", "U0ALICE", regflow.ViaCLI, t0)
	audit := regflow.AuditEntry{Subject: "app@" + d, ID: "a1", Time: t0, Action: "x", Actor: "test"}
	// The prefixes are stated here, not taken from the code under test.
	cases := []struct {
		name, prefix string
		do           func() error
	}{
		{"image", "IMG#", func() error { return s.PutImage(ctx, regflow.Image{Repository: "app", Digest: d, PushedAt: t0}) }},
		{"scan", "SCAN#", func() error {
			return s.PutScan(ctx, regflow.Scan{Env: "dev", Repository: "app", Digest: d, Counts: map[string]int{"HIGH": 1}})
		}},
		{"verification", "VERIFY#", func() error {
			return s.PutVerification(ctx, regflow.Verification{Env: "staging", Repository: "app", Digest: d, Passed: true, By: "ci"})
		}},
		{"audit entry", "AUDIT#", func() error { _, err := s.AppendAudit(ctx, audit); return err }},
		{"audit entries in bulk", "AUDIT#", func() error {
			b := audit
			b.ID = "a2"
			return s.AppendAudits(ctx, []regflow.AuditEntry{audit, b})
		}},
		{"claim", "CLAIM#", func() error { _, err := s.Claim(ctx, "k", t0, t0.Add(time.Minute)); return err }},
		{"claim renewed", "CLAIM#", func() error { return s.Renew(ctx, "k", t0.Add(time.Hour)) }},
		{"claim released", "CLAIM#", func() error { return s.Release(ctx, "k") }},
		{"request created", "REQ#", func() error { _, err := s.CreateRequest(ctx, req); return err }},
		{"request updated", "REQ#", func() error { r := req; r.Version = 2; return s.UpdateRequest(ctx, r) }},
		{"release pointer", "REL#", func() error {
			return s.PutRelease(ctx, regflow.Release{Env: "prod", Repository: "app", Digest: d, Version: 1})
		}},
		{"sweep run", "SWEEP#", func() error {
			_, err := s.CreateSweepRun(ctx, store.SweepRun{ID: "r1", Now: t0, StartedAt: t0})
			return err
		}},
		{"sweep total", "SWEEP#", func() error { _, err := s.SetSweepTotal(ctx, "r1", 1); return err }},
		{"sweep batch", "SWEEP#", func() error {
			_, _, err := s.CompleteSweepBatch(ctx, "r1", "b1", store.SweepCounts{Images: 1})
			return err
		}},
		{"sweep batch continued", "SWEEP#", func() error {
			_, _, err := s.ContinueSweepBatch(ctx, "r1", "b2", store.SweepCounts{Images: 1})
			return err
		}},
		{"sweep part", "SWEEP#", func() error { return s.PutSweepPart(ctx, "r1", store.SweepPart{Name: "p", Data: []byte("x")}) }},
		{"rollback created", "RB#", func() error {
			_, err := s.CreateRollback(ctx, rb)
			return err
		}},
		{"rollback settled", "RB#", func() error {
			stored := rb
			stored.Version = 1
			return s.UpdateRollback(ctx, stored.Settle(regflow.RollbackApplied, "sha256:prev", "", t0.Add(time.Minute)))
		}},
		{"manifest facts", "MANIFEST#", func() error {
			return s.PutManifestInfos(ctx, []store.ManifestInfo{{Digest: d, MediaType: "m"}})
		}},
	}
	actions := dynamo.WriteActions()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if err := c.do(); err != nil {
				t.Fatal(err)
			}
			writes := rec.take()
			if len(writes) == 0 {
				t.Fatal("no write recorded")
			}
			for _, w := range writes {
				if !strings.HasPrefix(w.pk, c.prefix) {
					t.Errorf("%s wrote partition %q, want prefix %q", w.op, w.pk, c.prefix)
				}
				if !contains(actions[c.prefix], "dynamodb:"+w.op) {
					t.Errorf("%s on %s is not among the actions declared for it: %v", w.op, c.prefix, actions[c.prefix])
				}
			}
		})
	}
	if got := fmt.Sprint(store.Prefixes()); len(store.Prefixes()) != len(actions) {
		t.Errorf("every kind needs declared write actions: prefixes %s, actions for %d", got, len(actions))
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
