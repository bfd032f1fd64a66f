// Package dynamo is the DynamoDB adapter of store.Store: one table, conditional
// writes for everything that must happen once.
package dynamo

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

// Store persists regflow's state in one DynamoDB table.
type Store struct {
	db    *dynamodb.Client
	table string
}

// New returns a store over an existing table.
func New(db *dynamodb.Client, table string) *Store { return &Store{db: db, table: table} }

var _ store.Store = (*Store)(nil)

// Items are encoded by their json tags, so domain types need no tags of DynamoDB's.
func marshalMap(v any) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMapWithOptions(v, func(o *attributevalue.EncoderOptions) { o.TagKey = "json" })
}

func unmarshalMap(m map[string]types.AttributeValue, v any) error {
	return attributevalue.UnmarshalMapWithOptions(m, v, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" })
}

func unmarshalList(l []map[string]types.AttributeValue, v any) error {
	return attributevalue.UnmarshalListOfMapsWithOptions(l, v, func(o *attributevalue.DecoderOptions) { o.TagKey = "json" })
}

type keyed struct {
	PK string `json:"PK"`
	SK string `json:"SK"`
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		store.AttrPK: &types.AttributeValueMemberS{Value: pk},
		store.AttrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// PutImage sets the image's identity attributes and leaves the rest of the item alone.
func (s *Store) PutImage(ctx context.Context, img regflow.Image) error {
	upd := expression.Set(expression.Name("repository"), expression.Value(img.Repository)).
		Set(expression.Name("digest"), expression.Value(img.Digest)).
		Set(expression.Name("pushedAt"), expression.Value(img.PushedAt)).
		Set(expression.Name("recordedAt"), expression.Value(img.RecordedAt))
	if len(img.Tags) > 0 {
		upd = upd.Set(expression.Name("tags"), expression.Value(img.Tags))
	} else {
		upd = upd.Remove(expression.Name("tags"))
	}
	if img.Commit != "" {
		upd = upd.Set(expression.Name("commit"), expression.Value(img.Commit))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).Build()
	if err != nil {
		return fmt.Errorf("build image update: %w", err)
	}
	_, err = s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(store.ImagePK(img.Repository, img.Digest), store.SKMeta),
		UpdateExpression:          expr.Update(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
	})
	if err != nil {
		return fmt.Errorf("record image %s in table %s: %w", img.Ref(), s.table, err)
	}
	return nil
}

// GetImage reads an image item.
func (s *Store) GetImage(ctx context.Context, repo, digest string) (regflow.Image, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            key(store.ImagePK(repo, digest), store.SKMeta),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return regflow.Image{}, fmt.Errorf("read image %s@%s from table %s: %w", repo, digest, s.table, err)
	}
	if out.Item == nil {
		return regflow.Image{}, fmt.Errorf("image %s@%s: %w", repo, digest, store.ErrNotFound)
	}
	var img regflow.Image
	if err := unmarshalMap(out.Item, &img); err != nil {
		return regflow.Image{}, fmt.Errorf("decode image %s@%s: %w", repo, digest, err)
	}
	return img, nil
}

type auditItem struct {
	keyed
	regflow.AuditEntry
}

// AppendAudit writes the entry unless one with the same key exists.
func (s *Store) AppendAudit(ctx context.Context, e regflow.AuditEntry) (bool, error) {
	item, err := marshalMap(auditItem{keyed{store.AuditPK(e.Subject), store.AuditSK(e.Time, e.ID)}, e})
	if err != nil {
		return false, fmt.Errorf("encode audit entry: %w", err)
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(store.AttrPK))).Build()
	if err != nil {
		return false, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                &s.table,
		Item:                     item,
		ConditionExpression:      cond.Condition(),
		ExpressionAttributeNames: cond.Names(),
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("append audit entry %s for %s: %w", e.ID, e.Subject, err)
	}
	return true, nil
}

// Audit queries a subject's partition in key order, which is time order.
func (s *Store) Audit(ctx context.Context, subject string) ([]regflow.AuditEntry, error) {
	var items []auditItem
	if err := s.query(ctx, "", expression.Key(store.AttrPK).Equal(expression.Value(store.AuditPK(subject))), &items); err != nil {
		return nil, fmt.Errorf("read audit trail of %s: %w", subject, err)
	}
	out := make([]regflow.AuditEntry, len(items))
	for i, it := range items {
		out[i] = it.AuditEntry
	}
	return out, nil
}

type claimItem struct {
	keyed
	Until int64 `json:"until"`
	TTL   int64 `json:"ttl"`
}

// Claim puts the claim item if it is absent or expired.
func (s *Store) Claim(ctx context.Context, k string, now, until time.Time) (bool, error) {
	item, err := marshalMap(claimItem{keyed{store.ClaimPK(k), store.SKClaim}, until.UnixMilli(), until.Add(24 * time.Hour).Unix()})
	if err != nil {
		return false, err
	}
	c := expression.AttributeNotExists(expression.Name(store.AttrPK)).
		Or(expression.Name("until").LessThanEqual(expression.Value(now.UnixMilli())))
	cond, err := expression.NewBuilder().WithCondition(c).Build()
	if err != nil {
		return false, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.table,
		Item:                      item,
		ConditionExpression:       cond.Condition(),
		ExpressionAttributeNames:  cond.Names(),
		ExpressionAttributeValues: cond.Values(),
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("claim %s: %w", k, err)
	}
	return true, nil
}

// Release deletes the claim item.
func (s *Store) Release(ctx context.Context, k string) error {
	_, err := s.db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key(store.ClaimPK(k), store.SKClaim)})
	if err != nil {
		return fmt.Errorf("release claim %s: %w", k, err)
	}
	return nil
}

func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	var tc *types.TransactionCanceledException
	return errors.As(err, &ccf) || errors.As(err, &tc)
}

// Renew sets the claim's expiry, holding it.
func (s *Store) Renew(ctx context.Context, k string, until time.Time) error {
	item, err := marshalMap(claimItem{keyed{store.ClaimPK(k), store.SKClaim}, until.UnixMilli(), until.Add(24 * time.Hour).Unix()})
	if err != nil {
		return err
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("renew claim %s: %w", k, err)
	}
	return nil
}
