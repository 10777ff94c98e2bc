"""The app as a public demo (issue 13): hosted mode's limits, and what a visitor can type into the sidebar.

Hosted mode is switched on by patching ``app_pages.common.HOSTING`` (the server reads it from the environment
once: ``GENMODELS_HOSTED=1``); the Hub is a pre-populated offline cache, as in the checkpoint tests, and the Hub's
file list a stand-in for ``HfApi.model_info``.
"""

import contextlib
import ctypes
import json
import os
import shutil
import sys
import time
from types import SimpleNamespace

import pytest
import streamlit as st
from huggingface_hub import HfApi, constants
from safetensors.torch import load_file, save_file
from test_app import SHIPPED, assert_clean, fresh_caches, start  # noqa: F401 (fresh_caches: an autouse fixture)
from test_checkpoint import populate_hub_cache

from app_pages import common
from app_pages.common import Hosting


@pytest.fixture
def hosted(monkeypatch):
    """Hosted mode with no local root, no owner list; returns a function to change the settings."""
    def configure(**settings) -> Hosting:
        hosting = Hosting(hosted=True, **settings)
        monkeypatch.setattr(common, "HOSTING", hosting)
        return hosting
    configure()
    yield configure
    st.set_option("client.showErrorDetails", "full")  # a server-wide option: put it back for the other tests
    # The hosted malloc policy (a fixed 256 KB mmap threshold) would slow every later test in this process down
    # by a third: give large allocations back to the heap, as glibc's own policy does once it has adapted.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6").mallopt(-3, 32 * 1024 * 1024)  # M_MMAP_THRESHOLD at glibc's dynamic maximum


def test_the_projects_streamlit_settings():
    """.streamlit/config.toml, as every ``streamlit run`` in this folder (and the Docker image) reads it: names
    Streamlit knows (an unknown one is only a warning in the server's log), no usage statistics, no Deploy button,
    and no source-file watcher, whose walk over every imported module costs each new visitor's first run about
    1 s of the server's CPU here (``python -m bench --only first-views``)."""
    import tomllib  # Python 3.11 on, as Streamlit's own config reader

    settings = tomllib.loads((SHIPPED.parent / ".streamlit" / "config.toml").read_text())
    options = {f"{section}.{name}": value for section, names in settings.items() for name, value in names.items()}
    for name in options:
        st.get_option(name)  # raises for an option Streamlit does not have
    assert options == {"browser.gatherUsageStats": False, "client.toolbarMode": "minimal",
                       "global.disableWidgetStateDuplicationWarning": True, "server.fileWatcherType": "none"}


def test_hosted_mode_is_read_from_the_environment(tmp_path):
    assert Hosting.from_environment({}) == Hosting()
    hosting = Hosting.from_environment({"GENMODELS_HOSTED": "1", "GENMODELS_LOCAL_ROOT": str(tmp_path),
                                        "GENMODELS_HUB_OWNERS": "teacher, genmodels", "GENMODELS_HUB_CACHE_MB": "50"})
    assert hosting == Hosting(True, tmp_path.resolve(), ("teacher", "genmodels"), 50 * 1024 * 1024)
    assert not Hosting.from_environment({"GENMODELS_HOSTED": "no"}).hosted


def test_hosted_without_a_local_root_offers_no_local_folder_and_hides_error_details(hosted):
    app = start()
    assert_clean(app)
    assert common.source_kinds() == ("Shipped checkpoints", "Hugging Face Hub")
    assert st.get_option("client.showErrorDetails") == "none"
    app = start("Local folder", "/etc")  # a forged choice of a source the sidebar does not offer
    assert_clean(app)
    assert app.session_state["source"].kind == "Shipped checkpoints"


def test_hosted_local_root_answers_the_same_for_every_path_outside_it(hosted, saved_vae, tmp_path):
    root = tmp_path / "offered"
    shutil.copytree(saved_vae[1], root / "vae")
    (root / "escape").symlink_to("/etc")
    hosted(local_root=root.resolve())
    app = start("Local folder", "")  # empty: the whole offered folder
    assert_clean(app)
    app = start("Local folder", "vae", page="app_pages/vae_priors.py")
    assert_clean(app)
    answers = set()
    for probe in ("/etc", "/root/.ssh", "..", "../..", "escape", "escape/passwd", "vae/../../x", "/nonexistent",
                  "/etc/passwd", "/proc/self/environ"):
        app = start("Local folder", probe)
        assert not app.exception, probe
        text = app.error[0].value
        assert str(tmp_path) not in text and "/root" not in text.replace(f"'{probe}'", ""), text
        answers.add(text)
    assert len(answers) == 1, answers  # existing or not, a directory or a file: one answer, which repeats nothing
    for inside in ("missing", "~"):  # inside the offered folder: said so, relative to it
        app = start("Local folder", inside)
        assert f"no folder '{common.md(inside)}'" in app.error[0].value and str(root) not in app.error[0].value
    app = start("Local folder", "x" * 300)
    assert not app.exception and "cannot read the folder" in app.error[0].value


def test_hosted_errors_name_no_server_path(hosted, tmp_path):
    root = tmp_path / "offered"
    shutil.copytree(SHIPPED / "vae-gaussian-2d", root / "bad")
    (root / "bad" / "model.safetensors").write_bytes(b"\0" * 100)
    hosted(local_root=root.resolve())
    app = start("Local folder", "bad", page="app_pages/vae_priors.py")
    assert not app.exception
    text = app.error[0].value
    assert "not a readable safetensors file" in text and "bad/model.safetensors" in text
    assert str(tmp_path) not in text
    assert common.public(f"'{constants.HF_HUB_CACHE}/models--a--b/snapshots/c/config.json'") == "'config.json'"


def test_unreadable_or_impossible_local_paths_are_said_not_raised(monkeypatch, tmp_path):
    app = start("Local folder", "/tmp/" + "x" * 300)  # ENAMETOOLONG: not an uncaught OSError
    assert not app.exception and "cannot read the folder" in app.error[0].value

    def refuse(root):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(common, "list_checkpoints", refuse)  # as a non-root server user reading /root
    app = start("Local folder", str(tmp_path))
    assert not app.exception and "Permission denied" in app.error[0].value


@pytest.fixture
def hub_cache(saved_vae, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    populate_hub_cache(cache, "teacher/vae-mog", saved_vae[1], "a" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    return cache


def test_hosted_hub_owners(hosted, hub_cache):
    hosted(hub_owners=("teacher",))
    app = start("Hugging Face Hub", "teacher/vae-mog", page="app_pages/vae_priors.py")
    assert_clean(app)
    app = start("Hugging Face Hub", "stranger/model", page="app_pages/vae_priors.py")
    assert not app.exception and "loads Hub repos of teacher only" in app.error[0].value


def fake_file_list(monkeypatch, sizes: dict[str, int]) -> list:
    calls = []

    def model_info(self, repo_id, revision=None, files_metadata=False, **kwargs):
        calls.append((repo_id, revision, files_metadata))
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=n, size=s) for n, s in sizes.items()])
    monkeypatch.setattr(HfApi, "model_info", model_info)
    monkeypatch.setattr(common, "hub_online", lambda: True)
    return calls


@pytest.mark.parametrize("sizes, refused", [
    ({"model.safetensors": 300 * 1024**2, "config.json": 300}, "model.safetensors (314.6 MB, at most 21.0)"),
    ({"model.safetensors": 10**6, "config.json": 10**7}, "config.json (10.0 MB, at most 0.1)"),
    ({"model.safetensors": 10**6, "huge.bin": 2 * 10**8}, "the repo in all (201 MB, at most 105)"),
])
def test_hosted_hub_repos_are_size_checked_before_any_download(hosted, monkeypatch, tmp_path, sizes, refused):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty"))
    calls = fake_file_list(monkeypatch, sizes)
    app = start("Hugging Face Hub", "someone/big", page="app_pages/vae_priors.py")
    assert not app.exception and refused in app.error[0].value, app.error[0].value
    assert calls == [("someone/big", None, True)] and not (tmp_path / "empty").exists()  # nothing downloaded


def test_a_small_hub_repo_passes_the_size_check(hosted, hub_cache, monkeypatch):
    fake_file_list(monkeypatch, {"model.safetensors": 10**5, "config.json": 300, "metrics.json": 200})
    app = start("Hugging Face Hub", "teacher/vae-mog", page="app_pages/vae_priors.py")
    assert_clean(app)


def test_the_hub_download_cache_is_bounded(hosted, saved_vae, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    for i, name in enumerate(("old", "middle", "new")):
        populate_hub_cache(cache, f"teacher/{name}", saved_vae[1], str(i) * 40)
        for f in (cache / f"models--teacher--{name}").rglob("*"):
            os.utime(f, (time.time() - 1000 * (3 - i),) * 2)  # old was used longest ago
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    one_repo = sum(f.stat().st_size for f in (cache / "models--teacher--old").rglob("*") if f.is_file())
    hosted(hub_cache_bytes=int(1.5 * one_repo))
    common.trim_hub_cache(keep="teacher/old")
    assert sorted(p.name for p in cache.iterdir()) == ["models--teacher--old"]  # kept: the one just loaded
    hosted(hub_cache_bytes=10 * one_repo)
    populate_hub_cache(cache, "teacher/new", saved_vae[1], "9" * 40)
    common.trim_hub_cache(keep="teacher/new")
    assert len(list(cache.iterdir())) == 2  # under the bound: nothing removed


def test_the_model_cache_follows_the_revision_and_the_weights(saved_vae, hub_cache):
    """One key for a loaded model: a Hub revision gets its own weights, a branch that moves is followed, a folder
    retrained in place is loaded again."""
    _, folder = saved_vae
    changed = hub_cache / "changed"
    shutil.copytree(folder, changed)
    state = load_file(changed / "model.safetensors")
    state = {k: v + 1 for k, v in state.items()}
    save_file(state, changed / "model.safetensors")
    populate_hub_cache(hub_cache, "teacher/vae-mog", changed, "b" * 40, ref="v2")
    main, v2 = common.load_model("teacher/vae-mog"), common.load_model("teacher/vae-mog", "v2")
    assert main.fingerprint != v2.fingerprint and common.model_key(main) != common.model_key(v2)
    (hub_cache / "models--teacher--vae-mog" / "refs" / "main").write_text("b" * 40)  # main moves to v2's commit
    common._hub_weights.clear()  # what a minute's wait does
    assert common.load_model("teacher/vae-mog").fingerprint == v2.fingerprint
    local = common.load_model(str(folder.resolve()))
    save_file(state, folder / "model.safetensors")  # retrained in place
    again = common.load_model(str(folder.resolve()))
    assert again is not local and again.fingerprint == v2.fingerprint


def test_hostile_checkpoints_through_the_pages(tmp_path):
    """Each page says what is wrong, in an error box or a warning, and shows no traceback."""
    good = SHIPPED / "vae-gaussian-2d"
    cases = {"huge": lambda f: (f / "config.json").write_text(json.dumps(
                 {**json.loads((good / "config.json").read_text()), "hidden_dim": 10**6})),
             "nan": lambda f: save_file({k: v.float().fill_(float("nan")) for k, v in
                                         load_file(good / "model.safetensors").items()}, f / "model.safetensors"),
             "nested": lambda f: (f / "config.json").write_text("[" * 20_000 + "]" * 20_000)}
    for name, damage in cases.items():
        shutil.copytree(good, tmp_path / name)
        damage(tmp_path / name)
        app = start("Local folder", str(tmp_path / name), page="app_pages/vae_latent.py")
        assert not app.exception, (name, app.exception)
        assert app.error, name
    folder = tmp_path / "list-metrics"
    shutil.copytree(good, folder)
    (folder / "metrics.json").write_text("[1, 2]")
    app = start("Local folder", str(folder), page="app_pages/vae_latent.py")
    assert not app.exception and not app.error
    assert "metrics.json" in app.warning[0].value and app.get("plotly_chart")
    app = start("Local folder", str(folder))  # the zoo's card says it too
    assert not app.exception and "metrics.json" in app.warning[0].value


def test_markdown_from_checkpoints_is_escaped(tmp_path, saved_vae):
    folder = tmp_path / "[click](https:__evil.example) ![img](x)"
    shutil.copytree(saved_vae[1], folder)
    metrics = json.loads((folder / "metrics.json").read_text())
    (folder / "metrics.json").write_text(json.dumps({**metrics, "device": "<img src=x> [a](b)", "commit": "`x`"}))
    app = start("Local folder", str(tmp_path))
    assert_clean(app)
    card = next(m.value for m in app.markdown if "click" in m.value)
    assert "\\[click\\]" in card and "!\\[img\\]" in card
    app.switch_page("app_pages/vae_priors.py").run()
    app.session_state["model_card"] = True  # opened: the card is built only then
    app.run()
    reproduce = next(m.value for m in app.markdown if m.value.startswith("Reproduce"))
    assert "\\<img src=x\\> \\[a\\](b)" in reproduce and "`x`" in reproduce and "``" not in reproduce




# --- the compute budget: shared runs, a queue, a stop button, caps when hosted ---------------------------------
def wait_until(condition, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert condition()


def test_visitors_asking_for_the_same_in_run_computation_share_one(monkeypatch):
    import threading

    calls = []

    def compute(callback):
        calls.append(1)
        time.sleep(0.5)
        callback(1, 1)
        return "result"

    results = []
    threads = [threading.Thread(target=lambda: results.append(common.compute_slow(("same",), compute, "x")))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == ["result"] * 4 and len(calls) == 1  # six visitors, one computation


def test_background_runs_queue_for_a_slot_and_can_be_stopped(monkeypatch):
    import threading

    monkeypatch.setattr(common, "_JOB_SLOTS", threading.BoundedSemaphore(1))
    release = threading.Event()

    def slow(callback):
        for i in range(1000):
            if release.is_set():
                return "done"
            callback(i, 1000)
            time.sleep(0.01)
        return "timed out"

    first = common.start_job(("first",), slow)
    wait_until(lambda: first.running)
    second = common.start_job(("second",), lambda callback: "second done")
    time.sleep(0.3)
    assert not second.running and common.slow_result(("second",)) is None  # waiting for the one slot
    assert common.start_job(("first",), slow) is first  # a visitor asking for the same joins the run
    first.stop = True  # the Stop button of the visitor who started it
    wait_until(lambda: first.error is not None)
    assert first.error == "it was stopped" and common.slow_result(("first",)) is None
    wait_until(lambda: common.slow_result(("second",)) == "second done")  # the slot went to the next in line
    release.set()


def test_a_page_slot_is_given_back_whatever_stops_the_run():
    """Streamlit stops a script run by raising inside any st call, the waiting spinner's exit included: a slot
    taken while waiting must come back (three leaked slots once stalled a ten-visitor load test for an hour)."""
    import contextlib
    import threading

    slots = threading.BoundedSemaphore(1)
    stopped = RuntimeError("StopException")

    @contextlib.contextmanager
    def spinner_stopped_on_exit():
        yield
        raise stopped  # the visitor clicked elsewhere while waiting for a turn

    entered, raised = [], []

    def second_visitor():
        try:
            with common.one_of(slots, spinner_stopped_on_exit):
                entered.append("second")  # never: stopped as its wait ended
        except RuntimeError as err:
            raised.append(err)

    with common.one_of(slots, spinner_stopped_on_exit):  # a slot is free: no waiting, no spinner
        entered.append("first")
        waiter = threading.Thread(target=second_visitor)
        waiter.start()
        time.sleep(0.2)
        assert waiter.is_alive()  # waiting for the one slot
    waiter.join(5)
    assert not waiter.is_alive() and entered == ["first"] and raised == [stopped]
    assert slots.acquire(timeout=1)  # the waiter took the slot, was stopped, and gave it back
    slots.release()
    with pytest.raises(ValueError):  # a page that fails gives its slot back too
        with common.one_of(slots, contextlib.nullcontext):
            raise ValueError
    assert slots.acquire(blocking=False)


def test_pages_take_turns_only_when_hosted(hosted, monkeypatch):
    import threading

    slots = threading.BoundedSemaphore(1)
    monkeypatch.setattr(common, "_PAGE_SLOTS", slots)
    for is_hosted in (True, False):
        if not is_hosted:
            monkeypatch.setattr(common, "HOSTING", Hosting())
        with common.page_turn():
            assert common._COMPUTING == 1  # counted for the thread policy either way
            took_the_slot = not slots.acquire(blocking=False)
            if not took_the_slot:
                slots.release()
        assert took_the_slot == is_hosted
        assert slots.acquire(blocking=False)  # given back after the run
        slots.release()


def test_the_stop_button_on_a_page(scratch_models, monkeypatch):
    """The visitor who started a run sees its progress and a Stop button; stopping it says so on the page."""
    import threading

    slots = threading.BoundedSemaphore(1)
    slots.acquire()  # the one slot is busy: the run waits, so the test can click Stop in time
    monkeypatch.setattr(common, "_JOB_SLOTS", slots)
    app = start("Local folder", str(scratch_models), page="app_pages/ddpm.py")
    app.radio(key="ddpm_sampler").set_value(app.radio(key="ddpm_sampler").options[-1]).run()
    next(b for b in app.button if b.label.startswith("Run the exact sampler")).click().run()
    assert any("waiting for a free slot" in p.proto.text for p in app.get("progress"))
    next(b for b in app.button if b.label == "Stop this run").click().run()
    slots.release()
    wait_until(lambda: all(job.error for job in common._JOBS.values()))
    app.run()
    assert not app.exception and "The last run ended early: it was stopped" in app.error[0].value


def test_hosted_caps_say_what_is_capped_and_how_to_lift_it(hosted, scratch_models):
    assert not common.refused_when_hosted(10, 100, "samples")
    hosted(local_root=scratch_models.resolve())
    app = start("Local folder", "", page="app_pages/vae_priors.py")
    app.session_state["priors_tab"] = "Test log-likelihood"
    app.run()
    app.select_slider(key="iwae_k").set_value(500).run()
    app.select_slider(key="n_eval").set_value(2000).run()
    assert not app.exception
    capped = [i.value for i in app.info if "This hosted demo caps" in i.value]
    assert capped and "nothing is capped" in capped[0] and not any(b.label.startswith("Compute") for b in app.button)


def test_a_hostile_hub_repo_through_the_pages(hub_cache, saved_vae, tmp_path):
    """From the (offline) Hub cache as from a folder: NaN weights are refused on the page, a metrics file of the
    wrong shape is left out with a warning."""
    bad = tmp_path / "bad"
    shutil.copytree(saved_vae[1], bad)
    save_file({k: v.float().fill_(float("nan")) for k, v in load_file(bad / "model.safetensors").items()},
              bad / "model.safetensors")
    populate_hub_cache(hub_cache, "teacher/nan", bad, "c" * 40)
    app = start("Hugging Face Hub", "teacher/nan", page="app_pages/vae_priors.py")
    assert not app.exception and "NaN or infinite weights" in app.error[0].value
    shutil.copy(saved_vae[1] / "model.safetensors", bad / "model.safetensors")
    (bad / "metrics.json").write_text('{"curves": {"epoch": [1, 2], "val_elbo": [1]}}')
    populate_hub_cache(hub_cache, "teacher/odd-metrics", bad, "d" * 40)
    app = start("Hugging Face Hub", "teacher/odd-metrics", page="app_pages/vae_priors.py")
    assert not app.exception and not app.error
    assert "curves.val\\_elbo has 1 values, but curves.epoch has 2" in app.warning[0].value
