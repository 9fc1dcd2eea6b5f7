# cpucompat.cluster: set-up, main job, tests and benchmarks. See README.md.
SHELL := /bin/bash
VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export ANSIBLE_COLLECTIONS_PATH := $(CURDIR)/.collections
COLL := .collections/ansible_collections/cpucompat/cluster
SOURCES := $(shell find galaxy.yml meta plugins roles playbooks docs README.md LICENSE changelogs tests requirements.txt bindep.txt -type f \
	-not -path '*/__pycache__/*' -not -path 'tests/output/*' 2>/dev/null)

# pytest on every core (pytest-xdist); tests that must not overlap share an xdist_group or the libvirtd lock
# (tests/utils/libvirtd_lock.py). JOBS=1 runs one process.
JOBS ?= $(shell nproc)
PYTEST := python -m pytest -q -p no:cacheprovider -n $(JOBS) --dist loadgroup
# Each part of make test says how long it took ("timing: ..."; docs/testing.md).
TIMED = bash $(CURDIR)/tools/timed.sh

.PHONY: setup run check test unit integration molecule sanity lint bench clean

setup:
	@bash tools/setup.sh
	@$(MAKE) --no-print-directory $(COLL)/MANIFEST.json

# Build the collection artifact and install it into the repo's collections path.
$(COLL)/MANIFEST.json: $(SOURCES)
	@rm -rf .build && mkdir -p .build
	ansible-galaxy collection build --force --output-path .build . >/dev/null
	ansible-galaxy collection install --force -p .collections .build/cpucompat-cluster-*.tar.gz >/dev/null
	@echo "installed cpucompat.cluster into .collections"

run: setup
	bash tools/demo.sh

unit: setup
	$(PYTEST) tests/unit

integration: setup
	$(PYTEST) tests/integration

# The fast loop (under two minutes): the unit tests on every core, and the files changed since the last commit linted
# (ruff on Python, ansible-lint on YAML), and mypy on plugins. make test is the whole truth.
check:
	$(PYTEST) tests/unit
	bash tools/lint_changed.sh

# ansible-test lists files with git when it runs inside a work tree, and the
# installed copy is git-ignored here: run it on a copy outside the repository.
SANITY_DIR := $(or $(TMPDIR),/tmp)/cpucompat-sanity/ansible_collections/cpucompat/cluster
sanity: setup
	rm -rf $(SANITY_DIR) && mkdir -p $(SANITY_DIR)
	tar -xzf .build/cpucompat-cluster-*.tar.gz -C $(SANITY_DIR)
	cd $(SANITY_DIR) && $(TIMED) sanity ansible-test sanity --requirements --python 3.11 --color no

# Molecule's default (delegated) driver on this machine; scenarios in extensions/molecule.
molecule: setup
	MOLECULE_PYTHON=$(VENV)/bin/python PY_COLORS=0 NO_COLOR=1 molecule reset -s site
	MOLECULE_PYTHON=$(VENV)/bin/python PY_COLORS=0 NO_COLOR=1 $(TIMED) "molecule site" molecule test -s site
	MOLECULE_PYTHON=$(VENV)/bin/python PY_COLORS=0 NO_COLOR=1 molecule reset -s contract
	MOLECULE_PYTHON=$(VENV)/bin/python PY_COLORS=0 NO_COLOR=1 $(TIMED) "molecule contract" molecule test -s contract

# The Python first, every file: ruff (ruff.toml) on plugins, tests, bench, tools and extensions, mypy (mypy.ini) on the
# typed algorithms in plugins/module_utils and on the adapters. Then what Galaxy and Automation Hub users run:
# ansible-lint's production profile (.ansible-lint), the plugin documentation as antsibull-docs renders it, and the
# changelog fragments.
lint: setup
	$(TIMED) ruff ruff check --no-cache --output-format concise plugins tests bench tools extensions
	$(TIMED) mypy mypy
	$(TIMED) ansible-lint ansible-lint --nocolor
	$(TIMED) antsibull-docs antsibull-docs lint-collection-docs --plugin-docs $(COLL)
	$(TIMED) antsibull-changelog antsibull-changelog lint

# pytest first (one of its fault tests stops libvirtd, which Molecule's scenarios use), then Molecule, sanity and lint
# side by side: they share no folder (sanity works on a copy under TMPDIR, Molecule in its ephemeral folders).
test: setup
	$(TIMED) pytest $(PYTEST) --durations=25 tests/unit tests/integration
	$(MAKE) --no-print-directory -j3 --output-sync=target molecule sanity lint

bench: setup
	python bench/bench_probe.py
	python bench/bench_observe.py
	python bench/bench_baseline.py
	python bench/bench_exact.py
	python bench/bench_planning.py
	python bench/bench_contract.py
	python bench/bench_html.py
	python bench/bench_site.py
	# The fleet part at 1,000 and 2,000 hosts, about 5 minutes on an idle machine; the full measure:
	# BENCH_FLEET_SIZES=1000,2000,10000 BENCH_FLEET_SITE_SIZES=1000,10000 make bench (see bench/bench_fleet.py).
	BENCH_FLEET_SIZES=$${BENCH_FLEET_SIZES:-1000,2000} BENCH_FLEET_FLOOR_SIZES=$${BENCH_FLEET_FLOOR_SIZES:-1000,2000} \
		BENCH_FLEET_SITE_SIZES=$${BENCH_FLEET_SITE_SIZES:-1000} python bench/bench_fleet.py

clean:
	rm -rf .build .collections .cache
