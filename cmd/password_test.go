package cmd

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mbaudit/mbaudit/backup/backuptest"
)

// promptEnv is a terminal session whose user types answer at the prompt.
func promptEnv(t *testing.T, answer string, asked *int) Env {
	env := testEnv(t)
	env.IsTerminal = func(any) bool { return true }
	env.ReadPassword = func() ([]byte, error) {
		*asked++
		return []byte(answer), nil
	}
	return env
}

func TestPasswordPrompt(t *testing.T) {
	root := t.TempDir()
	enc := backuptest.MustWrite(t, root, backuptest.Seed(41), backuptest.Files(20), backuptest.Encrypted())

	t.Run("asked and used", func(t *testing.T) {
		asked := 0
		code, out, errOut := run(t, promptEnv(t, enc.Password, &asked), "verify", "--quiet", root)
		if code != 0 || asked != 1 || !strings.Contains(out, "unlocked with the password") {
			t.Fatalf("exit %d, asked %d times\n%s%s", code, asked, out, errOut)
		}
		if !strings.Contains(errOut, "Backup password") || strings.Contains(errOut+out, enc.Password) {
			t.Errorf("prompt or echo wrong: %q", errOut)
		}
	})
	t.Run("skipped with Enter", func(t *testing.T) {
		asked := 0
		code, out, _ := run(t, promptEnv(t, "", &asked), "verify", "--quiet", root)
		if code != 0 || asked != 1 || !strings.Contains(out, "manifest-encrypted") {
			t.Fatalf("exit %d, asked %d\n%s", code, asked, out)
		}
	})
	t.Run("not asked without a terminal", func(t *testing.T) {
		asked := 0
		env := promptEnv(t, enc.Password, &asked)
		env.IsTerminal = func(any) bool { return false }
		if code, _, _ := run(t, env, "verify", root); code != 0 || asked != 0 {
			t.Fatalf("exit %d, asked %d", code, asked)
		}
	})
	t.Run("not asked when no backup is encrypted", func(t *testing.T) {
		plain := t.TempDir()
		backuptest.MustWrite(t, plain, backuptest.Seed(42), backuptest.Files(5))
		asked := 0
		if code, _, _ := run(t, promptEnv(t, "x", &asked), "verify", plain); code != 0 || asked != 0 {
			t.Fatalf("exit %d, asked %d", code, asked)
		}
	})
	t.Run("environment wins over the prompt", func(t *testing.T) {
		asked := 0
		env := promptEnv(t, "wrong", &asked)
		env.Getenv = func(k string) string {
			if k == passwordEnv {
				return enc.Password
			}
			return ""
		}
		if code, out, _ := run(t, env, "verify", root); code != 0 || asked != 0 || !strings.Contains(out, "unlocked") {
			t.Fatalf("exit %d, asked %d\n%s", code, asked, out)
		}
	})
	t.Run("terminal error", func(t *testing.T) {
		env := testEnv(t)
		env.IsTerminal = func(any) bool { return true }
		env.ReadPassword = func() ([]byte, error) { return nil, errors.New("not a tty") }
		if code, _, errOut := run(t, env, "verify", root); code != 2 || !strings.Contains(errOut, "cannot read the password from the terminal") {
			t.Fatalf("exit %d: %s", code, errOut)
		}
	})
}

// A wrong password for one backup is exit 2, but every backup is still
// verified and reported.
func TestWrongPasswordOthersVerified(t *testing.T) {
	root := t.TempDir()
	backuptest.MustWrite(t, root, backuptest.Seed(43), backuptest.Files(10), backuptest.Password("one"))
	backuptest.MustWrite(t, root, backuptest.Seed(44), backuptest.Files(10))
	env := testEnv(t)
	env.Stdin = strings.NewReader("wrong-pass-xyz\n")
	code, out, errOut := run(t, env, "verify", "--password-stdin", root)
	if code != 2 || strings.Count(errOut, "wrong password for") != 1 || !strings.Contains(out, "2 backups verified, 2 ok") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "wrong-pass-xyz") {
		t.Errorf("the password appears in the output")
	}
}

// TestVerifyHelperProcess is not a test: TestPasswordInterrupted runs the
// test binary through it as mbaudit, with main's signal handling.
func TestVerifyHelperProcess(t *testing.T) {
	args := os.Getenv("MBAUDIT_VERIFY_HELPER_ARGS")
	if args == "" {
		t.Skip("only run by TestPasswordInterrupted")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, append([]string{"mbaudit"}, strings.Split(args, "\x1f")...), OSEnv())
	stop()
	os.Exit(code)
}

// Ctrl-C while an encrypted backup is verified with its password: exit 130,
// the decrypted index gone from the temporary folder, the backup untouched.
func TestPasswordInterrupted(t *testing.T) {
	if testing.Short() {
		t.Skip("signals a real process")
	}
	root, tmp := t.TempDir(), t.TempDir()
	b := backuptest.MustWrite(t, root, backuptest.Seed(45), backuptest.Files(4000), backuptest.Encrypted())
	before := backuptest.HashTree(t, b.Path)
	cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyHelperProcess$")
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp, passwordEnv+"="+b.Password,
		"MBAUDIT_VERIFY_HELPER_ARGS="+strings.Join([]string{"verify", "--deep", "--jobs", "1", root}, "\x1f"))
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	seen := false
	for !seen && time.Now().Before(deadline) {
		matches, _ := filepath.Glob(filepath.Join(tmp, "mbaudit-private-*", "Manifest.db"))
		seen = len(matches) > 0
		if !seen {
			time.Sleep(time.Millisecond)
		}
	}
	if !seen {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the decrypted index never appeared in the temporary folder\n%s", errOut.String())
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Fatalf("exit: %v\nstdout %s\nstderr %s", err, out.String(), errOut.String())
	}
	if entries, _ := os.ReadDir(tmp); len(entries) != 0 {
		t.Errorf("left in the temporary folder: %v", entries)
	}
	if backuptest.HashTree(t, b.Path) != before {
		t.Error("the backup changed")
	}
	if strings.Contains(out.String()+errOut.String(), b.Password) {
		t.Error("the password was printed")
	}
}

// On a terminal, unlocking shows progress and then says how long the key
// derivation took.
func TestPasswordUnlockReported(t *testing.T) {
	root := t.TempDir()
	backuptest.MustWrite(t, root, backuptest.Seed(46), backuptest.Files(5), backuptest.KeybagRounds(200000, 1000))
	env := testEnv(t)
	env.IsTerminal = func(any) bool { return true }
	env.Stdin = strings.NewReader(backuptest.TestPassword + "\n")
	start := time.Now()
	env.Now = func() time.Time { return start.Add(time.Since(start) * 1000) } // progress redraws are throttled by this clock
	code, out, errOut := run(t, env, "verify", "--password-stdin", "--no-color", root)
	if code != 0 {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(errOut, "deriving the key from the password") {
		t.Errorf("no derivation progress on stderr: %q", errOut)
	}
	if !strings.Contains(errOut, "unlocked ") || !strings.Contains(errOut, "201,000 key-derivation rounds took") {
		t.Errorf("the time it took is not said: %q", errOut)
	}
	if strings.Contains(out, "deriving") || strings.Contains(out+errOut, backuptest.TestPassword) {
		t.Errorf("progress on stdout, or the password shown")
	}
}
