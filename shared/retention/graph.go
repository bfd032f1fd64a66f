package retention

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// cosign's tag-based scheme stores a signature, attestation or SBOM of sha256:<hex>
// under the tag sha256-<hex>.sig|.att|.sbom, with no subject field in the manifest.
var cosignTagRE = regexp.MustCompile(`^sha256-([0-9a-f]{64})\.(sig|att|sbom)$`)

const (
	mediaTypeOCIIndex         = "application/vnd.oci.image.index.v1+json"
	mediaTypeDockerList       = "application/vnd.docker.distribution.manifest.list.v2+json"
	none                int32 = -1
)

func isIndexMediaType(mt string) bool { return mt == mediaTypeOCIIndex || mt == mediaTypeDockerList }

// node is one image with its references resolved to positions in graph.nodes.
type node struct {
	img        Image   // Tags sorted and copied
	children   []int32 // present children, ascending, unique
	parents    []int32 // present indexes listing this image, ascending
	subject    int32   // present subject, or none
	subjectRef string  // the subject digest named, present or not
	referrers  []int32 // present images whose subject this is, ascending
	kind       string  // what a referrer is, for reasons: signature, SBOM, attestation, referrer
}

// graph holds one repository's images sorted by digest, so every later step is
// independent of the order the caller listed them in.
type graph struct {
	nodes []node
	idx   map[string]int32
}

// validDigest checks the OCI digest grammar (image-spec descriptor.md):
// algorithm := component (separator component)*, component := [a-z0-9]+,
// separator := [+._-], encoded := [a-zA-Z0-9=_-]+. A byte loop rather than a
// regular expression: it runs for every reference and was most of selection's time.
func validDigest(d string) bool {
	algo, enc, ok := strings.Cut(d, ":")
	if !ok || algo == "" || enc == "" {
		return false
	}
	prevSep := true // the algorithm may not start with a separator
	for i := 0; i < len(algo); i++ {
		switch c := algo[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
			prevSep = false
		case c == '+' || c == '.' || c == '_' || c == '-':
			if prevSep {
				return false
			}
			prevSep = true
		default:
			return false
		}
	}
	if prevSep {
		return false
	}
	for i := 0; i < len(enc); i++ {
		switch c := enc[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '=', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

func buildGraph(images []Image) (*graph, error) {
	order := make([]int, len(images))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(images[a].Digest, images[b].Digest) })

	g := &graph{nodes: make([]node, len(images)), idx: make(map[string]int32, len(images))}
	for pos, i := range order {
		img := images[i]
		if !validDigest(img.Digest) {
			return nil, fmt.Errorf("image digest %q is not a digest such as sha256:<64 hex>", img.Digest)
		}
		if _, dup := g.idx[img.Digest]; dup {
			return nil, fmt.Errorf("image %s is listed twice", img.Digest)
		}
		if img.SizeBytes < 0 {
			return nil, fmt.Errorf("image %s: size %d bytes must not be negative", img.Digest, img.SizeBytes)
		}
		if img.Children == nil && isIndexMediaType(img.MediaType) {
			return nil, fmt.Errorf("image %s is an index (%s) but its child manifests were not given; fetch the index manifest first, or selection could sweep children it still needs", img.Digest, img.MediaType)
		}
		for _, t := range img.Tags {
			if t == "" {
				return nil, fmt.Errorf("image %s has an empty tag", img.Digest)
			}
		}
		img.Tags = slices.Clone(img.Tags)
		slices.Sort(img.Tags)
		img.Tags = slices.Compact(img.Tags)
		g.nodes[pos] = node{img: img, subject: none}
		g.idx[img.Digest] = int32(pos)
	}

	for pos := range g.nodes {
		n := &g.nodes[pos]
		for _, c := range n.img.Children {
			if !validDigest(c) {
				return nil, fmt.Errorf("index %s lists child %q, which is not a digest", n.img.Digest, c)
			}
			if j, ok := g.idx[c]; ok {
				n.children = append(n.children, j)
			}
		}
		slices.Sort(n.children)
		n.children = slices.Compact(n.children)
		for _, j := range n.children {
			g.nodes[j].parents = append(g.nodes[j].parents, int32(pos))
		}

		suffix := ""
		switch {
		case n.img.Subject != "":
			if !validDigest(n.img.Subject) {
				return nil, fmt.Errorf("image %s names subject %q, which is not a digest", n.img.Digest, n.img.Subject)
			}
			n.subjectRef = n.img.Subject
			if j, ok := g.idx[n.subjectRef]; ok {
				n.subject = j
			}
		default:
			// Tags are sorted, so the first present subject wins deterministically.
			for _, t := range n.img.Tags {
				if !strings.HasPrefix(t, "sha256-") {
					continue
				}
				m := cosignTagRE.FindStringSubmatch(t)
				if m == nil {
					continue
				}
				d := "sha256:" + m[1]
				if j, ok := g.idx[d]; ok && (n.subject == none || j < n.subject) {
					n.subject, n.subjectRef, suffix = j, d, m[2]
				} else if n.subject == none && (n.subjectRef == "" || d < n.subjectRef) {
					n.subjectRef, suffix = d, m[2]
				}
			}
		}
		if n.subjectRef != "" {
			n.kind = referrerKind(n.img.ArtifactType, suffix)
		}
	}
	for pos := range g.nodes {
		if s := g.nodes[pos].subject; s != none {
			g.nodes[s].referrers = append(g.nodes[s].referrers, int32(pos))
		}
	}
	if err := g.checkAcyclic(); err != nil {
		return nil, err
	}
	return g, nil
}

// referrerKind names a referrer in reasons from its artifact type or cosign tag suffix.
func referrerKind(artifactType, cosignSuffix string) string {
	switch cosignSuffix {
	case "sig":
		return "signature"
	case "att":
		return "attestation"
	case "sbom":
		return "SBOM"
	}
	t := strings.ToLower(artifactType)
	has := func(subs ...string) bool {
		return slices.ContainsFunc(subs, func(s string) bool { return strings.Contains(t, s) })
	}
	switch {
	case has("signature", "cosign.artifact.sig", "notary", "sigstore.bundle"):
		return "signature"
	case has("spdx", "cyclonedx", "syft", "sbom"):
		return "SBOM"
	case has("in-toto", "dsse", "attestation", "provenance", "vex"):
		return "attestation"
	}
	return "referrer"
}

// succ returns the k-th manifest that v references (children, then subject).
func (g *graph) succ(v int32, k int) (int32, bool) {
	n := &g.nodes[v]
	if k < len(n.children) {
		return n.children[k], true
	}
	if k == len(n.children) && n.subject != none {
		return n.subject, true
	}
	return none, false
}

// checkAcyclic rejects reference cycles: content addressing makes them impossible,
// so one means the listing is corrupt, and no deletion order could satisfy ECR.
func (g *graph) checkAcyclic() error {
	const (
		white = iota
		grey
		black
	)
	state := make([]uint8, len(g.nodes))
	type frame struct {
		v    int32
		next int
	}
	var stack []frame
	for s := range g.nodes {
		if state[s] != white {
			continue
		}
		stack = append(stack[:0], frame{v: int32(s)})
		state[s] = grey
		for len(stack) > 0 {
			f := &stack[len(stack)-1]
			w, ok := g.succ(f.v, f.next)
			if !ok {
				state[f.v] = black
				stack = stack[:len(stack)-1]
				continue
			}
			f.next++
			switch state[w] {
			case grey:
				var path []string
				start := slices.IndexFunc(stack, func(fr frame) bool { return fr.v == w })
				for _, fr := range stack[start:] {
					path = append(path, g.nodes[fr.v].img.Digest)
				}
				path = append(path, g.nodes[w].img.Digest)
				return fmt.Errorf("manifests reference each other in a cycle (%s); content-addressed manifests cannot, so the listing is corrupt", strings.Join(path, " → "))
			case white:
				state[w] = grey
				stack = append(stack, frame{v: w})
			}
		}
	}
	return nil
}
