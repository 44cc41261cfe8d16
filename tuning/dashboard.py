"""`python -m tuning.dashboard`: optuna-dashboard on the searches' study database, live.

Opens the study storage as the search does (`--study-storage`, else `$OPTUNA_STORAGE`, else
`sqlite:///optuna.db`), creating Optuna's tables if no search has yet, then serves optuna-dashboard
on it: every search's optimisation history, per-epoch intermediate values (where ASHA stopped
trials), parameter importances and parallel coordinates. It has no login: keep it on 127.0.0.1.

Example:
    python -m tuning.dashboard                 # http://127.0.0.1:8080
"""

from __future__ import annotations

import sys

import optuna_dashboard

from fmnist.command_line import OneLineErrorParser
from tuning.optimization import stored_study
from tuning.runtime.command_line import STUDY_STORAGE_HELP, listen_address_error
from tuning.runtime.stores import resolve_study_storage


def main(argv: list[str] | None = None) -> int:
    parser = OneLineErrorParser(prog="python -m tuning.dashboard", description=__doc__.split("\n\n")[0])
    parser.add_argument("--study-storage", help=STUDY_STORAGE_HELP)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
    options = parser.parse_args(argv)
    if (unusable := listen_address_error(options.host, options.port)) is not None:
        parser.error(unusable)
    try:
        storage = stored_study.open_storage(resolve_study_storage(options.study_storage))
    except stored_study.StudyError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"optuna-dashboard on http://{options.host}:{options.port}", flush=True)
    optuna_dashboard.run_server(storage, host=options.host, port=options.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
