"""The search's console table: what a user follows, within 120 columns, on real Tune trials."""

from __future__ import annotations

import random
import re

from ray.tune.experiment import Trial

from tuning.optimization.objective import PLANNED_EPOCHS_KEY, SCREEN_EPOCHS_KEY, SCREEN_IMAGES_KEY, TRIAL_NUMBER_KEY
from tuning.optimization.space import DEFAULT_SPACE_FILE, load_space
from tuning.tracking.console import CompactProgressReporter


def _trials(count: int) -> list[Trial]:
    """Trials of the default space (15 searched settings), some finished, some running, one pending."""
    space = load_space(DEFAULT_SPACE_FILE)
    generator = random.Random(0)
    trials = []
    for number in range(count):
        config = {name: distribution.choices[generator.randrange(len(distribution.choices))]
                  if hasattr(distribution, "choices") else round(generator.uniform(distribution.low, distribution.high), 6)
                  for name, distribution in space.optuna_distributions().items()}
        config = {**config, **space.fixed, "filters_2": 64, TRIAL_NUMBER_KEY: number}  # filters_2: the same in every trial
        trial = Trial("train_cnn", config=config, stub=True)
        if number < count - 1:
            trial.set_status(Trial.TERMINATED if number % 3 else Trial.RUNNING)
            for epoch in range(1, 4):
                trial.update_last_result({"training_iteration": epoch, "val_accuracy": 0.8 + number / 1000 + epoch / 100,
                                          "time_total_s": 40.0 * epoch})
        trials.append(trial)
    return trials


def test_the_table_fits_120_columns_and_shows_what_varies() -> None:
    trials = _trials(20)
    lines = CompactProgressReporter("val_accuracy", "max", max_epochs=9, width=120).lines(trials)
    assert max(len(line) for line in lines) <= 120
    assert lines[0].startswith("== ") and "20 trials" in lines[0] and "best val_accuracy 0.8480 (trial 18)" in lines[0]
    rows = lines[2:-1]
    assert len(rows) == 12 and lines[-1] == "   ... 8 more trials"
    assert rows[0].split()[1] == "running" and "3/9" in rows[0]
    assert "filters_2=" not in "\n".join(lines) and "filters_1=" in rows[0]
    assert [row.split()[0] for row in rows[:7]] == ["0", "3", "6", "9", "12", "15", "18"], "running first, by study number"
    assert TRIAL_NUMBER_KEY not in "\n".join(lines), "the number is the trial's name, not a setting"


def test_the_header_tells_the_time_left_of_a_budget_or_at_most_the_epochs_left() -> None:
    budget = CompactProgressReporter("val_accuracy", "max", max_epochs=9, width=120, time_budget_s=600).lines(_trials(20))
    assert re.match(r"== 0m0\ds, (10m00s|9m5\ds) left \| 20 trials", budget[0]), budget[0]
    estimate = CompactProgressReporter("val_accuracy", "max", max_epochs=9, width=120, num_samples=30).lines(_trials(20))
    # 7 running trials with 6 epochs left, 1 pending and 10 unstarted with 9: 141 epochs of 40 s, 7 at once
    assert re.match(r"== 0m0\ds, at most 13m25s left \| ", estimate[0]), estimate[0]


def test_a_trial_shows_its_epochs_against_its_plan() -> None:
    """A trial whose plan the time budget shortened (`planned_epochs`) shows its epochs out of that plan."""
    trial = _trials(2)[0]
    trial.update_last_result({"training_iteration": 4, PLANNED_EPOCHS_KEY: 7, "val_accuracy": 0.85, "time_total_s": 160.0})
    row = CompactProgressReporter("val_accuracy", "max", max_epochs=27, width=120).lines([trial])[2]
    assert row.split()[2] == "4/7"


def test_a_single_trial_lists_no_settings() -> None:
    lines = CompactProgressReporter("val_loss", "min", max_epochs=2, width=120).lines(_trials(1))
    assert lines[2].split() == ["0", "pending", "-", "-", "-", "-"]


def test_a_screening_trial_shows_as_screen_and_its_fidelity_is_no_setting() -> None:
    screening, full = _trials(3)[:2]
    screening.config.update({SCREEN_IMAGES_KEY: 16_200, SCREEN_EPOCHS_KEY: 2})
    lines = CompactProgressReporter("val_accuracy", "max", max_epochs=27, width=120).lines([screening, full])
    rows = {row.split()[0]: row for row in lines[2:]}
    assert set(rows) == {"screen-0", "1"}, lines
    assert SCREEN_IMAGES_KEY not in "\n".join(lines) and SCREEN_EPOCHS_KEY not in "\n".join(lines)
