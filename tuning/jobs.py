"""`python -m tuning.jobs`: run searches on a Ray cluster as Ray jobs, follow them, stop them.

A search submitted as a job runs its driver on the cluster's head, so closing the terminal (or the
notebook) that started it does not stop it. The job API's address follows Ray's convention:
`RAY_API_SERVER_ADDRESS`, else `RAY_ADDRESS` (e.g. http://127.0.0.1:8265); token auth uses
`RAY_AUTH_TOKEN`, as for every Ray client.

Example:
    python -m tuning.jobs submit -- --time-budget-s 3600 --storage-path /results
    python -m tuning.jobs logs --follow        # the latest search
    python -m tuning.jobs stop
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path

from mlflow.exceptions import MlflowException
from ray.exceptions import AuthenticationError
from ray.job_submission import JobDetails, JobStatus, JobSubmissionClient

from fmnist.command_line import OneLineErrorParser
from tuning.runtime import search_log
from tuning.runtime.error_text import first_line
from tuning.runtime.stores import resolve_tracking_uri
from tuning.settings import DEFAULT_EXPERIMENT, SearchSettings
from tuning.tracking import parent_run

SEARCH_ENTRYPOINT = "python -m tuning.search"
FINISHED = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED)


class JobError(RuntimeError):
    """The job API cannot be reached, or holds no such search; the message says which."""


def client() -> JobSubmissionClient:
    """The cluster's job API, at `RAY_API_SERVER_ADDRESS` or `RAY_ADDRESS`."""
    try:
        return JobSubmissionClient()
    except (ConnectionError, ValueError, RuntimeError, AuthenticationError) as error:
        raise JobError(f"$RAY_API_SERVER_ADDRESS / $RAY_ADDRESS: cannot reach Ray's job API ({first_line(error)})") from None


def submit(jobs: JobSubmissionClient, search_args: list[str]) -> str:
    """Start `python -m tuning.search` with `search_args` as a job; its id is the search's name (plus a time
    for a resume, which reuses a name). Returns the job id."""
    now = datetime.now().strftime("%Y%m%d-%H%M%S")
    if "--name" in search_args:
        name = search_args[search_args.index("--name") + 1]
        job_id = f"{name}-{now}"
    else:
        name = job_id = f"fmnist-search-{now}"
        search_args = [*search_args, "--name", name]
    return jobs.submit_job(entrypoint=f"{SEARCH_ENTRYPOINT} {shlex.join(search_args)}", submission_id=job_id)


def search_jobs(jobs: JobSubmissionClient) -> list[JobDetails]:
    """Every search submitted to the cluster as a job."""
    return [job for job in jobs.list_jobs() if job.entrypoint.startswith(SEARCH_ENTRYPOINT) and job.submission_id]


def latest_search(jobs: JobSubmissionClient) -> JobDetails:
    """The search job submitted last."""
    searches = search_jobs(jobs)
    if not searches:
        raise JobError("no search has been submitted to this cluster; start one with: python -m tuning.jobs submit")
    return max(searches, key=lambda job: job.start_time or 0)


def search_name(entrypoint: str) -> str | None:
    """The `--name` a search job's entrypoint gives its search."""
    flags = shlex.split(entrypoint)
    return flags[flags.index("--name") + 1] if "--name" in flags[:-1] else None


def newest_job(searches: list[JobDetails], name_or_id: str) -> str:
    """The job that `name_or_id` means: the newest job of the search of that name (a resumed search runs as a job of its
    own, `<name>-<time>`), else the job of that id, as given."""
    of_the_search = [job for job in searches if search_name(job.entrypoint) == name_or_id]
    if not of_the_search:
        return name_or_id
    return str(max(of_the_search, key=lambda job: job.start_time or 0).submission_id)


def resolve(jobs: JobSubmissionClient, name_or_id: str | None) -> str:
    """The job an action addresses: `name_or_id` resolved by `newest_job`, or the latest search."""
    return newest_job(search_jobs(jobs), name_or_id) if name_or_id else str(latest_search(jobs).submission_id)


def end_search_run(entrypoint: str) -> str:
    """Mark the stopped search's MLflow parent run KILLED (its driver may be killed before it can), as the search's
    own flags (or the cluster's `MLFLOW_TRACKING_URI`) name it; what was done, in one line."""
    flags = shlex.split(entrypoint)
    given = {flag: flags[index + 1] for index, flag in enumerate(flags[:-1]) if flag.startswith("--")}
    name = search_name(entrypoint) or ""
    try:
        killed = parent_run.kill_running_search_run(resolve_tracking_uri(given.get("--tracking-uri")),
                                                    given.get("--experiment-name", DEFAULT_EXPERIMENT), name)
    except MlflowException as error:
        return f"{name}: its MLflow run stays RUNNING ({first_line(error)}); --resume continues it"
    return f"{name}: MLflow run {'KILLED' if killed else 'already ended'}; continue it with --resume --name {name}"


def follow(jobs: JobSubmissionClient, job_id: str, poll_s: float = 2.0) -> JobStatus:
    """Print the job's log as it grows, until the job ends; returns its final status. Polls the job API
    (no websocket, no event loop: works the same in a terminal and in a notebook)."""
    printed = 0
    while True:
        status = jobs.get_job_status(job_id)
        log = jobs.get_job_logs(job_id)
        print(log[printed:], end="", flush=True)
        printed = len(log)
        if status in FINISHED:
            return status
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="python -m tuning.jobs", description=__doc__.split("\n\n")[0])
    actions = parser.add_subparsers(dest="action", required=True)
    submit_parser = actions.add_parser("submit", help="start a search; the flags after -- go to python -m tuning.search")
    submit_parser.add_argument("--follow", action="store_true", help="print its log until it ends")
    submit_parser.add_argument("search_args", nargs=argparse.REMAINDER)
    for action, text in (("logs", "print a search's log"), ("stop", "stop a search"), ("status", "a search's status")):
        sub = actions.add_parser(action, help=text)
        sub.add_argument("job_id", nargs="?", help="a search's name (its newest job, a resumed one included) or a job id "
                         "(default: the latest search)")
        if action == "logs":
            sub.add_argument("--follow", action="store_true", help="keep printing until the search ends")
            sub.add_argument("--storage-path", default=SearchSettings.storage_path,
                             help="where searches keep their folders: a search Ray no longer knows (after a restart) is "
                             f"read from its search.log there (default: {SearchSettings.storage_path})")
    options = parser.parse_args(argv)
    try:
        if options.action == "logs":
            return print_log(options.job_id, options.storage_path, options.follow)
        jobs = client()
        if options.action == "submit":
            job_id = submit(jobs, [arg for arg in options.search_args if arg != "--"])
            print(f"submitted {job_id}; follow it with: python -m tuning.jobs logs --follow {job_id}")
            return _exit_code(follow(jobs, job_id)) if options.follow else 0
        job_id = resolve(jobs, options.job_id)
        if options.action == "stop":
            stopped = jobs.stop_job(job_id)
            print(f"{job_id}: {'stopping' if stopped else 'already ended'} ({jobs.get_job_status(job_id).value})")
            if stopped:
                print(end_search_run(jobs.get_job_info(job_id).entrypoint))
            return 0
        print(f"{job_id}: {jobs.get_job_status(job_id).value}")
        return 0
    except (JobError, RuntimeError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def print_log(job_id: str | None, storage_path: str, keep_following: bool) -> int:
    """The search's log from Ray's job API; for a search Ray no longer knows, the copy in its folder."""
    try:
        jobs = client()
        job_id = resolve(jobs, job_id)
        if keep_following:
            return _exit_code(follow(jobs, job_id))
        print(jobs.get_job_logs(job_id), end="")
        return 0
    except (JobError, RuntimeError) as error:
        saved = saved_log(storage_path, job_id)
        if saved is None:
            raise JobError(f"{first_line(error)}; no search.log under {storage_path} either") from None
    print(f"({saved}: Ray no longer knows this search; its log as saved)", file=sys.stderr)
    print(saved.read_text(errors="replace"), end="")
    return 0


def saved_log(storage_path: str, job_id: str | None) -> Path | None:
    """The log the search `job_id` (its name) saved, or the latest search's; None when there is none."""
    if job_id is not None:
        path = search_log.log_path(storage_path, job_id)
        return path if path.is_file() else None
    logs = list(Path(storage_path).glob(f"*/{search_log.LOG_FILE}"))
    return max(logs, key=lambda path: path.stat().st_mtime, default=None)


def _exit_code(status: JobStatus) -> int:
    return 0 if status == JobStatus.SUCCEEDED else 1


if __name__ == "__main__":
    sys.exit(main())
