// Package config owns what every configuration file shares: the one error
// type that names the file, line and field of a mistake, and finding a
// field's line in the YAML source. Packages' Validate methods return field
// errors without a file or line; the code that read the file locates them.
package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Error is a configuration mistake: where it is and what is wrong.
//
// File and Line are empty until the error is located (see Locate); Field is
// a dotted path with list indexes, such as "sip.listen[1].addr".
type Error struct {
	File  string
	Line  int
	Field string
	Err   error
}

// Error formats "file:line: field: message", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		if e.File == "" {
			b.WriteString("line ")
		} else {
			b.WriteByte(':')
		}
		b.WriteString(strconv.Itoa(e.Line))
	}
	if e.Field != "" {
		if b.Len() > 0 {
			b.WriteString(": ")
		}
		b.WriteString(e.Field)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the reason, so errors.Is finds sentinel errors through it.
func (e *Error) Unwrap() error { return e.Err }

// Errors are several mistakes found in one file, in its order. errors.As
// finds the first *Error in it.
type Errors []*Error

// Error writes each mistake on its own line.
func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Unwrap returns the mistakes, for errors.As and errors.Is.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// FieldErr is what a Validate method returns: err tied to field, a path below
// the section the method validates.
func FieldErr(field string, err error) error {
	return &Error{Field: field, Err: err}
}

// Fieldf is FieldErr with a message formatted by fmt.Errorf (so %w wraps).
func Fieldf(field, format string, a ...any) error {
	return &Error{Field: field, Err: fmt.Errorf(format, a...)}
}

// Within puts err under prefix: a section ("sip") or a list element
// ("trunks[2]"). An *Error gets its field prefixed; any other error becomes
// an error of the field prefix. A nil err stays nil.
func Within(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if e, ok := err.(*Error); ok {
		c := *e
		c.Field = join(prefix, e.Field)
		return &c
	}
	return &Error{Field: prefix, Err: err}
}

// join joins two parts of a field path: "sip" and "rtp_ports" give
// "sip.rtp_ports", "users" and "[2].name" give "users[2].name".
func join(prefix, field string) string {
	switch {
	case prefix == "":
		return field
	case field == "":
		return prefix
	case field[0] == '[':
		return prefix + field
	}
	return prefix + "." + field
}

// Locate names the file of the *Error in err and, when it has none, finds
// its line from its field in root (the document it came from; may be nil).
// The result is that *Error, located; an err that holds none is returned
// as it is.
func Locate(file string, root *yaml.Node, err error) error {
	var e *Error
	if !errors.As(err, &e) {
		return err
	}
	c := *e
	if c.File == "" {
		c.File = file
	}
	if c.Line == 0 && c.Field != "" {
		c.Line = Line(root, c.Field)
	}
	return &c
}
