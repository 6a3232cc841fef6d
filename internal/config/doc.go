// Package config reads Apache Flume agent configuration files (java.util.Properties
// syntax with Flume's key hierarchy), keeps the file and line of every key, and
// gives components typed, validated access to their keys through Context.
//
// It reports every problem of a file at once, as "file:line: full.key: problem",
// with a "did you mean" for unknown keys. It must never import another flumed
// package, and never echo the value of a key that looks secret.
package config
