package dynamo

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

type indexed struct {
	keyed
	GSI1PK string `json:"GSI1PK"`
	GSI1SK string `json:"GSI1SK"`
	TTL    int64  `json:"ttl,omitempty"`
}

type requestItem struct {
	indexed
	regflow.ApprovalRequest
}

func requestItemOf(r regflow.ApprovalRequest) requestItem {
	it := requestItem{indexed{keyed{store.RequestPK(r.ID), store.SKMeta}, store.RequestGSI1PK(r.Status), store.AuditSK(r.CreatedAt, r.ID), 0}, r}
	if !r.ExpiresAt.IsZero() {
		// Kept a year past expiry for the audit of who decided what; then DynamoDB's TTL removes it.
		it.TTL = r.ExpiresAt.Unix() + 365*24*3600
	}
	return it
}

// putVersioned writes item if the stored version is prev (absent counts as 0).
func (s *Store) putVersioned(ctx context.Context, item any, prev int) error {
	_, err := s.putVersionedOld(ctx, item, prev)
	return err
}

// putVersionedOld is putVersioned that also returns the stored item when the write loses.
func (s *Store) putVersionedOld(ctx context.Context, item any, prev int) (map[string]types.AttributeValue, error) {
	av, err := marshalMap(item)
	if err != nil {
		return nil, fmt.Errorf("encode item: %w", err)
	}
	c := expression.Name("version").Equal(expression.Value(prev))
	if prev == 0 {
		c = expression.AttributeNotExists(expression.Name(store.AttrPK))
	}
	cond, err := expression.NewBuilder().WithCondition(c).Build()
	if err != nil {
		return nil, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: av,
		ConditionExpression:                 cond.Condition(),
		ExpressionAttributeNames:            cond.Names(),
		ExpressionAttributeValues:           cond.Values(),
		ReturnValuesOnConditionCheckFailure: types.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return ccf.Item, regflow.ErrConflict
	}
	if isConditionFailed(err) {
		return nil, regflow.ErrConflict
	}
	return nil, err
}

// CreateRequest stores a new request.
func (s *Store) CreateRequest(ctx context.Context, r regflow.ApprovalRequest) (bool, error) {
	r.Version = 1
	switch err := s.putVersioned(ctx, requestItemOf(r), 0); {
	case err == nil:
		return true, nil
	case errors.Is(err, regflow.ErrConflict):
		return false, nil
	default:
		return false, fmt.Errorf("create approval request %s: %w", r.ID, err)
	}
}

// UpdateRequest writes next if nobody else wrote since it was read.
func (s *Store) UpdateRequest(ctx context.Context, next regflow.ApprovalRequest) error {
	if next.Version < 2 {
		return fmt.Errorf("update approval request %s: version %d was not advanced", next.ID, next.Version)
	}
	old, err := s.putVersionedOld(ctx, requestItemOf(next), next.Version-1)
	if errors.Is(err, regflow.ErrConflict) {
		conflict := &regflow.RequestConflict{}
		var it requestItem
		if len(old) > 0 && unmarshalMap(old, &it) == nil {
			conflict.Current = &it.ApprovalRequest
		}
		return conflict
	}
	if err != nil {
		return fmt.Errorf("update approval request %s: %w", next.ID, err)
	}
	return nil
}

// GetRequest reads a request.
func (s *Store) GetRequest(ctx context.Context, id string) (regflow.ApprovalRequest, error) {
	var it requestItem
	if err := s.get(ctx, store.RequestPK(id), store.SKMeta, &it); err != nil {
		return regflow.ApprovalRequest{}, fmt.Errorf("approval request %s: %w", id, err)
	}
	return it.ApprovalRequest, nil
}

// Requests queries GSI1 for a status.
func (s *Store) Requests(ctx context.Context, status string) ([]regflow.ApprovalRequest, error) {
	var items []requestItem
	if err := s.queryGSI1(ctx, store.RequestGSI1PK(status), &items); err != nil {
		return nil, fmt.Errorf("list %s approval requests: %w", status, err)
	}
	out := make([]regflow.ApprovalRequest, len(items))
	for i, it := range items {
		out[i] = it.ApprovalRequest
	}
	return out, nil
}

type releaseItem struct {
	indexed
	regflow.Release
}

// PutRelease moves a release pointer if nobody else moved it since it was read.
func (s *Store) PutRelease(ctx context.Context, next regflow.Release) error {
	it := releaseItem{indexed{keyed{store.ReleasePK(next.Env, next.Repository), store.SKMeta}, store.ReleasesGSI1PK, next.Env + "#" + next.Repository, 0}, next}
	if err := s.putVersioned(ctx, it, next.Version-1); err != nil {
		if errors.Is(err, regflow.ErrConflict) {
			return err
		}
		return fmt.Errorf("move release pointer %s/%s: %w", next.Env, next.Repository, err)
	}
	return nil
}

// GetRelease reads a release pointer.
func (s *Store) GetRelease(ctx context.Context, env, repo string) (regflow.Release, error) {
	var it releaseItem
	if err := s.get(ctx, store.ReleasePK(env, repo), store.SKMeta, &it); err != nil {
		return regflow.Release{}, fmt.Errorf("release pointer %s/%s: %w", env, repo, err)
	}
	return it.Release, nil
}

// Releases lists every pointer from GSI1.
func (s *Store) Releases(ctx context.Context) ([]regflow.Release, error) {
	var items []releaseItem
	if err := s.queryGSI1(ctx, store.ReleasesGSI1PK, &items); err != nil {
		return nil, fmt.Errorf("list release pointers: %w", err)
	}
	out := make([]regflow.Release, len(items))
	for i, it := range items {
		out[i] = it.Release
	}
	return out, nil
}

type verificationItem struct {
	keyed
	regflow.Verification
}

// PutVerification records a verification result.
func (s *Store) PutVerification(ctx context.Context, v regflow.Verification) error {
	av, err := marshalMap(verificationItem{keyed{store.VerificationPK(v.Repository, v.Digest), store.VerificationSK(v.Env)}, v})
	if err != nil {
		return err
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av}); err != nil {
		return fmt.Errorf("record verification of %s@%s in %s: %w", v.Repository, v.Digest, v.Env, err)
	}
	return nil
}

// GetVerification reads a verification result.
func (s *Store) GetVerification(ctx context.Context, env, repo, digest string) (regflow.Verification, error) {
	var it verificationItem
	if err := s.get(ctx, store.VerificationPK(repo, digest), store.VerificationSK(env), &it); err != nil {
		return regflow.Verification{}, fmt.Errorf("verification of %s@%s in %s: %w", repo, digest, env, err)
	}
	return it.Verification, nil
}

func (s *Store) get(ctx context.Context, pk, sk string, v any) error {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return err
	}
	if out.Item == nil {
		return store.ErrNotFound
	}
	return unmarshalMap(out.Item, v)
}

func (s *Store) queryGSI1(ctx context.Context, pk string, out any) error {
	return s.query(ctx, store.GSI1, expression.Key(store.AttrG1PK).Equal(expression.Value(pk)), out)
}

// query pages through every item matching kc, in the table (index "") with consistent
// reads or in a global secondary index, and decodes them into out (a pointer to a slice).
func (s *Store) query(ctx context.Context, index string, kc expression.KeyConditionBuilder, out any) error {
	cond, err := expression.NewBuilder().WithKeyCondition(kc).Build()
	if err != nil {
		return err
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    cond.KeyCondition(),
		ExpressionAttributeNames:  cond.Names(),
		ExpressionAttributeValues: cond.Values(),
	}
	if index == "" {
		in.ConsistentRead = aws.Bool(true)
	} else {
		in.IndexName = aws.String(index)
	}
	var all []map[string]types.AttributeValue
	for p := dynamodb.NewQueryPaginator(s.db, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		all = append(all, page.Items...)
	}
	return unmarshalList(all, out)
}

type scanItem struct {
	keyed
	regflow.Scan
}

// PutScan records a scan result on the image.
func (s *Store) PutScan(ctx context.Context, sc regflow.Scan) error {
	av, err := marshalMap(scanItem{keyed{store.ScanPK(sc.Repository, sc.Digest), store.ScanSK(sc.Env)}, sc})
	if err != nil {
		return err
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av}); err != nil {
		return fmt.Errorf("record scan of %s@%s in %s: %w", sc.Repository, sc.Digest, sc.Env, err)
	}
	return nil
}

// GetScan reads a scan result.
func (s *Store) GetScan(ctx context.Context, env, repo, digest string) (regflow.Scan, error) {
	var it scanItem
	if err := s.get(ctx, store.ScanPK(repo, digest), store.ScanSK(env), &it); err != nil {
		return regflow.Scan{}, fmt.Errorf("scan of %s@%s in %s: %w", repo, digest, env, err)
	}
	return it.Scan, nil
}
