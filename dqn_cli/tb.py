"""TensorBoard logging. Every tag name lives here (and in the docs' table, docs/getting-started.md)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from pathlib import Path
from typing import Any, Dict, Sequence

from tensorboard.plugins.hparams import plugin_data_pb2
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

# training, against env steps
EPISODE_RETURN = "train/episode_return"
EPISODE_LENGTH = "train/episode_length"
EPSILON = "train/epsilon"
TD_LOSS = "train/td_loss"
MEAN_Q = "train/mean_q"
STEPS_PER_SECOND = "perf/steps_per_second"
# periodic greedy evaluation, against env steps
EVAL_MEAN = "eval/mean_return"
EVAL_STD = "eval/std_return"
# final evaluation: one point each at the last step, and the HPARAMS tab's metrics
FINAL_BEST_MEAN = "final/best_mean_return"
FINAL_BEST_STD = "final/best_std_return"
FINAL_LAST_MEAN = "final/last_mean_return"
FINAL_LAST_STD = "final/last_std_return"
FINAL_NAMES = {FINAL_BEST_MEAN: "best.pt mean return", FINAL_BEST_STD: "best.pt std",
               FINAL_LAST_MEAN: "last.pt mean return", FINAL_LAST_STD: "last.pt std"}  # HPARAMS' column names
CONFIG_TEXT = "config"

RUN_SCALAR_TAGS = (EPISODE_RETURN, EPISODE_LENGTH, EPSILON, TD_LOSS, MEAN_Q, STEPS_PER_SECOND, EVAL_MEAN, EVAL_STD)
FINAL_TAGS = (FINAL_BEST_MEAN, FINAL_BEST_STD, FINAL_LAST_MEAN, FINAL_LAST_STD)
ALL_SCALAR_TAGS = RUN_SCALAR_TAGS + FINAL_TAGS


def _hparam_value(value: Any) -> Any:
    """HPARAMS shows floats and text; integers go as text, which it shows as written (as numbers it
    would print 40000 as 4.0000e+4), booleans as true/false (torch would write them as 0/1 numbers),
    and lists and nulls as JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (float, str)):
        return value
    return str(value) if isinstance(value, int) else json.dumps(value)


def _quiet_writer_thread_errors(previous=threading.excepthook):
    """A write error in TensorBoard's writer thread (a full disk) reaches the training thread at its
    next write, which reports it in one line; the thread itself need not print a traceback too."""

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (issubclass(args.exc_type, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
            previous(args)

    hook.quiets_writer_threads = True
    threading.excepthook = hook


@contextlib.contextmanager
def _naming(path: str):
    """Write errors name the event file (a full disk's OSError names none)."""
    try:
        yield
    except OSError as error:
        if error.filename is not None:
            raise
        raise OSError(error.errno, error.strerror or str(error), path) from error


def _start_in_a_later_second(log_dir: Path) -> None:
    """TensorBoard reads a run's event files in name order, and a name starts with the second its
    writer was made; within one second the process id and a counter order them arbitrarily. A resumed
    run's file read before the earlier one would get the earlier points dropped as stale, so a run
    resumed within the second its last file was started waits for the next second."""
    now = time.time()
    if any(path.name.split(".")[3] == f"{int(now):010d}" for path in Path(log_dir).glob("events.out.tfevents.*")):
        time.sleep(int(now) + 1 - now)


class TensorBoardLogger:
    """Thin wrapper so the loop logs by name and the run dir holds one event-file stream."""

    def __init__(self, log_dir: Path, purge_step: int | None = None):
        if not getattr(threading.excepthook, "quiets_writer_threads", False):
            _quiet_writer_thread_errors()
        _start_in_a_later_second(log_dir)
        self.writer = SummaryWriter(log_dir=str(log_dir), flush_secs=10, purge_step=purge_step)
        self.path = self.writer._get_file_writer().get_logdir()

    def flush(self) -> None:
        with _naming(self.path):
            self.writer.flush()

    def scalar(self, tag: str, value: float, step: int) -> None:
        with _naming(self.path):
            self.writer.add_scalar(tag, value, step)

    def config_text(self, config_yaml: str) -> None:
        # Markdown code block so indentation survives in the TEXT tab.
        self.text(CONFIG_TEXT, "```yaml\n" + config_yaml + "\n```")

    def text(self, tag: str, markdown: str) -> None:
        self.writer.add_text(tag, markdown, 0)

    def hparams(self, params: Dict[str, Any], final_metrics: Dict[str, float], step: int,
                leading: Sequence[str] = ()) -> None:
        """One HPARAMS entry per run; the final metrics are the run's own scalars (one point each, under
        final/), shown in HPARAMS by plain names. TensorBoard shows the columns marked as differing
        between runs first and ticked: `leading`, the run's overrides."""
        shown = {key: _hparam_value(value) for key, value in params.items()}
        experiment, session_start, session_end = hparams(shown, final_metrics)
        data = plugin_data_pb2.HParamsPluginData.FromString(experiment.value[0].metadata.plugin_data.content)
        for info in data.experiment.metric_infos:
            info.display_name = FINAL_NAMES[info.name.tag]
        for info in data.experiment.hparam_infos:
            info.differs = info.name in leading
        experiment.value[0].metadata.plugin_data.content = data.SerializeToString()
        file_writer = self.writer._get_file_writer()
        for summary in (experiment, session_start, session_end):
            file_writer.add_summary(summary)
        for tag, value in final_metrics.items():
            self.scalar(tag, value, step)

    def close(self) -> None:
        with _naming(self.path):
            self.writer.flush()
            self.writer.close()
