package report

import "time"

// SchemaVersion is the version of every JSON document mbaudit writes.
const SchemaVersion = 1

// Style says how a table may be decorated. Decorations are for people at a
// terminal only: scripts reading a pipe get plain, stable text.
type Style struct {
	Color    bool      // ANSI colour
	Humanize bool      // "3 days ago" beside dates
	Now      time.Time // the clock for ages
}

// Privacy decides which personal identifiers may be shown.
type Privacy struct {
	ShowIdentifiers bool
}

// timePtr turns a zero time into JSON null and anything else into UTC.
func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
