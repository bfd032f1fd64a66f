package retention

import (
	"fmt"
	"regexp"
	"time"

	"github.com/regflow/regflow/shared/config"
	"github.com/regflow/regflow/shared/glob"
)

// Defaults used when a config.Retention was built by hand and left fields empty
// (config.Parse fills the same values).
const (
	DefaultMaxAge         = config.Duration(90 * 24 * time.Hour)
	DefaultUntaggedMaxAge = config.Duration(14 * 24 * time.Hour)
	DefaultKeepReleases   = 3
)

// Policy is the retention policy of one repository.
type Policy struct {
	// MaxAge: a tagged image becomes a candidate for deletion once pushed longer ago than this.
	MaxAge config.Duration `json:"maxAge"`
	// UntaggedMaxAge: the same for untagged images (children of an index are not judged by it).
	UntaggedMaxAge config.Duration `json:"untaggedMaxAge"`
	// UnpulledFor, when set, spares expired images that were pulled within this span.
	// An image ECR never recorded a pull for counts as never pulled.
	UnpulledFor config.Duration `json:"unpulledFor,omitempty"`
	// KeepNewest keeps the newest N tagged images of the repository whatever their age
	// (ranked by push time, ties by digest, among tagged images that are not referrers
	// and, when IncludeTags is set, carry a matching tag; protected images count too).
	KeepNewest int `json:"keepNewest"`
	// KeepReleases is how many releases per environment are protected, counting the
	// current one: 3 keeps the current release and the two before it.
	KeepReleases int `json:"keepReleases"`
	// IncludeTags, when set, makes only tagged images with a tag matching this regular
	// expression (unanchored, Go syntax) candidates; other tagged images are kept.
	// Untagged images stay governed by UntaggedMaxAge.
	IncludeTags string `json:"includeTags,omitempty"`
	// ExcludeTags, when set, keeps every image with a tag matching this regular expression.
	ExcludeTags string `json:"excludeTags,omitempty"`
	// Override is the glob of the per-repository override that applied, if any.
	Override string `json:"override,omitempty"`
}

// PolicyFor returns the policy for a repository: the base retention settings with the
// first override whose glob (shared/glob: * crosses /) matches repo.
func PolicyFor(cfg config.Retention, repo string) Policy {
	p := Policy{
		MaxAge:         cfg.MaxAge,
		UntaggedMaxAge: cfg.UntaggedMaxAge,
		UnpulledFor:    cfg.UnpulledFor,
		KeepNewest:     cfg.KeepNewest,
		KeepReleases:   cfg.KeepReleases,
		IncludeTags:    cfg.IncludeTags,
		ExcludeTags:    cfg.ExcludeTags,
	}
	if p.MaxAge == 0 {
		p.MaxAge = DefaultMaxAge
	}
	if p.UntaggedMaxAge == 0 {
		p.UntaggedMaxAge = DefaultUntaggedMaxAge
	}
	if p.KeepReleases == 0 {
		p.KeepReleases = DefaultKeepReleases
	}
	for _, o := range cfg.Overrides {
		if !glob.Match(o.Repositories, repo) {
			continue
		}
		p.Override = o.Repositories
		if o.MaxAge != nil {
			p.MaxAge = *o.MaxAge
		}
		if o.UntaggedMaxAge != nil {
			p.UntaggedMaxAge = *o.UntaggedMaxAge
		}
		if o.KeepNewest != nil {
			p.KeepNewest = *o.KeepNewest
		}
		break
	}
	return p
}

// Validate reports the first setting that would make selection unsafe or meaningless.
func (p Policy) Validate() error {
	_, err := p.compile()
	return err
}

type compiledPolicy struct {
	Policy
	include, exclude *regexp.Regexp
}

func (p Policy) compile() (*compiledPolicy, error) {
	switch {
	case p.MaxAge <= 0:
		return nil, fmt.Errorf("retention policy: maxAge %s must be more than zero (a zero age would delete every image at once)", p.MaxAge)
	case p.UntaggedMaxAge <= 0:
		// Children of a multi-platform image are pushed untagged before their index;
		// a zero age would delete them mid-push.
		return nil, fmt.Errorf("retention policy: untaggedMaxAge %s must be more than zero (a zero age would delete images still being pushed)", p.UntaggedMaxAge)
	case p.UnpulledFor < 0:
		return nil, fmt.Errorf("retention policy: unpulledFor %s must not be negative", p.UnpulledFor)
	case p.KeepNewest < 0:
		return nil, fmt.Errorf("retention policy: keepNewest %d must be 0 or more", p.KeepNewest)
	case p.KeepReleases < 1:
		return nil, fmt.Errorf("retention policy: keepReleases %d must be at least 1 (the current release is always kept)", p.KeepReleases)
	}
	c := &compiledPolicy{Policy: p}
	var err error
	if p.IncludeTags != "" {
		if c.include, err = regexp.Compile(p.IncludeTags); err != nil {
			return nil, fmt.Errorf("retention policy: includeTags %q: %w", p.IncludeTags, err)
		}
	}
	if p.ExcludeTags != "" {
		if c.exclude, err = regexp.Compile(p.ExcludeTags); err != nil {
			return nil, fmt.Errorf("retention policy: excludeTags %q: %w", p.ExcludeTags, err)
		}
	}
	return c, nil
}

// firstMatch returns the first of the (sorted) tags re matches.
func firstMatch(re *regexp.Regexp, tags []string) (string, bool) {
	for _, t := range tags {
		if re.MatchString(t) {
			return t, true
		}
	}
	return "", false
}
