# SwiftRain: `make demo` and `make test` on a fresh Debian machine (they install what they need).
SWIFT    ?= swift
CONFIG   ?= release
BIN      := .build/$(CONFIG)
DEMO_DIR ?= demo
# The demo's precision: 32, or bf16-mixed on a CPU with AVX512_BF16 (`make demo PRECISION=bf16-mixed`).
PRECISION ?= 32
APT_PKGS := libzmq3-dev libopenblas-dev libdnnl-dev libcairo2-dev fonts-dejavu-core libnetcdf-dev netcdf-bin libblosc-dev libzstd-dev zlib1g-dev pkg-config time python3
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: deps build lint test test-kernels test-slurm test-sge test-hosts test-slurm-partition test-disk test-job-scripts \
	test-middlebox demo clean

## Install the system libraries (through sudo when not root) if any is missing.
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "error: swift not found; install Swift 6 (swift.org) and retry" >&2; exit 1; }

build: deps
	$(SWIFT) build -c $(CONFIG)

## Style and architecture: swift-format (.swift-format), no line past 120 bytes (a − or … counts 3), every target imports only the
## targets it declares, and each forbidden edge of the target graph fails to compile (tools/check-layering.sh).
lint: deps
	$(SWIFT) format lint --strict --recursive --parallel Sources Tests Package.swift
	@if LC_ALL=C grep -rnE --include='*.swift' '^.{121,}' Sources Tests Package.swift; then \
	  echo "error: the lines above are longer than 120 columns; wrap them" >&2; exit 1; fi
	$(SWIFT) build --build-tests --explicit-target-dependency-import-check=error
	SWIFT=$(SWIFT) tools/check-layering.sh

## Unit and integration tests (release build: synthetic data over real date ranges is generated in the tests).
## `swiftrain launch` is tested under Debian's real MPI launchers, so the tests install them.
test: APT_PKGS += openmpi-bin mpich
test: deps
	$(SWIFT) build -c $(CONFIG)
	SWIFTRAIN_BIN=$(CURDIR)/$(BIN) $(SWIFT) test -c $(CONFIG) --disable-swift-testing --skip MultiHostTests --skip StrangerTests --skip MPIHostsTests --skip DiskFullTests \
	  --skip MiddleboxTests

## Four workers on two "hosts" (network namespaces, ../shared/tools/netns-hosts.sh), bytes counted at the
## coordinator, the workers and the hosts' interfaces against the model (root or sudo; under a minute).
test-hosts: APT_PKGS += openmpi-bin
test-hosts: deps
	$(SWIFT) build -c $(CONFIG)
	$(SUDO) env SWIFTRAIN_BIN=$(CURDIR)/$(BIN) $(SWIFT) test -c $(CONFIG) --disable-swift-testing --filter "MultiHostTests|StrangerTests|MPIHostsTests"

## The run directory on a 4 MiB tmpfs that fills up mid-run: checkpoints fail and are retried, nothing is lost
## (root or sudo: mount; under a minute).
test-disk: deps
	$(SWIFT) build -c $(CONFIG)
	$(SUDO) env SWIFTRAIN_BIN=$(CURDIR)/$(BIN) $(SWIFT) test -c $(CONFIG) --disable-swift-testing --filter DiskFullTests

## The fault matrix's lossy-middlebox rows: a TCP proxy (tools/lossy_proxy.py) drops what it carries one way, or
## blackholes it for 3 s, then resets every connection, at each moment of a step; no deadline waited out (~1.5 min; in CI).
test-middlebox: deps
	$(SWIFT) build -c $(CONFIG)
	SWIFTRAIN_BIN=$(CURDIR)/$(BIN) $(SWIFT) test -c $(CONFIG) --disable-swift-testing --filter MiddleboxTests

## The bit-for-bit tests (thread count, CURVE, garbage, resume) again under OpenBLAS's generic SSE3 and AVX2
## kernels, whose threaded sums differ by thread count where this CPU's own kernel may not.
BITWISE_TESTS := GEMMTests|TrainingTests|CurveTests
test-kernels: deps
	$(SWIFT) build -c $(CONFIG)
	for k in Prescott Haswell; do \
	  echo "== OPENBLAS_CORETYPE=$$k"; \
	  OPENBLAS_CORETYPE=$$k SWIFTRAIN_BIN=$(CURDIR)/$(BIN) $(SWIFT) test -c $(CONFIG) --disable-swift-testing \
	    --filter '$(BITWISE_TESTS)' || exit 1; \
	done

## cluster/train.sbatch on a real single-node SLURM (started and stopped by the test; needs root or sudo).
test-slurm: build
	$(SUDO) cluster/test-slurm.sh

## cluster/train.sge on a real single-node Grid Engine (Debian's gridengine, tools/sge-up.sh) under Open MPI: a run,
## a SIGUSR1-requeued run and a qdel'ed + re-submitted run end alike (root or sudo; ~1 min; in CI).
test-sge: build
	$(SUDO) cluster/test-sge.sh

## cluster/train.pbs (Open MPI) and cluster/train.lsf (MPICH) in their schedulers' job environments, neither scheduler
## being in Debian: the walltime timer, SIGUSR1 → exit 99, resumed to an uninterrupted run's result (~40 s; in CI).
test-job-scripts: APT_PKGS += openmpi-bin mpich
test-job-scripts: build
	cluster/test-job-scripts.sh

## A node of a two-node SLURM (network namespaces, ../shared/tools/slurm-netns-cluster.sh) partitioned for
## 45 s mid-job: by default requeued and resumed, with --no-kill finished by the survivor (root or sudo; ~8 min; in CI).
test-slurm-partition: build
	$(SUDO) cluster/test-slurm-partition.sh

## End to end on synthetic data: synthesise two years, normalise, inspect, train the small model with
## 2 local workers (configs/demo.yaml), score it on the test months against the baselines, draw the
## figures, export the weights for PyTorch and write January 2018's forecasts as NetCDF. Under 15 minutes on 2 cores, build included.
## PRECISION=bf16-mixed trains (and scores, and forecasts) in bf16-mixed instead.
demo: build
	rm -rf $(DEMO_DIR) && mkdir -p $(DEMO_DIR)
	$(BIN)/swiftrain synth --out $(DEMO_DIR)/data --from 2016-04-01 --to 2018-03-31
	$(BIN)/swiftrain normalize --config configs/demo.yaml
	$(BIN)/swiftrain inspect --config configs/demo.yaml
	$(BIN)/swiftrain train --config configs/demo.yaml --workers 2 --run $(DEMO_DIR)/run --progress-every 30 \
	  --precision $(PRECISION)
	$(BIN)/swiftrain eval --run $(DEMO_DIR)/run --phase test
	$(BIN)/swiftrain plot --run $(DEMO_DIR)/run --date 2018-01-06T12:00
	$(BIN)/swiftrain export --run $(DEMO_DIR)/run --format pytorch
	$(BIN)/swiftrain predict --run $(DEMO_DIR)/run --from 2018-01-01 --to 2018-01-31 --truth --out $(DEMO_DIR)/run/predict/2018-01.nc
	@echo "table: $(DEMO_DIR)/run/eval/test.md; figures: $(DEMO_DIR)/run/figures/; forecasts: $(DEMO_DIR)/run/predict/2018-01.nc"
	@echo "checks: python3 tools/check_export.py $(DEMO_DIR)/run/export; python3 tools/check_netcdf.py $(DEMO_DIR)/run/predict/2018-01.nc"

clean:
	rm -rf .build $(DEMO_DIR)
