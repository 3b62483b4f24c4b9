# Two commands set everything up: `make demo` and `make test`. Both create .venv when needed.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# torch first and pinned: a package that depends on torch would otherwise pull a multi-GB CUDA build.
TORCH  := torch==2.13.0
export GRUASR_DATA ?= $(abspath ../shared/data)
# The torch-free runtime (gruasr.runtime): its own venv, gruasr without its dependencies plus the [runtime] extra,
# running tests/runtime on models the main venv exports into build/onnx.
RUNTIME := .venv-runtime
RPY     := $(RUNTIME)/bin/python
RSTAMP  := $(RUNTIME)/.installed
ONNX    := build/onnx

.PHONY: setup demo test test-runtime runtime bench lint clean model model-streaming compare chromium

setup: $(STAMP) chromium

# The browser tests' Chromium and its driver (tests/browser): Debian's packages, installed when missing (sudo only
# when not root). Selenium is pointed at these two files; nothing downloads a browser or a driver of its own.
chromium:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
	  echo "installing Debian's chromium and chromium-driver for the browser tests"; \
	  SUDO=$$([ "$$(id -u)" -eq 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; \
	fi

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev,lm]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gruasr demo

test: $(STAMP) chromium
	$(PY) -m pytest -q
	$(MAKE) test-runtime

runtime: $(RSTAMP)

$(RSTAMP): pyproject.toml
	test -x $(RPY) || $(PYTHON) -m venv $(RUNTIME)
	$(RPY) -m pip install -q --no-deps -e .
	$(RPY) -c "import tomllib; print('\\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['runtime']))" > $(RUNTIME)/requirements.txt
	$(RPY) -m pip install -q -r $(RUNTIME)/requirements.txt
	$(RPY) -m pip install -q pytest==9.2.0 pytest-timeout==2.4.0
	touch $(RSTAMP)

# tests/runtime in the venv without torch (--confcutdir: the other tests' conftest imports torch)
test-runtime: $(STAMP) $(RSTAMP)
	$(VENV)/bin/gruasr model export --onnx telephone --out $(ONNX)/telephone
	$(VENV)/bin/gruasr model export --onnx telephone-streaming --out $(ONNX)/telephone-streaming
	$(VENV)/bin/gruasr model export --onnx telephone-streaming --out $(ONNX)/telephone-streaming-int8 --int8
	$(VENV)/bin/gruasr transcribe --json src/gruasr/samples/call.wav > $(ONNX)/call-torch.jsonl
	GRUASR_ONNX_DIR=$(abspath $(ONNX)) $(RPY) -m pytest -q --confcutdir=tests/runtime -p no:cacheprovider tests/runtime

bench: $(STAMP)
	$(PY) benchmarks/recurrent_speed.py
	$(PY) benchmarks/features_speed.py --threads 1
	$(PY) benchmarks/loader_speed.py
	$(PY) benchmarks/train_speed.py
	$(PY) benchmarks/accuracy.py

# The default model's recipe, end to end (about 2.6 hours on one thread): manifests, a bidirectional Li-GRU trained
# 40 epochs on the speech, then 12 epochs from it with the non-speech clips, bundling (the LM and lexicon as the
# recipe's [lm] table says: transcripts, spelled words from the lm extra's word lists, the number grammar;
# decoding tuned on dev), then the weight of the bundled streaming model's vote tuned on dev (gruasr model
# rescore; run it again after `make model-streaming` changes that model). Both trainings resume where a killed
# run stopped.
model: $(STAMP)
	$(VENV)/bin/gruasr data an4 --src $(GRUASR_DATA)/an4 --out data/an4
	$(VENV)/bin/gruasr data fsdd --src $(GRUASR_DATA)/fsdd --out data/fsdd --numbers-train 800
	$(VENV)/bin/gruasr data nonspeech --out data/nonspeech --crosstalk data/an4/train.jsonl
	$(VENV)/bin/gruasr train --config configs/telephone-ligru-base.toml --out runs/telephone-ligru-base --resume
	$(VENV)/bin/gruasr train --config configs/telephone-ligru-silence.toml --out runs/telephone-ligru-silence --resume \
		--set train.init=runs/telephone-ligru-base/model
	$(VENV)/bin/gruasr model bundle runs/telephone-ligru-silence --out src/gruasr/pretrained/telephone \
		--config configs/telephone-ligru-silence.toml
	$(VENV)/bin/gruasr model rescore src/gruasr/pretrained/telephone --with src/gruasr/pretrained/telephone-streaming \
		--out src/gruasr/pretrained/telephone

# The bundled streaming model (unidirectional GRU): same data, 80 epochs (about an hour on 2 CPU cores).
model-streaming: $(STAMP)
	$(VENV)/bin/gruasr data an4 --src $(GRUASR_DATA)/an4 --out data/an4
	$(VENV)/bin/gruasr data fsdd --src $(GRUASR_DATA)/fsdd --out data/fsdd --numbers-train 800
	$(VENV)/bin/gruasr data nonspeech --out data/nonspeech --crosstalk data/an4/train.jsonl
	$(VENV)/bin/gruasr train --config configs/telephone-streaming.toml --out runs/telephone-streaming
	$(VENV)/bin/gruasr model bundle runs/telephone-streaming --out src/gruasr/pretrained/telephone-streaming

# The comparison study of the recurrent units (about 2 hours on 2 CPU cores): two one-thread processes share
# the runs; the last call trains whatever a failed shard left, measures, and writes runs/compare/report.md.
compare: $(STAMP)
	$(VENV)/bin/gruasr compare --out runs/compare --threads 1 --shard 0/2 & \
	$(VENV)/bin/gruasr compare --out runs/compare --threads 1 --shard 1/2; wait
	$(VENV)/bin/gruasr compare --out runs/compare

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy src

clean:
	rm -rf $(VENV) $(RUNTIME) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
