// Package manifest reads the index of an iOS backup: the Manifest.db SQLite
// database with its NSKeyedArchiver MBFile records, and the legacy
// Manifest.mbdb file of iOS 4 to 9.
//
// It only reads. It never writes beside the files it is given, never prints,
// and treats every byte as hostile: bad input is an error, never a panic.
package manifest
