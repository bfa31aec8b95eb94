package cmd

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/mbaudit/mbaudit/backup"
)

// scanResult is what every command that reads backups starts from.
type scanResult struct {
	roots   []string
	skipped []string
	backups []*backup.Backup
	volumes []backup.Volume
	// rootErr joins the errors of roots that could not be used; the backups
	// of the other roots are still there.
	rootErr error
}

// scan discovers the backups under the PATHs (or the default roots), keeps
// those of --device, and inspects them the quick way; with measure it also
// computes their sizes as du does.
func scan(ctx context.Context, paths []string, o *common, env Env, p *progress, measure bool) (*scanResult, error) {
	busy, err := ParseDuration(o.busyWindow)
	if err != nil {
		return nil, usagef("--busy-window: %v", err)
	}
	if o.jobs < 0 {
		return nil, usagef("--jobs must be at least 1")
	}
	rs, err := roots(paths, env)
	if err != nil {
		return nil, err
	}
	d := backup.Discover(rs, env.GOOS)
	// --device may name a device, which only the plists tell: filter after
	// the inspection.
	opt := o.options(env, busy)
	var bs []*backup.Backup
	if measure {
		p.phase("reading backups")
		bs, err = backup.List(ctx, d.Candidates, opt, p.files)
		p.done()
	} else {
		bs, err = backup.InspectAll(ctx, d.Candidates, opt)
	}
	if err != nil {
		return nil, err
	}
	if o.device != "" {
		bs = filterDevice(bs, o.device)
		if len(bs) == 0 && len(d.Errors) == 0 {
			return nil, usagef("no backup of device %q under %s", o.device, strings.Join(rs, ", "))
		}
	}
	return &scanResult{
		roots: d.Roots, skipped: d.Skipped, backups: bs,
		volumes: backup.Volumes(rs), rootErr: joinRootErrors(d.Errors),
	}, nil
}

func (o *common) options(env Env, busy time.Duration) backup.Options {
	return backup.Options{Now: env.Now(), BusyWindow: busy, Jobs: o.jobs}
}

// filterDevice keeps the backups of one device, named by UDID or by device
// name (case does not matter).
func filterDevice(bs []*backup.Backup, device string) []*backup.Backup {
	var out []*backup.Backup
	for _, b := range bs {
		if strings.EqualFold(b.UDID, device) || strings.EqualFold(b.ID, device) || strings.EqualFold(b.DeviceName(), device) {
			out = append(out, b)
		}
	}
	return out
}

// durationUnits is the one duration grammar of every flag: a number and a
// unit. A bare "m" is refused: minutes or months?
var durationUnits = map[string]time.Duration{
	"s": time.Second, "min": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
	"w": 7 * 24 * time.Hour, "mo": 30 * 24 * time.Hour, "y": 365 * 24 * time.Hour,
}

// ParseDuration reads a duration such as 10min, 14d, 6mo or 1y.
func ParseDuration(s string) (time.Duration, error) {
	i := 0
	for i < len(s) && (s[i] >= '0' && s[i] <= '9') {
		i++
	}
	num, unit := s[:i], strings.ToLower(s[i:])
	if num == "" {
		return 0, fmt.Errorf("%q is not a duration: write a number and a unit (s, min, h, d, w, mo, y), e.g. 14d", s)
	}
	if unit == "m" {
		return 0, fmt.Errorf("%q is ambiguous: write %smin for minutes or %smo for months", s, num, num)
	}
	u, ok := durationUnits[unit]
	if !ok {
		return 0, fmt.Errorf("%q has no known unit: use s, min, h, d, w, mo or y, e.g. 14d", s)
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n > math.MaxInt64/int64(u) {
		return 0, fmt.Errorf("%q is too long", s)
	}
	return time.Duration(n) * u, nil
}
