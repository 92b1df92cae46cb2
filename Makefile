# The two quick-start commands. Both set everything up first (idempotent) and then run.
.PHONY: demo test lint bench

demo:
	@scripts/setup.sh
	@.venv/bin/embedlens demo

# PYTHONDONTWRITEBYTECODE is emptied for the run: with it set, every xdist worker rewrites the assertions of
# every test module again (about 4 CPU-seconds a worker); the rewritten modules are cached in __pycache__.
test:
	@scripts/setup.sh --dev
	@PYTHONDONTWRITEBYTECODE= .venv/bin/python -m pytest -q -ra -n auto --maxprocesses 4 --dist loadgroup --durations 15

lint:
	@.venv/bin/ruff check src tests benchmarks

bench:
	@for b in benchmarks/bench_*.py; do echo "== $$b"; .venv/bin/python $$b; done
