package main

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/voxgate/voxgate/webclient"
)

// tokenCmd is `voxgate token`: it makes a random API token and prints it
// with the web.tokens entry that holds its hash (the config never holds
// the token itself).
func tokenCmd(args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stdout)
	name := fs.String("name", "", "who the token is for (logged with what it does); required")
	scopes := fs.String("scopes", "read", "comma-separated scopes: admin, read, metrics")
	fs.Usage = func() {
		fmt.Fprintln(stdout, "usage: voxgate token -name NAME [-scopes admin,read,metrics]")
		fmt.Fprintln(stdout, "Prints a new random API token and the line to add under web.tokens in the config.")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("token: unexpected argument %q (give -name and -scopes)", fs.Arg(0))
	}
	if *name == "" {
		return errors.New("token: give -name (who the token is for, e.g. -name grafana)")
	}
	if strings.ContainsAny(*name, ",{}[]:#\"'\n") {
		return fmt.Errorf("token: -name %q: use letters, digits, '-' or '_'", *name)
	}
	var list []string
	for _, s := range strings.Split(*scopes, ",") {
		sc, err := webclient.ParseScope(strings.TrimSpace(s))
		if err != nil {
			return fmt.Errorf("token: -scopes: %w", err)
		}
		list = append(list, string(sc))
	}
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return err
	}
	token := base64.RawURLEncoding.EncodeToString(b)
	_, err := fmt.Fprintf(stdout, `token: %s
(shown once: voxgate keeps only its SHA-256; send it as "Authorization: Bearer <token>")

add under web.tokens in the config:
  - {name: %s, sha256: %s, scopes: [%s]}
`, token, *name, webclient.HashToken(token), strings.Join(list, ", "))
	return err
}
