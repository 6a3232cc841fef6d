package config

// Suggest returns the candidate closest to word for a "did you mean"
// (comparing whole words and their last dotted segments), or "" when none is
// close enough. Builders use it for unknown type names.
func Suggest(word string, candidates []string) string { return suggest(word, candidates) }
