# nudgebot: build, test, lint and release.
#
#   make build     ./nudgebot for this machine
#   make test      all tests with the race detector
#   make lint      go vet, staticcheck, and gofmt must have nothing to say
#   make release   static binaries for every platform in dist/, with SHA256SUMS
#   make image     the container image (needs Docker)

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)
# Static binaries: nudgebot needs no C library, and a binary built this
# way runs on any distribution and in a scratch or distroless image.
BUILD   := CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)'
PLATFORMS := linux/amd64 linux/arm64 darwin/arm64
# Pinned like in .ci/run, so make lint and CI apply the same checks; go run
# fetches it through the module proxy on first use.
STATICCHECK := go run honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: build test lint release image clean

build:
	$(BUILD) -o nudgebot ./cmd/nudgebot

test:
	go test -race ./...

lint:
	go vet ./...
	$(STATICCHECK) ./...
	@unformatted="$$(gofmt -l .)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt would change these files (run gofmt -w on them):"; echo "$$unformatted"; exit 1; \
	fi

release:
	rm -rf dist
	mkdir -p dist
	@set -e; for p in $(PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; \
		echo "building dist/nudgebot-$(VERSION)-$$os-$$arch"; \
		GOOS=$$os GOARCH=$$arch $(BUILD) -o dist/nudgebot-$(VERSION)-$$os-$$arch ./cmd/nudgebot; \
	done
	@cd dist && if command -v sha256sum >/dev/null; then sha256sum nudgebot-* > SHA256SUMS; \
		else shasum -a 256 nudgebot-* > SHA256SUMS; fi
	@cat dist/SHA256SUMS

image:
	docker build --build-arg VERSION=$(VERSION) -t nudgebot:$(VERSION) .

clean:
	rm -rf dist nudgebot
