package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regflow/regflow/shared/store"
)

// CreateTable creates the table with the layout the CDK app deploys (keys, GSI1, TTL),
// for the local stack and tests. An existing table is left as it is.
func CreateTable(ctx context.Context, db *dynamodb.Client, table string) error {
	str := types.ScalarAttributeTypeS
	_, err := db.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &table,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(store.AttrPK), AttributeType: str},
			{AttributeName: aws.String(store.AttrSK), AttributeType: str},
			{AttributeName: aws.String(store.AttrG1PK), AttributeType: str},
			{AttributeName: aws.String(store.AttrG1SK), AttributeType: str},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(store.AttrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(store.AttrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(store.GSI1),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(store.AttrG1PK), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(store.AttrG1SK), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeAll},
		}},
	})
	var inUse *types.ResourceInUseException
	if errors.As(err, &inUse) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("create table %s: %w", table, err)
	}
	if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx, &dynamodb.DescribeTableInput{TableName: &table}, time.Minute); err != nil {
		return fmt.Errorf("wait for table %s: %w", table, err)
	}
	_, err = db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName:               &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{AttributeName: aws.String(store.AttrTTL), Enabled: aws.Bool(true)},
	})
	if err != nil {
		return fmt.Errorf("enable TTL on table %s: %w", table, err)
	}
	return nil
}

// WriteActions are the IAM actions this adapter calls to write each item kind, by
// partition-key prefix. infra grants a function these, under dynamodb:LeadingKeys, on the
// kinds it owns; TestEachKindHasItsPartition checks the adapter uses no others. Audit
// entries get PutItem alone (always conditional on absence): no function may update or
// delete one.
func WriteActions() map[string][]string {
	return map[string][]string{
		store.PrefixImage:        {"dynamodb:UpdateItem"},
		store.PrefixScan:         {"dynamodb:PutItem"},
		store.PrefixVerification: {"dynamodb:PutItem"},
		store.PrefixAudit:        {"dynamodb:PutItem"},
		store.PrefixClaim:        {"dynamodb:PutItem", "dynamodb:DeleteItem"},
		store.PrefixRequest:      {"dynamodb:PutItem"},
		store.PrefixRelease:      {"dynamodb:PutItem"},
		store.PrefixSweep:        {"dynamodb:PutItem", "dynamodb:UpdateItem"},
		store.PrefixManifest:     {"dynamodb:BatchWriteItem"},
		store.PrefixRollback:     {"dynamodb:PutItem"},
	}
}
