// Package s3 is a [cas.Store] in an S3 bucket, or in any server that speaks
// the S3 API (MinIO, Ceph, Garage, …) through a custom endpoint and
// path-style addressing.
//
// A value with digest sha256:abcd… is the object Prefix/sha256/ab/abcd…. Put
// never rewrites an object that exists: it asks first (HeadObject) and then
// writes with If-None-Match: *, so that of two writers racing on one digest
// the second is refused by the server and returns nil. Values larger than
// [Config.PartSize] are written as a multipart upload, whose parts go up
// [Config.Concurrency] at a time. Get re-hashes what it reads.
//
// Credentials come from the AWS SDK's usual chain (AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY, AWS_PROFILE and the shared files, web identity,
// the instance role), never from a URL or a [Config]; no error or message of
// this package contains them.
package s3

import (
	"bytes"
	"cmp"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"golang.org/x/sync/errgroup"

	"github.com/pirn-wasm/pirn/cas"
)

// Part sizes, in bytes. S3 refuses parts smaller than MinPartSize (except
// the last) or larger than MaxPartSize, and uploads of more than maxParts
// parts.
const (
	DefaultPartSize = 16 << 20
	MinPartSize     = 5 << 20
	MaxPartSize     = 5 << 30
	maxParts        = 10_000
)

// maxPrealloc bounds what Get allocates up front on a server's word
// (Content-Length); a larger value grows as it is read.
const maxPrealloc = 1 << 30

// DefaultConcurrency is the number of parts of one value uploaded at once
// when [Config.Concurrency] is 0.
const DefaultConcurrency = 4

// Config configures a [Store]. The zero value of each optional field is a
// documented default; [ParseURL] fills one from an s3:// URL.
type Config struct {
	// Bucket is the bucket's name. Required; the bucket must exist.
	Bucket string
	// Prefix is prepended to every key, with a "/" between; leading and
	// trailing slashes are ignored. "" puts values at the bucket's root.
	Prefix string
	// Region is the bucket's region. "" means the SDK's chain (AWS_REGION,
	// the shared config), and "us-east-1" if that names none.
	Region string
	// Endpoint is the base URL (http:// or https://) of an S3-compatible
	// server. "" means AWS's endpoint for Region. It must not hold user
	// info: credentials come from the SDK's chain.
	Endpoint string
	// PathStyle addresses the bucket as Endpoint/Bucket/key instead of
	// Bucket.Endpoint/key, as most S3-compatible servers need.
	PathStyle bool
	// PartSize is the size in bytes of a multipart upload's parts; values
	// larger than PartSize are uploaded in parts. 0 means DefaultPartSize;
	// otherwise it must be within [MinPartSize, MaxPartSize]. A value of more
	// than 10,000 parts is uploaded in larger parts.
	PartSize int64
	// Concurrency is the number of parts of one value in flight at once. 0
	// means DefaultConcurrency.
	Concurrency int
}

// Store is a [cas.Store] in an S3 bucket. It is safe for concurrent use.
type Store struct {
	cfg    Config
	client *s3.Client
	idle   interface{ CloseIdleConnections() } // nil if the client has no such method
	where  string                              // s3://bucket/prefix, for messages
}

var (
	_ cas.Store = (*Store)(nil)
	_ io.Closer = (*Store)(nil)
)

// Open validates cfg, loads the AWS SDK's configuration and credentials,
// and checks that the bucket exists and can be reached (HeadBucket), so that
// a wrong endpoint, bucket or credentials fail here with a clear error
// rather than in the middle of a run. Close the Store when done.
//
// The credentials need s3:ListBucket on the bucket (without it S3 answers
// a HEAD of a missing key with 403, not 404) and s3:GetObject,
// s3:PutObject, s3:DeleteObject and s3:AbortMultipartUpload on the
// prefix's objects.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	if err := validate(&cfg); err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	cfg.PartSize = cmp.Or(cfg.PartSize, DefaultPartSize)
	cfg.Concurrency = cmp.Or(cfg.Concurrency, DefaultConcurrency)

	// The SDK's own HTTP client (so that AWS_CA_BUNDLE and the SDK's
	// defaults apply), keeping more idle connections per host than its
	// default so that concurrent puts and gets do not churn connections.
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.MaxIdleConns = max(tr.MaxIdleConns, 128)
		tr.MaxIdleConnsPerHost = max(tr.MaxIdleConnsPerHost, 64)
	})
	opts := []func(*config.LoadOptions) error{
		config.WithHTTPClient(hc),
		// Get verifies every value against its digest, and a single-part
		// Put sends the digest as the object's SHA-256 checksum, so the
		// SDK's own CRC checksums (whose trailers some S3-compatible
		// servers reject) are only sent where the API requires them.
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		// The SDK's message names a profile or a file, never a secret.
		return nil, fmt.Errorf("s3: load AWS configuration: %w", err)
	}
	awsCfg.Region = cmp.Or(awsCfg.Region, "us-east-1")
	// Frozen, the client is one *http.Client whose idle connections Close
	// can release.
	if bc, ok := awsCfg.HTTPClient.(*awshttp.BuildableClient); ok {
		awsCfg.HTTPClient = bc.Freeze()
	}
	idle, _ := awsCfg.HTTPClient.(interface{ CloseIdleConnections() })
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		// A request whose connection fails or that the server refuses
		// for now (5xx, throttling) is tried up to ten times, backing
		// off up to 2 s: a server restarting is waited for for about ten
		// seconds, as the Postgres backend waits. The SDK's default is
		// three attempts within a fraction of a second. There is no retry
		// quota: the store's writers are few (the scheduler's
		// StoreWriters). AWS_MAX_ATTEMPTS, if set, still sets the number
		// of attempts.
		o.Retryer = retry.NewStandard(func(so *retry.StandardOptions) {
			so.MaxAttempts = retryAttempts
			so.MaxBackoff = 2 * time.Second
			so.RateLimiter = ratelimit.None
		})
		o.UsePathStyle = cfg.PathStyle
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
	})
	s := &Store{cfg: cfg, client: client, idle: idle, where: where(cfg)}
	if err := s.checkBucket(ctx); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// retryAttempts is how many times a request is tried.
const retryAttempts = 10

func validate(cfg *Config) error {
	switch {
	case cfg.Bucket == "":
		return errors.New("Config.Bucket is empty")
	case strings.ContainsAny(cfg.Bucket, "/:?#@ "):
		return fmt.Errorf("Config.Bucket %q is not a bucket name", cfg.Bucket)
	case cfg.PartSize != 0 && (cfg.PartSize < MinPartSize || cfg.PartSize > MaxPartSize):
		return fmt.Errorf("Config.PartSize = %d, want 0 or %d..%d bytes", cfg.PartSize, MinPartSize, MaxPartSize)
	case cfg.Concurrency < 0:
		return fmt.Errorf("Config.Concurrency = %d, want >= 0", cfg.Concurrency)
	}
	if cfg.Endpoint != "" {
		// The endpoint itself is never echoed: it was refused, and it may
		// hold a secret.
		u, err := url.Parse(cfg.Endpoint)
		switch {
		case err != nil:
			return errors.New("Config.Endpoint does not parse as a URL")
		case u.User != nil:
			return errors.New("Config.Endpoint holds user info; credentials come from the AWS SDK's chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, …), not the URL")
		case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
			return errors.New("Config.Endpoint is not an http:// or https:// URL with a host")
		case u.RawQuery != "" || u.Fragment != "":
			return errors.New("Config.Endpoint has a query or a fragment")
		}
	}
	return nil
}

func where(cfg Config) string {
	w := "s3://" + cfg.Bucket
	if cfg.Prefix != "" {
		w += "/" + cfg.Prefix
	}
	if cfg.Endpoint != "" {
		w += " at " + cfg.Endpoint
	}
	return w
}

func (s *Store) checkBucket(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.cfg.Bucket)})
	switch status(err) {
	case 0:
		if err != nil {
			return fmt.Errorf("s3: open %s: cannot reach the server: %w", s.where, err)
		}
		return nil
	case http.StatusNotFound:
		return fmt.Errorf("s3: open %s: bucket %q does not exist", s.where, s.cfg.Bucket)
	case http.StatusForbidden, http.StatusUnauthorized:
		return fmt.Errorf("s3: open %s: access denied (check the credentials the AWS SDK found): %w", s.where, err)
	case http.StatusMovedPermanently:
		return fmt.Errorf("s3: open %s: bucket %q is in another region than %q: %w", s.where, s.cfg.Bucket, s.client.Options().Region, err)
	}
	return fmt.Errorf("s3: open %s: %w", s.where, err)
}

// Close releases the Store's idle connections. The Store must not be used
// afterwards.
func (s *Store) Close() error {
	if s.idle != nil {
		s.idle.CloseIdleConnections()
	}
	return nil
}

// Key returns the object key of d: Prefix/sha256/ab/abcd….
func (s *Store) Key(d cas.Digest) string {
	h := d.Hex()
	k := "sha256/" + h[:2] + "/" + h
	if s.cfg.Prefix != "" {
		k = s.cfg.Prefix + "/" + k
	}
	return k
}

// Put implements [cas.Store]. An object already under d's key is left as it
// is, whatever it holds (Delete it first to replace it). b is only read.
func (s *Store) Put(ctx context.Context, d cas.Digest, b []byte) error {
	key := s.Key(d)
	ok, err := s.has(ctx, key)
	if err != nil {
		return fmt.Errorf("s3: put %s: %w", d, err)
	}
	if ok {
		return nil
	}
	if int64(len(b)) > s.cfg.PartSize {
		err = s.putMultipart(ctx, key, b)
	} else {
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket:        aws.String(s.cfg.Bucket),
			Key:           aws.String(key),
			Body:          bytes.NewReader(b),
			ContentLength: aws.Int64(int64(len(b))),
			// The digest is the value's SHA-256, so S3 checks it on
			// arrival: a value garbled on the way is refused.
			ChecksumSHA256: aws.String(base64.StdEncoding.EncodeToString(d[:])),
			IfNoneMatch:    aws.String("*"),
		}, payloadHash(d))
	}
	if err != nil && s.writtenMeanwhile(ctx, key, err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("s3: put %s: %w", d, err)
	}
	return nil
}

// payloadHash makes the request signer take d, the SHA-256 of the body, as
// the payload's hash (x-amz-content-sha256) instead of hashing the body
// again: a pass over every value put saved.
func payloadHash(d cas.Digest) func(*s3.Options) {
	h := hex.EncodeToString(d[:])
	mw := middleware.FinalizeMiddlewareFunc("pirn.PayloadHash", func(
		ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler,
	) (middleware.FinalizeOutput, middleware.Metadata, error) {
		return next.HandleFinalize(v4.SetPayloadHash(ctx, h), in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Finalize.Add(mw, middleware.Before)
		})
	}
}

// writtenMeanwhile reports whether a conditional write failed because
// another writer put the key first: 412 Precondition Failed, or 409 (a
// conflicting conditional write in flight) with the object now present.
func (s *Store) writtenMeanwhile(ctx context.Context, key string, err error) bool {
	switch status(err) {
	case http.StatusPreconditionFailed:
		return true
	case http.StatusConflict:
		ok, herr := s.has(ctx, key)
		return herr == nil && ok
	}
	return false
}

// putMultipart uploads b in parts of at least PartSize bytes, Concurrency at
// a time, and completes the upload with If-None-Match: *. On any failure,
// cancellation included, the upload is aborted, so that no parts are left
// behind to be billed.
func (s *Store) putMultipart(ctx context.Context, key string, b []byte) (err error) {
	created, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(key),
	})
	if err != nil {
		return fmt.Errorf("start multipart upload: %w", err)
	}
	id := created.UploadId
	defer func() {
		if err == nil {
			return
		}
		// Abort even when ctx is cancelled, but not for ever.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		_, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
			Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: id,
		})
		if aerr != nil {
			err = errors.Join(err, fmt.Errorf("abort multipart upload: %w", aerr))
		}
	}()

	size := int64(len(b))
	partSize := max(s.cfg.PartSize, (size+maxParts-1)/maxParts)
	parts := make([]types.CompletedPart, (size+partSize-1)/partSize)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.Concurrency)
	for i := range parts {
		lo := int64(i) * partSize
		hi := min(lo+partSize, size)
		num := aws.Int32(int32(i + 1))
		g.Go(func() error {
			out, err := s.client.UploadPart(gctx, &s3.UploadPartInput{
				Bucket:        aws.String(s.cfg.Bucket),
				Key:           aws.String(key),
				UploadId:      id,
				PartNumber:    num,
				Body:          bytes.NewReader(b[lo:hi]),
				ContentLength: aws.Int64(hi - lo),
			})
			if err != nil {
				return fmt.Errorf("upload part %d of %d: %w", *num, len(parts), err)
			}
			parts[i] = types.CompletedPart{ETag: out.ETag, PartNumber: num}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(key),
		UploadId:        id,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
		IfNoneMatch:     aws.String("*"),
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", err)
	}
	return nil
}

// Get implements [cas.Store]. Bytes that do not hash to d give an error
// wrapping [cas.ErrCorrupt] naming the object.
func (s *Store) Get(ctx context.Context, d cas.Digest) ([]byte, error) {
	key := s.Key(d)
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(key),
	})
	if notFound(err) {
		return nil, fmt.Errorf("s3: get %s: %w", d, cas.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("s3: get %s: %w", d, err)
	}
	defer out.Body.Close()
	var buf bytes.Buffer
	if n := aws.ToInt64(out.ContentLength); n > 0 && n <= maxPrealloc {
		buf.Grow(int(n))
	}
	if _, err := buf.ReadFrom(out.Body); err != nil {
		return nil, fmt.Errorf("s3: get %s: read %s: %w", d, key, err)
	}
	b := buf.Bytes()
	if cas.Sum(b) != d {
		return nil, fmt.Errorf("s3: get %s: s3://%s/%s: %w", d, s.cfg.Bucket, key, cas.ErrCorrupt)
	}
	return b, nil
}

// Has implements [cas.Store].
func (s *Store) Has(ctx context.Context, d cas.Digest) (bool, error) {
	ok, err := s.has(ctx, s.Key(d))
	if err != nil {
		return false, fmt.Errorf("s3: has %s: %w", d, err)
	}
	return ok, nil
}

func (s *Store) has(ctx context.Context, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(key),
	})
	if notFound(err) {
		return false, nil
	}
	return err == nil, err
}

// Delete implements [cas.Store].
func (s *Store) Delete(ctx context.Context, d cas.Digest) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.cfg.Bucket),
		Key:    aws.String(s.Key(d)),
	})
	if err != nil && !notFound(err) {
		return fmt.Errorf("s3: delete %s: %w", d, err)
	}
	return nil
}

// status returns the HTTP status of a failed request, or 0 if err carries
// none (a nil error, a network failure, a cancelled context).
func status(err error) int {
	if re, ok := errors.AsType[*smithyhttp.ResponseError](err); ok {
		return re.HTTPStatusCode()
	}
	return 0
}

// notFound reports whether err is a 404 for an object: the bucket itself
// missing (NoSuchBucket) is a failure, not an absent value.
func notFound(err error) bool {
	if status(err) != http.StatusNotFound {
		return false
	}
	ae, ok := errors.AsType[smithy.APIError](err)
	return !ok || ae.ErrorCode() != "NoSuchBucket"
}
