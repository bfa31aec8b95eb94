package cmd

import (
	"reflect"
	"strings"
	"testing"
)

func TestReorderArgs(t *testing.T) {
	app := newApp(testEnv(t))
	tests := []struct {
		in, want string
	}{
		{"mbaudit list ~/B --format json", "mbaudit list --format json -- ~/B"},
		{"mbaudit list --format json ~/B", "mbaudit list --format json -- ~/B"},
		{"mbaudit --format json list ~/B", "mbaudit list --format json -- ~/B"},
		{"mbaudit list a --quiet b --sort=size", "mbaudit list --quiet --sort=size -- a b"},
		{"mbaudit list a -- --odd-name", "mbaudit list -- a --odd-name"},
		{"mbaudit --device list list", "mbaudit list --device list"},
		{"mbaudit list", "mbaudit list"},
		{"mbaudit --version", "mbaudit --version"},
		{"mbaudit nosuch a --x", "mbaudit nosuch a --x"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got := reorderArgs(app, strings.Fields(tt.in))
			if want := strings.Fields(tt.want); !reflect.DeepEqual(got, want) {
				t.Errorf("reorderArgs(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}
