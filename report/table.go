package report

import (
	"bytes"
	"io"
	"strings"
	"time"

	"github.com/dustin/go-humanize"
	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/renderer"
	"github.com/olekukonko/tablewriter/tw"
)

// table is a plain, borderless table in the style of `git` and `docker ps`:
// easy to read and easy to grep.
type table struct {
	t    *tablewriter.Table
	rows [][]string
	buf  *bytes.Buffer
	w    io.Writer
}

func newTable(w io.Writer, st Style, header ...string) *table {
	pad := tw.Padding{Left: "", Right: "  ", Overwrite: true}
	cfg := tablewriter.NewConfigBuilder().
		WithHeaderAlignment(tw.AlignLeft).WithRowAlignment(tw.AlignLeft).
		WithHeaderAutoFormat(tw.Off).WithRowAutoFormat(tw.Off).
		WithHeaderAutoWrap(tw.WrapNone).WithRowAutoWrap(tw.WrapNone).
		WithHeaderGlobalPadding(pad).WithRowGlobalPadding(pad).
		WithTrimSpace(tw.Off).
		Build()
	buf := &bytes.Buffer{}
	t := tablewriter.NewTable(buf,
		tablewriter.WithRenderer(renderer.NewBlueprint(tw.Rendition{
			Borders: tw.BorderNone,
			Symbols: tw.NewSymbols(tw.StyleNone),
			Settings: tw.Settings{
				Separators: tw.Separators{BetweenRows: tw.Off, BetweenColumns: tw.Off},
				Lines:      tw.Lines{ShowHeaderLine: tw.Off},
			},
		})),
		tablewriter.WithConfig(cfg),
	)
	t.Header(header)
	return &table{t: t, buf: buf, w: w}
}

func (t *table) row(cells ...string) { t.rows = append(t.rows, cells) }

func (t *table) render() error {
	if err := t.t.Bulk(t.rows); err != nil {
		return err
	}
	if err := t.t.Render(); err != nil {
		return err
	}
	// The padding of the last column leaves trailing blanks.
	for _, line := range strings.SplitAfter(t.buf.String(), "\n") {
		if line == "" {
			continue
		}
		if _, err := io.WriteString(t.w, strings.TrimRight(line, " \n")+"\n"); err != nil {
			return err
		}
	}
	return nil
}

// size is a byte count for people: binary units, as Finder and du -h count.
func size(n int64) string {
	if n < 0 {
		n = 0
	}
	return humanize.IBytes(uint64(n))
}

// date shows a time in the local zone, with its age when humanizing.
func (st Style) date(t *time.Time) string {
	if t == nil {
		return "never"
	}
	s := t.Local().Format("2006-01-02 15:04")
	if st.Humanize && !st.Now.IsZero() {
		s += " (" + humanize.RelTime(*t, st.Now, "ago", "from now") + ")"
	}
	return s
}

const (
	ansiReset  = "\x1b[0m"
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
)

// state colours a state name on a terminal.
func (st Style) state(s string) string {
	if !st.Color {
		return s
	}
	c := ""
	switch s {
	case "ok":
		c = ansiGreen
	case "incomplete":
		c = ansiYellow
	case "corrupt", "unreadable":
		c = ansiRed
	case "busy":
		c = ansiBlue
	}
	if c == "" {
		return s
	}
	return c + s + ansiReset
}
