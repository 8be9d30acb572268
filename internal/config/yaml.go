package config

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Decode decodes a YAML file's bytes into v, refusing unknown fields, and
// returns the document's node tree for Line. Its errors are *Error with the
// file, the line and the field, in the words of the file: an unknown field
// with the known one it is nearest to ("did you mean"), a value with what
// its field takes (a whole number, a duration and how to write one, ...).
// Several such mistakes come together as Errors, in the order of the file.
// An empty file decodes to nothing without error.
func Decode(file string, data []byte, v any) (*yaml.Node, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, yamlError(file, nil, err)
	}
	if t := reflect.TypeOf(v); t != nil && t.Kind() == reflect.Pointer {
		if errs := check(&root, t.Elem(), "", 0); len(errs) > 0 {
			for _, e := range errs {
				e.File = file
			}
			if len(errs) == 1 {
				return &root, errs[0]
			}
			return &root, Errors(errs)
		}
	}
	// What check lets through, yaml.v3 decodes; should it still refuse
	// something, its own message is shown, placed on its line.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return &root, yamlError(file, &root, err)
	}
	return &root, nil
}

var (
	yamlLine     = regexp.MustCompile(`line (\d+): (.*)`)
	unknownField = regexp.MustCompile(`^field (\S+) not found in type`)
	badValue     = regexp.MustCompile("^cannot unmarshal !!\\w+ `([^`]*)` into")
)

// yamlError turns a yaml.v3 error ("yaml: line 3: ...") into an *Error; a
// type error reports its first mistake.
func yamlError(file string, root *yaml.Node, err error) error {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	m := yamlLine.FindStringSubmatch(msg)
	if m == nil {
		return &Error{File: file, Err: errors.New(msg)}
	}
	line, _ := strconv.Atoi(m[1])
	e := &Error{File: file, Line: line, Err: errors.New(m[2])}
	if root != nil {
		// yaml.v3 names an unknown key, or a scalar of the wrong type, but
		// not its path; the first key on the line stands for the rest.
		var match func(k, v *yaml.Node) bool
		if u := unknownField.FindStringSubmatch(m[2]); u != nil {
			match = func(k, _ *yaml.Node) bool { return k.Value == u[1] }
		} else if b := badValue.FindStringSubmatch(m[2]); b != nil {
			// yaml.v3 cuts values longer than 10 bytes to 7 and "...".
			val, cut := strings.CutSuffix(b[1], "...")
			match = func(_, v *yaml.Node) bool {
				return v.Kind == yaml.ScalarNode && v.Line == line && (v.Value == val || cut && strings.HasPrefix(v.Value, val))
			}
		}
		if match != nil {
			e.Field = fieldAt(root, line, "", match)
		}
		if e.Field == "" {
			e.Field = FieldAt(root, line)
		}
	}
	return e
}

// Line returns the line of the field at path ("sip.listen[0].addr") in the
// document root: the line of its key, or of its list element. When part of
// the path is missing it returns the line of the deepest part that exists
// (for a missing field, where it belongs); 0 for an empty document. Keys may
// themselves hold dots ("origins.trunks.carrier.example"): at each mapping
// the longest key that fits the rest of the path is taken.
func Line(root *yaml.Node, path string) int {
	n := resolve(root)
	if n == nil {
		return 0
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return n.Line
		}
		n = resolve(n.Content[0])
	}
	line := n.Line
	for rest := path; rest != ""; rest = strings.TrimPrefix(rest, ".") {
		if rest[0] == '[' {
			end := strings.IndexByte(rest, ']')
			if end < 0 {
				return line
			}
			i, err := strconv.Atoi(rest[1:end])
			if err != nil || n.Kind != yaml.SequenceNode || i < 0 || i >= len(n.Content) {
				return line
			}
			n = resolve(n.Content[i])
			line, rest = n.Line, rest[end+1:]
			continue
		}
		k, v := keyOf(n, rest)
		if k == nil {
			return line
		}
		n, line, rest = resolve(v), k.Line, rest[len(k.Value):]
	}
	return line
}

// keyOf finds, in a mapping, the longest key that path starts with as a
// whole part (followed by nothing, "." or "[").
func keyOf(n *yaml.Node, path string) (key, val *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i].Value
		if k == "" || !strings.HasPrefix(path, k) || (key != nil && len(k) <= len(key.Value)) {
			continue
		}
		if len(path) == len(k) || path[len(k)] == '.' || path[len(k)] == '[' {
			key, val = n.Content[i], n.Content[i+1]
		}
	}
	return key, val
}

func resolve(n *yaml.Node) *yaml.Node {
	if n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		return n.Alias
	}
	return n
}

// FieldAt returns the path of the first mapping key on line, the outermost
// when several share it ("" when none does): the field of an error that
// yaml.v3 reports by line only.
func FieldAt(root *yaml.Node, line int) string {
	return fieldAt(root, line, "", nil)
}

// fieldAt is FieldAt limited to the keys that match takes (with their
// values); nil takes any key.
func fieldAt(n *yaml.Node, line int, prefix string, match func(k, v *yaml.Node) bool) string {
	if n == nil {
		return ""
	}
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if f := fieldAt(c, line, prefix, match); f != "" {
				return f
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			path := join(prefix, k.Value)
			if k.Line == line && (match == nil || match(k, n.Content[i+1])) {
				return path
			}
			if f := fieldAt(n.Content[i+1], line, path, match); f != "" {
				return f
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if f := fieldAt(c, line, prefix+"["+strconv.Itoa(i)+"]", match); f != "" {
				return f
			}
		}
	}
	return ""
}
