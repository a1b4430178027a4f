# Quick start:
#   make demo   set up, build a fonts dataset on the embedded default (SQLite) and serve it
#   make test   set up and run the test suite (PostgreSQL and Redis on 127.0.0.1)

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/csn
TEST_BROKER_URL ?= redis://127.0.0.1:6379/15

.PHONY: install demo test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'

demo: install
	$(BIN)/python manage.py demo

test: install
	DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} \
	CSN_TEST_BROKER_URL=$${CSN_TEST_BROKER_URL:-$(TEST_BROKER_URL)} \
	$(BIN)/pytest
