package config

import (
	"hash/fnv"
	"strconv"
)

// Fingerprint is a digest of the context's keys and values (after
// substitution), not of where they were written: two contexts with the same
// settings have the same fingerprint whatever their files and lines. A
// reload compares fingerprints to find the components whose configuration
// changed; moving a key to another line changes nothing.
func (c *Context) Fingerprint() string {
	h := fnv.New128a()
	for _, k := range c.relKeys() {
		// Length-prefixed, so "a=bc" and "ab=c" never collide.
		v := c.props[k].Value
		h.Write([]byte(strconv.Itoa(len(k)) + ":" + k + strconv.Itoa(len(v)) + ":" + v))
	}
	return string(h.Sum(nil))
}
