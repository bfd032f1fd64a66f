// Package localecr is a local Amazon ECR: one Server per simulated AWS account,
// serving on one loopback port both
//
//   - the OCI Distribution API under /v2/ (blobs with monolithic, chunked and
//     streamed uploads and cross-repository mount; manifests by tag and digest;
//     tags list; catalog; the OCI 1.1 referrers API with the artifactType
//     filter; manifest delete), so crane, skopeo and go-containerregistry push
//     and pull unchanged. Blob uploads are go-containerregistry's pkg/registry
//     over this package's blob store; manifests, tags and referrers are served
//     from this package's own index, because ECR's semantics live there
//     (deleting a digest removes its tags, immutable tags, repositories must
//     exist, manifest lists must reference existing images);
//   - the ECR JSON 1.1 control plane (POST / with X-Amz-Target
//     AmazonEC2ContainerRegistry_V20150921.<Op>), with ECR's request and
//     response shapes, error types and pagination; see ECROperations.
//
// Typical use in a test:
//
//	srv, err := localecr.New(localecr.Options{Account: "111111111111", OnEvent: bus.Publish})
//	if err != nil { ... }
//	if err := srv.Start(ctx); err != nil { ... }
//	defer srv.Close()
//	cfg.BaseEndpoint = aws.String(srv.URL())   // or AWS_ENDPOINT_URL_ECR=srv.URL()
//	client := ecr.NewFromConfig(cfg)
//	ref := srv.Host() + "/team/app:1.0"       // registry references
//
// Registry authentication works as in ECR: GetAuthorizationToken returns a
// base64 "AWS:<password>" token and proxyEndpoint = URL(); /v2 requests without
// those Basic credentials get 401 with a Basic WWW-Authenticate challenge.
// Options.AuthDisabled turns the check off. The token's expiresAt is reported
// but not enforced, because tests move the clock across months.
//
// Events: Options.OnEvent receives EventBridge-shaped events in order on one
// goroutine per server: "ECR Image Action" PUSH per tag pushed (and one
// without image-tag for a push by digest), DELETE per tag removed (one
// without image-tag for an untagged image), and "ECR Image Scan" when a scan
// result is recorded (InjectScan, or Options.Scanner for scan-on-push).
// WaitEvents waits until all events emitted so far are delivered.
//
// Time: Options.Clock (see Clock, FixedClock) dates pushes, pulls, scans and
// events, so a test can make images 100 days old with Clock().Advance.
//
// Faults and counters: SetFault(op, Fault{...}) adds latency, throttling
// (ThrottlingException / HTTP 429 TOOMANYREQUESTS above N requests per
// second), HTTP 500s and dropped connections (optionally mid-body) per
// operation; op is an ECR operation name or one of the Op* registry
// operations. Requests(op) counts requests per operation.
//
// Volume: Seed inserts image records without HTTP and without events, for
// benchmarks with 100,000 images (about 0.4 s for 1,000 repositories × 100
// images; BenchmarkSeed100k). Seeded images without a manifest get a small
// generated one that can be pulled.
//
// Clients: the AWS SDK's standard retryer retries net.ErrClosed, which Go's
// HTTP transport can produce against a server this fast (a closed request
// body races the response; aws/aws-sdk-go-v2#2737). A client built with
// aws.NopRetryer sees it now and then on large responses.
//
// Semantics worth knowing (from ECR's documentation and behaviour):
//   - BatchDeleteImage by a tag that is not the image's last removes only that
//     tag; by the last tag or by digest it deletes the image and all its tags;
//     more than 100 ids is InvalidParameterException; an image that a manifest
//     list in the repository references fails with ImageReferencedByManifestList
//     (also when deleting its last tag would delete it).
//   - PutImage of a manifest under a tag that an immutable tag (IMMUTABLE, or
//     the *_WITH_EXCLUSION rules) holds for another digest fails with
//     ImageTagAlreadyExistsException; the registry API answers 400 TAG_INVALID.
//     Re-pushing the same digest and tag through /v2 succeeds (idempotent) and
//     emits PUSH again; through PutImage it is ImageAlreadyExistsException.
//   - PutImage and manifest pushes need the referenced blobs
//     (LayersNotFoundException) and, for indexes, the referenced manifests
//     (ReferencedImagesNotFoundException).
//   - imageSizeInBytes is the sum of layer sizes; for a manifest list the
//     largest of its images. lastRecordedPullTime is updated by manifest GETs
//     and BatchGetImage (HEADs do not count).
//   - Blobs are kept in memory, stored once per server but visible only in
//     the repositories they were pushed or mounted into (a mount from another
//     repository answers 201 without moving bytes); they are never
//     garbage-collected while the server runs. ECR's registry API does not
//     delete blobs (DELETE answers 405).
//   - SigV4 signatures on the control plane are not verified: any credentials
//     work. Options.Password fixes the registry password, e.g. for a local
//     stack that prints `crane auth login` instructions.
//   - repositoryUri is Host()+"/"+name, a reference that works locally.
package localecr
