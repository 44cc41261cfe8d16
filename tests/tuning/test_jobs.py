"""Which Ray job a search's name means: its newest, so that logs and stop reach a resumed search's own job."""

from __future__ import annotations

from ray.job_submission import JobDetails, JobStatus, JobType

from tuning.jobs import newest_job, search_name


def _job(submission_id: str, entrypoint: str, start_time: int) -> JobDetails:
    return JobDetails(type=JobType.SUBMISSION, submission_id=submission_id, entrypoint=entrypoint, start_time=start_time,
                      status=JobStatus.SUCCEEDED)


SEARCHES = [
    _job("nightly", "python -m tuning.search --time-budget-s 60 --name nightly", 1_000),
    _job("nightly-20261205-101500", "python -m tuning.search --resume --name nightly", 3_000),
    _job("other", "python -m tuning.search --name other", 2_000),
]


def test_a_search_name_means_its_newest_job_a_resumed_one_included() -> None:
    assert newest_job(SEARCHES, "nightly") == "nightly-20261205-101500"
    assert newest_job(SEARCHES, "other") == "other"


def test_a_job_id_that_names_no_search_stays_as_given() -> None:
    assert newest_job(SEARCHES, "nightly-20261205-101500") == "nightly-20261205-101500"
    assert newest_job(SEARCHES, "unknown") == "unknown"


def test_the_search_name_comes_from_the_entrypoint() -> None:
    assert search_name("python -m tuning.search --name 'with space' --resume") == "with space"
    assert search_name("python -m tuning.search --name") is None
    assert search_name("python -m tuning.search") is None
