"""The console entry points: dqn-train, dqn-eval and dqn-report. Hydra runs only behind
dqn-train (hydra_app.py, train_task.py); dqn-eval and dqn-report parse their own arguments."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import List

from dqn_cli import config as config_module
from dqn_cli.console import fail, say
from dqn_cli.errors import UserError
from dqn_cli.hydra_errors import explain_hydra_error
from dqn_cli.startup import start_up_done


def train_main() -> None:
    """`dqn-train [group=option ...] [key=value ...]` (Hydra command line)."""
    if any(arg in ("-h", "--help") for arg in sys.argv[1:]):
        # The page is written from the typed config alone; Hydra would first list every config group
        # and compose the config, which its template (ours) never shows.
        from dqn_cli.help import train_help

        say(train_help())
        return
    from dqn_cli.hydra_app import run_hydra_app
    from dqn_cli.train_task import TrainTask

    logging.raiseExceptions = False  # a log line to a closed stdout (`| head`) is no reason for a traceback
    run_hydra_app(TrainTask(), "dqn-train")
    say()


def report_main(argv: List[str] | None = None) -> None:
    """`dqn-report <sweep dir | run dirs ...> [--out DIR]`: aggregate runs into a table and plots."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="dqn-report", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Aggregate runs that differ only in seed into one row per configuration: mean ± std, "
                    "interquartile mean,\n95% bootstrap confidence interval, solved fraction, learning curves.",
        epilog="examples:\n  dqn-report outputs/sweeps/<sweep>              a sweep (written into it)\n"
               "  dqn-report outputs/runs/<a> outputs/runs/<b> --out report   chosen runs\n"
               "  dqn-report --label hard=outputs/sweeps/<a> --label soft=outputs/sweeps/<b>   named groups, "
               "compared\n\n"
               "See also: dqn-train --help, dqn-eval --help.")
    parser.add_argument("paths", nargs="*", type=Path, help="a sweep dir, or several run dirs")
    parser.add_argument("--label", action="append", default=[], metavar="NAME=DIR",
                        help="one group called NAME: every run under DIR (repeat to compare groups)")
    parser.add_argument("--out", type=Path, help="where to write (default: the sweep dir, or ./report)")
    args = parser.parse_args(argv)
    try:
        from dqn_cli.report.writer import write_report

        labels = {}
        for label in args.label:
            name, _, folder = label.partition("=")
            if not name or not folder:
                raise UserError(f"--label {label!r}: write it as NAME=DIR, e.g. --label soft=outputs/sweeps/<sweep>")
            if name in labels:
                raise UserError(f"--label {name}= is given twice ({labels[name]} and {folder}); give each group its "
                                "own name")
            labels[name] = Path(folder)
        if args.paths and labels:  # the dirs would not be in any labelled group
            raise UserError(f"{args.paths[0]} is given beside --label groups, which would leave it out; label it "
                            f"too (--label NAME={args.paths[0]}), or drop the --label groups")
        if not args.paths and not labels:
            raise UserError("nothing to report: pass a sweep dir, run dirs, or --label NAME=DIR")
        start_up_done()
        out = write_report(args.paths, args.out, labels)
    except UserError as error:
        fail("dqn-report", str(error))
    say(f"report: {out / 'report.md'} (+ report.json, learning_curves.png, episode_returns.png)")
    say((out / "report.md").read_text().split("\n\n![")[0])


EVAL_ARG_EXAMPLES = {"run": "run=outputs/runs/<run-dir>", "checkpoint": "checkpoint=best (or last, or a file)",
                     "episodes": "episodes=10", "video": "video=true", "seed": "seed=7", "device": "device=cpu"}


def parse_eval_args(argv: List[str]) -> config_module.EvalArgs:
    """dqn-eval's key=value arguments, typed and checked by OmegaConf against EvalArgs."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    keys = ", ".join(config_module.EvalArgs.__dataclass_fields__)
    for arg in argv:
        if "=" not in arg or arg.startswith("-"):
            raise UserError(f"unexpected argument {arg!r}; use key=value with keys: {keys}")
        key, _, value = arg.partition("=")
        if not value.strip():
            raise UserError(f"{arg}: needs a value, e.g. {EVAL_ARG_EXAMPLES.get(key, 'run=outputs/runs/<run-dir>')}")
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(config_module.EvalArgs),
                                                   OmegaConf.from_dotlist(argv)))
    except OmegaConfBaseException as error:
        raise UserError(explain_hydra_error(error)) from None


def eval_main(argv: List[str] | None = None) -> None:
    """`dqn-eval run=<run dir> [checkpoint=best|last|<file>] [episodes=N] [video=true] [seed=N] [device=cpu]`."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("-h", "--help"):
        from dqn_cli.help import eval_help

        say(eval_help())
        return
    try:
        from dqn_cli.evaluate_run import evaluate_run
        from dqn_cli.runtime import EXIT_STATUS, StopOnSignal

        args = parse_eval_args(argv)
        start_up_done()
        with StopOnSignal() as stop_on_signal:  # Ctrl-C or SIGTERM: write the episodes played so far
            result = evaluate_run(Path(args.run), str(args.checkpoint), args.episodes, args.video, args.seed,
                                  args.device, stop=lambda: stop_on_signal(0), announce=say)
    except UserError as error:
        fail("dqn-eval", str(error))
    except KeyboardInterrupt:
        fail("dqn-eval", "interrupted")
    if result.get("partial"):
        say(f"{result['checkpoint']}.pt: stopped by {stop_on_signal.signal_name} after {result['episodes']} "
            f"episode(s) ({result['mean']:.2f} ± {result['std']:.2f}); written, marked partial, to {result['eval_json']}"
            if result["episodes"] else f"stopped by {stop_on_signal.signal_name} before any episode ended; "
            f"{result['eval_json']} marked partial")
        sys.exit(EXIT_STATUS.get(stop_on_signal.signal_name, 130))
    line = (f"{result['checkpoint']}.pt: {result['mean']:.2f} ± {result['std']:.2f} over "
            f"{result['episodes']} greedy episodes ({result['env_id']}) -> {result['eval_json']}")
    if result.get("video"):
        line += f" | video: {result['video']}"
    say(line)


if __name__ == "__main__":  # pragma: no cover
    # Run the imported module's entry point, not this __main__ copy's: launchers that pickle the
    # config (Ray) must find its resolvers under their importable name.
    from dqn_cli.cli import train_main as imported_train_main

    imported_train_main()
