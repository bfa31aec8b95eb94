// Package backup is mbaudit's domain: it finds iOS backup folders, reads their
// plists and index, judges their state and computes their size.
//
// It never prints and never exits: problems with a backup are findings in the
// returned values, and an error means the audit itself could not run. It
// imports no CLI, table or terminal library.
package backup
