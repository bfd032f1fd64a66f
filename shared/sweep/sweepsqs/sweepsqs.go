// Package sweepsqs carries sweep batches over Amazon SQS: Queue sends them
// (SendMessageBatch, 10 per call) and Handler feeds received ones to a
// sweep.Worker, reporting partial batch failures so only failed messages return.
package sweepsqs

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/regflow/regflow/shared/sweep"
)

// maxBatch is the most entries SendMessageBatch takes.
const maxBatch = 10

// MinTimeLeft is the least time before its deadline in which the handler starts a
// record: less would leave the worker no time to sweep, record and hand on.
const MinTimeLeft = 2 * time.Second

// API is the part of the SQS client the queue uses.
type API interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// Queue sends sweep batches to one queue.
type Queue struct {
	API API
	URL string
}

// Send sends every message, retrying entries SQS failed on its side (up to 5 times).
func (q *Queue) Send(ctx context.Context, msgs []sweep.Message) error {
	for chunk := range slices.Chunk(msgs, maxBatch) {
		entries := make([]types.SendMessageBatchRequestEntry, len(chunk))
		for i, m := range chunk {
			b, err := json.Marshal(m)
			if err != nil {
				return fmt.Errorf("encode sweep batch %s: %w", m.Batch, err)
			}
			entries[i] = types.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(b))}
		}
		for attempt := 0; len(entries) > 0; attempt++ {
			if attempt > 0 {
				if attempt > 5 {
					return fmt.Errorf("send sweep batches to %s: %d entries still failing after 5 retries", q.URL, len(entries))
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(100 * time.Millisecond << attempt):
				}
			}
			out, err := q.API.SendMessageBatch(ctx, &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.URL), Entries: entries})
			if err != nil {
				return fmt.Errorf("send sweep batches to %s: %w", q.URL, err)
			}
			var again []types.SendMessageBatchRequestEntry
			for _, f := range out.Failed {
				if f.SenderFault {
					return fmt.Errorf("send sweep batches to %s: SQS refused entry %s: %s: %s", q.URL, aws.ToString(f.Id), aws.ToString(f.Code), aws.ToString(f.Message))
				}
				for _, e := range entries {
					if aws.ToString(e.Id) == aws.ToString(f.Id) {
						again = append(again, e)
					}
				}
			}
			entries = again
		}
	}
	return nil
}

// Handler returns the worker's Lambda handler for SQS events. A malformed message
// is reported and dropped after logging (retrying cannot fix it); a batch that
// fails is returned as a batch item failure, so SQS redelivers only it.
func Handler(w *sweep.Worker) func(context.Context, events.SQSEvent) (events.SQSEventResponse, error) {
	return func(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
		// An empty list, not null: "nothing failed" in the partial batch response.
		resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
		for i, rec := range ev.Records {
			// Too close to the Lambda deadline to sweep anything: the records not started
			// go back to the queue untouched, instead of dying with the invocation.
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < MinTimeLeft {
				for _, r := range ev.Records[i:] {
					resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: r.MessageId})
				}
				if w.Log != nil {
					w.Log.Warn("sweep worker near its deadline: returning batches unstarted", "records", len(ev.Records)-i, "timeLeft", time.Until(dl).String())
				}
				break
			}
			msg, err := sweep.ParseMessage([]byte(rec.Body))
			if err != nil {
				if w.Log != nil {
					w.Log.Error("dropping malformed sweep message", "messageId", rec.MessageId, "error", err)
				}
				continue
			}
			msg.Attempt, _ = strconv.Atoi(rec.Attributes["ApproximateReceiveCount"])
			if err := w.Handle(ctx, msg); err != nil {
				if w.Log != nil {
					w.Log.Error("sweep batch failed", "messageId", rec.MessageId, "batch", msg.Batch, "attempt", msg.Attempt, "error", err)
				}
				resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: rec.MessageId})
			}
		}
		return resp, nil
	}
}
