// Command mbaudit audits Apple iOS local backups (the MobileSync folders that
// Finder, iTunes and idevicebackup2 write) and cleans them up safely.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mbaudit/mbaudit/cmd"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cmd.Main(ctx, os.Args, cmd.OSEnv())
	stop()
	os.Exit(code)
}
