package serve

import (
	"container/list"
	"sync"
	"time"
)

// limiter is a token bucket per client, for at most max clients: the
// least recently seen client is forgotten to make room for a new one
// (which then starts with a full bucket). It is safe for concurrent use.
type limiter struct {
	rate  float64 // tokens per second
	burst float64
	max   int

	mu      sync.Mutex
	clients map[string]*list.Element
	lru     list.List // of *bucket, most recent first
}

type bucket struct {
	key    string
	tokens float64
	last   time.Time
}

func newLimiter(rate float64, burst, max int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), max: max, clients: make(map[string]*list.Element, max)}
}

// allow takes a token of key's bucket at now, if it has one.
func (l *limiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	el, ok := l.clients[key]
	if !ok {
		if l.lru.Len() >= l.max {
			oldest := l.lru.Back()
			delete(l.clients, oldest.Value.(*bucket).key)
			l.lru.Remove(oldest)
		}
		el = l.lru.PushFront(&bucket{key: key, tokens: l.burst, last: now})
		l.clients[key] = el
	} else {
		l.lru.MoveToFront(el)
	}
	b := el.Value.(*bucket)
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(l.burst, b.tokens+d.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// len is how many clients are tracked.
func (l *limiter) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lru.Len()
}
