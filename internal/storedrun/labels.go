package storedrun

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
)

// LabelLists returns labels as two lists of one length, keys sorted and
// the value of each key at its position: how the histories with list
// columns (DuckDB) and rows (SQLite's run_labels) write them, in one
// order whatever the map's. Both are empty, not nil, for no labels.
func LabelLists(labels map[string]string) (keys, values []string) {
	keys = slices.Sorted(maps.Keys(labels))
	if keys == nil {
		keys = []string{}
	}
	values = make([]string, len(keys))
	for i, k := range keys {
		values[i] = labels[k]
	}
	return keys, values
}

// LabelMap is the inverse of LabelLists: nil for no labels. Lists of
// different lengths, or a key twice, are an error (a corrupt history).
func LabelMap(keys, values []string) (map[string]string, error) {
	if len(keys) != len(values) {
		return nil, fmt.Errorf("stored labels: %d keys and %d values", len(keys), len(values))
	}
	if len(keys) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(keys))
	for i, k := range keys {
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("stored labels: key %q twice", k)
		}
		m[k] = values[i]
	}
	return m, nil
}

// EncodeLabels returns labels as a JSON object with sorted keys (how
// PostgreSQL's jsonb column is written): "{}" for none. Valid UTF-8 (which
// lineage.CheckLabels requires) always encodes.
func EncodeLabels(labels map[string]string) string {
	if len(labels) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(labels) // a map[string]string always marshals; keys come out sorted
	return string(b)
}

// DecodeLabels is the inverse of EncodeLabels: nil for "{}", "" or null.
func DecodeLabels(s string) (map[string]string, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, fmt.Errorf("stored labels: %w", err)
	}
	if len(m) == 0 {
		return nil, nil
	}
	return m, nil
}
