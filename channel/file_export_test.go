package channel

// Crash abandons the channel the way SIGKILL would (see crash): tests restart
// from exactly what is on disk.
func (f *File) Crash() { f.crash() }
