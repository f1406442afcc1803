"""fedlora.flower without Ray: FedloraStrategy.start() on an in-process Grid (2 clients, 2 rounds,
numpy "training"), its aggregate against `fedlora merge` of the same client adapters, its
metrics, malformed replies, fedex's base update and the refused rules."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional

import pytest

flwr = pytest.importorskip("flwr", reason="fedlora.flower needs flwr (pip install flwr)")
np = pytest.importorskip("numpy")
pytest.importorskip("safetensors")

from flwr.app import Array, ArrayRecord, Message, MetricRecord, RecordDict  # noqa: E402
from flwr.serverapp import Grid  # noqa: E402
from flwr.serverapp.exception import InconsistentMessageReplies  # noqa: E402
from flwr.serverapp.strategy import FedAvg  # noqa: E402
from safetensors.numpy import load_file, save_file  # noqa: E402

import fedlora  # noqa: E402
from fedlora.flower import BASE_SUFFIX, FedloraStrategy  # noqa: E402

R, ALPHA = 4, 8  # scale 2: fedlora's folded output differs from the clients' by exactly 2
CONFIG = {"peft_type": "LORA", "r": R, "lora_alpha": ALPHA, "target_modules": ["q_proj", "v_proj"], "use_rslora": False}
MODULES = {  # module -> (d, k)
    "base_model.model.model.layers.0.self_attn.q_proj": (16, 12),
    "base_model.model.model.layers.0.self_attn.v_proj": (8, 12),
}
SAMPLES = {1: 30, 2: 90}

Client = Callable[[int, int, Dict[str, np.ndarray]], Dict[str, np.ndarray]]


def initial(base: bool = False) -> Dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    state: Dict[str, np.ndarray] = {}
    for module, (d, k) in MODULES.items():
        state[f"{module}.lora_A.weight"] = rng.standard_normal((R, k)).astype(np.float32) / 4
        state[f"{module}.lora_B.weight"] = np.zeros((d, R), np.float32)
        if base:
            state[f"{module}{BASE_SUFFIX}"] = rng.standard_normal((d, k)).astype(np.float32)
    state["classifier.weight"] = rng.standard_normal((3, 12)).astype(np.float32)
    return state


def train(node: int, server_round: int, state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """A client's 'local training': its own deterministic step on every trainable entry."""
    rng = np.random.default_rng(100 * node + server_round)
    return {
        key: (value + rng.standard_normal(value.shape).astype(np.float32) * 0.1).astype(np.float32)
        for key, value in state.items()
        if not key.endswith(BASE_SUFFIX)
    }


class InProcessGrid(Grid):
    """A Grid whose nodes are functions called in this process; it keeps every round's replies."""

    def __init__(self, clients: Dict[int, Client]) -> None:
        try:  # flwr >= 1.3x: what its ServerApp runtime sets before a strategy creates messages
            from flwr.supercore.task_identity import TaskIdentity

            TaskIdentity.task_id, TaskIdentity.run_id, TaskIdentity.node_id = 1, 1, 1
        except ImportError:  # older flwr: messages need no task identity
            pass
        self.clients = clients
        self.replies: List[List[Message]] = []
        self._round = 0

    def set_run(self, run) -> None:  # type: ignore[no-untyped-def]
        pass

    @property
    def run(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def create_message(self, content, message_type, dst_node_id, group_id, ttl=None) -> Message:  # type: ignore[no-untyped-def]
        return Message(content, dst_node_id=dst_node_id, message_type=message_type, group_id=group_id)

    def get_node_ids(self) -> Iterable[int]:
        return list(self.clients)

    def push_messages(self, messages: Iterable[Message]) -> Iterable[str]:
        raise NotImplementedError

    def pull_messages(self, message_ids: Iterable[str]) -> Iterable[Message]:
        raise NotImplementedError

    def send_and_receive(self, messages: Iterable[Message], *, timeout: Optional[float] = None) -> Iterable[Message]:
        replies = []
        for message in sorted(messages, key=lambda m: m.metadata.dst_node_id):
            if message.metadata.message_type != "train":
                continue
            node = message.metadata.dst_node_id
            server_round = int(message.content["config"]["server-round"])
            state = {k: v.numpy() for k, v in message.content["arrays"].items()}
            arrays = ArrayRecord({k: Array(v) for k, v in self.clients[node](node, server_round, state).items()})
            metrics = MetricRecord({"num-examples": SAMPLES.get(node, 50), "train-loss": float(node)})
            replies.append(Message(RecordDict({"arrays": arrays, "metrics": metrics}), reply_to=message))
        if replies:
            self.replies.append(replies)
        return replies


def write_clients(folder: Path, replies: List[Message]) -> List[str]:
    paths = []
    for index, reply in enumerate(replies):
        client = folder / f"client_{index}"
        client.mkdir(parents=True)
        state = {k: v.numpy() for k, v in reply.content["arrays"].items() if ".lora_" in k}
        save_file(state, str(client / "adapter_model.safetensors"), metadata={"format": "pt"})
        (client / "adapter_config.json").write_text(json.dumps(CONFIG))
        paths.append(str(client))
    return paths


def cli_merge(folder: Path, replies: List[Message], *arguments: str) -> Dict[str, np.ndarray]:
    """`fedlora merge` of the replies' adapters as files, weighted by their num-examples."""
    clients = write_clients(folder, replies)
    samples = ",".join(str(int(r.content["metrics"]["num-examples"])) for r in replies)
    fedlora.cli(["merge", *clients, "-o", str(folder / "merged"), "--samples", samples, "--quiet", *arguments])
    return load_file(str(folder / "merged" / "adapter_model.safetensors"))


def run(method: str, rounds: int = 2, clients: Optional[Dict[int, Client]] = None, **options) -> tuple:  # type: ignore[no-untyped-def]
    grid = InProcessGrid(clients or {1: train, 2: train})
    strategy = FedloraStrategy(CONFIG, method=method, fraction_evaluate=0.0, **options)
    result = strategy.start(grid=grid, initial_arrays=ArrayRecord({k: Array(v) for k, v in initial(method == "fedex").items()}), num_rounds=rounds)
    return strategy, grid, result


@pytest.mark.parametrize("method, extra, factor", [
    ("fedavg", [], 1.0),  # one shared config: kept, no rescale
    ("flora-na", [], 0.5),  # folded (lora_alpha = r): B / 2 under the clients' scale 2
    ("svd", ["--rank", str(R)], 0.5),
])  # fmt: skip
def test_aggregate_is_fedlora_merge(tmp_path: Path, method: str, extra: List[str], factor: float) -> None:
    strategy, grid, result = run(method)
    assert len(grid.replies) == 2 and set(result.train_metrics_clientapp) == {1, 2}
    final = result.arrays
    expected = cli_merge(tmp_path, grid.replies[-1], "--method", method, *extra)
    for key, value in expected.items():
        got = final[key].numpy()
        assert got.dtype == value.dtype and got.shape == value.shape
        if key.endswith("lora_B.weight") and factor != 1.0:
            # Exact: a multiplication by a power of two. Undone, the bytes are fedlora's.
            assert np.array_equal(got / np.float32(factor), value)
            assert (got / np.float32(factor)).tobytes() == value.tobytes()
        else:
            assert got.tobytes() == value.tobytes(), key
    # The head: Flower's own FedAvg of the same replies, bit for bit.
    flower, _ = FedAvg().aggregate_train(2, grid.replies[-1])
    assert final["classifier.weight"].numpy().tobytes() == flower["classifier.weight"].numpy().tobytes()


def test_metrics(tmp_path: Path) -> None:
    strategy, _, result = run("flora-na")
    for server_round in (1, 2):
        metrics = result.train_metrics_clientapp[server_round]
        for key in ("fedlora-error", "fedlora-floor", "fedlora-fedavg-error", "fedlora-merge-seconds",
                    "fedlora-aggregate-seconds", "fedlora-bytes-in", "fedlora-bytes-out", "train-loss"):  # fmt: skip
            assert key in metrics, key
        assert metrics["fedlora-floor"] <= metrics["fedlora-error"] * (1 + 1e-9) + 1e-12
        assert metrics["fedlora-error"] <= metrics["fedlora-fedavg-error"] * (1 + 1e-9) + 1e-12
        assert metrics["fedlora-excluded"] == 0 and metrics["fedlora-replies"] == 2
        assert len(metrics["fedlora-layer-errors"]) == len(MODULES)
    assert strategy.last_result is not None and strategy.last_result.method == "flora-na"


def bad_client(kind: str) -> Client:
    def client(node: int, server_round: int, state: Dict[str, np.ndarray]) -> Dict[str, np.ndarray]:
        out = train(node, server_round, state)
        first = next(iter(MODULES))
        if kind == "nan":
            out[f"{first}.lora_A.weight"][0, 0] = np.nan
        elif kind == "extra":
            out["model.norm.weight"] = np.ones(4, np.float32)
        elif kind == "missing":
            del out[f"{first}.lora_B.weight"]
        elif kind == "rank":
            out[f"{first}.lora_A.weight"] = np.zeros((R + 2, 12), np.float32)
        return out

    return client


@pytest.mark.parametrize("kind", ["nan", "extra", "missing", "rank"])
def test_malformed_reply_is_excluded(tmp_path: Path, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """on_invalid='exclude' (default): the round is the two good clients' merge, the reply logged."""
    _, grid, result = run("flora-na", rounds=1, clients={1: train, 2: train, 3: bad_client(kind)})
    metrics = result.train_metrics_clientapp[1]
    assert metrics["fedlora-excluded"] == 1 and metrics["fedlora-replies"] == 3
    good = [r for r in grid.replies[0] if r.metadata.src_node_id != 3]
    expected = cli_merge(tmp_path, good, "--method", "flora-na")
    for key, value in expected.items():
        scale = np.float32(0.5) if key.endswith("lora_B.weight") else np.float32(1)
        assert (result.arrays[key].numpy() / scale).tobytes() == value.tobytes()


def test_malformed_reply_fails_the_round() -> None:
    with pytest.raises(InconsistentMessageReplies, match="node 3.*non-finite"):
        run("fedavg", rounds=1, clients={1: train, 2: train, 3: bad_client("nan")}, on_invalid="fail")


def test_fedex_delivers_base_plus_adapter_equal_to_ideal_update() -> None:
    _, grid, result = run("fedex", rounds=1)
    sent = initial(base=True)
    replies = grid.replies[0]
    weights = np.array([SAMPLES[r.metadata.src_node_id] for r in replies], np.float64)
    weights /= weights.sum()
    for module in MODULES:
        ideal = sent[module + BASE_SUFFIX].astype(np.float64)
        for w, reply in zip(weights, replies):
            a = reply.content["arrays"][f"{module}.lora_A.weight"].numpy().astype(np.float64)
            b = reply.content["arrays"][f"{module}.lora_B.weight"].numpy().astype(np.float64)
            ideal += w * (ALPHA / R) * b @ a
        got = result.arrays[module + BASE_SUFFIX].numpy().astype(np.float64) + (ALPHA / R) * (
            result.arrays[f"{module}.lora_B.weight"].numpy().astype(np.float64)
            @ result.arrays[f"{module}.lora_A.weight"].numpy().astype(np.float64)
        )
        assert np.abs(got - ideal).max() <= 1e-5 * np.abs(ideal).max()
    metrics = result.train_metrics_clientapp[1]
    assert metrics["fedlora-error"] == metrics["fedlora-fedavg-error"]


@pytest.mark.parametrize("method", ["exact", "stack"])
def test_refused_rules(method: str) -> None:
    with pytest.raises(ValueError, match=method):
        FedloraStrategy(CONFIG, method=method)
    with pytest.raises(ValueError, match="scope"):
        FedloraStrategy(CONFIG, method="fedavg", scope="model")


def test_flora_na_model_scope(tmp_path: Path) -> None:
    """--scope model: one (p, q) for all layers, still fedlora merge's factors."""
    _, grid, result = run("flora-na", rounds=1, scope="model")
    expected = cli_merge(tmp_path, grid.replies[0], "--method", "flora-na", "--scope", "model")
    for key, value in expected.items():
        scale = np.float32(0.5) if key.endswith("lora_B.weight") else np.float32(1)
        assert (result.arrays[key].numpy() / scale).tobytes() == value.tobytes()
