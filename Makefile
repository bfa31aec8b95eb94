# mbaudit's build. `make test` is the one command that runs every test;
# `make demo` runs mbaudit on the sample backups in testdata/backups.

GO        ?= go
BIN       ?= mbaudit
TOOLS     := $(CURDIR)/.tools
STATICCHECK_VERSION := v0.8.2
FUZZTIME  ?= 30s
SAMPLES   := testdata/backups
# The one encrypted sample and its password (backuptest.TestPassword).
ENCRYPTED_SAMPLE := 00008120-00295FAC791CBFD1
SAMPLE_PASSWORD  := mbaudit-test-password

.PHONY: all build test demo bench lint fuzz samples clean

all: build

build:
	$(GO) build -o $(BIN) .

test:
	$(GO) test -race -timeout 20m ./...

# The samples are committed, so a fresh clone needs no generator run.
# `list` exits 0 whatever it shows; `verify` exits 1 because some samples
# are broken on purpose, which is the point of the demo.
demo: build
	./$(BIN) list $(SAMPLES)
	@echo
	@./$(BIN) verify $(SAMPLES); echo "(exit status $$?: 1 means problems were found, as the broken samples intend)"
	@echo
	@echo "# the encrypted sample, with its password (from the environment here):"
	MBAUDIT_PASSWORD=$(SAMPLE_PASSWORD) ./$(BIN) verify --deep --device $(ENCRYPTED_SAMPLE) $(SAMPLES)

# Benchmarks write large generated backups under $${TMPDIR:-/tmp}; they
# check free space first and print ratios against du -s.
bench:
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

lint: $(TOOLS)/staticcheck
	$(GO) vet ./...
	$(TOOLS)/staticcheck ./...
	GOOS=darwin CGO_ENABLED=0 $(GO) build -o /dev/null .
	GOOS=darwin CGO_ENABLED=0 $(GO) vet ./...

$(TOOLS)/staticcheck:
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

# Each fuzz target runs for FUZZTIME.
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$t"; \
	    $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# Regenerate the committed sample backups (deterministic: the same bytes
# every time; a test fails when the committed ones are out of date).
samples:
	$(GO) test . -run '^TestSamples$$' -update

clean:
	rm -f $(BIN)
	rm -rf $(TOOLS)
