"""`python -m tuning.search`: the whole search, from data to a registered champion.

Example:
    python -m tuning.search --smoke-test
    python -m tuning.search --num-samples 20 --max-epochs 10 --tracking-uri http://127.0.0.1:5000
    python -m tuning.search --resume --name fmnist-search-20261126-103223
"""

from __future__ import annotations

import sys

from tuning import cli, saved_search
from tuning.runtime import cluster, library_output, search_log, stores
from tuning.settings import SettingsError


def main(argv: list[str] | None = None) -> int:
    """Parse the flags, check every input, then search; a bad input ends with one line and exit code 2."""
    command = cli.parse(argv)
    library_output.quiet_environment()
    library_output.hide_library_lines()
    try:
        return _search(command)
    finally:
        cluster.disconnect()


def _search(command: cli.Command) -> int:
    """Resolve the settings, start or join Ray, check every input, search."""
    try:
        settings, saved = saved_search.settings_to_search(command)
        # A local Ray starts while the driver's libraries load; an address is joined once every input is checked.
        if settings.address is None:
            cluster.start_local_while_importing("tuning.driver")
    except (SettingsError, saved_search.SavedSearchError, cluster.ClusterError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    from tuning import driver

    library_output.quiet_loggers()

    try:
        search = driver.prepare(settings, saved)
    except driver.INPUT_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if stores.is_uri(settings.storage_path):
        return driver.run(search)
    with search_log.copied_to(search_log.log_path(settings.storage_path, settings.name)):
        return driver.run(search)


if __name__ == "__main__":
    sys.exit(main())
