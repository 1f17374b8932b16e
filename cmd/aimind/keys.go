package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/aimind/aimind/auth"
	"github.com/aimind/aimind/server"
	"github.com/aimind/aimind/store"
)

// localSocket is the Unix socket a running server answers `aimind keys` on.
const localSocket = "aimind.sock"

func dataDirFlag(dst *string) cli.Flag {
	return &cli.StringFlag{Name: "data-dir", Value: store.DefaultDir(), EnvVars: []string{"AIMIND_DATA_DIR"},
		Usage: "where the store, the admin password file and the local socket live", Destination: dst}
}

// dataDirOf is --data-dir as given on the command line at any level
// (`aimind keys --data-dir D create` and `aimind keys create --data-dir D`
// both work), else its environment variable or default.
func dataDirOf(c *cli.Context) string {
	for _, cc := range c.Lineage() {
		for _, n := range cc.LocalFlagNames() {
			if n == "data-dir" {
				return cc.String("data-dir")
			}
		}
	}
	return c.String("data-dir")
}

func listenLocal(path string) (net.Listener, error) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	return ln, os.Chmod(path, 0o600)
}

// keyClient talks to a running server over its socket, or opens the store
// when none runs (Badger allows one process).
type keyClient struct {
	http *http.Client
	keys *auth.Keys
	st   *store.Store
}

func openKeys(dir string) (*keyClient, error) {
	sock := dir + string(os.PathSeparator) + localSocket
	if c, err := net.DialTimeout("unix", sock, time.Second); err == nil {
		c.Close()
		return &keyClient{http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", sock)
			}}}}, nil
	}
	st, err := store.Open(dir, nil)
	if err != nil {
		return nil, err
	}
	return &keyClient{keys: auth.NewKeys(st, nil), st: st}, nil
}

func (k *keyClient) Close() {
	if k.st != nil {
		k.st.Close()
	}
}

func (k *keyClient) call(method, path string, body any, out any) error {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, "http://aimind"+path, r)
	resp, err := k.http.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the running aimind: %w", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Message string } `json:"error"`
		}
		json.Unmarshal(raw, &e)
		return errors.New(e.Error.Message)
	}
	return json.Unmarshal(raw, out)
}

type keyRow struct {
	ID       string     `json:"id"`
	Name     string     `json:"name"`
	Prefix   string     `json:"prefix"`
	Created  time.Time  `json:"created"`
	Expires  *time.Time `json:"expires"`
	LastUsed *time.Time `json:"last_used"`
	Models   []string   `json:"models"`
}

func keysCommand() *cli.Command {
	return &cli.Command{
		Name:  "keys",
		Usage: "create, list and revoke API keys (works whether or not the server runs)",
		Flags: []cli.Flag{dataDirFlag(nil)},
		Subcommands: []*cli.Command{
			{
				Name:  "create",
				Usage: "make a key; it is printed once",
				Flags: []cli.Flag{
					dataDirFlag(nil),
					&cli.StringFlag{Name: "name", Required: true, Usage: "what the key is for (shown by keys list)"},
					&cli.StringFlag{Name: "expires", Usage: "e.g. 30d or 12h (default: never)"},
					&cli.StringFlag{Name: "models", Usage: "comma-separated models the key may use (default: all)"},
					&cli.StringFlag{Name: "to-file", Usage: "add the key's hash to this keys file (for serve --keys-file) instead of the store; one writer at a time"},
				},
				Action: func(c *cli.Context) error {
					var models []string
					for _, m := range strings.Split(c.String("models"), ",") {
						if m = strings.TrimSpace(m); m != "" {
							models = append(models, m)
						}
					}
					ttl, err := server.ParseExpiry(c.String("expires"))
					if err != nil {
						return err
					}
					if path := c.String("to-file"); path != "" {
						return createInFile(path, c.String("name"), ttl, models)
					}
					kc, err := openKeys(dataDirOf(c))
					if err != nil {
						return err
					}
					defer kc.Close()
					var plain, id string
					if kc.keys != nil {
						var rec auth.APIKey
						plain, rec, err = kc.keys.Create(c.String("name"), ttl, models)
						id = rec.ID
					} else {
						var out struct {
							Key  string `json:"key"`
							Data keyRow `json:"data"`
						}
						err = kc.call("POST", "/api/keys", map[string]any{"name": c.String("name"), "expires_in": c.String("expires"), "models": models}, &out)
						plain, id = out.Key, out.Data.ID
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "API key %s created; it is shown once, store it now:\n", id)
					fmt.Println(plain)
					return nil
				},
			},
			{
				Name:  "list",
				Usage: "list keys (never their secrets)",
				Flags: []cli.Flag{dataDirFlag(nil), &cli.StringFlag{Name: "file", Usage: "list the keys in this keys file instead of the store"}},
				Action: func(c *cli.Context) error {
					if path := c.String("file"); path != "" {
						return listFile(path)
					}
					kc, err := openKeys(dataDirOf(c))
					if err != nil {
						return err
					}
					defer kc.Close()
					var rows []keyRow
					if kc.keys != nil {
						list, err := kc.keys.List()
						if err != nil {
							return err
						}
						for _, k := range list {
							rows = append(rows, keyRow{k.ID, k.Name, k.Prefix, k.Created, k.Expires, k.LastUsed, k.Models})
						}
					} else {
						var out struct {
							Data []keyRow `json:"data"`
						}
						if err := kc.call("GET", "/api/keys", nil, &out); err != nil {
							return err
						}
						rows = out.Data
					}
					return printKeys(rows)
				},
			},
			{
				Name:  "export",
				Usage: "copy the store's keys (their hashes) into a keys file for serve --keys-file; the server must be stopped",
				Flags: []cli.Flag{dataDirFlag(nil), &cli.StringFlag{Name: "to-file", Required: true, Usage: "keys file to add them to (same ids are replaced)"}},
				Action: func(c *cli.Context) error {
					kc, err := openKeys(dataDirOf(c))
					if err != nil {
						return err
					}
					defer kc.Close()
					if kc.keys == nil {
						return errors.New("cannot export keys while the server runs (the API never hands out hashes): stop it, export, start it again")
					}
					return exportToFile(kc.keys, c.String("to-file"))
				},
			},
			{
				Name:      "revoke",
				Usage:     "revoke a key by id; it stops working at once",
				ArgsUsage: "ID",
				Flags:     []cli.Flag{dataDirFlag(nil), &cli.StringFlag{Name: "from-file", Usage: "remove the key from this keys file instead of the store; replicas refuse it within a second"}},
				Action: func(c *cli.Context) error {
					id := c.Args().First()
					if id == "" {
						return errors.New("give the key id (aimind keys list shows it)")
					}
					if path := c.String("from-file"); path != "" {
						return revokeInFile(path, id)
					}
					kc, err := openKeys(dataDirOf(c))
					if err != nil {
						return err
					}
					defer kc.Close()
					if kc.keys != nil {
						err = kc.keys.Revoke(id)
					} else {
						var out map[string]any
						err = kc.call("DELETE", "/api/keys/"+id, nil, &out)
					}
					if err != nil {
						return err
					}
					fmt.Fprintf(os.Stderr, "API key %s revoked\n", id)
					return nil
				},
			},
		},
	}
}

func printKeys(rows []keyRow) error {
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tPREFIX\tCREATED\tEXPIRES\tLAST USED\tMODELS")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Name, r.Prefix, r.Created.Format(time.RFC3339),
			when(r.Expires, "never"), when(r.LastUsed, "-"), orAll(r.Models))
	}
	return w.Flush()
}

func when(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.Format(time.RFC3339)
}

func orAll(m []string) string {
	if len(m) == 0 {
		return "all"
	}
	return strings.Join(m, ",")
}

func adminCommand() *cli.Command {
	var dir, password string
	return &cli.Command{
		Name:  "admin",
		Usage: "admin account tools",
		Subcommands: []*cli.Command{{
			Name:  "reset-password",
			Usage: "set a new admin password (offline: stop the server first); it must be changed at next login",
			Flags: []cli.Flag{dataDirFlag(&dir), &cli.StringFlag{Name: "password", Usage: "new password (default: random, written to <data-dir>/initial_admin_password)", Destination: &password}},
			Action: func(c *cli.Context) error {
				st, err := store.Open(dir, nil)
				if err != nil {
					return err
				}
				defer st.Close()
				path, err := auth.NewAdmin(st, dir).ResetPassword(password)
				if err != nil {
					return err
				}
				if path != "" {
					fmt.Fprintf(os.Stderr, "admin password reset; the new one is in %s\n", path)
				} else {
					fmt.Fprintln(os.Stderr, "admin password reset")
				}
				return nil
			},
		}},
	}
}
