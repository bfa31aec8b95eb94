// Package backuptest writes realistic iOS backup folders, healthy and broken,
// for tests, demos and benchmarks, in the spirit of net/http/httptest.
//
// Every defect mbaudit can report has a named option here, so a test says
// what is wrong with its backup in one word.
package backuptest
