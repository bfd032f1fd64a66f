package retention

import (
	"cmp"
	"slices"
)

// batches orders the deleted images into BatchDeleteImage calls of at most size ids.
//
// A manifest that references another (an index its children, a referrer its subject)
// goes in a strictly earlier batch than the one it references, because ECR refuses to
// delete a manifest an index still lists (ImageReferencedByManifestList) and does not
// promise an order within one call. Deleting referrers first also means a sweep cut
// short never leaves a referrer whose subject is gone; the next sweep finishes the job.
//
// Filling each batch with ready images on the longest remaining chain first
// (Hu's highest-level-first list scheduling) keeps the call count near the floor of
// max(ceil(deleted/size), longest chain).
func (g *graph) batches(kept []bool, size int) [][]int32 {
	n := len(g.nodes)
	waiting := make([]int32, n) // deleted images referencing i not yet placed in a batch
	var dels int
	for i := range g.nodes {
		if kept[i] {
			continue
		}
		dels++
		for k := 0; ; k++ {
			s, ok := g.succ(int32(i), k)
			if !ok {
				break
			}
			// A deleted index may list a child another index keeps; only deleted
			// images take part in the order.
			if !kept[s] {
				waiting[s]++
			}
		}
	}
	if dels == 0 {
		return nil
	}

	// height[i]: images on the longest chain of deletions starting at i. Positions are
	// in digest order, not topological, so memoise with an explicit stack.
	height := make([]int32, n)
	var stack []int32
	for i := range g.nodes {
		if kept[i] || height[i] != 0 {
			continue
		}
		stack = append(stack[:0], int32(i))
		for len(stack) > 0 {
			v := stack[len(stack)-1]
			if height[v] != 0 { // pushed twice by two referencing images
				stack = stack[:len(stack)-1]
				continue
			}
			h, done := int32(1), true
			for k := 0; ; k++ {
				s, ok := g.succ(v, k)
				if !ok {
					break
				}
				if kept[s] {
					continue
				}
				if height[s] == 0 {
					stack = append(stack, s)
					done = false
				} else {
					h = max(h, height[s]+1)
				}
			}
			if done {
				height[v] = h
				stack = stack[:len(stack)-1]
			}
		}
	}

	var ready []int32
	for i := range g.nodes {
		if !kept[i] && waiting[i] == 0 {
			ready = append(ready, int32(i))
		}
	}
	var out [][]int32
	for len(ready) > 0 {
		slices.SortFunc(ready, func(a, b int32) int { return cmp.Or(cmp.Compare(height[b], height[a]), cmp.Compare(a, b)) })
		take := min(size, len(ready))
		batch := slices.Clone(ready[:take])
		next := slices.Clone(ready[take:])
		for _, v := range batch {
			for k := 0; ; k++ {
				s, ok := g.succ(v, k)
				if !ok {
					break
				}
				if kept[s] {
					continue
				}
				if waiting[s]--; waiting[s] == 0 {
					next = append(next, s)
				}
			}
		}
		slices.Sort(batch) // digest order reads better in reports
		out = append(out, batch)
		ready = next
	}
	return out
}
