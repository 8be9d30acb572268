package config

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// check walks the document n against the Go type t before it is decoded,
// so that each mistake is reported at its exact field, in the words of the
// config file rather than of Go: an unknown field with the nearest known
// one, a value with what the field takes. line is where the field at path
// is written. It returns the mistakes in the order of the file (at most
// maxErrors), none when yaml.v3 will decode n into t.
func check(n *yaml.Node, t reflect.Type, path string, line int) []*Error {
	c := &checker{done: map[aliased]bool{}}
	c.add(c.check(n, t, path, line))
	return c.errs
}

// maxErrors bounds the mistakes reported at once: past a few, the file is
// likely not a config at all.
const maxErrors = 20

// checker collects the mistakes. It remembers which aliased nodes it
// checked against which types: a node checked once is not checked again
// (its mistakes were reported), so "billion laughs" documents, whose
// aliases repeat a node exponentially often, are walked in linear time.
type checker struct {
	done map[aliased]bool
	errs []*Error
}

// add notes a mistake (nil is none).
func (c *checker) add(e *Error) {
	if e != nil && len(c.errs) < maxErrors {
		c.errs = append(c.errs, e)
	}
}

// full reports that no more mistakes are taken: the walk may stop.
func (c *checker) full() bool { return len(c.errs) >= maxErrors }

type aliased struct {
	n *yaml.Node
	t reflect.Type
}

// check checks n against t: a mistake of n itself is returned, those below
// it are added.
func (c *checker) check(n *yaml.Node, t reflect.Type, path string, line int) *Error {
	if n != nil && n.Kind == yaml.AliasNode {
		k := aliased{n.Alias, t}
		if c.done[k] {
			return nil
		}
		c.done[k] = true
	}
	n = resolve(n)
	if n == nil || n.Kind == 0 { // an empty file, or one of comments only
		return nil
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil
		}
		return c.check(n.Content[0], t, path, n.Content[0].Line)
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return nil // any field may be left empty: it keeps its zero value
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	fail := func(msg string) *Error { return &Error{Line: line, Field: path, Err: errors.New(msg)} }
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			return fail(strings.TrimPrefix(err.Error(), "yaml: "))
		}
		return nil
	}
	switch t.Kind() {
	case reflect.Interface:
		return nil
	case reflect.Struct:
		if t == timeType {
			break
		}
		if n.Kind != yaml.MappingNode {
			return fail(describe(n) + " is not " + want(t))
		}
		c.checkStruct(n, t, path, map[string]int{})
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return fail(describe(n) + " is not " + want(t))
		}
		for i := 0; i+1 < len(n.Content) && !c.full(); i += 2 {
			k, v := resolve(n.Content[i]), n.Content[i+1]
			if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
				c.checkMapMerge(v, t, path)
				continue
			}
			if e := c.check(k, t.Key(), path, k.Line); e != nil {
				c.add(e)
				continue
			}
			c.add(c.check(v, t.Elem(), join(path, k.Value), k.Line))
		}
		return nil
	case reflect.Slice, reflect.Array:
		if n.Kind != yaml.SequenceNode {
			return fail(describe(n) + " is not " + want(t))
		}
		if t.Kind() == reflect.Array && len(n.Content) > t.Len() {
			return fail(fmt.Sprintf("a list of %d is too long (at most %d)", len(n.Content), t.Len()))
		}
		for i, el := range n.Content {
			if c.full() {
				break
			}
			c.add(c.check(el, t.Elem(), path+"["+strconv.Itoa(i)+"]", resolve(el).Line))
		}
		return nil
	}
	if n.Kind != yaml.ScalarNode {
		return fail(describe(n) + " is not " + want(t))
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return fail(badScalar(n, t))
	}
	if fractional(n, t) {
		return fail(describe(n) + " is not " + want(t)) // yaml.v3 would cut 1.5 to 1
	}
	return nil
}

// fractional reports a number with a fraction for a whole-number field.
func fractional(n *yaml.Node, t reflect.Type) bool {
	if n.Tag != "!!float" || t == durationType {
		return false
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		var f float64
		return n.Decode(&f) == nil && f != math.Trunc(f)
	}
	return false
}

var (
	unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()
	durationType    = reflect.TypeFor[time.Duration]()
	timeType        = reflect.TypeFor[time.Time]()
)

// field is a struct field as yaml.v3 sees it: its key and its Go type.
type field struct {
	key string
	typ reflect.Type
}

// fieldsOf lists the keys a struct takes, inlined structs included, in the
// order they are declared; inline is the element type of an inlined map
// (any other key goes there), nil when there is none.
func fieldsOf(t reflect.Type) (fields []field, inline reflect.Type) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("yaml")
		if tag == "-" || (!f.IsExported() && !f.Anonymous) {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if strings.Contains(","+opts+",", ",inline,") {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			switch ft.Kind() {
			case reflect.Struct:
				sub, subInline := fieldsOf(ft)
				fields = append(fields, sub...)
				if subInline != nil {
					inline = subInline
				}
			case reflect.Map:
				inline = ft.Elem()
			}
			continue
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name) // yaml.v3's default key
		}
		fields = append(fields, field{key: name, typ: f.Type})
	}
	return fields, inline
}

// checkStruct checks a mapping's keys against the fields of struct t (seen
// holds the keys already set, for merges "<<: *defaults"), adding mistakes.
func (c *checker) checkStruct(n *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	fields, inline := fieldsOf(t)
	for i := 0; i+1 < len(n.Content) && !c.full(); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k.Kind == yaml.ScalarNode && k.Tag == "!!merge" {
			c.checkMerge(v, t, path, seen)
			continue
		}
		fpath := join(path, k.Value)
		if first, dup := seen[k.Value]; dup && k.Kind == yaml.ScalarNode {
			c.add(&Error{Line: k.Line, Field: fpath, Err: fmt.Errorf("set twice (first on line %d)", first)})
			continue
		}
		seen[k.Value] = k.Line
		var ft reflect.Type
		for _, f := range fields {
			if f.key == k.Value {
				ft = f.typ
				break
			}
		}
		if ft == nil && inline != nil {
			ft = inline
		}
		if ft == nil {
			c.add(&Error{Line: k.Line, Field: fpath, Err: unknownFieldErr(k.Value, fields)})
			continue
		}
		c.add(c.check(v, ft, fpath, k.Line))
	}
}

// checkMerge checks what "<<:" merges into a struct: a mapping or a list of
// them. Keys written in the mapping itself override merged ones, so merged
// keys are not duplicates.
func (c *checker) checkMerge(v *yaml.Node, t reflect.Type, path string, seen map[string]int) {
	v = resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		c.checkStruct(v, t, path, map[string]int{})
	case yaml.SequenceNode:
		for _, m := range v.Content {
			c.checkMerge(m, t, path, seen)
		}
	default:
		c.add(&Error{Line: v.Line, Field: path, Err: errors.New("<< merges a mapping or a list of mappings")})
	}
}

// checkMapMerge checks what "<<:" merges into a map: a mapping or a list of
// them, whose entries are the map's.
func (c *checker) checkMapMerge(v *yaml.Node, t reflect.Type, path string) {
	v = resolve(v)
	switch v.Kind {
	case yaml.MappingNode:
		c.add(c.check(v, t, path, v.Line))
	case yaml.SequenceNode:
		for _, m := range v.Content {
			c.checkMapMerge(m, t, path)
		}
	default:
		c.add(&Error{Line: v.Line, Field: path, Err: errors.New("<< merges a mapping or a list of mappings")})
	}
}

// unknownFieldErr says a key is unknown, with the nearest known key when one
// is close enough to be a typo, else the keys there are.
func unknownFieldErr(key string, fields []field) error {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	if s := Suggest(key, keys); s != "" {
		return fmt.Errorf("unknown field (did you mean %q?)", s)
	}
	if len(keys) == 0 {
		return errors.New("unknown field (this section takes no fields)")
	}
	sorted := append([]string(nil), keys...)
	sort.Strings(sorted)
	return fmt.Errorf("unknown field (known fields: %s)", strings.Join(sorted, ", "))
}

// Suggest returns the candidate nearest to s when it is close enough to be
// a typo of it (a few letters wrong, missing, extra or swapped, or s cut
// short), else "". Ties go to the earlier candidate.
func Suggest(s string, candidates []string) string {
	ls := strings.ToLower(s)
	best, bestD := "", math.MaxInt
	limit := max(1, min(3, len([]rune(ls))/3))
	for _, c := range candidates {
		d := editDistance(ls, strings.ToLower(c))
		if d <= limit && d < bestD {
			best, bestD = c, d
		}
	}
	if best != "" {
		return best
	}
	// A key cut short ("drain" for "drain_timeout"), when only one fits.
	if len(ls) >= 3 {
		for _, c := range candidates {
			if strings.HasPrefix(strings.ToLower(c), ls) {
				if best != "" {
					return ""
				}
				best = c
			}
		}
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b:
// insertions, deletions, substitutions and swaps of neighbours count one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

// describe names what a node holds, for "X is not Y": a scalar quoted, a
// list or a mapping by its kind.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return strconv.Quote(n.Value)
}

// want says what a field of type t takes.
func want(t reflect.Type) string {
	if t == durationType {
		return "a duration (write e.g. 30s, 5m, 1h30m)"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "a whole number"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number (0 or more)"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Struct:
		if t == timeType {
			return "a time (write e.g. 2024-05-01T12:00:00Z)"
		}
		return "a mapping of fields (key: value)"
	case reflect.Map:
		return "a mapping (key: value)"
	case reflect.Slice, reflect.Array:
		return `a list (write [a, b] or one "- item" per line)`
	}
	return "a " + t.String()
}

// badScalar explains why a scalar does not fit a field of type t.
func badScalar(n *yaml.Node, t reflect.Type) string {
	if n.Tag == "!!int" && t != durationType {
		var lo, hi string
		switch t.Kind() {
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			bits := t.Bits()
			lo, hi = strconv.FormatInt(-1<<(bits-1), 10), strconv.FormatInt(1<<(bits-1)-1, 10)
		case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
			lo, hi = "0", strconv.FormatUint(math.MaxUint64>>(64-t.Bits()), 10)
		}
		if lo != "" {
			return fmt.Sprintf("%q is out of range (%s to %s)", n.Value, lo, hi)
		}
	}
	return describe(n) + " is not " + want(t)
}
