"""Search-space YAML -> the Optuna distributions the search asks for, validated before anything starts.

The file holds one mapping, `search_space`, of model settings (fields of `fmnist.model.ModelConfig`)
to either a fixed value or a distribution:

    search_space:
      learning_rate: {type: loguniform, low: 1.0e-4, high: 3.0e-3}
      filters_1: {type: choice, choices: [32, 48, 64]}
      dropout_1: {type: uniform, low: 0.1, high: 0.5}
      dense_units: {type: randint, low: 64, high: 512, step: 64}    # inclusive bounds
      mixed_precision: false

An optional list, `points_to_evaluate` (Ray Tune's name for it), holds the configurations tried first,
in order, before TPE proposes (Optuna's `enqueue_trial`). Each point lists the searched settings that
differ from the original layout; `{}` is the original itself, and the default when the list is absent; an empty
list makes a cold search, TPE's proposals from its first trial:

    points_to_evaluate:
      - {}
      - {lr_schedule: cosine}

The original layout (`ModelConfig()`) must lie inside the space: every point starts from it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution

from fmnist.config import AUTO, SETTINGS_WITH_AUTO, ModelConfig

DEFAULT_SPACE_FILE = Path(__file__).parents[1] / "search_space.yaml"
"""The search space a search uses without --config."""
PACKAGED_SPACES = {"default": DEFAULT_SPACE_FILE, "original": Path(__file__).parents[1] / "search_space_original.yaml"}
"""The spaces shipped with the package, by the name `--config` takes for each."""

DISTRIBUTIONS = {
    "uniform": ("low", "high"),
    "loguniform": ("low", "high"),
    "randint": ("low", "high"),
    "choice": ("choices",),
}
OPTIONAL_KEYS = {"randint": ("step",)}
SPACE_KEY, POINTS_KEY = "search_space", "points_to_evaluate"
MODEL_SETTINGS = {field.name: field for field in dataclasses.fields(ModelConfig)}


class SearchSpaceError(ValueError):
    """The search-space file cannot be used; the message names the file and the setting."""


@dataclass(frozen=True)
class SearchSpace:
    """The parsed file: distributions to search and values held fixed."""

    source: Path
    distributions: dict[str, dict[str, Any]]
    fixed: dict[str, Any]
    points_to_evaluate: tuple[dict[str, Any], ...] = ({},)
    """Changes to the original layout, tried first and in order."""

    def optuna_distributions(self) -> dict[str, BaseDistribution]:
        """The searched settings as the distributions the search's Optuna study asks for."""
        return {name: _optuna_distribution(spec) for name, spec in self.distributions.items()}

    def baseline(self) -> dict[str, Any]:
        """The original project's config restricted to the searched settings."""
        defaults = ModelConfig()
        return {name: getattr(defaults, name) for name in self.distributions}

    def first_trials(self) -> list[dict[str, Any]]:
        """The searched settings of each point to evaluate: the first trials of a new study, in order."""
        return [{**self.baseline(), **point} for point in self.points_to_evaluate]


def space_file(name_or_path: str) -> str:
    """The file of a packaged space named `name_or_path`, unless a file of that name exists; else the path as given."""
    if name_or_path in PACKAGED_SPACES and not Path(name_or_path).exists():
        return str(PACKAGED_SPACES[name_or_path])
    return name_or_path


def load_space(path: str | Path = DEFAULT_SPACE_FILE) -> SearchSpace:
    """Read and validate a search-space YAML file."""
    source = Path(path)
    try:
        document = yaml.safe_load(source.read_text())
    except FileNotFoundError:
        raise SearchSpaceError(f"{source}: file not found") from None
    except IsADirectoryError:
        raise SearchSpaceError(f"--config {source}: is a folder, not a search-space file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise SearchSpaceError(f"{source}: cannot be read ({getattr(error, 'strerror', None) or error})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark else ""
        raise SearchSpaceError(f"{source}: {where}not valid YAML ({getattr(error, 'problem', error)})") from None
    if not isinstance(document, dict) or SPACE_KEY not in document or set(document) - {SPACE_KEY, POINTS_KEY}:
        raise SearchSpaceError(f"{source}: expected the top-level key '{SPACE_KEY}' and optionally '{POINTS_KEY}'")
    entries = document[SPACE_KEY]
    if not isinstance(entries, dict) or not entries:
        raise SearchSpaceError(f"{source}: search_space must be a non-empty mapping of setting -> distribution")
    distributions, fixed = {}, {}
    for name, spec in entries.items():
        where = f"{source}: search_space.{name}"
        if name not in MODEL_SETTINGS:
            raise SearchSpaceError(f"{where}: unknown setting; known: {', '.join(MODEL_SETTINGS)}")
        if isinstance(spec, dict):
            distributions[name] = _validated_distribution(where, name, spec)
        else:
            _check_model_value(where, name, spec)
            fixed[name] = spec
    if not distributions:
        raise SearchSpaceError(f"{source}: search_space holds only fixed values; nothing to search")
    points = _validated_points(source, document.get(POINTS_KEY, list(SearchSpace.points_to_evaluate)), distributions)
    return SearchSpace(source, distributions, fixed, points)


def write_with_points(destination: Path, points: list[dict[str, Any]], source: str | Path = DEFAULT_SPACE_FILE) -> Path:
    """A copy of the space file `source` at `destination`, with `points` as its points to evaluate.

    `[{}]` makes a search's first trial the original CNN: benchmarks use it to time a known model.
    """
    document = yaml.safe_load(Path(source).read_text())
    destination.write_text(yaml.safe_dump({**document, POINTS_KEY: points}, sort_keys=False))
    return destination


def _validated_points(source: Path, points: Any, distributions: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], ...]:
    if not isinstance(points, list):
        raise SearchSpaceError(f"{source}: {POINTS_KEY} must be a list of mappings (setting: value)")
    for index, point in enumerate(points):
        where = f"{source}: {POINTS_KEY}[{index}]"
        if not isinstance(point, dict):
            raise SearchSpaceError(f"{where}: must be a mapping of searched settings to values, got {point!r}")
        for name, value in point.items():
            if name not in distributions:
                raise SearchSpaceError(f"{where}.{name}: not a searched setting; searched: {', '.join(distributions)}")
            if not contains(_optuna_distribution(distributions[name]), value):
                raise SearchSpaceError(f"{where}.{name}: {value!r} lies outside search_space.{name}")
    return tuple(dict(point) for point in points)


def contains(distribution: BaseDistribution, value: Any) -> bool:
    """Whether `value` is one `distribution` can propose (the same type for a choice, on the step for an int)."""
    if isinstance(distribution, CategoricalDistribution):
        return any(value == choice and type(value) is type(choice) for choice in distribution.choices)
    if isinstance(distribution, IntDistribution):
        return (isinstance(value, int) and not isinstance(value, bool) and distribution.low <= value <= distribution.high
                and (value - distribution.low) % distribution.step == 0)
    if isinstance(distribution, FloatDistribution):
        return (isinstance(value, (int, float)) and not isinstance(value, bool)
                and distribution.low <= value <= distribution.high)
    return False


def _validated_distribution(where: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
    kind = spec.get("type")
    if kind not in DISTRIBUTIONS:
        raise SearchSpaceError(f"{where}: type must be one of {', '.join(DISTRIBUTIONS)}, got {kind!r}")
    required = DISTRIBUTIONS[kind]
    allowed = {"type", *required, *OPTIONAL_KEYS.get(kind, ())}
    missing = [key for key in required if key not in spec]
    if missing:
        raise SearchSpaceError(f"{where}: {kind} needs '{missing[0]}'")
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise SearchSpaceError(f"{where}: unknown key '{unknown[0]}' for {kind}")
    if kind == "choice":
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SearchSpaceError(f"{where}: choices must be a non-empty list")
        for choice in choices:
            _check_model_value(where, name, choice)
        candidates = choices
    else:
        low, high = spec["low"], spec["high"]
        numeric = (int,) if kind == "randint" else (int, float)
        if not all(isinstance(value, numeric) and not isinstance(value, bool) for value in (low, high)):
            expected = "integers" if kind == "randint" else "numbers"
            raise SearchSpaceError(f"{where}: low and high must be {expected}, got {low!r} and {high!r}")
        if not low < high:
            raise SearchSpaceError(f"{where}: low ({low}) must be below high ({high})")
        if kind == "loguniform" and low <= 0:
            raise SearchSpaceError(f"{where}: loguniform needs low > 0, got {low}")
        step = spec.get("step", 1)
        if kind == "randint" and (not isinstance(step, int) or step < 1 or (high - low) % step):
            raise SearchSpaceError(f"{where}: step must be a positive integer dividing high - low, got {step!r}")
        candidates = [low, high]
        for bound in candidates:
            _check_model_value(where, name, bound)
    _check_contains_baseline(where, name, kind, spec, candidates)
    return dict(spec)


def _check_model_value(where: str, name: str, value: Any) -> None:
    """A value is valid when the model accepts it; ModelConfig.validate says why not."""
    if name in SETTINGS_WITH_AUTO and value == AUTO:
        return
    expected_type = type(getattr(ModelConfig(), name))
    if expected_type is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, expected_type) or (expected_type is int and isinstance(value, bool)):
        raise SearchSpaceError(f"{where}: {value!r} is not a {expected_type.__name__}")
    try:
        dataclasses.replace(ModelConfig(), **{name: value}).validate()
    except ValueError as error:
        raise SearchSpaceError(f"{where}: {error}") from None


def _check_contains_baseline(where: str, name: str, kind: str, spec: dict[str, Any], candidates: list) -> None:
    original = getattr(ModelConfig(), name)
    if kind == "choice":
        inside = original in candidates
    else:
        inside = spec["low"] <= original <= spec["high"]
        if kind == "randint":
            inside = inside and (original - spec["low"]) % spec.get("step", 1) == 0
    if not inside:
        raise SearchSpaceError(
            f"{where}: must include the original value {original!r}, the layout every point to evaluate starts from"
        )


def _optuna_distribution(spec: dict[str, Any]) -> BaseDistribution:
    kind = spec["type"]
    if kind == "choice":
        return CategoricalDistribution(spec["choices"])
    if kind == "randint":
        return IntDistribution(spec["low"], spec["high"], step=spec.get("step", 1))
    return FloatDistribution(spec["low"], spec["high"], log=kind == "loguniform")

