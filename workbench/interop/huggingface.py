"""Hugging Face ``transformers`` format: export a checkpoint, import weights, load either for inference.

An exported directory holds ``config.json``, ``model.safetensors``,
``tokenizer.json``, ``vocab.txt``, ``tokenizer_config.json`` and
``special_tokens_map.json``. Parameter names are already the ``transformers``
ones, so export is a copy; tied decoder weights are left out, as
``transformers`` itself saves them.

* ``bert``: ``BertForPreTraining``, ``BertForMaskedLM``, ``AutoTokenizer`` and
  ``pipeline("fill-mask")`` load it as it is.
* ``modernbert``: ``ModernBertForMaskedLM`` (and ``AutoModelForMaskedLM``)
  loads it with no missing or unexpected weights; the pair (NSP/SOP) head is
  ours and is not exported.

Weights are read only through safetensors or ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path

import torch

from workbench import architectures
from workbench.config import ModelConfig, WorkbenchConfig, section_from_dict
from workbench.data.tokenizer import SPECIAL_TOKENS, describe, load_tokenizer, save_vocab_txt
from workbench.durable_io import (
    WriteError, first_line, fsync_dir, fsync_tree, is_write_failure, remove_stale_partials, temporary_sibling, writing,
)
from workbench.errors import ConfigError, WorkbenchError
from workbench.model import build_model
from workbench.ownership import check_export_folder, write_export_marker
from workbench import checkpoint as ckpt



class InteropError(WorkbenchError):
    """A directory is not a usable BERT checkpoint."""


def is_hf_directory(path: Path) -> bool:
    return (path / "config.json").exists() and not (path / "checkpoint.json").exists()


def export_checkpoint(source: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a checkpoint (or a run's latest) as a transformers BERT directory.

    ``out_dir`` must be new, empty, or a folder this function exported to before
    (its marker); only the files an export writes are replaced, each durably
    (temporary name, fsync, rename), and nothing else in the folder is touched.
    A damaged checkpoint is refused.
    """
    folder = ckpt.verified_checkpoint(source)
    config = ckpt.checkpoint_config(folder)
    tokenizer = load_tokenizer(folder / "tokenizer.json")
    model_config = config.model.resolved(vocab_size=tokenizer.get_vocab_size())
    out = Path(out_dir)
    check_export_folder(out)
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(out, prefix=".files.")  # staging left by an export that was killed
        staging = temporary_sibling(out / "files")
        staging.mkdir()
        try:
            from safetensors.torch import load_file, save_file

            implementation = architectures.get(model_config.architecture).implementation()
            tensors = implementation.export_tensors(load_file(str(folder / ckpt.WEIGHTS)))
            save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
            (staging / "config.json").write_text(json.dumps(hf_config(model_config, tokenizer), indent=2),
                                                 encoding="utf-8")
            write_tokenizer_files(tokenizer, staging, config.data.max_seq_length)
            fsync_tree(staging)
            write_export_marker(out, str(folder))  # before the files: a crash leaves a folder we may finish
            for file in sorted(staging.iterdir()):
                os.replace(file, out / file.name)
            fsync_dir(out)
        except BaseException as exc:
            if is_write_failure(exc):
                raise WriteError(f"{out}: cannot write the export ({first_line(exc)}); files already there are "
                                 "kept") from None
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out


def export_classifier(model, tokenizer, label_names: list[str], out_dir: str | os.PathLike, source: str,
                      max_length: int) -> Path:
    """Write a fine-tuned ``SequenceClassifier`` as transformers' ``BertForSequenceClassification`` or
    ``ModernBertForSequenceClassification`` (same ownership and durability rules as ``export_checkpoint``)."""
    from safetensors.torch import save_file

    out = Path(out_dir)
    check_export_folder(out)
    config = hf_config(model.config, tokenizer)
    config.update({"num_labels": len(label_names),
                   "id2label": {str(i): name for i, name in enumerate(label_names)},
                   "label2id": {name: i for i, name in enumerate(label_names)},
                   "problem_type": "single_label_classification",
                   **architectures.get(model.architecture).implementation().hf_classifier_config(model.config)})
    with writing(out):
        out.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(out, prefix=".files.")
        staging = temporary_sibling(out / "files")
        staging.mkdir()
        try:
            tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
            save_file(tensors, str(staging / "model.safetensors"), metadata={"format": "pt"})
            (staging / "config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")
            write_tokenizer_files(tokenizer, staging, max_length)
            fsync_tree(staging)
            write_export_marker(out, source)
            for file in sorted(staging.iterdir()):
                os.replace(file, out / file.name)
            fsync_dir(out)
        except BaseException as exc:
            if is_write_failure(exc):
                raise WriteError(f"{out}: cannot write the export ({first_line(exc)})") from None
            raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return out


def hf_config(model: ModelConfig, tokenizer) -> dict:
    """``config.json`` of the exported pre-training model (``transformers``' format of its architecture)."""
    return architectures.get(model.architecture).implementation().hf_config(model, tokenizer)


def write_tokenizer_files(tokenizer, folder: Path, max_length: int) -> None:
    tokenizer.save(str(folder / "tokenizer.json"))
    save_vocab_txt(tokenizer, folder / "vocab.txt")
    info = describe(tokenizer)
    special = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
               "mask_token": "[MASK]"}
    strip = info["strip_accents"]
    (folder / "tokenizer_config.json").write_text(json.dumps({
        "tokenizer_class": "BertTokenizer", "do_lower_case": info["lowercase"],
        "strip_accents": strip if strip is not None else None, "tokenize_chinese_chars": True,
        "model_max_length": max_length, "clean_up_tokenization_spaces": True, **special,
    }, indent=2), encoding="utf-8")
    (folder / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")


def model_config_from_hf(folder: Path) -> ModelConfig:
    """The ``[model]`` section of a ``transformers`` directory, of the architecture its ``model_type`` names."""
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InteropError(f"{folder / 'config.json'}: cannot read ({exc})") from None
    if not isinstance(raw, dict):
        raise InteropError(f"{folder / 'config.json'}: holds a {type(raw).__name__}, not a model config object")
    architecture = architectures.for_hf_model_type(raw.get("model_type", "bert"))   # old BERT files have none
    if architecture is None:
        known = ", ".join(a.hf_model_type for a in architectures.ARCHITECTURES.values())
        raise InteropError(f"{folder}: model_type is {raw.get('model_type')!r}; the workbench reads {known}")
    try:
        values = architecture.implementation().config_from_hf(folder, raw)
    except ConfigError as exc:
        raise InteropError(f"{folder / 'config.json'}: {exc}") from None
    return _typed_model_config(folder, {"architecture": architecture.name, "preset": "custom", **values})


def _typed_model_config(folder: Path, values: dict) -> ModelConfig:
    """``values`` read as the ``[model]`` section is: each of its type (``true`` is no layer count, a string
    no size), within its bounds; an error names the config.json and the key."""
    try:
        config = section_from_dict(ModelConfig, values)
        config.validate(require_sizes=True)
    except ConfigError as exc:
        raise InteropError(f"{folder / 'config.json'}: {str(exc).replace('model.', '')}") from None
    return config


def read_hf_weights(folder: Path, architecture: str) -> dict[str, torch.Tensor]:
    """State dict of a ``transformers`` directory, keys renamed to ours by ``architecture``'s mapping."""
    if (folder / "model.safetensors").exists():
        from safetensors.torch import load_file

        path = folder / "model.safetensors"
        load = lambda: load_file(str(path))  # noqa: E731
    elif (folder / "pytorch_model.bin").exists():
        path = folder / "pytorch_model.bin"
        load = lambda: torch.load(path, map_location="cpu", weights_only=True)  # noqa: E731 - no code runs
    else:
        raise InteropError(f"{folder}: no model.safetensors or pytorch_model.bin")
    try:
        with warnings.catch_warnings():      # torch warns about pickle protocols on the way to refusing a file
            warnings.simplefilter("ignore")
            tensors = load()
    except Exception as exc:     # a pickle with code in it, a damaged zip or header, not a weights file at all
        raise InteropError(f"{path}: holds something other than model weights, so it was not loaded "
                           f"({first_line(exc)[:160]})") from None
    if not isinstance(tensors, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                                for k, v in tensors.items()):
        raise InteropError(f"{path}: holds something other than model weights (not a mapping of names to tensors)")
    rename = architectures.get(architecture).implementation().hf_weight_name
    return {name: tensor for name, tensor in ((rename(key), tensor) for key, tensor in tensors.items())
            if name is not None}


def load_hf_weights(model, folder: Path) -> list[str]:
    """Copy a ``transformers`` directory's weights into ``model``; returns the names left at their initial values."""
    tensors = read_hf_weights(folder, model.config.architecture)
    own = model.state_dict()
    wrong = [k for k, v in tensors.items() if k in own and own[k].shape != v.shape]
    if wrong:
        k = wrong[0]
        raise InteropError(f"{folder}: {k} has shape {tuple(tensors[k].shape)}, the model expects {tuple(own[k].shape)}")
    missing, unexpected = model.load_state_dict({k: v for k, v in tensors.items() if k in own}, strict=False)
    loaded = sum(own[k].numel() for k in tensors if k in own)
    total = sum(v.numel() for v in own.values())
    if loaded < total / 2:            # heads that are not exported are small; the encoder must be there
        raise InteropError(f"{folder}: holds {loaded / max(total, 1):.0%} of the weights of its "
                           f"{model.config.architecture} model, not the encoder")
    return sorted(missing)


def load_for_inference(path: str | os.PathLike, device: str = "cpu"):
    """(model in eval mode, tokenizer, WorkbenchConfig or None) from a checkpoint, run or HF directory."""
    path = Path(path)
    if not path.exists():
        raise InteropError(f"{path}: no such checkpoint, run or model directory")
    if is_hf_directory(path):
        model_config = model_config_from_hf(path)
        tokenizer = load_tokenizer(path / "tokenizer.json" if (path / "tokenizer.json").exists() else path / "vocab.txt")
        model = build_model(model_config.resolved(vocab_size=tokenizer.get_vocab_size()))
        load_hf_weights(model, path)
        config = None
    else:
        folder = ckpt.verified_checkpoint(path)
        config: WorkbenchConfig | None = ckpt.checkpoint_config(folder)
        tokenizer = load_tokenizer(folder / "tokenizer.json")
        model = build_model(config.model.resolved(vocab_size=tokenizer.get_vocab_size()))
        ckpt.load_weights(folder, model)
    missing = [t for t in SPECIAL_TOKENS if tokenizer.token_to_id(t) is None]
    if missing:
        raise InteropError(f"{path}: tokenizer lacks {', '.join(missing)}")
    return model.to(device).eval(), tokenizer, config
