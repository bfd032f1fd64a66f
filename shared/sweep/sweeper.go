package sweep

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/event"
	"github.com/regflow/regflow/shared/glob"
	"github.com/regflow/regflow/shared/regflow"
	"github.com/regflow/regflow/shared/retention"
	"github.com/regflow/regflow/shared/store"
)

// Actor signs the sweep's audit entries (actions: event.ActionImageDeleted, event.ActionDeleteFailed).
const Actor = "regflow/sweeper"

// DefaultConcurrency is how many repositories a sweeper works on at once. With one
// paced client per registry shared by them (ecr.SweepRetryer), more only queues
// behind ECR's rate limits.
const DefaultConcurrency = 4

// manifestCacheFor is how long cached manifest facts outlive their last sighting.
const manifestCacheFor = 400 * 24 * time.Hour

// Target is one registry to sweep: an account's ECR in a region, serving one or
// more environments.
type Target struct {
	// Name is the environment, or the environments joined with "+" when they share the registry.
	Name    string `json:"name"`
	Account string `json:"account"`
	Region  string `json:"region"`
}

// Key identifies the registry (account/region).
func (t Target) Key() string { return t.Account + "/" + t.Region }

func (t Target) String() string { return fmt.Sprintf("%s (%s, %s)", t.Name, t.Account, t.Region) }

// Targets lists the config's registries in promotion order, one per account and region.
func Targets(cfg *config.Config) []Target {
	var out []Target
	idx := map[string]int{}
	names := slices.Clone(cfg.PromotionPath)
	for n := range cfg.Environments {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	for _, n := range names {
		env, ok := cfg.Environments[n]
		if !ok {
			continue
		}
		region := env.Region
		if region == "" {
			region = cfg.Region
		}
		t := Target{Name: n, Account: env.Account, Region: region}
		if i, ok := idx[t.Key()]; ok {
			out[i].Name += "+" + n
			continue
		}
		idx[t.Key()] = len(out)
		out = append(out, t)
	}
	return out
}

// Configured says whether t names one of cfg's registries, by account and region:
// adapters refuse to reach any other, so a hand-made batch cannot sweep a registry
// the config does not list, nor land on the account's registry in another region.
func Configured(cfg *config.Config, t Target) bool {
	for _, c := range Targets(cfg) {
		if c.Key() == t.Key() {
			return true
		}
	}
	return false
}

// Run identifies one sweep: its ID names audit entries and stored reports, Now is
// the time ages are measured against.
type Run struct {
	ID     string    `json:"id"`
	Now    time.Time `json:"now"`
	DryRun bool      `json:"dryRun"`
}

// Progress is reported after each repository.
type Progress struct {
	Target     Target
	Repository string
	Images     int
	Selected   int
	Removed    int
	Err        error
}

// Sweeper sweeps repositories. The zero value is not usable: set Retention (and
// Audit, unless every run is a dry run).
type Sweeper struct {
	Retention config.Retention
	// Repositories are the globs of repositories regflow manages (config.Repositories,
	// matched as IAM matches them: * crosses /); empty means every repository.
	Repositories []string
	// Only, when set, is a further glob a repository must match (regflow sweep --repo).
	Only  string
	Audit Auditor
	// Protection is read again before each delete call, for each of Environments
	// (config.PromotionPath): a real run needs it.
	Protection   Protection
	Environments []string
	// InUse, when set, reads what runs in each registry's account (ECS, Lambda) once per
	// registry and sweep: what runs is kept. A failed read stops the registry's deletes.
	InUse InUseSource
	// running, when set, is what the planner read for the registry at the run's start.
	running *Running
	// Cache, when set, keeps manifest facts between sweeps.
	Cache       ManifestCache
	Concurrency int
	Log         *slog.Logger
	// OnRepository, when set, is called after each repository (from several goroutines).
	OnRepository func(Progress)
	// Pause waits between retries of deletes refused for parents just deleted
	// (ECR's view of manifest lists may lag a delete). Default: time-based, 1 s doubling.
	Pause func(ctx context.Context, attempt int) error
}

// Managed says whether the sweep covers repo.
func (s *Sweeper) Managed(repo string) bool {
	if s.Only != "" {
		if !glob.Match(s.Only, repo) {
			return false
		}
	}
	if len(s.Repositories) == 0 {
		return true
	}
	for _, g := range s.Repositories {
		if glob.Match(g, repo) {
			return true
		}
	}
	return false
}

// Select returns the managed repositories of a listing.
func (s *Sweeper) Select(repos []string) []string {
	var out []string
	for _, r := range repos {
		if s.Managed(r) {
			out = append(out, r)
		}
	}
	return out
}

// Estate sweeps every managed repository of every target inline.
func (s *Sweeper) Estate(ctx context.Context, run Run, targets []Target, registries func(context.Context, Target) (Registry, error), prot Protections) *Report {
	rep := &Report{Run: run}
	for _, t := range targets {
		reg, err := registries(ctx, t)
		var repos []string
		if err == nil {
			repos, err = reg.Repositories(ctx)
		}
		if err != nil {
			if s.Log != nil {
				s.Log.Error("cannot list repositories", "registry", t.String(), "error", err)
			}
			rr := newRegistryReport(t, run)
			rr.AddFailure("*", fmt.Errorf("list repositories of %s: %w", t, err))
			rep.Add(rr)
			continue
		}
		rep.Add(s.Registry(ctx, run, t, reg, s.Select(repos), prot))
	}
	rep.Sort()
	return rep
}

// Registry sweeps repos of one registry, Concurrency at a time. Repositories left
// unswept because ctx ended are reported failed.
func (s *Sweeper) Registry(ctx context.Context, run Run, t Target, reg Registry, repos []string, prot Protections) *RegistryReport {
	rr, rest := s.RegistryWithin(ctx, run, t, reg, repos, prot)
	for _, repo := range rest {
		rr.AddFailure(repo, fmt.Errorf("not swept: %w", context.Cause(ctx)))
	}
	rr.Sort()
	return rr
}

// RegistryWithin sweeps repos while ctx (a deadline budget) lasts: once it ends no
// repository starts, and one it interrupted is handed back with the rest instead of
// being reported failed; what its deletes did before is in the report (and audited),
// so sweeping it again later adds up.
func (s *Sweeper) RegistryWithin(ctx context.Context, run Run, t Target, reg Registry, repos []string, prot Protections) (*RegistryReport, []string) {
	n := s.Concurrency
	if n <= 0 {
		n = DefaultConcurrency
	}
	// Results fold into the report as repositories finish, so only the report's copy
	// of each decision stays in memory.
	rr := newRegistryReport(t, run)
	if len(repos) == 0 {
		return rr, nil
	}
	var running Running
	var err error
	if s.running != nil {
		running = *s.running
	} else {
		running, err = ReadRunning(ctx, s.InUse, t)
	}
	if err != nil {
		if s.Log != nil {
			s.Log.Error("cannot read what runs: the registry deletes nothing", "registry", t.String(), "error", err)
		}
		for _, repo := range repos {
			rr.AddFailure(repo, err)
		}
		rr.Sort()
		return rr, nil
	}
	rr.InUseNotRead = running.NotRead
	var (
		mu   sync.Mutex
		rest []string
		wg   sync.WaitGroup
	)
	sem := make(chan struct{}, n)
	for i, repo := range repos {
		acquired := false
		select {
		case sem <- struct{}{}:
			acquired = true
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			if acquired {
				<-sem
			}
			mu.Lock()
			rest = append(rest, repos[i:]...)
			mu.Unlock()
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			r := s.repository(ctx, run, t, reg, repo, prot[repo], running.Uses[repo])
			if s.OnRepository != nil {
				p := Progress{Target: t, Repository: repo, Err: r.err, Removed: r.outcome.Removed}
				if r.res != nil {
					p.Images, p.Selected = len(r.res.Decisions), r.res.Deleted
				}
				s.OnRepository(p)
			}
			mu.Lock()
			defer mu.Unlock()
			// What the deletes did stays counted, whatever happened next.
			rr.Outcome = rr.Outcome.add(r.outcome)
			rr.NotDeleted = append(rr.NotDeleted, r.notDeleted...)
			rr.Skipped = append(rr.Skipped, r.skipped...)
			rr.Drift = append(rr.Drift, r.drift...)
			switch {
			case r.err != nil && ctx.Err() != nil:
				rest = append(rest, r.repo) // interrupted by the budget
			case r.err != nil:
				rr.AddFailure(r.repo, r.err)
			default:
				rr.Report.Add(r.res)
			}
		})
	}
	wg.Wait()
	rr.Sort()
	slices.Sort(rest)
	return rr, rest
}

type repoResult struct {
	repo       string
	res        *retention.Result
	outcome    Outcome
	notDeleted []NotDeleted
	skipped    []NotDeleted
	drift      []Drift
	err        error
}

// repository sweeps one repository: list, read manifests, select, delete in order.
func (s *Sweeper) repository(ctx context.Context, run Run, t Target, reg Registry, repo string, prot retention.Protected, uses []Use) repoResult {
	out := repoResult{repo: repo}
	imgs, err := reg.ListImages(ctx, repo)
	if err != nil {
		out.err = err
		return out
	}
	if imgs, err = s.readManifests(ctx, run, reg, repo, imgs); err != nil {
		out.err = err
		return out
	}
	// What runs is kept: it joins the store's protections here and at every recheck.
	prot.InUse = inUseOf(uses, imgs)
	out.drift = drift(repo, prot.InUse, prot)
	res, err := retention.Select(retention.Input{
		Repository: repo, Images: slices.Clone(imgs), Protected: prot,
		Policy: retention.PolicyFor(s.Retention, repo), Now: run.Now,
	})
	if err != nil {
		out.err = err
		return out
	}
	out.res = res
	if run.DryRun || len(res.Batches) == 0 {
		return out
	}
	if s.Audit == nil || s.Protection == nil {
		out.err = errNoAudit
		return out
	}
	sel := selected{res: res, images: imgs, protected: prot}
	out.outcome, out.notDeleted, out.skipped, out.err = s.delete(ctx, run, t, reg, sel)
	if out.err != nil {
		// Selection stands; the deletions that went through are in the audit trail.
		out.err = fmt.Errorf("delete in %s: %w", repo, out.err)
	}
	return out
}

// readManifests fills in children and subjects for the images that need them,
// from the cache where it can. Images gone since the listing are dropped.
func (s *Sweeper) readManifests(ctx context.Context, run Run, reg Registry, repo string, imgs []retention.Image) ([]retention.Image, error) {
	var need []int
	for i := range imgs {
		if retention.NeedsManifest(imgs[i]) {
			need = append(need, i)
		}
	}
	if len(need) == 0 {
		return imgs, nil
	}
	var cached map[string]store.ManifestInfo
	if s.Cache != nil {
		ds := make([]string, len(need))
		for k, i := range need {
			ds[k] = imgs[i].Digest
		}
		var err error
		if cached, err = s.Cache.ManifestInfos(ctx, ds); err != nil {
			return nil, fmt.Errorf("read cached manifest facts for %s: %w", repo, err)
		}
	}
	gone := map[string]bool{}
	var fetch []int
	for _, i := range need {
		info, ok := cached[imgs[i].Digest]
		if !ok {
			fetch = append(fetch, i)
			continue
		}
		imgs[i].MediaType, imgs[i].Subject = info.MediaType, info.Subject
		if info.ArtifactType != "" {
			imgs[i].ArtifactType = info.ArtifactType
		}
		if info.Index {
			imgs[i].Children = append([]string{}, info.Children...)
		}
	}
	// Fetch in chunks of one BatchGetImage call, so raw manifests never pile up.
	for chunk := range slices.Chunk(fetch, retention.MaxBatch) {
		ds := make([]string, len(chunk))
		for k, i := range chunk {
			ds[k] = imgs[i].Digest
		}
		raw, err := reg.Manifests(ctx, repo, ds)
		if err != nil {
			return nil, fmt.Errorf("read manifests of %s: %w", repo, err)
		}
		var infos []store.ManifestInfo
		for _, i := range chunk {
			img := &imgs[i]
			b, ok := raw[img.Digest]
			if !ok {
				gone[img.Digest] = true
				continue
			}
			if err := retention.ApplyManifest(img, b); err != nil {
				return nil, fmt.Errorf("repository %s: %w", repo, err)
			}
			infos = append(infos, store.ManifestInfo{
				Digest: img.Digest, MediaType: img.MediaType, ArtifactType: img.ArtifactType,
				Index: img.Children != nil, Children: img.Children, Subject: img.Subject,
				Expires: run.Now.Add(manifestCacheFor),
			})
		}
		if s.Cache != nil && len(infos) > 0 {
			if err := s.Cache.PutManifestInfos(ctx, infos); err != nil {
				return nil, fmt.Errorf("cache manifest facts for %s: %w", repo, err)
			}
		}
	}
	if len(gone) > 0 {
		imgs = slices.DeleteFunc(imgs, func(img retention.Image) bool { return gone[img.Digest] })
	}
	return imgs, nil
}

// selected is one repository's selection and what it was made from.
type selected struct {
	res       *retention.Result
	images    []retention.Image
	protected retention.Protected
}

// delete runs the batches in order. Before each call it reads the repository's
// protections again and leaves out what is protected since the selection; after
// it, each image's audit entry says what the call did (deleted, already gone,
// refused, or the call failed as a whole), under IDs that a retry of the same run
// reuses, so a retried batch adds nothing to the trail.
func (s *Sweeper) delete(ctx context.Context, run Run, t Target, reg Registry, sel selected) (Outcome, []NotDeleted, []NotDeleted, error) {
	res := sel.res
	dec := make(map[string]*retention.Decision, res.Deleted)
	for i := range res.Decisions {
		if d := &res.Decisions[i]; d.Action == retention.Delete {
			dec[d.Digest] = d
		}
	}
	var (
		out     Outcome
		refused []NotDeleted
		skipped []NotDeleted
		retry   []Referenced // refused while every parent named is one this sweep removed
		removed = map[string]bool{}
		kept    = map[string]bool{} // protected since the selection
	)
	apply := func(batch []string) error {
		batch, err := s.recheck(ctx, run, &sel, batch, removed, kept, &skipped)
		if err != nil {
			return err
		}
		out.Skipped = len(skipped)
		if len(batch) == 0 {
			return nil
		}
		d, err := reg.DeleteImages(ctx, res.Repository, batch)
		if err != nil {
			// Nothing is known deleted: each image gets a failure entry, none a deletion.
			if aerr := s.Audit.AppendAudits(ctx, s.failedCall(run, t, res.Repository, batch, err)); aerr != nil {
				return errors.Join(err, fmt.Errorf("audit the failed delete call: %w", aerr))
			}
			return err
		}
		entries := s.auditEntries(run, t, res.Repository, d.Deleted, dec, event.ActionImageDeleted, "")
		for i := range entries {
			if slices.Contains(d.DeletedOnRetry, d.Deleted[i]) {
				entries[i].Details["confirmed"] = "gone on the delete call's retry: its first attempt deleted it and lost the answer"
			}
		}
		entries = append(entries, s.auditEntries(run, t, res.Repository, d.NotFound, dec, event.ActionImageGone,
			"already gone when the sweep deleted it (an earlier attempt of this run, or someone else)")...)
		if err := s.Audit.AppendAudits(ctx, entries); err != nil {
			return fmt.Errorf("audit deletions: %w", err)
		}
		for _, g := range d.Deleted {
			removed[g] = true
			out.Removed++
			if x := dec[g]; x != nil {
				out.BytesRemoved += x.SizeBytes
			}
		}
		for _, g := range d.NotFound {
			removed[g] = true
			out.AlreadyGone++
		}
		var failed []NotDeleted
		for _, r := range d.Referenced {
			if len(r.Parents) > 0 && !slices.ContainsFunc(r.Parents, func(p string) bool { return !removed[p] }) {
				retry = append(retry, r)
				continue
			}
			failed = append(failed, NotDeleted{Repository: res.Repository, Digest: r.Digest, Code: "ImageReferencedByManifestList",
				Reason: "still listed by manifest list " + joinShort(r.Parents) + " that this sweep keeps (pushed after the listing?)"})
		}
		for _, f := range d.Failed {
			failed = append(failed, NotDeleted{Repository: res.Repository, Digest: f.Digest, Code: f.Code, Reason: f.Reason})
		}
		return s.refuse(ctx, run, t, &refused, failed)
	}
	for _, batch := range res.Batches {
		if err := apply(batch); err != nil {
			return out, refused, skipped, err
		}
	}
	for attempt := 1; len(retry) > 0; attempt++ {
		if attempt > 3 {
			var failed []NotDeleted
			for _, r := range retry {
				failed = append(failed, NotDeleted{Repository: res.Repository, Digest: r.Digest, Code: "ImageReferencedByManifestList",
					Reason: "still listed by deleted manifest list " + joinShort(r.Parents) + " after 3 retries: " + r.Reason})
			}
			return out, refused, skipped, s.refuse(ctx, run, t, &refused, failed)
		}
		if err := s.pause(ctx, attempt); err != nil {
			return out, refused, skipped, err
		}
		batch := make([]string, len(retry))
		for i, r := range retry {
			batch[i] = r.Digest
		}
		retry = nil
		for chunk := range slices.Chunk(batch, retention.MaxBatch) {
			if err := apply(chunk); err != nil {
				return out, refused, skipped, err
			}
		}
	}
	return out, refused, skipped, nil
}

// recheck reads the repository's protections again and drops from batch what they
// keep now that they did not at selection (with the reason selection gives now).
// Unchanged protections (the usual case) cost the reads and nothing else.
func (s *Sweeper) recheck(ctx context.Context, run Run, sel *selected, batch []string, removed, kept map[string]bool, skipped *[]NotDeleted) ([]string, error) {
	repo := sel.res.Repository
	fresh, err := RepositoryProtections(ctx, s.Protection, s.Environments, repo, run.Now)
	if err != nil {
		return nil, err
	}
	fresh.InUse = sel.protected.InUse
	if !sameProtection(fresh, sel.protected) {
		now, err := retention.Select(retention.Input{
			Repository: repo, Images: slices.Clone(sel.images), Protected: fresh,
			Policy: retention.PolicyFor(s.Retention, repo), Now: run.Now,
		})
		if err != nil {
			return nil, fmt.Errorf("select again in %s: %w", repo, err)
		}
		for _, d := range now.Decisions {
			if d.Action == retention.Delete || kept[d.Digest] || removed[d.Digest] || !selectedToDelete(sel.res, d.Digest) {
				continue
			}
			kept[d.Digest] = true
			*skipped = append(*skipped, NotDeleted{Repository: repo, Digest: d.Digest, Code: "ProtectedSinceSelection", Reason: d.Reason})
			if s.Log != nil {
				s.Log.Info("sweep skipped an image protected since the selection", "repository", repo, "digest", d.Digest, "reason", d.Reason)
			}
		}
		sel.protected = fresh
	}
	if len(kept) == 0 {
		return batch, nil
	}
	return slices.DeleteFunc(slices.Clone(batch), func(d string) bool { return kept[d] }), nil
}

// selectedToDelete says whether the selection chose digest.
func selectedToDelete(res *retention.Result, digest string) bool {
	i, ok := slices.BinarySearchFunc(res.Decisions, digest, func(d retention.Decision, g string) int { return strings.Compare(d.Digest, g) })
	return ok && res.Decisions[i].Action == retention.Delete
}

func (s *Sweeper) refuse(ctx context.Context, run Run, t Target, refused *[]NotDeleted, failed []NotDeleted) error {
	if len(failed) == 0 {
		return nil
	}
	entries := make([]regflow.AuditEntry, len(failed))
	for i, f := range failed {
		entries[i] = regflow.AuditEntry{
			Subject: f.Repository + "@" + f.Digest, ID: auditID(run, t, f.Digest) + "#refused",
			Time: run.Now, Action: event.ActionDeleteFailed, Actor: Actor, Reason: f.Code + ": " + f.Reason,
			Details: map[string]string{"run": run.ID, "registry": t.Name, "account": t.Account, "region": t.Region},
		}
	}
	*refused = append(*refused, failed...)
	if err := s.Audit.AppendAudits(ctx, entries); err != nil {
		return fmt.Errorf("audit refused deletes: %w", err)
	}
	return nil
}

func (s *Sweeper) pause(ctx context.Context, attempt int) error {
	if s.Pause != nil {
		return s.Pause(ctx, attempt)
	}
	t := time.NewTimer(time.Second << (attempt - 1))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// auditID is deterministic per run, registry and digest, so a retried sweep
// finds its entry written and adds none (audit writes never overwrite).
func auditID(run Run, t Target, digest string) string {
	return run.ID + "#" + t.Key() + "#" + digest
}

func (s *Sweeper) auditEntries(run Run, t Target, repo string, digests []string, dec map[string]*retention.Decision, action, reason string) []regflow.AuditEntry {
	out := make([]regflow.AuditEntry, len(digests))
	for i, d := range digests {
		e := regflow.AuditEntry{
			Subject: repo + "@" + d, ID: auditID(run, t, d), Time: run.Now,
			Action: action, Actor: Actor, Reason: reason,
			Details: map[string]string{"run": run.ID, "registry": t.Name, "account": t.Account, "region": t.Region},
		}
		if x := dec[d]; x != nil {
			if e.Reason == "" {
				e.Reason = x.Reason
			} else {
				e.Details["selected"] = x.Reason
			}
			e.Details["code"] = string(x.Code)
			e.Details["batch"] = strconv.Itoa(x.Batch)
			if len(x.Tags) > 0 {
				e.Details["tags"] = joinTags(x.Tags)
			}
		}
		out[i] = e
	}
	return out
}

// failedCall is the audit of a delete call that failed as a whole: one failure
// entry per image, under an ID of its own, so the entry for a later deletion of the
// image is still written and a retry that fails again adds nothing.
func (s *Sweeper) failedCall(run Run, t Target, repo string, digests []string, err error) []regflow.AuditEntry {
	out := make([]regflow.AuditEntry, len(digests))
	for i, d := range digests {
		out[i] = regflow.AuditEntry{
			Subject: repo + "@" + d, ID: auditID(run, t, d) + "#call-failed", Time: run.Now,
			Action: event.ActionDeleteFailed, Actor: Actor, Reason: "the delete call failed as a whole, nothing known deleted: " + err.Error(),
			Details: map[string]string{"run": run.ID, "registry": t.Name, "account": t.Account, "region": t.Region},
		}
	}
	return out
}

func joinTags(tags []string) string {
	s := ""
	for i, t := range tags {
		if i > 0 {
			s += ","
		}
		s += t
	}
	return s
}

func joinShort(ds []string) string {
	s := ""
	for i, d := range ds {
		if i > 0 {
			s += ", "
		}
		s += regflow.ShortDigest(d)
	}
	return s
}

// errNoAudit guards real runs configured without an audit trail.
var errNoAudit = errors.New("sweep: a run that deletes needs an audit trail and protection data read before each delete (Sweeper.Audit, Sweeper.Protection)")
