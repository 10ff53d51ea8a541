package model

import "fmt"

// Cache says whether a knot's results may be reused (memoisation): a
// later invocation with the same cache key gets the recorded output
// instead of running the knot again.
type Cache uint8

// Cache settings.
const (
	// CacheDefault reuses the results of a hermetic knot (no grants) and
	// never those of a knot with a grant.
	CacheDefault Cache = iota
	// CacheOff never reuses the knot's results, hermetic or not.
	CacheOff
	// CacheOn reuses the knot's results even when it has grants: the
	// pipeline vouches that what they grant (the clock, randomness, an
	// environment variable, a directory, HTTP, kept instance state) does
	// not change the output. The key covers the grants' names, not what
	// they give access to.
	CacheOn
)

func (c Cache) String() string {
	switch c {
	case CacheDefault:
		return "default"
	case CacheOff:
		return "off"
	case CacheOn:
		return "on"
	}
	return fmt.Sprintf("Cache(%d)", c)
}

// CacheOf is the Cache of a YAML `cache: true|false`.
func CacheOf(on bool) Cache {
	if on {
		return CacheOn
	}
	return CacheOff
}
