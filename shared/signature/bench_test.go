package signature_test

import (
	"context"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/regflow/regflow/shared/config"
)

// BenchmarkVerify is one gate decision's signature check on the local ECR, per format
// (the budget: 50 ms), the policy compiled once as NewChecker does.
func BenchmarkVerify(b *testing.B) {
	e := startECR(b)
	w := newWorld(b)
	cases := []struct {
		name   string
		policy config.SignatureRequirement
		attach func(img v1.Descriptor)
	}{
		{"cosign-key", w.keyPolicy, func(img v1.Descriptor) { e.attachCosign(b, img, cosignSig{keypair: w.key}) }},
		{"keyless-bundle", w.keyless, func(img v1.Descriptor) {
			e.attachBundle(b, img, img.Digest, keypair(b), caProvider{b, w.fulcio, leafOpts{san: ciSubject, issuer: ciIssuer}})
		}},
		{"notation", w.notation, func(img v1.Descriptor) { e.attachNotation(b, img, nil, w.notaryKey, w.notaryChain) }},
	}
	for i, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			img := e.pushImage(b, uint64(900+i))
			c.attach(img)
			v := verifier(b, false, c.policy)
			ctx := context.Background()
			for b.Loop() {
				res, err := v.Verify(ctx, e.reg, e.target(img.Digest))
				if err != nil || !res.Verified {
					b.Fatalf("%+v, %v", res, err)
				}
			}
		})
	}
}
