package config

import (
	"fmt"
	"os"
	"sort"
	"strings"
)

// File is one configuration as Flume sees it: one or more properties files
// merged in order (a later file's key replaces an earlier one's), keys and
// values trimmed, and ${...} substituted in values.
//
// A File holds every agent of its files; Agent picks one.
type File struct {
	// Props are the merged properties by full key, values substituted.
	// A key keeps the position of the definition that won.
	Props map[string]Prop
	// Problems are the file-level ones: syntax, duplicate keys, substitution.
	Problems *Problems
	// names are the files in the order they were given.
	names []string
	// referenced are the keys some ${key} uses: they may stand outside any
	// agent (Flume's un-prefixed "NC_PORT = 44444" in an override file).
	referenced map[string]bool
	// env looks environment variables up (${env:NAME}, the env config filter).
	env func(string) (string, bool)
}

// Options are the inputs of a configuration besides the files.
type Options struct {
	// LookupEnv resolves ${env:NAME}; nil means os.LookupEnv.
	LookupEnv func(string) (string, bool)
	// System resolves ${sys:NAME}: the -D properties of the command line.
	System map[string]string
}

// Source is the text of one properties file and the name used in messages.
type Source struct {
	Name string
	Data []byte
}

// Load reads the files in order and merges them (see File). It fails only
// when a file cannot be read; everything wrong inside the files is collected
// in File.Problems and in the problems of the Agent picked from it.
func Load(files ...string) (*File, error) { return LoadWith(Options{}, files...) }

// LoadWith is Load with options.
func LoadWith(opts Options, files ...string) (*File, error) {
	if len(files) == 0 {
		return nil, fmt.Errorf("no configuration file given")
	}
	srcs := make([]Source, 0, len(files))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("read configuration: %w", err)
		}
		srcs = append(srcs, Source{Name: name, Data: data})
	}
	return Build(opts, srcs...), nil
}

// Build merges already-read sources, as LoadWith does.
func Build(opts Options, srcs ...Source) *File {
	f := &File{
		Props:      map[string]Prop{},
		Problems:   &Problems{},
		referenced: map[string]bool{},
	}
	for _, src := range srcs {
		f.names = append(f.names, src.Name)
		props, problems := Parse(src.Name, src.Data)
		for _, p := range problems {
			f.Problems.add(p)
		}
		seen := map[string]Prop{} // first definition in this file, for the duplicate warning
		for _, p := range props {
			// Flume trims keys and values after Properties.load.
			p.Key = javaTrim(p.Key)
			p.Value = javaTrim(p.Value)
			if p.Key == "" {
				f.Problems.add(Problem{Pos: p.Pos, Msg: "empty key"})
				continue
			}
			if prev, ok := seen[p.Key]; ok {
				f.Problems.add(Problem{Pos: p.Pos, Key: p.Key, Warning: true,
					Msg: fmt.Sprintf("set again; this line replaces line %d", prev.Pos.Line)})
			} else {
				seen[p.Key] = p
			}
			// A later file overriding an earlier one is what several files
			// are for, so that is not worth a warning.
			f.Props[p.Key] = p
		}
	}
	lookupEnv := opts.LookupEnv
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	f.env = lookupEnv
	r := &resolver{
		raw:        f.Props,
		env:        lookupEnv,
		sys:        opts.System,
		done:       map[string]string{},
		active:     map[string]bool{},
		problems:   f.Problems,
		referenced: f.referenced,
	}
	resolved := make(map[string]Prop, len(f.Props))
	for _, k := range sortedKeys(f.Props) {
		p := f.Props[k]
		p.Value = r.value(k)
		resolved[k] = p
	}
	f.Props = resolved
	return f
}

// Names are the files of this configuration, in the order given.
func (f *File) Names() []string { return f.names }

// Keys returns the full keys in order of definition: by file, then line.
func (f *File) Keys() []string {
	rank := map[string]int{}
	for i, n := range f.names {
		if _, ok := rank[n]; !ok {
			rank[n] = i
		}
	}
	keys := sortedKeys(f.Props)
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := f.Props[keys[i]].Pos, f.Props[keys[j]].Pos
		if rank[a.File] != rank[b.File] {
			return rank[a.File] < rank[b.File]
		}
		return a.Line < b.Line
	})
	return keys
}

// javaTrim is Java's String.trim: it strips every character up to ' '.
func javaTrim(s string) string {
	return strings.TrimFunc(s, func(r rune) bool { return r <= ' ' })
}

func sortedKeys(m map[string]Prop) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
