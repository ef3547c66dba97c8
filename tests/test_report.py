"""dqn-report: statistics, grouping by configuration, and sweeps with failed or unfinished runs."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import TINY, run_cli
from dqn_cli.checkpoint import RunDirLock
from dqn_cli.report.plots import held_when_solved
from dqn_cli.report.runs import Run
from dqn_cli.report.stats import bootstrap_ci, iqm, moving_average


def test_iqm_trims_a_quarter_at_each_end():
    assert iqm([0, 1, 2, 3, 100, 4, 5, 6]) == pytest.approx(np.mean([2, 3, 4, 5]))
    assert iqm([7.0]) == 7.0


def test_bootstrap_ci_brackets_the_mean_and_is_reproducible():
    values = [100.0, 200.0, 300.0, 400.0, 500.0]
    low, high = bootstrap_ci(values)
    assert low < 300 < high and 100 <= low and high <= 500
    assert bootstrap_ci(values) == (low, high)
    assert bootstrap_ci([5.0, 5.0, 5.0]) == (5.0, 5.0)


def test_moving_average_is_trailing_over_at_most_the_window():
    values = np.arange(1, 6, dtype=float)
    assert np.allclose(moving_average(values, window=2), [1.0, 1.5, 2.5, 3.5, 4.5])


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """target=hard,soft x seed=0,1 with tiny budgets, run in parallel; the callback writes the report."""
    workdir = tmp_path_factory.mktemp("work")
    result = run_cli("dqn-train", ["-m", "target=hard,soft", "seed=0,1", "hydra/launcher=joblib",
                                   "hydra.launcher.n_jobs=2", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    (sweep_dir,) = (workdir / "outputs" / "sweeps").iterdir()
    assert "report:" in result.stdout
    return sweep_dir


def test_multirun_writes_the_report_grouped_by_target(sweep: Path):
    report = json.loads((sweep / "report.json").read_text())
    rows = {row["configuration"]: row for row in report["configurations"]}
    assert set(rows) == {"target=hard", "target=soft"}
    for row in rows.values():
        assert row["seeds"] == 2 and sorted(row["seed_list"]) == [0, 1]
        assert len(row["best"]["values"]) == 2 and row["best"]["ci95"][0] <= row["best"]["mean"]
        assert 0.0 <= row["solved_fraction"] <= 1.0
    markdown = (sweep / "report.md").read_text()
    assert "| target=hard | CartPole-v1 | 2 of 2 |" in markdown
    for name in ("learning_curves.png", "episode_returns.png"):
        assert (sweep / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_each_sweep_jobs_lines_carry_its_identity(sweep: Path):
    for job in (p for p in sweep.iterdir() if p.is_dir()):
        swept = dict(o.split("=", 1) for o in job.name.split(",") if o.split("=", 1)[0] in ("seed", "target"))
        identity = {f"seed={swept['seed']}", f"target={swept['target']}"}  # in the command line's order
        lines = [line.split("] ", 1)[1] for line in (job / "train.log").read_text().splitlines() if line.startswith("[")]
        assert lines and all(set(line[1:].split("] ", 1)[0].split()) == identity for line in lines), lines[:3]
        assert any(line.split("] ", 1)[1].startswith("eval @ 300:") for line in lines)


def test_report_names_failed_and_unfinished_runs(sweep: Path, tmp_path: Path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    jobs = sorted(p for p in copy.iterdir() if (p / "summary.json").is_file())
    (jobs[0] / "summary.json").unlink()  # as if still running
    (jobs[1] / "summary.json").unlink()
    (jobs[1] / "error.txt").write_text("env.id='Nope-v0' is not a registered gymnasium environment\n")
    result = run_cli("dqn-report", [str(copy)], tmp_path)
    assert result.returncode == 0, result.stderr
    markdown = (copy / "report.md").read_text()
    assert f"`{jobs[0]}`: incomplete" in markdown
    assert f"`{jobs[1]}`: failed (env.id='Nope-v0'" in markdown
    rows = json.loads((copy / "report.json").read_text())["configurations"]
    assert sum(row["seeds"] for row in rows) == 2 and sum(row["runs"] for row in rows) == 4


def test_report_shows_provenance_and_warns_when_a_group_mixes_versions(sweep: Path, tmp_path: Path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    result = run_cli("dqn-report", [str(copy)], tmp_path)
    assert result.returncode == 0 and "Warning" not in result.stdout  # one code, one machine: nothing to say
    markdown = (copy / "report.md").read_text()
    assert "## Provenance" in markdown and f"torch {torch.__version__}" in markdown.split("## Provenance")[1]
    assert re.search(r"torch threads: \d+\)", markdown.split("## Provenance")[1])  # not "1 torch threads"
    jobs = sorted(p for p in copy.iterdir() if (p / "summary.json").is_file())
    summary = json.loads((jobs[0] / "summary.json").read_text())
    summary["provenance"]["torch"] = "2.4.0+cu121"
    summary["provenance"]["device"] = "cuda: NVIDIA H200"
    (jobs[0] / "summary.json").write_text(json.dumps(summary))
    result = run_cli("dqn-report", [str(copy)], tmp_path)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stdout.splitlines() if line.startswith("Warning:")]
    assert len(warning) == 1 and "mixes runs of different torch: " in warning[0]
    assert "2.4.0+cu121" in warning[0] and "device: " in warning[0] and "cuda: NVIDIA H200" in warning[0]
    assert warning[0] in (copy / "report.md").read_text()


def test_report_leaves_out_a_run_that_is_training_now(sweep: Path, tmp_path: Path):
    """A resume that extends a finished run keeps the old summary.json until it ends: the lock says it runs."""
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy)
    jobs = sorted(p for p in copy.iterdir() if (p / "summary.json").is_file())
    with RunDirLock(jobs[0]):
        result = run_cli("dqn-report", [str(copy)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"`{jobs[0]}`: running (a process is training in it now)" in (copy / "report.md").read_text()
    rows = json.loads((copy / "report.json").read_text())["configurations"]
    assert sum(row["seeds"] for row in rows) == 3
    assert run_cli("dqn-report", [str(copy)], tmp_path).returncode == 0  # once it ends, the run counts again
    assert sum(row["seeds"] for row in json.loads((copy / "report.json").read_text())["configurations"]) == 4


def test_report_on_a_missing_folder_is_one_line(tmp_path: Path):
    result = run_cli("dqn-report", [str(tmp_path / "nope")], tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"dqn-report: error: {tmp_path / 'nope'} is not a directory; pass a sweep dir or run dirs (outputs/sweeps/<...>)"]


def test_probability_of_improvement_counts_pairs_and_half_ties():
    from dqn_cli.report.stats import probability_of_improvement

    assert probability_of_improvement([3, 4], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [3, 4]) == 0.0
    assert probability_of_improvement([2, 3], [2, 1]) == pytest.approx((0.5 + 1 + 1 + 1) / 4)


def test_performance_profile_is_the_fraction_above_each_threshold():
    from dqn_cli.report.stats import performance_profile

    assert performance_profile([10, 20, 30, 40], np.array([0, 15, 35, 40])).tolist() == [1.0, 0.75, 0.25, 0.0]


def test_labels_name_groups_and_fewer_than_five_seeds_give_no_interval(sweep: Path, tmp_path: Path, workdir: Path):
    jobs = {p.name: p for p in sweep.iterdir() if p.is_dir()}
    hard, soft = tmp_path / "hard", tmp_path / "soft"
    for folder, target in ((hard, "target=hard"), (soft, "target=soft")):
        folder.mkdir()
        for name, job in jobs.items():
            if target in name.split(","):
                shutil.copytree(job, folder / name)
    result = run_cli("dqn-report", ["--label", f"Hard={hard}", "--label", f"Soft={soft}", "--out",
                                    str(tmp_path / "out")], workdir)
    assert result.returncode == 0, result.stderr
    rows = {r["configuration"]: r for r in json.loads((tmp_path / "out" / "report.json").read_text())["configurations"]}
    assert set(rows) == {"Hard", "Soft"} and not rows["Hard"]["best"]["ci95_meaningful"]
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "| Hard | CartPole-v1 | 2 of 2 |" in markdown and "n/a (2 seeds; needs 5)" in markdown
    assert "Caveat: Hard (2 seeds), Soft (2 seeds) has fewer than 5 seeds" in markdown  # beside comparison.png
    assert (tmp_path / "out" / "comparison.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    bad = run_cli("dqn-report", ["--label", "no-equals-sign"], workdir)
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == [
        "dqn-report: error: --label 'no-equals-sign': write it as NAME=DIR, e.g. --label soft=outputs/sweeps/<sweep>"]


def test_a_label_over_runs_of_two_envs_gives_one_row_per_env(sweep: Path, tmp_path: Path, workdir: Path):
    mixed = tmp_path / "mixed"
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())[:2]
    for job in jobs:
        shutil.copytree(job, mixed / job.name)
    other = mixed / jobs[1].name / "summary.json"
    other.write_text(json.dumps({**json.loads(other.read_text()), "env_id": "Acrobot-v1"}))
    result = run_cli("dqn-report", ["--label", f"x={mixed}", "--out", str(tmp_path / "out")], workdir)
    assert result.returncode == 0, result.stderr
    rows = {r["configuration"]: r for r in json.loads((tmp_path / "out" / "report.json").read_text())["configurations"]}
    assert set(rows) == {"x (Acrobot-v1)", "x (CartPole-v1)"} and all(r["seeds"] == 1 for r in rows.values())
    twice = run_cli("dqn-report", ["--label", f"x={mixed}", "--label", f"x={sweep}"], workdir)
    assert twice.returncode == 2 and "--label x= is given twice" in twice.stderr
    beside = run_cli("dqn-report", [str(sweep), "--label", f"x={mixed}"], workdir)  # the sweep would be left out
    assert beside.returncode == 2 and beside.stderr.strip().splitlines() == [
        f"dqn-report: error: {sweep} is given beside --label groups, which would leave it out; label it too "
        f"(--label NAME={sweep}), or drop the --label groups"]


def test_one_configuration_is_labelled_by_its_env_and_preset(workdir: Path):
    result = run_cli("dqn-train", ["-m", "seed=0,1", "experiment=cartpole", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    (sweep_dir,) = (workdir / "outputs" / "sweeps").iterdir()
    rows = json.loads((sweep_dir / "report.json").read_text())["configurations"]
    assert [r["configuration"] for r in rows] == ["CartPole-v1 experiment=cartpole"]


def test_plot_titles_name_the_env_the_budget_and_the_seeds(sweep: Path):
    from dqn_cli.report.plots import _setting
    from dqn_cli.report.runs import find_runs, group_runs

    assert _setting(group_runs(find_runs([sweep]))) == "CartPole-v1, 600 steps, 2 seeds"


def test_titles_give_the_steps_actually_trained_and_count_one_seed():
    from dqn_cli.report.plots import _setting
    from dqn_cli.report.runs import Group

    def run(steps: int, seed: int) -> Run:
        return Run(Path(f"r{seed}"), [], seed, "finished", {"env_id": "CartPole-v1", "steps": steps,
                   "budget": {"total": 50000, "unit": "step"}, "stopped_when_solved": steps})

    assert _setting([Group("a", [run(13008, 0)]), Group("b", [run(16000, 1)])]) == \
        "CartPole-v1, 13,008-16,000 steps trained (of 50,000 steps; stopped when solved), 1 seed"


def test_labels_leave_out_overrides_that_name_a_default():
    def overrides(*given: str) -> frozenset:
        return Run(Path("r"), list(given), 0, "finished").config_overrides

    assert overrides("env=cartpole", "target=soft", "seed=3", "gamma=0.99") == {"target=soft"}
    assert overrides("env=acrobot", "target=hard", "gamma=0.9") == {"env=acrobot", "gamma=0.9"}
    # a preset sets its own values: there env=cartpole or gamma=0.99 may well change something
    assert overrides("experiment=acrobot", "gamma=0.99") == {"experiment=acrobot", "gamma=0.99"}
    from dqn_cli.report.runs import group_runs

    runs = [Run(Path(str(i)), given, i, "finished", {"env_id": "CartPole-v1"})
            for i, given in enumerate([["env=cartpole", "target=soft"], ["target=soft"], ["target=hard"]])]
    groups = {g.label: len(g.runs) for g in group_runs(runs)}
    assert groups == {"target=soft": 2, "target=hard": 1}  # the swept default keeps its name


def test_learning_curves_draw_no_band_below_five_seeds(sweep: Path, monkeypatch, tmp_path: Path):
    from dqn_cli.report import plots
    from dqn_cli.report.runs import find_runs, group_runs

    drawn = []
    monkeypatch.setattr(plots, "_save_figure", lambda figure, path: drawn.append(figure))
    plots.learning_curves(group_runs(find_runs([sweep])), tmp_path / "curves.png")
    (axis,) = drawn[0].axes
    assert not axis.collections  # fill_between's bands
    assert all("no CI below 5 seeds" in line.get_label() for line in axis.lines if line.get_label().startswith("target"))


def test_a_run_that_stopped_when_solved_keeps_its_last_score_in_the_learning_curve():
    steps, values = np.array([1000, 2000]), np.array([10.0, 480.0])
    every_step = [1000, 2000, 3000, 4000]
    stopped = Run(Path("a"), [], 0, "finished", {"stopped_when_solved": 2000})
    held_steps, held_values = held_when_solved(stopped, steps, values, every_step)
    assert held_steps.tolist() == every_step and held_values.tolist() == [10.0, 480.0, 480.0, 480.0]
    trained_on = Run(Path("b"), [], 1, "finished", {"stopped_when_solved": None})
    assert held_when_solved(trained_on, steps, values, every_step)[0].tolist() == [1000, 2000]
