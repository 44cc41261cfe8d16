# fmnist-tune: the search on this machine, its tests, and the docker-compose platform.
SHELL := /bin/bash
PYTHON ?= python3
COMPOSE ?= docker-compose
WORKERS ?= 2
SEARCH_ARGS ?= --num-samples 10 --max-epochs 3 --max-concurrent-trials 3
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)

.PHONY: help install run test test-fast wheelhouse build build-gpu start stop search logs search-stop report serve platform-test clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## /\1\t/' | expand -t 16

install:  ## install the project and its test tools into the current Python
	$(PYTHON) -m pip install -q -e ".[test]"

run: install  ## the main job on embedded defaults: local Ray, MLflow in ./mlflow.db, results in ./results
	$(PYTHON) -m tuning.search

test: install  ## every test but the platform's (needs PostgreSQL on 127.0.0.1:5432; started if missing)
	bash tests/ensure_postgres.sh
	$(PYTHON) -m pytest

test-fast: install  ## the tests that need no service, start no Ray and train nothing (about a minute)
	$(PYTHON) -m pytest -m "not slow and not docker"

.env:
	bash platform/make-env.sh > .env

wheelhouse:  ## optional: Python wheels for image builds without PyPI in the containers
	bash platform/python/build-wheelhouse.sh wheelhouse

build: .env  ## build every image, tagged latest and the project's version (BASE_IMAGE / POSTGRES_BASE_IMAGE in .env pick the bases)
	mkdir -p wheelhouse
	set -a && . ./.env && set +a && docker build -t fmnist-tune/python:latest -t fmnist-tune/python:$(VERSION) \
	  --build-arg BASE_IMAGE=$${BASE_IMAGE:-python:3.11-slim} -f platform/python/Dockerfile .
	$(COMPOSE) build postgres
	docker tag fmnist-tune/postgres:latest fmnist-tune/postgres:$(VERSION)

build-gpu: .env  ## the runtime image for GPU nodes, fmnist-tune/python-gpu (TensorFlow with CUDA)
	mkdir -p wheelhouse
	set -a && . ./.env && set +a && docker build -t fmnist-tune/python-gpu:latest -t fmnist-tune/python-gpu:$(VERSION) \
	  --build-arg TENSORFLOW=gpu \
	  --build-arg BASE_IMAGE=$${BASE_IMAGE:-python:3.11-slim} -f platform/python/Dockerfile .

start: .env  ## start the platform with $(WORKERS) Ray workers
	$(COMPOSE) up -d --scale ray-worker=$(WORKERS)
	@bash platform/print-urls.sh

stop:  ## stop the platform (volumes, hence runs, models and logs, are kept)
	$(COMPOSE) --profile serve down

search:  ## submit a search to the cluster as a Ray job (it goes on when the terminal closes)
	$(COMPOSE) exec -T ray-head python -m tuning.jobs submit -- --storage-path /results $(SEARCH_ARGS)

logs:  ## follow the latest search's log until it ends (NAME=<search> for another; kept across restarts)
	$(COMPOSE) exec -T ray-head python -m tuning.jobs logs --follow --storage-path /results $(NAME)

search-stop:  ## stop the latest search, or NAME=<search> (continue it later with SEARCH_ARGS="--resume --name <its name>")
	$(COMPOSE) exec -T ray-head python -m tuning.jobs stop $(NAME)

report:  ## compare the latest search's trials, save Optuna plots
	$(COMPOSE) exec -T ray-head python -m tuning.report --output-dir /results/reports

serve:  ## serve models:/fmnist-cnn@champion on 127.0.0.1:5001
	$(COMPOSE) --profile serve up -d model-server

platform-test:  ## build, start, search, check every service, tear down
	bash platform/test-platform.sh

clean:  ## stop the platform and delete its volumes: every run, model and log
	$(COMPOSE) --profile serve down -v
