// Package report renders mbaudit's results as tables, JSON, CSV, Markdown and
// Prometheus text. It takes values and writes to an io.Writer; it owns the wire
// schema and is the only user of tablewriter and of humanize for display.
package report
