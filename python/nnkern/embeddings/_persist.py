"""Model files shared by Word2Vec and GloVe: one NumPy .npz archive, no pickle.

The archive holds ``params`` (hyperparameters and training counters as JSON, with the model
class under "model"), the vocabulary as UTF-8 bytes ``keys`` cut by ``key_off``, the word
counts and the model's arrays. Reading checks everything before a model is built from it, so
a wrong, truncated or foreign file fails with one ValueError that names the file.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np


def save_model(model, fname, arrays: dict) -> None:
    """Write model's _INIT and _STATE attributes, its vocabulary and counts, and arrays (those
    that are None are left out)."""
    params = {k: getattr(model, k) for k in model._INIT + model._STATE}
    save(fname, type(model).__name__, params, model.wv.index_to_key, model.wv.counts, arrays)


def load_model(cls, fname):
    """(model, keys, arrays): cls built from a file written by save_model(), its _STATE
    restored; the caller checks the arrays it needs with arrays()."""
    params, keys, data = read(fname, cls.__name__, cls._INIT + cls._STATE,
                              getattr(cls, "_DEFAULTS", {}))
    return new_model(cls, fname, params, cls._INIT, cls._STATE), keys, data


def save(fname, kind: str, params: dict, keys, counts, arrays: dict) -> None:
    """Write a `kind` model; arrays that are None are left out."""
    blob, off = _encode_keys(keys)
    stored = {k: v for k, v in arrays.items() if v is not None}
    with open(fname, "wb") as f:
        np.savez(f, params=np.array(json.dumps(dict(params, model=kind))), keys=blob, key_off=off,
                 counts=np.asarray(counts, np.int64), **stored)


def bad_file(fname, kind, why):
    return ValueError(f"fname: {os.fspath(fname)!r} is not an nnkern {kind} model ({why})")


def read(fname, kind: str, names, defaults=None) -> tuple[dict, list, dict]:
    """(params, keys, arrays) of a `kind` model file; params must hold every one of names,
    except those in defaults (parameters added later: older files get the default value).
    Files written before "model" was recorded are Word2Vec models."""
    if not os.path.isfile(fname):
        raise FileNotFoundError(f"fname: no such file: {os.fspath(fname)!r}")
    try:
        # our own handle: np.load leaves its file open when the archive is truncated
        with open(fname, "rb") as f:
            z = np.load(f, allow_pickle=False)
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise ValueError("a single .npy array, not an .npz archive")
            with z:
                params = json.loads(str(z["params"]))
                data = {k: z[k] for k in z.files}
        keys = _decode_keys(data.pop("keys"), data.pop("key_off"))
    except (ValueError, OSError, KeyError, EOFError, IndexError, zipfile.BadZipFile) as exc:
        raise bad_file(fname, kind, exc) from None
    if not isinstance(params, dict):
        raise bad_file(fname, kind, "its params are not a JSON object")
    found = params.get("model", "Word2Vec")
    if found != kind:
        raise ValueError(f"fname: {os.fspath(fname)!r} holds an nnkern {found} model, not a "
                         f"{kind} model (load it with nnkern.{found}.load)")
    params = {**(defaults or {}), **params}
    missing = [k for k in names if k not in params]
    if missing:
        raise bad_file(fname, kind, f"params lack {', '.join(missing)}")
    return params, keys, data


def arrays(fname, kind: str, data: dict, spec: dict) -> dict:
    """The arrays named in spec {name: (shape, dtype)}, each checked against its entry."""
    out = {}
    for name, (shape, dtype) in spec.items():
        a = data.get(name)
        if a is None:
            raise bad_file(fname, kind, f"no {name!r} array")
        if a.shape != tuple(shape) or a.dtype != dtype:
            raise bad_file(fname, kind, f"{name!r} has shape {a.shape} and dtype {a.dtype}, expected "
                       f"{tuple(shape)} and {np.dtype(dtype)}")
        out[name] = a
    return out


def new_model(cls, fname, params: dict, init, state):
    """cls(**params[init]) with the attributes in state restored."""
    try:
        m = cls(**{k: params[k] for k in init})
    except (TypeError, ValueError) as exc:
        raise bad_file(fname, cls.__name__, exc) from None
    for k in state:
        setattr(m, k, params[k])
    return m


def _encode_keys(keys):
    enc = [k.encode("utf-8") for k in keys]
    off = np.concatenate([[0], np.cumsum([len(b) for b in enc], dtype=np.int64)]).astype(np.int64)
    return np.frombuffer(b"".join(enc), dtype=np.uint8).copy(), off


def _decode_keys(blob, off):
    if blob.dtype != np.uint8 or off.ndim != 1 or len(off) == 0:
        raise ValueError("the vocabulary is not stored as UTF-8 bytes with offsets")
    b = blob.tobytes()
    return [b[off[i]:off[i + 1]].decode("utf-8") for i in range(len(off) - 1)]
