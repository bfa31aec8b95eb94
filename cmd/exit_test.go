package cmd

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/mbaudit/mbaudit/backup"
)

func TestExitCode(t *testing.T) {
	rootErr := &backup.RootError{Path: "/x", Problem: backup.RootMissing}
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nothing", nil, 0},
		{"problems", errProblems, 1},
		{"wrapped problems", fmt.Errorf("verify: %w", errProblems), 1},
		{"usage", usagef("bad flag"), 2},
		{"root missing", rootErr, 2},
		{"several roots", errors.Join(rootErr, rootErr), 2},
		{"no default root", fmt.Errorf("x: %w", backup.ErrNoDefaultRoot), 2},
		{"internal", errors.New("boom"), 2},
		{"cancelled", context.Canceled, 130},
		{"interrupted", errInterrupted, 130},
		{"interrupted wins over problems", errors.Join(errProblems, context.Canceled), 130},
		{"failure wins over problems", errors.Join(errProblems, rootErr), 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := exitCode(tt.err); got != tt.want {
				t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want string // time.Duration's String, or "error"
	}{
		{"10min", "10m0s"},
		{"30s", "30s"},
		{"2h", "2h0m0s"},
		{"14d", "336h0m0s"},
		{"1w", "168h0m0s"},
		{"6mo", "4320h0m0s"},
		{"1y", "8760h0m0s"},
		{"0d", "0s"},
		{"10m", "error"},
		{"d", "error"},
		{"", "error"},
		{"5 d", "error"},
		{"-5d", "error"},
		{"1.5d", "error"},
		{"99999999999999y", "error"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			d, err := ParseDuration(tt.in)
			got := d.String()
			if err != nil {
				got = "error"
			}
			if got != tt.want {
				t.Errorf("ParseDuration(%q) = %s (%v), want %s", tt.in, got, err, tt.want)
			}
		})
	}
}
