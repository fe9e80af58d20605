# One entry point for people and CI. Every target sets up .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-test
DEMO_STAMP := $(VENV)/.installed-demo
OUT    := out

.PHONY: install test demo bench fuzz schema clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -e '.[test]'
	touch $(STAMP)

# The demo needs only the core and scikit-learn's digits ([demo]), not the test extra's
# torch and keras; a venv that already has the test extra has everything the demo needs.
$(DEMO_STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	@if [ -f $(STAMP) ] && [ $(STAMP) -nt pyproject.toml ]; then :; else \
		$(BIN)/pip install --quiet --disable-pip-version-check -e '.[demo]'; fi
	touch $(DEMO_STAMP)

install: $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest tests

demo: $(DEMO_STAMP)
	@mkdir -p $(OUT)
	$(BIN)/python examples/make_digits.py $(OUT)
	$(BIN)/graphspec validate specs/
	$(BIN)/graphspec build specs/mlp.yaml --set input_dim=64 --seed 0
	$(BIN)/graphspec train specs/mlp.yaml --set input_dim=64 --data $(OUT)/digits_train.npz \
		--seed 0 -o $(OUT)/mlp_digits.npz --history $(OUT)/mlp_history.json
	$(BIN)/graphspec evaluate specs/mlp.yaml --set input_dim=64 --weights $(OUT)/mlp_digits.npz \
		--data $(OUT)/digits_test.npz
	$(BIN)/graphspec predict specs/mlp.yaml --set input_dim=64 --weights $(OUT)/mlp_digits.npz \
		--input pixels=$(OUT)/digits_first5.npy
	$(BIN)/graphspec inspect-nodes specs/mlp.yaml --set input_dim=64 \
		--weights $(OUT)/mlp_digits.npz --input pixels=$(OUT)/digits_first5.npy

bench: $(STAMP)
	$(BIN)/python -m bench

fuzz: $(STAMP)
	GRAPHSPEC_FUZZ_EXAMPLES=5000 $(BIN)/python -m pytest tests/security -k fuzz

schema: $(STAMP)
	$(BIN)/graphspec schema -o graphspec.schema.json

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache
