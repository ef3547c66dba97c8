"""The tracker interface (tracker=none does nothing), and importing a tracker's library."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, NamedTuple, Optional, Sequence

from dqn_cli.errors import ConfigError


class TrackedRun(NamedTuple):
    """What a tracker is told of the run it follows."""
    run_dir: Path
    name: str  # the env, the seed and what the command line changed (trackers.run_name)
    group: Optional[str]  # the sweep's name, if the run is a sweep job
    params: Dict[str, Any]  # the whole config, flat: {"optimizer.lr": 0.001, ...}
    previous_id: Optional[str]  # this tracker's run id from an earlier process of the same run (resume)


class Tracker:
    """The interface, and tracker=none: every call does nothing."""

    run_id: Optional[str] = None  # kept in <run dir>/tracker.json, so a resumed run continues its tracker run

    def scalar(self, tag: str, value: float, step: int) -> None:
        pass

    def final(self, metrics: Dict[str, float]) -> None:
        pass

    def artifacts(self, config: Dict[str, Any], files: Sequence[Path]) -> None:
        """A finished run's config (as config.yaml) and files (summary.json, best.pt)."""

    def close(self) -> None:
        pass


def import_library(name: str, extra: str):
    try:
        return __import__(name)
    except ImportError:
        raise ConfigError(f"tracker={extra} needs the {name} package, which is not installed; "
                          f'pip install "dqn-cli[{extra}]"') from None


def check_service_answers(url: str, what: str, otherwise: str) -> None:
    """A tracking service that does not answer costs minutes of its client's retries before the run
    fails: ask once, in seconds, and say what to do instead."""
    try:
        urllib.request.urlopen(url, timeout=10).close()
    except urllib.error.HTTPError:
        return  # something answers; the client says what if it is not the service
    except (urllib.error.URLError, OSError) as error:
        raise ConfigError(f"{what}: no answer from {url} ({getattr(error, 'reason', error)}); {otherwise}") from None
