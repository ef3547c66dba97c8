"""Tier 3: the console scripts with tiny budgets, run as a user runs them."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import TINY, only_run_dir, run_cli
from dqn_cli import tb


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """One tiny soft-target run shared by the read-only checks below."""
    workdir = tmp_path_factory.mktemp("work")
    result = run_cli("dqn-train", ["env=cartpole", "target=soft", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(workdir)
    assert f"run dir: {run_dir}" in result.stdout and "best.pt" in result.stdout
    return run_dir


def test_run_dir_is_named_by_date_time_env_seed_and_what_the_command_changed(finished_run: Path):
    # TINY's overrides are too many for a name: cut at an override, with a hash of the whole list
    assert re.fullmatch(r"\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d_cartpole_seed0_target-soft\+total_steps-600\+[^/]*\+\.\.[0-9a-f]{8}",
                        finished_run.name)
    assert finished_run.parent.parent.name == "outputs"


def test_run_dir_holds_config_events_checkpoints_and_summary(finished_run: Path):
    assert (finished_run / ".hydra" / "config.yaml").is_file()
    assert "target=soft" in (finished_run / ".hydra" / "overrides.yaml").read_text()
    assert list(finished_run.glob("events.out.tfevents.*"))
    summary = json.loads((finished_run / "summary.json").read_text())
    assert summary["steps"] == 600 and summary["steps_per_second"] > 0 and summary["wall_time_s"] > 0
    assert summary["best_periodic_eval"]["step"] in (300, 600)
    for name in ("best", "last"):
        final = summary["final_eval"][name]
        assert final["episodes"] == 3 and final["mean"] > 0 and final["std"] >= 0


def test_summary_and_train_log_say_what_produced_the_run(finished_run: Path):
    import gymnasium
    import subprocess as sp

    provenance = json.loads((finished_run / "summary.json").read_text())["provenance"]
    assert provenance["torch"] == torch.__version__ and provenance["gymnasium"] == gymnasium.__version__
    assert provenance["command"].startswith("dqn-train env=cartpole target=soft total_steps=600")
    assert provenance["device"] == "cpu" and provenance["cpu"] and provenance["torch_threads"] >= 1
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", provenance["started_utc"])
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / ".git").exists():  # run from a checkout: its commit
        head = sp.run(["git", "-C", str(checkout), "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
        assert provenance["git_commit"] == head and isinstance(provenance["git_dirty"], bool)
    assert f"provenance: {json.dumps(provenance)}" in (finished_run / "train.log").read_text()


@pytest.mark.parametrize("name", ["best", "last"])
def test_checkpoints_load_weights_only_with_everything_to_resume(finished_run: Path, name: str):
    state = torch.load(finished_run / "checkpoints" / f"{name}.pt", weights_only=True)
    assert {"online", "target", "optimizer", "counters", "rng", "config", "best_eval"} <= set(state)
    assert state["config"]["target"]["name"] == "soft"
    assert {"python", "numpy", "torch", "replay"} <= set(state["rng"])
    assert state["counters"]["step"] > 0
    assert not list((finished_run / "checkpoints").glob("*.tmp*"))  # atomic writes leave no temp files


def test_tensorboard_has_every_tag_config_text_and_hparams(finished_run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(finished_run))
    events.Reload()
    tags = events.Tags()
    assert set(tb.RUN_SCALAR_TAGS) | set(tb.FINAL_TAGS) <= set(tags["scalars"])
    assert [p.name for p in finished_run.iterdir() if p.is_dir() and list(p.glob("events.out.*"))] == []  # one run
    assert any(t.startswith(tb.CONFIG_TEXT) for t in tags["tensors"])
    assert any(t.startswith("provenance") for t in tags["tensors"])
    plugins = events.PluginTagToContent("hparams")
    assert "_hparams_/experiment" in plugins and "_hparams_/session_start_info" in plugins
    from tensorboard.plugins.hparams import plugin_data_pb2

    start = plugin_data_pb2.HParamsPluginData.FromString(plugins["_hparams_/session_start_info"]).session_start_info
    experiment = plugin_data_pb2.HParamsPluginData.FromString(plugins["_hparams_/experiment"]).experiment
    columns = [info.name for info in experiment.hparam_infos]
    assert columns[:4] == ["env.id", "target.name", "total_steps", "learning_starts"]  # the run's overrides lead
    assert "optimizer.lr" in columns and start.hparams["total_steps"].string_value == "600"  # not 6.0000e+2
    assert {(m.name.group, m.name.tag, m.display_name) for m in experiment.metric_infos} == \
        {("", tag, name) for tag, name in tb.FINAL_NAMES.items()}  # plain names: "best.pt mean return"
    assert [e.value for e in events.Scalars(tb.FINAL_BEST_MEAN)] == pytest.approx(
        [json.loads((finished_run / "summary.json").read_text())["final_eval"]["best"]["mean"]])
    assert start.hparams["double_q"].string_value == "false"  # not 0.0000
    leading = [info.name for info in experiment.hparam_infos if info.differs]  # TensorBoard shows these first
    assert leading == ["env.id", "target.name", "total_steps", "learning_starts", "eval.interval", "eval.episodes",
                       "eval.final_episodes", "env.num_envs"]  # not log.progress
    returns = events.Scalars(tb.EPISODE_RETURN)
    assert len(returns) > 5 and all(0 < e.step <= 600 for e in returns)


def test_dqn_eval_reproduces_the_final_evaluation_and_writes_video(finished_run: Path, tmp_path: Path):
    result = run_cli("dqn-eval", [f"run={finished_run}", "checkpoint=best", "video=true"], tmp_path)
    assert result.returncode == 0, result.stderr  # episodes: the run's final-evaluation count (3 here)
    assert "±" in result.stdout and "3 greedy episodes" in result.stdout
    assert "XDG_RUNTIME_DIR" not in result.stderr  # pygame draws off-screen, without SDL's display warning
    report = json.loads((finished_run / "eval_best.json").read_text())
    summary = json.loads((finished_run / "summary.json").read_text())
    assert report["mean"] == pytest.approx(summary["final_eval"]["best"]["mean"])  # same seeds, same weights
    assert report["provenance"]["torch"] == torch.__version__ and report["provenance"]["command"].startswith("dqn-eval")
    video = Path(report["video"])
    assert video.parent == finished_run / "videos" and video.suffix == ".mp4"
    assert video.stat().st_size > 1000 and video.read_bytes()[4:8] == b"ftyp"


def test_dqn_eval_of_last_checkpoint_matches_summary(finished_run: Path, tmp_path: Path):
    result = run_cli("dqn-eval", [f"run={finished_run}", "checkpoint=last", "episodes=3"], tmp_path)
    assert result.returncode == 0, result.stderr
    summary = json.loads((finished_run / "summary.json").read_text())
    report = json.loads((finished_run / "eval_last.json").read_text())
    assert report["checkpoint"] == "last" and report["checkpoint_step"] == summary["steps"]
    assert report["mean"] == pytest.approx(summary["final_eval"]["last"]["mean"])


def test_dqn_eval_takes_a_periodic_checkpoint_and_keeps_each_result(finished_run: Path, tmp_path: Path):
    run_dir = copy_of(finished_run, tmp_path)
    for stale in run_dir.glob("eval_*.json"):
        stale.unlink()
    periodic = sorted((run_dir / "checkpoints").glob("step_*.pt"))[0]
    runs = [["checkpoint=best"], ["checkpoint=last", "seed=7"], [f"checkpoint={periodic.stem}"],
            [f"checkpoint={periodic}", "episodes=2"]]
    for args in runs:
        result = run_cli("dqn-eval", [f"run={run_dir}", *args], tmp_path)
        assert result.returncode == 0, result.stderr
    written = {path.name: json.loads(path.read_text()) for path in run_dir.glob("eval_*.json")}
    assert set(written) == {"eval_best.json", "eval_last_seed7.json", f"eval_{periodic.stem}.json",
                            f"eval_{periodic.stem}_episodes2.json"}
    step = int(periodic.stem.split("_")[1])
    assert written[f"eval_{periodic.stem}.json"]["checkpoint_step"] == step
    assert written[f"eval_{periodic.stem}_episodes2.json"]["episodes"] == 2
    assert written["eval_last_seed7.json"]["first_seed"] == 7


def test_dqn_eval_names_the_checkpoints_there_are(finished_run: Path, tmp_path: Path):
    result = run_cli("dqn-eval", [f"run={finished_run}", "checkpoint=step_12"], tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "checkpoint=step_12: no such file" in result.stderr and "best, last" in result.stderr
    assert "step_000000000" in result.stderr  # the periodic checkpoints it could have meant


BAD_TRAIN_INPUTS = [
    (["env=nosuch"], "env=nosuch is not an option; choose one of:"),
    (["optimizer.lrr=1"], "optimizer.lrr is not a setting; allowed keys here:"),
    (["total_steps=abc"], "total_steps='abc' is not valid: expected integer"),
    (["gamma=1.5"], "gamma=1.5 is out of range; allowed: 0 <= gamma <= 1"),
    (["buffer.capacity=0"], "buffer.capacity=0 is out of range; allowed: an integer > 0"),
    (["env=gym", "env.id=NoSuchGame-v0"], "env.id='NoSuchGame-v0' is not a registered gymnasium environment"),
    (["env=gym", "env.id=Pendulum-v1"], "has a Box action space; DQN needs a Discrete one"),
    (["env.id=MountainCar-v0"], "env.id=MountainCar-v0 under env=cartpole would train it with CartPole-v1's "
                                "settings (num_envs 16, solve_threshold 475.0); for another Gymnasium env write "
                                "env=gym env.id=MountainCar-v0"),
    (["experiment=acrobot", "env.id=CartPole-v1"], "under env=acrobot would train it with Acrobot-v1's settings"),
    (["env=pong", "env.id=ALE/Breakout-v5"], "would keep ALE/Pong-v5's solve_threshold (9.3); add "
                                             "env.solve_threshold=<a score for ALE/Breakout-v5> (or null)"),
    (["experiment=nosuch"], "experiment=nosuch is not an option; choose one of:"),
    (["seed=-1"], "seed=-1 is out of range; allowed: an integer from 0 to 4294967295"),
    (["seed=18446744073709551616"], "seed=18446744073709551616 is out of range"),
    (["optimizer.eps=-1"], "optimizer.eps=-1.0 is out of range; allowed: a float >= 0"),
    (["optimizer=sgd", "optimizer.momentum=-1"], "optimizer.momentum=-1.0 is out of range"),
    (["optimizer=sgd", "optimizer.nesterov=true"], "allowed: true only with optimizer.momentum > 0"),
    (["optimizer=rmsprop", "optimizer.alpha=-1"], "optimizer.alpha=-1.0 is out of range"),
    (["buffer.capacity=10000000000"], "buffer.capacity=10000000000 needs about 484.3 GiB of memory"),
    (["env=null"], "env=null: the env group needs an option; choose one of: acrobot,"),
    (["log.console_interval_s=-1"], "log.console_interval_s=-1.0 is out of range; allowed: a float > 0"),
    (["env=pong", "env.make_kwargs.repeat_action_probability=0.25"],
     "add it with a leading +, e.g. +env.make_kwargs.repeat_action_probability=<value>"),
    (["loss=l1"], "loss='l1' is not valid; choose one of: huber, mse"),
    (["total_episodes=0"], "total_episodes=0 is out of range; allowed: null or > 0"),
    (["train_freq_unit=epoch"], "train_freq_unit='epoch' is not valid; choose one of: step, episode"),
    (["env.vectorization=threads"], "env.vectorization='threads' is not valid; choose one of: sync, async"),
    (["experiment_env=minatar/minatar_breakout"], "experiment_env is picked by experiment and env"),
    (["+optimizer.momentum=0.9"], "optimizer.momentum: not a setting of optimizer=adam, so it would be ignored"),
    (["+foo=1"], "foo: not a setting of the config, so it would be ignored; its keys: env, network"),
    (["+env.foo=1"], "env.foo: not a setting of env, so it would be ignored; its keys: id, num_envs"),
    (["optimizer=sgd", "+optimizer.momentum=0.9"], "+optimizer.momentum: optimizer.momentum is already a setting; "
                                                  "set it without the leading +"),
    (["+sweep=optuna_article", "hydra.sweeper.n_trials=0"], "hydra.sweeper.n_trials=0 is out of range; allowed: an "
                                                             "integer >= 1"),
    (["-m", "seed=0,1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0"], "hydra.launcher.n_jobs=0 is out of range"),
    (["hydra.run.dir=/tmp/é"], "Hydra reads unquoted values in ASCII letters, digits and a few symbols only; quote"),
    (["-m", "seed=a,b"], "seed='a' is not valid: expected integer"),
    (["hydra.run.dir="], "hydra.run.dir= needs a folder, e.g. hydra.run.dir=outputs/my_run"),
    (["-m", "seed=0", "hydra.sweep.dir="], "hydra.sweep.dir= needs a folder"),
    (["~env"], "~env: deleting a setting is not supported; set env to the value you want"),
    (["~total_steps"], "~total_steps: deleting a setting is not supported"),
    (["--shell-completion"], "--shell-completion needs what to do: install=bash"),
    (["--resolve", "--cfg", "hydra"], "use --resolve --cfg all, or --cfg hydra without --resolve"),
    (["total_episodes=20"], "exploration.unit='step' is out of range; allowed: episode (exploration.fraction is a "
                            "share of the budget, total_episodes), or set exploration.steps"),
]


@pytest.mark.parametrize("args,message", BAD_TRAIN_INPUTS, ids=[a[0] for a, _ in BAD_TRAIN_INPUTS])
def test_bad_train_input_is_one_line_nonzero_and_leaves_nothing(workdir: Path, args, message):
    result = run_cli("dqn-train", [*args, *TINY], workdir)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("dqn-train: error: ") and message in lines[0], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (workdir / "outputs").exists()


def test_dqn_eval_on_missing_folder(tmp_path: Path):
    result = run_cli("dqn-eval", [f"run={tmp_path / 'nope'}"], tmp_path)
    assert result.returncode != 0
    assert result.stderr.strip().splitlines() == [
        f"dqn-eval: error: run directory {tmp_path / 'nope'} does not exist; pass the dir of a finished run, "
        "e.g. one under outputs/runs/"]


@pytest.mark.parametrize("damage", ["truncated", "foreign_pickle", "not_ours"])
def test_dqn_eval_refuses_damaged_or_foreign_checkpoints(finished_run: Path, tmp_path: Path, damage: str):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    good = (finished_run / "checkpoints" / "best.pt").read_bytes()
    target = run_dir / "checkpoints" / "best.pt"
    if damage == "truncated":
        target.write_bytes(good[: len(good) // 2])
    elif damage == "foreign_pickle":
        torch.save({"format": "dqn-cli/1", "payload": Path("/")}, target)  # an arbitrary object
    else:
        torch.save({"weights": torch.zeros(3)}, target)
    result = run_cli("dqn-eval", [f"run={run_dir}"], tmp_path)
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(target) in lines[0] and "Traceback" not in result.stderr


def test_an_episode_budget_that_ends_before_learning_starts_says_so(workdir: Path):
    result = run_cli("dqn-train", ["total_episodes=2", "exploration.unit=episode", "learning_starts=5000",
                                   "env.num_envs=1", "log.progress=off", "eval.final_episodes=2"], workdir)
    assert result.returncode == 0, result.stderr
    assert "before learning_starts (5,000): no gradient step happened" in result.stdout + result.stderr


def test_dqn_eval_bad_arguments(tmp_path: Path):
    for args, message in ([["episodes=0", "run=x"], "episodes=0 is out of range"],
                          [["checkpoint=middle", "run=x"], "run directory x does not exist"],
                          [["--episodes", "3"], "unexpected argument '--episodes'"]):
        result = run_cli("dqn-eval", args, tmp_path)
        assert result.returncode != 0 and message in result.stderr


def copy_of(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    return copy


def test_dqn_eval_without_a_video_encoder_says_so_before_playing(finished_run: Path, tmp_path: Path):
    run_dir = copy_of(finished_run, tmp_path)
    shutil.rmtree(run_dir / "videos", ignore_errors=True)  # another test's video
    before = sorted(run_dir.glob("eval_*.json"))
    result = run_cli("dqn-eval", [f"run={run_dir}", "video=true"], tmp_path,
                     extra_env={"IMAGEIO_FFMPEG_EXE": str(tmp_path / "no-ffmpeg")})
    assert result.returncode == 2 and "video=true needs an ffmpeg encoder" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "greedy episode" not in result.stdout
    assert not (run_dir / "videos").exists()
    assert sorted(run_dir.glob("eval_*.json")) == before


def test_dqn_eval_checks_the_run_dir_is_writable_before_playing(finished_run: Path, monkeypatch):
    from dqn_cli import evaluate_run as module
    from dqn_cli.errors import RunDirError

    def read_only(self, data):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "write_bytes", read_only)
    monkeypatch.setattr(module.TrainedAgent, "evaluate", lambda *a, **k: pytest.fail("played before checking"))
    with pytest.raises(RunDirError, match=f"cannot write eval results into {re.escape(str(finished_run))} "
                                          "\\(Permission denied\\)"):
        module.evaluate_run(finished_run)


def test_dqn_eval_refuses_a_checkpoint_of_another_env(finished_run: Path, tmp_path: Path):
    run_dir = copy_of(finished_run, tmp_path)
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "env_id": "Acrobot-v1"}))
    result = run_cli("dqn-eval", [f"run={run_dir}"], tmp_path)
    assert result.returncode == 2 and "was trained on CartPole-v1, but" in result.stderr
    assert "is a run of Acrobot-v1" in result.stderr


def test_dqn_eval_stopped_by_sigterm_writes_the_episodes_so_far(finished_run: Path, tmp_path: Path):
    run_dir = copy_of(finished_run, tmp_path)
    process = subprocess.Popen([str(Path(sys.executable).parent / "dqn-eval"), f"run={run_dir}", "episodes=1000000"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "greedy episode(s) of CartPole-v1" in process.stdout.readline()  # the episodes have started
    process.send_signal(signal.SIGTERM)
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 143 and "stopped by SIGTERM" in out
    report = json.loads((run_dir / "eval_best_episodes1000000.json").read_text())
    assert report["partial"] is True and report["episodes"] < 1000000


@pytest.mark.parametrize("arg, example", [("run=", "run=outputs/runs/<run-dir>"),
                                          ("checkpoint=", "checkpoint=best (or last, or a file)"),
                                          ("episodes= ", "episodes=10")])
def test_dqn_eval_empty_values_are_one_line_with_an_example_of_their_own(tmp_path: Path, arg, example):
    result = run_cli("dqn-eval", [arg], tmp_path)
    assert result.returncode == 2 and result.stderr.strip() == f"dqn-eval: error: {arg}: needs a value, e.g. {example}"
    from dqn_cli.cli import EVAL_ARG_EXAMPLES
    from dqn_cli.config import EvalArgs

    assert set(EVAL_ARG_EXAMPLES) == set(EvalArgs.__dataclass_fields__)  # every key has its own example


def job_dir(sweep: Path, override: str) -> Path:
    (match,) = [p for p in sweep.iterdir() if p.is_dir() and override in p.name.split(",")]
    return match


def test_sweep_writes_one_subdir_per_job_named_by_overrides(workdir: Path):
    result = run_cli("dqn-train", ["-m", "seed=0,1", *TINY], workdir)
    assert result.returncode == 0, result.stderr
    (sweep,) = (workdir / "outputs" / "sweeps").iterdir()
    jobs = [job_dir(sweep, "seed=0"), job_dir(sweep, "seed=1")]
    assert "total_steps=600" in jobs[0].name.split(",")  # every override names the job, fixed ones too
    summaries = [json.loads((job / "summary.json").read_text()) for job in jobs]
    assert [s["seed"] for s in summaries] == [0, 1]


def test_parallel_sweep_keeps_good_jobs_when_one_fails(workdir: Path):
    result = run_cli("dqn-train", ["-m", "gamma=0.9,1.5", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                                   *TINY], workdir)
    assert result.returncode != 0
    assert "1 sweep job(s) failed" in result.stderr
    (sweep,) = (workdir / "outputs" / "sweeps").iterdir()
    good, bad = job_dir(sweep, "gamma=0.9"), job_dir(sweep, "gamma=1.5")
    assert (good / "summary.json").is_file() and (good / "checkpoints" / "best.pt").is_file()
    assert "gamma=1.5 is out of range" in (bad / "error.txt").read_text()


def test_any_gymnasium_env_from_a_package_the_user_brings(workdir: Path, tmp_path: Path):
    package = tmp_path / "site"
    package.mkdir()
    (package / "my_corridor.py").write_text(
        "import gymnasium as gym, numpy as np\n"
        "class Corridor(gym.Env):\n"
        "    observation_space = gym.spaces.Box(0, 10, (1,), np.float32)\n"
        "    action_space = gym.spaces.Discrete(2)\n"
        "    def reset(self, *, seed=None, options=None):\n"
        "        super().reset(seed=seed); self.x = 0; return np.array([0.0], np.float32), {}\n"
        "    def step(self, action):\n"
        "        self.x += 1 if action == 1 else 0\n"
        "        return np.array([self.x], np.float32), float(action == 1), self.x >= 5, False, {}\n"
        "gym.register('Corridor-v0', entry_point=Corridor, max_episode_steps=20)\n")
    result = run_cli("dqn-train", ["env=gym", "env.id=Corridor-v0", "env.import_module=my_corridor", *TINY],
                     workdir, extra_env={"PYTHONPATH": str(package)})
    assert result.returncode == 0, result.stderr
    summary = json.loads((only_run_dir(workdir) / "summary.json").read_text())
    assert summary["env_id"] == "Corridor-v0" and summary["final_eval"]["best"]["mean"] >= 0
    assert "_corridor-v0_seed0_" in only_run_dir(workdir).name  # named after the env it trained


def test_unknown_import_module_is_one_line(workdir: Path):
    result = run_cli("dqn-train", ["env=gym", "env.id=X-v0", "env.import_module=no_such_pkg", *TINY], workdir)
    assert result.returncode != 0
    (line,) = result.stderr.strip().splitlines()
    assert line == ("dqn-train: error: env.import_module='no_such_pkg' cannot be imported (No module named "
                    "'no_such_pkg'); install the package that provides it in this environment")


def test_console_scripts_collect_garbage_again_once_the_run_starts(workdir: Path):
    """dqn-train starts with the garbage collector off (start-up's objects live until exit); the
    run itself must have it back on, with what start-up made frozen."""
    probe = ("import gc, sys\n"
             "import dqn_cli.run.train as core, dqn_cli.scripts as scripts\n"
             "train = core.train\n"
             "def train_and_report(*args, **kwargs):\n"
             "    print('collector on:', gc.isenabled(), '| frozen:', gc.get_freeze_count() > 0)\n"
             "    return train(*args, **kwargs)\n"
             "core.train = train_and_report\n"
             f"sys.argv = ['dqn-train', *{TINY!r}]\n"
             "scripts.train_main()\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "collector on: True | frozen: True" in result.stdout
