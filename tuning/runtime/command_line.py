"""What the search's commands share on their command line: the store flags' help and the check of a listening port."""

from __future__ import annotations

import os
import socket

TRACKING_URI_HELP = "MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db)"
STUDY_STORAGE_HELP = "Optuna study database (default: $OPTUNA_STORAGE, else sqlite:///optuna.db)"


def listen_address_error(host: str, port: int) -> str | None:
    """Why a server cannot listen on --host/--port (out of range, the port taken, the address not this machine's), as
    the one-line error naming the flag; None if it can."""
    if not 0 < port < 65536:
        return f"--port must be between 1 and 65535, got {port}"
    try:
        with socket.create_server((host, port)):
            return None
    except OSError as error:
        reason = os.strerror(error.errno) if error.errno else str(error)
        return f"--port {port}: cannot listen on {host}:{port} ({reason})"
    except (OverflowError, UnicodeError) as error:  # a --host that is no address at all
        return f"--host {host}: {error}"
