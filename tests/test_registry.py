"""The family registry: one list of families that the loader, the CLI, the app, bench and the tests read;
a new family needs its module, its recipe and one entry; no import cycles; two optimisers; torchrun."""

import ast
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import streamlit as st
import torch
from safetensors.torch import load_file
from streamlit.testing.v1 import AppTest

import genmodels
from genmodels import registry
from genmodels.checkpoint import list_checkpoints
from tests.toy_family import Toy, ToyConfig  # the toy model itself; registering its families is a fixture
from train.__main__ import main, parser, recipe
from train.loop import STATE_FILE

ROOT = Path(__file__).resolve().parent.parent
FIRST_PARTY = ("genmodels", "train", "app_pages", "bench", "streamlit_app")


def test_every_page_file_is_registered_and_every_registered_page_exists():
    files = {f"app_pages/{p.name}" for p in (ROOT / "app_pages").glob("*.py")} - {
        "app_pages/common.py", "app_pages/startup.py", "app_pages/__init__.py"}
    registered = registry.page_paths()
    assert registered[0] == "app_pages/home.py"  # the model zoo first: the app's home page
    assert len(registered) == len(set(registered))
    assert files == set(registered), "a page file is missing from genmodels/registry.py, or a listed page is gone"


def test_each_family_names_its_model_and_a_complete_recipe():
    for name, family in registry.FAMILIES.items():
        cls = family.model_class()
        assert cls.config_class().family == name
        module = recipe(family)
        for hook in ("add_arguments", "build", "evaluate"):
            assert callable(getattr(module, hook)), (name, hook)
        assert callable(getattr(module, "loss", None)) or callable(getattr(module, "train_step", None)), name
        if family.bench:
            path, _, function = family.bench.partition(":")
            __import__(path)
            assert callable(getattr(sys.modules[path], function))


def test_the_model_zoo_links_each_shipped_checkpoint_to_the_page_that_explains_it():
    expected = {  # what the hand-written if-chain of the app said before the registry
        "vae-gaussian-2d": "app_pages/vae_priors.py", "vae-mog-32d": "app_pages/vae_priors.py",
        "vae-fashion-16d": "app_pages/vae_priors.py", "beta-vae-conv-beta1": "app_pages/vae_beta.py",
        "beta-vae-conv-beta4": "app_pages/vae_beta.py", "cvae-conv-mnist": "app_pages/vae_conditional.py",
        "ddpm-linear": "app_pages/ddpm.py", "mnist-classifier": None,
    }
    found = {Path(loc).name: cfg for loc, cfg in list_checkpoints(ROOT / "checkpoints")}
    for name, page in expected.items():
        assert registry.page_for(found[name]) == page, name
    for name, config in found.items():  # every page link goes to a page that can show the checkpoint
        page = registry.page_for(config)
        if page:
            assert registry.page(page)[1].accepts(config), name


def imports_of(path: Path) -> set[str]:
    """First-party modules a file imports, anywhere in it (inside functions too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        else:
            continue
        found |= {n for n in names if n.split(".")[0] in FIRST_PARTY}
    return found


def test_no_import_cycles():
    modules = {}
    for path in [ROOT / "streamlit_app.py", *(p for d in FIRST_PARTY[:-1] for p in (ROOT / d).glob("*.py"))]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        modules[name] = path
    graph = {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}
    assert "genmodels.vae" not in graph["genmodels.latent"]  # analysis does not import a model
    assert not any(m.startswith("genmodels.") and m != "genmodels.checkpoint" for m in graph["genmodels.checkpoint"])

    def cycle_from(start, path, seen):
        for nxt in graph[start]:
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in seen:
                seen.add(nxt)
                found = cycle_from(nxt, path + [nxt], seen)
                if found:
                    return found
        return None

    for name in graph:
        cycle = cycle_from(name, [name], set())
        assert cycle is None, " -> ".join(cycle)


@pytest.fixture
def toy_families():
    """The toy families of tests/toy_family.py registered, and the registry restored afterwards."""
    from tests.toy_family import register_toy_families

    saved = dict(registry.FAMILIES)
    register_toy_families()
    yield
    registry.FAMILIES.clear()
    registry.FAMILIES.update(saved)


SMALL = ["--subset", "256", "--batch-size", "32", "--quiet", "--device", "cpu"]


def test_a_new_family_needs_only_its_module_recipe_and_entry(toy_families, tmp_path):
    """The toy family appears in the CLI, trains with two optimisers, loads, and shows in the app."""
    choices = parser()._subparsers._group_actions[0].choices
    assert {"toy", "toy-pair"} <= set(choices) and {"vae", "ddpm"} <= set(choices)
    out = tmp_path / "toys" / "pair"
    assert main(["toy-pair", "--epochs", "2", "--lr", "0.01", "--out", str(out), *SMALL]) == 0
    model = genmodels.load(out)
    assert type(model).__name__ == "Toy" and model.config.family == "toy-pair"
    training = model.metrics["training"]
    assert training["optimizers"] == {
        "encoder": {"type": "Adam", "lr": 0.01, "betas": [0.9, 0.999], "eps": 1e-08, "weight_decay": 0.0},
        "decoder": {"type": "Adam", "lr": 0.005, "betas": [0.5, 0.999], "eps": 1e-08, "weight_decay": 0.0}}
    assert training["val_size"] == 25 and training["monitored_on"] == "validation"
    curves = model.metrics["curves"]
    assert curves["train_loss"][1] < curves["train_loss"][0] and curves["val_mse"][1] < curves["val_mse"][0]
    assert len(curves["train_encoder_loss"]) == 2 and len(curves["step_encoder_loss"]) == len(curves["step"])
    assert set(model.metrics["eval"]) == {"test_mse"}
    assert main(["toy", "--epochs", "1", "--out", str(tmp_path / "toys" / "plain"), *SMALL]) == 0

    st.cache_data.clear()
    st.cache_resource.clear()
    assert "tests/toy_page.py" in [page.path for _, page in registry.pages()]
    at = AppTest.from_file(str(ROOT / "streamlit_app.py"), default_timeout=120)
    at.session_state["source_kind"] = "Local folder"
    at.session_state["source_folder"] = str(tmp_path / "toys")
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    cards, links = [], []
    for label in ("Toys (1)", "toy-pair (1)"):  # the zoo's tabs: a family's menu heading, or its name
        at.session_state["zoo_tab"] = label
        at.run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        cards += [m.value for m in at.markdown if m.value in ("**plain**", "**pair**")]
        links += at.get("page_link")
    assert cards == ["**plain**", "**pair**"]
    assert len(links) == 1  # the toy family's page explains "plain" (family toy), not "pair"
    at.switch_page("tests/toy_page.py").run()
    assert not at.exception and not at.error
    assert at.selectbox(key="checkpoint_toy").options == ["plain"]
    at.session_state["model_card"] = at.session_state["show_code"] = True  # the shared panels, opened
    at.run()
    assert not at.exception and not at.error
    assert any("field" in t.value for t in at.table) and any("def loss" in c.value for c in at.code)


def test_two_optimiser_family_resumes_bit_for_bit(toy_families, tmp_path):
    args = ["toy-pair", "--k", "3", *SMALL]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = load_file(tmp_path / "a" / STATE_FILE), load_file(tmp_path / "b" / STATE_FILE)
    assert a.keys() == b.keys()
    assert any(k.startswith("optim.encoder.") for k in a) and any(k.startswith("optim.decoder.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    curves = [json.loads((tmp_path / run / "metrics.json").read_text())["curves"] for run in "ab"]
    assert curves[0] == curves[1]


def torchrun(processes: int, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
         str(ROOT / "tests" / "ddp_entry.py"), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("family", ["toy", "toy-pair"])
def test_two_processes_give_the_weights_of_one_with_the_same_effective_batch(toy_families, tmp_path, monkeypatch,
                                                                             family):
    """torchrun on gloo: 2 processes x batch 32 against 1 process x batch 64 (run here, as torchrun would start
    it: a process group of one), three steps."""
    common = [family, "--epochs", "1", "--subset", "192", "--val-size", "0", "--lr", "0.01", "--quiet",
              "--device", "cpu"]
    torchrun(2, *common, "--batch-size", "32", "--out", str(tmp_path / "two"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    for name, value in {"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
                        "MASTER_PORT": str(port)}.items():
        monkeypatch.setenv(name, value)
    assert main([*common, "--batch-size", "64", "--out", str(tmp_path / "one")]) == 0
    assert not torch.distributed.is_initialized()  # the loop leaves the process group
    two, one = load_file(tmp_path / "two" / "model.safetensors"), load_file(tmp_path / "one" / "model.safetensors")
    torch.manual_seed(0)
    start = Toy(ToyConfig(family=family)).state_dict()  # what build() makes from seed 0
    for key in one:
        assert (one[key] - start[key]).abs().max() > 1e-3, key  # training moved the weights
        assert torch.allclose(two[key], one[key], rtol=1e-5, atol=1e-6), key
    metrics = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert metrics["steps"] == 3 and metrics["training"]["world_size"] == 2
    assert metrics["training"]["effective_batch_size"] == 64
    assert metrics["command"].startswith("torchrun --nproc_per_node 2 -m train " + family)
