package dynamo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/store"
)

var _ store.SweepStore = (*Store)(nil)

type sweepRunItem struct {
	keyed
	store.SweepRun
	TTL int64 `json:"ttl,omitempty"`
}

// Counter attributes, added to atomically by CompleteSweepBatch.
func counterValues(c store.SweepCounts) map[string]int64 {
	return map[string]int64{
		"repositories": int64(c.Repositories), "images": int64(c.Images), "kept": int64(c.Kept),
		"selected": int64(c.Selected), "deleted": int64(c.Deleted), "alreadyGone": int64(c.AlreadyGone),
		"notDeleted": int64(c.NotDeleted), "failedRepositories": int64(c.FailedRepositories),
		"bytesReclaimed": c.BytesReclaimed,
	}
}

func ttlOf(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// CreateSweepRun puts the run item unless it exists.
func (s *Store) CreateSweepRun(ctx context.Context, run store.SweepRun) (bool, error) {
	run.Batches = nil
	item, err := marshalMap(sweepRunItem{keyed{store.SweepPK(run.ID), store.SKSweepRun}, run, ttlOf(run.Expires)})
	if err != nil {
		return false, fmt.Errorf("encode sweep run %s: %w", run.ID, err)
	}
	cond, err := expression.NewBuilder().WithCondition(expression.AttributeNotExists(expression.Name(store.AttrPK))).Build()
	if err != nil {
		return false, err
	}
	_, err = s.db.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &s.table, Item: item,
		ConditionExpression: cond.Condition(), ExpressionAttributeNames: cond.Names(),
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create sweep run %s in table %s: %w", run.ID, s.table, err)
	}
	return true, nil
}

// GetSweepRun reads the run item with a consistent read.
func (s *Store) GetSweepRun(ctx context.Context, id string) (store.SweepRun, error) {
	out, err := s.db.GetItem(ctx, &dynamodb.GetItemInput{
		TableName: &s.table, Key: key(store.SweepPK(id), store.SKSweepRun), ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return store.SweepRun{}, fmt.Errorf("read sweep run %s from table %s: %w", id, s.table, err)
	}
	if out.Item == nil {
		return store.SweepRun{}, fmt.Errorf("sweep run %s: %w", id, store.ErrNotFound)
	}
	return decodeRun(id, out.Item)
}

func decodeRun(id string, item map[string]types.AttributeValue) (store.SweepRun, error) {
	var it sweepRunItem
	if err := unmarshalMap(item, &it); err != nil {
		return store.SweepRun{}, fmt.Errorf("decode sweep run %s: %w", id, err)
	}
	if it.TTL > 0 {
		it.Expires = time.Unix(it.TTL, 0).UTC()
	}
	return it.SweepRun, nil
}

// updateRun runs one conditional UpdateItem on the run item and returns the item after it.
// On a failed condition it returns the stored run (or ErrNotFound) and failed = true.
func (s *Store) updateRun(ctx context.Context, id string, upd expression.UpdateBuilder, cond expression.ConditionBuilder) (run store.SweepRun, failed bool, err error) {
	cond = expression.AttributeExists(expression.Name(store.AttrPK)).And(cond)
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return store.SweepRun{}, false, fmt.Errorf("build sweep run update: %w", err)
	}
	out, err := s.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(store.SweepPK(id), store.SKSweepRun),
		UpdateExpression:          expr.Update(),
		ConditionExpression:       expr.Condition(),
		ExpressionAttributeNames:  expr.Names(),
		ExpressionAttributeValues: expr.Values(),
		ReturnValues:              types.ReturnValueAllNew,
	})
	if isConditionFailed(err) {
		run, err := s.GetSweepRun(ctx, id)
		return run, true, err
	}
	if err != nil {
		return store.SweepRun{}, false, fmt.Errorf("update sweep run %s in table %s: %w", id, s.table, err)
	}
	run, err = decodeRun(id, out.Attributes)
	return run, false, err
}

// SetSweepTotal sets total when it is 0 (or already equal).
func (s *Store) SetSweepTotal(ctx context.Context, id string, total int) (store.SweepRun, error) {
	totalName := expression.Name("total")
	run, failed, err := s.updateRun(ctx, id,
		expression.Set(totalName, expression.Value(total)),
		totalName.Equal(expression.Value(0)).Or(totalName.Equal(expression.Value(total))))
	if err != nil {
		return store.SweepRun{}, fmt.Errorf("set batch total of sweep run %s: %w", id, err)
	}
	if failed {
		return store.SweepRun{}, fmt.Errorf("set batch total of sweep run %s: the run already has %d batches, not %d", id, run.Total, total)
	}
	return run, nil
}

// CompleteSweepBatch adds the counts and the batch name to the run item in one
// UpdateItem (ADD is atomic), on condition that the batch is not in it yet.
func (s *Store) CompleteSweepBatch(ctx context.Context, id, batch string, c store.SweepCounts) (store.SweepRun, bool, error) {
	batches := expression.Name("batches")
	upd := expression.Add(batches, expression.Value(&types.AttributeValueMemberSS{Value: []string{batch}}))
	for name, v := range counterValues(c) {
		upd = upd.Add(expression.Name(name), expression.Value(v))
	}
	run, failed, err := s.updateRun(ctx, id, upd, expression.Not(expression.Contains(batches, batch)))
	if err != nil {
		return store.SweepRun{}, false, fmt.Errorf("complete batch %s of sweep run %s: %w", batch, id, err)
	}
	return run, !failed, nil
}

type partItem struct {
	keyed
	Name string `json:"name"`
	Data []byte `json:"data"`
	TTL  int64  `json:"ttl,omitempty"`
}

// PutSweepPart puts one report part item.
func (s *Store) PutSweepPart(ctx context.Context, id string, p store.SweepPart) error {
	if len(p.Data) > store.MaxSweepPartBytes {
		return fmt.Errorf("report part %s of sweep run %s is %d bytes, more than %d", p.Name, id, len(p.Data), store.MaxSweepPartBytes)
	}
	item, err := marshalMap(partItem{keyed{store.SweepPK(id), store.SweepPartSK(p.Name)}, p.Name, p.Data, ttlOf(p.Expires)})
	if err != nil {
		return fmt.Errorf("encode report part %s: %w", p.Name, err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("store report part %s of sweep run %s: %w", p.Name, id, err)
	}
	return nil
}

// SweepParts queries the run's partition for part keys, in key (name) order.
func (s *Store) SweepParts(ctx context.Context, id string) ([]store.SweepPart, error) {
	kc := expression.Key(store.AttrPK).Equal(expression.Value(store.SweepPK(id))).
		And(expression.Key(store.AttrSK).BeginsWith(store.SweepPartSK("")))
	var items []partItem
	if err := s.query(ctx, "", kc, &items); err != nil {
		return nil, fmt.Errorf("read report parts of sweep run %s: %w", id, err)
	}
	out := make([]store.SweepPart, 0, len(items))
	for _, it := range items {
		part := store.SweepPart{Name: it.Name, Data: it.Data}
		if it.TTL > 0 {
			part.Expires = time.Unix(it.TTL, 0).UTC()
		}
		out = append(out, part)
	}
	return out, nil
}

type manifestItem struct {
	keyed
	store.ManifestInfo
	TTL int64 `json:"ttl,omitempty"`
}

// AppendAudits writes each entry with AppendAudit's conditional put (a few at a
// time): an entry that exists is never overwritten, so a retried sweep batch leaves
// the first attempt's record of each image as it was. BatchWriteItem would be
// fewer calls but takes no condition.
func (s *Store) AppendAudits(ctx context.Context, entries []regflow.AuditEntry) error {
	seen := map[string]bool{}
	var todo []regflow.AuditEntry
	for _, e := range entries {
		k := store.AuditPK(e.Subject) + "\x00" + store.AuditSK(e.Time, e.ID)
		if !seen[k] {
			seen[k] = true
			todo = append(todo, e)
		}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	sem := make(chan struct{}, auditWriters)
	for _, e := range todo {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			if _, err := s.AppendAudit(ctx, e); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("append %d audit entries (%d failed): %w", len(todo), len(errs), err)
	}
	return nil
}

// auditWriters bounds the conditional puts of one AppendAudits call in flight.
const auditWriters = 8

// batchWrite puts items with BatchWriteItem, 25 a call, retrying unprocessed ones.
func (s *Store) batchWrite(ctx context.Context, items []map[string]types.AttributeValue) error {
	for chunk := range slices.Chunk(items, batchWriteMax) {
		writes := make([]types.WriteRequest, len(chunk))
		for i, item := range chunk {
			writes[i] = types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
		}
		req := map[string][]types.WriteRequest{s.table: writes}
		for attempt := 0; len(req) > 0; attempt++ {
			if err := backoff(ctx, attempt); err != nil {
				return err
			}
			res, err := s.db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: req})
			if err != nil {
				return fmt.Errorf("table %s: %w", s.table, err)
			}
			req = res.UnprocessedItems
		}
	}
	return nil
}

// DynamoDB's batch sizes.
const (
	batchGetMax   = 100
	batchWriteMax = 25
)

// ManifestInfos reads cached facts with BatchGetItem, 100 keys a call, retrying
// unprocessed keys with backoff.
func (s *Store) ManifestInfos(ctx context.Context, digests []string) (map[string]store.ManifestInfo, error) {
	out := make(map[string]store.ManifestInfo, len(digests))
	uniq := slices.Compact(slices.Sorted(slices.Values(digests)))
	for chunk := range slices.Chunk(uniq, batchGetMax) {
		keys := make([]map[string]types.AttributeValue, len(chunk))
		for i, d := range chunk {
			keys[i] = key(store.ManifestPK(d), store.SKMeta)
		}
		req := map[string]types.KeysAndAttributes{s.table: {Keys: keys}}
		for attempt := 0; len(req) > 0; attempt++ {
			if err := backoff(ctx, attempt); err != nil {
				return nil, fmt.Errorf("read cached manifest facts: %w", err)
			}
			res, err := s.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return nil, fmt.Errorf("read cached manifest facts from table %s: %w", s.table, err)
			}
			var items []manifestItem
			if err := unmarshalList(res.Responses[s.table], &items); err != nil {
				return nil, fmt.Errorf("decode cached manifest facts: %w", err)
			}
			for _, it := range items {
				out[it.Digest] = it.ManifestInfo
			}
			req = res.UnprocessedKeys
		}
	}
	return out, nil
}

// PutManifestInfos writes facts with BatchWriteItem, 25 items a call.
func (s *Store) PutManifestInfos(ctx context.Context, infos []store.ManifestInfo) error {
	items := make([]map[string]types.AttributeValue, 0, len(infos))
	seen := map[string]bool{}
	for _, info := range infos {
		if seen[info.Digest] { // a batch may not put one key twice
			continue
		}
		seen[info.Digest] = true
		item, err := marshalMap(manifestItem{keyed{store.ManifestPK(info.Digest), store.SKMeta}, info, ttlOf(info.Expires)})
		if err != nil {
			return fmt.Errorf("encode manifest facts of %s: %w", info.Digest, err)
		}
		items = append(items, item)
	}
	if err := s.batchWrite(ctx, items); err != nil {
		return fmt.Errorf("cache manifest facts: %w", err)
	}
	return nil
}

// backoff waits before retrying unprocessed batch items: nothing before the first
// attempt, then 50 ms doubling to 3.2 s; it gives up after 8 attempts.
func backoff(ctx context.Context, attempt int) error {
	if attempt == 0 {
		return nil
	}
	if attempt >= 8 {
		return errors.New("DynamoDB left items unprocessed after 8 attempts")
	}
	t := time.NewTimer(50 * time.Millisecond << (attempt - 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
