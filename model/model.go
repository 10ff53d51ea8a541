// Package model is pirn's vocabulary: the kinds of node, the error
// policies, what a Map does with a skipped element, what a knot's instance
// keeps, and a knot's limits and grants, as plain data that validates
// itself. It is a leaf: the YAML parser (pipeline), the scheduler, the
// host and the embedding API all speak it, so none of them converts
// another's copy.
package model

import (
	"fmt"
	"slices"
	"strings"
)

// Kind is the kind of a tapestry node.
type Kind uint8

// Node kinds.
const (
	KindParameter  Kind = iota // a run parameter
	KindKnot                   // invokes its knot with its parents' values
	KindSource                 // a knot with no parents
	KindSink                   // a terminal knot whose output is recorded as null
	KindAggregator             // a knot combining N parents (it takes them by name)
	KindBranch                 // its selector picks one of its arms
	KindArm                    // one arm of a Branch: its input if selected, else skipped
	KindGate                   // its predicate's truth passes its input through, or skips
	KindMap                    // its knot applied to each element of a list
	KindReduce                 // its knot folds a list into one value
)

var kindNames = [...]string{"parameter", "knot", "source", "sink", "aggregator", "branch", "arm", "gate", "map", "reduce"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", k)
}

// ParseKind parses a kind's name as a pipeline's type: field writes it.
// An arm is not a type one declares (a Branch declares its arms).
func ParseKind(s string) (Kind, error) {
	if i := slices.Index(kindNames[:], s); i >= 0 && Kind(i) != KindArm {
		return Kind(i), nil
	}
	return 0, fmt.Errorf("unknown node type %q (want one of %s)", s, strings.Join(DeclaredKinds(), ", "))
}

// DeclaredKinds lists the names of the kinds a pipeline can declare.
func DeclaredKinds() []string {
	var names []string
	for i, n := range kindNames {
		if Kind(i) != KindArm {
			names = append(names, n)
		}
	}
	return names
}

// Policy is a node's error policy: what happens when a parent did not end
// ok.
type Policy uint8

// Policies.
const (
	// SkipIfParentFailed skips the node when any parent erred or skipped.
	SkipIfParentFailed Policy = iota
	// ReceiveErrors always runs the knot; each input is the parent's result
	// as a value: {"ok": v}, {"err": {...}} or {"skip": {...}}.
	ReceiveErrors
	// RequireAllParents makes the node err when any parent erred or skipped.
	RequireAllParents
)

var policyNames = [...]string{"skip_if_parent_failed", "receive_errors", "require_all_parents"}

func (p Policy) String() string {
	if int(p) < len(policyNames) {
		return policyNames[p]
	}
	return fmt.Sprintf("Policy(%d)", p)
}

// ParsePolicy parses a policy name ("skip_if_parent_failed",
// "receive_errors", "require_all_parents"; "" is the default).
func ParsePolicy(s string) (Policy, error) {
	if s == "" {
		return SkipIfParentFailed, nil
	}
	if i := slices.Index(policyNames[:], s); i >= 0 {
		return Policy(i), nil
	}
	return 0, fmt.Errorf("unknown error policy %q (want one of %s)", s, strings.Join(policyNames[:], ", "))
}

// OnSkip says what a Map does with an element whose invocation skipped.
type OnSkip uint8

// OnSkip modes.
const (
	OnSkipNull OnSkip = iota // the element's output is null (positions are kept)
	OnSkipDrop               // the element is left out of the output
	OnSkipSkip               // the whole Map skips with "element_skipped"
)

var onSkipNames = [...]string{"null", "drop", "skip"}

func (o OnSkip) String() string {
	if int(o) < len(onSkipNames) {
		return onSkipNames[o]
	}
	return fmt.Sprintf("OnSkip(%d)", o)
}

// ParseOnSkip parses "null", "drop" or "skip" ("" is null).
func ParseOnSkip(s string) (OnSkip, error) {
	if s == "" {
		return OnSkipNull, nil
	}
	if i := slices.Index(onSkipNames[:], s); i >= 0 {
		return OnSkip(i), nil
	}
	return 0, fmt.Errorf("unknown on_skip %q (want null, drop or skip)", s)
}

// State says what a knot's instance keeps from one invocation to the next.
type State uint8

// States.
const (
	// StateDefault is StateKeep, but StateFresh for a WASI command (which
	// runs once per instance anyway). Keeping costs nothing; resetting
	// costs a Go knot ten times its invocation (docs/performance.md), so
	// hermeticity is asked for, per knot or per pipeline.
	StateDefault State = iota
	// StateReset restores the instance, after every invocation, to the
	// state it had once initialised: its linear memory, its mutable
	// globals, its fake clock and random source. No invocation can see
	// what an earlier one left, so a knot with no grants is hermetic. An
	// instance whose memory grew gets replaced instead, and a module that
	// can change a table or drop a segment (state the host does not
	// restore) gets a fresh instance per invocation.
	StateReset
	// StateFresh starts a new instance for every invocation: hermetic
	// too, and slower (a Go module's instance takes milliseconds).
	StateFresh
	// StateKeep keeps instances as invocations leave them: the fastest,
	// and not hermetic (lineage records the knot with the grant "state").
	StateKeep
)

var stateNames = [...]string{"", "reset", "fresh", "keep"}

func (s State) String() string {
	if s == StateDefault {
		return "default"
	}
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// ParseState parses "reset", "fresh" or "keep"; "" is StateDefault.
func ParseState(s string) (State, error) {
	if i := slices.Index(stateNames[:], s); i >= 0 {
		return State(i), nil
	}
	return 0, fmt.Errorf("unknown instance state %q (want reset, fresh or keep)", s)
}
