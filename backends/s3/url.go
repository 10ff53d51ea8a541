package s3

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// URL query parameters, each a [Config] field.
var params = []string{"region", "endpoint", "path_style", "part_size", "concurrency"}

// ParseURL returns the Config an s3:// URL names:
//
//	s3://BUCKET/PREFIX?region=R&endpoint=URL&path_style=true&part_size=BYTES&concurrency=N
//
// The host is the bucket and the path the prefix; each query parameter sets
// the [Config] field of that name and may appear once. A URL with user info
// is refused, since credentials come from the AWS SDK's chain. Errors never
// repeat the URL, which may hold a secret: callers name it, redacted.
func ParseURL(rawURL string) (Config, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err // url.Error repeats the URL
		}
		return Config{}, fmt.Errorf("s3: URL does not parse: %w", err)
	}
	switch {
	case u.Scheme != "s3":
		return Config{}, fmt.Errorf("s3: URL scheme is %q, want s3://BUCKET/PREFIX", u.Scheme)
	case u.User != nil:
		return Config{}, errors.New("s3: URL holds user info; credentials come from the AWS SDK's chain (AWS_ACCESS_KEY_ID, AWS_PROFILE, …), not the URL")
	case u.Host == "":
		return Config{}, errors.New("s3: URL names no bucket; want s3://BUCKET/PREFIX")
	case u.Port() != "":
		return Config{}, errors.New("s3: URL's bucket has a port; put the server in ?endpoint=")
	case u.Fragment != "":
		return Config{}, errors.New("s3: URL has a fragment")
	}
	cfg := Config{Bucket: u.Host, Prefix: strings.Trim(u.Path, "/")}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("s3: URL query: %w", err)
	}
	for k, vs := range q {
		if !slices.Contains(params, k) {
			return Config{}, fmt.Errorf("s3: unknown URL parameter %q (want %s)", k, strings.Join(params, ", "))
		}
		if len(vs) != 1 {
			return Config{}, fmt.Errorf("s3: URL parameter %q given %d times", k, len(vs))
		}
		v := vs[0]
		switch k {
		case "region":
			cfg.Region = v
		case "endpoint":
			cfg.Endpoint = v
		case "path_style":
			cfg.PathStyle, err = strconv.ParseBool(v)
		case "part_size":
			cfg.PartSize, err = strconv.ParseInt(v, 10, 64)
		case "concurrency":
			cfg.Concurrency, err = strconv.Atoi(v)
		}
		if err != nil {
			if ne, ok := errors.AsType[*strconv.NumError](err); ok {
				err = ne.Err
			}
			return Config{}, fmt.Errorf("s3: URL parameter %s=%q: %w", k, v, err)
		}
	}
	return cfg, nil
}
