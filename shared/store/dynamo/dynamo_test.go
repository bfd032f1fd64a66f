package dynamo_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/regflow/regflow/shared/store"
	"github.com/regflow/regflow/shared/store/dynamo"
	"github.com/regflow/regflow/shared/store/storetest"
	"github.com/regflow/regflow/shared/testenv"
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
