package suggest

import "testing"

func TestDidYouMean(t *testing.T) {
	t.Parallel()
	names := []string{"receive_errors", "require_all_parents", "skip_if_parent_failed"}
	for _, tc := range []struct{ in, want string }{
		{"recieve_errors", `; did you mean "receive_errors"?`},
		{"require_all_parent", `; did you mean "require_all_parents"?`},
		{"nothing_like_it", ""},
		{"", ""},
	} {
		if got := DidYouMean(tc.in, names); got != tc.want {
			t.Errorf("DidYouMean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
