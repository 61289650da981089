# assetd: `make demo` shows it working, `make test` checks it.
GO          ?= go
STATICCHECK ?= $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2
BIN         ?= bin
PREFIX      ?= /usr/local
DESTDIR     ?=
SYSCONFDIR  ?= /etc
UNITDIR     ?= $(PREFIX)/lib/systemd/system
MANDIR      ?= $(PREFIX)/share/man
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT      ?= $(shell git rev-parse --short HEAD 2>/dev/null)
DATE        ?= $(shell git log -1 --format=%cI 2>/dev/null)
PKG         := github.com/assetd/assetd/internal/version
LDFLAGS     := -s -w -X $(PKG).Version=$(VERSION) -X $(PKG).Commit=$(COMMIT) -X $(PKG).Date=$(DATE)
FUZZTIME    ?= 30s
# Release builds (dist, deb): static, no build ID, dated by the commit.
DIST        ?= dist
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
DIST_LDFLAGS := $(LDFLAGS) -buildid=
DIST_ENV    := CGO_ENABLED=0 GOOS=linux GOAMD64=v1 GOARM64=v8.0 GOFLAGS=
DIST_BUILD  := $(GO) build -trimpath -buildvcs=false -ldflags '$(DIST_LDFLAGS)'
# A count, not a duration: go1.26's fuzz coordinator can fail a duration run
# with 'context deadline exceeded' when a busy worker misses the deadline
# (golang/go#75804, fixed in go1.27); a count has no deadline to race.
FUZZSMOKE   ?= 5000x

.PHONY: all build test lint vet fmt-check race bench bench-go fleet-sim fleet-test bench-tools demo install clean fuzz fuzz-smoke tools reliability dist deb package-test clients-tools clients-test clients-test-python clients-test-node clients-dist

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/assetd ./cmd/assetd

# The tests run the real binary, systemd-analyze, curl, nginx (the
# static-server test) and promtool (Debian's prometheus package, about 20 MB:
# no smaller package ships it; the metrics and rules tests) and dbus-daemon
# (Debian's dbus: the metered-link test's private bus); tools installs
# what a fresh Debian machine lacks (as root, through apt) and is a no-op
# where they are present.
test: tools fmt-check vet lint race fuzz-smoke clients-test

tools:
	@missing=""; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	command -v curl >/dev/null || missing="$$missing curl"; \
	command -v nginx >/dev/null || [ -x /usr/sbin/nginx ] || missing="$$missing nginx-light"; \
	command -v dbus-daemon >/dev/null || missing="$$missing dbus"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || \
			echo "could not install$$missing; the tests that need them will say so"; \
	fi
	@# promtool alone: without the recommended node exporter, another daemon.
	@if ! command -v promtool >/dev/null && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing prometheus (for promtool)"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null || \
			echo "could not install prometheus; the promtool tests will say so"; \
	fi

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

lint:
	$(STATICCHECK) ./...

race:
	$(GO) test -race -count=1 -timeout 8m ./...

# bench measures the whole process against aria2c, curl and a bare Go
# downloader (bench/cmd/assetd-bench) after the go benchmarks, and writes
# docs/performance.md, then runs fleet-sim (docs/fleet.md). bench-tools installs aria2 (as root, through apt)
# when aria2c is missing; without it the aria2c row says "not available".
bench: build bench-tools
	@mkdir -p $(BIN)
	@{ $(MAKE) --no-print-directory bench-go 2>&1; echo $$? >$(BIN)/bench-go.rc; } | tee $(BIN)/bench-go.txt; \
		exit $$(cat $(BIN)/bench-go.rc)
	$(GO) build -o $(BIN)/assetd-bench ./bench/cmd/assetd-bench
	$(BIN)/assetd-bench -assetd $(BIN)/assetd -gobench $(BIN)/bench-go.txt -out docs/performance.md
	$(MAKE) --no-print-directory fleet-sim

# fleet-sim simulates 10,000 devices' refresh schedulers over a day in
# virtual time (bench/fleet) and writes the Simulation section of
# docs/fleet.md; make test runs the same simulation with 300 devices.
FLEET_DEVICES ?= 10000
fleet-sim:
	$(GO) test -count=1 -timeout 20m -v -run '^TestFleetSimulation$$' ./bench/fleet \
		-fleet.devices $(FLEET_DEVICES) -fleet.report $(CURDIR)/docs/fleet.md

bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./...

bench-tools:
	@if ! command -v aria2c >/dev/null; then \
		if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
			echo "installing aria2"; \
			(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq aria2) >/dev/null || \
				echo "could not install aria2; the aria2c row will say not available"; \
		else \
			echo "aria2c missing and not installable here; the aria2c row will say not available"; \
		fi; \
	fi

fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

# fuzz-smoke runs every Fuzz target for FUZZSMOKE executions (make test); make fuzz runs
# them for FUZZTIME each.
# The targets are found with grep, which costs no test build per package.
fuzz-smoke:
	@for file in $$(grep -rl --include='*_test.go' '^func Fuzz' .); do \
		for f in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' $$file); do \
			echo "== $$(dirname $$file) $$f"; \
			$(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZSMOKE) ./$$(dirname $$file) || exit 1; \
		done; \
	done

# reliability runs the long crash harness (50 SIGKILL rounds), the load test
# (200 clients for 20 s) and the fleet test (fleet-test) against the real
# binary and writes docs/reliability.md from their figures (and the Fleet
# test section of docs/fleet.md); before them, the e2e tests that wait for a
# real refresh and a real scrub (a minute each).
reliability: tools
	ASSETD_E2E_LONG=1 $(GO) test -count=1 -timeout 10m -run 'TestPeriodicRefreshIs304|TestScrubFindsDamageAtRest' ./e2e
	$(GO) test -count=1 -timeout 30m ./reliability -reliability.full \
		-reliability.report $(CURDIR)/docs/reliability.md -fleet.doc $(CURDIR)/docs/fleet.md

# fleet-test runs 30 real daemons behind deploy/site-cache/nginx.conf (a
# real nginx over TLS) in front of one assetd origin (reliability/TestFleet,
# under a minute) and writes the Fleet test section of docs/fleet.md; make
# reliability runs it too. tools installs nginx-light when missing; without
# nginx it fails rather than skips.
fleet-test: tools
	ASSETD_REQUIRE_TOOLS=1 $(GO) test -count=1 -timeout 10m -v -run '^TestFleet$$' ./reliability \
		-reliability.fleet -fleet.doc $(CURDIR)/docs/fleet.md

demo: build
	./scripts/demo.sh $(BIN)/assetd

# The unit runs /usr/bin/assetd: with another PREFIX the installed unit is
# rewritten to the installed binary. The man pages (assetd(1) and the
# commands', assetd.toml(5)) and the bash, zsh and fish completions come
# from assetd docgen, as in the package.
install: build
	rm -rf $(BIN)/docs
	$(GO) run -tags docgen -trimpath -ldflags '$(LDFLAGS)' ./cmd/assetd docgen $(BIN)/docs
	install -D -m 0755 $(BIN)/assetd $(DESTDIR)$(PREFIX)/bin/assetd
	install -d $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 $(BIN)/docs/man/*.1 $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(BIN)/docs/man/*.5 $(DESTDIR)$(MANDIR)/man5/
	install -D -m 0644 $(BIN)/docs/completions/assetd $(DESTDIR)$(PREFIX)/share/bash-completion/completions/assetd
	install -D -m 0644 $(BIN)/docs/completions/_assetd $(DESTDIR)$(PREFIX)/share/zsh/site-functions/_assetd
	install -D -m 0644 $(BIN)/docs/completions/assetd.fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/assetd.fish
	install -D -m 0644 systemd/assetd.service $(DESTDIR)$(UNITDIR)/assetd.service
	install -D -m 0644 systemd/assetd.socket $(DESTDIR)$(UNITDIR)/assetd.socket
	install -D -m 0644 systemd/assetd.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/assetd.conf
	install -D -m 0644 systemd/assetd.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/assetd.conf
	install -D -m 0644 configs/assetd.toml $(DESTDIR)$(PREFIX)/share/assetd/assetd.toml
	test -e $(DESTDIR)$(SYSCONFDIR)/assetd/assetd.toml || \
		install -D -m 0644 configs/assetd.toml $(DESTDIR)$(SYSCONFDIR)/assetd/assetd.toml
	sed -i 's#/usr/bin/assetd#$(PREFIX)/bin/assetd#' $(DESTDIR)$(UNITDIR)/assetd.service
	sed -i 's#/usr/share/assetd#$(PREFIX)/share/assetd#' $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/assetd.conf

clean:
	rm -rf $(BIN)

# Static release binaries for linux/amd64, arm64 and arm (v7), and their
# SHA256SUMS: the same commit gives the same bytes (packaging's test).
dist:
	rm -f $(DIST)/assetd-linux-* $(DIST)/*.deb $(DIST)/SHA256SUMS
	mkdir -p $(DIST)
	$(DIST_ENV) GOARCH=amd64 $(DIST_BUILD) -o $(DIST)/assetd-linux-amd64 ./cmd/assetd
	$(DIST_ENV) GOARCH=arm64 $(DIST_BUILD) -o $(DIST)/assetd-linux-arm64 ./cmd/assetd
	$(DIST_ENV) GOARCH=arm GOARM=7 $(DIST_BUILD) -o $(DIST)/assetd-linux-armv7 ./cmd/assetd
	cd $(DIST) && sha256sum assetd-linux-* > SHA256SUMS

# A Debian package per binary (amd64, arm64, armhf), built with dpkg-deb;
# SHA256SUMS then covers the packages too.
deb: dist
	rm -rf $(DIST)/docs
	$(DIST_ENV) SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run -tags docgen -trimpath -buildvcs=false -ldflags '$(DIST_LDFLAGS)' ./cmd/assetd docgen $(DIST)/docs
	SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH) $(GO) run ./packaging/cmd/mkdeb -version '$(VERSION)' -docs $(DIST)/docs -out $(DIST) \
		$(DIST)/assetd-linux-amd64 $(DIST)/assetd-linux-arm64 $(DIST)/assetd-linux-armv7
	rm -rf $(DIST)/docs
	cd $(DIST) && sha256sum assetd-linux-* *.deb > SHA256SUMS

# The slow packaging test: builds dist twice, the packages, installs one.
package-test:
	ASSETD_PACKAGING_TEST=1 $(GO) test -count=1 -timeout 40m -v -run . ./packaging/

.PHONY: systemd-test

# The real-systemd test: the package installed with apt in a Debian booted
# with systemd-nspawn (as root; it installs systemd-container and mmdebstrap
# when missing, and caches the root file system in
# /var/cache/assetd-systemd-test). It skips where a container cannot boot,
# unless ASSETD_REQUIRE_SYSTEMD=1. It ends with a PASS/FAIL list.
systemd-test:
	ASSETD_SYSTEMD_TEST=1 $(GO) test -count=1 -timeout 15m -v -run '^TestBoot$$' ./systemd/

# The Python and Node clients (clients/), tested against the real daemon
# built here and a real `assetd origin`. Their tools come from Debian
# (Debian's /usr/bin/python3, whose pytest is python3-pytest; PyPI is not
# used). Under CI (CI=true, as CI sets it) a suite that cannot run or skips
# a test fails; elsewhere it says so and is skipped.
PYTHON3     ?= /usr/bin/python3

clients-tools:
	@missing=""; \
	$(PYTHON3) -c 'import pytest' 2>/dev/null || missing="$$missing python3-pytest"; \
	$(PYTHON3) -c 'import setuptools' 2>/dev/null || missing="$$missing python3-setuptools"; \
	$(PYTHON3) -c 'import build' 2>/dev/null || missing="$$missing python3-build"; \
	$(PYTHON3) -c 'import wheel' 2>/dev/null || missing="$$missing python3-wheel"; \
	$(PYTHON3) -c 'import venv, ensurepip' 2>/dev/null || missing="$$missing python3-venv"; \
	command -v node >/dev/null || missing="$$missing nodejs"; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing$$missing"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) >/dev/null || \
			echo "could not install$$missing"; \
	fi

# clients-skip NAME: a suite that cannot run fails under CI, else says so.
clients-skip = { echo "$(1): SKIPPED ($(2))"; [ "$$CI" != true ] || { echo "CI=true: a skipped suite is a failure"; exit 1; }; }

clients-test: clients-test-python clients-test-node

clients-test-python: build clients-tools
	@if ! $(PYTHON3) -c 'import pytest' 2>/dev/null; then \
		$(call clients-skip,python client,no pytest for $(PYTHON3)); exit 0; \
	fi; \
	out=$(CURDIR)/$(BIN)/clients-pytest.txt; \
	cd clients/python && ASSETD_BIN=$(CURDIR)/$(BIN)/assetd $(PYTHON3) -m pytest -q -rs -p no:cacheprovider >$$out 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ]; then cat $$out; exit $$rc; fi; \
	echo "python client (pytest): $$(tail -n 1 $$out)"; \
	if grep -q ' skipped' $$out; then $(call clients-skip,python client,tests skipped); fi

clients-test-node: build clients-tools
	@if ! command -v node >/dev/null || ! command -v npm >/dev/null; then \
		$(call clients-skip,node client,no node or npm); exit 0; \
	fi; \
	out=$(CURDIR)/$(BIN)/clients-node-test.txt; \
	cd clients/node && { npm ci --no-audit --no-fund --loglevel=error && \
		ASSETD_BIN=$(CURDIR)/$(BIN)/assetd npm test --silent; } >$$out 2>&1; rc=$$?; \
	if [ $$rc -ne 0 ]; then cat $$out; exit $$rc; fi; \
	echo "node client (node --test): $$(grep -E '^# (tests|pass|fail|cancelled|skipped|todo) ' $$out | sed 's/^# //' | paste -sd, - | sed 's/,/, /g')"; \
	if ! grep -qE '^# skipped 0$$' $$out || ! grep -qE '^# todo 0$$' $$out; then $(call clients-skip,node client,tests skipped); fi

# The clients' packages in $(DIST)/clients: the Python wheel and sdist
# (python3 -m build --no-isolation: Debian's setuptools, nothing from PyPI)
# and the npm tarball; each is installed into a fresh venv or an empty npm
# project and used against a real daemon.
clients-dist: build clients-tools
	rm -rf $(DIST)/clients
	mkdir -p $(DIST)/clients/python $(DIST)/clients/node
	cd clients/python && $(PYTHON3) -m build --no-isolation --outdir $(CURDIR)/$(DIST)/clients/python . && rm -rf build src/*.egg-info
	cd clients/node && npm ci --no-audit --no-fund --loglevel=error && npm pack --silent --pack-destination $(CURDIR)/$(DIST)/clients/node
	./clients/dist-smoke.sh $(BIN)/assetd $(PYTHON3) $(DIST)/clients
