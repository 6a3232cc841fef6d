package channel

// Crash abandons the channel the way SIGKILL would (see crash): tests restart
// from exactly what is on disk.
func (f *File) Crash() { f.crash() }

// SlotGeneration reads the generation of a checkpoint slot file.
func SlotGeneration(path string) (uint64, error) {
	b, err := readAtMost(path, checkpointHeader+maxCheckpointSize)
	if err != nil {
		return 0, err
	}
	c, err := decodeCheckpoint(b)
	if err != nil {
		return 0, err
	}
	return c.Generation, nil
}
