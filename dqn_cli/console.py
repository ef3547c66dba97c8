"""The console: progress as a bar on a terminal, plain periodic log lines otherwise (never both);
a command's result line (`say`) and its one-line error (`fail`)."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import NoReturn, Sequence

log = logging.getLogger("dqn_cli")


def record_in_train_log(line: str, level: int = logging.ERROR) -> None:
    """A line for train.log only: the line that ends a run (the caller prints it once), a run's provenance."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.FileHandler):
            handler.emit(logging.LogRecord("dqn_cli", level, __file__, 0, line, None, None))


def result_line(run_dir, summary: dict) -> str:
    """The line that ends a run: where it is, how best.pt and last.pt play, how long it took in all."""
    best, last = summary["final_eval"]["best"], summary["final_eval"]["last"]
    line = (f"run dir: {run_dir} | best.pt {best['mean']:.1f} ± {best['std']:.1f}, last.pt {last['mean']:.1f} ± "
            f"{last['std']:.1f} over {best['episodes']} greedy episodes | {summary['steps']:,} steps in ")
    resumed_at = summary.get("resumed_at_step")
    if not resumed_at:
        return line + f"{summary['wall_time_s']:.1f} s"
    return line + (f"{summary['total_wall_time_s']:.1f} s in all (resumed at step {resumed_at:,}: "
                   f"{summary['steps'] - resumed_at:,} steps in {summary['wall_time_s']:.1f} s)")


def prefix_log_lines(prefix: str) -> None:
    """Every log line of this process from now on starts with `prefix` after its time: a sweep job's
    identity ('[seed=1] '), on the console and in its train.log."""
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(f"[%(asctime)s] {prefix.replace('%', '%%')}%(message)s", "%H:%M:%S"))


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else \
        f"{seconds // 60}:{seconds % 60:02d}"


class Progress:
    """Reports steps, steps/s, recent return, epsilon and time left, at most every `interval_s`."""

    def __init__(self, total: int, mode: str = "auto", interval_s: float = 10.0, initial: int = 0,
                 unit: str = "step"):
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "lines"
        self.mode, self.total, self.initial, self.unit = mode, total, initial, unit
        self.interval_s = interval_s if mode == "lines" else 0.25
        self.start = self.last = time.perf_counter()
        self.last_eval = None  # the latest periodic evaluation's mean return, once there is one
        self.bar = None
        if mode == "bar":
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit=unit, unit_scale=True, dynamic_ncols=True,
                            smoothing=0.1, mininterval=0.25, file=sys.stderr)

    def update(self, count: int, recent_returns: Sequence[float], epsilon: float) -> None:
        """Cheap unless a report is due (called every loop iteration)."""
        now = time.perf_counter()
        if self.mode == "off" or now - self.last < self.interval_s:
            return
        self.last = now
        ret = f"{sum(recent_returns) / len(recent_returns):.1f}" if recent_returns else "n/a"
        evaluated = "" if self.last_eval is None else f", eval {self.last_eval:.1f}"
        if self.bar is not None:
            self.bar.n = count
            self.bar.set_postfix_str(f"return(last 100) {ret}{evaluated}, eps {epsilon:.3f}", refresh=False)
            self.bar.refresh()
            return
        rate = (count - self.initial) / max(now - self.start, 1e-9)
        eta = (self.total - count) / max(rate, 1e-9)
        log.info(f"{self.unit} {count}/{self.total} ({100 * count / self.total:.0f}%) | {rate:,.0f} {self.unit}s/s | "
                 f"return(last 100) {ret}{evaluated.replace(',', ' |')} | eps {epsilon:.3f} | left {_duration(eta)}")

    def close(self, count: int) -> None:
        if self.bar is not None:
            self.bar.n = count
            self.bar.refresh()
            self.bar.close()


def say(line: str = "") -> None:
    """Print a result line (none: just flush); a reader that closed stdout (`| head`) is no error:
    the work is done, so what it did not read goes to /dev/null instead of a traceback at exit."""
    try:
        if line:
            print(line)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def fail(program: str, message: str) -> NoReturn:
    print(f"{program}: error: {message}", file=sys.stderr)
    sys.exit(2)
