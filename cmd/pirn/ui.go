package main

import (
	"fmt"
	"net"
	"net/url"

	"github.com/urfave/cli/v2"

	"github.com/pirn-wasm/pirn/ui"
)

func uiCommand() *cli.Command {
	return &cli.Command{
		Name:  "ui",
		Usage: "serve a local, read-only web UI over the run history",
		Description: `Runs (filters and search), each run's view, values by digest, lineage
queries and the diff of two runs, over any history and store (--history,
--store). It listens on 127.0.0.1 by default; another address needs a token
(--token or PIRN_UI_TOKEN), which the printed URL carries once and a cookie
afterwards. It stops on Ctrl-C.`,
		Flags: []cli.Flag{
			stateFlag,
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8470", Usage: "listen on `HOST:PORT` (port 0 picks a free one)"},
			&cli.StringFlag{Name: "token", Usage: "require this `TOKEN` on every request (needed off loopback)", EnvVars: []string{"PIRN_UI_TOKEN"}},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageErr("ui takes no arguments")
			}
			token := c.String("token")
			if err := ui.CheckAddr(c.String("addr"), token); err != nil {
				return usageErr("%v", err)
			}
			lg, err := logger(c)
			if err != nil {
				return err
			}
			st, err := openState(c, true)
			if err != nil {
				return err
			}
			defer st.Close()
			srv, err := ui.New(ui.Config{Token: token, Logger: lg}, st.History, st.Store)
			if err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return inputErr(fmt.Errorf("--addr: %w", err))
			}
			u := url.URL{Scheme: "http", Host: ln.Addr().String(), Path: "/"}
			if token != "" {
				u.RawQuery = url.Values{"token": {token}}.Encode()
			}
			fmt.Fprintf(c.App.Writer, "pirn ui: serving %s (read-only; Ctrl-C stops)\n", u.String())
			return srv.Serve(c.Context, ln)
		},
	}
}
