// Package sqldest is the SQL core the SQL destinations share (SQLite,
// PostgreSQL, MySQL): what they have in common is written here once, and
// each destination is a Dialect.
package sqldest
