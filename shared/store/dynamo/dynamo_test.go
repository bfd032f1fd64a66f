package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/regflow/regflow/shared/local/storetest"
	"github.com/regflow/regflow/shared/local/testenv"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/store/dynamo"
)

func TestMain(m *testing.M) { testenv.Main(m) }

// NewTestClient returns a DynamoDB client for DynamoDB Local.
func newClient(endpoint string) *dynamodb.Client {
	return dynamodb.NewFromConfig(testenv.AWSConfig(endpoint), func(o *dynamodb.Options) {
		// DynamoDB Local's ConditionalCheckFailed responses fail the SDK's checksum check (TOOLCHAIN.md).
		o.DisableValidateResponseChecksum = true
	})
}

func TestContractAgainstDynamoDBLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	endpoint := testenv.DynamoDBLocal(t)
	db := newClient(endpoint)
	var n atomic.Int32
	newStore := func(t *testing.T) store.Store {
		table := fmt.Sprintf("regflow-%d", n.Add(1))
		if err := dynamo.CreateTable(context.Background(), db, table); err != nil {
			t.Fatal(err)
		}
		return dynamo.New(db, table)
	}
	storetest.Run(t, newStore)
	storetest.RunSweep(t, newStore)
	storetest.RunRollbacks(t, newStore)
}

func TestCreateTableIsIdempotent(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	db := newClient(testenv.DynamoDBLocal(t))
	for range 2 {
		if err := dynamo.CreateTable(context.Background(), db, "twice"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLostWriteReturnsTheWinner: a request write that loses carries the stored request, so a
// concurrent click re-applies itself without another read.
func TestLostWriteReturnsTheWinner(t *testing.T) {
	if testing.Short() {
		t.Skip("needs DynamoDB Local")
	}
	ctx := context.Background()
	db := newClient(testenv.DynamoDBLocal(t))
	if err := dynamo.CreateTable(ctx, db, "lost-write"); err != nil {
		t.Fatal(err)
	}
	s := dynamo.New(db, "lost-write")
	r := regflow.ApprovalRequest{ID: "req-1", Env: "prod", Repository: "app", Digest: "sha256:1", Status: regflow.StatusPending, Required: 2}
	if _, err := s.CreateRequest(ctx, r); err != nil {
		t.Fatal(err)
	}
	r.Version = 1
	a, _ := r.Approve("U1", time.Unix(0, 0))
	b, _ := r.Approve("U2", time.Unix(0, 0))
	if err := s.UpdateRequest(ctx, a); err != nil {
		t.Fatal(err)
	}
	err := s.UpdateRequest(ctx, b)
	var lost *regflow.RequestConflict
	if !errors.Is(err, regflow.ErrConflict) || !errors.As(err, &lost) || lost.Current == nil {
		t.Fatalf("lost write = %v", err)
	}
	if lost.Current.Version != 2 || len(lost.Current.Approvals) != 1 || lost.Current.Approvals[0].User != "U1" {
		t.Fatalf("winner = %+v", lost.Current)
	}
}
