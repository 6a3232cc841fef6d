package flumefile

// Flume keeps the transactions that were open at a checkpoint (inflightputs,
// inflighttakes) in Guava HashMultimaps of Java Longs, and replay walks them
// in the maps' iteration order: the puts of a transaction committed after
// the checkpoint are queued in that order, and takes never committed go back
// to the head in that order. So the delivery order depends on how
// java.util.HashMap orders Longs, which this file reproduces:
//
//   - Guava 29's HashMultimap.create() backs its keys with a HashMap sized
//     for 12 keys (initial table 32) and each key's values with a HashSet
//     sized for 2 (initial table 4).
//   - A Long hashes to int(v ^ v>>>32), spread as h ^ h>>>16; its bucket is
//     that masked by the table size minus one.
//   - Iteration goes bucket by bucket; within a bucket, in insertion order
//     (a resize splits a bucket keeping the order, and removal unlinks).
//   - The table doubles when the size passes three quarters of it, and also,
//     while it is smaller than 64, when one bucket reaches 9 entries.
//
// A bucket of 9 entries in a table of 64 or more becomes a red-black tree
// whose list order differs; that needs 9 colliding pointers of one
// transaction and is not reproduced (javaHashSet.treed reports it).

// javaHashSet is a java.util.HashSet<Long> (or the key set of a HashMap).
type javaHashSet struct {
	tab       [][]int64
	initial   int // table size at the first insertion
	threshold int
	size      int
	treed     bool // a bucket would have become a tree in Java
}

func newJavaHashSet(initialCapacity int) *javaHashSet {
	return &javaHashSet{initial: tableSizeFor(initialCapacity)}
}

// guavaCapacity is Maps.capacity: the HashMap capacity Guava asks for to
// hold expected entries.
func guavaCapacity(expected int) int {
	if expected < 3 {
		return expected + 1
	}
	return int(float32(expected)/0.75 + 1.0)
}

func tableSizeFor(c int) int {
	n := 1
	for n < c {
		n <<= 1
	}
	return n
}

func javaLongHash(v int64) int32 {
	h := int32(uint64(v) ^ uint64(v)>>32)
	return h ^ int32(uint32(h)>>16)
}

func (s *javaHashSet) bucket(v int64, n int) int { return int(javaLongHash(v)) & (n - 1) }

// add inserts v, reporting false when it was present.
func (s *javaHashSet) add(v int64) bool {
	if s.tab == nil {
		s.resize(s.initial)
	}
	i := s.bucket(v, len(s.tab))
	for _, x := range s.tab[i] {
		if x == v {
			return false
		}
	}
	s.tab[i] = append(s.tab[i], v)
	if len(s.tab[i]) >= 9 { // TREEIFY_THRESHOLD reached by this insertion
		if len(s.tab) < 64 {
			s.resize(len(s.tab) * 2)
		} else {
			s.treed = true
		}
	}
	s.size++
	if s.size > s.threshold {
		s.resize(len(s.tab) * 2)
	}
	return true
}

func (s *javaHashSet) remove(v int64) bool {
	if s.tab == nil {
		return false
	}
	i := s.bucket(v, len(s.tab))
	for j, x := range s.tab[i] {
		if x == v {
			s.tab[i] = append(s.tab[i][:j:j], s.tab[i][j+1:]...)
			s.size--
			return true
		}
	}
	return false
}

// resize moves every entry to a table of n buckets, keeping the order of
// entries that share a bucket.
func (s *javaHashSet) resize(n int) {
	old := s.tab
	s.tab = make([][]int64, n)
	s.threshold = n * 3 / 4
	for _, b := range old {
		for _, v := range b {
			i := s.bucket(v, n)
			s.tab[i] = append(s.tab[i], v)
		}
	}
}

// values returns the entries in Java's iteration order.
func (s *javaHashSet) values() []int64 {
	out := make([]int64, 0, s.size)
	for _, b := range s.tab {
		out = append(out, b...)
	}
	return out
}

// javaMultimap is a Guava HashMultimap<Long, Long>.
type javaMultimap struct {
	keys *javaHashSet
	vals map[int64]*javaHashSet
}

func newJavaMultimap() *javaMultimap {
	return &javaMultimap{keys: newJavaHashSet(guavaCapacity(12)), vals: make(map[int64]*javaHashSet)}
}

func (m *javaMultimap) put(k, v int64) {
	s := m.vals[k]
	if s == nil {
		s = newJavaHashSet(guavaCapacity(2))
		m.vals[k] = s
		m.keys.add(k)
	}
	s.add(v)
}

func (m *javaMultimap) has(k int64) bool { return m.vals[k] != nil }

// removeAll removes key k and returns its values in iteration order.
func (m *javaMultimap) removeAll(k int64) []int64 {
	s := m.vals[k]
	if s == nil {
		return nil
	}
	delete(m.vals, k)
	m.keys.remove(k)
	return s.values()
}

// each calls fn for every key and its values, in iteration order.
func (m *javaMultimap) each(fn func(k int64, vs []int64)) {
	for _, k := range m.keys.values() {
		fn(k, m.vals[k].values())
	}
}

// treed reports whether any of the maps would have held a tree bin in
// Java, where this order may differ from Flume's.
func (m *javaMultimap) treed() bool {
	if m.keys.treed {
		return true
	}
	for _, s := range m.vals {
		if s.treed {
			return true
		}
	}
	return false
}

func (m *javaMultimap) size() int {
	n := 0
	for _, s := range m.vals {
		n += s.size
	}
	return n
}
