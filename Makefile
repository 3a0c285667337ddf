# One-word commands; each goes through scripts/dev.py, which makes .venv on first use.
PYTHON ?= python3
PG_TEST_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

.PHONY: run test test-pg test-pgbouncer lint format bench migrate clean fuzz

run:        ## serve the API + worker on SQLite (./refundwatch.db), migrating first
	$(PYTHON) scripts/dev.py run

test:       ## the whole suite (PostgreSQL tests skip unless REFUNDWATCH_TEST_POSTGRES_URL is set)
	$(PYTHON) scripts/dev.py test

test-pg:    ## the whole suite, PostgreSQL included
	REFUNDWATCH_TEST_POSTGRES_URL=$(PG_TEST_URL) $(PYTHON) scripts/dev.py test

test-pgbouncer: ## the PostgreSQL tests through a throwaway PgBouncer (transaction pooling)
	REFUNDWATCH_TEST_POSTGRES_URL=$(PG_TEST_URL) .venv/bin/python scripts/pgbouncer_suite.py

lint:       ## ruff check, ruff format --check, mypy --strict
	$(PYTHON) scripts/dev.py lint

format:
	.venv/bin/ruff format app tests migrations scripts
	.venv/bin/ruff check --fix app tests migrations scripts

bench:      ## benchmark on PostgreSQL; figures go to docs/performance.md
	$(PYTHON) scripts/dev.py bench

migrate:
	.venv/bin/refundwatch migrate

fuzz:       ## schemathesis on /openapi.json, SQLite and PostgreSQL: no 5xx, no undocumented status
	.venv/bin/python scripts/fuzz.py --pg-url $(PG_TEST_URL) $(FUZZ_ARGS)

clean:
	rm -rf .venv .pytest_cache .mypy_cache .ruff_cache .hypothesis refundwatch.db*
