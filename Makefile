# The two set-up commands of the README: `make demo` and `make test`. Both install what they need.
PY ?= python3
PIP ?= $(PY) -m pip
APT_PACKAGES = iproute2 nmap arp-scan tcpdump curl tmux chromium ieee-data nftables snmpd dnsmasq postgresql

.PHONY: demo test install system-packages lint bench

system-packages:
	@if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi; \
	else echo "note: not root or no apt-get; skipping Debian packages ($(APT_PACKAGES))" >&2; fi

install: system-packages
	$(PIP) install -q -e '.[test]'

demo: install
	camsweep demo

test: install
	$(PY) -m pytest -q -ra

lint:
	ruff check scanner fingerprints tui tests bench

bench: install
	$(PY) bench/identify.py
